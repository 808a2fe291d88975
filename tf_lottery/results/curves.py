"""Accuracy against wall-clock time, and the time a ticket needs to reach its dense network.

The paper measures a ticket's training speed-up as the ratio of whole training times (its
Table 4). A ticket that trains faster per epoch may still need more epochs to get as good;
what a user saves is the time to a given accuracy. Every epoch of every training records its
validation accuracy (``history_<model>.csv``) and its wall seconds (``progress.json``), so a
run's *learning curve* is ``[(seconds since training started, validation accuracy)]``, one
point at the end of each epoch:

* seconds = the set-up before the first epoch (building the pipeline, tracing) plus the
  epochs' wall seconds so far, the same clock as the training time of Table 4;
* validation accuracy on the run's ``--val_size`` validation examples (held out of training,
  the same examples for the dense network and every ticket of a seed).

:func:`seconds_to_reach` is the time at the end of the first epoch whose validation accuracy
reaches a target: epoch granularity, not interpolated, so it is an upper bound by less than
one epoch. The target of a ticket is its dense network's *final* validation accuracy.

Example:
    >>> curve = [[10.0, 0.70], [19.0, 0.81], [28.0, 0.85]]
    >>> seconds_to_reach(curve, 0.80), seconds_to_reach(curve, 0.90)
    (19.0, None)
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import List, Optional, Sequence

from tf_lottery import training

Curve = List[List[float]]  # [[seconds, validation accuracy], ...]: JSON round-trips it unchanged


def learning_curve(history: dict, epoch_seconds: Sequence[float], train_seconds: float) -> Optional[Curve]:
    """The curve of one training.

    Args:
        history: ``{column: [values]}`` of the history CSV (:func:`tf_lottery.training.read_history`).
        epoch_seconds: Wall seconds of each finished epoch (``Timing.epoch_seconds``).
        train_seconds: The training's whole wall time (``Timing.train_seconds``): epochs and set-up.

    Returns:
        ``[[seconds, validation accuracy], ...]`` per epoch, or None without validation accuracy or
        when the history and the timing disagree on the number of epochs.

    Example:
        >>> learning_curve({"val_accuracy": [0.5, 0.6]}, [10.0, 9.0], 21.0)
        [[12.0, 0.5], [21.0, 0.6]]
    """
    accuracy = history.get("val_accuracy")
    if not accuracy or len(accuracy) != len(epoch_seconds):
        return None
    elapsed = max(train_seconds - sum(epoch_seconds), 0.0)  # set-up before the first epoch
    curve = []
    for seconds, value in zip(epoch_seconds, accuracy):
        elapsed += seconds
        curve.append([round(elapsed, 3), float(value)])
    return curve


def read_history(folder: Optional[str], name: str) -> dict:
    """The history CSV of model ``name`` in run ``folder``.

    Args:
        folder: A run folder, or None.
        name: The model's name in the run (``"dense"``, ``"ticket"``).

    Returns:
        ``{column: [values]}``; ``{}`` without a folder or a history.

    Example:
        >>> read_history("runs/dense-6b7b7f746cfd", "dense")["val_accuracy"][-1]
    """
    return training.read_history(os.path.join(folder, f"history_{name}.csv")) if folder else {}


def read_curve(folder: Optional[str], name: str, timing) -> Optional[Curve]:
    """The curve of model ``name`` trained in run ``folder``, from its history CSV and its timing.

    Args:
        folder: A run folder, or None.
        name: The model's name in the run (``"dense"``, ``"ticket"``).
        timing: Its :class:`tf_lottery.results.records.Timing`.

    Returns:
        ``[[seconds, validation accuracy], ...]`` (:func:`learning_curve`), or None when there is none.

    Example:
        >>> read_curve(record.run_folder, "ticket", record.ticket.training.timing)[-1]
    """
    if not folder:
        return None
    return learning_curve(read_history(folder, name), timing.epoch_seconds, timing.train_seconds)


def final_accuracy(curve: Optional[Curve]) -> Optional[float]:
    """The validation accuracy after the last epoch.

    Args:
        curve: ``[[seconds, validation accuracy], ...]``, or None.

    Returns:
        The last epoch's accuracy; None without a curve.

    Example:
        >>> final_accuracy([[12.0, 0.5], [21.0, 0.6]])
        0.6
    """
    return curve[-1][1] if curve else None


def seconds_to_reach(curve: Optional[Curve], target: Optional[float]) -> Optional[float]:
    """Seconds at the end of the first epoch whose validation accuracy is at least ``target``.

    Args:
        curve: ``[[seconds, validation accuracy], ...]``, or None.
        target: The accuracy to reach, or None.

    Returns:
        Those seconds; None when it never gets there (or without a curve or a target).

    Example:
        >>> seconds_to_reach([[12.0, 0.5], [21.0, 0.6]], 0.55)
        21.0
    """
    if not curve or target is None:
        return None
    for seconds, value in curve:
        if value >= target:
            return seconds
    return None


#: The recipe check's thresholds (docs: the paper's tables, "Twin recipes"): a training has flattened when its last
#: epoch adds at most FLAT_PP to the training accuracy; the validation accuracy has collapsed when an
#: epoch after the warm-up falls more than COLLAPSE_PP below the best epoch before it, or more than
#: GAP_PP below that epoch's training accuracy (batch-norm statistics that lag the weights); the
#: dense test accuracies of the seeds agree when they span at most BAND_PP.
FLAT_PP, COLLAPSE_PP, GAP_PP, BAND_PP = 1.0, 10.0, 15.0, 1.0


PLATEAU_PP = 0.2
"""A training has plateaued when its held-out accuracy moves by at most this much (pp) over the last
:data:`PLATEAU_FRACTION` of its epochs."""
#: The last share of a training's epochs over which a plateau is looked for (see :data:`PLATEAU_PP`).
PLATEAU_FRACTION = 0.2


@dataclasses.dataclass(frozen=True)
class Plateau:
    """How the held-out accuracy moves over the last part of a training.

    Attributes:
        epochs: The epochs of the window (1-based), those ending after ``1 - fraction`` of the training.
        range_pp: Highest minus lowest held-out accuracy in the window (pp).
        change_pp: Last minus first epoch of the window (pp): positive while still rising.
        state: ``"plateaued"`` (range at most :data:`PLATEAU_PP`), ``"still rising"`` (the last epoch
            is above the window's first by more), ``"falling"`` (below it by more: past its peak) or
            ``"moving"`` (up and down by more, ending near where it began).

    Example:
        >>> plateau([[1, 0.90], [2, 0.93], [3, 0.931], [4, 0.932], [5, 0.9315]]).epochs
        (4, 5)
    """

    epochs: tuple
    range_pp: float
    change_pp: float
    state: str

    def to_dict(self) -> dict:
        """JSON-ready (the epochs as a list)."""
        return {**dataclasses.asdict(self), "epochs": list(self.epochs)}


def plateau(curve: Optional[Curve], fraction: float = PLATEAU_FRACTION, tolerance_pp: float = PLATEAU_PP
            ) -> Optional[Plateau]:
    """Whether a learning curve has plateaued: its held-out accuracy over the epochs that end in the
    last ``fraction`` of the training (at least 2 epochs) moves by at most ``tolerance_pp``.

    Args:
        curve: ``[[seconds, validation accuracy], ...]`` per epoch.
        fraction: The last part of the training looked at (0.2: the last 20 % of its epochs).
        tolerance_pp: The largest move allowed.

    Returns:
        A :class:`Plateau`, or None for fewer than 2 epochs.

    Example:
        >>> plateau([[1, 0.90], [2, 0.93], [3, 0.931], [4, 0.932], [5, 0.9315]]).state
        'plateaued'
        >>> plateau([[1, 0.90], [2, 0.92], [3, 0.93], [4, 0.936], [5, 0.933]]).state  # epochs 4, 5
        'falling'
    """
    if not curve or len(curve) < 2:
        return None
    count = len(curve)
    first = min(count - 2, int(math.floor((1 - fraction) * count + 1e-9)))
    window = [100.0 * v for _, v in curve[first:]]
    spread, change = max(window) - min(window), window[-1] - window[0]
    if spread <= tolerance_pp + 1e-9:
        state = "plateaued"
    elif change > tolerance_pp:
        state = "still rising"
    elif change < -tolerance_pp:
        state = "falling"
    else:
        state = "moving"
    return Plateau(tuple(range(first + 1, count + 1)), round(spread, 6), round(change, 6), state)


def last_epoch_gain(train_accuracy: Optional[Sequence[float]]) -> Optional[float]:
    """Percentage points the last epoch added to the training accuracy.

    Args:
        train_accuracy: The training accuracy of each epoch, or None.

    Returns:
        Last minus second-to-last, in pp; None for fewer than 2 epochs.

    Example:
        >>> round(last_epoch_gain([0.80, 0.90, 0.905]), 2)
        0.5
    """
    if not train_accuracy or len(train_accuracy) < 2:
        return None
    return 100.0 * (train_accuracy[-1] - train_accuracy[-2])


def worst_drop(curve: Optional[Curve], after_epochs: int = 0) -> Optional[float]:
    """The largest fall (pp) of the validation accuracy below the best earlier epoch, counting only
    epochs after the first ``after_epochs`` (the warm-up); 0 when it never falls.

    Args:
        curve: ``[[seconds, validation accuracy], ...]``, or None.
        after_epochs: Epochs left out at the start.

    Returns:
        The fall in pp; None without a curve.

    Example:
        >>> worst_drop([(1, 0.2), (2, 0.8), (3, 0.5), (4, 0.85)], after_epochs=1)
        30.0
    """
    if not curve:
        return None
    values = [v for _, v in curve]
    drops = [max(values[:i]) - values[i] for i in range(max(after_epochs, 1), len(values))]
    return round(100.0 * max([0.0, *drops]), 6)


def worst_gap(curve: Optional[Curve], train_accuracy: Optional[Sequence[float]], after_epochs: int = 0
              ) -> Optional[float]:
    """The largest shortfall (pp) of the validation accuracy below the same epoch's training
    accuracy, after the first ``after_epochs`` epochs; 0 when validation is never below.

    Args:
        curve: ``[[seconds, validation accuracy], ...]``, or None.
        train_accuracy: The training accuracy of each epoch, or None.
        after_epochs: Epochs left out at the start.

    Returns:
        The shortfall in pp; None without both, or when their lengths differ.

    Example:
        >>> worst_gap([(1, 0.09), (2, 0.42), (3, 0.80)], [0.56, 0.78, 0.85], after_epochs=1)
        36.0
    """
    if not curve or not train_accuracy or len(train_accuracy) != len(curve):
        return None
    gaps = [a - v for a, (_, v) in list(zip(train_accuracy, curve))[after_epochs:]]
    return round(100.0 * max([0.0, *gaps]), 6)
