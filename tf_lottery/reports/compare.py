"""The compare report: the paper's Table 3 shape (layer tickets against filter and weight tickets) and the cost table.
"""

from __future__ import annotations

import dataclasses
import os
from typing import List

from tf_lottery.config import Config
from tf_lottery.core.io import write_text_atomic
from tf_lottery.reports import paper, plots
from tf_lottery.reports.tables import markdown_table
from tf_lottery.results.records import SweepRow
from tf_lottery.tickets import METHODS
from tf_lottery.reports.cells import cell, group_by, ordered_values
from tf_lottery.reports.paper_tables import CKA_NOTE, difference_table, has_cka, model_depth
from tf_lottery.reports.recipe_check import RECIPE_NOTE, dense_table, model_label, recipe_text, warmup_epochs
from tf_lottery.reports.statistics import (
    DEFAULT, TIME_NOTE, Declared, statistics_note, statistics_table, time_to_dense_table, verdict_counts,
)


#: How ``compare`` reports name each method (the paper's Table 3 calls filter tickets "standard LTH").
METHOD_LABELS = {"blocks": "layers (ours)", "filters": "filters (standard LTH, removed)",
                 "filter_masks": "filters (tfmot masks)", "imp": "weights (IMP, tfmot)"}


def _labelled(rows):
    """Rows with their methods' labels; a weights-only row (IMP, no p) shows no criterion (it has none)."""
    return [dataclasses.replace(r, method=METHOD_LABELS.get(r.method, r.method),
                                criterion=r.criterion if r.p is not None else None) for r in rows]


def _structured(rows) -> list:
    """The rows of the Table 3 shape (every method but IMP, which has no p), labelled, in method order."""
    order = [m for m in METHOD_LABELS if m != "imp"]
    return _labelled(sorted((r for r in rows if r.method in order), key=lambda r: order.index(r.method)))


def table3(rows, paper_of=None, declared: Declared = DEFAULT) -> str:
    """Table 3 shape: filter and layer tickets (rows) by criterion (columns), pp vs dense, one p
    (``paper_of(row)`` of a labelled row: the paper's value beside each column).

    Args:
        rows: The :class:`~tf_lottery.results.SweepRow` of a ``compare`` run.
        paper_of: ``row -> the paper's value or None`` (e.g. :func:`table1_paper`), or None.
        declared: The sweep's :class:`~tf_lottery.reports.statistics.Declared` margin and power.

    Returns:
        A Markdown table, each cell mean ± std over seeds with its verdict.

    Example:
        >>> print(table3(tl.experiments.get("compare")(config).rows))
    """
    return difference_table(_structured(rows), ("method",), "criterion", lambda name: name, best_of="column",
                             paper_of=paper_of, declared=declared)


def cka_table3(rows) -> str:
    """CKA with dense in the Table 3 shape: methods by criterion, linear CKA of the penultimate features.

    Args:
        rows: The :class:`~tf_lottery.results.SweepRow` of a ``compare`` run.

    Returns:
        A Markdown table, mean ± std over seeds.

    Example:
        >>> print(cka_table3(out.rows))
    """
    return difference_table(_structured(rows), ("method",), "criterion", lambda name: name, best_of="column",
                             value="cka_linear", spec="{:.3f}")


def _batch_label(batch) -> str:
    return "" if batch is None else f" (batch {batch})"


def cost_table(rows) -> str:
    """Every method's cost, mean ± std over seeds: size, FLOPs as run, measured time, images/s, latency.

    Args:
        rows: The :class:`~tf_lottery.results.SweepRow` of a ``compare`` run.

    Returns:
        A Markdown table.

    Example:
        >>> print(cost_table(out.rows))
    """
    body = []
    for (method, criterion, p), group in group_by(rows, "method", "criterion", "p").items():
        weights_only = p is None
        batch = group[0].latency_batch_size

        def col(key, spec="{:,.0f}", scale=1.0, suffix=""):
            return cell([None if getattr(r, key) is None else scale * getattr(r, key) for r in group], spec,
                        suffix=suffix)

        body.append([METHOD_LABELS.get(method, method), "—" if weights_only else criterion,
                     "—" if p is None else p, col("ticket_params"), col("ticket_nonzero_params"),
                     col("ticket_filters"), col("ticket_flops"), col("ticket_train_seconds", "{:,.1f}"),
                     col("training_speedup_x", "{:.2f}", suffix="x"), col("ticket_images_per_second"),
                     col("ticket_latency_s", "{:.1f}", 1000.0) + _batch_label(batch),
                     col("accuracy_pp", "{:+.2f}"), len(group)])
    dense = rows[0] if rows else None
    if dense is not None:
        seeds = list(group_by(rows, "seed").values())
        firsts = [g[0] for g in seeds]
        body.insert(0, ["dense", "—", "—", cell([r.dense_params for r in firsts], "{:,.0f}"),
                        cell([r.dense_params for r in firsts], "{:,.0f}"), cell([r.dense_filters for r in firsts],
                                                                                "{:,.0f}"),
                        cell([r.dense_flops for r in firsts], "{:,.0f}"),
                        cell([r.dense_train_seconds for r in firsts], "{:,.1f}"), "1.00x",
                        cell([r.dense_images_per_second for r in firsts], "{:,.0f}"),
                        cell([None if r.dense_latency_s is None else 1000 * r.dense_latency_s for r in firsts],
                             "{:.1f}") + _batch_label(dense.latency_batch_size), "", len(firsts)])
    headers = ["method", "criterion", "p", "params", "non-zero weights", "conv filters", "FLOPs (as run)",
               "training time (s)", "training speed-up", "training images/s", "latency (ms)", "accuracy (pp)",
               "seeds"]
    return markdown_table(headers, body, align="lllrrrrrrrrrr")


