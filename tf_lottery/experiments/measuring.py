"""Measuring stage: the configured evaluations of a trained model, each cached in the run folder.

Example:
    >>> record = measure(config, run, "ticket", ticket, data, trained)
"""

from __future__ import annotations

from tf_lottery import evals, surgery
from tf_lottery.config import Config
from tf_lottery.core.log import log
from tf_lottery.experiments.runs import RunFolder
from tf_lottery.results.records import ModelRecord, TrainingRecord


def measure(config: Config, run: RunFolder, name: str, model, data, trained: TrainingRecord,
            removed=None, reference=None) -> ModelRecord:
    """Runs the configured evaluations on a trained model (each cached in ``run``) into its record.

    Args:
        reference: The trained dense network, for pairwise evaluations of a ticket (``cka``).
    """
    results = evals.run_cached(model, data, config.evaluation, run, name, log, reference=reference)
    return ModelRecord(model.name, len(surgery.blocks(surgery.families.block_model(model))), trained, results,
                       removed)


def has_evals(record: ModelRecord, config: Config, side: str) -> bool:
    """Whether ``record`` (of ``side``: "dense" or "ticket") holds every evaluation ``config`` asks for."""
    return set(evals.wanted(config.evaluation, side)) <= set(record.evals)
