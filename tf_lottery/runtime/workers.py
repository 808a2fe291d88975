"""Several workers of a multi-worker cluster training one run.

Only the chief writes the run's files. Another worker runs the same stages in a private folder,
``<runs_dir>/.workers/<index>``, that no other process touches: every ``fit``, ``evaluate`` and
model save is a collective all workers must join (TensorFlow's multi-worker guide has non-chief
workers save to scratch folders for the same reason), and it publishes nothing to
``--serving_dir``. On resume the workers agree on the newest epoch all of them saved
(:func:`gather_from_workers`).

Keras 3.15 cannot train under ``MultiWorkerMirroredStrategy`` as released
(keras-team/keras#20585, tensorflow/tensorflow#72388): ``fit`` first reduces an input batch
across workers in eager mode, which the collective ops refuse, and then reduces every scalar
metric along ``axis=0``. :func:`prepare_fit` and the metric patch fix both, for this process, at
the two places they happen (:mod:`tf_lottery.runtime.keras_patches`).

Example:
    >>> private_runs_dir("runs")   # the chief
    'runs'
"""

from __future__ import annotations

import os
from typing import Optional

import keras

from tf_lottery.runtime import keras_patches
from tf_lottery.runtime.execution import Execution, current

WORKERS_FOLDER = ".workers"


def worker_of(strategy) -> tuple:
    """``(index, count)`` of this process among the workers (chief first)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    spec = resolver.cluster_spec().as_dict() if resolver is not None else {}
    if not spec or resolver.task_type is None:
        return 0, 1
    order = [(kind, i) for kind in ("chief", "worker") for i in range(len(spec.get(kind, [])))]
    return order.index((resolver.task_type, int(resolver.task_id))), len(order)


def private_runs_dir(runs_dir: str, execution: Optional[Execution] = None) -> str:
    """Where a worker writes: ``runs_dir`` for the chief, ``runs_dir/.workers/<index>`` for another."""
    execution = execution or current()
    return runs_dir if execution.is_chief else os.path.join(runs_dir, WORKERS_FOLDER, str(execution.worker))


def prepare_fit(model: keras.Model) -> None:
    """Under any strategy but the default, before ``fit`` or ``evaluate`` (:func:`tf_lottery.training.compile_model`
    calls it): Keras will build the optimizer and metrics from the shapes of the model's input
    and of integer labels, in place of its build from a real batch. That build opens an
    iterator of its own on the dataset, so a seeded ``shuffle(reshuffle_each_iteration=True)``
    would give training the order of its second iterator (another order than on one device),
    and under ``multi_worker`` it reduces the batch across workers, which fails (see the
    module docstring)."""
    if current().strategy is None or current().name == "default":
        return
    import tensorflow as tf

    spec = (tf.TensorSpec((None, *model.inputs[0].shape[1:]), model.inputs[0].dtype), tf.TensorSpec((None,), tf.int64))

    keras_patches.build_from_spec(model, spec)


def gather_from_workers(value: int) -> list:
    """Every worker's ``value``, in worker order (one process: ``[value]``). All workers must call
    it together: a resumed multi-worker run uses it to agree on the epoch it starts from."""
    execution = current()
    if execution.workers == 1:
        return [int(value)]
    import tensorflow as tf

    strategy = execution.strategy

    @tf.function
    def gather():
        def local():
            return tf.distribute.get_replica_context().all_gather(tf.constant([value], tf.int64), axis=0)

        return strategy.experimental_local_results(strategy.run(local))[0]

    return [int(v) for v in gather().numpy()]
