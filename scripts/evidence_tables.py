"""The result tables of README.md and docs/, generated from the committed results files.

A table in the text sits between ``<!-- table: NAME -->`` and ``<!-- /table -->``; this script
rebuilds every such table from its source under ``benchmarks/results`` (with the reports' own
statistics, :mod:`tf_lottery.reports`) and writes it in place. ``--check`` writes nothing and fails
when a table differs from what its files give: ``tests/test_evidence.py`` runs that check, so a
number typed by hand, or a results file changed without its text, fails the suite.

    .venv/bin/python scripts/evidence_tables.py            # rewrite the tables
    .venv/bin/python scripts/evidence_tables.py --check    # compare only
"""

from __future__ import annotations

import json
import os
import re
import statistics
import sys
from typing import Callable, Dict

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))

from tf_lottery.reports import paper, stats  # noqa: E402
from tf_lottery.reports.cells import cell, group_by  # noqa: E402
from tf_lottery.config import Config  # noqa: E402
from tf_lottery.reports.paper_tables import model_depth, table1_paper  # noqa: E402
from tf_lottery.reports.statistics import (  # noqa: E402
    DEFAULT, Declared, paired_accuracy, statistics_table, verdict_cell,
)
from tf_lottery.reports.tables import markdown_table  # noqa: E402
from tf_lottery.results.records import SweepRow  # noqa: E402

REPO = os.path.join(HERE, "..")
RESULTS = os.path.join(REPO, "benchmarks", "results")
DOCUMENTS = ("README.md", "docs/evidence.md", "docs/howto/language-models.md")
MARKER = re.compile(r"(<!-- table: (?P<name>[a-z0-9_.:/]+) -->\n)(?P<body>.*?)(<!-- /table -->)", re.S)


def _rows(folder: str, root: str) -> list:
    with open(os.path.join(root, folder, "results.json"), encoding="utf-8") as handle:
        return [SweepRow.from_dict(r) for r in json.load(handle)["rows"]]


def table2_twin(root: str) -> str:
    """The README's Table 2 twin: ticket − dense per criterion and p, the verdict at the default ξ, the
    paper's value, GraSP's FLOPs reduction and measured training speed-up."""
    rows = _rows("fashion_mnist_table2", root)
    groups = group_by(rows, "criterion", "p")
    body = []
    for p in (1, 3, 5):
        line = [p]
        for criterion in ("snip", "grasp"):
            group = groups[(criterion, p)]
            summary = paired_accuracy(group)
            line += [f"{cell([r.accuracy_pp for r in group])} ({verdict_cell(summary)}; MDD "
                     f"{stats.detectable_text(summary)})", f"{paper.table2(32, criterion, p):+.2f}"]
        grasp = groups[("grasp", p)]
        line += [f"{statistics.fmean(r.flops_reduction_pct for r in grasp):.1f} %",
                 f"{statistics.fmean(r.training_speedup_x for r in grasp):.2f}x"]
        body.append(line)
    return markdown_table(["p", "SNIP (pp)", "paper", "GraSP (pp)", "paper", "GraSP FLOPs ↓", "speed-up (wall)"],
                          body, align="lrrrrrr")


def lm_twin_at_init(root: str) -> str:
    """The tiny-LM twin at initialization: dense − ticket in % of the dense perplexity, interval, MDD,
    verdict, and the interleaved speed-ups in CPU and wall seconds."""
    with open(os.path.join(root, "lm_twin_long", "results.json"), encoding="utf-8") as handle:
        found = json.load(handle)
    margin = found["margin_pct"]
    body = []
    for name, cell_ in found["at_initialization"].items():
        criterion, count = name.split("_")
        summary = stats.Paired(**{k: v for k, v in cell_["dense_minus_ticket_pct"].items() if k != "n"})
        body.append([f"{'GraSP' if criterion == 'grasp' else 'SNIP'} −{count}", f"{summary.mean:+.2f}",
                     stats.interval_text(summary), stats.detectable_text(summary),
                     stats.verdict_text(summary.verdict, margin, "%"),
                     f"{cell_['interleaved_speedup_cpu']:.2f}x", f"{cell_['interleaved_speedup_wall']:.2f}x",
                     f"{statistics.fmean(cell_['flops_implied_speedup']):.2f}x"])
    return markdown_table(["ticket", "dense − ticket (% of dense)", "95 % interval", "MDD (%)", "verdict",
                           "speed-up (CPU s)", "speed-up (wall s)", "FLOPs-implied"], body, align="lrrrlrrr")


