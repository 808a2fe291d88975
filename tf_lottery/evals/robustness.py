"""The robustness and representation evaluations: corruptions, shift sets, attacks, CKA.

Each is a registry entry (``--evals=...``) whose result is cached in the run folder like
every evaluation. Images are taken back to pixels from the prepared test split (which is
``pixels / 255 - mean``), corrupted or attacked there, and preprocessed again, so every
model sees exactly what the clean evaluation's preprocessing would give it:

* ``corruptions``: ``{"examples", "clean", "mean", "accuracy": {corruption: {severity: acc}}}``,
  ``mean`` over every corruption and severity (CIFAR-10-C's usual summary);
* ``shift_sets``: ``{set: {"examples", "accuracy", "groups": {group: acc}}}``, ``accuracy``
  the mean over the set's groups;
* ``adversarial``: ``{"examples", "clean", "accuracy": {attack: {epsilon in 1/255: acc}}}``;
* ``cka``: ``{"examples", "views": {view: {"linear", "debiased"}}}`` between the dense
  network and the ticket.

Accuracies are fractions in [0, 1], like the clean evaluation's.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Dict, Optional, Tuple

import numpy as np

from tf_lottery.core.options import boolean, integer, integers, names, real, text
from tf_lottery.evals.registry import register
from tf_lottery.evals import adversarial, cka, corruptions, shift_sets
from tf_lottery.evals.corruptions import CORRUPTIONS, SEVERITIES
from tf_lottery.evals.shift_sets import SHIFT_SETS

_CORRUPTED: Dict[Tuple, np.ndarray] = {}  # corrupted pixels of the last image set, shared by every model


def pixels(data, images: np.ndarray) -> np.ndarray:
    """uint8 pixels of preprocessed images (exact for images that were uint8 before preprocessing)."""
    return np.clip(np.round((images + data.mean) * 255.0), 0, 255).astype(np.uint8)


def preprocess(data, pixel_images: np.ndarray) -> np.ndarray:
    """The model's input for uint8 pixels: the prepared data's preprocessing."""
    return pixel_images.astype("float32") / 255.0 - data.mean


def _accuracy(model, data, pixel_images: np.ndarray, labels: np.ndarray) -> float:
    return adversarial.accuracy(model, preprocess(data, pixel_images), labels)


def _corrupted(images: np.ndarray, corruption: str, severity: int, seed: int) -> np.ndarray:
    """Corrupted copies, computed once per image set and reused for every model of a process."""
    key = (hashlib.sha1(images.tobytes()).hexdigest(), images.shape, corruption, severity, seed)
    if key not in _CORRUPTED:
        if any(k[:2] != key[:2] for k in _CORRUPTED):  # another image set: forget the last one
            _CORRUPTED.clear()
        _CORRUPTED[key] = corruptions.corrupt(images, corruption, severity, seed)
    return _CORRUPTED[key]


def _examples():
    """``--robustness_examples``, read by ``corruptions`` and ``shift_sets`` (one flag, declared alike by both)."""
    return integer(None, "corruptions, shift_sets: evaluate the first N images of the test split and of each shift "
                   "set's group (0 = all).", lower_bound=0, zero_means_none=True)


def _distinct_names(values: dict, *fields: str) -> None:
    for name in fields:
        if len(set(values[name])) != len(values[name]):
            raise ValueError(f"{name} lists a name twice: {list(values[name])}")


@dataclasses.dataclass(frozen=True)
class CorruptionOptions:
    """The flags of ``--evals=corruptions``."""

    robustness_examples: Optional[int] = _examples()
    corruptions: tuple = names((), "corruptions: which in-graph corruptions (empty: all that apply to the "
                               "images; saturate needs colour).", choices=tuple(CORRUPTIONS))
    severities: tuple = integers(SEVERITIES, "corruptions: severities, 1 to 5.", lower_bound=1)
    corruption_seed: int = integer(0, "corruptions: seed of the corruptions' random draws.", lower_bound=0)

    @classmethod
    def check_values(cls, values: dict) -> None:
        """Refuses severities outside 1 to 5, given twice or none, and a corruption named twice.

        Raises:
            ValueError: naming the flag and its values.
        """
        severities = values["severities"]
        late = [s for s in severities if s > max(SEVERITIES)]
        if late or len(set(severities)) != len(severities) or not severities:
            raise ValueError(f"severities takes distinct values from 1 to 5; got {list(severities)}")
        _distinct_names(values, "corruptions")


@dataclasses.dataclass(frozen=True)
class ShiftSetOptions:
    """The flags of ``--evals=shift_sets``."""

    robustness_examples: Optional[int] = _examples()
    shift_sets: tuple = names((), "shift_sets: which published sets (empty: those of the dataset: cifar10_c, "
                              "cifar10_1, cifar10_2 for cifar10; mnist_c for mnist).", choices=SHIFT_SETS)
    shift_dir: Optional[str] = text(None, "shift_sets: tfds data_dir of the tfds sets, and the folder holding "
                                    "cifar102_test.npz (default: tfds' own folder; the current folder).")
    shift_download: bool = boolean(False, "shift_sets: let tfds download a missing set into --shift_dir (needs "
                                   "internet; kept apart from --download, which is part of a run's identity).")

    @classmethod
    def check_values(cls, values: dict) -> None:
        """Refuses a set named twice.

        Raises:
            ValueError: naming the flag and its values.
        """
        _distinct_names(values, "shift_sets")


@dataclasses.dataclass(frozen=True)
class AttackOptions:
    """The flags of ``--evals=adversarial``."""

    attacks: tuple = names(adversarial.ATTACKS, "adversarial: the L-infinity attacks.", choices=adversarial.ATTACKS)
    epsilons: tuple = integers((1, 2, 4, 8), "adversarial: radii in pixel levels out of 255 (8 means 8/255 of "
                               "the [0, 1] pixel range; 0 gives the clean accuracy).", lower_bound=0)
    pgd_steps: int = integer(10, "adversarial: PGD iterations.", lower_bound=1)
    pgd_step_size: Optional[float] = real(None, "adversarial: PGD step in pixel levels out of 255 (default "
                                          "2.5 x epsilon / steps, Madry et al.).")
    random_start: bool = boolean(True, "adversarial: PGD starts at a uniform random point of the ball.")
    attack_examples: Optional[int] = integer(1000, "adversarial: attack the first N test images (0 = all).",
                                             lower_bound=0, zero_means_none=True)

    @classmethod
    def check_values(cls, values: dict) -> None:
        """Refuses radii given twice or none, a step of 0 or less, and an attack named twice.

        Raises:
            ValueError: naming the flag and its value.
        """
        epsilons = values["epsilons"]
        if len(set(epsilons)) != len(epsilons) or not epsilons:
            raise ValueError(f"epsilons takes distinct values >= 0; got {list(epsilons)}")
        if values["pgd_step_size"] is not None and values["pgd_step_size"] <= 0:
            raise ValueError(f"pgd_step_size must be > 0; got {values['pgd_step_size']}")
        _distinct_names(values, "attacks")


@dataclasses.dataclass(frozen=True)
class CkaOptions:
    """The flag of ``--evals=cka``."""

    cka_examples: int = integer(1000, "cka: the fixed evaluation batch, the first N test images (the debiased "
                                "form needs 4 to 5000).", lower_bound=4)

    @classmethod
    def check_values(cls, values: dict) -> None:
        """Refuses more than 5000 examples (the debiased CKA builds (n, n) kernels).

        Raises:
            ValueError: naming the flag and its value.
        """
        if values["cka_examples"] > 5000:
            raise ValueError(f"cka_examples must be from 4 to 5000 (the debiased CKA builds (n, n) kernels); "
                             f"got {values['cka_examples']}")


def _corruption_settings(config) -> dict:
    return {"corruptions": list(config.corruptions), "severities": list(config.severities),
            "seed": config.corruption_seed, "examples": config.robustness_examples}


@register("corruptions", settings=_corruption_settings, options=CorruptionOptions,
          summary="accuracy under the in-graph common corruptions, per corruption and severity")
def corruption_accuracy(model, data, config) -> dict:
    """Accuracy on the first ``robustness_examples`` test images under every corruption and severity."""
    images, labels = data.arrays("test", config.robustness_examples)
    clean = pixels(data, images)
    names = list(config.corruptions) or corruptions.applicable(clean.shape[-1])
    for name in names:
        corruptions.check(name, 1, clean.shape[-1])
    table = {name: {str(s): _accuracy(model, data, _corrupted(clean, name, s, config.corruption_seed), labels)
                    for s in config.severities} for name in names}
    every = [value for row in table.values() for value in row.values()]
    return {"examples": int(len(labels)), "clean": _accuracy(model, data, clean, labels),
            "mean": float(np.mean(every)), "accuracy": table}


def shift_set_names(config, dataset: str) -> list:
    """The sets ``--shift_sets`` names, or else the dataset's own (maybe none)."""
    return list(config.shift_sets) or shift_sets.for_dataset(dataset)


