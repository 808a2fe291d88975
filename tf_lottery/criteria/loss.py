"""The loss the data-driven criteria differentiate: the cross-entropy of logits and labels, or
the user's own for a model that is not a classifier (a backbone, a regression head).

A criterion reads the loss through :func:`classification_loss`; ``tl.criteria.get(name)(model,
data, loss=fn)`` and ``tl.find_ticket(..., loss=fn)`` set ``fn`` for the duration of that call
(:func:`using_loss`), so every criterion takes it without an argument of its own.

Example:
    >>> def mse(outputs, labels):
    ...     return keras.ops.mean((outputs - labels) ** 2)
    >>> tl.criteria.get("snip")(backbone, (images, targets), loss=mse)
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Callable, Optional

import keras
import tensorflow as tf

from tf_lottery.graph.heads import outputs_probabilities

_USER_LOSS: "contextvars.ContextVar[Optional[Callable]]" = contextvars.ContextVar("user_loss", default=None)


@contextlib.contextmanager
def using_loss(loss: Optional[Callable]):
    """Within the block, :func:`classification_loss` is ``loss(outputs, labels)`` (None: the cross-entropy).

    Raises:
        TypeError: for a ``loss`` that is not callable.
    """
    if loss is not None and not callable(loss):
        raise TypeError(f"loss must be a function (outputs, labels) -> scalar; got {type(loss).__name__}")
    token = _USER_LOSS.set(loss)
    try:
        yield
    finally:
        _USER_LOSS.reset(token)


def user_loss() -> Optional[Callable]:
    """The loss set by :func:`using_loss`, or None."""
    return _USER_LOSS.get()


def logits_of(model: keras.Model, outputs: tf.Tensor) -> tf.Tensor:
    """Logits from the model outputs (log of probabilities for a softmax model)."""
    return tf.math.log(tf.clip_by_value(outputs, 1e-12, 1.0)) if outputs_probabilities(model) else outputs


def classification_loss(model: keras.Model, outputs: tf.Tensor, labels: tf.Tensor, temperature: float = 1.0):
    """Mean cross-entropy of the batch on logits divided by ``temperature``, or the user's loss
    (:func:`using_loss`; it gets the outputs divided by ``temperature``)."""
    loss = user_loss()
    if loss is not None:
        return tf.convert_to_tensor(loss(outputs / tf.cast(temperature, outputs.dtype), labels))
    logits = logits_of(model, outputs)
    logits = logits / tf.cast(temperature, logits.dtype)
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
