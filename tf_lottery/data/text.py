"""Text for language models, offline: a corpus that installs from Debian, and a byte-level tokenizer.

**Corpora.** Two Debian packages that install offline from the Debian registry:

* ``fortunes`` (``apt-get install fortunes``): about 1.3 MB of English quotations, jokes,
  definitions and poems under ``/usr/share/games/fortunes``, one entry between lines holding ``%``.
  Plain English prose of many authors, small enough for a quick run; the offensive entries are a
  separate package (``fortunes-off``) that is never read. :func:`read_fortunes` reads every file
  of the folder (the ``.dat`` indexes and ``.u8`` links left out).
* ``python3.X-doc`` (``apt-get install python3-doc``): the reStructuredText sources of the Python
  documentation, about 11 MB of English technical prose with code examples, one entry per page
  (:func:`read_python_docs`). Eight times fortunes: a model trained for an hour on one core
  (about 33M tokens) sees each byte about three times, where fortunes would repeat fifteen times.

Online users can read tfds' text datasets instead (``tfds_text:<name>`` in the dataset registry).

**Tokenizer.** Bytes (:class:`ByteTokenizer`): each UTF-8 byte is one token (ids 2 to 257), 0 pads
and 1 ends a text. Nothing is trained or downloaded, every text is encoded without an unknown
token, and the vocabulary (258) is small enough for a model of a million parameters; the price
is longer sequences than a BPE vocabulary gives.

**Sequences.** :func:`token_windows` packs the texts, each followed by the end token, into windows of
a fixed length; the last window is padded and its padding masked. :func:`split_texts` splits by
text, seeded, so no entry is in both splits.

Example:
    >>> texts = read_fortunes()
    >>> train, val = split_texts(texts, val_fraction=0.1, seed=0)
    >>> ids, mask = token_windows(train, ByteTokenizer(), length=129)
"""

from __future__ import annotations

import glob
import os
from typing import List, Optional, Sequence, Tuple

import numpy as np

FORTUNES_DIR = "/usr/share/games/fortunes"
"""Where Debian's ``fortunes`` package puts its files."""
PYTHON_DOCS_GLOB = "/usr/share/doc/python3*/html/_sources"
"""Where Debian's ``python3.X-doc`` packages put the documentation's sources (X: the release)."""


def _require_folder(directory: str, what: str, package: str) -> None:
    """Raises ``FileNotFoundError`` naming the Debian package that installs ``what`` when ``directory`` is not a folder."""
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"no {what} at {directory}: install Debian's corpus with `apt-get install {package}` "
                                "(offline from the Debian registry), or pass the folder")


def read_fortunes(directory: str = FORTUNES_DIR) -> List[str]:
    """Every entry of the fortune files in ``directory``, in file-name order.

    Raises:
        FileNotFoundError: when the folder does not exist, naming the package to install.
        ValueError: when it holds no entry (an empty corpus).

    Example:
        >>> len(read_fortunes()) > 10000
        True
    """
    _require_folder(directory, "fortune files", "fortunes")
    texts = []
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if "." in name or not os.path.isfile(path):  # .dat indexes, .u8 links
            continue
        with open(path, encoding="utf-8", errors="replace") as handle:
            entries = handle.read().split("\n%\n")
        texts.extend(entry.strip() for entry in entries if entry.strip() and entry.strip() != "%")
    if not texts:
        raise ValueError(f"the corpus at {directory} is empty: no fortune entry in its files")
    return texts


def python_docs_folder() -> str:
    """The newest Python release's documentation sources installed here.

    Raises:
        FileNotFoundError: when no ``python3.X-doc`` package is installed, naming the package.
    """
    found = sorted(glob.glob(PYTHON_DOCS_GLOB), key=_release_order)
    if not found:
        raise FileNotFoundError(f"no Python documentation sources match {PYTHON_DOCS_GLOB}: install Debian's corpus "
                                "with `apt-get install python3-doc` (offline from the Debian registry), or pass the "
                                "folder")
    return found[-1]


def _release_order(folder: str) -> tuple:
    """``/usr/share/doc/python3.11/...`` sorts after ``python3.9``: by the release's numbers."""
    release = folder.split(os.sep)[-3][len("python"):]
    return tuple(int(part) if part.isdigit() else -1 for part in release.split("."))


