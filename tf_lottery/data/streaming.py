"""The streaming data path: a tfds dataset read as a stream, for data that does not fit in memory.

:class:`StreamingData` has the interface of :class:`~tf_lottery.data.pipeline.PreparedData`
(``train_pipeline``, ``eval_pipeline``, ``size``, ``arrays``, ``mean``, ``input_shape``), so
training, scoring and every evaluation take either. What differs, and why:

* Splits come from tfds' stored order (no file shuffling), so they are the same in every
  epoch and every process: validation is the first ``val_size`` examples of ``train``,
  training the next ``train_size`` (default: the rest), test the first ``test_size`` of
  ``test``. (The in-memory path holds validation out of a seeded permutation instead.)
* Decoding, scaling to [0, 1], resizing to ``--input_shape`` (the same
  :func:`~tf_lottery.data.transforms.resize_images` as the in-memory path and every export),
  the mean subtraction and the seeded crop and flip all run in the ``tf.data`` graph.
* Training batches come from a seeded shuffle buffer (:data:`SHUFFLE_BUFFER` examples),
  reshuffled every pass; each example's augmentation is seeded by its position in the
  stream, so a resumed run gets the batches an unbroken one gets (the stream is replayed
  up to that point, which costs reading it once).
* The per-pixel training mean is computed in one streaming pass (float64 sums) and kept in
  ``<runs_dir>/.data/``, so every later run on the same data reads it instead.
* ``--cache_dir`` caches the decoded, resized examples on disk (``tf.data``'s file cache,
  complete after the first full pass); without it every epoch reads tfds' files again.
* Under ``multi_worker`` every worker reads the stream and keeps its share of each global
  batch (tf.data auto-sharding by data): the splits above stay the same on every worker,
  which sharding by files would not keep.
* The scoring batch of a criterion is drawn from the first :data:`SCORING_POOL` training
  examples (class-balanced, seeded), not the whole split.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Optional

import numpy as np
import tensorflow as tf

from tf_lottery.core.io import atomic_path
from tf_lottery.data.datasets import DatasetInfo, DatasetUnavailable
from tf_lottery.data.transforms import augmenter, resize_images, shard_by_data

DATA_PATHS = ("auto", "memory", "stream")
SHUFFLE_BUFFER = 10_000
SCORING_POOL = 10_000
MEAN_FOLDER = ".data"


def resolve_path(info: DatasetInfo, requested: str) -> str:
    """``"memory"`` or ``"stream"``: what ``--data_path`` means for a dataset.

    ``auto`` streams the ``tfds:<name>`` datasets and loads the registered ones (at most
    200 MB of uint8 images) into memory.

    Raises:
        ValueError: for a path the dataset does not have, naming what it has.
    """
    if requested not in DATA_PATHS:
        raise ValueError(f"--data_path must be one of {', '.join(DATA_PATHS)}; got {requested!r}")
    if requested == "auto":
        return "stream" if info.streams else "memory"
    if requested == "stream" and info.tfds_name is None:
        raise ValueError(f"--data_path=stream reads tfds, and {info.name} has no tfds source; use --data_path=memory")
    if requested == "memory" and info.streams:
        raise ValueError(f"{info.name} only streams; drop --data_path=memory")
    return requested


class StreamingData:
    """A tfds dataset as a stream, with the interface of ``PreparedData`` (see the module docstring).

    Build it with :func:`tf_lottery.data.prepare` (``--data_path=stream``, or a
    ``tfds:<name>`` dataset).

    Attributes:
        options: The :class:`~tf_lottery.data.pipeline.DataOptions`.
        mean: The per-pixel training mean subtracted (zeros when off), at the model's input shape.
        raw_shape: The stored image shape (None for a varying side).
        raw_dtype: The stored image dtype ("uint8": scaled by 1/255).
        class_names: The label names, in label order.
    """

    streaming = True
    scoring_pool: Optional[int] = SCORING_POOL

    def __init__(self, options, builder, sizes: dict, mean: np.ndarray, raw_shape: tuple, raw_dtype: str,
                 class_names: tuple):
        self.options, self._builder, self._sizes = options, builder, dict(sizes)
        self.mean, self.raw_shape, self.raw_dtype = mean.astype("float32"), tuple(raw_shape), raw_dtype
        self.class_names = tuple(class_names)

    @property
    def input_shape(self) -> tuple:
        return tuple(self.options.image_shape or self.raw_shape)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def size(self, split: str) -> int:
        """Examples in ``split`` ("train", "val" or "test")."""
        return self._sizes[split]

    # --- the stream ---------------------------------------------------------------------

    def _examples(self, split: str) -> tf.data.Dataset:
        """``(float image in [0, 1] at the input shape, int64 label)`` of a split, in stored order."""
        source = "test" if split == "test" else "train"
        stream = self._builder.as_dataset(split=source, as_supervised=True, shuffle_files=False)
        if split == "val":
            stream = stream.take(self._sizes["val"])
        elif split == "train":
            stream = stream.skip(self._sizes["val"]).take(self._sizes["train"])
        else:
            stream = stream.take(self._sizes["test"])
        shape, scale = self.options.image_shape, self.raw_dtype == "uint8"

        def decode(image, label):
            image = tf.cast(image, tf.float32)
            image = image / 255.0 if scale else image
            if shape is not None:
                image = resize_images(image[None], shape)[0]
            return image, tf.cast(label, tf.int64)

        stream = stream.map(decode, num_parallel_calls=tf.data.AUTOTUNE)
        if self.options.cache_dir:
            os.makedirs(self.options.cache_dir, exist_ok=True)
            stream = stream.cache(os.path.join(self.options.cache_dir, f"{_key(self.options)}-{split}"))
        return stream

    def train_pipeline(self, batch_size: int, augment: bool = True, start_step: int = 0) -> tf.data.Dataset:
        """Shuffled, augmented, batched, endless training batches, from batch ``start_step`` on.

        Raises:
            ValueError: if the split is smaller than one batch.
        """
        count = self.size("train")
        if count < batch_size:
            raise ValueError(f"the training split ({count} examples) is smaller than one batch ({batch_size})")
        seed = int(self.options.seed)
        stream = self._examples("train").shuffle(min(count, SHUFFLE_BUFFER), seed=seed, reshuffle_each_iteration=True)
        stream = tf.data.Dataset.zip(tf.data.Dataset.counter(), stream.repeat()).skip(start_step * batch_size)
        augment_one = augmenter(self.options) if augment else None
        mean = tf.constant(self.mean)

        def example(position, pair):
            image, label = pair
            if augment_one is not None:
                image = augment_one(image, tf.stack([tf.constant(seed, tf.int64), position]))
            return image - mean, label

        stream = stream.map(example, num_parallel_calls=tf.data.AUTOTUNE)
        return shard_by_data(stream.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE))

    def eval_pipeline(self, split: str, batch_size: int) -> tf.data.Dataset:
        """Batches of a split in stored order, no augmentation."""
        mean = tf.constant(self.mean)
        stream = self._examples(split).map(lambda x, y: (x - mean, y), num_parallel_calls=tf.data.AUTOTUNE)
        return shard_by_data(stream.batch(batch_size).prefetch(tf.data.AUTOTUNE))

    def arrays(self, split: str, count: Optional[int] = None):
        """The first ``count`` (default: all) preprocessed examples of ``split`` as numpy arrays."""
        count = self.size(split) if count is None else min(count, self.size(split))
        images, labels = [], []
        for x, y in self.eval_pipeline(split, 512).unbatch().take(count).batch(512):
            images.append(x.numpy())
            labels.append(y.numpy())
        if not images:
            return np.zeros((0, *self.input_shape), "float32"), np.zeros((0,), "int64")
        return np.concatenate(images), np.concatenate(labels)


def _key(options) -> str:
    """What the stream's examples and mean depend on, hashed (the seed only orders batches)."""
    fields = {"dataset": options.name, "data_dir": options.data_dir, "train_size": options.train_size,
              "val_size": options.val_size, "test_size": options.test_size,
              "image_shape": list(options.image_shape or ()), "mean_subtraction": options.mean_subtraction}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:12]


