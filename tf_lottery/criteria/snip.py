"""SNIP: connection sensitivity, ``|w * dL/dw|`` on one labelled batch at initialization.

Lee, Ajanthan and Torr, "SNIP: Single-shot Network Pruning based on Connection
Sensitivity", ICLR 2019. The saliency of a weight is the magnitude of the loss change
from removing it, to first order: ``|∂L/∂c| = |w ⊙ g|`` at c = 1. A block's score is the
mean (default) or sum of its scored weights' saliencies (conv and dense kernels, attention
projections, embeddings: :func:`tf_lottery.criteria.base.scored_weights`); low = unimportant. Neither
aggregation ranks blocks in the order of the real loss change of removing them
(``scripts/criteria_agreement.py``); the mean is the default, as for GraSP and as in the
paper authors' layer criteria.
"""

from __future__ import annotations

from typing import Dict

import numpy as np
import tensorflow as tf

from tf_lottery.criteria import base
from tf_lottery.criteria.registry import register


def snip_weight_scores(model, data) -> Dict[str, np.ndarray]:
    """Per-weight SNIP saliency ``|w * dL/dw|`` of every scored weight (:func:`base.scored_weights`).

    Args:
        model: The network (unchanged by this call).
        data: ``(images, labels)``.

    Returns:
        ``{layer name: array shaped like its kernel}``.
    """
    images, labels = base.as_batch(data)
    kernels = base.prunable_kernels(model)
    params = [tf.convert_to_tensor(v.value) for v in model.trainable_variables]
    with tf.GradientTape() as tape:
        tape.watch(params)
        loss = base.cross_entropy(model, base.forward(model, images, params), labels)
    grads = base.dense_gradients(tape.gradient(loss, params), params)
    return {name: np.abs((params[i] * grads[i]).numpy()) for name, i in kernels.items()}


def snip_filters(model, groups, data, aggregation: str = "mean") -> Dict[str, np.ndarray]:
    """mean ``|w * dL/dw|`` over the filter's kernel"""
    return base.per_filter(snip_weight_scores(model, data), groups, aggregation)


@register("snip", prune_first="low", needs="labelled_batch", when="init",
          summary="|w * dL/dw| (Lee et al. 2019)", filters=snip_filters)
def snip(model, data, aggregation: str = "mean") -> Dict[str, float]:
    """Block scores from SNIP saliencies (see module docstring)."""
    return base.aggregate(model, snip_weight_scores(model, data), aggregation)
