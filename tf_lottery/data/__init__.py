"""Datasets (a registry) and their ``tf.data`` pipelines.

Example:
    >>> data = tl.data.prepare(tl.data.DataOptions("fashion_mnist", train_size=10000))
    >>> data.train_pipeline(batch_size=128)
"""

from tf_lottery.data import sequences, text  # noqa: F401  (language-model text: corpus, tokenizer, windows, pairs)
from tf_lottery.data.datasets import (
    DATASETS, TASKS, DatasetInfo, DatasetUnavailable, get, load_tfds, synthetic_arrays,
)
from tf_lottery.data.idx import DEFAULT_FASHION_MNIST_DIR, IdxError, load_fashion_mnist, read_idx
from tf_lottery.data.pipeline import DataOptions, PreparedData, prepare
from tf_lottery.data.sequences import TextData

__all__ = [
    "DATASETS", "TASKS", "DEFAULT_FASHION_MNIST_DIR", "DataOptions", "DatasetInfo", "DatasetUnavailable",
    "IdxError", "PreparedData", "TextData", "get", "load_fashion_mnist", "load_tfds", "prepare", "read_idx",
    "synthetic_arrays",
]
