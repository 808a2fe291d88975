"""The run table: dense versus ticket, printed at the end of a run and saved as ``summary.md``.
"""

from __future__ import annotations


from tf_lottery.core.io import run_path
from tf_lottery.reports.tables import markdown_table
from tf_lottery.results import curves
from tf_lottery.results.records import RunRecord
from tf_lottery.reports.cells import change_cell, energy_cell, fmt_value, less_cell, percent_cell


def run_table(result: RunRecord, runs_dir=None) -> str:
    """Dense versus ticket as a Markdown table (printed at the end of a run and saved).

    Args:
        result: The run record.
        runs_dir: The runs folder holding the run (the record names its runs relative to it).

    Returns:
        The Markdown table.

    Example:
        >>> print(run_table(RunRecord.from_dict(json.load(open("runs/init_ticket-.../result.json")))))
    """
    if "perplexity" in result.dense.evals.get("clean", {}):
        return language_run_table(result)
    dense, ticket, diff = result.dense, result.ticket, result.comparison
    batch = diff.latency_batch_size
    verdict = "" if diff.accuracy_pp is None else " (one run: no verdict)"

    def latency(side):
        return fmt_value(None if batch is None else 1000 * side.latency[str(batch)]["median_s"], "{:.1f}")

    def count(side, key):
        return fmt_value(side.cost(key), "{:,}")

    sessions = {side: record.training.timing.sessions for side, record in (("dense", dense), ("ticket", ticket))}
    resumed = "".join(f"; {side} resumed, {n} sessions" for side, n in sessions.items() if n > 1)
    memory = [None if s.cost("memory_bytes") is None else s.cost("memory_bytes") / 2**20 for s in (dense, ticket)]
    rows = [
        ["test accuracy (%)", percent_cell(dense.accuracy), percent_cell(ticket.accuracy),
         f"{fmt_value(diff.accuracy_pp, '{:+.2f}')} pp{verdict}"],
        ["blocks", dense.blocks, ticket.blocks, f"-{dense.blocks - ticket.blocks}"],
        ["params", count(dense, "params"), count(ticket, "params"), change_cell(diff.params_reduction_pct)],
        ["non-zero weights", count(dense, "nonzero_params"), count(ticket, "nonzero_params"),
         change_cell(less_cell(dense.cost("nonzero_params"), ticket.cost("nonzero_params")))],
        ["conv filters", count(dense, "filters"), count(ticket, "filters"),
         change_cell(less_cell(dense.cost("filters"), ticket.cost("filters")))],
        ["FLOPs", count(dense, "flops"), count(ticket, "flops"), change_cell(diff.flops_reduction_pct)],
        [f"memory, batch {dense.cost('memory_batch_size')} (MiB)", fmt_value(memory[0], "{:,.1f}"),
         fmt_value(memory[1], "{:,.1f}"), change_cell(diff.memory_reduction_pct)],
        ["latency (not measured: --evals without latency)" if batch is None
         else f"latency, batch {batch} (ms, measured)", latency(dense), latency(ticket), fmt_value(diff.latency_speedup_x, "{:,.2f}x")],
        [f"training time (s, measured{resumed})", f"{dense.train_seconds:.1f}", f"{ticket.train_seconds:.1f}",
         fmt_value(diff.training_speedup_x, "{:,.2f}x speed-up" + (" at the steady pace" if resumed else ""))],
        _time_to_dense_row(result, runs_dir),
        [f"training images/s (measured{', steady epochs' if resumed else ''})", fmt_value(dense.images_per_second, "{:,.0f}"),
         fmt_value(ticket.images_per_second, "{:,.0f}"), fmt_value(diff.images_per_second_ratio_x, "{:,.2f}x")],
        ["training energy (Wh, estimated)" if dense.energy.estimated else "training energy (Wh)",
         energy_cell(dense, "energy_kwh"), energy_cell(ticket, "energy_kwh"), change_cell(diff.energy_reduction_pct)],
        [f"training CO2 (g, {dense.energy.country or '?'} grid)", energy_cell(dense, "co2_kg"), energy_cell(ticket, "co2_kg"),
         change_cell(diff.co2_reduction_pct)],
    ]
    return markdown_table(["", "dense", "ticket", "change"], rows, align="lrrl")


def _time_to_dense_row(result: RunRecord, runs_dir=None) -> list:
    """The run table's row: seconds until the dense network's final validation accuracy is reached
    (dense: its own first epoch there), measured on each training's curve (:mod:`tf_lottery.results.curves`)."""
    dense = curves.read_curve(run_path(runs_dir, result.dense_run_folder), "dense", result.dense.training.timing)
    ticket = curves.read_curve(run_path(runs_dir, result.run_folder), "ticket", result.ticket.training.timing)
    target = curves.final_accuracy(dense)
    if target is None:
        return ["time to the dense final val accuracy (no validation split)", "unavailable", "unavailable", ""]
    reached = curves.seconds_to_reach(ticket, target)
    ratio = None if reached is None else result.dense.train_seconds / reached
    return [f"time to the dense final val accuracy {100 * target:.2f} % (s, measured)",
            fmt_value(curves.seconds_to_reach(dense, target), "{:.1f}"), "never" if reached is None else f"{reached:.1f}",
            "" if ratio is None else f"{ratio:,.2f}x (dense training / ticket's time to it)"]


