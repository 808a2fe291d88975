"""Cell formatting shared by every report: values, changes, ``mean ± std`` cells, grouping rows.

Example:
    >>> cell([0.5, 0.7])
    '+0.60 ± 0.14'
"""

from __future__ import annotations

import statistics
from typing import Iterable, Optional

from tf_lottery.results.records import ModelRecord


def fmt_value(value, spec="{:,.2f}"):
    return "unavailable" if value is None else spec.format(value)


def change_cell(reduction_pct):
    """A reduction in % as a signed change: 28.6 -> "-28.60 %", -3.2 -> "+3.20 %"."""
    return "unavailable" if reduction_pct is None else f"{-reduction_pct:+.2f} %"


def less_cell(dense, ticket):
    """% by which ``ticket`` is below ``dense``, or None when either is unavailable."""
    return None if dense is None or ticket is None or not dense else 100.0 * (dense - ticket) / dense


def energy_cell(side: ModelRecord, key: str) -> str:
    value = side.energy.value(key)
    return fmt_value(None if value is None else 1000 * value, "{:,.3f}")


def percent_cell(accuracy) -> str:
    return fmt_value(None if accuracy is None else 100 * accuracy, "{:.2f}")


def mean_std(values: Iterable[Optional[float]]) -> tuple[Optional[float], Optional[float], int]:
    """``(mean, sample std or None, n)`` of the values; None values (unavailable) are left out.

    Args:
        values: Numbers, None for unavailable ones.

    Returns:
        ``(mean, sample std, n)``: the std None for fewer than 2 known values, the mean None for none.

    Example:
        >>> mean_std([1.0, 2.0, 3.0])
        (2.0, 1.0, 3)
    """
    known = [v for v in values if v is not None]
    if not known:
        return None, None, 0
    return statistics.fmean(known), statistics.stdev(known) if len(known) > 1 else None, len(known)


def cell(values, spec: str = "{:+.2f}", bold: bool = False, suffix: str = "") -> str:
    """``mean ± std`` of ``values`` formatted with ``spec``: the mean alone for one value or
    equal values (FLOPs of one p), "unavailable" when none is known.

    Args:
        values: Numbers, None for unavailable ones.
        spec: The format of the mean and the std (the std without its sign).
        bold: Wrap the cell in Markdown bold.
        suffix: Text after the numbers (``" %"``).

    Returns:
        The cell's text.

    Example:
        >>> cell([0.5, -0.1]), cell([20.0, 20.0], "{:.2f}")
        ('+0.20 ± 0.42', '20.00')
    """
    values = list(values)
    mean, std, _ = mean_std(values)
    if mean is None:
        return "unavailable"
    spread = std is not None and len(set(v for v in values if v is not None)) > 1  # equal values: no "± 0.00"
    text = spec.format(mean) + (" ± " + spec.format(std).lstrip("+") if spread else "") + suffix
    return f"**{text}**" if bold else text


def group_by(rows, *keys) -> dict:
    groups = {}
    for r in rows:
        groups.setdefault(tuple(getattr(r, k) for k in keys), []).append(r)
    return groups


def ordered_values(rows, key) -> list:
    return list(dict.fromkeys(getattr(r, key) for r in rows))
