"""The dataset registry: where images come from, as numpy arrays, before any preprocessing.

Each entry is a :class:`DatasetInfo` whose loader returns ``{"train": (x, y), "test": (x, y)}``
with uint8 (or float) images of shape (N, H, W, C) and integer labels.

* ``fashion_mnist``: the gzipped IDX files Debian's ``dataset-fashion-mnist`` installs
  (``/usr/share/datasets/fashion-mnist`` or ``data_dir``), else tfds when ``download``.
* ``mnist``, ``cifar10``, ``cifar100``: tfds. Offline, ``tfds.load`` retries for minutes, so the data
  must already be prepared in ``data_dir`` unless ``download=True``; otherwise a clear
  error says how to get it, at once.
* ``synthetic``: seeded random images whose class shifts the mean of a channel, so a
  network can learn it (tests and smoke runs).
* ``fortunes``, ``python_docs``: text corpora for ``--task=causal_lm`` (Debian's ``fortunes`` and
  ``python3-doc`` packages, :mod:`tf_lottery.data.text`): a loader returns ``{"texts": [...]}``,
  which :func:`tf_lottery.data.sequences.prepare_text` splits by entry and cuts into next-token pairs.
* ``tfds_text:<name>[#<feature>]``: any tfds dataset with a text feature, for ``--task=causal_lm``
  online (or prepared in ``--data_dir``): ``tfds_text:tiny_shakespeare``, ``tfds_text:imdb_reviews``,
  ``tfds_text:lm1b``, ``tfds_text:cnn_dailymail#article`` (a feature named where there are several
  and none is ``text``). Its loader returns the dataset's own
  training split and its test split (``validation`` where it has no ``test``) as
  ``{"texts", "test_texts"}``; offline and not prepared, it fails at once with what to do.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Callable, Dict, Optional, Tuple

import numpy as np
import tensorflow as tf

from tf_lottery.data.idx import DEFAULT_FASHION_MNIST_DIR, load_fashion_mnist
from tf_lottery.data.text import FORTUNES_DIR, ByteTokenizer, read_fortunes, read_python_docs
from tf_lottery.core.registry import Registry

#: The dataset registry: ``fashion_mnist``, ``mnist``, ``cifar10``, ``cifar100``, ``synthetic`` and the rest (:func:`get`).
DATASETS: Registry = Registry("dataset")

Arrays = Tuple[np.ndarray, np.ndarray]

TASKS = ("classify", "causal_lm")
"""What a dataset is data for: images and labels, or a text corpus for next-token prediction."""


class DatasetUnavailable(RuntimeError):
    """The dataset is not on this machine (and downloading was not allowed)."""


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """A registered dataset.

    Attributes:
        name: Registry name.
        input_shape: Shape of one image.
        num_classes: Number of labels.
        loader: ``(data_dir, download, seed) -> {"train": (x, y), "test": (x, y)}``.
        source: One line on where the data comes from.
        class_names: The name of each label, in label order (exports carry them).
        tfds_name: The tfds dataset it streams from (``--data_path=stream``), or None.
        streams: Whether ``--data_path=auto`` streams it (``tfds:<name>``) instead of loading
            it into memory (the registered datasets: at most 200 MB of uint8 images).
        task: What it is data for: ``classify`` (images and labels) or ``causal_lm`` (a text
            corpus; ``input_shape`` is its default sequence length, ``num_classes`` its vocabulary).
        split_sizes: Examples in its ``train`` and ``test`` splits when they are fixed (so that "all of
            them" has one spelling in a run's identity), else None.
        default_dir: Where it is read from without ``--data_dir`` (None: tfds's own folder, or no files).

    Raises:
        ValueError: for class names that do not number the classes.

    Example:
        >>> info = get("fashion_mnist")
        >>> info.input_shape, info.num_classes, info.class_names[:2]
        ((28, 28, 1), 10, ('T-shirt/top', 'Trouser'))
    """

    name: str
    input_shape: tuple
    num_classes: int
    loader: Callable
    source: str
    class_names: tuple = ()
    tfds_name: Optional[str] = None
    streams: bool = False
    task: str = "classify"
    split_sizes: Optional[Dict[str, int]] = None
    default_dir: Optional[str] = None

    def __post_init__(self):
        if not self.class_names:
            object.__setattr__(self, "class_names", tuple(str(i) for i in range(self.num_classes)))
        if len(self.class_names) != self.num_classes:
            raise ValueError(f"dataset {self.name!r}: {len(self.class_names)} class names for {self.num_classes} "
                             "classes")

    def load(self, data_dir: Optional[str] = None, download: bool = False, seed: int = 0) -> Dict[str, Arrays]:
        """``{"train": (x, y), "test": (x, y)}`` from its loader (:class:`DatasetUnavailable` when missing)."""
        return self.loader(data_dir, download, seed)


def register(name, input_shape, num_classes, source, class_names=(), tfds_name=None, task="classify",
             split_sizes=None, default_dir=None):
    """Decorator registering a loader as a :class:`DatasetInfo`."""
    return DATASETS.entry(name, lambda loader: DatasetInfo(name, tuple(input_shape), num_classes, loader, source,
                                                           tuple(class_names), tfds_name, task=task,
                                                           split_sizes=split_sizes, default_dir=default_dir))


def _any_tfds(name: str) -> DatasetInfo:
    """``tfds:<name>``: any tfds image classification dataset with ``image`` and ``label``
    features; it streams (:mod:`tf_lottery.data.streaming`), and its shape and classes are
    read from tfds when the data is prepared."""

    def load(data_dir, download, seed):
        raise ValueError(f"tfds:{name} streams from tfds; it has no in-memory path (--data_path=memory)")

    return DatasetInfo(f"tfds:{name}", (), 0, load, f"tfds {name}, streamed", tfds_name=name, streams=True)


DATASETS.register_family("tfds:", _any_tfds)


def _any_tfds_text(name: str) -> DatasetInfo:
    """``tfds_text:<name>[#<feature>]``: a tfds dataset's text feature as a corpus (:func:`load_tfds_texts`)."""
    dataset, _, feature = name.partition("#")

    def load(data_dir, download, seed):
        return load_tfds_texts(dataset, data_dir, download, feature or None)

    return DatasetInfo(f"tfds_text:{name}", (128,), ByteTokenizer.vocabulary_size, load, f"tfds {name}, text (bytes)",
                       task="causal_lm")


DATASETS.register_family("tfds_text:", _any_tfds_text)


FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                         "Ankle boot")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR100_CLASSES = tuple("""apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus
butterfly camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile cup dinosaur
dolphin elephant flatfish forest fox girl hamster house kangaroo keyboard lamp lawn_mower leopard lion lizard lobster
man maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid otter palm_tree pear pickup_truck pine_tree
plain plate poppy porcupine possum rabbit raccoon ray road rocket rose sea seal shark shrew skunk skyscraper snail snake
spider squirrel streetcar sunflower sweet_pepper table tank telephone television tiger tractor train trout tulip turtle
wardrobe whale willow_tree wolf woman worm""".split())
"""The label names as the datasets publish them (tfds ``features["label"].names``)."""


def get(name: str) -> DatasetInfo:
    """Returns the registered dataset ``name``.

    Args:
        name: A dataset's name (``DATASETS.names()``), or ``tfds:<name>``.

    Returns:
        Its :class:`DatasetInfo`.

    Raises:
        UnknownNameError: for a name that is not registered (listing the valid names).

    Example:
        >>> get("cifar10").num_classes
        10
    """
    return DATASETS.get(name)


def load_tfds_split(name: str, split: str, data_dir: Optional[str], download: bool,
                    folder_flag: str = "--data_dir", download_flag: str = "--download") -> Arrays:
    """Loads one split of a tfds dataset as numpy arrays, failing fast when absent.

    With ``download=False`` tfds answers at once when the data is not prepared (with
    ``download=True`` and no internet it would retry for minutes).

    Raises:
        DatasetUnavailable: naming the dataset, the folder and how to get the data.
    """
    import tensorflow_datasets as tfds

    try:
        loaded = tfds.load(name, split=split, as_supervised=True, data_dir=data_dir, download=download)
    except Exception as error:  # tfds raises AssertionError, ConnectionError, ...: all mean "not here"
        where = data_dir or "~/tensorflow_datasets"
        hint = (f"pass {download_flag} on a machine with internet, or point {folder_flag} at a folder where tfds "
                "prepared it" if not download else f"check the internet connection or {folder_flag}")
        raise DatasetUnavailable(f"dataset {name!r} is not available in {where}: {hint} "
                                 f"(tfds said: {str(error).splitlines()[0][:200]})") from error
    batches = list(tfds.as_numpy(loaded.batch(10_000)))
    if not batches:
        raise DatasetUnavailable(f"dataset {name!r} split {split!r} is empty in {data_dir or '~/tensorflow_datasets'}")
    images, labels = zip(*batches)
    return np.concatenate(images), np.concatenate(labels).astype("int64")


def load_tfds(name: str, data_dir: Optional[str], download: bool) -> Dict[str, Arrays]:
    """Loads a tfds dataset's train and test splits as numpy arrays (see :func:`load_tfds_split`).

    Args:
        name: The tfds dataset's name (``"cifar10"``).
        data_dir: tfds's data folder (None: its default).
        download: Whether tfds may download the data.

    Returns:
        ``{"train": (images, labels), "test": (images, labels)}``.

    Raises:
        DatasetUnavailable: naming the dataset, the folder and how to get the data.

    Example:
        >>> load_tfds("cifar10", data_dir=None, download=True)["train"][0].shape
        (50000, 32, 32, 3)
    """
    return {split: load_tfds_split(name, split, data_dir, download) for split in ("train", "test")}


def text_feature(features, wanted: Optional[str] = None) -> str:
    """The feature of a tfds ``FeaturesDict`` that holds the text: ``wanted`` when given, else ``text``
    when there is one, else the only string feature.

    Raises:
        ValueError: when ``wanted`` is not a string feature, or there is no string feature, or
            several and none is ``text``.
    """
    strings = [key for key, feature in features.items() if getattr(feature, "tf_dtype", None) == tf.string]
    if wanted is not None:
        if wanted not in strings:
            raise ValueError(f"#{wanted}: not a string feature of the dataset; its string features: {strings}")
        return wanted
    if "text" in strings or len(strings) == 1:
        return "text" if "text" in strings else strings[0]
    raise ValueError(f"no single text feature among {sorted(features)} (string features: {strings}); "
                     "name one: tfds_text:<name>#<feature>")


def load_tfds_texts(name: str, data_dir: Optional[str], download: bool,
                    feature: Optional[str] = None) -> Dict[str, list]:
    """A tfds dataset's texts: ``{"texts": training split, "test_texts": test split}``.

    The test split is ``test``, or ``validation`` when the dataset has no ``test``; the text is
    ``feature``, or the one :func:`text_feature` finds.

    Raises:
        DatasetUnavailable: naming the dataset, the folder and how to get the data.
        ValueError: for a dataset without a single text feature or without a test split.

    Example:
        >>> corpus = load_tfds_texts("tiny_shakespeare", None, download=True)
        >>> len(corpus["texts"]), len(corpus["test_texts"])
        (1, 1)
    """
    import tensorflow_datasets as tfds

    def load(split):
        return tfds.load(name, split=split, data_dir=data_dir, download=download, with_info=True)

    try:
        train, info = load("train")
    except Exception as error:  # tfds raises AssertionError, ConnectionError, ...: all mean "not here"
        where = data_dir or "~/tensorflow_datasets"
        hint = ("pass --download on a machine with internet, or point --data_dir at a folder where tfds prepared it"
                if not download else "check the internet connection or --data_dir")
        raise DatasetUnavailable(f"dataset {name!r} is not available in {where}: {hint} "
                                 f"(tfds said: {str(error).splitlines()[0][:200]})") from error
    feature = text_feature(info.features, feature)
    known = list(info.splits) or ["test", "validation"]  # a mocked dataset lists no splits
    test_name = next((split for split in ("test", "validation") if split in known), None)
    if test_name is None:
        raise ValueError(f"tfds dataset {name!r} has splits {sorted(known)}: tfds_text: needs a 'test' or "
                         "'validation' split")
    try:
        test, _ = load(test_name)
    except (KeyError, ValueError):  # no test split after all: its validation split
        test_name = "validation"
        test, _ = load(test_name)

    def texts(split):
        return [item[feature].decode("utf-8", errors="replace") for item in tfds.as_numpy(split)]

    return {"texts": texts(train), "test_texts": texts(test)}


@register("fashion_mnist", (28, 28, 1), 10, "Debian dataset-fashion-mnist IDX files, else tfds", FASHION_MNIST_CLASSES,
          tfds_name="fashion_mnist", split_sizes={"train": 60000, "test": 10000},
          default_dir=DEFAULT_FASHION_MNIST_DIR)
def _fashion_mnist(data_dir, download, seed):
    folder = data_dir or DEFAULT_FASHION_MNIST_DIR
    if os.path.exists(os.path.join(folder, "train-images-idx3-ubyte.gz")) or not download:
        train, test = load_fashion_mnist(folder)
        return {"train": train, "test": test}
    return load_tfds("fashion_mnist", data_dir, download)


@register("mnist", (28, 28, 1), 10, "tfds mnist", tfds_name="mnist", split_sizes={"train": 60000, "test": 10000})
def _mnist(data_dir, download, seed):
    return load_tfds("mnist", data_dir, download)


@register("cifar10", (32, 32, 3), 10, "tfds cifar10", CIFAR10_CLASSES, tfds_name="cifar10",
          split_sizes={"train": 50000, "test": 10000})
def _cifar10(data_dir, download, seed):
    return load_tfds("cifar10", data_dir, download)


@register("cifar100", (32, 32, 3), 100, "tfds cifar100", CIFAR100_CLASSES, tfds_name="cifar100",
          split_sizes={"train": 50000, "test": 10000})
def _cifar100(data_dir, download, seed):
    return load_tfds("cifar100", data_dir, download)


def synthetic_arrays(num_train: int = 512, num_test: int = 128, input_shape=(16, 16, 3),
                     num_classes: int = 4, seed: int = 0) -> Dict[str, Arrays]:
    """Learnable random uint8 images: class c brightens channel c % C by a fixed amount.

    Args:
        num_train: Training examples.
        num_test: Test examples.
        input_shape: Shape of one image.
        num_classes: Number of classes.
        seed: Seed of the images and labels.

    Returns:
        ``{"train": (images, labels), "test": (images, labels)}``: uint8 images, int64 labels.

    Example:
        >>> synthetic_arrays(num_train=8)["train"][0].shape
        (8, 16, 16, 3)
    """
    rng = np.random.default_rng(seed)

    def make(n):
        labels = rng.integers(0, num_classes, n)
        images = rng.normal(100, 30, (n, *input_shape))
        for c in range(num_classes):
            images[labels == c, ..., c % input_shape[-1]] += 40 * (1 + c // input_shape[-1])
        return np.clip(images, 0, 255).astype("uint8"), labels.astype("int64")

    return {"train": make(num_train), "test": make(num_test)}


@register("fortunes", (128,), ByteTokenizer.vocabulary_size, "Debian fortunes (English quotations; text, bytes)",
          task="causal_lm")
def _fortunes(data_dir, download, seed):
    return {"texts": read_fortunes(data_dir or FORTUNES_DIR)}


@register("python_docs", (128,), ByteTokenizer.vocabulary_size,
          "Debian python3-doc (the Python documentation's English sources; text, bytes)", task="causal_lm")
def _python_docs(data_dir, download, seed):
    return {"texts": read_python_docs(data_dir)}


@register("synthetic", (16, 16, 3), 4, "seeded random images (tests and smoke runs)",
          split_sizes={"train": 512, "test": 128})
def _synthetic(data_dir, download, seed):
    return synthetic_arrays(seed=seed)
