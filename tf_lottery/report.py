"""Reports: a run's comparison table, and a sweep's paper tables with mean ± std over seeds.

* The run table (:func:`run_table`): dense versus ticket, printed at the end of a run and
  saved as ``summary.md``.

* Table 1 shape (``lottery`` sweeps): criterion (x rewind mode) by rewind epoch θ_i,
  accuracy difference to dense in percentage points.
* Table 2 shape (``init_ticket`` sweeps): p by criterion, the same differences.
* Table 4 shape (every sweep): FLOPs, params, memory and CO2 reductions (% less than
  dense), the measured training speed-up (time ratio) and images/s ratio, and the speed-up
  FLOPs alone would imply.

Cells are ``mean ± std`` over seeds (sample std, n - 1; a single seed shows the mean
only). The paper reports single runs, so its numbers are one draw from such a spread.
In Tables 1 and 2 the best cell of a row is **bold**, and a mean >= 0 is a winning
ticket on average (the paper's "(+)").
"""

from __future__ import annotations

import os
import statistics
from typing import Iterable, List, Optional

from tf_lottery import plots
from tf_lottery.config import Config
from tf_lottery.io import write_text_atomic
from tf_lottery.records import ModelRecord, RunRecord, SweepRow
from tf_lottery.tables import markdown_table


def _fmt(value, spec="{:,.2f}"):
    return "unavailable" if value is None else spec.format(value)


def _change(reduction_pct):
    """A reduction in % as a signed change: 28.6 -> "-28.60 %", -3.2 -> "+3.20 %"."""
    return "unavailable" if reduction_pct is None else f"{-reduction_pct:+.2f} %"


def _less(dense, ticket):
    """% by which ``ticket`` is below ``dense``, or None when either is unavailable."""
    return None if dense is None or ticket is None or not dense else 100.0 * (dense - ticket) / dense


def _energy(side: ModelRecord, key: str) -> str:
    value = side.energy.value(key)
    return _fmt(None if value is None else 1000 * value, "{:,.3f}")


def _percent(accuracy) -> str:
    return _fmt(None if accuracy is None else 100 * accuracy, "{:.2f}")


def run_table(result: RunRecord) -> str:
    """Dense versus ticket as a Markdown table (printed at the end of a run and saved).

    Example:
        >>> print(run_table(RunRecord.from_dict(json.load(open("runs/init_ticket-.../result.json")))))
    """
    dense, ticket, diff = result.dense, result.ticket, result.comparison
    batch = diff.latency_batch_size
    verdict = ("" if diff.winning_ticket is None
               else f" ({'winning ticket' if diff.winning_ticket else 'not a winning ticket'})")

    def latency(side):
        return _fmt(None if batch is None else 1000 * side.latency[str(batch)]["median_s"], "{:.1f}")

    def count(side, key):
        return _fmt(side.cost(key), "{:,}")

    sessions = {side: record.training.timing.sessions for side, record in (("dense", dense), ("ticket", ticket))}
    resumed = "".join(f"; {side} resumed, {n} sessions" for side, n in sessions.items() if n > 1)
    memory = [None if s.cost("memory_bytes") is None else s.cost("memory_bytes") / 2**20 for s in (dense, ticket)]
    rows = [
        ["test accuracy (%)", _percent(dense.accuracy), _percent(ticket.accuracy),
         f"{_fmt(diff.accuracy_pp, '{:+.2f}')} pp{verdict}"],
        ["blocks", dense.blocks, ticket.blocks, f"-{dense.blocks - ticket.blocks}"],
        ["params", count(dense, "params"), count(ticket, "params"), _change(diff.params_reduction_pct)],
        ["non-zero weights", count(dense, "nonzero_params"), count(ticket, "nonzero_params"),
         _change(_less(dense.cost("nonzero_params"), ticket.cost("nonzero_params")))],
        ["conv filters", count(dense, "filters"), count(ticket, "filters"),
         _change(_less(dense.cost("filters"), ticket.cost("filters")))],
        ["FLOPs", count(dense, "flops"), count(ticket, "flops"), _change(diff.flops_reduction_pct)],
        [f"memory, batch {dense.cost('memory_batch_size')} (MiB)", _fmt(memory[0], "{:,.1f}"),
         _fmt(memory[1], "{:,.1f}"), _change(diff.memory_reduction_pct)],
        ["latency (not measured: --evals without latency)" if batch is None
         else f"latency, batch {batch} (ms, measured)", latency(dense), latency(ticket), _fmt(diff.latency_speedup_x, "{:,.2f}x")],
        [f"training time (s, measured{resumed})", f"{dense.train_seconds:.1f}", f"{ticket.train_seconds:.1f}",
         _fmt(diff.training_speedup_x, "{:,.2f}x speed-up")],
        ["training images/s (measured)", _fmt(dense.images_per_second, "{:,.0f}"),
         _fmt(ticket.images_per_second, "{:,.0f}"), _fmt(diff.images_per_second_ratio_x, "{:,.2f}x")],
        ["training energy (Wh, estimated)" if dense.energy.estimated else "training energy (Wh)",
         _energy(dense, "energy_kwh"), _energy(ticket, "energy_kwh"), _change(diff.energy_reduction_pct)],
        [f"training CO2 (g, {dense.energy.country or '?'} grid)", _energy(dense, "co2_kg"), _energy(ticket, "co2_kg"),
         _change(diff.co2_reduction_pct)],
    ]
    return markdown_table(["", "dense", "ticket", "change"], rows, align="lrrl")