def _builder(info: DatasetInfo, options):
    """The tfds builder, its data prepared (downloaded only with ``--download``).

    Raises:
        DatasetUnavailable: naming the dataset, the folder and how to get it.
    """
    import tensorflow_datasets as tfds

    where = options.data_dir or "~/tensorflow_datasets"
    try:
        builder = tfds.builder(info.tfds_name, data_dir=options.data_dir)
        if options.download:
            builder.download_and_prepare()
        builder.as_dataset(split="train", as_supervised=True)  # fails at once when not prepared
        return builder
    except Exception as error:  # tfds raises AssertionError, DatasetNotFoundError, ConnectionError, ...
        hint = ("pass --download on a machine with internet, or point --data_dir at a folder where tfds prepared it"
                if not options.download else "check the internet connection or --data_dir")
        raise DatasetUnavailable(f"dataset {info.tfds_name!r} is not available in {where}: {hint} "
                                 f"(tfds said: {str(error).splitlines()[0][:200]})") from error


def _count(builder, split: str) -> int:
    """Examples in a stored split: tfds' metadata, else one pass (tfds' mock data has none)."""
    try:
        return int(builder.info.splits[split].num_examples)
    except (KeyError, AttributeError):
        return int(builder.as_dataset(split=split).reduce(np.int64(0), lambda n, _: n + 1).numpy())


