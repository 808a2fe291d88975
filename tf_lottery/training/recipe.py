"""The training recipe: optimizer, schedule, weight decay and length, as one frozen record.

Default recipe: the paper group's CIFAR recipe (the README of tuscasp/CKA-Layer-Pruning and
arturjordao/DepthWisePruning's main.py; the paper itself gives none): SGD, learning rate 0.01,
momentum 0.9, Nesterov, batch 128, 200 epochs, the learning rate divided by 10 at epochs 100
and 150; weight decay is the L2 1e-4 on every conv kernel that the model carries. Lengths are
strings, ``"160ep"`` (epochs) or ``"500it"`` (optimizer steps), as in open_lth.

Example:
    >>> Recipe(length="3ep", batch_size=64).plan(steps_per_epoch=100)
    (3, 100)
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import re
from typing import Tuple

import keras

from tf_lottery.core import arguments
from tf_lottery.training.schedules import warmup_factor, warmup_schedule

_LENGTH = re.compile(r"^\s*([0-9]+)\s*(ep|it)\s*$", re.ASCII)  # ASCII digits only: "２ep" is refused
#: The warm-up length that means none.
NO_WARMUP = "0ep"

OPTIMIZERS = ("sgd", "adamw")
"""``sgd``: SGD with (Nesterov) momentum, the paper group's CNN recipe; ``adamw``: AdamW with a decoupled
weight decay of :data:`ADAMW_WEIGHT_DECAY` (GPT-2's and nanoGPT's), the recipe language models train by."""
ADAMW_WEIGHT_DECAY = 0.01

#: The longest lengths accepted: far beyond any published recipe (CIFAR's 200ep, ImageNet's 90ep), so
#: that a typo such as 99999999999ep is refused at once instead of planning a training that never ends.
MAX_LENGTH = {"ep": 100_000, "it": 1_000_000_000}


def parse_length(text: str, allow_zero: bool = False) -> Tuple[int, str]:
    """``"160ep"`` -> (160, "ep"); ``"500it"`` -> (500, "it"); ``" 0160 ep"`` -> (160, "ep").

    Args:
        text: The length: ASCII digits, then ``ep`` or ``it``.
        allow_zero: Accept a count of 0 (a warm-up of ``"0ep"`` is none).

    Returns:
        ``(count, unit)``, the unit ``"ep"`` or ``"it"``.

    Raises:
        ValueError: for anything else, naming the accepted forms, or a count past :data:`MAX_LENGTH`.

    Example:
        >>> parse_length(" 0160 ep"), parse_length("500it")
        ((160, 'ep'), (500, 'it'))
    """
    match = _LENGTH.match(str(text))
    if not match or int(match.group(1)) < (0 if allow_zero else 1):
        kind = "a count >= 0" if allow_zero else "a positive count"
        raise ValueError(f"a length is {kind} with 'ep' (epochs) or 'it' (steps), e.g. 160ep or 500it; got {text!r}")
    count, unit = int(match.group(1)), match.group(2)
    if count > MAX_LENGTH[unit]:
        raise ValueError(f"a length is at most {MAX_LENGTH[unit]:,}{unit} (far past any published recipe: a training "
                         f"this long never ends); got {text!r}")
    return count, unit


def canonical_length(text: str, allow_zero: bool = False) -> str:
    """The one spelling of a length that names runs: ``"02ep"``, ``" 2 ep"`` -> ``"2ep"``.

    Raises:
        ValueError: as :func:`parse_length`.
    """
    count, unit = parse_length(text, allow_zero)
    return f"{count}{unit}"


def canonical_drops(drops, length: str, inside: bool = False) -> tuple:
    """Learning-rate drops in their one spelling, sorted (steps after epochs), each once.

    Args:
        drops: The drops' lengths.
        length: The training's length.
        inside: Also refuse a drop at or past the end of training, in the length's unit (the config
            does; a :class:`Recipe` keeps its 200-epoch drops when given a shorter length).

    Raises:
        ValueError: for a bad length, a drop given twice, or (``inside``) a drop that never takes effect.
    """
    parsed = sorted({parse_length(d) for d in drops}, key=lambda p: (p[1], p[0]))
    if len(parsed) != len(tuple(drops)):
        raise ValueError(f"lr_drops lists a drop twice; got {','.join(map(str, drops))}: each drop multiplies the "
                         "rate once, so give a drop once (drops at the same point would multiply it twice)")
    total, unit = parse_length(length)
    late = [f"{c}{u}" for c, u in parsed if inside and u == unit and c >= total]
    if late:
        raise ValueError(f"lr_drops must lie inside the training ({length}); got {late[0]}, which never takes effect: "
                         f"give drops before {total}{unit} (--lr_drops), or none (--lr_drops=)")
    return tuple(f"{c}{u}" for c, u in parsed)


def stretch_drops(drops, length: str, new_length: str) -> tuple:
    """The learning-rate drops of a recipe of ``length`` moved to a training of ``new_length``, each
    at the same fraction of the training: a sweep's training-length axis (``--sweep_lengths``).

    Args:
        drops: The drops, in the unit of ``length``.
        length: The recipe's training length.
        new_length: The length to stretch (or shrink) it to, in the same unit.

    Returns:
        The drops in their one spelling.

    Raises:
        ValueError: for lengths of two units, or a drop that would not land on a whole epoch
            (or step), naming it.

    Example:
        >>> stretch_drops(("8ep", "12ep"), "16ep", "4ep")
        ('2ep', '3ep')
    """
    total, unit = parse_length(length)
    new_total, new_unit = parse_length(new_length)
    moved = []
    for drop in drops:
        count, drop_unit = parse_length(drop)
        if unit != new_unit or drop_unit != unit:
            raise ValueError(f"a training-length axis keeps one unit: --length={length}, --lr_drops drop {drop} and "
                             f"the length {new_length} must all be in epochs or all in steps")
        if (count * new_total) % total:
            raise ValueError(f"the learning-rate drop at {drop} of {length} falls at {count * new_total / total:g}"
                             f"{unit} of {new_length}, not a whole {'epoch' if unit == 'ep' else 'step'}: choose "
                             f"lengths that keep every drop whole (multiples of {total // math.gcd(total, count)}"
                             f"{unit} for this drop)")
        moved.append(f"{count * new_total // total}{unit}")
    return canonical_drops(moved, new_length, inside=True)


def to_steps(text: str, steps_per_epoch: int, allow_zero: bool = False) -> int:
    """Optimizer steps of a length string.

    Args:
        text: A length, ``"160ep"`` or ``"500it"``.
        steps_per_epoch: Optimizer steps per epoch.
        allow_zero: Accept a count of 0.

    Returns:
        The steps.

    Raises:
        ValueError: for a malformed length (:func:`parse_length`).

    Example:
        >>> to_steps("2ep", 390), to_steps("500it", 390)
        (780, 500)
    """
    count, unit = parse_length(text, allow_zero)
    return count * steps_per_epoch if unit == "ep" else count


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How to train.

    Attributes:
        length: "200ep" or "N it".
        batch_size: Images per step.
        learning_rate: Initial learning rate.
        momentum: SGD momentum.
        nesterov: Nesterov momentum.
        lr_drops: Lengths at which the learning rate is multiplied by ``lr_drop_factor``.
        lr_drop_factor: The factor (0.1 divides by 10).
        warmup: Length of a linear learning-rate warm-up at the start (``"0ep"``: none). The
            rate rises from ``warmup_start x learning_rate`` to ``learning_rate`` over it
            (Goyal et al. 2017; He et al. 2016 warmed up their 110-layer CIFAR ResNet with a
            constant 0.01 instead). Counted inside ``length``; drops still apply at their lengths.
        warmup_start: The warm-up's starting factor in [0, 1) (a rewound recipe that resumes
            inside the warm-up starts where the warm-up stood).
        optimizer: One of :data:`OPTIMIZERS` (``adamw`` ignores ``momentum`` and ``nesterov``).

    Raises:
        ValueError: for a malformed length, drop or warm-up, a warm-up not shorter than the training, or
            a number out of its range (each named with the value).

    Example:
        >>> Recipe(length="3ep", lr_drops=("2ep",)).plan(steps_per_epoch=100)
        (3, 100)
    """

    length: str = "200ep"
    batch_size: int = 128
    learning_rate: float = 0.01
    momentum: float = 0.9
    nesterov: bool = True
    lr_drops: tuple = ("100ep", "150ep")
    lr_drop_factor: float = 0.1
    warmup: str = NO_WARMUP
    warmup_start: float = 0.0
    optimizer: str = "sgd"

    def __post_init__(self):
        for name in ("learning_rate", "momentum", "lr_drop_factor", "warmup_start"):  # the type here, ranges below
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                arguments.number(name, value)
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}; got {self.optimizer!r}")
        object.__setattr__(self, "length", canonical_length(self.length))
        object.__setattr__(self, "lr_drops", canonical_drops(self.lr_drops, self.length))
        object.__setattr__(self, "warmup", canonical_length(self.warmup, allow_zero=True))
        warmup, warmup_unit = parse_length(self.warmup, allow_zero=True)
        length, length_unit = parse_length(self.length)
        if warmup and warmup_unit == length_unit and warmup >= length:
            raise ValueError(f"the warm-up ({self.warmup}) must be shorter than the training ({self.length})")
        if not (math.isfinite(self.warmup_start) and 0 <= self.warmup_start < 1):
            raise ValueError(f"warmup_start must be in [0, 1); got {self.warmup_start!r}")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1; got {self.batch_size!r}")
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ValueError(f"learning_rate must be a finite number > 0; got {self.learning_rate!r}")
        if not (math.isfinite(self.momentum) and 0 <= self.momentum < 1):
            raise ValueError(f"momentum must be in [0, 1); got {self.momentum!r}")
        if not (math.isfinite(self.lr_drop_factor) and self.lr_drop_factor > 0):
            raise ValueError(f"lr_drop_factor must be a finite number > 0; got {self.lr_drop_factor!r}")
        object.__setattr__(self, "lr_drops", tuple(self.lr_drops))

    def schedule_points(self, steps_per_epoch: int) -> Tuple[list, list]:
        """``(boundaries, values)`` of the piecewise-constant learning rate per optimizer step."""
        # PiecewiseConstantDecay keeps the old value at step == boundary; the optimizer asks
        # with the count of steps done, so a drop "at epoch 100" starts at step 100 * spe.
        boundaries = sorted(to_steps(d, steps_per_epoch) - 1 for d in self.lr_drops)
        return boundaries, [self.learning_rate * self.lr_drop_factor**i for i in range(len(boundaries) + 1)]

    def warmup_steps(self, steps_per_epoch: int) -> int:
        """Optimizer steps of the warm-up (0: none)."""
        return to_steps(self.warmup, steps_per_epoch, allow_zero=True)

    def schedule(self, steps_per_epoch: int, library=None):
        """The learning rate per optimizer step: piecewise constant, after the warm-up if any.

        Args:
            steps_per_epoch: Optimizer steps in one epoch.
            library: ``keras`` (default) or ``tf_keras``: whose schedule classes to use.
        """
        library = library or keras
        boundaries, values = self.schedule_points(steps_per_epoch)
        after = (library.optimizers.schedules.PiecewiseConstantDecay(boundaries, values) if boundaries
                 else self.learning_rate)
        warmup_steps = self.warmup_steps(steps_per_epoch)
        if warmup_steps == 0:
            return after
        return warmup_schedule(after, warmup_steps, self.warmup_start, library=library)

    def learning_rate_at(self, step: int, steps_per_epoch: int) -> float:
        """The learning rate of optimizer step ``step`` (0-based), as a Python number."""
        boundaries, values = self.schedule_points(steps_per_epoch)
        rate = values[sum(step > b for b in boundaries)]
        return rate * warmup_factor(step, self.warmup_steps(steps_per_epoch), self.warmup_start)

    def make_optimizer(self, steps_per_epoch: int) -> keras.optimizers.Optimizer:
        """The recipe's optimizer on its schedule."""
        if self.optimizer == "adamw":
            return keras.optimizers.AdamW(self.schedule(steps_per_epoch), weight_decay=ADAMW_WEIGHT_DECAY)
        return keras.optimizers.SGD(self.schedule(steps_per_epoch), momentum=self.momentum, nesterov=self.nesterov)

    def resumed_at(self, epoch: int) -> "Recipe":
        """The rest of this recipe from epoch ``epoch`` on: its length less ``epoch`` epochs and
        the learning-rate schedule as it stands at that epoch (drops already passed applied, a
        warm-up under way continued from where it stood).

        Rewinding to θ0 (``epoch=0``) needs no epoch arithmetic: it is the whole recipe, lengths in
        steps included.

        Raises:
            ValueError: if a length is given in steps (for ``epoch`` > 0), or ``epoch`` is not inside
                the length.
        """
        if epoch == 0:
            return self
        lengths = [parse_length(self.length)] + [parse_length(d) for d in self.lr_drops]
        warmup, warmup_unit = parse_length(self.warmup, allow_zero=True)
        if any(unit != "ep" for _, unit in lengths) or (warmup and warmup_unit != "ep"):
            raise ValueError(f"resuming at an epoch needs lengths in epochs; got {self.length}, drops "
                             f"{self.lr_drops} and warm-up {self.warmup}")
        total = lengths[0][0]
        if not 0 <= epoch < total:
            raise ValueError(f"the rewind epoch must be in [0, {total - 1}] for a {self.length} recipe; got {epoch}")
        drops = [count for count, _ in lengths[1:]]
        passed = sum(d <= epoch for d in drops)
        left = max(warmup - epoch, 0)
        return dataclasses.replace(
            self,
            length=f"{total - epoch}ep",
            learning_rate=self.learning_rate * self.lr_drop_factor**passed,
            lr_drops=tuple(f"{d - epoch}ep" for d in drops if d > epoch),
            warmup=f"{left}ep",
            # The same line continued: the factor it had reached after `epoch` of `warmup` epochs.
            warmup_start=self.warmup_start + (1 - self.warmup_start) * epoch / warmup if left else 0.0,
        )

    def resumed_at_step(self, step: int, steps_per_epoch: int) -> "Recipe":
        """The rest of this recipe after ``step`` optimizer steps, every length then in steps.

        The step twin of :meth:`resumed_at` (open_lth's ``rewinding_steps``; Frankle et al. 2020
        rewind to an iteration k): the length less ``step`` steps, the drops already passed applied
        to the rate, the others moved ``step`` steps earlier, a warm-up under way continued from
        where it stood. The learning rate of step s of the result is that of step ``step + s`` of
        this recipe. Rewinding to step 0 is the whole recipe.

        Args:
            step: Optimizer steps done, in [0, total steps).
            steps_per_epoch: Optimizer steps in one epoch (lengths in epochs count that many each).

        Raises:
            ValueError: if ``step`` is not inside the length.

        Example:
            >>> rest = Recipe("3ep", lr_drops=("2ep",)).resumed_at_step(150, steps_per_epoch=100)
            >>> rest.length, rest.lr_drops
            ('150it', ('50it',))
        """
        if isinstance(step, bool) or not isinstance(step, int):
            raise TypeError(f"the rewind step must be an integer; got {step!r}")
        if step == 0:
            return self
        total = to_steps(self.length, steps_per_epoch)
        if not 0 <= step < total:
            raise ValueError(f"the rewind step must be in [0, {total - 1}] for a {self.length} recipe of "
                             f"{total} steps ({steps_per_epoch} per epoch); got {step}")
        drops = [to_steps(d, steps_per_epoch) for d in self.lr_drops]
        warmup = self.warmup_steps(steps_per_epoch)
        left = max(warmup - step, 0)
        return dataclasses.replace(
            self,
            length=f"{total - step}it",
            learning_rate=self.learning_rate * self.lr_drop_factor**sum(d <= step for d in drops),
            lr_drops=tuple(f"{d - step}it" for d in drops if d > step),
            warmup=f"{left}it" if left else NO_WARMUP,
            warmup_start=self.warmup_start + (1 - self.warmup_start) * step / warmup if left else 0.0,
        )

    def total_steps(self, steps_per_epoch: int) -> int:
        """Optimizer steps of the whole recipe."""
        return to_steps(self.length, steps_per_epoch)

    def plan(self, steps_per_epoch: int) -> Tuple[int, int]:
        """``(epochs, steps per epoch)`` for ``fit``: whole epochs, or for an 'it' length epochs
        of at most one pass over the data, the last one cut short where the length ends
        (:class:`tf_lottery.training.loop.StopAtStep`): 500it at 390 steps an epoch is 390 + 110."""
        total = self.total_steps(steps_per_epoch)
        per_epoch = min(steps_per_epoch, total)
        return math.ceil(total / per_epoch), per_epoch