def mean_std(values: Iterable[Optional[float]]) -> tuple[Optional[float], Optional[float], int]:
    """``(mean, sample std or None, n)`` of the values; None values (unavailable) are left out.

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


def _group(rows, *keys) -> dict:
    groups = {}
    for r in rows:
        groups.setdefault(tuple(getattr(r, k) for k in keys), []).append(r)
    return groups


def _ordered(rows, key) -> list:
    return list(dict.fromkeys(getattr(r, key) for r in rows))


def _difference_table(rows, row_keys, column_key, column_label, best_of: str = "row", value: str = "accuracy_pp",
                      spec: str = "{:+.2f}") -> str:
    """Rows x columns of accuracy differences (pp; or another row field ``value`` formatted by
    ``spec``), both in sweep order; the best (highest) mean of each row (``best_of="row"``) or of
    each column (``"column"``) in bold."""
    columns = _ordered(rows, column_key)
    groups = _group(rows, *row_keys, column_key)
    heads = list(dict.fromkeys(tuple(getattr(r, k) for k in row_keys) for r in rows))
    values = {(h, c): [getattr(r, value) for r in groups.get(h + (c,), [])] for h in heads for c in columns}
    means = {key: mean_std(v)[0] for key, v in values.items()}
    along = heads if best_of == "column" else columns

    def best(key):
        h, c = key
        rivals = [means[(o, c)] if best_of == "column" else means[(h, o)] for o in along]
        known = [m for m in rivals if m is not None]
        return len(along) > 1 and means[key] is not None and means[key] == max(known)

    body = [[*h, *[cell(values[(h, c)], spec, bold=best((h, c))) if values[(h, c)] else "" for c in columns]]
            for h in heads]
    headers = [*row_keys, *[column_label(c) for c in columns]]
    return markdown_table(headers, body, align="l" * len(row_keys) + "r" * len(columns))


def table1(rows) -> str:
    """Table 1 shape: after-training criterion (x rewind mode) by rewind epoch θ_i, pp vs dense."""
    keys = ("criterion", "rewind") if len(_ordered(rows, "rewind")) > 1 else ("criterion",)
    return _difference_table(rows, keys, "rewind_epoch", lambda epoch: f"θ_{epoch}")


def table2(rows) -> str:
    """Table 2 shape: p by criterion at initialization, pp vs dense."""
    return _difference_table(rows, ("p",), "criterion", lambda name: name)


def has_cka(rows) -> bool:
    """Whether the rows carry CKA (``--evals`` held ``cka``)."""
    return any(r.cka_linear is not None for r in rows)


def cka_table2(rows) -> str:
    """CKA with dense in the Table 2 shape: p by criterion, linear CKA of the penultimate features."""
    return _difference_table(rows, ("p",), "criterion", lambda name: name, value="cka_linear", spec="{:.3f}")


_CKA_NOTE = ("Linear CKA (Kornblith et al. 2019) between the dense network's and the ticket's penultimate features "
             "(the classifier's input) on a fixed batch of test images, mean ± std over seeds; 1 = the same "
             "representation up to rotation and scale; **bold**: the most similar of its {along}. Each stage's CKA "
             "and the debiased form are in every run's `evals/ticket/cka.json` and in `--experiment=robustness`.")


def table4(rows) -> str:
    """Table 4 shape: reductions (% less than dense) and speed-ups (x), mean ± std over seeds."""
    keys = ["criterion", "p"] + (["rewind", "rewind_epoch"] if rows and rows[0].rewinds else [])
    body = []
    for head, group in _group(rows, *keys).items():
        def col(key, spec="{:.2f}", suffix=""):
            return cell([getattr(r, key) for r in group], spec, suffix=suffix)
        body.append([*head, col("flops_reduction_pct"), col("params_reduction_pct"), col("memory_reduction_pct"),
                     col("co2_reduction_pct"), col("training_speedup_x", suffix="x"),
                     col("images_per_second_ratio_x", suffix="x"), col("flops_implied_speedup_x", suffix="x"),
                     col("accuracy_pp", "{:+.2f}"), len(group)])
    headers = [*keys, "FLOPs ↓ %", "params ↓ %", "memory ↓ %", "CO2 ↓ %", "training speed-up (measured)",
               "images/s ratio (measured)", "FLOPs-implied speed-up", "accuracy (pp)", "seeds"]
    return markdown_table(headers, body, align="l" * len(keys) + "r" * 9)


def dense_table(rows) -> str:
    """The dense runs: test accuracy and training time per seed."""
    body = []
    for (seed,), group in _group(rows, "seed").items():
        first = group[0]
        body.append([seed, _percent(first.dense_accuracy), f"{first.dense_train_seconds:.0f}",
                     first.dense_run_folder or ""])
    accuracies = [None if g[0].dense_accuracy is None else 100 * g[0].dense_accuracy
                  for g in _group(rows, "seed").values()]
    body.append(["mean ± std", cell(accuracies, "{:.2f}"), "",
                 f"{len(accuracies)} seed{'s' if len(accuracies) > 1 else ''}"])
    return markdown_table(["seed", "test accuracy (%)", "training time (s)", "dense run folder"], body, align="lrrl")


def write(config: Config, rows: List[SweepRow], folder: str) -> str:
    """Writes report.md and the plots of a sweep into ``folder``; returns the report's text."""
    lottery = rows[0].rewinds
    x_key = "rewind_epoch" if lottery and len(_ordered(rows, "p")) == 1 else "p"
    plots.accuracy_difference(rows, x_key, os.path.join(folder, "accuracy_difference.png"))
    plots.accuracy_vs_flops(rows, os.path.join(folder, "accuracy_vs_flops.png"))
    plots.speedup_vs_flops_implied(rows, os.path.join(folder, "speedup.png"))
    seeds = _ordered(rows, "seed")
    training = config.training
    setup = (f"{config.data.dataset}, {model_label(config)}, {training.length} at learning rate "
             f"{training.learning_rate:g} (drops at {', '.join(training.lr_drops) or 'none'}), "
             f"train size {config.data.train_size or 'all'}, "
             f"seeds {', '.join(map(str, seeds))}, {len(rows)} runs")
    energy = "unavailable" if not any(r.co2_reduction_pct is not None for r in rows) else "codecarbon"
    parts = [
        f"# Sweep {os.path.basename(folder)}", "", setup, "",
        "Accuracy differences are ticket minus dense test accuracy in percentage points, mean ± std over "
        "seeds (each seed's ticket against the dense run of the same seed); **bold**: the best of its row.", "",
        "## Dense runs", "", dense_table(rows), "",
    ]
    if lottery:
        parts += ["## Table 1 shape: after-training criteria by rewind epoch (pp vs dense)", "", table1(rows), ""]
    else:
        parts += ["## Table 2 shape: tickets at initialization (pp vs dense)", "", table2(rows), ""]
        if has_cka(rows):
            parts += ["## CKA with the dense network (Table 2 shape)", "", cka_table2(rows), "",
                      _CKA_NOTE.format(along="row"), ""]
    parts += [
        "## Table 4 shape: efficiency (% less than dense; speed-up in x)", "", table4(rows), "",
        f"Training speed-up = dense training time / ticket training time, measured (wall clock, whole "
        f"`fit`){'; a rewound ticket trains n - i epochs, so its time ratio includes the shorter schedule' if lottery else ''}. "
        "Images/s ratio = ticket / dense training throughput after the first epoch: the per-step gain alone. "
        f"CO2 from {energy} (see each run's result.json for its mode). FLOPs, params and memory are computed "
        "from the graph.", "",
        "![accuracy difference](accuracy_difference.png)", "![accuracy vs FLOPs](accuracy_vs_flops.png)",
        "![speed-up](speedup.png)", "",
    ]
    text = "\n".join(parts)
    write_text_atomic(os.path.join(folder, "report.md"), text)
    return text


