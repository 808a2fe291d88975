"""Names in natural order: ``stage1_block2`` before ``stage1_block10``.

Example:
    >>> sorted(["stage1_block10", "stage1_block2"], key=natural_key)
    ['stage1_block2', 'stage1_block10']
"""

from __future__ import annotations

import re
from typing import Iterable, Optional


def natural_key(name: str) -> tuple:
    """Sort key that compares digit runs as numbers: ``stage1_block2 < stage1_block10``."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


def ordered(names_: Iterable[str], order: Optional[list] = None) -> list:
    """``names_`` without repeats, in ``order`` when given, else in natural order."""
    unique = set(names_)
    if order is not None:
        return [n for n in order if n in unique] + sorted(unique - set(order), key=natural_key)
    return sorted(unique, key=natural_key)
