"""IDX files (the MNIST format), gzipped or not, read with numpy and checked.

Debian's ``dataset-fashion-mnist`` installs Fashion-MNIST as gzipped IDX files under
``/usr/share/datasets/fashion-mnist``; its rewritten gzip headers defeat tfds's
checksums, so we parse the files ourselves. A truncated or corrupt file is an error,
never garbage data.
"""

from __future__ import annotations

import gzip
import os
from typing import Tuple

import numpy as np

#: Where Debian's ``dataset-fashion-mnist`` package puts the gzipped IDX files (``--data_dir``'s default).
DEFAULT_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class IdxError(ValueError):
    """A file that is not a valid IDX file."""


def read_idx(path: str) -> np.ndarray:
    """Reads one IDX file (``.gz`` or raw) into an array.

    Args:
        path: The file.

    Returns:
        The array, shaped by the header's dimensions.

    Raises:
        FileNotFoundError: if the file does not exist.
        IdxError: for a bad magic number, an unknown type or a size that disagrees with
            the header (a truncated or padded file).

    Example:
        >>> read_idx("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz").shape
        (10000,)
    """
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError) as error:
        if isinstance(error, FileNotFoundError):
            raise
        raise IdxError(f"{path}: cannot be read as {'gzip' if path.endswith('.gz') else 'raw'} IDX: {error}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        raise IdxError(f"{path}: not an IDX file (magic bytes {raw[:4].hex() or 'missing'})")
    dtype, ndim = np.dtype(_DTYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IdxError(f"{path}: header cut short ({len(raw)} bytes for {ndim} dimensions)")
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(dims)) * dtype.itemsize
    if len(raw) != expected:
        raise IdxError(f"{path}: {len(raw)} bytes but the header {dims} needs {expected} (truncated or corrupt)")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)


def load_fashion_mnist(folder: str = DEFAULT_FASHION_MNIST_DIR) -> Tuple[Tuple[np.ndarray, np.ndarray], Tuple[np.ndarray, np.ndarray]]:
    """Fashion-MNIST from local IDX files: ``((train_x, train_y), (test_x, test_y))``.

    Images are uint8 of shape (N, 28, 28, 1); labels uint8 in 0..9.

    Args:
        folder: Where the four gzipped IDX files are (``train-images-idx3-ubyte.gz``, ...).

    Returns:
        ``((train_x, train_y), (test_x, test_y))``.

    Raises:
        FileNotFoundError: naming the folder and how to get the files.
        IdxError: for a corrupt file, or images and labels of different lengths.

    Example:
        >>> (train_x, train_y), (test_x, test_y) = load_fashion_mnist()
        >>> train_x.shape, test_x.shape
        ((60000, 28, 28, 1), (10000, 28, 28, 1))
    """
    def path(split, kind):
        return os.path.join(folder, f"{split}-{kind}-ubyte.gz")

    missing = [path(s, k) for s in ("train", "t10k") for k in ("images-idx3", "labels-idx1") if not os.path.exists(path(s, k))]
    if missing:
        raise FileNotFoundError(
            f"Fashion-MNIST not found in {folder} (missing {', '.join(os.path.basename(m) for m in missing)}); "
            "install it with `apt-get install dataset-fashion-mnist` or point --data_dir at a folder with the IDX files"
        )
    splits = []
    for split in ("train", "t10k"):
        images = read_idx(path(split, "images-idx3"))
        labels = read_idx(path(split, "labels-idx1"))
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise IdxError(f"{folder}: {split} images {images.shape} and labels {labels.shape} do not match")
        splits.append((images[..., None], labels))
    return splits[0], splits[1]
