"""From arrays to ``tf.data`` pipelines, with the paper group's preprocessing.

Preprocessing (the paper group's CIFAR code, e.g. ``cifar_resnet_data`` in
arturjordao/DeepPruning; the paper states none): images scaled to [0, 1], then the per-pixel mean of the
training split subtracted (``mean_subtraction``). Augmentation in the graph, training
split only: pad 4 pixels with zeros and crop back at random (``crop``), random
horizontal flip (``flip``). The training split can give a validation split off its end,
and every split can be cut to a subset, all seeded.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar, Dict, Optional

import numpy as np
import tensorflow as tf

from tf_lottery.data.checks import check_images, check_labels
from tf_lottery.data.datasets import Arrays, get
from tf_lottery.data.sequences import prepare_text
from tf_lottery.data.streaming import prepare_stream, resolve_path
from tf_lottery.data.transforms import (  # noqa: F401  (public here)
    augmenter, resize, resize_images, shard_by_data, take_first,
)


@dataclasses.dataclass(frozen=True)
class DataOptions:
    """How to turn a registered dataset into pipelines.

    Attributes:
        name: Registered dataset name.
        data_dir: Where the files are (None: the dataset's default place).
        download: Allow tfds to download (needs internet).
        train_size: Training examples to keep (None: all that are left after validation).
        val_size: Examples held out from the end of the shuffled training split.
        test_size: Test examples to keep (None: all).
        mean_subtraction: Subtract the per-pixel training mean after scaling to [0, 1].
        crop: Pad-4 random crop on training images.
        flip: Random horizontal flip on training images.
        seed: Seed of the subset choice, the shuffle and the augmentation.
        image_shape: (height, width, channels) to resize the images to (bilinear; a
            grey image is repeated over the channels), or None to keep the dataset's.
        data_path: "memory" (arrays), "stream" (tfds, :mod:`tf_lottery.data.streaming`) or
            "auto" (:func:`tf_lottery.data.streaming.resolve_path`).
        cache_dir: Streaming: where ``tf.data`` caches the decoded examples (None: no cache).
        sequence_length: A text corpus (``--task=causal_lm``): positions per sequence.

    Example:
        >>> data = prepare(DataOptions("synthetic", train_size=256, val_size=64, test_size=128))
        >>> data.size("train"), data.size("val"), data.size("test")
        (256, 64, 128)
    """

    name: str = "fashion_mnist"
    data_dir: Optional[str] = None
    download: bool = False
    train_size: Optional[int] = None
    val_size: int = 0
    test_size: Optional[int] = None
    mean_subtraction: bool = True
    crop: bool = True
    flip: bool = True
    seed: int = 0
    image_shape: Optional[tuple] = None
    data_path: str = "auto"
    cache_dir: Optional[str] = None
    sequence_length: int = 128


@dataclasses.dataclass
class PreparedData:
    """Preprocessed float32 arrays of each split and the pipeline factory.

    Attributes:
        splits: ``{"train", "val" (maybe empty), "test"}`` -> (images, labels).
        mean: The per-pixel mean that was subtracted (zeros when off).
        options: The options used.
        raw_dtype: The dtype the dataset stores its images in ("uint8": scaled by 1/255).

    Example:
        >>> data = prepare(DataOptions("synthetic", train_size=256, val_size=64, test_size=128))
        >>> data.input_shape, data.num_classes
        ((16, 16, 3), 4)
        >>> batches = data.train_pipeline(batch_size=64)   # shuffled, augmented, prefetched
    """

    splits: Dict[str, Arrays]
    mean: np.ndarray
    options: DataOptions
    raw_dtype: str = "uint8"

    scoring_pool: ClassVar[Optional[int]] = None
    """The first N training examples the scoring batch is drawn from (None: all of them)."""
    streaming: ClassVar[bool] = False

    @property
    def input_shape(self) -> tuple:
        return tuple(self.splits["train"][0].shape[1:])

    @property
    def raw_shape(self) -> tuple:
        """The dataset's stored image shape (before any ``--input_shape`` resize)."""
        return tuple(get(self.options.name).input_shape)

    @property
    def class_names(self) -> tuple:
        return tuple(get(self.options.name).class_names)

    @property
    def num_classes(self) -> int:
        return int(max(int(y.max()) for _, y in self.splits.values() if len(y)) + 1)

    def size(self, split: str) -> int:
        """Examples in ``split`` ("train", "val" or "test")."""
        return int(len(self.splits[split][1]))

    def arrays(self, split: str, count: Optional[int] = None) -> Arrays:
        """The first ``count`` (default: all) preprocessed examples of ``split`` as numpy arrays."""
        images, labels = self.splits[split]
        return (images, labels) if count is None else (images[:count], labels[:count])

    def train_pipeline(self, batch_size: int, augment: bool = True, start_step: int = 0) -> tf.data.Dataset:
        """Shuffled, augmented, batched, endless training batches, from batch ``start_step`` on.

        The example order is a seeded reshuffle of the whole split every pass, and each
        example's augmentation is seeded by its position in the stream, so the stream is a
        function of the seed alone: a run resumed after k batches gets exactly the batches
        an uninterrupted run gets from batch k on.

        Raises:
            ValueError: if the split is smaller than one batch.
        """
        images, labels = self.splits["train"]
        count = len(labels)
        if count < batch_size:  # an epoch would hold no batch
            raise ValueError(f"the training split ({count} examples) is smaller than one batch ({batch_size})")
        images, labels = tf.constant(images), tf.constant(labels)
        seed = int(self.options.seed)
        order = tf.data.Dataset.range(count).shuffle(count, seed=seed, reshuffle_each_iteration=True).repeat()
        stream = tf.data.Dataset.zip(tf.data.Dataset.counter(), order).skip(start_step * batch_size)
        augment_one = augmenter(self.options) if augment else None

        def example(position, index):
            image, label = tf.gather(images, index), tf.gather(labels, index)
            if augment_one is not None:
                image = augment_one(image, tf.stack([tf.constant(seed, tf.int64), position]))
            return image, label

        stream = stream.map(example, num_parallel_calls=tf.data.AUTOTUNE)
        return shard_by_data(stream.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE))

    def eval_pipeline(self, split: str, batch_size: int) -> tf.data.Dataset:
        """Batches of a split in a fixed order, no augmentation."""
        images, labels = self.splits[split]
        batches = tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size)
        return shard_by_data(batches.prefetch(tf.data.AUTOTUNE))