def _matching_sets(config, dataset: str) -> list:
    """The sets to evaluate on ``dataset``'s models, checked to test them (nothing is loaded).

    Raises:
        ValueError: for a set of another dataset, or no set at all for this dataset.
    """
    names = shift_set_names(config, dataset)
    if not names:
        known = ", ".join(f"{n} ({shift_sets.get(n).dataset})" for n in shift_sets.SHIFT_SETS.names())
        raise ValueError(f"no published shift set tests {dataset} models; the sets: {known}. Use the "
                         "corruptions evaluation (in-graph) instead")
    for name in names:
        if shift_sets.get(name).dataset != dataset:
            raise ValueError(f"shift set {name!r} tests {shift_sets.get(name).dataset} models; this run trained "
                             f"on {dataset}")
    return names


def check_shift_sets(config, dataset: str) -> None:
    """Fails fast when a requested set does not test ``dataset``'s models or is not on this machine
    (loads each set's first group once: call it once per dataset, before measuring).

    Raises:
        ValueError: for a set of another dataset, or no set at all for this dataset.
        DatasetUnavailable: when a set's files are missing.
    """
    for name in _matching_sets(config, dataset):
        shift_sets.get(name).check_available(config.shift_dir, config.shift_download)


@register("shift_sets", options=ShiftSetOptions, settings=lambda config: {"sets": list(config.shift_sets),
                                                 "examples": config.robustness_examples},
          summary="accuracy on the dataset's published corruption and shift sets (CIFAR-10-C, -10.1, -10.2, MNIST-C)")
