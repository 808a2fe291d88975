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
only) and the cell's verdict (:mod:`tf_lottery.stats`): each seed's ticket is paired with
the dense run of its seed, and a cell "wins" only when the 95 % t interval of the paired
differences lies at or above 0 (the paper's ξ = 0), "loses" when it lies below, and is
"within noise" otherwise. The paper's value (CIFAR-10, one run) stands beside each cell
where it has one (:mod:`tf_lottery.paper`). In Tables 1 and 2 the best cell of a row is
**bold**. Every report also has the statistics of each cell (per-seed differences, mean,
std, interval, verdict), the time each ticket takes to reach its dense network's final
validation accuracy (:mod:`tf_lottery.curves`), and ``accuracy_vs_time.png``.
"""

from __future__ import annotations

import os
import statistics
from typing import Iterable, List, Optional

from tf_lottery import curves, paper, plots, stats
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
        _time_to_dense_row(result),
        ["training images/s (measured)", _fmt(dense.images_per_second, "{:,.0f}"),
         _fmt(ticket.images_per_second, "{:,.0f}"), _fmt(diff.images_per_second_ratio_x, "{:,.2f}x")],
        ["training energy (Wh, estimated)" if dense.energy.estimated else "training energy (Wh)",
         _energy(dense, "energy_kwh"), _energy(ticket, "energy_kwh"), _change(diff.energy_reduction_pct)],
        [f"training CO2 (g, {dense.energy.country or '?'} grid)", _energy(dense, "co2_kg"), _energy(ticket, "co2_kg"),
         _change(diff.co2_reduction_pct)],
    ]
    return markdown_table(["", "dense", "ticket", "change"], rows, align="lrrl")


def _time_to_dense_row(result: RunRecord) -> list:
    """The run table's row: seconds until the dense network's final validation accuracy is reached
    (dense: its own first epoch there), measured on each training's curve (:mod:`tf_lottery.curves`)."""
    dense = curves.read_curve(result.dense_run_folder, "dense", result.dense.training.timing)
    ticket = curves.read_curve(result.run_folder, "ticket", result.ticket.training.timing)
    target = curves.final_accuracy(dense)
    if target is None:
        return ["time to the dense final val accuracy (no validation split)", "unavailable", "unavailable", ""]
    reached = curves.seconds_to_reach(ticket, target)
    ratio = None if reached is None else result.dense.train_seconds / reached
    return [f"time to the dense final val accuracy {100 * target:.2f} % (s, measured)",
            _fmt(curves.seconds_to_reach(dense, target), "{:.1f}"), "never" if reached is None else f"{reached:.1f}",
            "" if ratio is None else f"{ratio:,.2f}x (dense training / ticket's time to it)"]


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


def paired_accuracy(group) -> stats.Paired:
    """The paired statistics of a cell's rows: each seed's ticket minus the dense run of its seed (pp)."""
    return stats.paired([r.accuracy_pp for r in group], seeds=[r.seed for r in group])


def _difference_table(rows, row_keys, column_key, column_label, best_of: str = "row", value: str = "accuracy_pp",
                      spec: str = "{:+.2f}", paper_of=None) -> str:
    """Rows x columns of accuracy differences (pp; or another row field ``value`` formatted by
    ``spec``), both in sweep order; the best (highest) mean of each row (``best_of="row"``) or of
    each column (``"column"``) in bold. Accuracy cells carry their verdict; ``paper_of(row)``,
    when given, adds the paper's value after each column."""
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

    def shown(key):
        if not values[key]:
            return ""
        text = cell(values[key], spec, bold=best(key))
        if value == "accuracy_pp" and means[key] is not None:
            text += f" ({paired_accuracy(groups[key[0] + (key[1],)]).verdict})"
        return text

    def published(key):
        found = [paper_of(r) for r in groups.get(key[0] + (key[1],), [])]
        return next((f"{v:+.2f}" for v in found if v is not None), "")

    if paper_of and not any(published((h, c)) for h in heads for c in columns):
        paper_of = None  # the paper has no number for any cell (another model): no empty columns
    body, headers = [], list(row_keys)
    for c in columns:
        headers += [column_label(c)] + (["paper"] if paper_of else [])
    for h in heads:
        line = list(h)
        for c in columns:
            line += [shown((h, c))] + ([published((h, c))] if paper_of else [])
        body.append(line)
    per_column = 2 if paper_of else 1
    return markdown_table(headers, body, align="l" * len(row_keys) + "r" * (per_column * len(columns)))


def statistics_table(rows, keys, paper_of=None) -> str:
    """Every cell's paired statistics: per-seed differences (pp, seed order), mean, sample std,
    the 95 % t interval, the verdict and the paper's value (when ``paper_of(row)`` has one)."""
    body = []
    for head, group in _group(rows, *keys).items():
        summary = paired_accuracy(group)
        if summary.mean is None:
            continue
        published = next((v for v in (paper_of(r) for r in group) if v is not None), None) if paper_of else None
        body.append([*["—" if v is None else v for v in head], ", ".join(map(str, summary.seeds)),
                     stats.per_seed_text(summary), f"{summary.mean:+.2f}",
                     "—" if summary.std is None else f"{summary.std:.2f}", stats.interval_text(summary),
                     summary.verdict, "" if published is None else f"{published:+.2f}"])
    headers = [*keys, "seeds", "ticket − dense per seed (pp)", "mean", "std", "95 % CI (t)", "verdict", "paper"]
    return markdown_table(headers, body, align="l" * len(keys) + "lrrrrll")


def verdict_counts(rows, keys) -> str:
    """``"wins 3, within noise 6, loses 1 (of 10 cells)"``."""
    found = [paired_accuracy(g).verdict for g in _group(rows, *keys).values()]
    found = [v for v in found if v is not None]
    counts = [f"{name} {found.count(name)}" for name in stats.VERDICTS if found.count(name)]
    return f"{', '.join(counts)} (of {len(found)} cells)"


_STATISTICS_NOTE = (
    "Each seed's ticket is paired with the dense run of the same seed (same θ0, data order and scoring batch). "
    "95 % CI: Student's t interval of the mean paired difference, mean ± t(0.975, n − 1) · std / √n "
    "(t = 4.30 for 3 seeds). Verdict (the paper's Eq. 1 with ξ = 0, applied to the interval): **wins** when the "
    "interval lies at or above 0, **loses** when it lies below 0, **within noise** otherwise; one seed gives no "
    "interval. The paper's values are single CIFAR-10 runs: they are a direction to compare with, not a "
    "tolerance.")


def time_to_dense_table(rows, keys) -> str:
    """How long each ticket takes to reach its dense network's final validation accuracy, mean
    over the seeds whose ticket gets there, and how many do (:mod:`tf_lottery.curves`)."""
    body = []
    for head, group in _group(rows, *keys).items():
        curved = [r for r in group if r.ticket_curve and r.dense_curve]
        if not curved:
            continue
        reached = [r for r in curved if r.ticket_seconds_to_dense is not None]
        body.append([*["—" if v is None else v for v in head],
                     cell([100 * r.dense_curve[-1][1] for r in curved], "{:.2f}"),
                     cell([r.dense_train_seconds for r in curved], "{:,.0f}"),
                     cell([r.dense_seconds_to_final for r in curved], "{:,.0f}"),
                     cell([r.ticket_train_seconds for r in curved], "{:,.0f}"),
                     cell([r.ticket_seconds_to_dense for r in reached], "{:,.0f}") if reached else "never",
                     cell([r.time_to_dense_speedup_x for r in reached], "{:.2f}", suffix="x") if reached else "—",
                     f"{len(reached)} of {len(curved)}"])
    headers = [*keys, "dense final val acc (%)", "dense training (s)", "dense first reaches it (s)",
               "ticket training (s)", "ticket reaches it (s)", "dense time / ticket time to it", "seeds reaching it"]
    return markdown_table(headers, body, align="l" * len(keys) + "rrrrrrr")


_TIME_NOTE = (
    "Time to accuracy: the training wall clock (set-up and epochs, the clock of the training speed-up) at the end "
    "of the first epoch whose validation accuracy reaches the dense network's final validation accuracy (same "
    "seed, same validation examples); epoch granularity, so an upper bound by less than one epoch. \"never\": no "
    "epoch of the ticket got there. The ratio is the dense network's whole training time over the ticket's time "
    "to that accuracy, over the seeds that reach it. Curves: `accuracy_vs_time.png`.")


def _depth(config: Config) -> Optional[int]:
    """The depth of a CIFAR ResNet (the paper's networks), else None: the paper has numbers for those only."""
    return getattr(config.model.settings, "depth", None) if config.model.type == "cifar_resnet" else None


def _table1_paper(config: Config):
    """``paper_of(row)`` for Table 1: a rewind epoch matches the paper's θ_0/25/50/75 of 200 epochs
    at the same fraction of this training's length (in epochs)."""
    from tf_lottery.train import parse_length

    count, unit = parse_length(config.training.length)
    depth, epochs = _depth(config), count if unit == "ep" else None
    return lambda r: paper.table1(depth, r.criterion, r.rewind, r.rewind_epoch, epochs)


def table1(rows, paper_of=None) -> str:
    """Table 1 shape: after-training criterion (x rewind mode) by rewind epoch θ_i, pp vs dense."""
    keys = ("criterion", "rewind") if len(_ordered(rows, "rewind")) > 1 else ("criterion",)
    return _difference_table(rows, keys, "rewind_epoch", lambda epoch: f"θ_{epoch}", paper_of=paper_of)


def table2(rows, paper_of=None) -> str:
    """Table 2 shape: p by criterion at initialization, pp vs dense (the paper's beside, when given)."""
    return _difference_table(rows, ("p",), "criterion", lambda name: name, paper_of=paper_of)


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


def table4(rows, depth: Optional[int] = None) -> str:
    """Table 4 shape: reductions (% less than dense) and speed-ups (x), mean ± std over seeds, the
    accuracy difference with its verdict, and the paper's row for a GraSP ResNet32/56 ticket of
    ``depth`` (FLOPs / memory / CO2 reductions and speed-up)."""
    keys = ["criterion", "p"] + (["rewind", "rewind_epoch"] if rows and rows[0].rewinds else [])
    body = []
    for head, group in _group(rows, *keys).items():
        def col(key, spec="{:.2f}", suffix=""):
            return cell([getattr(r, key) for r in group], spec, suffix=suffix)
        accuracy = col("accuracy_pp", "{:+.2f}")
        summary = paired_accuracy(group)
        if summary.verdict is not None:
            accuracy += f" ({summary.verdict})"
        row = paper.table4(depth, group[0].criterion, group[0].p) if not group[0].rewinds else None
        published = "" if row is None else f"{row[0]:.2f} / {row[1]:.2f} / {row[2]:.2f} / {row[3]:.2f}x"
        body.append([*head, col("flops_reduction_pct"), col("params_reduction_pct"), col("memory_reduction_pct"),
                     col("co2_reduction_pct"), col("training_speedup_x", suffix="x"),
                     col("images_per_second_ratio_x", suffix="x"), col("flops_implied_speedup_x", suffix="x"),
                     accuracy, len(group), published])
    headers = [*keys, "FLOPs ↓ %", "params ↓ %", "memory ↓ %", "CO2 ↓ %", "training speed-up (measured)",
               "images/s ratio (measured)", "FLOPs-implied speed-up", "accuracy (pp)", "seeds",
               "paper: FLOPs / memory / CO2 ↓ %, speed-up"]
    return markdown_table(headers, body, align="l" * len(keys) + "r" * 9 + "l")


def _recipe_flags(first, warmup_epochs: int) -> tuple:
    """``(last-epoch training-accuracy gain, worst validation drop after the warm-up, check)`` of one dense run."""
    gain = curves.last_epoch_gain(first.dense_train_accuracy)
    drop = curves.worst_drop(first.dense_curve, warmup_epochs)
    gap = curves.worst_gap(first.dense_curve, first.dense_train_accuracy, warmup_epochs)
    collapsed = (drop is not None and drop > curves.COLLAPSE_PP) or (gap is not None and gap > curves.GAP_PP)
    problems = ([] if gain is None or gain <= curves.FLAT_PP else ["still rising"]) + (
        ["validation collapse"] if collapsed else [])
    check = "—" if gain is None and drop is None else (", ".join(problems) or "ok")
    return (("—" if gain is None else f"{gain:+.2f}"),
            ("—" if drop is None else f"{drop:.1f}") + ("" if gap is None else f" / {gap:.1f}"), check)


def dense_table(rows, warmup_epochs: int = 0) -> str:
    """The dense runs: test accuracy and training time per seed, and the recipe check: the last
    epoch's training-accuracy gain (flattened at most ``curves.FLAT_PP``), the worst validation
    drop after the warm-up (a collapse beyond ``curves.COLLAPSE_PP``), and the seeds' spread."""
    body = []
    for (seed,), group in _group(rows, "seed").items():
        first = group[0]
        body.append([seed, _percent(first.dense_accuracy), f"{first.dense_train_seconds:.0f}",
                     *_recipe_flags(first, warmup_epochs), first.dense_run_folder or ""])
    accuracies = [None if g[0].dense_accuracy is None else 100 * g[0].dense_accuracy
                  for g in _group(rows, "seed").values()]
    known = [a for a in accuracies if a is not None]
    spread = max(known) - min(known) if len(known) > 1 else None
    band = "" if spread is None else (f"spread {spread:.2f} pp: "
                                      f"{'within' if spread <= curves.BAND_PP else 'outside'} the "
                                      f"{curves.BAND_PP:g} pp band")
    body.append(["mean ± std", cell(accuracies, "{:.2f}"), "", "", "", band,
                 f"{len(accuracies)} seed{'s' if len(accuracies) > 1 else ''}"])
    headers = ["seed", "test accuracy (%)", "training time (s)", "last epoch's training-accuracy gain (pp)",
               "worst validation drop / gap to training after warm-up (pp)", "recipe check", "dense run folder"]
    return markdown_table(headers, body, align="lrrrrll")


_RECIPE_NOTE = (
    "Recipe check (README \"Twin recipes\"): a dense training has flattened when its last epoch adds at most "
    f"{curves.FLAT_PP:g} pp of training accuracy; its validation accuracy has collapsed when an epoch after the "
    f"warm-up falls more than {curves.COLLAPSE_PP:g} pp below the best earlier epoch (drop) or more than "
    f"{curves.GAP_PP:g} pp below that epoch's training accuracy (gap); the seeds agree when their dense test "
    f"accuracies span at most {curves.BAND_PP:g} pp.")


def warmup_epochs(config: Config) -> int:
    """Whole epochs of the warm-up (a warm-up in steps counts as its first epoch)."""
    from tf_lottery.train import parse_length

    count, unit = parse_length(config.training.warmup, allow_zero=True)
    return count if unit == "ep" else int(count > 0)


def write(config: Config, rows: List[SweepRow], folder: str) -> str:
    """Writes report.md and the plots of a sweep into ``folder``; returns the report's text."""
    lottery = rows[0].rewinds
    x_key = "rewind_epoch" if lottery and len(_ordered(rows, "p")) == 1 else "p"
    plots.accuracy_difference(rows, x_key, os.path.join(folder, "accuracy_difference.png"))
    plots.accuracy_vs_flops(rows, os.path.join(folder, "accuracy_vs_flops.png"))
    plots.speedup_vs_flops_implied(rows, os.path.join(folder, "speedup.png"))
    plots.accuracy_vs_time(rows, os.path.join(folder, "accuracy_vs_time.png"))
    seeds = _ordered(rows, "seed")
    depth = _depth(config)
    setup = (f"{config.data.dataset}, {model_label(config)}, {recipe_text(config)}, "
             f"train size {config.data.train_size or 'all'}, "
             f"seeds {', '.join(map(str, seeds))}, {len(rows)} runs")
    energy = "unavailable" if not any(r.co2_reduction_pct is not None for r in rows) else "codecarbon"
    parts = [
        f"# Sweep {os.path.basename(folder)}", "", setup, "",
        "Accuracy differences are ticket minus dense test accuracy in percentage points, mean ± std over "
        "seeds (each seed's ticket against the dense run of the same seed), with the cell's verdict (see "
        "\"Statistics\"); **bold**: the best of its row; \"paper\": the paper's value (CIFAR-10, one run).", "",
        "## Dense runs", "", dense_table(rows, warmup_epochs(config)), "", _RECIPE_NOTE, "",
    ]
    if lottery:
        paper_of = _table1_paper(config)
        keys = ("criterion", "rewind", "rewind_epoch", "p")
        parts += ["## Table 1 shape: after-training criteria by rewind epoch (pp vs dense)", "",
                  table1(rows, paper_of), "",
                  "The paper's column of θ_i is its value at the same fraction of the training (its θ_0, θ_25, "
                  "θ_50, θ_75 of 200 epochs), where the fraction is one of those.", ""]
    else:
        paper_of = lambda r: paper.table2(depth, r.criterion, r.p)  # noqa: E731
        keys = ("criterion", "p")
        parts += ["## Table 2 shape: tickets at initialization (pp vs dense)", "", table2(rows, paper_of), ""]
        if has_cka(rows):
            parts += ["## CKA with the dense network (Table 2 shape)", "", cka_table2(rows), "",
                      _CKA_NOTE.format(along="row"), ""]
    parts += [
        "## Statistics: paired differences per cell", "", statistics_table(rows, keys, paper_of), "",
        f"Verdicts: {verdict_counts(rows, keys)}. {_STATISTICS_NOTE}", "",
        "## Time to the dense network's final accuracy", "", time_to_dense_table(rows, keys), "", _TIME_NOTE, "",
        "![accuracy vs time](accuracy_vs_time.png)", "",
        "## Table 4 shape: efficiency (% less than dense; speed-up in x)", "", table4(rows, depth), "",
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


def _labelled(rows):
    """Rows with their methods' labels; a weights-only row (IMP, no p) shows no criterion (it has none)."""
    import dataclasses

    return [dataclasses.replace(r, method=METHOD_LABELS.get(r.method, r.method),
                                criterion=r.criterion if r.p is not None else None) for r in rows]


def _structured(rows) -> list:
    """The rows of the Table 3 shape (every method but IMP, which has no p), labelled, in method order."""
    order = [m for m in METHOD_LABELS if m != "imp"]
    return _labelled(sorted((r for r in rows if r.method in order), key=lambda r: order.index(r.method)))


def table3(rows, paper_of=None) -> str:
    """Table 3 shape: filter and layer tickets (rows) by criterion (columns), pp vs dense, one p
    (``paper_of(row)`` of a labelled row: the paper's value beside each column)."""
    return _difference_table(_structured(rows), ("method",), "criterion", lambda name: name, best_of="column",
                             paper_of=paper_of)


def cka_table3(rows) -> str:
    """CKA with dense in the Table 3 shape: methods by criterion, linear CKA of the penultimate features."""
    return _difference_table(_structured(rows), ("method",), "criterion", lambda name: name, best_of="column",
                             value="cka_linear", spec="{:.3f}")


def _batch_label(batch) -> str:
    return "" if batch is None else f" (batch {batch})"


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
                     col("ticket_latency_s", "{:.1f}", 1000.0) + _batch_label(batch),
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
                             "{:.1f}") + _batch_label(dense.latency_batch_size), "", len(firsts)])
    headers = ["method", "criterion", "p", "params", "non-zero weights", "conv filters", "FLOPs (as run)",
               "training time (s)", "training speed-up", "training images/s", "latency (ms)", "accuracy (pp)",
               "seeds"]
    return markdown_table(headers, body, align="lllrrrrrrrrrr")


