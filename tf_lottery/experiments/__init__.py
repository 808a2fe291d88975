"""Experiments, registered in :data:`EXPERIMENTS`; each takes a :class:`~tf_lottery.config.Config`.

An experiment is a function ``(config) -> dict`` that prints its own report and returns
its results. The CLI picks one with ``--experiment=NAME``.
"""

from tf_lottery.experiments.registry import EXPERIMENTS
from tf_lottery.experiments import dense, describe, init_ticket, lottery, sweep  # noqa: F401  (importing registers them)


def get(name: str):
    """Returns the experiment registered as ``name`` (error lists the valid names)."""
    return EXPERIMENTS.get(name)


__all__ = ["EXPERIMENTS", "get"]
