"""Plain-text tables that read well in a terminal and render as Markdown."""

from __future__ import annotations

from typing import Sequence


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]], align: str = "") -> str:
    """Formats ``rows`` under ``headers`` as a padded Markdown table.

    Args:
        headers: Column titles.
        rows: One sequence of cells per row (cells are turned into ``str``).
        align: One letter per column, "l" or "r" (default: numbers right, text left).

    Returns:
        The table as a string with a trailing newline.

    Raises:
        ValueError: if a row's length differs from the number of headers.

    Example:
        >>> print(markdown_table(["a", "b"], [[1, "x"]]), end="")
        | a | b |
        |--:|:--|
        | 1 | x |
    """
    cells = [[str(c) for c in row] for row in rows]
    for row in cells:
        if len(row) != len(headers):
            raise ValueError(f"row {row} has {len(row)} cells; expected {len(headers)}")
    if not align:
        align = "".join(
            "r" if rows and all(isinstance(r[i], (int, float)) for r in rows) else "l" for i in range(len(headers))
        )
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(values):
        padded = [v.rjust(w) if a == "r" else v.ljust(w) for v, w, a in zip(values, widths, align)]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + ":") if a == "r" else (":" + "-" * (w + 1)) for w, a in zip(widths, align)) + "|"
    return "\n".join([line(headers), rule] + [line(r) for r in cells]) + "\n"
