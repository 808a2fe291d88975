"""What every criterion shares: data handling, a pure forward, the loss, aggregation over
a block's kernels and over a filter's kernel slice.

Criteria never change the model: forward passes go through ``model.stateless_call``, so
BatchNorm statistics and weights stay exactly θ0 (tested bit for bit).
"""

from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import keras
import numpy as np
import tensorflow as tf

from tf_lottery.core import arguments
from tf_lottery.criteria.registry import AGGREGATIONS
from tf_lottery.data.checks import check_images, check_labels
from tf_lottery.graph import reader as graph
from tf_lottery.criteria.loss import classification_loss, user_loss
from tf_lottery.surgery import residual as surgery
from tf_lottery.surgery.filters import FilterGroup

# --- data ---------------------------------------------------------------------------------

def as_batch(data, need_labels: bool = True) -> Tuple[tf.Tensor, Optional[tf.Tensor]]:
    """Turns ``(images, labels)`` (arrays, one-hot or integer labels) into float images and int labels
    (under the user's loss, :mod:`tf_lottery.criteria.loss`, the labels as given).

    Args:
        data: ``(images, labels)``, or images alone when ``need_labels`` is False; images may be
            ``{input name: array}`` (token ids and a padding mask keep their dtypes).
        need_labels: Whether labels are required.

    Returns:
        ``(images, labels)`` as tensors; labels None when not given.

    Raises:
        ValueError: for a missing label array, mismatched lengths or an empty batch.

    Example:
        >>> images, labels = as_batch((np.zeros((4, 32, 32, 3)), np.eye(10)[[1, 2, 3, 4]]))
        >>> images.dtype.name, labels.numpy().tolist()
        ('float32', [1, 2, 3, 4])
    """
    if isinstance(data, (tuple, list)) and len(data) == 2:
        images, labels = data
    elif need_labels:
        raise ValueError("this criterion needs a labelled batch: data=(images, labels)")
    else:
        images, labels = data, None
    if isinstance(images, dict):  # inputs by name (token ids and a padding mask): their own dtypes
        images = {name: tf.convert_to_tensor(np.asarray(value)) for name, value in images.items()}
        count = int(next(iter(images.values())).shape[0])
    else:
        images = tf.convert_to_tensor(np.asarray(images, dtype="float32"))
        count = int(images.shape[0])
    if count == 0:
        raise ValueError("the scoring batch is empty")
    if labels is not None:
        # Under the user's loss (tf_lottery.criteria.loss) the labels are whatever it takes.
        as_given = user_loss() is not None
        labels = np.asarray(labels) if as_given else integer_labels(labels).astype("int64")
        if labels.shape[0] != count:
            raise ValueError(f"{count} images but {labels.shape[0]} labels")
        labels = tf.convert_to_tensor(labels)
    return images, labels


def integer_labels(labels) -> np.ndarray:
    """Class indices from integer labels or one-hot rows (:func:`tf_lottery.data.checks.check_labels`).

    Raises:
        ValueError: for labels that are not whole numbers >= 0 or one-hot rows (never truncated silently).
    """
    return check_labels(labels, "labels", one_hot=True)


def class_balanced_batch(images, labels, per_class: int = 10, seed: int = 0):
    """Picks ``per_class`` examples of every class (GraSP's default scoring batch: 10 per class).

    Args:
        images: Array of images.
        labels: Integer or one-hot labels.
        per_class: Examples per class (classes with fewer give all they have).
        seed: Seed of the pick.

    Returns:
        ``(images, labels)`` arrays, classes in ascending order.

    Raises:
        ValueError: for images that are not a batch of numbers, or labels that are not one
            class index (or one-hot row) per image.

    Example:
        >>> x, y = class_balanced_batch(train_x, train_y, per_class=10)
    """
    arguments.count("per_class", per_class, least=1)
    images = check_images(images, "class_balanced_batch: the images")
    labels = check_labels(labels, "class_balanced_batch: the labels", count=len(images), one_hot=True)
    rng = np.random.default_rng(seed)
    picks = []
    for cls in np.unique(labels):
        where = np.flatnonzero(labels == cls)
        picks.append(np.sort(rng.choice(where, size=min(per_class, where.size), replace=False)))
    index = np.concatenate(picks)
    return np.asarray(images)[index], labels[index]