def lm_twin_contrasts(root: str) -> str:
    """SNIP's ticket minus GraSP's at the same number of layers (paired by seed)."""
    with open(os.path.join(root, "lm_twin_long", "results.json"), encoding="utf-8") as handle:
        found = json.load(handle)
    margin = found["margin_pct"]
    body = []
    for name, values in found["contrasts_pct"].items():
        summary = stats.Paired(**{k: v for k, v in values.items() if k != "n"})
        body.append([name.replace("snip_", "SNIP −").replace("grasp_", "GraSP −"), f"{summary.mean:+.2f}",
                     stats.interval_text(summary), stats.detectable_text(summary),
                     stats.verdict_text(summary.verdict, margin, "%")])
    return markdown_table(["contrast", "mean (% of dense)", "95 % interval", "MDD (%)", "verdict"], body,
                          align="lrrrl")


def lm_twin_after_training(root: str) -> str:
    """The tiny-LM twin after training: perplexity right after removal and healed (means over seeds), and
    dense − healed in % of the dense perplexity with its interval and verdict."""
    with open(os.path.join(root, "lm_twin_long", "results.json"), encoding="utf-8") as handle:
        found = json.load(handle)
    margin = found["margin_pct"]
    labels = {"block_influence": "Block Influence", "angular": "angular distance", "cka": "CKA",
              "removal_loss": "removal loss", "random": "random"}
    body = []
    for criterion, runs in found["after_training"].items():
        summary = stats.Paired(**{k: v for k, v in found["dense_minus_healed_pct"][criterion].items() if k != "n"})
        body.append([labels.get(criterion, criterion),
                     "; ".join(", ".join(str(int(n.rsplit("_", 1)[-1])) for n in runs[s]["removed"]) for s in runs),
                     f"{statistics.fmean(r['perplexity_after_removal'] for r in runs.values()):.3f}",
                     f"{statistics.fmean(r['perplexity_after_healing'] for r in runs.values()):.3f}",
                     f"{summary.mean:+.2f}", stats.interval_text(summary),
                     stats.verdict_text(summary.verdict, margin, "%")])
    return markdown_table(["criterion", "layers removed (per seed)", "right after removal", "healed",
                           "dense − healed (% of dense)", "95 % interval", "verdict"], body, align="llrrrrl")


def converged_pilot(root: str) -> str:
    """The converged twin's pilot: per seed, the dense test accuracy and its plateau, and each ticket's
    difference to dense; the last rows give each cell's mean, interval, MDD and verdict at ξ = 1 pp."""
    from tf_lottery.results import curves

    rows = _rows(os.path.join("fashion_mnist_converged", "pilot"), root)
    cells = list(dict.fromkeys((r.criterion, r.p) for r in rows))
    body = []
    for seed in sorted({r.seed for r in rows}):
        mine = [r for r in rows if r.seed == seed]
        found = curves.plateau(mine[0].dense_curve)
        by = {(r.criterion, r.p): r for r in mine}
        body.append([seed, f"{100 * mine[0].dense_accuracy:.2f}",
                     "—" if found is None else f"{found.state} ({found.range_pp:.2f})",
                     *[f"{by[c].accuracy_pp:+.2f}" if c in by else "—" for c in cells]])
    summaries = [paired_accuracy([r for r in rows if (r.criterion, r.p) == c]) for c in cells]
    body.append(["mean [95 % CI]", f"{100 * statistics.fmean({r.seed: r.dense_accuracy for r in rows}.values()):.2f}",
                 "", *[f"{s.mean:+.2f} {stats.interval_text(s)}" for s in summaries]])
    body.append(["MDD; verdict at ξ = 1 pp", "", "",
                 *[f"{stats.detectable_text(s)}; {verdict_cell(s)}" for s in summaries]])
    return markdown_table(["seed", "dense test accuracy (%)", "dense: last 20 % of epochs (validation range, pp)",
                           *[f"{c} −{p} (pp)" for c, p in cells]], body, align="lrl" + "r" * len(cells))


