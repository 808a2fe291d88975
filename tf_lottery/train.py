"""The training recipe and its callbacks.

Default recipe: the paper group's CIFAR recipe (the README of tuscasp/CKA-Layer-Pruning and
arturjordao/DepthWisePruning's main.py; the paper itself gives none): SGD, learning rate 0.01, momentum 0.9, Nesterov, batch 128, 200 epochs, the
learning rate divided by 10 at epochs 100 and 150; weight decay is the L2 1e-4 on every
conv kernel that the model carries. Lengths are strings, ``"160ep"`` (epochs) or
``"500it"`` (optimizer steps), as in open_lth.

Callbacks: a progress bar (``verbose=1`` at a terminal, one line per epoch in logs),
optional TensorBoard, ``TerminateOnNaN`` turned into :class:`TrainingDiverged`, and the
crash-safe epoch checkpoint of :mod:`tf_lottery.resume`, which also times every epoch and
writes the history CSV (a run killed midway resumes where it stopped when started again).
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
import re
import sys
import time
from typing import Optional, Tuple

import keras
import numpy as np

from tf_lottery import distribute
from tf_lottery.models.heads import outputs_probabilities
from tf_lottery.resume import EpochCheckpoint

_LENGTH = re.compile(r"^\s*(\d+)\s*(ep|it)\s*$")
NO_WARMUP = "0ep"


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


def parse_length(text: str, allow_zero: bool = False) -> Tuple[int, str]:
    """``"160ep"`` -> (160, "ep"); ``"500it"`` -> (500, "it").

    Args:
        text: The length.
        allow_zero: Accept a count of 0 (a warm-up of ``"0ep"`` is none).

    Raises:
        ValueError: for anything else, naming the accepted forms.
    """
    match = _LENGTH.match(str(text))
    if not match or int(match.group(1)) < (0 if allow_zero else 1):
        kind = "a count >= 0" if allow_zero else "a positive count"
        raise ValueError(f"a length is {kind} with 'ep' (epochs) or 'it' (steps), e.g. 160ep or 500it; got {text!r}")
    return int(match.group(1)), match.group(2)


def to_steps(text: str, steps_per_epoch: int, allow_zero: bool = False) -> int:
    """Optimizer steps of a length string."""
    count, unit = parse_length(text, allow_zero)
    return count * steps_per_epoch if unit == "ep" else count


def warmup_factor(step, warmup_steps: int, start: float):
    """The linear warm-up's factor on the learning rate after ``step`` optimizer steps.

    The factor rises linearly from ``start`` (the step before the first) to 1 after
    ``warmup_steps`` steps (Goyal et al. 2017, "gradual warm-up"), so the first step already
    moves at ``start + (1 - start) / warmup_steps``; it is 1 from then on. Works on Python
    numbers and on tensors (the step of a Keras or tf_keras optimizer).

    Example:
        >>> [round(warmup_factor(s, 4, 0.0), 2) for s in range(6)]
        [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    """
    if warmup_steps <= 0:
        return 1.0
    ramp = start + (1.0 - start) * (step + 1) / warmup_steps
    if isinstance(step, (int, float)):
        return min(1.0, ramp)
    import tensorflow as tf

    return tf.minimum(tf.cast(1.0, ramp.dtype), ramp)


_WARMUP_CLASSES = {}


def warmup_class(library=None):
    """The linear warm-up schedule class of ``library`` (``keras``, the default, or ``tf_keras``).

    A ``LearningRateSchedule`` of that library whose rate at a step is ``after(step)`` times
    :func:`warmup_factor`. It is registered with the library's serialization (package
    ``tf_lottery``) and its config holds the whole schedule, ``after`` included, so a model
    compiled with it can be cloned (``clone_model`` recompiles from the compile config), saved
    as ``.keras`` and loaded again once :mod:`tf_lottery.train` is imported.

    Example:
        >>> Warmup = warmup_class()
        >>> schedule = Warmup(after=0.1, warmup_steps=4)
        >>> Warmup.from_config(schedule.get_config()).get_config() == schedule.get_config()
        True
    """
    library = library or keras
    if library.__name__ not in _WARMUP_CLASSES:
        _WARMUP_CLASSES[library.__name__] = _define_warmup_class(library)
    return _WARMUP_CLASSES[library.__name__]


def _define_warmup_class(library):
    import tensorflow as tf

    schedules = library.optimizers.schedules

    @library.saving.register_keras_serializable(package="tf_lottery")
    class LinearWarmup(schedules.LearningRateSchedule):
        def __init__(self, after, warmup_steps: int, start: float = 0.0):
            self.after = after
            self.warmup_steps = int(warmup_steps)
            self.start = float(start)

        def __call__(self, step):
            step = tf.cast(step, "float32")
            rate = self.after(step) if callable(self.after) else tf.constant(self.after, "float32")
            return tf.cast(rate, "float32") * warmup_factor(step, self.warmup_steps, self.start)

        def get_config(self):
            after = schedules.serialize(self.after) if callable(self.after) else float(self.after)
            return {"after": after, "warmup_steps": self.warmup_steps, "start": self.start}

        @classmethod
        def from_config(cls, config):
            config = dict(config)
            if isinstance(config["after"], dict):
                config["after"] = schedules.deserialize(config["after"])
            return cls(**config)

    return LinearWarmup


#: Keras 3's warm-up schedule, registered on import so that ``.keras`` files load in a fresh process.
LinearWarmup = warmup_class(keras)


def warmup_schedule(after, warmup_steps: int, start: float, library=None):
    """``after`` (a number or a schedule of ``library``) under a linear warm-up of
    ``warmup_steps`` steps from ``start`` (see :func:`warmup_class`, :func:`warmup_factor`).

    Args:
        after: The learning rate without warm-up: a number or a ``LearningRateSchedule``.
        warmup_steps: Optimizer steps of the warm-up.
        start: The warm-up's starting factor in [0, 1).
        library: ``keras`` (default) or ``tf_keras``.

    Example:
        >>> schedule = warmup_schedule(0.1, warmup_steps=4, start=0.0)
        >>> round(float(schedule(1)), 3)
        0.05
    """
    return warmup_class(library)(after, warmup_steps, start)


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

    def __post_init__(self):
        parse_length(self.length)
        for drop in self.lr_drops:
            parse_length(drop)
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

    def optimizer(self, steps_per_epoch: int) -> keras.optimizers.Optimizer:
        return keras.optimizers.SGD(self.schedule(steps_per_epoch), momentum=self.momentum, nesterov=self.nesterov)

    def resumed_at(self, epoch: int) -> "Recipe":
        """The rest of this recipe from epoch ``epoch`` on: its length less ``epoch`` epochs and
        the learning-rate schedule as it stands at that epoch (drops already passed applied, a
        warm-up under way continued from where it stood).

        Raises:
            ValueError: if a length is given in steps, or ``epoch`` is not inside the length.
        """
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

    def plan(self, steps_per_epoch: int) -> Tuple[int, int]:
        """``(epochs, steps per epoch)`` for ``fit``: whole epochs, or for an 'it' length
        epochs of at most one pass over the data whose steps add up to the length."""
        total = to_steps(self.length, steps_per_epoch)
        per_epoch = min(steps_per_epoch, total)
        return math.ceil(total / per_epoch), per_epoch


class SaveWeightsAt(keras.callbacks.Callback):
    """Saves the weights after the given epochs (θ_i: the weights after i epochs).

    Args:
        epochs: Epoch counts i >= 1 (θ0 is saved before training by the caller).
        save: ``save(model, i)``, e.g. writing ``theta_{i}.weights.h5`` atomically.
    """

    def __init__(self, epochs, save):
        super().__init__()
        self.epochs, self.save = set(epochs), save

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 in self.epochs:
            self.save(self.model, epoch + 1)


def make_deterministic() -> None:
    """Same command, same weights: TensorFlow op determinism and one thread per op and between ops.

    Call it before TensorFlow runs its first op (the command line does, for ``--deterministic``).
    Seeds are set per run (``keras.utils.set_random_seed``) as always.

    Raises:
        RuntimeError: if TensorFlow has already started and its threads cannot change.
    """
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()
    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError as error:
        raise RuntimeError(f"--deterministic must be set before TensorFlow starts: {error}") from None


def compile_model(model: keras.Model, recipe: Recipe, steps_per_epoch: int) -> None:
    """Compiles with the recipe's optimizer, cross-entropy on logits (or probabilities) and accuracy."""
    model.compile(
        optimizer=recipe.optimizer(steps_per_epoch),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=not outputs_probabilities(model)),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        jit_compile=distribute.current().jit_compile,
    )
    distribute.prepare_fit(model)