# --- forward, loss and weights ------------------------------------------------------------

def forward(model: keras.Model, images, params=None, training: bool = True) -> tf.Tensor:
    """A pure forward pass: no weight or BatchNorm statistic of ``model`` changes.

    Args:
        model: The network.
        images: A batch.
        params: Replacement values for ``model.trainable_variables`` (tensors to
            differentiate through), or None for the current values.
        training: BatchNorm in training mode (batch statistics), as in the original
            SNIP/GraSP code, which scores a freshly built network in train mode.
    """
    if params is None:
        params = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]
    outputs, _ = model.stateless_call(params, non_trainable, images, training=training)
    return outputs


def cross_entropy(model: keras.Model, outputs: tf.Tensor, labels: tf.Tensor, temperature: float = 1.0) -> tf.Tensor:
    """The scoring loss: mean cross-entropy on logits divided by ``temperature``, or the user's
    loss (:func:`tf_lottery.criteria.loss.classification_loss`)."""
    return classification_loss(model, outputs, labels, temperature)


def dense_gradients(gradients, variables) -> list:
    """Gradients as dense tensors: an embedding table's ``IndexedSlices`` made dense, and a
    weight the loss does not reach (``None``) given zeros, so every criterion can multiply them.
    """
    return [tf.zeros_like(v) if g is None else tf.convert_to_tensor(g) for g, v in zip(gradients, variables)]


KERNEL_LAYERS = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D, keras.layers.DepthwiseConv2D,
                 keras.layers.Dense)
"""Layers with one ``kernel`` (grouped and depthwise convs included): the per-filter criteria
score these kernels' output filters."""

_NOT_SCORED = ("bias",)
"""Variable names never scored: biases (rank 2 in MultiHeadAttention's projections)."""


def scored_weights(layer) -> List[Tuple[str, object]]:
    """``[(key, variable)]``: the weights of ``layer`` the weight-level criteria score.

    The rule, for every layer (stock, keras_hub or your own): its trainable variables of rank
    2 or more that are not biases. That is a conv's or dense layer's kernel (SNIP's, GraSP's
    and SynFlow's original code score those), the query, key, value and output kernels of a
    ``MultiHeadAttention`` or any ``EinsumDense``, an ``Embedding``'s table, and whatever
    matrices a subclassed layer holds. Biases and normalisation scales and offsets (rank 1)
    are left out, as in the original code.

    The key is the layer's name when it has one scored weight (a conv: the key the per-filter
    criteria use), else ``"<layer>/<variable path inside it>"``.

    Example:
        >>> [key for key, _ in scored_weights(model.get_layer("encoder1_attention"))]
        ['encoder1_attention/query/kernel', 'encoder1_attention/key/kernel', ...]
    """
    found = [v for v in layer.trainable_variables if len(v.shape) >= 2 and v.name not in _NOT_SCORED]
    if len(found) == 1:
        return [(layer.name, found[0])]
    return [(v.path if v.path.startswith(f"{layer.name}/") else f"{layer.name}/{v.path}", v) for v in found]


def prunable_kernels(model: keras.Model) -> Dict[str, int]:
    """``{key: index in model.trainable_variables}`` of every scored weight (:func:`scored_weights`).

    The weights SNIP, GraSP and SynFlow score. Layers of nested models are included; a
    variable reached twice (a tied weight) is scored once, under its first layer.
    """
    index = {id(v): i for i, v in enumerate(model.trainable_variables)}
    found, seen = {}, set()
    for layer in graph.leaf_layers(model):
        for key, variable in scored_weights(layer):
            if id(variable) in index and id(variable) not in seen:
                seen.add(id(variable))
                found[key] = index[id(variable)]
    return found


# --- aggregation --------------------------------------------------------------------------

