"""Training a causal language model by one recipe: AdamW on a warmed-up cosine, the next-token loss.

The recipe of the tiny-LM evidence and of ``--task=causal_lm``: AdamW (weight decay 0.01, the
GPT-2 / nanoGPT convention) on a learning rate that warms up linearly over the first 5 % of the
steps and then decays to zero on a cosine; the cross-entropy of the logits against the next token,
where a label below zero (padding, :data:`tf_lottery.criteria.language.IGNORED`) weighs nothing.
Batches are drawn in a seeded order, so two models trained with one seed see the same batches:
a dense model and its ticket differ only in their layers.

Example:
    >>> inputs, labels = tl.criteria.language.next_token_batch(ids, mask)
    >>> seconds = fit_next_token(lm, inputs, labels, steps=1000, batch_size=16, seed=0)
"""

from __future__ import annotations

import time

import keras
import numpy as np

WARMUP_FRACTION = 0.05
"""The share of the steps the learning rate warms up over."""
WEIGHT_DECAY = 0.01
"""AdamW's decoupled weight decay."""


def next_token_schedule(steps: int, learning_rate: float = 1e-3) -> keras.optimizers.schedules.LearningRateSchedule:
    """The learning rate of a run of ``steps`` steps: a linear warm-up from 0 over :data:`WARMUP_FRACTION`
    of them to ``learning_rate``, then a cosine down to 0 at ``steps``.

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
    """
    model.compile(optimizer=keras.optimizers.AdamW(next_token_schedule(steps, learning_rate),
                                                   weight_decay=WEIGHT_DECAY),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def batch_order(examples: int, steps: int, batch_size: int, seed: int) -> np.ndarray:
    """The example indices of ``steps`` batches: seeded permutations of ``examples``, one after another.

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


def fit_next_token(model: keras.Model, inputs: dict, labels: np.ndarray, steps: int, batch_size: int,
                   seed: int = 0, learning_rate: float = 1e-3) -> float:
    """Trains ``model`` ``steps`` steps of ``batch_size`` sequences by the module's recipe.

    Args:
        model: A model of ``inputs`` giving logits.
        inputs: ``{"token_ids", "padding_mask"}`` arrays of ``(sequences, length)``.
        labels: ``(sequences, length)`` next tokens, below zero where nothing is predicted.
        steps: Optimizer steps, >= 1.
        batch_size: Sequences per step.
        seed: Seed of the batch order.
        learning_rate: Peak learning rate.

    Returns:
        The seconds ``fit`` took (compilation of the first step included).

    Raises:
        ValueError: for no sequences, or inputs and labels of different lengths.
    """
    labels = np.asarray(labels)
    if any(len(value) != len(labels) for value in inputs.values()):
        raise ValueError(f"inputs and labels differ in length: {[len(v) for v in inputs.values()]} vs {len(labels)}")
    picks = batch_order(len(labels), steps, batch_size, seed)
    x = {name: np.asarray(value)[picks] for name, value in inputs.items()}
    y = labels[picks]
    compile_next_token(model, steps, learning_rate)
    start = time.perf_counter()
    model.fit(x, np.maximum(y, 0), sample_weight=(y >= 0).astype("float32"), batch_size=batch_size, epochs=1,
              shuffle=False, verbose=0)
    return time.perf_counter() - start
