"""PLS: VIP scores of a partial-least-squares regression from block features to labels.

Jordao et al., "Discriminative Layer Pruning for Convolutional Neural Networks", IEEE
JSTSP 2020, as used in the paper's Table 1: every block's output is globally average
pooled to one feature per channel; the features of all blocks are concatenated and one
PLS regression (scikit-learn's ``PLSRegression``) is fit to the one-hot labels; the
Variable Importance in Projection (VIP) of each feature follows from the PLS weights,
scores and loadings; a block's score is the mean VIP of its features. One global fit
makes the scores comparable across blocks. Low = unimportant.
"""

from __future__ import annotations

from typing import Dict

import numpy as np
from sklearn.cross_decomposition import PLSRegression

from tf_lottery.criteria import base
from tf_lottery.criteria.registry import register
from tf_lottery.criteria.features import block_outputs


def vip(pls: PLSRegression) -> np.ndarray:
    """VIP of every input feature of a fitted ``PLSRegression``.

    ``VIP_j = sqrt(p * Σ_a SS_a (w_ja / ||w_a||)² / Σ_a SS_a)`` with
    ``SS_a = ||t_a||² ||q_a||²`` the variance of Y explained by component a.
    """
    t, w, q = pls.x_scores_, pls.x_weights_, pls.y_loadings_
    explained = (t**2).sum(axis=0) * (q**2).sum(axis=0)
    normalised = (w / np.linalg.norm(w, axis=0, keepdims=True)) ** 2
    return np.sqrt(w.shape[0] * (normalised @ explained) / explained.sum())


@register("pls", prune_first="low", needs="labelled_batch", when="trained",
          summary="mean VIP of a PLS fit of pooled block outputs to labels (Jordao et al. 2020)")
def pls(model, data, n_components: int = 2, batch_size: int = 256) -> Dict[str, float]:
    """Block scores from PLS-VIP (see module docstring).

    Raises:
        ValueError: if ``n_components`` < 1.
    """
    if n_components < 1:
        raise ValueError(f"n_components must be >= 1; got {n_components}")
    images, labels = base.as_batch(data)
    outputs = block_outputs(model, images.numpy(), batch_size)
    features = [maps.mean(axis=(1, 2)) for maps in outputs.values()]
    x = np.concatenate(features, axis=1).astype("float64")
    y = np.eye(int(labels.numpy().max()) + 1)[labels.numpy()]
    fit = PLSRegression(n_components=min(n_components, x.shape[0] - 1, x.shape[1]), scale=True).fit(x, y)
    importance = vip(fit)
    scores, start = {}, 0
    for name, block_features in zip(outputs, features):
        width = block_features.shape[1]
        scores[name] = float(importance[start:start + width].mean())
        start += width
    return scores
