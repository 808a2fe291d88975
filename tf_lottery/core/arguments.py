"""Checks of a public function's arguments: one line naming the argument, its value and what is allowed.

Example:
    >>> count("num_blocks", 3, least=1)
    3
    >>> number("temperature", "hot", above=0)
    Traceback (most recent call last):
    TypeError: temperature must be a number > 0; got 'hot'
"""

from __future__ import annotations

import math
import numbers
from typing import Optional, Sequence


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def number(name: str, value, above: Optional[float] = None, least: Optional[float] = None,
           most: Optional[float] = None) -> float:
    """``value`` when it is a finite real number in range.

    Args:
        name: The argument, as the caller wrote it.
        value: What was given.
        above: Exclusive lower bound; ``least`` and ``most``: inclusive bounds.

    Returns:
        ``value`` as a float.

    Raises:
        TypeError: for anything but a real number (a bool included).
        ValueError: for NaN, infinity or a value out of range.
    """
    allowed = " and ".join(p for p in (f"> {above}" if above is not None else "",
                                       f">= {least}" if least is not None else "",
                                       f"<= {most}" if most is not None else "") if p)
    wanted = f"{name} must be a number{' ' + allowed if allowed else ''}; got {_shown(value)}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(wanted)
    if not math.isfinite(value) or (above is not None and not value > above) or (
            least is not None and value < least) or (most is not None and value > most):
        raise ValueError(wanted)
    return float(value)


def count(name: str, value, least: int = 0, most: Optional[int] = None) -> int:
    """``value`` when it is an integer in ``[least, most]``.

    Raises:
        TypeError: for anything but an integer (a bool or a float included).
        ValueError: for one out of range.
    """
    wanted = f"{name} must be an integer >= {least}{f' and <= {most}' if most is not None else ''}; got {_shown(value)}"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(wanted)
    if value < least or (most is not None and value > most):
        raise ValueError(wanted)
    return int(value)


def one_of(name: str, value, choices: Sequence, optional: bool = False):
    """``value`` when it is one of ``choices`` (or None when ``optional``).

    Raises:
        ValueError: naming the choices.
    """
    if optional and value is None:
        return value
    try:
        found = value in choices
    except TypeError:  # an unhashable value asked of a set
        found = False
    if not found:
        allowed = ", ".join(repr(c) for c in choices) + (" or None" if optional else "")
        raise ValueError(f"{name} must be one of {allowed}; got {_shown(value)}")
    return value


def instance(name: str, value, kind, what: str):
    """``value`` when it is a ``kind``; ``what`` says what that is for the message.

    Raises:
        TypeError: naming the argument and what it must be.
    """
    if not isinstance(value, kind):
        raise TypeError(f"{name} must be {what}; got {type(value).__name__} ({_shown(value)})")
    return value
