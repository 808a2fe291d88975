"""How well a language model predicts held-out text, and what a token costs.

Perplexity is ``exp`` of the mean next-token loss.
The mean is over every real next token of every sequence (padding left out,
:mod:`tf_lottery.criteria.language`), summed batch by batch, so the batch size does not change
the number. A model that gives every token of a vocabulary of ``V`` the same logit has perplexity
``V`` exactly.

Example:
    >>> ids, mask = tl.data.text.token_windows(val_texts, tokenizer, length=129)
    >>> perplexity(lm, ids, mask)
"""

from __future__ import annotations

import math
import time

import keras
import numpy as np
import tensorflow as tf

from tf_lottery import training
from tf_lottery.data.sequences import IGNORED
from tf_lottery.evals.registry import register
from tf_lottery.graph import cost

from tf_lottery.criteria.language import causal_lm_parts, check_tokens, next_token_batch, next_token_entropy


def perplexity(model, token_ids, padding_mask=None, batch_size: int = 32) -> float:
    """Perplexity of ``model`` on token sequences (inference mode).

    Args:
        model: A model taking ``{"token_ids", "padding_mask"}`` and giving logits ``(batch, length, vocabulary)``
            (a keras_hub ``*CausalLM`` task, or your own).
        token_ids: ``(sequences, length)`` tokens, length >= 2.
        padding_mask: True where a token is real (default: all).
        batch_size: Sequences per forward pass.

    Returns:
        ``exp(mean next-token cross-entropy)``.

    Raises:
        ValueError: for sequences without a single real next token, a bad batch (see
            :func:`tf_lottery.criteria.language.next_token_batch`), or tokens a keras_hub model
            cannot take (:func:`tf_lottery.criteria.language.check_tokens`).
    """
    inputs, labels = next_token_batch(token_ids, padding_mask)
    check_tokens(model, inputs)
    total, count = 0.0, 0
    for start in range(0, len(labels), batch_size):
        piece = {name: value[start:start + batch_size] for name, value in inputs.items()}
        target = labels[start:start + batch_size]
        entropy, positions = next_token_entropy(tf.cast(model(piece, training=False), tf.float32), target)
        total += float(entropy)
        count += int(positions)
    if count == 0:
        raise ValueError("no real next token to predict: every sequence is padding after its first token")
    return math.exp(total / count)


def flops_per_token(model, sequence_length: int) -> float:
    """FLOPs of one token's forward pass at ``sequence_length`` (:mod:`tf_lottery.graph.cost`'s convention).

    The model's blocks are costed from their traced calls on fixed-length inputs, attention over all
    ``sequence_length`` positions included, and divided by the length; a keras_hub causal LM's tied head
    (the reversed token embedding, a product of the hidden state and the table) adds
    ``hidden x vocabulary`` per token.

    Args:
        model: A keras_hub ``*CausalLM`` or backbone, or a model of ``{"token_ids", "padding_mask"}``.
        sequence_length: Tokens per sequence (>= 1).

    Raises:
        ValueError: for a length below 1.

    Example:
        >>> flops_per_token(gpt2_lm, 128)
    """
    if isinstance(sequence_length, bool) or not isinstance(sequence_length, int) or sequence_length < 1:
        raise ValueError(f"sequence_length must be an integer >= 1; got {sequence_length!r}")
    parts = causal_lm_parts(model)
    body = parts.backbone if parts is not None else model
    fixed = {name: keras.Input((sequence_length,), dtype="int32", name=name) for name in ("token_ids", "padding_mask")}
    total = cost.flops(keras.Model(fixed, body(fixed))) / sequence_length
    if parts is not None:
        table = parts.backbone.token_embedding.embeddings
        total += int(table.shape[0]) * int(table.shape[1])
    return float(total)


# --- the evaluations of a --task=causal_lm run (clean, cost and latency dispatch here for text data) ---

