"""Random: a seeded uniform score per block (the paper's Table 1 baseline)."""

from __future__ import annotations

from typing import Dict

import numpy as np

from tf_lottery.surgery import residual as surgery
from tf_lottery.criteria.registry import register


def random_filters(model, groups, data=None, seed: int = 0) -> Dict[str, np.ndarray]:
    """seeded uniform score per filter"""
    return {g.conv: np.random.default_rng([seed, *g.conv.encode()]).random(g.filters) for g in groups}


@register("random", prune_first="low", needs="nothing", when="any", reads_output=False,
          summary="seeded uniform score",
          filters=random_filters)
def random_scores(model, data=None, seed: int = 0) -> Dict[str, float]:
    """Uniform scores in [0, 1), one per block, from ``seed`` and the block's name.

    A block's score depends only on the seed and its name, so it is the same in the
    dense model and in any ticket that still has the block.
    """
    scores = {}
    for name in surgery.blocks(model):
        rng = np.random.default_rng([seed, *name.encode()])
        scores[name] = float(rng.random())
    return scores
