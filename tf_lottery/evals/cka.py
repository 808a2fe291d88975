"""Linear CKA between two networks' representations (Kornblith et al., ICML 2019).

Centered kernel alignment with a linear kernel compares two sets of features of the same
examples, ``x`` of shape (n, p) and ``y`` of shape (n, q)::

    CKA(x, y) = ||yᵀx||²_F / (||xᵀx||_F ||yᵀy||_F)      (columns centred first)

It is 1 for identical representations, invariant to orthogonal transforms and isotropic
scaling of either side, and is not invariant to arbitrary invertible linear maps (the
paper's argument for it). The *debiased* form replaces each HSIC by its unbiased estimator
(Song et al., JMLR 2012), as the CKA authors' reference code does with ``debiased=True``,
so that few examples and many features do not inflate the similarity.

The paper compares the dense network with its tickets by CKA (its Tables 2-3 discussion)
without saying on which layer; :func:`representations` takes the penultimate features (the
classifier's input) and every stage's output (the output of the last block of each stage),
so both views are reported.
"""

from __future__ import annotations

from typing import Dict, List

import keras
import numpy as np

from tf_lottery.graph import reader as graph
from tf_lottery.graph.heads import penultimate
from tf_lottery.surgery import residual as surgery


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


def stage_outputs(model: keras.Model) -> Dict[str, keras.KerasTensor]:
    """``{"stage<k>": output of the last block of stage k}`` for every stage with blocks."""
    found = {}
    for block in surgery.find_blocks(model):
        found[f"stage{block.stage}"] = block  # blocks come in graph order: the last one wins
    return {name: graph.output_of(model, block.output_layer) for name, block in sorted(found.items())}


def representations(model: keras.Model, images: np.ndarray, batch_size: int = 250) -> Dict[str, np.ndarray]:
    """Features of ``images``: ``{"stage1": (n, h, w, c), ..., "penultimate": (n, d)}``, input to output."""
    view = graph.flat(model)
    outputs = {**stage_outputs(view), "penultimate": penultimate(view)}
    extractor = keras.Model(view.inputs, list(outputs.values()))
    values = extractor.predict(images, batch_size=batch_size, verbose=0)
    return dict(zip(outputs, values if isinstance(values, list) else [values]))


def ordered_views(views) -> List[str]:
    """Views from input to output: stage1, stage2, ..., penultimate (cached JSON sorts them by name).

    Example:
        >>> ordered_views(["penultimate", "stage10", "stage2"])
        ['stage2', 'stage10', 'penultimate']
    """
    return sorted(views, key=lambda v: (v == "penultimate", int(v[5:]) if v.startswith("stage") else 0, v))


def compare(reference: keras.Model, model: keras.Model, images: np.ndarray) -> Dict[str, Dict[str, float]]:
    """Linear and debiased linear CKA between two models' features, view by view.

    Args:
        reference: The dense network.
        model: The ticket (the same stages, fewer blocks).
        images: The evaluation batch, preprocessed as the models expect.

    Returns:
        ``{view: {"linear": cka, "debiased": cka}}`` for "penultimate" and every stage both have.
    """
    first, second = representations(reference, images), representations(model, images)
    return {view: {"linear": linear_cka(first[view], second[view]),
                   "debiased": linear_cka(first[view], second[view], debiased=True)}
            for view in first if view in second}


__all__: List[str] = ["compare", "linear_cka", "ordered_views", "penultimate", "representations", "stage_outputs"]
