"""CKA of the network with and without a block (Pons et al. 2024, "Effective Layer Pruning Through
Similarity Metric Perspective", arXiv:2405.17081, the seed paper's authors): how alike the final
representation stays when a block alone is removed.

``score(b) = CKA(F(x), F_without_b(x))``, linear CKA (Kornblith et al. 2019) of the penultimate
features (the classifier's input) of the network and of a view with block ``b`` bypassed, on the
same batch in inference mode. A network without a Dense head (a language model's backbone) is
compared on its output's hidden states, one example per real token. The block whose removal keeps
the representation most alike goes first: highest first.

Example:
    >>> tl.criteria.get("cka")(trained_model, images)
"""

from __future__ import annotations

from typing import Dict

import keras
import numpy as np

from tf_lottery import graph, surgery
from tf_lottery.criteria import base, features
from tf_lottery.criteria.registry import register
from tf_lottery.criteria.similarity import linear_cka


def _representation(model: keras.Model):
    """The tensor compared: the classifier's input, else the model's (first) output."""
    try:
        return graph.heads.penultimate(model)
    except ValueError:  # no Dense layer: a backbone
        return model.outputs[0]


def _examples(hidden: np.ndarray, data) -> np.ndarray:
    """``(examples, features)``: a sequence's real positions as examples, else one row per input."""
    weights = features.position_weights(data, hidden)
    if weights is not None:
        return hidden[weights > 0]
    return hidden.reshape(len(hidden), -1)


def _features(model: keras.Model, data, batch_size: int) -> np.ndarray:
    view = graph.flat(model)
    (hidden,) = features.run_in_batches(keras.Model(view.input, _representation(view)), data, batch_size)
    return _examples(hidden, data)


@register("cka", prune_first="high", needs="images", when="trained",
          summary="linear CKA of the final features with and without the block (Pons et al. 2024)")
def cka(model, data, batch_size: int = 256) -> Dict[str, float]:
    """Block scores: the CKA of the network's features with and without each block (see module docstring)."""
    inputs = base.inputs_of(data)
    reference = _features(model, inputs, batch_size)
    scores = {}
    for block in surgery.find_blocks(model):
        if not block.removable:
            scores[block.name] = 0.0  # never removed: the lowest similarity
            continue
        try:
            scores[block.name] = linear_cka(reference, _features(surgery.bypassed(model, [block.name]), inputs,
                                                                 batch_size))
        except ValueError as error:  # a constant representation: its CKA is undefined
            raise ValueError(f"criterion 'cka' on {model.name!r} without block {block.name!r}: {error}; the "
                             "network's features do not vary over this batch (a dead block or input?)") from error
    return scores
