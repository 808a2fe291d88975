"""Names in natural order (``stage1_block2`` before ``stage1_block10``), and Keras' default names.

Example:
    >>> sorted(["stage1_block10", "stage1_block2"], key=natural_key)
    ['stage1_block2', 'stage1_block10']
    >>> snake_case("GlobalAveragePooling2D")
    'global_average_pooling2d'
"""

from __future__ import annotations

import re
from typing import Iterable, Optional


def natural_key(name: str) -> tuple:
    """Sort key that compares digit runs as numbers: ``stage1_block2 < stage1_block10``."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


def snake_case(class_name: str) -> str:
    """A class name as Keras names its instances by default: ``MultiHeadAttention`` ->
    ``multi_head_attention``, ``Conv2D`` -> ``conv2d`` (the rule of Keras' ``to_snake_case``)."""
    name = re.sub(r"\W+", "", class_name)
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def ordered(names_: Iterable[str], order: Optional[list] = None) -> list:
    """``names_`` without repeats, in ``order`` when given, else in natural order."""
    unique = set(names_)
    if order is not None:
        return [n for n in order if n in unique] + sorted(unique - set(order), key=natural_key)
    return sorted(unique, key=natural_key)