def text_clean(model, data) -> dict:
    """``clean`` of a language model: held-out perplexity, the mean next-token loss, token accuracy.

    Returns:
        ``{"perplexity", "loss", "accuracy", "examples", "tokens"}`` on the test split: ``loss`` is
        ``log(perplexity)``, ``accuracy`` the share of real next tokens predicted first (arg max).
    """
    ids, mask = data.token_windows("test")
    value = perplexity(model, ids, mask)
    accuracy = training.evaluate(model, data, "test")["accuracy"]
    tokens = int(np.sum(data.arrays("test")[1] != IGNORED))
    return {"perplexity": value, "loss": math.log(value), "accuracy": accuracy, "examples": data.size("test"),
            "tokens": tokens}


def text_cost(model, data) -> dict:
    """``cost`` of a language model: ``{"params", "layers", "flops_per_token", "flops"}``; ``flops``
    is a whole sequence's forward pass (``flops_per_token`` x the sequence length)."""
    length = int(data.input_shape[0])
    per_token = flops_per_token(model, length)
    backbone = getattr(model, "backbone", model)
    layers = getattr(backbone, "num_layers", None)
    return {"params": int(model.count_params()), "layers": None if layers is None else int(layers),
            "flops_per_token": per_token, "flops": int(round(per_token * length))}


def _timed(call, repeats: int, warmup: int) -> list:
    for _ in range(warmup):
        call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


def text_latency(model, data, batch_sizes, repeats: int = 10, warmup: int = 3) -> dict:
    """``latency`` of a language model: a compiled forward pass over full-length sequences.

    Returns:
        ``{batch size (str): {"median_s", "min_s", "max_s", "tokens_per_s", "repeats"}}``.
    """
    forward = tf.function(lambda x: model(x, training=False))
    inputs, _ = data.arrays("test")
    results = {}
    for batch in batch_sizes:
        picks = np.resize(np.arange(len(inputs["token_ids"])), batch)
        x = {name: tf.constant(value[picks]) for name, value in inputs.items()}
        times = _timed(lambda: forward(x).numpy(), repeats, warmup)
        median = float(np.median(times))
        results[str(batch)] = {"median_s": median, "min_s": float(min(times)), "max_s": float(max(times)),
                               "tokens_per_s": batch * int(data.input_shape[0]) / median, "repeats": repeats}
    return results


PROMPT_TOKENS = 16
"""Tokens of held-out text each generation starts from (half the sequence length when that is shorter)."""


def generation(model, data, new_tokens: int = 64, repeats: int = 3) -> dict:
    """Measured greedy generation of a keras_hub causal LM: up to ``new_tokens`` tokens (as many as the
    sequence length leaves) after a prompt of :data:`PROMPT_TOKENS` held-out tokens, one sequence at a
    time (after one untimed warm-up call, which compiles).

    Returns:
        ``{"tokens_per_s", "latency_per_token_s", "new_tokens", "prompt_tokens", "repeats"}`` (medians).

    Raises:
        ValueError: for a model without ``generate`` (not a keras_hub causal LM).
    """
    if not hasattr(model, "generate"):
        raise ValueError(f"generation measures a keras_hub causal LM's generate(); {model.name!r} has none")
    longest = int(data.input_shape[0])
    prompt_tokens = min(PROMPT_TOKENS, longest // 2)
    length = min(longest, prompt_tokens + new_tokens)
    inputs, _ = data.arrays("test", 1)
    ids = np.zeros((1, length), dtype="int32")
    ids[0, :prompt_tokens] = inputs["token_ids"][0, :prompt_tokens]
    mask = np.zeros((1, length), dtype=bool)
    mask[0, :prompt_tokens] = True
    prompt = {"token_ids": ids, "padding_mask": mask}
    made = length - prompt_tokens
    times = _timed(lambda: model.generate(prompt, max_length=length, stop_token_ids=None), repeats, 1)
    median = float(np.median(times))
    return {"tokens_per_s": made / median, "latency_per_token_s": median / made, "new_tokens": made,
            "prompt_tokens": prompt_tokens, "repeats": repeats}


@register("generation", settings=lambda config: {"new_tokens": 64}, tasks=("causal_lm",),
          summary="causal_lm: measured generation tokens/s and latency per token (batch 1, greedy)")
def generation_eval(model, data, evaluation_config) -> dict:
    """The ``generation`` evaluation (:func:`generation`)."""
    return generation(model, data)
