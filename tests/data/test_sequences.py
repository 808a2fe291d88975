"""Text data for --task=causal_lm: splits by entry, next-token pairs, padding weighed 0, a resumable order."""

import numpy as np
import pytest

from tf_lottery.data import DataOptions, TextData
from tf_lottery.data.sequences import IGNORED, prepare_text


def _texts():
    return [f"entry {i}: " + "word " * (i % 7) for i in range(60)]


def test_the_splits_hold_next_token_pairs_of_disjoint_entries():
    data = prepare_text(_texts(), DataOptions("fortunes", val_size=4, train_size=None, test_size=None, seed=3),
                        length=8)
    assert isinstance(data, TextData) and data.input_shape == (8,) and data.num_classes == 258
    assert data.size("val") == 4 and data.size("train") + 4 > data.size("test") > 0
    inputs, labels = data.arrays("train")
    real = labels != IGNORED
    assert np.array_equal(labels[:, :-1][real[:, :-1]], inputs["token_ids"][:, 1:][real[:, :-1]])  # shifted by one
    ids, mask = data.token_windows("test")
    assert ids.shape[1] == 9 and np.array_equal(ids[:, :-1], data.arrays("test")[0]["token_ids"])
    again = prepare_text(_texts(), DataOptions("fortunes", val_size=4, seed=3), length=8)
    assert np.array_equal(again.arrays("test")[1], data.arrays("test")[1])  # seeded


def test_batches_weigh_padding_zero_and_a_resumed_order_is_the_unbroken_one():
    data = prepare_text(_texts(), DataOptions("fortunes", val_size=0, seed=0), length=8)
    unbroken = list(data.train_pipeline(4).take(6).as_numpy_iterator())
    resumed = list(data.train_pipeline(4, start_step=2).take(4).as_numpy_iterator())
    for (x, y, w), (x2, y2, w2) in zip(unbroken[2:], resumed):
        assert np.array_equal(x["token_ids"], x2["token_ids"]) and np.array_equal(y, y2)
    x, y, w = data.eval_pipeline("test", 1000).as_numpy_iterator().next()
    labels = data.arrays("test")[1]
    assert np.array_equal(w, (labels != IGNORED).astype("float32")) and (y >= 0).all() and (w == 0).any()


def test_bad_sizes_and_an_empty_corpus_are_refused():
    with pytest.raises(ValueError, match="the corpus is empty"):
        prepare_text([], DataOptions("fortunes"), length=8)
    with pytest.raises(ValueError, match=r"train_size must be between 1 and \d+ sequences; got 100000"):
        prepare_text(_texts(), DataOptions("fortunes", val_size=0, train_size=100000), length=8)
    with pytest.raises(ValueError, match=r"the training split \(\d+ sequences\) is smaller than one batch \(4096\)"):
        prepare_text(_texts(), DataOptions("fortunes", val_size=0), length=8).train_pipeline(4096)
    with pytest.raises(ValueError, match="the corpus's test split is empty"):
        prepare_text(_texts(), DataOptions("tfds_text:lm1b", val_size=0), length=8, test_texts=[])


def test_a_corpus_with_its_own_test_split_keeps_every_training_entry():
    given = prepare_text(_texts(), DataOptions("tfds_text:lm1b", val_size=0), length=8, test_texts=["held out."])
    split = prepare_text(_texts(), DataOptions("fortunes", val_size=0), length=8)
    assert given.size("test") == 2 and given.size("train") > split.size("train")  # 10 bytes + end: 2 windows of 9
    assert given.splits["test"][0]["token_ids"][0].tolist() == [ord(c) + 2 for c in "held out"]
