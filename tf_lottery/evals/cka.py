"""Linear CKA between two networks' representations (Kornblith et al., ICML 2019; the measure
itself is :func:`tf_lottery.criteria.similarity.linear_cka`, which the CKA criterion shares).

The paper compares the dense network with its tickets by CKA (its Tables 2-3 discussion)
without saying on which layer; :func:`representations` takes the penultimate features (the
classifier's input) and every stage's output (the output of the last block of each stage),
so both views are reported.
"""

from __future__ import annotations

from typing import Dict, List

import keras
import numpy as np

from tf_lottery.criteria.similarity import linear_cka
from tf_lottery.graph import reader as graph
from tf_lottery.graph.heads import penultimate
from tf_lottery.surgery import residual as surgery


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
