"""Training a causal language model by one recipe: AdamW on a warmed-up cosine, the next-token loss.

The recipe of the tiny-LM evidence and of ``--task=causal_lm``: AdamW (weight decay 0.01, the
GPT-2 / nanoGPT convention) on a learning rate that warms up linearly over the first 5 % of the
steps and then decays to zero on a cosine; the cross-entropy of the logits against the next token,
where a label below zero (padding, :data:`tf_lottery.criteria.language.IGNORED`) weighs nothing.
Batches are drawn in a seeded order, so two models trained with one seed see the same batches:
a dense model and its ticket differ only in their layers.

A long training can keep its state in a folder (``checkpoint_dir``): every ``checkpoint_steps``
steps the model and optimizer state are written (to a temporary name, then renamed) beside a
``progress.json``, and a training started again with the same arguments resumes after the last
finished chunk, on the same batches, instead of starting over. A kill loses at most one chunk; a
state that does not load is reported and the training starts over (never a traceback).

Example:
    >>> inputs, labels = tl.criteria.language.next_token_batch(ids, mask)
    >>> fit_next_token(lm, inputs, labels, steps=1000, batch_size=16, seed=0).seconds
"""

from __future__ import annotations

import json
import os
import time
from typing import NamedTuple, Optional

import keras
import numpy as np

from tf_lottery.core.faults import crash_point
from tf_lottery.core.io import atomic_path, write_json_atomic
from tf_lottery.core.log import log
from tf_lottery.training.resume import check_precision, precision_of

WARMUP_FRACTION = 0.05
"""The share of the steps the learning rate warms up over."""
WEIGHT_DECAY = 0.01
"""AdamW's decoupled weight decay."""


def next_token_schedule(steps: int, learning_rate: float = 1e-3) -> keras.optimizers.schedules.LearningRateSchedule:
    """The learning rate of a run of ``steps`` steps: a linear warm-up from 0 over :data:`WARMUP_FRACTION`
    of them to ``learning_rate``, then a cosine down to 0 at ``steps``.

    Args:
        steps: The run's steps, >= 1.
        learning_rate: The peak learning rate, > 0.

    Returns:
        A Keras ``CosineDecay`` with its warm-up.

    Raises:
        ValueError: for ``steps`` below 1 or a rate that is not positive.

    Example:
        >>> float(next_token_schedule(100, 0.5)(5))
        0.5
    """
    if steps < 1 or not learning_rate > 0:
        raise ValueError(f"steps must be >= 1 and learning_rate > 0; got steps={steps}, "
                         f"learning_rate={learning_rate}")
    warmup = max(1, round(WARMUP_FRACTION * steps))
    return keras.optimizers.schedules.CosineDecay(0.0, decay_steps=max(1, steps - warmup),
                                                  warmup_target=learning_rate, warmup_steps=warmup)


