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


def _docs(tmp_path):
    (tmp_path / "library").mkdir()
    (tmp_path / "tutorial.rst.txt").write_text("An Informal Introduction\n************************\n\nText.\n")
    (tmp_path / "library" / "os.rst.txt").write_text(":mod:`os` --- interfaces\n")
    (tmp_path / "library" / "blank.rst.txt").write_text("\n  \n")
    (tmp_path / "library" / "conf.py").write_text("not a page")
    return str(tmp_path)


def test_the_python_docs_are_read_page_by_page_blank_pages_and_other_files_left_out(tmp_path):
    assert text.read_python_docs(_docs(tmp_path)) == [":mod:`os` --- interfaces",
                                                      "An Informal Introduction\n************************\n\nText."]


def test_missing_python_docs_say_which_package_installs_them(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match=r"install Debian's corpus with `apt-get install python3-doc`"):
        text.read_python_docs(str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="is empty: no \\*.rst.txt page"):
        text.read_python_docs(str(tmp_path))
    monkeypatch.setattr(text, "PYTHON_DOCS_GLOB", str(tmp_path / "nothing*" / "html" / "_sources"))
    with pytest.raises(FileNotFoundError, match="apt-get install python3-doc"):
        text.python_docs_folder()


def test_the_newest_installed_python_release_is_read(tmp_path, monkeypatch):
    for release in ("python3.9", "python3.11", "python3.10"):
        (tmp_path / release / "html" / "_sources").mkdir(parents=True)
    monkeypatch.setattr(text, "PYTHON_DOCS_GLOB", str(tmp_path / "python3*" / "html" / "_sources"))
    assert text.python_docs_folder() == str(tmp_path / "python3.11" / "html" / "_sources")
