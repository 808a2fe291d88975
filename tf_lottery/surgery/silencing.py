"""Silencing: zero a block's residual branch in place, so the dense network computes what the ticket does.

The check behind the paper's claim that removal equals bypass: with an identity shortcut,
a block whose branch outputs exactly 0 passes its input through (in inference mode).

Example:
    >>> silence_blocks(dense, ["stage1_block2"])   # dense now computes what the ticket does
"""

from __future__ import annotations

from typing import Iterable

import keras
import numpy as np

from tf_lottery.graph import reader as graph_lib
from tf_lottery.surgery.residual import Block, find_blocks


_SILENCEABLE = (keras.layers.BatchNormalization, keras.layers.LayerNormalization, keras.layers.GroupNormalization)
_LINEAR = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D, keras.layers.DepthwiseConv2D,
           keras.layers.SeparableConv2D, keras.layers.Dense)


def _maps_zero_to_zero(operation, shape) -> bool:
    """Whether a weightless operation sends an all-zero input to an all-zero output (inference mode)."""
    zeros = np.zeros((1, *shape), dtype="float32")
    try:
        out = operation(zeros, training=False)
    except TypeError:
        out = operation(zeros)
    return not np.any(keras.ops.convert_to_numpy(out))


def silencing_variables(model: keras.Model, block: Block) -> list:
    """The variables that, set to zero, make ``block``'s residual branch output exactly 0.

    Walks back from the addition along the branch over operations without weights that
    send zero to zero (dropout, ReLU, GELU, swish, stochastic depth, a multiply by a
    constant: checked on zeros, in inference mode) to the first layer with weights, and
    returns what silences it: gamma and beta of a BatchNormalization, LayerNormalization
    or GroupNormalization; kernel and bias of a conv or dense layer (a pre-activation
    block); the output projection's kernel and bias of a ``MultiHeadAttention`` (a transformer's
    attention half-block); the scale of a layer scale (ConvNeXt's ``gamma``) or of any other layer whose
    output is its input times its single weight. In inference mode a silenced block with an
    identity shortcut then passes its input through (after a post-add ReLU that its input
    already went through): what removing it does.

    Args:
        model: A Keras 3 functional model.
        block: One of its blocks (:func:`tf_lottery.surgery.find_blocks`).

    Returns:
        The ``keras.Variable`` objects to zero.

    Raises:
        ValueError: naming the block and the operation that stops the walk when the branch
            cannot be silenced exactly.

    Example:
        >>> model = tl.models.cifar_resnet(20)
        >>> [v.path for v in silencing_variables(model, tl.surgery.find_blocks(model)[1])]
        ['stage1_block2_bn2/gamma', 'stage1_block2_bn2/beta']
    """
    if not block.branch:
        raise ValueError(f"block {block.name!r} has no residual branch to silence")
    g = graph_lib.analyse(model)
    if block.branch == (block.add_layer,):  # a residual layer (tf_lottery.graph.inside): its sum is in its call
        raise ValueError(f"cannot silence block {block.name!r}: it is one {type(g.operations[block.name]).__name__} "
                         "layer whose residual branch is inside its call, out of silencing's reach; the criterion that "
                         "silences (kl) cannot score it: use snip, grasp, magnitude, expectabs or random")
    branch = set(block.branch)
    addends = [p for p in g.parents[block.add_layer] if p in branch]
    current = addends[0] if addends else block.branch[-1]
    while True:
        last = g.operations[current]
        weights = last.weights if isinstance(last, keras.layers.Layer) else []
        if weights:
            break
        parents = [p for p in g.parents[current] if p in branch]
        if len(parents) != 1 or not _maps_zero_to_zero(last, g.shapes[parents[0]]):
            raise ValueError(
                f"cannot silence block {block.name!r}: its branch ends in {type(last).__name__} {current!r}, which "
                "has no weights to zero and does not pass a zero through; silencing needs a branch ending in a "
                "normalization, a conv or dense layer, or a scale, followed only by operations that keep 0 at 0"
            )
        current = parents[0]
    if isinstance(last, _SILENCEABLE) and getattr(last, "scale", True) and getattr(last, "center", True):
        return [last.gamma, last.beta]
    if isinstance(last, _LINEAR):  # kernel(s) and bias all zero: the output is exactly 0
        return list(last.weights)
    if isinstance(last, keras.layers.MultiHeadAttention):  # its output projection, zeroed, outputs exactly 0
        return list(last.output_dense.weights)
    if len(last.trainable_weights) == 1 and len(last.weights) == 1:  # a scale: output = input * weight
        return list(last.weights)
    raise ValueError(
        f"cannot silence block {block.name!r}: its branch ends in {type(last).__name__} {current!r}; silencing "
        "needs a last BatchNormalization/LayerNormalization/GroupNormalization with scale and center, a conv or "
        "dense layer, a MultiHeadAttention, or a layer scale"
    )


def silence_blocks(model: keras.Model, names: Iterable[str]) -> None:
    """Zeroes the residual branch of blocks in place (see :func:`silencing_variables`).

    Args:
        model: A Keras 3 functional model (changed in place).
        names: The blocks to silence.

    Raises:
        ValueError: for an unknown block or a branch that cannot be silenced.

    Example:
        >>> silence_blocks(dense, ["stage1_block2"])   # dense now computes what the ticket does
    """
    by_name = {b.name: b for b in find_blocks(model)}
    for name in names:
        if name not in by_name:
            raise ValueError(f"unknown block {name!r}; blocks: {list(by_name)}")
        for variable in silencing_variables(model, by_name[name]):
            variable.assign(keras.ops.zeros_like(variable))
