"""HRank: the average rank of a block's output feature maps (after training).

Lin et al., "HRank: Filter Pruning using High-Rank Feature Map", CVPR 2020, used at
block level as in the paper's Table 1: for every image and channel of the block output
(post-add ReLU), the matrix rank of the H x W feature map; a channel's score is the mean
over images divided by min(H, W) (the largest possible rank, so stages are comparable);
the block's score is the mean over channels. Low = unimportant.
"""

from __future__ import annotations

from typing import Dict

import numpy as np

from tf_lottery.criteria import base
from tf_lottery.criteria.registry import register
from tf_lottery.criteria.features import block_outputs


def hrank_filters(model, groups, data, batch_size: int = 256) -> Dict[str, np.ndarray]:
    """mean rank of the filter's feature maps (after training)"""
    scores = {}
    for conv, values in base.group_activations(model, groups, base.images_of(data), batch_size).items():
        _, h, w, _ = values.shape
        ranks = np.linalg.matrix_rank(np.transpose(values, (0, 3, 1, 2)).astype("float64"))
        scores[conv] = ranks.mean(axis=0) / min(h, w)
    return scores


@register("hrank", prune_first="low", needs="images", when="trained",
          summary="mean rank of block output feature maps (Lin et al. 2020)", filters=hrank_filters)
def hrank(model, data, batch_size: int = 256) -> Dict[str, float]:
    """Block scores from feature-map ranks (see module docstring)."""
    images, _ = base.as_batch(data, need_labels=False)
    scores = {}
    for name, maps in block_outputs(model, images.numpy(), batch_size).items():
        _, h, w, _ = maps.shape
        ranks = np.linalg.matrix_rank(np.transpose(maps, (0, 3, 1, 2)).astype("float64"))
        scores[name] = float(ranks.mean() / min(h, w))
    return scores
