"""The flat rows a sweep reports: one :class:`~tf_lottery.results.records.SweepRow` per point.

A row joins a point's config, its run record and its learning curves (read from the run
folders' history CSVs), so it is made here, where the run folders are, and the records stay
pure.

Example:
    >>> row = sweep_row(point_config, run_record, rewinds=False)
    >>> row.p == len(run_record.ticket.removed)
    True
"""

from __future__ import annotations

from typing import Optional

from tf_lottery.core.io import run_path

from tf_lottery.results import curves
from tf_lottery.results.records import ModelRecord, RunRecord, SweepRow
from tf_lottery.tickets import METHODS


def blocks_removed(point, result: RunRecord) -> Optional[int]:
    """The p of a ticket run: blocks removed; for a filter ticket matched to a layer ticket, that
    ticket's p; None for a weight ticket or an unmatched filter count."""
    unit = METHODS.get(point.method.type).unit
    if unit == "blocks":
        return len(result.ticket.removed or [])
    return point.method.num_blocks if unit == "filters" and point.method.match == "layers" else None


def _penultimate_cka(record: "ModelRecord", form: str) -> Optional[float]:
    """The ticket's CKA with dense on the penultimate features, when ``cka`` was measured."""
    return record.evals.get("cka", {}).get("views", {}).get("penultimate", {}).get(form)


def sweep_row(point, result: RunRecord, rewinds: bool) -> SweepRow:
    """The row of one sweep point from its config and its run record.

    ``p`` is the number of blocks removed; for a filter ticket matched to a layer ticket,
    that ticket's p; None for a weight ticket.

    Args:
        point: The point's :class:`~tf_lottery.config.Config`.
        result: Its run record.
        rewinds: Whether the point's experiment rewinds (then ``rewind``, ``rewind_epoch`` and
            ``rewind_step`` are set).

    Returns:
        The :class:`~tf_lottery.results.records.SweepRow`.
    """
    c = result.comparison
    batch = c.latency_batch_size
    method = point.method.type
    runs_dir = point.runtime.runs_dir
    dense_curve = curves.read_curve(run_path(runs_dir, result.dense_run_folder), "dense", result.dense.training.timing)
    ticket_curve = curves.read_curve(run_path(runs_dir, result.run_folder), "ticket", result.ticket.training.timing)
    dense_final = curves.final_accuracy(dense_curve)
    dense_history = curves.read_history(run_path(runs_dir, result.dense_run_folder), "dense")
    return SweepRow(
        seed=point.seed, criterion=point.method.criterion, p=blocks_removed(point, result),
        experiment=point.experiment,
        rewind=point.method.rewind if rewinds else None,
        rewind_epoch=point.method.rewind_epoch if rewinds else None,
        rewind_step=point.method.rewind_step if rewinds else None,
        dense_accuracy=result.dense.accuracy, ticket_accuracy=result.ticket.accuracy,
        dense_flops=result.dense.flops, ticket_flops=result.ticket.flops,
        dense_train_seconds=result.dense.train_seconds, ticket_train_seconds=result.ticket.train_seconds,
        accuracy_pp=c.accuracy_pp, flops_reduction_pct=c.flops_reduction_pct,
        params_reduction_pct=c.params_reduction_pct, memory_reduction_pct=c.memory_reduction_pct,
        co2_reduction_pct=c.co2_reduction_pct, energy_reduction_pct=c.energy_reduction_pct,
        training_speedup_x=c.training_speedup_x, images_per_second_ratio_x=c.images_per_second_ratio_x,
        flops_implied_speedup_x=c.flops_implied_speedup_x,
        run_folder=run_path(runs_dir, result.run_folder), dense_run_folder=run_path(runs_dir, result.dense_run_folder),
        method=method, dense_params=result.dense.params, ticket_params=result.ticket.params,
        ticket_nonzero_params=result.ticket.cost("nonzero_params"),
        dense_filters=result.dense.cost("filters"), ticket_filters=result.ticket.cost("filters"),
        dense_images_per_second=result.dense.images_per_second,
        ticket_images_per_second=result.ticket.images_per_second, latency_batch_size=batch,
        dense_latency_s=None if batch is None else result.dense.latency[str(batch)]["median_s"],
        ticket_latency_s=None if batch is None else result.ticket.latency[str(batch)]["median_s"],
        cka_linear=_penultimate_cka(result.ticket, "linear"),
        cka_debiased=_penultimate_cka(result.ticket, "debiased"),
        dense_curve=dense_curve, ticket_curve=ticket_curve,
        dense_seconds_to_final=curves.seconds_to_reach(dense_curve, dense_final),
        ticket_seconds_to_dense=curves.seconds_to_reach(ticket_curve, dense_final),
        dense_train_accuracy=dense_history.get("accuracy") or None,
        dense_perplexity=result.dense.evals.get("clean", {}).get("perplexity"),
        ticket_perplexity=result.ticket.evals.get("clean", {}).get("perplexity"),
        length=point.training.length,
    )
