"""The planner: how many seeds a campaign needs, from a pilot's spread of paired differences.

A pilot sweep (a few seeds of the campaign's cells) gives the spread of each cell's paired
differences (ticket − dense per seed) and of each contrast of two criteria at the same p (A − B per
seed). The planner pools those spreads (each cell's own mean removed: :func:`tf_lottery.reports.stats.pooled_std`)
and finds the fewest seeds whose minimum detectable difference at the declared power reaches the
target (``--sweep_detectable``, 0.5 pp by default): :func:`tf_lottery.reports.stats.seeds_needed`.

The pilot's spread is itself an estimate: with 2 pilot seeds each cell's standard deviation has
one degree of freedom. Pooling over cells is what makes it usable; the plan says how many degrees of
freedom it rests on, and the campaign's own report gives the MDD it reached.

Example:
    >>> found = plan(rows, Declared(detectable=0.5))
    >>> found["cells"]["seeds_needed"]
    8
"""

from __future__ import annotations

import itertools
import statistics
from typing import Optional

from tf_lottery.reports import stats
from tf_lottery.reports.cells import group_by, ordered_values
from tf_lottery.reports.statistics import DEFAULT, Declared, relative_perplexity
from tf_lottery.reports.tables import markdown_table

SEEDS_SHOWN = tuple(range(2, 13))
"""The seed counts of the plan's MDD table."""


def _difference(row, perplexity: bool):
    return relative_perplexity(row) if perplexity else row.accuracy_pp


def _cell_differences(rows, perplexity: bool) -> dict:
    """``{(length, criterion, p): [ticket − dense per seed]}``."""
    return {key: [_difference(r, perplexity) for r in group if _difference(r, perplexity) is not None]
            for key, group in group_by(rows, "length", "criterion", "p").items()}


def _contrast_differences(rows, perplexity: bool) -> dict:
    """``{(length, p, A, B): [A − B per seed]}`` for every pair of criteria that share a p."""
    found = {}
    for (length, p), group in group_by(rows, "length", "p").items():
        by = {(r.criterion, r.seed): _difference(r, perplexity) for r in group}
        for first, second in itertools.combinations(ordered_values(group, "criterion"), 2):
            seeds = sorted({s for c, s in by if c == first} & {s for c, s in by if c == second})
            values = [by[(first, s)] - by[(second, s)] for s in seeds
                      if by[(first, s)] is not None and by[(second, s)] is not None]
            found[(length, p, first, second)] = values
    return found


def _summary(groups: dict, declared: Declared) -> dict:
    spread = stats.pooled_std(groups.values())
    degrees = sum(max(0, len(v) - 1) for v in groups.values())
    needed = None
    if spread:
        try:
            needed = stats.seeds_needed(spread, declared.detectable, declared.confidence, declared.power)
        except ValueError:
            needed = None  # beyond stats.MAX_SEEDS: said as "more than" in the text
    detectable = {n: (stats.minimum_detectable(spread, n, declared.confidence, declared.power) if spread else None)
                  for n in SEEDS_SHOWN}
    return {"pooled_std": spread, "degrees_of_freedom": degrees, "seeds_needed": needed,
            "detectable_by_seeds": detectable}