def converged_plan(root: str) -> str:
    """The seed plan from the pilot (``plan.json``): pooled spreads and the seeds each kind of
    comparison needs to detect the target difference."""
    with open(os.path.join(root, "fashion_mnist_converged", "pilot", "plan.json"), encoding="utf-8") as handle:
        found = json.load(handle)
    body = []
    for name, key in (("ticket − dense", "cells"), ("criterion − criterion", "contrasts")):
        summary = found[key]
        if summary["pooled_std"] is None:
            continue
        shown = {int(n): v for n, v in summary["detectable_by_seeds"].items()}
        body.append([name, f"{summary['pooled_std']:.3f}", summary["degrees_of_freedom"],
                     f"{shown[3]:.2f}", f"{shown[8]:.2f}", summary["seeds_needed"] or "more than 1000"])
    return markdown_table(["paired difference", "pooled std (pp)", "degrees of freedom", "MDD at 3 seeds (pp)",
                           "MDD at 8 seeds (pp)", f"seeds for MDD ≤ {found['target']:g} pp"], body, align="lrrrrr")


TABLES: Dict[str, Callable[[str], str]] = {
    "converged_pilot": converged_pilot,
    "converged_plan": converged_plan,
    "lm_twin_after_training": lm_twin_after_training,
    "table2_twin": table2_twin,
    "lm_twin_at_init": lm_twin_at_init,
    "lm_twin_contrasts": lm_twin_contrasts,
}
"""Every generated table, by the name its marker gives."""


def sweep_statistics(folder: str, root: str) -> str:
    """Every cell of a committed sweep or compare folder: per-seed differences, interval, MDD, verdict at the
    sweep's declared ξ and the paper's value, as the sweep's own report gives them
    (:func:`tf_lottery.reports.statistics_table`)."""
    from tf_lottery.reports.compare import _labelled

    with open(os.path.join(root, folder, "results.json"), encoding="utf-8") as handle:
        payload = json.load(handle)
    rows = [SweepRow.from_dict(r) for r in payload["rows"]]
    config = Config.from_dict(payload["config"])
    declared, depth = Declared.of(config), model_depth(config)  # as the sweep's own report reads them
    if payload["config"]["experiment"] == "compare":
        return statistics_table(_labelled(rows), ("method", "criterion", "p"), declared=declared)
    if rows[0].rewinds:
        return statistics_table(rows, ("criterion", "rewind_at", "p"), table1_paper(config), declared)
    return statistics_table(rows, ("criterion", "p"), lambda r: paper.table2(depth, r.criterion, r.p), declared)


def _table(name: str, root: str) -> str:
    if name.startswith("stats:"):
        return sweep_statistics(name.split(":", 1)[1], root)
    return TABLES[name](root)


def render(text: str, root: str = RESULTS) -> str:
    """``text`` with every marked table rebuilt from the files under ``root``.

    Raises:
        KeyError: for a marker naming no table.
    """
    return MARKER.sub(lambda m: f"{m.group(1)}{_table(m.group('name'), root)}\n{m.group(4)}", text)


def main(argv) -> int:
    check = "--check" in argv
    stale = []
    for name in DOCUMENTS:
        path = os.path.join(REPO, name)
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        new = render(text)
        if new != text:
            stale.append(name)
            if not check:
                with open(path, "w", encoding="utf-8") as handle:
                    handle.write(new)
    if check and stale:
        print(f"tables differ from their files in {', '.join(stale)}: run scripts/evidence_tables.py")
        return 1
    print("tables " + ("checked" if check else "written") + (f": {', '.join(stale)} changed" if stale else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
