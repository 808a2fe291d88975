"""Offline text for language models: the fortune corpus reader, the byte tokenizer, splits and windows."""

import pytest

from tf_lottery.data import text


def _corpus(tmp_path):
    (tmp_path / "computers").write_text("A computer.\n%\nTwo lines\nof one entry.\n%\n", encoding="utf-8")
    (tmp_path / "computers.dat").write_bytes(b"\x00\x01binary index")
    (tmp_path / "food").write_text("Crème brûlée.\n%\n%\n", encoding="utf-8")
    return str(tmp_path)


def test_fortunes_are_read_entry_by_entry_indexes_left_out(tmp_path):
    assert text.read_fortunes(_corpus(tmp_path)) == ["A computer.", "Two lines\nof one entry.", "Crème brûlée."]


def test_a_missing_or_empty_corpus_is_refused_with_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"install Debian's corpus with `apt-get install fortunes`"):
        text.read_fortunes(str(tmp_path / "nowhere"))
    (tmp_path / "empty").write_text("%\n", encoding="utf-8")
    with pytest.raises(ValueError, match="is empty: no fortune entry"):
        text.read_fortunes(str(tmp_path))


def test_bytes_round_trip_any_text():
    tokenizer = text.ByteTokenizer()
    for sample in ("plain", "Crème brûlée", "日本語", "emoji 🙂", ""):
        assert tokenizer.decode(tokenizer.encode(sample)) == sample
    assert tokenizer.encode("hé").tolist() == [106, 197, 171] and tokenizer.vocabulary_size == 258
    with pytest.raises(ValueError, match=r"token ids must lie in \[0, 258\); got 0 to 300"):
        tokenizer.decode([0, 300])


def test_splits_are_seeded_and_disjoint():
    texts = [f"text {i}" for i in range(20)]
    train, val = text.split_texts(texts, 0.25, seed=3)
    assert len(val) == 5 and set(train) | set(val) == set(texts) and not set(train) & set(val)
    assert text.split_texts(texts, 0.25, seed=3) == (train, val)
    with pytest.raises(ValueError, match="cannot give both splits"):
        text.split_texts(["one"], 0.5)


def test_windows_pack_texts_with_end_tokens_and_mask_the_padding():
    tokenizer = text.ByteTokenizer()
    ids, mask = text.token_windows(["ab", "c"], tokenizer, length=4)
    a, b, c = (ord(ch) + 2 for ch in "abc")
    assert ids.tolist() == [[a, b, 1, c], [1, 0, 0, 0]]
    assert mask.tolist() == [[True, True, True, True], [True, False, False, False]]
    with pytest.raises(ValueError, match="an empty corpus"):
        text.token_windows([], tokenizer, length=4)
    with pytest.raises(ValueError, match="length must be an integer >= 2; got 1"):
        text.token_windows(["ab"], tokenizer, length=1)