def block_weights(model: keras.Model) -> Dict[str, list]:
    """``{block name: keys of the scored weights of its residual branch}`` (:func:`scored_weights`).

    The branch comes from the graph (:attr:`tf_lottery.surgery.Block.branch`): a
    projection shortcut, whatever its name, is not part of what removal deletes, so it
    is left out. A residual layer (a block that is one layer) is its own branch.

    Raises:
        ValueError: naming a block whose branch has no weight to score.
    """
    found = {}
    for block in surgery.find_blocks(model):
        layers = [graph.operation(model, name) for name in block.branch]
        found[block.name] = [key for layer in layers if isinstance(layer, keras.layers.Layer)
                             for key, _ in scored_weights(layer)]
        if not found[block.name]:
            raise ValueError(f"block {block.name!r} has no weight to score in its branch {list(block.branch)}: the "
                             "weight-level criteria score kernels and other trainable matrices (no biases, no "
                             "normalisation scales); score it with an activation criterion (kl, expectabs) or random")
    return found


def aggregate(model: keras.Model, weight_scores: Dict[str, np.ndarray], reduce: str = "mean") -> Dict[str, float]:
    """Block score from per-weight scores: the sum or the mean over the block's scored weights.

    Args:
        model: The scored model.
        weight_scores: ``{weight key: scores shaped like the weight}`` for the keys of
            :func:`block_weights`.
        reduce: ``"sum"`` or ``"mean"`` (:data:`AGGREGATIONS`).

    Returns:
        ``{block name: score}``.

    Raises:
        ValueError: for an unknown ``reduce``.

    Example:
        >>> ones = {key: np.ones(1) for keys in block_weights(model).values() for key in keys}
        >>> aggregate(model, ones, "mean")["stage1_block2"]
        1.0
    """
    if reduce not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {AGGREGATIONS}; got {reduce!r}")
    scores = {}
    for block, keys in block_weights(model).items():
        values = np.concatenate([np.ravel(weight_scores[key]) for key in keys]).astype("float64")
        scores[block] = float(values.sum() if reduce == "sum" else values.mean())
    return scores


# --- filters ------------------------------------------------------------------------------

def reduce_filters(kernel_scores: np.ndarray, aggregation: str) -> np.ndarray:
    """Per-output-filter reduction of a ``(kh, kw, c_in, c_out)`` score array (sum or mean).

    Raises:
        ValueError: for an unknown ``aggregation``.
    """
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {AGGREGATIONS}; got {aggregation!r}")
    values = np.asarray(kernel_scores, dtype="float64").reshape(-1, kernel_scores.shape[-1])
    return values.sum(axis=0) if aggregation == "sum" else values.mean(axis=0)


def per_filter(per_weight: Mapping[str, np.ndarray], groups: Sequence[FilterGroup],
               aggregation: str) -> Dict[str, np.ndarray]:
    """``{conv: one score per filter}`` from per-weight scores of each group's conv kernel."""
    return {g.conv: reduce_filters(per_weight[g.conv], aggregation) for g in groups}


def group_activations(model: keras.Model, groups: Sequence[FilterGroup], images, batch_size: int = 256):
    """``{conv: activations after its channel-wise followers}`` on ``images``, in inference mode."""
    ends = [g.followers[-1] if g.followers else g.conv for g in groups]
    probe = keras.Model(model.input, [graph.operation(model, name).output for name in ends])
    outputs = probe.predict(np.asarray(images, dtype="float32"), batch_size=batch_size, verbose=0)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return {g.conv: out for g, out in zip(groups, outputs)}


def inputs_of(data):
    """The model inputs of ``data`` (``inputs`` or ``(inputs, labels)``): a float32 array of images, or
    inputs by name as arrays (a language model's ``token_ids`` and ``padding_mask``)."""
    inputs = as_batch(data, need_labels=False)[0]
    return {name: value.numpy() for name, value in inputs.items()} if isinstance(inputs, dict) else inputs.numpy()


def images_of(data) -> np.ndarray:
    """The images of ``data`` (``images`` or ``(images, labels)``) as a float32 array."""
    return as_batch(data, need_labels=False)[0].numpy()
