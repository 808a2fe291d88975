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

import keras
import tensorflow as tf

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
