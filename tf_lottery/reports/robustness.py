"""The ``robustness`` report: the paper's Table 5 shape and its details, from measured rows.

Every difference is a ticket's accuracy minus the dense accuracy *of its own seed* (the
same θ0, data and recipe), in percentage points, then mean ± std over seeds. A cell whose
mean is >= 0 is **bold**: the ticket is at least as robust as the dense network on
average (the paper's "(+)", its ξ = 0 of Eq. 1); each cell also carries its verdict
(:mod:`tf_lottery.reports.stats`, margin ξ = 1 pp): "wins" when the 95 % t interval of the per-seed
differences lies above 0, "winning ticket at ξ" above -ξ, "loses" below -ξ, "undetermined" when it
crosses -ξ. The paper's Table 5 (ResNet32/56 GraSP
tickets, CIFAR-10-C and CIFAR-10.2, one run each) is shown beside the matching rows.
"""

from __future__ import annotations

import os
from typing import Callable, Dict, List, Optional

from tf_lottery.reports import plots
from tf_lottery.reports import stats
from tf_lottery.reports.statistics import DEFAULT
from tf_lottery.config import Config
from tf_lottery.evals.cka import ordered_views
from tf_lottery.evals.corruptions import CORRUPTIONS
from tf_lottery.core.io import write_text_atomic
from tf_lottery.reports.cells import cell, mean_std
from tf_lottery.reports.compare import METHOD_LABELS
from tf_lottery.reports.tables import markdown_table

#: The paper's Table 5: (depth, p) -> (CIFAR-10-C pp, CIFAR-10.2 pp), GraSP layer tickets.
PAPER_TABLE5 = {(32, 1): (1.13, 0.00), (32, 3): (-0.05, -1.15), (32, 4): (1.61, -0.65),
                (56, 3): (0.59, 0.70), (56, 4): (3.73, 1.75), (56, 5): (-0.16, 0.70), (56, 12): (1.98, -1.95)}


def _key(row) -> tuple:
    return (row.model, METHOD_LABELS.get(row.method, row.method), row.criterion or "—",
            "—" if row.p is None else row.p)


def _groups(rows) -> Dict[tuple, list]:
    groups: Dict[tuple, list] = {}
    for row in rows:
        if row.ticket is not None:
            groups.setdefault(_key(row), []).append(row)
    return groups


def _pp(rows, value: Callable[[dict], Optional[float]]) -> List[Optional[float]]:
    """Per seed: 100 * (ticket - dense) of ``value`` (None where either side lacks it)."""
    out = []
    for row in rows:
        ticket, dense = value(row.ticket), value(row.dense)
        out.append(None if ticket is None or dense is None else 100.0 * (ticket - dense))
    return out


def _get(*path) -> Callable[[dict], Optional[float]]:
    def read(results: dict):
        value = results
        for step in path:
            if not isinstance(value, dict) or step not in value:
                return None
            value = value[step]
        return value
    return read


def _by_number(keys) -> List[str]:
    """Severities or epsilons (JSON keys) in numeric order."""
    return sorted(keys, key=float)


def _winning(values) -> str:
    """``mean ± std`` of per-seed paired differences, bold when the mean is >= 0, with the cell's
    verdict (:mod:`tf_lottery.reports.stats`: the 95 % t interval against the default margin ξ = 1 pp)."""
    mean = mean_std(values)[0]
    text = cell(values, bold=mean is not None and mean >= 0)
    summary = stats.paired(values, xi=DEFAULT.margin)
    return text if summary.verdict is None else f"{text} ({stats.verdict_text(summary.verdict, DEFAULT.margin)})"


def _columns(rows) -> List[tuple]:
    """(header, reader) of every Table 5 column the rows have, in a fixed order."""
    first = next((r.dense for r in rows), {})
    columns = [("clean", _get("clean", "accuracy"))]
    if "corruptions" in first:
        columns.append(("corruptions (mean)", _get("corruptions", "mean")))
    for name in first.get("shift_sets", {}):
        columns.append((name, _get("shift_sets", name, "accuracy")))
    for attack, table in first.get("adversarial", {}).get("accuracy", {}).items():
        for epsilon in _by_number(table):
            if epsilon != "0":
                columns.append((f"{attack} {epsilon}/255", _get("adversarial", "accuracy", attack, epsilon)))
    return columns


