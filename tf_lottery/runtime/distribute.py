"""Where training runs: one ``tf.distribute`` strategy per process, and the precision it computes in.

This module is the entry point (:func:`activate`) and the public face of four modules, one concern each:

* :mod:`~tf_lottery.runtime.strategies`: the strategies, the CPU split, ``--devices`` and ``TF_CONFIG``;
* :mod:`~tf_lottery.runtime.precision`: ``--precision`` and the hardware detection behind ``auto``;
* :mod:`~tf_lottery.runtime.execution`: the process's execution context (:func:`current`, :func:`scope`);
* :mod:`~tf_lottery.runtime.workers`: what several workers of one run share and keep apart.

Every name of 0.9 stays importable from here (``tl.distribute.current()``, ``tl.distribute.precision_policy``).

``--strategy`` picks it:

* ``default``: TensorFlow's default strategy (one device; what every run did before 0.6);
* ``mirrored``: ``tf.distribute.MirroredStrategy`` over ``--devices`` (default: every GPU,
  else the logical CPUs that ``--cpu_devices`` made);
* ``multi_worker``: ``tf.distribute.MultiWorkerMirroredStrategy``; the cluster comes from
  ``TF_CONFIG``, as TensorFlow documents it;
* ``tpu``: ``tf.distribute.TPUStrategy`` on ``--tpu`` (a name or ``grpc://`` address; empty: the
  local TPU).

Models, optimizers, surgery rebuilds and weight loading all happen inside the strategy's
scope: the command line enters it once around the whole experiment (:func:`activate`).
``--batch_size`` is the batch of one replica; the global batch is ``batch_size x replicas``
and the learning rate follows by ``--lr_scaling`` (``linear``: times the replicas, Goyal et
al. 2017, "Accurate, Large Minibatch SGD", Sec. 2.1; ``none``: unchanged). Batch
normalization keeps per-replica statistics (Keras' default), so a replica normalizes over
the same ``batch_size`` images as one device does; ``--sync_batchnorm`` makes it normalize
over the global batch instead (then several replicas train what one device trains on the
global batch, up to the order of float sums).

Example:
    >>> execution = activate(config.runtime)
    >>> with scope():
    ...     model = tl.models.cifar_resnet(20)
"""

from __future__ import annotations

import keras

from tf_lottery.runtime import keras_patches
from tf_lottery.runtime.execution import (  # noqa: F401  (the public face)
    CONTEXT, Execution, ExecutionContext, apply_to_model, current, deactivate, scope,
)
from tf_lottery.runtime.precision import (  # noqa: F401
    BFLOAT16_CPU_FLAGS, POLICIES, PRECISIONS, cpu_flags, float32_compute, has_bfloat16, precision_policy,
)
from tf_lottery.runtime.strategies import LR_SCALINGS, STRATEGIES, XLA_MODES, make_strategy, split_cpu  # noqa: F401
from tf_lottery.runtime.workers import (  # noqa: F401
    WORKERS_FOLDER, gather_from_workers, prepare_fit, private_runs_dir, worker_of,
)


def activate(runtime) -> Execution:
    """Creates the strategy of a :class:`~tf_lottery.config.RuntimeConfig`, sets the dtype
    policy and makes them current for this process (call once, before any model is built).

    Returns:
        The :class:`Execution`; enter :func:`scope` around the experiment.

    Raises:
        ValueError, RuntimeError: see :func:`split_cpu` and :func:`make_strategy`.
    """
    if runtime.cpu_devices:
        split_cpu(runtime.cpu_devices)
    strategy = make_strategy(runtime.strategy, runtime.devices, runtime.tpu)
    worker, workers = worker_of(strategy)
    if runtime.strategy == "multi_worker":
        keras_patches.patch_multi_worker_metrics()
    precision = precision_policy(runtime.precision, runtime.strategy, runtime.mixed_precision)
    keras.mixed_precision.set_global_policy(precision)
    return CONTEXT.set(Execution(runtime.strategy, strategy, runtime.lr_scaling, precision, worker, workers,
                                 runtime.sync_batchnorm, runtime.xla))


#: Kept for 0.7 callers: see :func:`tf_lottery.runtime.keras_patches.patch_multi_worker_metrics`.
patch_keras_multi_worker = keras_patches.patch_multi_worker_metrics


__all__ = ["BFLOAT16_CPU_FLAGS", "CONTEXT", "Execution", "ExecutionContext", "LR_SCALINGS", "POLICIES", "PRECISIONS",
           "STRATEGIES", "WORKERS_FOLDER", "XLA_MODES", "activate", "apply_to_model", "cpu_flags", "current",
           "deactivate", "float32_compute", "gather_from_workers", "has_bfloat16", "make_strategy",
           "patch_keras_multi_worker", "precision_policy", "prepare_fit", "private_runs_dir", "scope", "split_cpu",
           "worker_of"]
