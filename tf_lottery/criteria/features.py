"""Block inputs and outputs on a batch: what the after-training criteria look at.

The batch is whatever the model takes: an array of images, or inputs by name (a language
model's ``token_ids`` and ``padding_mask``). A ``padding_mask`` input marks the positions that
are real tokens; the criteria that compare hidden states position by position weigh them by it
(:func:`position_weights`).
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import keras
import numpy as np

from tf_lottery import graph, surgery

PADDING_MASK = "padding_mask"
"""The input name whose values weigh the positions of a sequence (keras_hub's convention)."""


def _batch(inputs):
    if isinstance(inputs, dict):
        return {name: np.asarray(value) for name, value in inputs.items()}
    return np.asarray(inputs, dtype="float32")


def run_in_batches(probe: keras.Model, inputs, batch_size: int = 256) -> list:
    """``probe``'s outputs on ``inputs`` (an array, or inputs by name), in inference mode, a list of arrays.

    Called directly, batch by batch: ``predict`` would trace a new function for every probe.
    """
    batch = _batch(inputs)
    count = len(next(iter(batch.values()))) if isinstance(batch, dict) else len(batch)
    parts = []
    for start in range(0, count, batch_size):
        piece = keras.tree.map_structure(lambda a: a[start:start + batch_size], batch)
        outputs = probe(piece, training=False)
        parts.append([keras.ops.convert_to_numpy(o) for o in keras.tree.flatten(outputs)])
    return [np.concatenate(column) for column in zip(*parts)]


def block_outputs(model: keras.Model, images, batch_size: int = 256) -> Dict[str, np.ndarray]:
    """``{block name: its output (post-add ReLU) on images}``, in inference mode.

    Args:
        model: The (trained) network.
        images: Array of images, or inputs by name.
        batch_size: Examples per forward pass.
    """
    return {name: pair[1] for name, pair in block_streams(model, images, batch_size).items()}


def block_streams(model: keras.Model, inputs, batch_size: int = 256) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    """``{block name: (its input, its output)}`` on ``inputs``, in inference mode, in graph order.

    Example:
        >>> x_in, x_out = block_streams(model, images)["stage1_block2"]
    """
    view = graph.flat(model)
    found = surgery.find_blocks(view)
    tensors = [graph.output_of(view, name) for b in found for name in (b.input_layer, b.output_layer)]
    values = run_in_batches(keras.Model(view.input, tensors), inputs, batch_size)
    return {b.name: (values[2 * i], values[2 * i + 1]) for i, b in enumerate(found)}


def position_weights(inputs, hidden: np.ndarray) -> Optional[np.ndarray]:
    """The padding mask of ``inputs`` as weights of ``hidden``'s positions (``(batch, length)`` for
    ``(batch, length, features)`` states), or None when there is none or it does not fit."""
    if not isinstance(inputs, dict) or PADDING_MASK not in inputs:
        return None
    mask = np.asarray(inputs[PADDING_MASK], dtype="float64")
    return mask if mask.shape == hidden.shape[:-1] else None
