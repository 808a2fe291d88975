"""The streaming data path (tfds ``as_dataset``), tested under ``tfds.testing.mock_data``.

Mock data has no split metadata and ignores split slicing, which is why the stream counts
and cuts its splits itself; every example is generated from a fixed seed, so the stream is
the same on every pass, as a prepared tfds dataset is.
"""

import glob
import json
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

import tf_lottery as tl
from tf_lottery.config import Config
from tf_lottery.data import streaming
from tf_lottery.data.pipeline import resize


@pytest.fixture
def mock_tfds():
    with tfds.testing.mock_data(num_examples=96):
        yield


def _stream(tmp_path, **options):
    values = dict(name="cifar10", data_path="stream", val_size=16, train_size=None, test_size=None, seed=3)
    values.update(options)
    return tl.data.prepare(tl.data.DataOptions(**values), mean_dir=str(tmp_path / "means"))


def test_streaming_splits_mean_and_batches(mock_tfds, tmp_path):
    data = _stream(tmp_path, crop=True, flip=True)
    assert type(data).__name__ == "StreamingData" and data.streaming
    assert (data.size("train"), data.size("val"), data.size("test")) == (80, 16, 96)
    assert (data.input_shape, data.num_classes, data.raw_dtype) == ((32, 32, 3), 10, "uint8")
    assert data.class_names == tl.data.datasets.CIFAR10_CLASSES  # the registered dataset's names

    raw = tfds.builder("cifar10").as_dataset(split="train", as_supervised=True, shuffle_files=False)
    raw_images = np.stack([x.numpy() for x, _ in raw])
    # Validation is the first 16 stored examples, training the next 80, and the mean is theirs.
    expected_mean = (raw_images[16:].astype("float64") / 255.0).mean(axis=0)
    np.testing.assert_allclose(data.mean, expected_mean, rtol=0, atol=1e-6)
    train_x, _ = data.arrays("train")
    np.testing.assert_allclose(train_x + data.mean, raw_images[16:] / 255.0, rtol=0, atol=1e-6)
    val_x, _ = data.arrays("val")
    np.testing.assert_allclose(val_x + data.mean, raw_images[:16] / 255.0, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(data.arrays("train")[0], train_x)  # the same stream every pass

    batches = [x.numpy() for x, _ in data.train_pipeline(16).take(6)]
    again = [x.numpy() for x, _ in data.train_pipeline(16).take(6)]
    resumed = [x.numpy() for x, _ in data.train_pipeline(16, start_step=4).take(2)]
    for a, b in zip(batches, again):
        np.testing.assert_array_equal(a, b)  # seeded shuffle and augmentation
    np.testing.assert_array_equal(batches[4], resumed[0])  # a resumed run gets the unbroken run's batches
    np.testing.assert_array_equal(batches[5], resumed[1])
    assert [x.shape[0] for x, _ in data.eval_pipeline("test", 32)] == [32, 32, 32]


def test_the_mean_is_computed_once_and_kept(mock_tfds, tmp_path, monkeypatch):
    first = _stream(tmp_path)
    (kept,) = glob.glob(str(tmp_path / "means" / "mean-*.npy"))
    monkeypatch.setattr(streaming, "_streaming_mean", lambda data: pytest.fail("the kept mean was not used"))
    second = _stream(tmp_path, seed=9)  # the seed orders batches; the mean does not depend on it
    np.testing.assert_array_equal(first.mean, second.mean)
    np.testing.assert_array_equal(np.load(kept).astype("float32"), first.mean)


def test_a_stream_is_preprocessed_as_the_memory_path_preprocesses(mock_tfds, tmp_path):
    """Resizing (grey to colour, 28 -> 40) runs in the stream's graph with the in-memory path's function."""
    data = _stream(tmp_path, name="fashion_mnist", image_shape=(40, 40, 3), mean_subtraction=False,
                   data_dir=str(tmp_path / "no_idx_here"))
    raw = tfds.builder("fashion_mnist").as_dataset(split="test", as_supervised=True, shuffle_files=False)
    raw_images = np.stack([x.numpy() for x, _ in raw]).astype("float32") / 255.0
    test_x, _ = data.arrays("test")
    np.testing.assert_allclose(test_x, resize(raw_images, (40, 40, 3)), rtol=0, atol=1e-6)
    exported = tl.serving.Preprocessing.from_data(data)
    assert (exported.raw_shape, exported.input_shape) == ((28, 28, 1), (40, 40, 3))


def test_any_tfds_dataset_streams_and_varying_sizes_need_an_input_shape(mock_tfds, tmp_path):
    with pytest.raises(ValueError, match=r"tfds:imagenette/160px images vary in size \(None, None, 3\); give "
                                         "--input_shape"):
        tl.data.prepare(tl.data.DataOptions("tfds:imagenette/160px", val_size=8))
    data = tl.data.prepare(tl.data.DataOptions("tfds:imagenette/160px", val_size=8, image_shape=(24, 24, 3)),
                           mean_dir=str(tmp_path))
    assert data.streaming and data.input_shape == (24, 24, 3) and data.num_classes == 10
    assert data.class_names[0] == "n01440764"  # tfds' label names
    x, y = next(iter(data.train_pipeline(8)))
    assert x.shape == (8, 24, 24, 3) and y.dtype == tf.int64


def test_an_init_ticket_run_on_a_stream(mock_tfds, tmp_path):
    config = Config.create(dataset="tfds:cifar10", depth=14, min_blocks_per_stage=1, num_blocks=1, length="1ep",
                           lr_drops=(), batch_size=32, val_size=32, train_size=None, test_size=None, crop=True,
                           runs_dir=str(tmp_path), evals=("clean", "cost"))
    record = tl.experiments.get("init_ticket")(config)
    assert record.data == {"train": 64, "val": 32, "test": 96, "input_shape": [32, 32, 3]}
    assert len(record.ticket.removed) == 1 and record.ticket.training.steps == 2
    assert glob.glob(str(tmp_path / ".data" / "mean-*.npy"))
    meta = json.load(open(glob.glob(str(tmp_path / "init_ticket-*" / "export" / "ticket" / "metadata.json"))[0]))
    assert meta["preprocessing"]["raw_input"]["shape"] == [None, 32, 32, 3]


def test_data_path_choices():
    assert streaming.resolve_path(tl.data.get("cifar10"), "auto") == "memory"
    assert streaming.resolve_path(tl.data.get("tfds:imagenette"), "auto") == "stream"
    assert streaming.resolve_path(tl.data.get("cifar10"), "stream") == "stream"
    with pytest.raises(ValueError, match="synthetic has no tfds source; use --data_path=memory"):
        Config.create(dataset="synthetic", data_path="stream")
    with pytest.raises(ValueError, match="tfds:mnist only streams; drop --data_path=memory"):
        Config.create(dataset="tfds:mnist", data_path="memory")
    assert "tfds:<name>" in tl.data.DATASETS.names()
    # The automatic path never changes a run's folder; a forced other path does.
    assert Config.create(dataset="cifar10", data_path="memory").digest("dense") == Config.create(
        dataset="cifar10").digest("dense")
    assert Config.create(dataset="cifar10", data_path="stream").digest("dense") != Config.create(
        dataset="cifar10").digest("dense")
    assert Config.create(dataset="cifar10", cache_dir="/tmp/x").digest("dense") == Config.create(
        dataset="cifar10").digest("dense")


def test_a_missing_tfds_dataset_fails_at_once(tmp_path):
    with pytest.raises(tl.data.DatasetUnavailable, match=f"'cifar10' is not available in {tmp_path}: pass "
                                                          "--download"):
        tl.data.prepare(tl.data.DataOptions("cifar10", data_path="stream", data_dir=str(tmp_path)))


def test_a_disk_cache_serves_the_second_pass(mock_tfds, tmp_path):
    data = _stream(tmp_path, cache_dir=str(tmp_path / "cache"))
    first = data.arrays("test")[0]
    assert glob.glob(str(tmp_path / "cache" / "*-test*.index"))
    np.testing.assert_array_equal(data.arrays("test")[0], first)
    assert os.listdir(tmp_path / "cache")
