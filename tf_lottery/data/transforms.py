"""What the in-memory and the streaming data paths share: resizing, augmentation, sharding.

Training data and every export's raw-image signature resize through :func:`resize_images`,
so they agree bit for bit.

Example:
    >>> resize(np.zeros((2, 28, 28, 1), "float32"), (64, 64, 3)).shape
    (2, 64, 64, 3)
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def augmenter(options):
    """``(image, seed pair) -> image``: the stateless, seeded crop and flip of ``options`` (a
    :class:`~tf_lottery.data.pipeline.DataOptions`; None
    when both are off). Both data paths augment through it."""
    crop, flip = options.crop, options.flip
    if not (crop or flip):
        return None

    def augment(image, seed):
        if crop:
            padded = tf.pad(image, [[4, 4], [4, 4], [0, 0]])
            image = tf.image.stateless_random_crop(padded, tf.shape(image), seed=seed)
        if flip:
            image = tf.image.stateless_random_flip_left_right(image, seed=seed + 1)
        return image

    return augment


def shard_by_data(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """``dataset`` with tf.distribute's auto-sharding by data: under several workers each one
    keeps its share of every batch (an in-memory dataset has no files to shard by)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def resize_images(images: tf.Tensor, shape) -> tf.Tensor:
    """Float images (a batch) resized to ``shape`` = (height, width, channels): bilinear, with
    antialiasing only when shrinking (where it matters, and where TFLite has no kernel for it;
    also when the batch's size is not known, as in a stream of images of varying sizes),
    a grey image repeated over the channels. Training data and every export's raw-image
    signature go through this one function, so they agree bit for bit.
    """
    height, width, channels = (int(d) for d in shape)
    known = images.shape[1] is not None and images.shape[2] is not None  # a stream's images may vary in size
    shrinking = not known or height < images.shape[1] or width < images.shape[2]
    out = tf.image.resize(images, (height, width), antialias=shrinking)
    if out.shape[-1] != channels:
        out = tf.repeat(out, channels, axis=-1)
    return out


def resize(images: np.ndarray, shape, batch: int = 2048) -> np.ndarray:
    """Float images resized to ``shape`` (see :func:`resize_images`): how a model with another
    input shape is fed (``--input_shape=64,64,3``).

    Raises:
        ValueError: for a channel change other than 1 -> C.

    Example:
        >>> resize(np.zeros((2, 28, 28, 1), "float32"), (64, 64, 3)).shape
        (2, 64, 64, 3)
    """
    shape = tuple(int(d) for d in shape)
    if images.shape[1:] == shape:
        return images
    if images.shape[-1] not in (1, shape[-1]):
        raise ValueError(f"cannot feed {images.shape[-1]}-channel images to a model with input shape "
                         f"{shape}: only grey images are repeated over the channels")
    parts = [resize_images(images[start:start + batch], shape).numpy() for start in range(0, len(images), batch)]
    return np.concatenate(parts) if parts else np.zeros((0, *shape), "float32")


def take_first(split: tuple, count, what: str, unit: str = "") -> tuple:
    """The first ``count`` examples of ``(inputs, labels)`` (inputs an array or a dict of arrays); all
    when ``count`` is None.

    Raises:
        ValueError: for a count outside 1 to the split's size, naming ``what``.
    """
    if count is None:
        return split
    inputs, labels = split
    if count < 1 or count > len(labels):
        raise ValueError(f"{what} must be between 1 and {len(labels)}{unit}; got {count}")
    first = {name: value[:count] for name, value in inputs.items()} if isinstance(inputs, dict) else inputs[:count]
    return first, labels[:count]
