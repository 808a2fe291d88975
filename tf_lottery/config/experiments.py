"""The experiment registry: what ``--experiment`` may name, and what each experiment declares.

It lives in the config package, below the experiments that fill it (each registers itself
when :mod:`tf_lottery.experiments` is imported), so that the config checks experiment names
without importing the experiments. An experiment declares what it is, so no module decides by comparing its name:
its run folder's identity ``scope``, whether a sweep can run it, and whether it rewinds
to a dense epoch (so the shared dense run keeps that epoch's weights).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional

from tf_lottery.core.registry import Registry

#: The experiment registry (``--experiment``), filled when :mod:`tf_lottery.experiments` is imported.
EXPERIMENTS: Registry = Registry("experiment", filled_by="tf_lottery.experiments")


@dataclasses.dataclass(frozen=True)
class Experiment:
    """A registered experiment.

    Attributes:
        name: Registry name (the ``--experiment`` flag's value).
        run: ``(config) -> result``; calling the entry calls it.
        scope: The identity scope of its run folder ("dense", "ticket", "sweep"), or None
            when it writes no run folder.
        sweepable: Whether ``--sweep_experiment`` may name it.
        rewinds: Whether its ticket starts from the dense run's weights after
            ``rewind_epoch`` epochs (the dense run then keeps them).
        takes_from: Whether it reads the run folders ``--from`` names (others refuse the flag).

    Example:
        >>> record = EXPERIMENTS.get("init_ticket")(Config.create(criterion="snip", num_blocks=1))
        >>> EXPERIMENTS.get("sweep").scope
        'sweep'
    """

    name: str
    run: Callable
    scope: Optional[str]
    sweepable: bool = False
    rewinds: bool = False
    takes_from: bool = False

    def __call__(self, config):
        """Runs the experiment on ``config``; returns its record."""
        return self.run(config)


def register(name: str, *, scope: Optional[str], sweepable: bool = False, rewinds: bool = False,
             takes_from: bool = False):
    """Decorator registering ``run`` as an :class:`Experiment`.

    Args:
        name: The registry name (``--experiment``).
        scope: The identity scope of its run folder ("dense", "ticket", "sweep"), or None.
        sweepable: Whether ``--sweep_experiment`` may name it.
        rewinds: Whether its ticket starts from the dense run's weights after ``rewind_epoch`` epochs.
        takes_from: Whether it reads the run folders ``--from`` names.

    Returns:
        The decorator; it registers ``run`` and gives it back.

    Raises:
        ValueError: (from the decorator) for a name registered already.

    Example:
        >>> @register("show_model", scope=None)
        ... def show_model(config):
        ...     print(config.model.type, config.model.settings)
    """
    return EXPERIMENTS.entry(name, lambda run: Experiment(name, run, scope, sweepable, rewinds, takes_from))