def language_run_table(result: RunRecord) -> str:
    """A ``--task=causal_lm`` run's table: held-out perplexity first (a ticket wins when its perplexity is
    at most the dense model's), then token accuracy, layers, params, FLOPs per token, tokens/s of the
    forward pass, of training and of generation, training time and energy.

    Example:
        >>> print(language_run_table(RunRecord.from_dict(json.load(open("runs/init_ticket-.../result.json")))))
    """
    dense, ticket, diff = result.dense, result.ticket, result.comparison
    batch = diff.latency_batch_size
    sides = (dense, ticket)
    ppl = [side.evals["clean"].get("perplexity") for side in sides]
    change = None if None in ppl else ppl[1] - ppl[0]
    verdict = "" if change is None else " (one run: no verdict)"

    def value(side, evaluation, key, spec="{:,.0f}", scale=1.0):
        found = side.evals.get(evaluation, {}).get(key)
        return fmt_value(None if found is None else scale * found, spec)

    def ratio(evaluation, key, inverse=False):
        found = [side.evals.get(evaluation, {}).get(key) for side in sides]
        if None in found or not all(found):
            return ""
        return f"{(found[0] / found[1] if inverse else found[1] / found[0]):,.2f}x"

    per_token = dense.evals.get("cost", {}).get("flops_per_token")
    length = None if not per_token else round(dense.cost("flops") / per_token)
    training = [None if s.images_per_second is None or length is None else s.images_per_second * length for s in sides]
    forward = [None if batch is None else s.latency[str(batch)] for s in sides]
    sessions = {side: record.training.timing.sessions for side, record in (("dense", dense), ("ticket", ticket))}
    resumed = "".join(f"; {side} resumed, {n} sessions" for side, n in sessions.items() if n > 1)
    rows = [
        ["held-out perplexity", fmt_value(ppl[0], "{:.3f}"), fmt_value(ppl[1], "{:.3f}"),
         f"{fmt_value(change, '{:+.3f}')}{verdict}"],
        ["next-token accuracy (%)", percent_cell(dense.accuracy), percent_cell(ticket.accuracy),
         f"{fmt_value(diff.accuracy_pp, '{:+.2f}')} pp"],
        ["layers (blocks)", dense.blocks, ticket.blocks, f"-{dense.blocks - ticket.blocks}"],
        ["params", fmt_value(dense.cost("params"), "{:,}"), fmt_value(ticket.cost("params"), "{:,}"),
         change_cell(diff.params_reduction_pct)],
        ["FLOPs per token", value(dense, "cost", "flops_per_token"), value(ticket, "cost", "flops_per_token"),
         change_cell(diff.flops_reduction_pct)],
        ["forward pass (not measured: --evals without latency)" if batch is None else
         f"forward pass, batch {batch} x {length} tokens (tokens/s, measured)",
         fmt_value(None if forward[0] is None else forward[0]["tokens_per_s"], "{:,.0f}"),
         fmt_value(None if forward[1] is None else forward[1]["tokens_per_s"], "{:,.0f}"),
         fmt_value(diff.latency_speedup_x, "{:,.2f}x")],
        ["generation, batch 1 (tokens/s, measured)", value(dense, "generation", "tokens_per_s"),
         value(ticket, "generation", "tokens_per_s"), ratio("generation", "tokens_per_s")],
        ["generation latency per token (ms, measured)", value(dense, "generation", "latency_per_token_s", "{:.2f}", 1e3),
         value(ticket, "generation", "latency_per_token_s", "{:.2f}", 1e3),
         ratio("generation", "latency_per_token_s", inverse=True)],
        [f"training time (s, measured{resumed})", f"{dense.train_seconds:.1f}", f"{ticket.train_seconds:.1f}",
         fmt_value(diff.training_speedup_x, "{:,.2f}x speed-up")],
        ["training tokens/s (measured)", fmt_value(training[0], "{:,.0f}"), fmt_value(training[1], "{:,.0f}"),
         fmt_value(diff.images_per_second_ratio_x, "{:,.2f}x")],
        ["training energy (Wh, estimated)" if dense.energy.estimated else "training energy (Wh)",
         energy_cell(dense, "energy_kwh"), energy_cell(ticket, "energy_kwh"), change_cell(diff.energy_reduction_pct)],
        [f"training CO2 (g, {dense.energy.country or '?'} grid)", energy_cell(dense, "co2_kg"),
         energy_cell(ticket, "co2_kg"), change_cell(diff.co2_reduction_pct)],
    ]
    return markdown_table(["", "dense", "ticket", "change"], rows, align="lrrl")
