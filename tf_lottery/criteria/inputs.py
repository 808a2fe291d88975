"""What a criterion is given and what it gives back, checked at the registry's door.

Before any TensorFlow op runs, the scoring data is checked against the model's input
(rank, shape per image, numbers, finite values) and, for a labelled batch, the labels against
its classes (:mod:`tf_lottery.data.checks`). After scoring, every score must be finite: one
NaN pixel or an overflow would otherwise rank blocks by NaN, which sorts arbitrarily, and a
ticket would still come out.

Example:
    >>> check_scores("grasp", {"stage1_block1": 0.2, "stage1_block2": float("nan")})
    Traceback (most recent call last):
    ValueError: criterion 'grasp' gave a non-finite score (nan) for 'stage1_block2' (1 of 2 scores) ...
"""

from __future__ import annotations

from typing import Mapping

import keras
import numpy as np

from tf_lottery.core import keras_internals
from tf_lottery.data.checks import check_images, check_labels


def check_scoring_data(model: keras.Model, data, needs: str, criterion: str, labels_checked: bool = True) -> None:
    """Refuses scoring data that ``model`` cannot take or that would give meaningless scores.

    Args:
        model: The model to be scored (one image input; others are checked for finite numbers only).
        data: ``(images, labels)``, or ``images`` for a criterion that needs only images.
        needs: The criterion's ``needs``: "labelled_batch", "images" or "nothing".
        criterion: Its name, for the messages.
        labels_checked: Whether the labels must be class indices of the model's classes
            (False under the user's own loss: they are whatever it takes).

    Raises:
        ValueError: naming the criterion and what is wrong with the data.
    """
    if needs == "nothing" or data is None:
        return
    pair = isinstance(data, (tuple, list)) and len(data) == 2
    if needs == "labelled_batch" and not pair:
        raise ValueError(f"criterion {criterion!r} needs a labelled batch: data=(images, labels); got "
                         f"{type(data).__name__}")
    images, labels = data if pair else (data, None)
    if isinstance(images, dict):
        count = check_named_inputs(model, images, f"criterion {criterion!r}: the scoring inputs")
    else:
        single = len(model.inputs) == 1
        expected = tuple(model.inputs[0].shape[1:]) if single else None
        count = len(check_images(images, f"criterion {criterion!r}: the scoring images", expected))
    if labels is not None and needs == "labelled_batch" and labels_checked:
        classes = model.outputs[0].shape[-1] if len(model.outputs) == 1 else None
        check_labels(labels, f"criterion {criterion!r}: the scoring labels", num_classes=classes,
                     count=count, one_hot=True)


def check_named_inputs(model: keras.Model, inputs: dict, what: str) -> int:
    """Checks inputs given by name (a language model's ``token_ids`` and ``padding_mask``) against the model's.

    Args:
        model: The model.
        inputs: ``{input name: array}``, one entry per input of ``model``.
        what: How the error names them.

    Returns:
        The number of examples.

    Raises:
        ValueError: for a missing or unknown name, an array that is not numbers, a shape the input
            does not take, a float array for an integer input, non-finite values, or arrays of
            different lengths.
    """
    names = [keras_internals.producer_name(t) for t in model.inputs]
    if sorted(inputs) != sorted(names):
        raise ValueError(f"{what} must name the inputs of {model.name!r}, {sorted(names)}; got {sorted(inputs)}")
    lengths = {}
    for name, tensor in zip(names, model.inputs):
        array = np.asarray(inputs[name])
        expected = tuple(tensor.shape[1:])
        if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool) or np.issubdtype(
                array.dtype, np.complexfloating):
            raise ValueError(f"{what}: {name!r} must be real numbers; got dtype {array.dtype}")
        if array.ndim != len(expected) + 1 or any(e is not None and e != a for e, a in zip(expected, array.shape[1:])):
            raise ValueError(f"{what}: {name!r} has shape {array.shape} but the model takes (batch,) + {expected}")
        if "int" in str(tensor.dtype) and not (np.issubdtype(array.dtype, np.integer) or array.dtype == bool):
            raise ValueError(f"{what}: {name!r} must be integers (the model's input is {tensor.dtype}); got "
                             f"{array.dtype}")
        if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
            raise ValueError(f"{what}: {name!r} holds NaN or infinite values")
        lengths[name] = len(array)
    if len(set(lengths.values())) != 1 or 0 in lengths.values():
        raise ValueError(f"{what} must hold the same number (>= 1) of examples each; got {lengths}")
    return next(iter(lengths.values()))


def check_scores(criterion: str, scores: Mapping[str, object]) -> None:
    """Refuses scores that are not all finite, naming the criterion and the first bad entry.

    Args:
        criterion: The criterion's name.
        scores: ``{block: score}`` or ``{conv: array of filter scores}``.

    Raises:
        ValueError: for a NaN or infinite score.
    """
    flat = {name: np.asarray(value, dtype="float64").ravel() for name, value in scores.items()}
    bad = {name: np.flatnonzero(~np.isfinite(values)) for name, values in flat.items()}
    first = next((name for name in flat if bad[name].size), None)
    if first is None:
        return
    index = int(bad[first][0])
    where = f"{first!r}" if flat[first].size == 1 else f"filter {index} of {first!r}"
    count, total = sum(b.size for b in bad.values()), sum(v.size for v in flat.values())
    raise ValueError(f"criterion {criterion!r} gave a non-finite score ({flat[first][index]}) for {where} ({count} of "
                     f"{total} scores); the model's weights or outputs overflow on this data, so no ranking can be "
                     "trusted: check the data's scale and the model's initialization")

