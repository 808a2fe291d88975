"""Small text corpora the tests write, in the formats of the Debian corpora (``fortunes``)."""

import os

import numpy as np

WORDS = "the a cat dog sat ran on under mat log quickly slowly and then".split()


def tiny_fortunes(folder, entries: int = 400, seed: int = 0) -> str:
    """Writes ``entries`` short seeded sentences as one fortune file in ``folder``; returns the folder."""
    rng = np.random.default_rng(seed)
    texts = [" ".join(rng.choice(WORDS, size=rng.integers(4, 12))) + "." for _ in range(entries)]
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "tiny"), "w") as handle:
        handle.write("\n%\n".join(texts) + "\n%\n")
    return str(folder)
