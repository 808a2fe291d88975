"""Language models: the next-token loss the data-driven criteria differentiate, padding masked.

A causal language model is scored on a batch of token sequences: the inputs are each
sequence's tokens but the last, the labels the token that follows each position
(:func:`next_token_batch`), and a padded position is labelled :data:`IGNORED`, which the loss
leaves out (:func:`next_token_loss`: the mean cross-entropy over the positions that are not).

keras_hub's ``*CausalLM`` tasks (GPT-2, Llama, Gemma) tie their output projection to the
token embedding: the task's graph calls one embedding layer twice, once per direction, which
block surgery cannot read as one graph. Such a task is scored through its backbone, whose
blocks are the task's, with the task's head (the reversed embedding) applied inside the loss
(:func:`causal_lm_parts`). The head's weights are the embedding table, outside every block, so
the gradient of every block weight is the task's own.

Example:
    >>> inputs, labels = next_token_batch(token_ids, padding_mask)
    >>> scores = tl.criteria.get("snip")(gpt2_causal_lm, (inputs, labels))
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional, Tuple

import keras
import numpy as np
import tensorflow as tf

from tf_lottery.data.sequences import IGNORED, next_token_batch  # noqa: F401  (public here too)
from tf_lottery.graph.heads import tied_head_backbone

def next_token_loss(logits, labels) -> tf.Tensor:
    """Mean cross-entropy of ``logits`` (batch, length, vocabulary) against next-token ``labels`` (batch,
    length), over the positions whose label is not :data:`IGNORED`; a ``loss=`` for the criteria.

    Example:
        >>> tl.criteria.get("snip")(functional_lm, (inputs, labels), loss=next_token_loss)
    """
    total, count = next_token_entropy(logits, labels)
    return total / tf.maximum(count, 1.0)


def next_token_entropy(logits, labels) -> Tuple[tf.Tensor, tf.Tensor]:
    """``(sum of the cross-entropies, number of positions)`` over the labels that are not :data:`IGNORED`:
    what :func:`next_token_loss` averages, and what a perplexity sums batch by batch."""
    labels = tf.cast(labels, tf.int64)
    kept = tf.cast(labels != IGNORED, logits.dtype)
    entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.maximum(labels, 0), logits=logits)
    return tf.reduce_sum(entropy * kept), tf.reduce_sum(kept)


def check_tokens(model, inputs) -> None:
    """Refuses token ids a keras_hub model cannot take: longer than its ``max_sequence_length`` or
    outside its vocabulary (ids of another tokenizer), before any TensorFlow op runs.

    Args:
        model: A keras_hub task or backbone (a model without those attributes is not checked).
        inputs: ``{"token_ids": ..., ...}``.

    Raises:
        ValueError: naming the length or the id and what the model takes.
    """
    backbone = getattr(model, "backbone", model)
    if not isinstance(inputs, dict) or "token_ids" not in inputs:
        return
    ids = np.asarray(inputs["token_ids"])
    longest = getattr(backbone, "max_sequence_length", None)
    if longest is not None and ids.ndim == 2 and ids.shape[1] > longest:
        raise ValueError(f"sequences of {ids.shape[1]} tokens are longer than {backbone.name!r} takes "
                         f"(max_sequence_length={longest}): cut them (token_windows' length is the model's plus one)")
    vocabulary = getattr(backbone, "vocabulary_size", None)
    if vocabulary is not None and ids.size and (ids.min() < 0 or ids.max() >= vocabulary):
        raise ValueError(f"token ids run from {int(ids.min())} to {int(ids.max())}, but {backbone.name!r} has a "
                         f"vocabulary of {vocabulary}: the tokens come from another tokenizer than the model's")


@dataclasses.dataclass(frozen=True)
class CausalLM:
    """A keras_hub causal LM as the criteria score it.

    Attributes:
        backbone: Its backbone (the blocks).
        head: ``hidden states -> logits`` (the reversed token embedding).
    """

    backbone: keras.Model
    head: Callable

    def loss(self, hidden, labels) -> tf.Tensor:
        """The next-token loss of the task's logits from the backbone's ``hidden`` states."""
        return next_token_loss(self.head(hidden), labels)


def causal_lm_parts(model) -> Optional[CausalLM]:
    """The backbone and head of a keras_hub ``*CausalLM`` task with a tied token embedding, or None."""
    backbone = tied_head_backbone(model)
    if backbone is None:
        return None
    embedding = backbone.token_embedding
    return CausalLM(backbone, lambda hidden: embedding(hidden, reverse=True))