def table5(rows) -> str:
    """Table 5 shape: one row per ticket kind, pp vs dense on every robustness measure.

    Args:
        rows: The robustness experiment's rows (``tf_lottery.experiments.robustness.RobustnessRow``).

    Returns:
        A Markdown table.

    Example:
        >>> print(table5(tl.experiments.get("robustness")(config).rows))
    """
    columns = _columns(rows)
    body = []
    for key, group in _groups(rows).items():
        body.append([*key, *[_winning(_pp(group, reader)) for _, reader in columns], len(group)])
    headers = ["model", "method", "criterion", "p", *[h for h, _ in columns], "seeds"]
    return markdown_table(headers, body, align="llll" + "r" * (len(columns) + 1))


def paper_table(rows) -> str:
    """The paper's Table 5 rows that match the measured (model, p) of GraSP layer tickets.

    Args:
        rows: The robustness experiment's rows (``tf_lottery.experiments.robustness.RobustnessRow``).

    Returns:
        A Markdown table; '' when no row matches.

    Example:
        >>> print(paper_table(tl.experiments.get("robustness")(config).rows))
    """
    body = []
    for key in _groups(rows):
        model, method, criterion, p = key
        depth = int(model.split("-")[1]) if model.startswith("ResNet-") else None
        if method == METHOD_LABELS["blocks"] and criterion == "grasp" and (depth, p) in PAPER_TABLE5:
            corrupted, shifted = PAPER_TABLE5[(depth, p)]
            body.append([model, p, f"{corrupted:+.2f}", f"{shifted:+.2f}"])
    if not body:
        return ""
    return markdown_table(["model", "p", "CIFAR-10-C (pp)", "CIFAR-10.2 (pp)"], body, align="lrrr")


def absolute_table(rows) -> str:
    """Accuracy (%) of the dense networks and of each ticket kind, mean ± std over seeds.

    Args:
        rows: The robustness experiment's rows (``tf_lottery.experiments.robustness.RobustnessRow``).

    Returns:
        A Markdown table.

    Example:
        >>> print(absolute_table(tl.experiments.get("robustness")(config).rows))
    """
    columns = _columns(rows)

    def percent(results_list, reader):
        return cell([None if reader(r) is None else 100 * reader(r) for r in results_list], "{:.2f}")

    body = []
    dense_by_model: Dict[str, Dict[str, dict]] = {}
    for row in rows:
        dense_by_model.setdefault(row.model, {})[row.dense_run_folder] = row.dense
    for model, dense in dense_by_model.items():
        body.append([model, "dense", "—", "—", *[percent(list(dense.values()), reader) for _, reader in columns],
                     len(dense)])
    for key, group in _groups(rows).items():
        body.append([*key, *[percent([r.ticket for r in group], reader) for _, reader in columns], len(group)])
    headers = ["model", "method", "criterion", "p", *[h for h, _ in columns], "seeds"]
    return markdown_table(headers, body, align="llll" + "r" * (len(columns) + 1))


def corruption_table(rows) -> str:
    """pp vs dense per corruption (mean over severities), one row per ticket kind.

    Args:
        rows: The robustness experiment's rows (``tf_lottery.experiments.robustness.RobustnessRow``).

    Returns:
        A Markdown table; '' without corruption results.

    Example:
        >>> print(corruption_table(tl.experiments.get("robustness")(config).rows))
    """
    first = next((r.dense for r in rows if "corruptions" in r.dense), None)
    if first is None:
        return ""
    names = [n for n in CORRUPTIONS if n in first["corruptions"]["accuracy"]]  # the module's order

    def mean_over_severities(name):
        def read(results):
            table = _get("corruptions", "accuracy", name)(results)
            return None if not table else sum(table.values()) / len(table)
        return read

    body = [[*key, *[_winning(_pp(group, mean_over_severities(n))) for n in names]]
            for key, group in _groups(rows).items()]
    return markdown_table(["model", "method", "criterion", "p", *names], body, align="llll" + "r" * len(names))


def cka_table(rows) -> str:
    """Linear CKA (debiased in parentheses) between dense and ticket, per view, mean ± std over seeds.

    Args:
        rows: The robustness experiment's rows (``tf_lottery.experiments.robustness.RobustnessRow``).

    Returns:
        A Markdown table; '' without CKA results.

    Example:
        >>> print(cka_table(tl.experiments.get("robustness")(config).rows))
    """
    first = next((r.ticket["cka"] for r in rows if r.ticket and "cka" in r.ticket), None)
    if first is None:
        return ""
    views = ordered_views(first["views"])
    body = []
    for key, group in _groups(rows).items():
        cells = []
        for view in views:
            linear = [_get("cka", "views", view, "linear")(r.ticket) for r in group]
            debiased = [_get("cka", "views", view, "debiased")(r.ticket) for r in group]
            cells.append(f"{cell(linear, '{:.3f}')} ({cell(debiased, '{:.3f}')})")
        body.append([*key, *cells, len(group)])
    return markdown_table(["model", "method", "criterion", "p", *views, "seeds"], body,
                          align="llll" + "r" * (len(views) + 1))


