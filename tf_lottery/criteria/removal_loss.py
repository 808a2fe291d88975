"""Removal loss: how much the loss rises when a block alone is removed, the direct measure.

``score(b) = L(network without b) - L(network)`` on a labelled batch, in inference mode, each block
bypassed in a view that shares the network's weights (nothing is copied). ``L`` is the criteria's
loss: the cross-entropy of a classifier, the next-token loss of a language model
(:mod:`tf_lottery.criteria.language`), or the user's. For a language model the ranking is the
perplexity increase's (perplexity is ``exp(L)``, which only grows with ``L``), the measure Kim et
al. 2024 ("Shortened LLaMA", arXiv:2402.02834) prune by. Lowest first: the block whose removal
costs least.

Example:
    >>> tl.criteria.get("removal_loss")(trained_model, (images, labels))
"""

from __future__ import annotations

from typing import Dict

import numpy as np

from tf_lottery import surgery
from tf_lottery.criteria import base
from tf_lottery.criteria.registry import register


def batch_loss(model, images, labels) -> float:
    """The criteria's loss of ``model`` on a batch, in inference mode."""
    return float(base.cross_entropy(model, model(images, training=False), labels))


@register("removal_loss", prune_first="low", needs="labelled_batch", when="trained",
          summary="loss without the block minus the loss with it (perplexity increase for an LM)")
def removal_loss(model, data) -> Dict[str, float]:
    """Block scores: the loss increase when each block alone is bypassed (see module docstring)."""
    images, labels = base.as_batch(data)
    dense = batch_loss(model, images, labels)
    scores = {}
    for block in surgery.find_blocks(model):
        if block.removable:
            scores[block.name] = batch_loss(surgery.bypassed(model, [block.name]), images, labels) - dense
        else:  # bypassing it would break a shape: it is never removed, so it scores the largest rise seen
            scores[block.name] = np.nan
    highest = max((v for v in scores.values() if np.isfinite(v)), default=0.0)
    return {name: highest if np.isnan(value) else value for name, value in scores.items()}
