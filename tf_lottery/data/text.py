"""Text for language models, offline: a corpus that installs from Debian, and a byte-level tokenizer.

**Corpus.** Debian's ``fortunes`` package (``apt-get install fortunes``): about 1.3 MB of English
quotations, jokes, definitions and poems under ``/usr/share/games/fortunes``, one entry between
lines holding ``%``. Chosen because it installs offline from the Debian registry, is plain English
prose of many authors, and is small enough for a one-core tiny-LM twin; the offensive entries are
a separate package (``fortunes-off``) that is never read. :func:`read_fortunes` reads every file of
the folder (the ``.dat`` indexes and ``.u8`` links left out); online users can use tfds' text
datasets instead.

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

import os
from typing import List, Sequence, Tuple

import numpy as np

FORTUNES_DIR = "/usr/share/games/fortunes"
"""Where Debian's ``fortunes`` package puts its files."""


def read_fortunes(directory: str = FORTUNES_DIR) -> List[str]:
    """Every entry of the fortune files in ``directory``, in file-name order.

    Raises:
        FileNotFoundError: when the folder does not exist, naming the package to install.
        ValueError: when it holds no entry (an empty corpus).

    Example:
        >>> len(read_fortunes()) > 10000
        True
    """
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"no fortune files at {directory}: install Debian's corpus with "
                                "`apt-get install fortunes` (offline from the Debian registry), or pass the folder")
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
