"""expectABS: the mean absolute activation of a block's output (after training).

Tan and Motani, "DropNet: Reducing Neural Network Complexity via Iterative Pruning",
ICML 2020, at block level as in the paper's Table 1: per channel, the mean ``|activation|``
of the block output (post-add ReLU) over images and positions; the block's score is the
mean over channels. Low = unimportant.
"""

from __future__ import annotations

from typing import Dict

import numpy as np

from tf_lottery.criteria import base
from tf_lottery.criteria.registry import register
from tf_lottery.criteria.features import block_outputs


def expectabs_filters(model, groups, data, batch_size: int = 256) -> Dict[str, np.ndarray]:
    """mean ``|activation|`` of the filter's feature map (after training)"""
    maps = base.group_activations(model, groups, base.images_of(data), batch_size)
    return {conv: np.abs(values).mean(axis=(0, 1, 2)).astype("float64") for conv, values in maps.items()}


@register("expectabs", prune_first="low", needs="images", when="trained",
          summary="mean |activation| of the block output (Tan & Motani 2020)", filters=expectabs_filters)
def expectabs(model, data, batch_size: int = 256) -> Dict[str, float]:
    """Block scores from mean absolute activations (see module docstring)."""
    images, _ = base.as_batch(data, need_labels=False)
    return {
        name: float(np.abs(maps).mean(axis=(0, 1, 2)).mean())
        for name, maps in block_outputs(model, images.numpy(), batch_size).items()
    }