def write_compare(config: Config, rows: List[SweepRow], folder: str) -> str:
    """Writes report.md of a ``compare`` run into ``folder``.

    Args:
        config: The compare run's config.
        rows: The :class:`~tf_lottery.results.SweepRow` of a ``compare`` run.
        folder: The report's folder.

    Returns:
        The report's text.

    Example:
        >>> text = write_compare(config, out.rows, "runs/compare-5e2d9b0a1c4f")
    """
    plots.accuracy_vs_time(rows, os.path.join(folder, "accuracy_vs_time.png"))
    declared = Declared.of(config)
    seeds = ordered_values(rows, "seed")
    method = config.method
    depth = model_depth(config)

    def paper_of(r):
        label = {v: k for k, v in METHOD_LABELS.items()}.get(r.method, r.method)  # table3 rows are labelled
        return paper.table3(depth, label, r.criterion, r.p)

    parts = [
        f"# Compare {os.path.basename(folder)}", "",
        f"{config.data.dataset}, {model_label(config)}, {recipe_text(config)}, train size "
        f"{config.data.train_size or 'all'}, seeds {', '.join(map(str, seeds))}, {len(rows)} runs. Every ticket "
        "starts from its seed's θ0 and trains by the same recipe on the same data stream as the dense run.", "",
        "Accuracy differences are ticket minus dense test accuracy in percentage points, mean ± std over seeds "
        "(each seed's ticket against the dense run of the same seed), with the cell's verdict (see \"Statistics\"); "
        "**bold**: the best method of its column; \"paper\": the paper's Table 3 (ResNet32, CIFAR-10, one run).", "",
        "## Dense runs", "", dense_table(rows, warmup_epochs(config)), "", RECIPE_NOTE, "",
    ]
    for p in [p for p in ordered_values(rows, "p") if p is not None]:
        at_p = [r for r in rows if r.p == p]
        parts += [f"## Table 3 shape: filter vs layer tickets at initialization, p = {p} (pp vs dense)", "",
                  table3(at_p, paper_of, declared), ""]
        if has_cka(at_p):
            parts += [f"CKA with the dense network, p = {p}:", "", cka_table3(at_p), "",
                      CKA_NOTE.format(along="column"), ""]
        # Masked tickets keep every filter in the graph (their count is the dense one): only removals count.
        targets = sorted({r.ticket_filters for r in at_p if r.ticket_filters is not None
                          and not (r.ticket_params is not None and r.ticket_params == r.dense_params)})
        parts += [f"Filter counts of the tickets at p = {p}: {', '.join(f'{t:,}' for t in targets)} "
                  "(each filter ticket has exactly the count of the layer ticket of its seed and criterion).", ""]
    weights = [r for r in rows if r.p is None]
    if weights:
        nonzero = cell([100 * (1 - r.ticket_nonzero_params / r.dense_params) for r in weights
                        if r.ticket_nonzero_params is not None and r.dense_params], "{:.1f}", suffix=" %")
        parts += ["## Weight lottery tickets (IMP)", "",
                  markdown_table(["levels x rate", "weights masked (of all params)", "accuracy (pp)", "seeds"],
                                 [[f"{method.imp_levels} x {method.imp_rate:g}", nonzero,
                                   cell([r.accuracy_pp for r in weights]), len(weights)]], align="lrrr"), ""]
    keys = ("method", "criterion", "p")
    labelled = _labelled(rows)
    parts += [
        "## Statistics: paired differences per cell", "", statistics_table(labelled, keys, paper_of, declared), "",
        f"Verdicts: {verdict_counts(labelled, keys, declared)}. {statistics_note(declared)}", "",
        "## Time to the dense network's final accuracy", "", time_to_dense_table(labelled, keys), "", TIME_NOTE, "",
        "![accuracy vs time](accuracy_vs_time.png)", "",
        "## Cost of every method (mean ± std over seeds)", "", cost_table(rows), "",
        "Params and FLOPs are computed from the graph: masks remove nothing, so a masked ticket has the dense "
        "network's params and FLOPs (its zeros are still multiplied) and only fewer non-zero weights. Training "
        "time is the measured wall clock of the whole training; speed-up = dense time / ticket time; images/s "
        "after the first epoch; latency is the measured median of a forward pass.", "",
    ]
    other = sorted({r.method for r in rows if METHODS.get(r.method).fit is not None})
    if other:
        parts += [
            f"{', '.join(METHOD_LABELS.get(m, m) for m in other)} train in tf_keras under tfmot's wrappers (tfmot "
            "accepts no Keras 3 model); the dense run and the other tickets train in Keras 3. The two frameworks "
            "train at different speeds on some CPUs, so these rows' speed-ups include the framework's: "
            "`scripts/benchmark_baselines.py` compares masks with a dense network trained in tf_keras too. "
            "An IMP ticket's time is its retraining alone; finding it also took the dense training (and one "
            "more training per extra level).", "",
        ]
    text = "\n".join(parts)
    write_text_atomic(os.path.join(folder, "report.md"), text)
    return text
