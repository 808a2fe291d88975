"""Datasets. For now: reading IDX files (Fashion-MNIST as Debian ships it)."""

from tf_lottery.data.idx import DEFAULT_FASHION_MNIST_DIR, load_fashion_mnist, read_idx

__all__ = ["DEFAULT_FASHION_MNIST_DIR", "load_fashion_mnist", "read_idx"]