def plan(rows, declared: Declared = DEFAULT, perplexity: Optional[bool] = None) -> dict:
    """The seeds a campaign needs for its cells (ticket − dense) and its contrasts (A − B).

    Args:
        rows: A pilot sweep's :class:`~tf_lottery.results.records.SweepRow` objects.
        declared: The target MDD (``detectable``), α and power.
        perplexity: Plan on the relative perplexity (default: when the rows have perplexities).

    Returns:
        A dict with the target, power, alpha and unit, the summaries ``cells`` and ``contrasts`` (each:
        the pooled spread, its degrees of freedom, the seeds needed, None when no spread is known, and
        the MDD at 2 to 12 seeds), and the lists ``per_cell`` and ``per_contrast``.

    Raises:
        ValueError: for no rows.
    """
    if not rows:
        raise ValueError("the planner needs a pilot sweep's rows; got none")
    if perplexity is None:
        perplexity = any(r.ticket_perplexity is not None for r in rows)
    cells, contrasts = _cell_differences(rows, perplexity), _contrast_differences(rows, perplexity)

    def listed(groups, names):
        out = []
        for key, values in groups.items():
            std = statistics.stdev(values) if len(values) > 1 else None
            out.append({**dict(zip(names, key)), "n": len(values),
                        "mean": statistics.fmean(values) if values else None, "std": std,
                        "detectable_now": (stats.minimum_detectable(std, len(values), declared.confidence,
                                                                    declared.power) if std else None)})
        return out

    return {"target": declared.detectable, "power": declared.power, "alpha": declared.alpha,
            "unit": "% of the dense perplexity" if perplexity else "pp",
            "cells": _summary(cells, declared), "contrasts": _summary(contrasts, declared),
            "per_cell": listed(cells, ("length", "criterion", "p")),
            "per_contrast": listed(contrasts, ("length", "p", "first", "second"))}


def _number(value, spec="{:.2f}") -> str:
    return "—" if value is None else spec.format(value)


def plan_text(found: dict) -> str:
    """The plan as Markdown: the per-cell and per-contrast spreads, the pooled spreads, the MDD by
    number of seeds and the seeds needed for the target."""
    unit = found["unit"]
    power = f"{100 * found['power']:g} %"
    parts = ["## Spread of the pilot's paired differences", ""]
    parts.append(markdown_table(
        ["length", "criterion", "p", "seeds", f"mean ticket − dense ({unit})", "std", f"MDD now at {power} power"],
        [[c["length"] or "—", c["criterion"], c["p"], c["n"], _number(c["mean"], "{:+.2f}"), _number(c["std"]),
          _number(c["detectable_now"])] for c in found["per_cell"]], align="llrrrrr"))
    if found["per_contrast"]:
        parts += ["", markdown_table(
            ["length", "p", "contrast", "seeds", f"mean A − B ({unit})", "std", f"MDD now at {power} power"],
            [[c["length"] or "—", c["p"], f"{c['first']} − {c['second']}", c["n"], _number(c["mean"], "{:+.2f}"),
              _number(c["std"]), _number(c["detectable_now"])] for c in found["per_contrast"]], align="lrlrrrr")]
    parts += ["", f"## Minimum detectable difference by seeds ({unit}, two-sided α = {found['alpha']:g}, "
                  f"power {power})", ""]
    kinds = [("ticket − dense", found["cells"]), ("A − B", found["contrasts"])]
    kinds = [(name, summary) for name, summary in kinds if summary["pooled_std"]]
    parts.append(markdown_table(
        ["seeds", *[f"{name} (pooled std {summary['pooled_std']:.3f}, {summary['degrees_of_freedom']} df)"
                    for name, summary in kinds]],
        [[n, *[_number(summary["detectable_by_seeds"][n]) for _, summary in kinds]] for n in SEEDS_SHOWN],
        align="r" * (1 + len(kinds))))
    parts += ["", f"## Seeds needed for an MDD of at most {found['target']:g} {unit}", ""]
    for name, summary in kinds:
        needed = summary["seeds_needed"]
        parts.append(f"- {name}: **{needed if needed else f'more than {stats.MAX_SEEDS}'} seeds** (pooled std "
                     f"{summary['pooled_std']:.3f} {unit} over {summary['degrees_of_freedom']} degrees of freedom).")
    if not kinds:
        parts.append("- No spread is known yet: the pilot needs at least 2 seeds of a cell.")
    parts += ["", "The pooled standard deviation removes each cell's own mean (cells may differ in mean, not in "
                  "spread); the MDD is the smallest true distance from a tested boundary (0 or −ξ) that the 95 % "
                  "interval separates from it with the stated power (noncentral t). A pilot's spread is an "
                  "estimate itself: the campaign's report gives the MDD it reached."]
    return "\n".join(parts)