def _describe(config: Config) -> str:
    evaluation = config.evaluation
    parts = []
    if "corruptions" in evaluation.evals:
        parts.append(f"corruptions: the in-graph Hendrycks & Dietterich (2019) suite "
                     f"({', '.join(evaluation.corruptions) or 'all that apply to the images'}), severities "
                     f"{', '.join(map(str, evaluation.severities))}, seed {evaluation.corruption_seed}, on the first "
                     f"{evaluation.robustness_examples or 'all'} test images; the mean is over corruptions and "
                     "severities")
    if "shift_sets" in evaluation.evals:
        parts.append(f"shift sets: the published sets ({', '.join(evaluation.shift_sets) or 'those of the dataset'}),"
                     f" first {evaluation.robustness_examples or 'all'} images of each group")
    if "adversarial" in evaluation.evals:
        step = ("2.5 x epsilon / steps" if evaluation.pgd_step_size is None
                else f"{evaluation.pgd_step_size:g}/255")
        parts.append(f"attacks: white-box L-infinity {', '.join(evaluation.attacks)} on the first "
                     f"{evaluation.attack_examples or 'all'} test images; epsilon in pixel levels out of 255 of the "
                     f"[0, 1] pixel range (the mean subtraction shifts, so the ball is the same in the model's "
                     f"input); PGD {evaluation.pgd_steps} steps of {step}"
                     f"{', random start' if evaluation.random_start else ''}")
    if "cka" in evaluation.evals:
        parts.append(f"CKA: linear (Kornblith et al. 2019) and debiased, dense vs ticket, on the first "
                     f"{evaluation.cka_examples} test images: the penultimate features (the classifier's input) "
                     "and each stage's output")
    return "\n".join(f"* {p}" for p in parts)


def write(config: Config, rows, folder: str) -> str:
    """Writes report.md and the plots into ``folder``.

    Args:
        config: The robustness run's config (the report says what was measured).
        rows: The robustness experiment's rows.
        folder: The report's folder.

    Returns:
        The report's text.

    Example:
        >>> text = write(config, out.rows, "runs/robustness-2b1f0c9e7d3a")
    """
    plots.accuracy_vs_severity(rows, os.path.join(folder, "accuracy_vs_severity.png"))
    plots.accuracy_vs_epsilon(rows, os.path.join(folder, "accuracy_vs_epsilon.png"))
    plots.cka_per_stage(rows, os.path.join(folder, "cka_per_stage.png"))
    seeds = sorted({r.seed for r in rows})
    parts = [
        f"# Robustness {os.path.basename(folder)}", "",
        f"Tickets: {len([r for r in rows if r.ticket is not None])}; dense runs: "
        f"{len({r.dense_run_folder for r in rows})} ({', '.join(sorted({r.dataset for r in rows}))}, seeds "
        f"{', '.join(map(str, seeds))}), "
        "measured after training; "
        "nothing was retrained. Differences are ticket minus dense accuracy of the same seed in percentage "
        "points, mean ± std over seeds; **bold**: the ticket is at least as accurate as dense on average.", "",
        _describe(config), "",
        "## Table 5 shape: robustness of the tickets (pp vs dense)", "", table5(rows), "",
    ]
    paper = paper_table(rows)
    if paper:
        parts += ["The paper's Table 5 for the same (model, p) (CIFAR-10, GraSP, one run each; the columns "
                  "measured here stand in for CIFAR-10-C when the dataset is not CIFAR-10):", "", paper, ""]
    parts += ["## Accuracy (%)", "", absolute_table(rows), ""]
    corrupted = corruption_table(rows)
    if corrupted:
        parts += ["## Per corruption (pp vs dense, mean over severities)", "", corrupted, "",
                  "![accuracy against severity](accuracy_vs_severity.png)", ""]
    if any("adversarial" in r.dense for r in rows):
        parts += ["![accuracy against epsilon](accuracy_vs_epsilon.png)", ""]
    similarity = cka_table(rows)
    if similarity:
        parts += ["## CKA between dense and ticket: linear (debiased)", "", similarity, "",
                  "![CKA per stage](cka_per_stage.png)", ""]
    text = "\n".join(parts)
    write_text_atomic(os.path.join(folder, "report.md"), text)
    return text
