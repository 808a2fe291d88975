import numpy as np
import pytest
import tensorflow_datasets as tfds

from tf_lottery import data


def test_registry_lists_valid_names():
    assert {"fashion_mnist", "cifar10", "cifar100", "synthetic"} <= set(data.DATASETS.names())
    with pytest.raises(KeyError, match="unknown dataset 'mnits'; valid names: cifar10, cifar100, fashion_mnist"):
        data.get("mnits")


def test_prepare_splits_subsets_and_mean_subtraction():
    prepared = data.prepare(data.DataOptions("synthetic", train_size=300, val_size=100, test_size=50, seed=1))
    train_x, train_y = prepared.splits["train"]
    assert train_x.shape == (300, 16, 16, 3) and train_x.dtype == np.float32
    assert len(prepared.splits["val"][1]) == 100 and len(prepared.splits["test"][1]) == 50
    # Per-pixel mean of the training split (scaled to [0, 1]) is subtracted from every split.
    np.testing.assert_allclose(train_x.mean(axis=0), 0.0, atol=1e-5)
    raw = data.synthetic_arrays(seed=1)["test"][0][:50].astype("float32") / 255.0
    np.testing.assert_allclose(prepared.splits["test"][0], raw - prepared.mean, atol=1e-6)
    assert prepared.input_shape == (16, 16, 3) and prepared.num_classes == 4


def test_prepare_is_seeded_and_validation_is_disjoint():
    a = data.prepare(data.DataOptions("synthetic", val_size=100, seed=3))
    b = data.prepare(data.DataOptions("synthetic", val_size=100, seed=3))
    np.testing.assert_array_equal(a.splits["train"][0], b.splits["train"][0])
    c = data.prepare(data.DataOptions("synthetic", val_size=100, seed=4))
    assert not np.array_equal(a.splits["train"][1], c.splits["train"][1])
    raw = data.synthetic_arrays(seed=3)["train"][0].reshape(512, -1)
    rows = {r.tobytes() for r in raw}
    assert len(rows) == 512
    assert len(a.splits["train"][1]) + len(a.splits["val"][1]) == 512


def test_train_pipeline_augments_in_graph_and_eval_does_not():
    prepared = data.prepare(data.DataOptions("synthetic", crop=True, flip=True, seed=0))
    batch_x, batch_y = next(iter(prepared.train_pipeline(batch_size=32)))
    assert batch_x.shape == (32, 16, 16, 3) and batch_y.shape == (32,)
    first_x, _ = next(iter(prepared.eval_pipeline("train", 512)))
    np.testing.assert_array_equal(first_x.numpy(), prepared.splits["train"][0])
    plain = data.prepare(data.DataOptions("synthetic", crop=False, flip=False, seed=0))
    x, y = next(iter(plain.train_pipeline(batch_size=512)))
    # Without augmentation, a shuffled epoch holds exactly the training images.
    assert sorted(map(bytes, x.numpy().reshape(512, -1))) == sorted(map(bytes, plain.splits["train"][0].reshape(512, -1)))


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(val_size=512), "val_size must be between 0 and 511; got 512"),
        (dict(train_size=1000), "train_size must be between 1 and 512; got 1000"),
        (dict(test_size=0), "test_size must be between 1 and 128; got 0"),
    ],
)
def test_sizes_that_do_not_fit_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        data.prepare(data.DataOptions("synthetic", **options))


def test_tfds_path_with_mock_data(tmp_path):
    with tfds.testing.mock_data(num_examples=24):
        prepared = data.prepare(data.DataOptions("cifar10", data_dir=str(tmp_path), val_size=4))
    assert prepared.splits["train"][0].shape == (20, 32, 32, 3)
    assert prepared.splits["test"][0].shape[1:] == (32, 32, 3)


def _spy_on_tfds_load(monkeypatch) -> list:
    """Records the ``download`` of every ``tfds.load`` call (with it True and no internet, tfds retries
    for minutes: failing fast means asking tfds once, without downloading)."""
    calls, load = [], tfds.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("download"))
        return load(*args, **kwargs)

    monkeypatch.setattr(tfds, "load", spy)
    return calls


