"""Experiments, registered in :data:`EXPERIMENTS`; each takes a :class:`~tf_lottery.config.Config`.

An experiment is an :class:`~tf_lottery.config.experiments.Experiment`: a function
``(config) -> record`` that prints its own report, with what it is declared beside it
(its run folder's identity scope, whether a sweep can run it, whether it rewinds).
The CLI picks one with ``--experiment=NAME``.
"""

import importlib

from tf_lottery.config.experiments import EXPERIMENTS, Experiment, register
from tf_lottery.experiments import (  # noqa: F401,E402  (registers them; the stage modules come with them)
    compare, dense, describe, export, imp, init_ticket, lottery, plan, robustness, sweep,
)


def get(name: str) -> Experiment:
    """Returns the experiment registered as ``name``.

    Args:
        name: An experiment's name (``EXPERIMENTS.names()``, the values of ``--experiment``).

    Returns:
        Its :class:`~tf_lottery.config.experiments.Experiment`: call it with a config.

    Raises:
        UnknownNameError: for a name that is not registered (listing the valid names).

    Example:
        >>> out = get("sweep")(Config.create(experiment="sweep", sweep_criteria=("snip", "grasp")))
        >>> out.rows[0].accuracy_pp
    """
    return EXPERIMENTS.get(name)


def __getattr__(name: str):
    # ``tl.experiments.stages``, split in 0.10 (see its docstring): imported, and so warned about, only when asked for.
    if name == "stages":
        return importlib.import_module("tf_lottery.experiments.stages")
    raise AttributeError(f"module 'tf_lottery.experiments' has no attribute {name!r}")


__all__ = ["EXPERIMENTS", "Experiment", "get", "register"]