def prepare(options: DataOptions, mean_dir: Optional[str] = None):
    """Loads, splits, subsets and preprocesses a dataset: into memory, or as a stream.

    Args:
        options: What to load and how (``data_path`` picks the path).
        mean_dir: Streaming: where the training mean is kept between runs (``<runs_dir>/.data``).

    Returns:
        A :class:`PreparedData`, or a :class:`~tf_lottery.data.streaming.StreamingData` with
        the same interface; for a text corpus, a :class:`~tf_lottery.data.sequences.TextData`.

    Raises:
        DatasetUnavailable: the data is not on this machine (with how to get it).
        ValueError: for sizes that do not fit the dataset.

    Example:
        >>> data = prepare(DataOptions("fashion_mnist", train_size=10000, val_size=1000))
        >>> batches = data.train_pipeline(batch_size=128)
    """
    info = get(options.name)
    if info.task == "causal_lm":
        corpus = info.load(options.data_dir, options.download, options.seed)
        return prepare_text(corpus["texts"], options, options.sequence_length, test_texts=corpus.get("test_texts"))
    if resolve_path(info, options.data_path) == "stream":
        return prepare_stream(info, options, mean_dir)
    if options.image_shape is not None and info.input_shape[-1] not in (1, options.image_shape[-1]):
        raise ValueError(f"--input_shape={','.join(map(str, options.image_shape))} but {options.name} images have "
                         f"{info.input_shape[-1]} channels: images are resized to the model's input shape, and only "
                         "grey images are repeated over the channels")
    raw = info.load(options.data_dir, options.download, options.seed)
    for split in ("train", "test"):
        images, labels = raw[split]
        check_images(images, f"{options.name}'s {split} images")
        check_labels(labels, f"{options.name}'s {split} labels", num_classes=info.num_classes or None,
                     count=len(images))
    rng = np.random.default_rng(options.seed)
    order = rng.permutation(len(raw["train"][1]))
    train = (raw["train"][0][order], np.asarray(raw["train"][1][order], dtype="int64"))
    if options.val_size < 0 or options.val_size >= len(train[1]):
        raise ValueError(f"val_size must be between 0 and {len(train[1]) - 1}; got {options.val_size}")
    cut = len(train[1]) - options.val_size
    val = (train[0][cut:], train[1][cut:])
    train = take_first((train[0][:cut], train[1][:cut]), options.train_size, "train_size")
    test = take_first((raw["test"][0], np.asarray(raw["test"][1], dtype="int64")), options.test_size, "test_size")

    def scale(images):
        images = np.asarray(images, dtype="float32")
        images = images / 255.0 if np.issubdtype(raw["train"][0].dtype, np.integer) else images
        return resize(images, options.image_shape) if options.image_shape else images

    train_x = scale(train[0])
    mean = train_x.mean(axis=0) if options.mean_subtraction else np.zeros(train_x.shape[1:], "float32")
    splits = {
        "train": (train_x - mean, train[1]),
        "val": (scale(val[0]) - mean, val[1]),
        "test": (scale(test[0]) - mean, test[1]),
    }
    return PreparedData(splits, mean.astype("float32"), options, str(np.asarray(raw["train"][0]).dtype))