def compile_next_token(model: keras.Model, steps: int, learning_rate: float = 1e-3) -> keras.Model:
    """Compiles ``model`` with the recipe of the module docstring for a run of ``steps`` steps.

    Args:
        model: A model giving logits ``(batch, length, vocabulary)``.
        steps: The run's steps (the schedule's length), >= 1.
        learning_rate: The peak learning rate, > 0.

    Returns:
        ``model``, compiled.

    Raises:
        ValueError: for ``steps`` below 1 or a rate that is not positive.

    Example:
        >>> compile_next_token(lm, steps=200).optimizer.__class__.__name__
        'AdamW'
    """
    model.compile(optimizer=keras.optimizers.AdamW(next_token_schedule(steps, learning_rate),
                                                   weight_decay=WEIGHT_DECAY),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def batch_order(examples: int, steps: int, batch_size: int, seed: int) -> np.ndarray:
    """The example indices of ``steps`` batches: seeded permutations of ``examples``, one after another.

    Args:
        examples: Training examples.
        steps: Batches wanted.
        batch_size: Examples per batch.
        seed: Seed of the permutations.

    Returns:
        ``steps * batch_size`` indices; batch ``i`` is ``order[i * batch_size:(i + 1) * batch_size]``.

    Raises:
        ValueError: for no training examples.

    Example:
        >>> batch_order(4, steps=3, batch_size=2, seed=0).shape
        (6,)
    """
    if examples < 1:
        raise ValueError("no training examples")
    rng = np.random.default_rng(seed)
    needed = steps * batch_size
    rounds = -(-needed // examples)
    return np.concatenate([rng.permutation(examples) for _ in range(rounds)])[:needed]


class TrainingTime(NamedTuple):
    """How long :func:`fit_next_token` trained, summed over every session of a resumed training.

    Attributes:
        seconds: Wall seconds of ``fit`` (each session's first step includes tracing).
        cpu_seconds: CPU seconds of this process's threads over the same spans. On a process
            pinned to one core this is the training's cost even when another process shares the
            core or the process is paused, which wall seconds are not.
        sessions: The processes that trained (more than 1: resumed).

    Example:
        >>> TrainingTime(seconds=12.5, cpu_seconds=11.9, sessions=1).seconds
        12.5
    """

    seconds: float
    cpu_seconds: float
    sessions: int


_PROGRESS = "progress.json"


def _restore(model: keras.Model, folder: str, identity: dict) -> dict:
    """The progress of the state in ``folder`` loaded into ``model``; a fresh one when there is none.

    Raises:
        ValueError: when the state belongs to another training (``identity`` differs) or precision.
    """
    fresh = {"identity": identity, "steps_done": 0, "seconds": 0.0, "cpu_seconds": 0.0, "sessions": 0}
    path = os.path.join(folder, _PROGRESS)
    if not os.path.exists(path):
        return fresh
    try:
        with open(path) as handle:
            progress = json.load(handle)
        if not isinstance(progress, dict):
            raise ValueError(f"a JSON {type(progress).__name__}, not an object")
        if not isinstance(progress.get("weights"), str) or os.sep in progress["weights"]:
            raise ValueError(f"'weights' is {progress.get('weights')!r}, not a file name of the state")
        for key in ("steps_done", "sessions", "seconds", "cpu_seconds"):
            value = progress.get(key, 0)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0 or (
                    key in ("steps_done", "sessions") and not isinstance(value, int)):
                raise ValueError(f"'{key}' is {value!r}, not a count or seconds >= 0")
    except (OSError, ValueError) as error:
        log(f"the training state {path} is unreadable ({error}); training from the start")
        return fresh
    if progress.get("identity") != identity:
        raise ValueError(f"the training state in {folder} belongs to another training "
                         f"({progress.get('identity')}, not {identity}); remove the folder or pass another one")
    check_precision(progress.get("precision"), model, folder)
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    start = [v.numpy() for v in model.weights + model.optimizer.variables]
    try:
        model.load_weights(os.path.join(folder, progress["weights"]))
    except (OSError, ValueError) as error:  # a half-loaded state must not stay behind
        for variable, value in zip(model.weights + model.optimizer.variables, start):
            variable.assign(value)
        log(f"the training state {progress['weights']} in {folder} does not load "
            f"({str(error).splitlines()[0][:120]}); training from the start")
        return fresh
    log(f"resuming the next-token training after step {progress['steps_done']} of {identity['steps']} from {folder}")
    return progress


def _save(model: keras.Model, folder: str, progress: dict) -> None:
    """Writes the state after ``progress["steps_done"]`` steps; the one before goes only once
    ``progress.json`` names the new one, so a kill at any moment leaves a state that loads."""
    os.makedirs(folder, exist_ok=True)
    weights = f"state-{progress['steps_done']}.weights.h5"
    with atomic_path(os.path.join(folder, weights)) as temporary:
        model.save_weights(temporary)
    progress["weights"] = weights
    write_json_atomic(os.path.join(folder, _PROGRESS), dict(progress, precision=precision_of(model)))
    for name in os.listdir(folder):
        if name.startswith("state-") and name.endswith(".weights.h5") and name != weights:
            os.remove(os.path.join(folder, name))
    crash_point("chunk")


def fit_next_token(model: keras.Model, inputs: dict, labels: np.ndarray, steps: int, batch_size: int,
                   seed: int = 0, learning_rate: float = 1e-3, checkpoint_dir: Optional[str] = None,
                   checkpoint_steps: int = 1000) -> TrainingTime:
    """Trains ``model`` ``steps`` steps of ``batch_size`` sequences by the module's recipe.

    Args:
        model: A model of ``inputs`` giving logits.
        inputs: ``{"token_ids", "padding_mask"}`` arrays of ``(sequences, length)``.
        labels: ``(sequences, length)`` next tokens, below zero where nothing is predicted.
        steps: Optimizer steps, >= 1.
        batch_size: Sequences per step.
        seed: Seed of the batch order.
        learning_rate: Peak learning rate.
        checkpoint_dir: A folder for the training state (the module docstring); ``None`` keeps none.
            The caller removes it once it has what it needs from the trained model.
        checkpoint_steps: Steps between two states written, >= 1.

    Returns:
        A :class:`TrainingTime` (compilation of each session's first step included).

    Raises:
        ValueError: for no sequences, inputs and labels of different lengths, a ``checkpoint_steps``
            below 1, or a state in ``checkpoint_dir`` of another training or precision.

    Example:
        >>> fit_next_token(lm, inputs, labels, steps=20_000, batch_size=16, checkpoint_dir="/tmp/lm").seconds
    """
    labels = np.asarray(labels)
    if any(len(value) != len(labels) for value in inputs.values()):
        raise ValueError(f"inputs and labels differ in length: {[len(v) for v in inputs.values()]} vs {len(labels)}")
    if checkpoint_steps < 1:
        raise ValueError(f"checkpoint_steps must be >= 1; got {checkpoint_steps}")
    picks = batch_order(len(labels), steps, batch_size, seed)
    x = {name: np.asarray(value)[picks] for name, value in inputs.items()}
    y = labels[picks]
    compile_next_token(model, steps, learning_rate)
    identity = {"steps": steps, "batch_size": batch_size, "seed": seed, "learning_rate": learning_rate,
                "sequences": len(labels)}
    progress = (_restore(model, checkpoint_dir, identity) if checkpoint_dir
                else {"steps_done": 0, "seconds": 0.0, "cpu_seconds": 0.0, "sessions": 0})
    progress["sessions"] += 1
    chunk = checkpoint_steps if checkpoint_dir else steps
    while progress["steps_done"] < steps:
        first = progress["steps_done"]
        last = min(steps, first + chunk)
        rows = slice(first * batch_size, last * batch_size)
        wall, cpu = time.perf_counter(), time.process_time()
        model.fit({name: value[rows] for name, value in x.items()}, np.maximum(y[rows], 0),
                  sample_weight=(y[rows] >= 0).astype("float32"), batch_size=batch_size, epochs=1,
                  shuffle=False, verbose=0)
        progress["seconds"] += time.perf_counter() - wall
        progress["cpu_seconds"] += time.process_time() - cpu
        progress["steps_done"] = last
        if checkpoint_dir:
            _save(model, checkpoint_dir, progress)
    return TrainingTime(progress["seconds"], progress["cpu_seconds"], progress["sessions"])
