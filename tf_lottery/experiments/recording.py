"""Recording stage: the ticket measured and compared with its dense run, written as ``result.json``
with its summary, curves and export; the manifest records which ``dense.json`` the record was made from.

Example:
    >>> record = record_run(config, run, data, ticket, trained, scoring, dense_record, dense_run)
"""

from __future__ import annotations

import os
from typing import Optional

from tf_lottery import evals, export, reports, training
from tf_lottery.config import Config
from tf_lottery.core import manifest
from tf_lottery.core.log import log
from tf_lottery.experiments.fitting import restore_history, trained_dense
from tf_lottery.experiments.measuring import measure
from tf_lottery.experiments.one_run import spread_note
from tf_lottery.experiments.publishing import publish, publish_transformers, save_export, ticket_metadata
from tf_lottery.experiments.runs import RunFolder
from tf_lottery.reports import plots
from tf_lottery.results import curves
from tf_lottery.results.records import Comparison, ModelRecord, Rewind, RunRecord, ScoringRecord, TrainingRecord


def theta_zero() -> str:
    """The file of a dense run's θ0 weights."""
    return "theta_0.weights.h5"


def dense_input(dense_folder: Optional[str]) -> dict:
    """What a ticket's record was made from in its dense run: ``dense.json``'s digest (sealed in the ticket's manifest)."""
    file = os.path.join(dense_folder, "dense.json") if dense_folder else None
    return {"dense_json_sha256": manifest.file_digest(file)} if file and os.path.exists(file) else {}


def write_summary(config: Config, run: RunFolder, record: RunRecord) -> str:
    """Writes ``summary.md`` (the run table under a title) unless it already holds just that; returns the table."""
    table = reports.run_table(record, config.runtime.runs_dir)
    removed = record.ticket.removed or []
    what = (f"Removed: {', '.join(removed)}.\n\n" if removed and len(removed) <= 32 else
            f"Removed: {len(removed)} ({', '.join(removed[:8])}, ...; all in scores.json).\n\n" if removed else "")
    text = f"# {config.experiment} {run.digest}\n\nPrecision: {config.precision}.\n\n{what}{table}"
    try:
        with open(run.file("summary.md"), encoding="utf-8") as handle:
            current = handle.read()
    except (OSError, UnicodeDecodeError):
        current = None
    if current != text:
        run.write_text("summary.md", text)
    return table


def record_run(config: Config, run: RunFolder, data, ticket, trained: TrainingRecord, scoring: ScoringRecord,
               dense: ModelRecord, dense_run: RunFolder, rewind: Optional[Rewind] = None) -> RunRecord:
    """Measures the trained ticket, compares it with the dense record and writes the run record.

    Writes curves.png, result.json, summary.md and (``--export``) the ticket's export.

    Args:
        ticket: The trained ticket.
        trained: Its training record (from :func:`train_or_load`).
        scoring: The scoring record (from :func:`make_ticket`).
        dense: The measured dense record (``dense.json`` of the dense run).
        dense_run: The dense run's folder.
        rewind: For ``lottery``: how the ticket started.

    Returns:
        The :class:`~tf_lottery.results.records.RunRecord` written to result.json.
    """
    reference = trained_dense(config, data, dense_run) if evals.needs_reference(config.evaluation) else None
    measured = measure(config, run, "ticket", ticket, data, trained, scoring.ticket.removed, reference)
    restore_history(dense_run, "dense", dense.training)
    restore_history(run, "ticket", measured.training)
    timed = {"dense": curves.read_curve(dense_run.path, "dense", dense.training.timing),
             "ticket": curves.read_curve(run.path, "ticket", measured.training.timing)}
    plots.learning_curves({"dense": training.read_history(dense_run.file("history_dense.csv")),
                           "ticket": training.read_history(run.file("history_ticket.csv"))}, run.file("curves.png"),
                          timed=timed)
    exports = None
    if config.runtime.export:
        if not export.is_complete(run.file("export/ticket")):
            meta = ticket_metadata(config, run, scoring, measured.accuracy, rewind)
            save_export(config, ticket, run.file("export/ticket"), meta, data)
            publish(config, ticket.name, run.file("export/ticket"), run)
            publish_transformers(config, ticket, run, meta)
        exports = {"dense": dense_run.file("export/dense"), "ticket": run.file("export/ticket")}
    result = RunRecord(
        config_hash=run.digest, run_folder=run.path, dense_run_folder=dense_run.path,
        data={"train": data.size("train"), "val": data.size("val"), "test": data.size("test"),
              "input_shape": list(data.input_shape)},
        scoring=scoring, dense=dense, ticket=measured, comparison=Comparison.between(dense, measured),
        rewind=rewind, exports=exports,
    )
    table = write_summary(config, run, result)
    run.write_json("result.json", result.to_dict())
    run.seal(extra={"made_from": dense_input(dense_run.path)})
    log(f"done: {run.path}")
    print(table)
    if config.data.task == "classify":
        print(spread_note(config, result.comparison.accuracy_pp))
    return result