#: How ``compare`` reports name each method (the paper's Table 3 calls filter tickets "standard LTH").
METHOD_LABELS = {"blocks": "layers (ours)", "filters": "filters (standard LTH, removed)",
                 "filter_masks": "filters (tfmot masks)", "imp": "weights (IMP, tfmot)"}
#: The paper's Table 3 (ResNet32, CIFAR-10, p = 1): pp vs dense.
PAPER_TABLE3 = {"filters": {"snip": -0.79, "grasp": -0.11}, "blocks": {"snip": +0.08, "grasp": +0.40}}


def _labelled(rows):
    import dataclasses

    return [dataclasses.replace(r, method=METHOD_LABELS.get(r.method, r.method)) for r in rows]


def _structured(rows) -> list:
    """The rows of the Table 3 shape (every method but IMP, which has no p), labelled, in method order."""
    order = [m for m in METHOD_LABELS if m != "imp"]
    return _labelled(sorted((r for r in rows if r.method in order), key=lambda r: order.index(r.method)))


def table3(rows) -> str:
    """Table 3 shape: filter and layer tickets (rows) by criterion (columns), pp vs dense, one p."""
    return _difference_table(_structured(rows), ("method",), "criterion", lambda name: name, best_of="column")


def cka_table3(rows) -> str:
    """CKA with dense in the Table 3 shape: methods by criterion, linear CKA of the penultimate features."""
    return _difference_table(_structured(rows), ("method",), "criterion", lambda name: name, best_of="column",
                             value="cka_linear", spec="{:.3f}")


