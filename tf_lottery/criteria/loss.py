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
import numpy as np
import tensorflow as tf

from tf_lottery.data.checks import check_labels
from tf_lottery.graph.heads import output_names, outputs_probabilities

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


def labels_by_output(model: keras.Model, labels) -> Optional[np.ndarray]:
    """Labels for every output of a multi-output classifier, as one ``(batch, outputs)`` matrix of class
    indices, or None when ``labels`` are not given per output.

    Args:
        model: A model of several outputs.
        labels: ``{output name: labels}`` naming every output, or a list or tuple of one label array per
            output, in output order (integer labels or one-hot rows each).

    Raises:
        ValueError: for a dict that does not name every output, labels of different lengths, or a
            class index outside its output's classes.
    """
    names = output_names(model)
    if isinstance(labels, dict):
        if sorted(labels) != sorted(names):
            raise ValueError(f"labels per output must name every output of {model.name!r}, {names}; got "
                             f"{sorted(labels)} (or score one output with output=<name>)")
        labels = [labels[name] for name in names]
    elif not (isinstance(labels, (list, tuple)) and len(labels) == len(names) and len(names) > 1
              and all(np.ndim(item) >= 1 for item in labels)):
        return None
    columns = []
    for name, tensor, item in zip(names, model.outputs, labels):
        column = check_labels(item, f"labels of output {name!r}", one_hot=True)
        classes = int(tensor.shape[-1])
        if column.size and column.max() >= classes:
            raise ValueError(f"labels of output {name!r} go up to {int(column.max())}, but it has {classes} classes")
        columns.append(column)
    if len({len(c) for c in columns}) != 1:
        raise ValueError(f"labels per output must have one label per example each; got lengths "
                         f"{[len(c) for c in columns]} for {names}")
    return np.stack(columns, axis=1).astype("int64")


def joint_cross_entropy(model: keras.Model) -> Callable:
    """``loss(outputs, labels)``: the sum over ``model``'s outputs of each one's mean cross-entropy, for the
    outputs of :func:`tf_lottery.graph.heads.joint_view` (logits side by side) and the labels of
    :func:`labels_by_output`.

    Example:
        >>> loss = joint_cross_entropy(two_heads)
    """
    sizes = [int(t.shape[-1]) for t in model.outputs]

    def loss(outputs, labels):
        parts = tf.split(outputs, sizes, axis=-1)
        return tf.add_n([tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=tf.cast(labels[:, i], tf.int64), logits=part)) for i, part in enumerate(parts)])

    return loss


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