def write_compare(config: Config, rows: List[SweepRow], folder: str) -> str:
    """Writes report.md of a ``compare`` run into ``folder``; returns its text."""
    plots.accuracy_vs_time(rows, os.path.join(folder, "accuracy_vs_time.png"))
    seeds = _ordered(rows, "seed")
    method = config.method
    depth = _depth(config)

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
        "## Dense runs", "", dense_table(rows, warmup_epochs(config)), "", _RECIPE_NOTE, "",
    ]
    for p in [p for p in _ordered(rows, "p") if p is not None]:
        at_p = [r for r in rows if r.p == p]
        parts += [f"## Table 3 shape: filter vs layer tickets at initialization, p = {p} (pp vs dense)", "",
                  table3(at_p, paper_of), ""]
        if has_cka(at_p):
            parts += [f"CKA with the dense network, p = {p}:", "", cka_table3(at_p), "",
                      _CKA_NOTE.format(along="column"), ""]
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
        "## Statistics: paired differences per cell", "", statistics_table(labelled, keys, paper_of), "",
        f"Verdicts: {verdict_counts(labelled, keys)}. {_STATISTICS_NOTE}", "",
        "## Time to the dense network's final accuracy", "", time_to_dense_table(labelled, keys), "", _TIME_NOTE, "",
        "![accuracy vs time](accuracy_vs_time.png)", "",
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


def recipe_text(config: Config) -> str:
    """``6ep at learning rate 0.05 (warm-up 1ep, drops at 4ep)``."""
    training = config.training
    warmup = "" if training.warmup == "0ep" else f"warm-up {training.warmup}, "
    return (f"{training.length} at learning rate {training.learning_rate:g} ({warmup}drops at "
            f"{', '.join(training.lr_drops) or 'none'})")


def model_label(config: Config) -> str:
    """``ResNet-32`` for a CIFAR ResNet, else the model type."""
    depth = getattr(config.model.settings, "depth", None)
    return f"ResNet-{depth}" if config.model.type == "cifar_resnet" and depth else config.model.type
