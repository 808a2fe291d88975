"""Published corruption and distribution-shift test sets, loaded for evaluation.

=============  ==============================================================  ===================
name           what                                                            for models of
=============  ==============================================================  ===================
cifar10_c      CIFAR-10-C (Hendrycks & Dietterich 2019): 19                    cifar10
               corruptions x 5 severities of the CIFAR-10 test set; tfds
               ``cifar10_corrupted/<corruption>_<severity>`` (2.7 GiB)
cifar10_1      CIFAR-10.1 (Recht et al. 2018), a new test set drawn            cifar10
               like the original; tfds ``cifar10_1`` (v6, 2,000 images)
cifar10_2      CIFAR-10.2 (Lu et al. 2020), the paper's OOD set                cifar10
               (its Table 5); not in tfds: the authors'
               ``cifar102_test.npz`` (keys ``images``, ``labels``) from
               ``--shift_dir``
mnist_c        MNIST-C (Mu & Gilmer 2019): 15 corruptions of the MNIST         mnist
               test set; tfds ``mnist_corrupted/<corruption>``
=============  ==============================================================  ===================

tfds sets are read from ``--shift_dir`` (a tfds ``data_dir``; default tfds' own) and
downloaded only with ``--shift_download``; a set that is not there fails at once, naming the set,
the folder and how to get it (:class:`~tf_lottery.data.DatasetUnavailable`).

Each set is a list of *groups* (``gaussian_noise/3`` for a corruption set, ``test`` for a
plain one), loaded one at a time so CIFAR-10-C's 950,000 images never sit in memory at once.

Example:
    >>> shift = tl.evals.shift_sets.get("cifar10_1")
    >>> images, labels = shift.load("test", data_dir=None, download=False)
"""

from __future__ import annotations

import dataclasses
import os
from typing import Callable, List, Optional, Tuple

import numpy as np

from tf_lottery.data.datasets import DatasetUnavailable, load_tfds_split
from tf_lottery.core.registry import Registry

SHIFT_SETS: Registry = Registry("shift set")

CIFAR10_C = ("brightness", "contrast", "defocus_blur", "elastic", "fog", "frost", "frosted_glass_blur",
             "gaussian_blur", "gaussian_noise", "impulse_noise", "jpeg_compression", "motion_blur", "pixelate",
             "saturate", "shot_noise", "snow", "spatter", "speckle_noise", "zoom_blur")
MNIST_C = ("shot_noise", "impulse_noise", "glass_blur", "motion_blur", "shear", "scale", "rotate", "brightness",
           "translate", "stripe", "fog", "spatter", "dotted_line", "zigzag", "canny_edges")
CIFAR102_FILE = "cifar102_test.npz"


@dataclasses.dataclass(frozen=True)
class ShiftSet:
    """A registered shift set.

    Attributes:
        name: Registry name (a value of ``--shift_sets``).
        dataset: The training dataset whose models it tests.
        groups: Its groups (``corruption/severity``, ``corruption`` or ``test``).
        loader: ``(group, data_dir, download) -> (uint8 images, int labels)``.
        source: One line on where it comes from.
    """

    name: str
    dataset: str
    groups: Tuple[str, ...]
    loader: Callable
    source: str

    def load(self, group: str, data_dir: Optional[str] = None, download: bool = False):
        """``(images, labels)`` of one group (uint8 NHWC images, int64 labels).

        Raises:
            ValueError: for a group the set does not have.
            DatasetUnavailable: when the data is not on this machine.
        """
        if group not in self.groups:
            raise ValueError(f"{self.name} has no group {group!r}; its groups: {', '.join(self.groups)}")
        return self.loader(group, data_dir, download)

    def check_available(self, data_dir: Optional[str] = None, download: bool = False) -> None:
        """Loads the set's first group (fails fast, before any evaluation, when it is missing)."""
        self.load(self.groups[0], data_dir, download)


def register(name: str, dataset: str, groups, source: str):
    """Decorator registering a loader as a :class:`ShiftSet`."""
    return SHIFT_SETS.entry(name, lambda loader: ShiftSet(name, dataset, tuple(groups), loader, source))


def get(name: str) -> ShiftSet:
    """The shift set registered as ``name`` (the error lists the valid names)."""
    return SHIFT_SETS.get(name)


def for_dataset(dataset: str) -> List[str]:
    """Names of the shift sets that test models trained on ``dataset`` (maybe none)."""
    return [name for name in SHIFT_SETS.names() if SHIFT_SETS.get(name).dataset == dataset]


def _tfds_test(name: str, data_dir, download):
    """The test split of a tfds set (errors name this module's flags)."""
    return load_tfds_split(name, "test", data_dir, download, "--shift_dir", "--shift_download")


@register("cifar10_c", "cifar10", [f"{c}/{s}" for c in CIFAR10_C for s in range(1, 6)],
          "tfds cifar10_corrupted (CIFAR-10-C)")
def _cifar10_c(group, data_dir, download):
    corruption, severity = group.split("/")
    return _tfds_test(f"cifar10_corrupted/{corruption}_{severity}", data_dir, download)


@register("cifar10_1", "cifar10", ["test"], "tfds cifar10_1/v6 (CIFAR-10.1)")
def _cifar10_1(group, data_dir, download):
    return _tfds_test("cifar10_1/v6", data_dir, download)


@register("mnist_c", "mnist", MNIST_C, "tfds mnist_corrupted (MNIST-C)")
def _mnist_c(group, data_dir, download):
    return _tfds_test(f"mnist_corrupted/{group}", data_dir, download)


@register("cifar10_2", "cifar10", ["test"], f"{CIFAR102_FILE} from --shift_dir (CIFAR-10.2)")
def _cifar10_2(group, data_dir, download):
    path = os.path.join(data_dir or ".", CIFAR102_FILE)
    if not os.path.exists(path):
        raise DatasetUnavailable(
            f"CIFAR-10.2 is not at {path}: it is not in tfds; download {CIFAR102_FILE} from its authors' "
            "repository (github.com/modestyachts/cifar-10.2) into a folder and pass it as --shift_dir")
    try:
        with np.load(path, allow_pickle=False) as archive:
            images, labels = archive["images"], archive["labels"]
    except (KeyError, ValueError, OSError) as error:
        raise DatasetUnavailable(f"{path} is not a CIFAR-10.2 archive with arrays 'images' and 'labels' "
                                 f"({error})") from error
    if images.dtype != np.uint8 or images.ndim != 4 or len(images) != len(labels):
        raise DatasetUnavailable(f"{path}: expected uint8 images (N, 32, 32, 3) and N labels; got images "
                                 f"{images.dtype} {images.shape} and {len(labels)} labels")
    return images, np.asarray(labels).astype("int64")