def read_python_docs(directory: Optional[str] = None) -> List[str]:
    """Every page of the Python documentation's sources under ``directory``, in path order.

    Args:
        directory: A folder of ``*.rst.txt`` files (searched recursively). Default: the newest
            installed release (:func:`python_docs_folder`).

    Returns:
        One text per page that holds any.

    Raises:
        FileNotFoundError: when the folder does not exist, naming the package to install.
        ValueError: when it holds no page (an empty corpus).

    Example:
        >>> len(read_python_docs()) > 400
        True
    """
    directory = directory or python_docs_folder()
    _require_folder(directory, "Python documentation sources", "python3-doc")
    texts = []
    for path in sorted(glob.glob(os.path.join(directory, "**", "*.rst.txt"), recursive=True)):
        with open(path, encoding="utf-8", errors="replace") as handle:
            page = handle.read().strip()
        if page:
            texts.append(page)
    if not texts:
        raise ValueError(f"the corpus at {directory} is empty: no *.rst.txt page in it")
    return texts


class ByteTokenizer:
    """UTF-8 bytes as tokens: ``0`` pads, ``1`` ends a text, byte ``b`` is ``b + 2``.

    Example:
        >>> tokenizer = ByteTokenizer()
        >>> tokenizer.encode("hé")
        array([106, 197, 171], dtype=int32)
        >>> tokenizer.decode([106, 197, 171, 1, 0])
        'hé'
    """

    PAD = 0
    END = 1
    OFFSET = 2
    vocabulary_size = 256 + OFFSET

    def describe(self) -> dict:
        """The id mapping as JSON, for an export's metadata: what a reader needs to encode and decode
        without tf_lottery.

        Example:
            >>> ByteTokenizer().describe()["byte_offset"]
            2
        """
        return {"type": "bytes", "class": f"{type(self).__module__}.{type(self).__qualname__}",
                "vocabulary_size": self.vocabulary_size, "pad_id": self.PAD, "end_id": self.END,
                "byte_offset": self.OFFSET, "encoding": "utf-8",
                "ids": f"byte b (0-255) of a text's UTF-8 encoding is id b + {self.OFFSET}; id {self.PAD} pads, "
                       f"id {self.END} ends a text"}

    def encode(self, text: str) -> np.ndarray:
        """The tokens of ``text`` (no end token)."""
        return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int32) + self.OFFSET

    def decode(self, ids) -> str:
        """The text of ``ids``, padding and end tokens left out (a cut character is replaced).

        Raises:
            ValueError: for an id outside the vocabulary.
        """
        ids = np.asarray(ids, dtype=np.int64).ravel()
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocabulary_size):
            raise ValueError(f"token ids must lie in [0, {self.vocabulary_size}); got {int(ids.min())} to "
                             f"{int(ids.max())}: a vocabulary of another tokenizer?")
        data = (ids[ids >= self.OFFSET] - self.OFFSET).astype(np.uint8).tobytes()
        return data.decode("utf-8", errors="replace")


def split_texts(texts: Sequence[str], val_fraction: float = 0.1, seed: int = 0) -> Tuple[List[str], List[str]]:
    """Splits texts into training and validation texts, seeded (a text is in one split only).

    Raises:
        ValueError: for a fraction outside (0, 1) or too few texts for both splits.
    """
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1); got {val_fraction}")
    count = round(len(texts) * val_fraction)
    if count < 1 or count >= len(texts):
        raise ValueError(f"{len(texts)} texts cannot give both splits at val_fraction={val_fraction}")
    order = np.random.default_rng(seed).permutation(len(texts))
    held = set(order[:count].tolist())
    return ([t for i, t in enumerate(texts) if i not in held], [t for i, t in enumerate(texts) if i in held])


def token_windows(texts: Sequence[str], tokenizer: ByteTokenizer, length: int) -> Tuple[np.ndarray, np.ndarray]:
    """The texts, each followed by the end token, packed into windows of ``length`` tokens.

    Args:
        texts: The texts.
        tokenizer: Their tokenizer.
        length: Tokens per window (>= 2): a model's sequence length plus one, for next-token pairs
            (:func:`tf_lottery.criteria.language.next_token_batch`).

    Returns:
        ``(token_ids, padding_mask)``, both ``(windows, length)``; the last window's padding is masked.

    Raises:
        ValueError: for a length below 2, or no text.
    """
    if isinstance(length, bool) or not isinstance(length, int) or length < 2:
        raise ValueError(f"length must be an integer >= 2; got {length!r}")
    if not texts:
        raise ValueError("no text to cut into windows (an empty corpus)")
    stream = np.concatenate([np.append(tokenizer.encode(t), tokenizer.END) for t in texts]).astype(np.int32)
    windows = -(-len(stream) // length)
    ids = np.full(windows * length, tokenizer.PAD, dtype=np.int32)
    ids[:len(stream)] = stream
    mask = np.zeros(windows * length, dtype=bool)
    mask[:len(stream)] = True
    return ids.reshape(windows, length), mask.reshape(windows, length)