def cost_table(rows) -> str:
    """Every method's cost, mean ± std over seeds: size, FLOPs as run, measured time, images/s, latency."""
    body = []
    for (method, criterion, p), group in _group(rows, "method", "criterion", "p").items():
        weights_only = p is None
        batch = group[0].latency_batch_size

        def col(key, spec="{:,.0f}", scale=1.0, suffix=""):
            return cell([None if getattr(r, key) is None else scale * getattr(r, key) for r in group], spec,
                        suffix=suffix)

        body.append([METHOD_LABELS.get(method, method), "—" if weights_only else criterion,
                     "—" if p is None else p, col("ticket_params"), col("ticket_nonzero_params"),
                     col("ticket_filters"), col("ticket_flops"), col("ticket_train_seconds", "{:,.1f}"),
                     col("training_speedup_x", "{:.2f}", suffix="x"), col("ticket_images_per_second"),
                     col("ticket_latency_s", "{:.1f}", 1000.0) + ("" if batch is None else f" (batch {batch})"),
                     col("accuracy_pp", "{:+.2f}"), len(group)])
    dense = rows[0] if rows else None
    if dense is not None:
        seeds = list(_group(rows, "seed").values())
        firsts = [g[0] for g in seeds]
        body.insert(0, ["dense", "—", "—", cell([r.dense_params for r in firsts], "{:,.0f}"),
                        cell([r.dense_params for r in firsts], "{:,.0f}"), cell([r.dense_filters for r in firsts],
                                                                                "{:,.0f}"),
                        cell([r.dense_flops for r in firsts], "{:,.0f}"),
                        cell([r.dense_train_seconds for r in firsts], "{:,.1f}"), "1.00x",
                        cell([r.dense_images_per_second for r in firsts], "{:,.0f}"),
                        cell([None if r.dense_latency_s is None else 1000 * r.dense_latency_s for r in firsts],
                             "{:.1f}"), "", len(firsts)])
    headers = ["method", "criterion", "p", "params", "non-zero weights", "conv filters", "FLOPs (as run)",
               "training time (s)", "training speed-up", "training images/s", "latency (ms)", "accuracy (pp)",
               "seeds"]
    return markdown_table(headers, body, align="lllrrrrrrrrrr")


