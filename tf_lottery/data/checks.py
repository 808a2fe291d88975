"""Checks on images and labels before any TensorFlow op sees them.

A TensorFlow kernel given a batch it was not built for fails deep inside (an image with 0
channels kills the process with SIGFPE in a convolution), or silently computes something
else (16x16 images through a model built for 32x32). Every array that enters tf_lottery
from outside, a dataset's split or a caller's scoring batch, is checked here first, and a
bad one is refused with a ``ValueError`` naming what is wrong and what is allowed.

Example:
    >>> check_labels(np.array([0, 3, 1]), num_classes=10, what="scoring labels")
    array([0, 3, 1])
    >>> check_labels(np.array([0, 12]), num_classes=10, what="scoring labels")
    Traceback (most recent call last):
    ValueError: scoring labels must be class indices from 0 to 9; got 12 (at index 1)
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np


def check_images(images, what: str, expected_shape: Optional[Sequence[Optional[int]]] = None) -> np.ndarray:
    """Checks a batch of images: numbers, a known rank, no empty axis, finite values.

    Args:
        images: An array-like batch, images along the first axis.
        what: How the error names the batch ("scoring images", "the train split's images").
        expected_shape: The shape of one image (without the batch axis) that the model takes;
            ``None`` entries are free. None: any shape of rank >= 1.

    Returns:
        The images as a numpy array (not copied when already one).

    Raises:
        ValueError: for a non-numeric or boolean array, an empty batch or axis, a shape that is
            not ``expected_shape``, or a NaN or infinite value (naming the first image holding one).
    """
    try:
        array = np.asarray(images)
    except (ValueError, TypeError) as error:  # ragged lists
        raise ValueError(f"{what} must be one array of equally shaped images; {error}") from None
    if array.dtype == bool or not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"{what} must be numbers (an integer or float array); got dtype {array.dtype}")
    if np.issubdtype(array.dtype, np.complexfloating):  # a model of real weights would drop the imaginary part
        raise ValueError(f"{what} must be real numbers (an integer or float array); got dtype {array.dtype}: pass "
                         "the real part, the magnitude, or both as channels")
    if array.ndim < 2:
        raise ValueError(f"{what} must be a batch of images (rank >= 2, images along the first axis); "
                         f"got shape {array.shape}")
    if array.shape[0] == 0:
        raise ValueError(f"{what} is empty (shape {array.shape})")
    if 0 in array.shape[1:]:
        raise ValueError(f"{what} have an empty axis: shape {array.shape} (each image needs at least one pixel "
                         "and one channel)")
    if expected_shape is not None:
        expected = tuple(expected_shape)
        image = array.shape[1:]
        if len(image) != len(expected) or any(e is not None and e != s for e, s in zip(expected, image)):
            shown = "x".join("?" if e is None else str(e) for e in expected)
            raise ValueError(f"{what} have shape {'x'.join(map(str, image))} per image but the model takes "
                             f"{shown} (height x width x channels); resize them, or build the model for this shape")
    if np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.complexfloating):
        finite = np.isfinite(array.reshape(array.shape[0], -1)).all(axis=1)
        if not finite.all():
            first = int(np.flatnonzero(~finite)[0])
            raise ValueError(f"{what} hold NaN or infinite values ({int((~finite).sum())} of {len(finite)} images, "
                             f"the first at index {first}); every criterion and loss would be NaN")
    return array


def check_labels(labels, what: str, num_classes: Optional[int] = None, count: Optional[int] = None,
                 one_hot: bool = False) -> np.ndarray:
    """Checks labels: whole numbers from 0 to ``num_classes - 1``, one per image.

    Args:
        labels: Class indices (1-D), or with ``one_hot=True`` also one-hot rows (2-D).
        what: How the error names the labels.
        num_classes: The number of classes (None: any index >= 0).
        count: How many labels there must be (the number of images), or None.
        one_hot: Accept one-hot rows (they are turned into indices).

    Returns:
        The labels as a 1-D int64 array of class indices.

    Raises:
        ValueError: for another rank, a non-numeric dtype, fractions, an index outside the
            classes (naming the first one and where it is), or a count that is not ``count``.
    """
    array = np.asarray(labels)
    if array.dtype == bool or not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"{what} must be class indices (integers); got dtype {array.dtype}")
    if one_hot and array.ndim == 2:
        if num_classes is not None and array.shape[1] != num_classes:
            raise ValueError(f"{what} are one-hot rows of width {array.shape[1]} but the model has {num_classes} "
                             "classes")
        if array.size and not (np.isin(array, (0, 1)).all() and (array.sum(axis=1) == 1).all()):
            raise ValueError(f"{what} are 2-D but not one-hot rows (one 1 per row, zeros elsewhere)")
        array = array.argmax(axis=1)
    if array.ndim != 1:
        allowed = "a 1-D array of class indices" + (" or one-hot rows" if one_hot else "")
        raise ValueError(f"{what} must be {allowed}; got shape {array.shape}")
    if count is not None and len(array) != count:
        raise ValueError(f"{what}: {len(array)} labels for {count} images; give one label per image")
    if array.size:
        if not np.isfinite(array).all() or np.any(array != np.round(array)):
            bad = int(np.flatnonzero(~np.isfinite(array) | (array != np.round(array)))[0])
            raise ValueError(f"{what} must be whole numbers; got {array[bad].item()!r} at index {bad}")
        top = "" if num_classes is None else f" to {num_classes - 1}"
        outside = (array < 0) | (array >= num_classes if num_classes is not None else False)
        if outside.any():
            bad = int(np.flatnonzero(outside)[0])
            raise ValueError(f"{what} must be class indices from 0{top}; got {array[bad]:g} (at index {bad})")
    return array.astype("int64")
