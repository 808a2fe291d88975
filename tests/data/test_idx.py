import gzip
import os

import numpy as np
import pytest

from tf_lottery.data import idx
from tf_lottery.core.io import write_json_atomic, write_text_atomic


def _idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def test_read_idx_round_trip(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    raw = tmp_path / "a-idx3-ubyte"
    raw.write_bytes(_idx_bytes(array))
    packed = tmp_path / "a-idx3-ubyte.gz"
    packed.write_bytes(gzip.compress(_idx_bytes(array)))
    np.testing.assert_array_equal(idx.read_idx(str(raw)), array)
    np.testing.assert_array_equal(idx.read_idx(str(packed)), array)


@pytest.mark.parametrize(
    "content, message",
    [
        (lambda b: b[:-1], "truncated or corrupt"),
        (lambda b: b + b"\0", "truncated or corrupt"),
        (lambda b: b"\x01\x02" + b[2:], "not an IDX file"),
        (lambda b: b[:6], "header cut short"),
    ],
)
def test_corrupt_idx_is_an_error(tmp_path, content, message):
    path = tmp_path / "bad-idx1-ubyte"
    path.write_bytes(content(_idx_bytes(np.arange(10, dtype=np.uint8))))
    with pytest.raises(idx.IdxError, match=message):
        idx.read_idx(str(path))


def test_broken_gzip_is_an_error(tmp_path):
    path = tmp_path / "x-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(_idx_bytes(np.arange(1000, dtype=np.uint8)))[:40])
    with pytest.raises(idx.IdxError, match="cannot be read as gzip IDX"):
        idx.read_idx(str(path))


def test_missing_fashion_mnist_says_how_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        idx.load_fashion_mnist(str(tmp_path))


@pytest.mark.skipif(not os.path.exists(idx.DEFAULT_FASHION_MNIST_DIR), reason="dataset-fashion-mnist not installed")
def test_debian_fashion_mnist():
    (train_x, train_y), (test_x, test_y) = idx.load_fashion_mnist()
    assert train_x.shape == (60_000, 28, 28, 1) and test_x.shape == (10_000, 28, 28, 1)
    assert list(np.bincount(train_y)) == [6_000] * 10
    assert list(np.bincount(test_y)) == [1_000] * 10


def test_atomic_write_replaces_whole_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "deep" / "result.json"
    write_json_atomic(str(path), {"a": 1})
    write_json_atomic(str(path), {"a": 2})
    assert path.read_text() == '{\n  "a": 2\n}\n'
    assert os.listdir(path.parent) == ["result.json"]


def test_failed_atomic_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "result.json"
    write_text_atomic(str(path), "old")
    with pytest.raises(TypeError):
        write_json_atomic(str(path), {"bad": object()})
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["result.json"]
