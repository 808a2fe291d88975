"""The execution a process runs under: which strategy, how many replicas and workers, which precision.

It is one explicit object, the :data:`CONTEXT` (an :class:`ExecutionContext`):
:func:`tf_lottery.runtime.distribute.activate` fills it from the config's runtime section,
:func:`deactivate` empties it, :func:`current` reads it and :meth:`ExecutionContext.using` holds
another execution for a block. :func:`apply_to_model` applies what the execution changes in a
freshly built model (synchronized batch norm), to that model only.

Example:
    >>> current().replicas
    1
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Iterator

import keras

from tf_lottery.graph.reader import leaf_layers

@dataclasses.dataclass(frozen=True)
class Execution:
    """The strategy a process trains under, and what follows from it.

    Attributes:
        name: One of :data:`STRATEGIES`.
        strategy: The ``tf.distribute.Strategy``.
        lr_scaling: How the learning rate follows the replicas (:data:`LR_SCALINGS`).
        precision: The Keras dtype policy models are built with ("float32", "mixed_bfloat16",
            "mixed_float16").
        worker: This process's index among the workers (0: the chief).
        workers: How many worker processes train together.
        sync_batchnorm: Batch normalization computes its statistics over the global batch
            (``synchronized=True``) instead of each replica's.
        xla: ``jit_compile`` of ``compile``: "auto" (Keras' choice), "on" or "off".
    """

    name: str = "default"
    strategy: object = None
    lr_scaling: str = "linear"
    precision: str = "float32"
    worker: int = 0
    workers: int = 1
    sync_batchnorm: bool = False
    xla: str = "auto"

    @property
    def jit_compile(self):
        """What ``keras.Model.compile`` takes for :attr:`xla`."""
        return {"auto": "auto", "on": True, "off": False}[self.xla]

    @property
    def replicas(self) -> int:
        """Replicas in sync: the global batch is the per-replica batch times this."""
        return 1 if self.strategy is None else int(self.strategy.num_replicas_in_sync)

    @property
    def is_chief(self) -> bool:
        """Whether this process writes the run files (the only worker, or worker 0)."""
        return self.worker == 0

    def global_recipe(self, recipe):
        """``recipe`` for all replicas at once: the global batch, and the learning rate scaled.

        Example:
            >>> Execution().global_recipe(Recipe(batch_size=128)).batch_size   # one replica
            128
        """
        if self.replicas == 1:
            return recipe
        factor = self.replicas if self.lr_scaling == "linear" else 1
        return dataclasses.replace(recipe, batch_size=recipe.batch_size * self.replicas,
                                   learning_rate=recipe.learning_rate * factor)

    def identity(self) -> dict:
        """What of the execution changes the trained weights, for a run's identity: nothing on
        one replica in float32 (so every earlier run keeps its folder)."""
        found = {}
        if self.replicas > 1:
            found.update(replicas=self.replicas, lr_scaling=self.lr_scaling, sync_batchnorm=self.sync_batchnorm)
        if self.precision != "float32":
            found["precision"] = self.precision
        return found

    def describe(self) -> str:
        """One line for the log."""
        where = f"{self.replicas} replica{'s' if self.replicas > 1 else ''}"
        workers = f", worker {self.worker} of {self.workers}" if self.workers > 1 else ""
        return f"strategy {self.name} ({where}{workers}), {self.precision}"


class ExecutionContext:
    """The execution this process runs under: one replica in float32 until :meth:`set`.

    One instance, :data:`CONTEXT`, is the process's; what reads it (``fit``, model builders,
    run folders) calls :func:`current`. It is plain process state, not thread-local: the
    replica threads of a ``MirroredStrategy`` see the same execution as the main thread.

    Example:
        >>> with CONTEXT.using(Execution(precision="mixed_bfloat16")):
        ...     current().precision
        'mixed_bfloat16'
    """

    def __init__(self):
        self._execution = Execution()

    @property
    def execution(self) -> Execution:
        return self._execution

    def set(self, execution: Execution) -> Execution:
        """Makes ``execution`` current; returns it."""
        self._execution = execution
        return execution

    def reset(self) -> None:
        """Back to one replica in float32."""
        self._execution = Execution()

    @contextlib.contextmanager
    def using(self, execution: Execution) -> Iterator[Execution]:
        """Holds ``execution`` current inside the block, and the previous one after."""
        previous = self._execution
        self._execution = execution
        try:
            yield execution
        finally:
            self._execution = previous


#: The process's execution context.
CONTEXT = ExecutionContext()


def current() -> Execution:
    """The execution this process runs under (one replica, float32, until :func:`activate`)."""
    return CONTEXT.execution


@contextlib.contextmanager
def scope() -> Iterator[Execution]:
    """The current strategy's scope (nothing to enter for the default strategy)."""
    execution = current()
    if execution.strategy is None:
        yield execution
        return
    with execution.strategy.scope():
        yield execution


def deactivate() -> None:
    """Back to one replica in float32 (tests, and a process that runs several configs)."""
    keras.mixed_precision.set_global_policy("float32")
    CONTEXT.reset()


def apply_to_model(model: keras.Model) -> keras.Model:
    """What the execution changes in a freshly built model: under ``--sync_batchnorm`` with
    several replicas, every batch normalization layer synchronizes its statistics (the setting
    is in the layers' configs, so surgery's rebuilds keep it). Returns ``model``."""
    execution = current()
    if execution.sync_batchnorm and execution.replicas > 1:
        for layer in leaf_layers(model):
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.synchronized = True
    return model
