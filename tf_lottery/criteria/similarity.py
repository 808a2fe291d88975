"""How alike two representations are: linear CKA (Kornblith et al., ICML 2019), and the cosine and
angular distance of hidden states position by position (the after-training criteria of the layer
pruning literature for language models).

Linear CKA compares two sets of features of the same examples, ``x`` of shape (n, p) and ``y``
of shape (n, q)::

    CKA(x, y) = ||yᵀx||²_F / (||xᵀx||_F ||yᵀy||_F)      (columns centred first)

It is 1 for identical representations, invariant to orthogonal transforms and isotropic
scaling of either side, and is not invariant to arbitrary invertible linear maps (the
paper's argument for it). The *debiased* form replaces each HSIC by its unbiased estimator
(Song et al., JMLR 2012), as the CKA authors' reference code does with ``debiased=True``,
so that few examples and many features do not inflate the similarity.

The cosine of two hidden states is taken along their last axis at every other position (a
token, or a pixel of a feature map); :func:`mean_cosine` averages it over the positions a
weight keeps (a padding mask), :func:`angular_distance` is ``arccos(cos) / π`` averaged the same way.

Example:
    >>> x = np.random.default_rng(0).normal(size=(100, 8))
    >>> round(linear_cka(x, 3 * x), 6)
    1.0
"""

from __future__ import annotations

from typing import Optional

import numpy as np


def _gram_hsic(x: np.ndarray, y: np.ndarray, debiased: bool) -> float:
    """HSIC of linear kernels from features (biased: centred Frobenius; debiased: Song et al.)."""
    n = x.shape[0]
    if not debiased:
        if x.shape[1] + y.shape[1] <= n:  # ||yᵀx||² from features, cheaper with fewer features than examples
            return float(np.sum((y.T @ x) ** 2))
        return float(np.sum((x @ x.T) * (y @ y.T)))  # the same number from (n, n) Gram matrices
    kx, ky = x @ x.T, y @ y.T
    np.fill_diagonal(kx, 0.0)
    np.fill_diagonal(ky, 0.0)
    ones_x, ones_y = kx.sum(axis=0), ky.sum(axis=0)
    trace_term = float(np.sum(kx * ky))
    total_term = float(ones_x.sum() * ones_y.sum()) / ((n - 1) * (n - 2))
    cross_term = float(ones_x @ ones_y) * 2.0 / (n - 2)
    return (trace_term + total_term - cross_term) / (n * (n - 3))


def linear_cka(x, y, debiased: bool = False) -> float:
    """Linear CKA between two representations of the same examples.

    Args:
        x: ``(examples, features)`` array (higher-rank arrays are flattened per example).
        y: ``(examples, other features)`` array of the same examples, in the same order.
        debiased: Use the unbiased HSIC estimator (needs at least 4 examples).

    Returns:
        The similarity, in [0, 1] for the biased form (the debiased one can dip slightly
        below 0 for unrelated representations).

    Raises:
        ValueError: for different example counts, too few examples, or a constant
            representation (its CKA is undefined).

    Example:
        >>> x = np.random.default_rng(0).normal(size=(100, 8))
        >>> round(tl.evals.linear_cka(x, 3 * x), 6)
        1.0
    """
    x = np.asarray(x, dtype="float64").reshape(len(x), -1)
    y = np.asarray(y, dtype="float64").reshape(len(y), -1)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y must hold the same examples; got {x.shape[0]} and {y.shape[0]} rows")
    if x.shape[0] < (4 if debiased else 2):
        raise ValueError(f"linear_cka needs at least {4 if debiased else 2} examples; got {x.shape[0]}")
    x = x - x.mean(axis=0)
    y = y - y.mean(axis=0)
    if debiased and x.shape[0] > 5000:
        raise ValueError(f"debiased linear_cka builds (n, n) kernels; {x.shape[0]} examples is too many "
                         "(pass at most 5000)")
    xy = _gram_hsic(x, y, debiased)
    xx = _gram_hsic(x, x, debiased)
    yy = _gram_hsic(y, y, debiased)
    if xx <= 0 or yy <= 0:
        raise ValueError("linear_cka of a constant representation is undefined (its centred features are all 0)")
    return float(xy / np.sqrt(xx * yy))


def _per_position(x, y, weights: Optional[np.ndarray]):
    """Rows of ``x`` and ``y`` (same shape, features on the last axis), one per position, and their weights."""
    x, y = np.asarray(x, dtype="float64"), np.asarray(y, dtype="float64")
    if x.shape != y.shape:
        raise ValueError(f"hidden states to compare must have one shape; got {x.shape} and {y.shape}")
    rows = x.reshape(-1, x.shape[-1]), y.reshape(-1, y.shape[-1])
    if weights is None:
        kept = np.ones(len(rows[0]))
    else:  # weights of the leading axes, e.g. (batch, length) for (batch, length, features)
        weights = np.asarray(weights, dtype="float64")
        kept = np.broadcast_to(weights.reshape(weights.shape + (1,) * (x.ndim - 1 - weights.ndim)),
                               x.shape[:-1]).reshape(-1)
    if kept.sum() <= 0:
        raise ValueError("no position is kept (the weights or padding mask are all 0)")
    return rows[0], rows[1], kept


def _cosines(x, y) -> np.ndarray:
    """Row by row cosines; two zero rows are alike (1), a zero row and another are not (0)."""
    norm_x, norm_y = np.linalg.norm(x, axis=1), np.linalg.norm(y, axis=1)
    norms = norm_x * norm_y
    both_zero = (norm_x == 0) & (norm_y == 0)
    return np.where(norms > 0, np.sum(x * y, axis=1) / np.where(norms > 0, norms, 1.0), both_zero.astype("float64"))


def mean_cosine(x, y, weights: Optional[np.ndarray] = None) -> float:
    """Mean cosine similarity of ``x`` and ``y`` along their last axis, over every other position.

    Args:
        x: Hidden states, ``(batch, ..., features)``.
        y: Hidden states of the same shape.
        weights: ``(batch, ...)`` leading axes of the positions' weights (a padding mask), or None.

    Returns:
        The weighted mean cosine, in [-1, 1] (two zero vectors count as alike, 1; a zero vector
        and another as unrelated, 0: a block that zeroes the state changes it completely).

    Raises:
        ValueError: for different shapes, or weights that keep no position.

    Example:
        >>> mean_cosine(np.ones((2, 3, 4)), 2 * np.ones((2, 3, 4)))
        1.0
    """
    rows_x, rows_y, kept = _per_position(x, y, weights)
    return float(np.sum(_cosines(rows_x, rows_y) * kept) / kept.sum())


def angular_distance(x, y, weights: Optional[np.ndarray] = None) -> float:
    """Mean ``arccos(cos(x, y)) / π`` over the positions (:func:`mean_cosine`'s arguments), in [0, 1].

    Example:
        >>> angular_distance(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]))
        0.5
    """
    rows_x, rows_y, kept = _per_position(x, y, weights)
    angles = np.arccos(np.clip(_cosines(rows_x, rows_y), -1.0, 1.0)) / np.pi
    return float(np.sum(angles * kept) / kept.sum())