def test_missing_tfds_dataset_fails_fast_with_how_to_get_it(tmp_path, monkeypatch):
    calls = _spy_on_tfds_load(monkeypatch)
    with pytest.raises(data.DatasetUnavailable, match=r"'cifar10' is not available in .*--download"):
        data.prepare(data.DataOptions("cifar10", data_dir=str(tmp_path)))
    assert calls == [False]


def test_missing_fashion_mnist_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        data.prepare(data.DataOptions("fashion_mnist", data_dir=str(tmp_path)))


def test_a_resumed_stream_gets_the_batches_an_unbroken_one_gets():
    prepared = data.prepare(data.DataOptions("synthetic", crop=True, flip=True, seed=3, val_size=100))
    unbroken = [x.numpy() for x, _ in prepared.train_pipeline(batch_size=32).take(30)]  # over two passes
    resumed = [x.numpy() for x, _ in prepared.train_pipeline(batch_size=32, start_step=17).take(13)]
    for a, b in zip(unbroken[17:], resumed):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(unbroken[0], unbroken[12])  # the second pass is reshuffled (12 batches a pass)


def test_a_tfds_text_dataset_trains_on_its_train_split_and_tests_on_its_test_split(tmp_path):
    with tfds.testing.mock_data(num_examples=6):
        corpus = data.datasets.get("tfds_text:imdb_reviews").load(str(tmp_path), False, 0)
        titles = data.datasets.get("tfds_text:cnn_dailymail#highlights").load(str(tmp_path), False, 0)
        with pytest.raises(ValueError, match="#label: not a string feature"):
            data.datasets.get("tfds_text:imdb_reviews#label").load(str(tmp_path), False, 0)
        prepared = data.prepare(data.DataOptions("tfds_text:imdb_reviews", data_dir=str(tmp_path), val_size=2,
                                                 sequence_length=8))
    assert len(titles["texts"]) == 6 and titles["texts"] != corpus["texts"]
    assert len(corpus["texts"]) == len(corpus["test_texts"]) == 6
    assert all(isinstance(entry, str) and entry for entry in corpus["texts"])
    tokens = sum(len(entry.encode("utf-8")) + 1 for entry in corpus["test_texts"])  # + the end token
    # every test entry (not 10 % of the training ones) is in the test windows, packed 9 tokens a window
    assert prepared.size("test") == -(-tokens // 9)
    assert prepared.input_shape == (8,) and prepared.num_classes == 258


def test_a_tfds_text_dataset_needs_one_text_feature_and_says_how_to_get_it(tmp_path, monkeypatch):
    import tensorflow as tf

    assert data.datasets.text_feature({"text": tfds.features.Text(), "label": tfds.features.ClassLabel(num_classes=2)}
                                      ) == "text"
    assert data.datasets.text_feature({"title": tfds.features.Text(), "id": tfds.features.Tensor(
        shape=(), dtype=tf.int64)}) == "title"
    two = {"a": tfds.features.Text(), "b": tfds.features.Text(), "n": tfds.features.ClassLabel(num_classes=2)}
    with pytest.raises(ValueError, match=r"no single text feature among \['a', 'b', 'n'\].*tfds_text:<name>#<feature>"):
        data.datasets.text_feature(two)
    assert data.datasets.text_feature(two, "b") == "b"
    with pytest.raises(ValueError, match=r"#n: not a string feature of the dataset; its string features: \['a', 'b'\]"):
        data.datasets.text_feature(two, "n")
    calls = _spy_on_tfds_load(monkeypatch)
    with pytest.raises(data.DatasetUnavailable, match=r"'tiny_shakespeare' is not available in .*--download"):
        data.datasets.get("tfds_text:tiny_shakespeare").load(str(tmp_path), False, 0)
    assert calls == [False]