def read_history(path: str) -> dict:
    """The CSV history as ``{column: [values]}`` (epochs in order, resumed runs included)."""
    if not os.path.exists(path):
        return {}
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {key: [float(r[key]) for r in rows] for key in (rows[0] if rows else {})}


def check_fits(recipe: Recipe, train_size: int) -> int:
    """Steps per epoch of ``recipe`` on a training split of ``train_size`` examples (give the
    global recipe, :meth:`tf_lottery.distribute.Execution.global_recipe`, under several replicas).

    Raises:
        ValueError: if the training split is smaller than one batch.
    """
    steps_per_epoch = train_size // recipe.batch_size
    if steps_per_epoch < 1:
        replicas = distribute.current().replicas
        batch = (f"--batch_size={recipe.batch_size}" if replicas == 1 else
                 f"{recipe.batch_size} = --batch_size={recipe.batch_size // replicas} x {replicas} replicas")
        raise ValueError(f"the training split ({train_size} examples) is smaller than one batch ({batch}); "
                         "lower --batch_size or raise --train_size")
    return steps_per_epoch


def fit(model: keras.Model, data, recipe: Recipe, workdir: str, name: str,
        verbose: Optional[int] = None, tensorboard: bool = False, extra_callbacks=()) -> dict:
    """Trains ``model`` by ``recipe`` on ``data`` (a :class:`~tf_lottery.data.PreparedData`).

    Files in ``workdir``: ``history_{name}.csv`` (each finished epoch once) and
    ``resume_{name}/``, the crash-safe training state (:mod:`tf_lottery.resume`): a rerun
    after a kill resumes at the last finished epoch. The state is left in place; the
    caller discards it (:func:`tf_lottery.resume.discard`) once the final weights are saved.

    Under several replicas (:mod:`tf_lottery.distribute`) the recipe's batch is per replica:
    the run trains on the global batch with the learning rate scaled by ``--lr_scaling``.

    Args:
        model: An uncompiled model.
        data: Prepared data; its "val" split, when not empty, is evaluated every epoch.
        recipe: The recipe.
        workdir: Run folder.
        name: "dense" or "ticket": names the files.
        verbose: Keras verbosity (default: progress bar at a terminal, else a line per epoch).
        tensorboard: Also write TensorBoard logs to ``workdir/tensorboard/{name}``.
        extra_callbacks: More Keras callbacks; they run before the epoch's checkpoint, so
            what they save at the end of an epoch is there whenever the epoch counts as done.

    Returns:
        ``{"history": {...}, "timing": {...}, "steps": int, "epochs": int}``; the timing
        covers every finished epoch, those of earlier sessions of a resumed run included.

    Raises:
        TrainingDiverged: if the loss became NaN or infinite.
        ValueError: if the training split is smaller than one batch.
    """
    recipe = distribute.current().global_recipe(recipe)
    steps_per_epoch = check_fits(recipe, data.size("train"))
    epochs, per_epoch = recipe.plan(steps_per_epoch)
    os.makedirs(workdir, exist_ok=True)
    compile_model(model, recipe, steps_per_epoch)
    history_path = os.path.join(workdir, f"history_{name}.csv")
    checkpoint = EpochCheckpoint(workdir, name, history_path)
    several_workers = distribute.current().workers > 1
    start = checkpoint.restore(model, gather=distribute.gather_from_workers if several_workers else None)
    callbacks = [keras.callbacks.TerminateOnNaN(), *extra_callbacks]
    if tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(os.path.join(workdir, "tensorboard", name)))
    callbacks.append(checkpoint)
    has_val = data.size("val") > 0
    batches = data.train_pipeline(recipe.batch_size, start_step=start * per_epoch)  # those an unbroken run gets
    call_start = time.perf_counter()
    model.fit(
        batches,
        epochs=epochs,
        initial_epoch=start,
        steps_per_epoch=per_epoch,
        validation_data=data.eval_pipeline("val", 256) if has_val else None,
        callbacks=callbacks,
        shuffle=False,  # the pipeline shuffles, seeded
        verbose=(1 if sys.stdout.isatty() else 2) if verbose is None else verbose,
    )
    fit_call_seconds = time.perf_counter() - call_start
    history = read_history(history_path)
    losses = history.get("loss", [])
    if not losses or not np.all(np.isfinite(losses)):
        raise TrainingDiverged(f"{name}: the training loss became NaN or infinite (history: {losses[-3:]}); "
                               "lower the learning rate or check the data")
    timing = {**checkpoint.timing(recipe.batch_size * per_epoch), "fit_call_seconds": fit_call_seconds}
    return {"history": history, "timing": timing, "steps": epochs * per_epoch, "epochs": epochs}


def evaluate(model: keras.Model, data, split: str = "test", batch_size: int = 256) -> dict:
    """Loss and accuracy of a compiled model on a split."""
    loss, accuracy = model.evaluate(data.eval_pipeline(split, batch_size), verbose=0)
    return {"loss": float(loss), "accuracy": float(accuracy), "examples": data.size(split)}