def shift_set_accuracy(model, data, config) -> dict:
    """Accuracy on every group of every shift set of the run's dataset."""
    results = {}
    for name in _matching_sets(config, data.options.name):  # a missing set fails on its first group
        shift = shift_sets.get(name)
        groups, examples = {}, 0
        for group in shift.groups:
            images, labels = shift.load(group, config.shift_dir, config.shift_download)
            if config.robustness_examples is not None:
                images, labels = images[:config.robustness_examples], labels[:config.robustness_examples]
            if images.shape[1:] != data.input_shape:
                raise ValueError(f"{name} images are {images.shape[1:]}; the model reads {data.input_shape}")
            groups[group] = _accuracy(model, data, images, labels)
            examples = int(len(labels))
        results[name] = {"examples": examples, "accuracy": float(np.mean(list(groups.values()))), "groups": groups}
    return results


def _attack_settings(config) -> dict:
    return {"attacks": list(config.attacks), "epsilons": list(config.epsilons), "steps": config.pgd_steps,
            "step_size": config.pgd_step_size, "random_start": config.random_start,
            "examples": config.attack_examples}


@register("adversarial", settings=_attack_settings, options=AttackOptions,
          summary="accuracy under FGSM and PGD (L-infinity, epsilon in pixel levels out of 255)")
def attack_accuracy(model, data, config) -> dict:
    """Accuracy on the first ``attack_examples`` test images under each attack and epsilon."""
    images, labels = data.arrays("test", config.attack_examples)
    bounds = (-data.mean, 1.0 - data.mean)  # valid pixels [0, 1], in the model's input scale
    table = {}
    for method in config.attacks:
        table[method] = {}
        for levels in config.epsilons:
            step = None if config.pgd_step_size is None else config.pgd_step_size / 255.0
            attacked = adversarial.attack(model, images, labels, method, levels / 255.0, steps=config.pgd_steps,
                                          step_size=step, random_start=config.random_start, bounds=bounds)
            table[method][str(levels)] = adversarial.accuracy(model, attacked, labels)
    return {"examples": int(len(labels)), "clean": adversarial.accuracy(model, images, labels), "accuracy": table}


@register("cka", settings=lambda config: {"examples": config.cka_examples}, pairwise=True, options=CkaOptions,
          summary="linear and debiased CKA between dense and ticket: penultimate features and each stage's output")
def cka_similarity(model, data, config, reference) -> dict:
    """CKA between ``reference`` (the dense network) and ``model`` on the first ``cka_examples`` test images."""
    images, _ = data.arrays("test", config.cka_examples)
    return {"examples": int(len(images)), "views": cka.compare(reference, model, images)}