def _streaming_mean(data: StreamingData) -> np.ndarray:
    """The per-pixel mean of the training split, in one pass with float64 sums."""
    total = data._examples("train").batch(1024).reduce(
        (tf.zeros(data.input_shape, tf.float64), tf.constant(0, tf.int64)),
        lambda acc, batch: (acc[0] + tf.reduce_sum(tf.cast(batch[0], tf.float64), axis=0),
                            acc[1] + tf.shape(batch[0], out_type=tf.int64)[0]))
    return (total[0] / tf.cast(total[1], tf.float64)).numpy()


def prepare_stream(info: DatasetInfo, options, mean_dir: Optional[str] = None) -> StreamingData:
    """A :class:`StreamingData` of ``info`` (see :func:`tf_lottery.data.prepare`).

    Args:
        info: The dataset (one with a ``tfds_name``).
        options: The :class:`~tf_lottery.data.pipeline.DataOptions`.
        mean_dir: Where the training mean is kept (``<runs_dir>/.data``); None computes it
            every time.

    Raises:
        DatasetUnavailable: when tfds does not have the data here.
        ValueError: for sizes the splits do not have, or varying image sizes without
            ``--input_shape``.
    """
    builder = _builder(info, options)
    image, label = builder.info.features["image"], builder.info.features["label"]
    raw_shape = tuple(image.shape)
    if None in raw_shape and options.image_shape is None:
        raise ValueError(f"{info.name} images vary in size {raw_shape}; give --input_shape=H,W,C to resize them to")
    if options.image_shape is not None and raw_shape[-1] not in (1, options.image_shape[-1]):
        raise ValueError(f"--input_shape={','.join(map(str, options.image_shape))} but {info.name} images have "
                         f"{raw_shape[-1]} channels: only grey images are repeated over the channels")
    stored = _count(builder, "train")
    if not 0 <= options.val_size < stored:
        raise ValueError(f"val_size must be between 0 and {stored - 1}; got {options.val_size}")
    left = stored - options.val_size
    train = left if options.train_size is None else options.train_size
    if not 1 <= train <= left:
        raise ValueError(f"train_size must be between 1 and {left}; got {train}")
    tests = _count(builder, "test")
    test = tests if options.test_size is None else options.test_size
    if not 1 <= test <= tests:
        raise ValueError(f"test_size must be between 1 and {tests}; got {test}")
    names = info.class_names or (tuple(label.names) if getattr(label, "names", None) else
                                 tuple(str(i) for i in range(label.num_classes)))
    dtype = np.dtype(getattr(image, "np_dtype", "uint8")).name
    sizes = {"train": train, "val": options.val_size, "test": test}
    shape = tuple(options.image_shape or raw_shape)
    data = StreamingData(options, builder, sizes, np.zeros(shape, "float32"), raw_shape, dtype, names)
    if options.mean_subtraction:
        data.mean = _kept_mean(data, mean_dir).astype("float32")
    return data


def _kept_mean(data: StreamingData, mean_dir: Optional[str]) -> np.ndarray:
    path = os.path.join(mean_dir, f"mean-{_key(data.options)}.npy") if mean_dir else None
    if path and os.path.exists(path):
        return np.load(path)
    mean = _streaming_mean(data)
    if path:
        os.makedirs(mean_dir, exist_ok=True)
        with atomic_path(path) as temporary:
            with open(temporary, "wb") as handle:
                np.save(handle, mean)
    return mean