def write_compare(config: Config, rows: List[SweepRow], folder: str) -> str:
    """Writes report.md of a ``compare`` run into ``folder``; returns its text."""
    seeds = _ordered(rows, "seed")
    training, method = config.training, config.method
    parts = [
        f"# Compare {os.path.basename(folder)}", "",
        f"{config.data.dataset}, {model_label(config)}, {training.length} at learning rate "
        f"{training.learning_rate:g} (drops at {', '.join(training.lr_drops) or 'none'}), train size "
        f"{config.data.train_size or 'all'}, seeds {', '.join(map(str, seeds))}, {len(rows)} runs. Every ticket "
        "starts from its seed's θ0 and trains by the same recipe on the same data stream as the dense run.", "",
        "Accuracy differences are ticket minus dense test accuracy in percentage points, mean ± std over seeds "
        "(each seed's ticket against the dense run of the same seed); **bold**: the best method of its column.", "",
        "## Dense runs", "", dense_table(rows), "",
    ]
    for p in [p for p in _ordered(rows, "p") if p is not None]:
        at_p = [r for r in rows if r.p == p]
        parts += [f"## Table 3 shape: filter vs layer tickets at initialization, p = {p} (pp vs dense)", "",
                  table3(at_p), ""]
        if p == 1:
            paper = [[METHOD_LABELS[m], *[f"{v:+.2f}" for v in PAPER_TABLE3[m].values()]] for m in PAPER_TABLE3]
            parts += ["The paper's Table 3 (ResNet32, CIFAR-10, one run each):", "",
                      markdown_table(["method", "snip", "grasp"], paper, align="lrr"), ""]
        if has_cka(at_p):
            parts += [f"CKA with the dense network, p = {p}:", "", cka_table3(at_p), "",
                      _CKA_NOTE.format(along="column"), ""]
        targets = sorted({r.ticket_filters for r in at_p if r.method != "imp" and r.ticket_filters is not None})
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
    parts += [
        "## Cost of every method (mean ± std over seeds)", "", cost_table(rows), "",
        "Params and FLOPs are computed from the graph: masks remove nothing, so a masked ticket has the dense "
        "network's params and FLOPs (its zeros are still multiplied) and only fewer non-zero weights. Training "
        "time is the measured wall clock of the whole training; speed-up = dense time / ticket time; images/s "
        "after the first epoch; latency is the measured median of a forward pass.", "",
    ]
    from tf_lottery.methods import METHODS

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


def model_label(config: Config) -> str:
    """``ResNet-32`` for a CIFAR ResNet, else the model type."""
    depth = getattr(config.model.settings, "depth", None)
    return f"ResNet-{depth}" if config.model.type == "cifar_resnet" and depth else config.model.type
