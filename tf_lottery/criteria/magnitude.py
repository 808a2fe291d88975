"""Magnitude: the L1 norm of a block's kernels (its scored weights), plain or normalised per stage.

The paper (App. A.2) rejects the plain L1 criterion for layer pruning: block magnitude
tracks the stage (wider stages have smaller he_normal weights), so a global ranking
always removes early-stage blocks. ``magnitude_stage`` divides each block's score by
the mean score of its stage's blocks, which makes stages comparable. Low = unimportant.
"""

from __future__ import annotations

from typing import Dict

import numpy as np

from tf_lottery.surgery import residual as surgery
from tf_lottery.criteria import base
from tf_lottery.criteria.registry import register


def magnitude_weight_scores(model, data=None) -> Dict[str, np.ndarray]:
    """``|w|`` of every scored weight (:func:`base.scored_weights`; ``data`` is ignored)."""
    return {name: np.abs(model.trainable_variables[i].numpy()) for name, i in base.prunable_kernels(model).items()}


def magnitude_filters(model, groups, data=None, aggregation: str = "mean") -> Dict[str, np.ndarray]:
    """mean ``|w|`` over the filter's kernel (sum: its L1 norm)"""
    return base.per_filter(magnitude_weight_scores(model), groups, aggregation)


@register("magnitude", prune_first="low", needs="nothing", when="any", reads_output=False,
          summary="L1 of the block's conv kernels (rejected by the paper: tracks the stage)",
          filters=magnitude_filters)
def magnitude(model, data=None, aggregation: str = "mean") -> Dict[str, float]:
    """Block scores: mean (default, the authors' L1 layer criterion) or sum of ``|w|``."""
    return base.aggregate(model, magnitude_weight_scores(model), aggregation)


@register("magnitude_stage", prune_first="low", needs="nothing", when="any", reads_output=False,
          summary="magnitude divided by its stage's mean: comparable across stages")
def magnitude_stage(model, data=None, aggregation: str = "mean") -> Dict[str, float]:
    """Block magnitude divided by the mean magnitude of the blocks of its stage."""
    scores = magnitude(model, aggregation=aggregation)
    stage_of = {b.name: b.stage for b in surgery.find_blocks(model)}
    means = {
        stage: np.mean([s for b, s in scores.items() if stage_of[b] == stage])
        for stage in set(stage_of.values())
    }
    return {b: float(s / means[stage_of[b]]) for b, s in scores.items()}
