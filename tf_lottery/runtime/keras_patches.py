"""Every patch of Keras' private internals, in one place, for the Keras version it was written for.

Keras 3.15 cannot train under ``MultiWorkerMirroredStrategy`` as released
(keras-team/keras#20585, tensorflow/tensorflow#72388), and its symbolic build opens an
iterator of its own on the dataset. Two patches fix that for tf_lottery's runs:

1. :func:`patch_multi_worker_metrics`: a scalar per-replica metric is averaged over the
   replicas (``axis=None``) instead of along an axis it does not have
   (``keras.src.backend.tensorflow.trainer.reduce_per_replica``); other values go through
   Keras as before.
2. :func:`build_from_spec`: a model builds its optimizer and metrics from the dataset's
   element spec (``Model._symbolic_build``) instead of from a real batch, so ``fit`` needs no
   cross-worker reduction of a batch and the training order stays the one of one device.

Both use names Keras does not promise to keep. :data:`WRITTEN_FOR` is the Keras release they
were written and tested against; a test fails when the installed Keras differs, so a Keras
upgrade re-checks them rather than breaking multi-worker runs silently.

Example:
    >>> patch_multi_worker_metrics()   # idempotent
"""

from __future__ import annotations

import keras

#: The Keras release these patches were written for (tests/runtime/test_keras_patches.py checks it).
WRITTEN_FOR = "3.15.1"

_patched = {"multi_worker_metrics": False}


def patch_multi_worker_metrics() -> None:
    """Lets Keras 3 ``fit`` and ``evaluate`` reduce metrics under ``MultiWorkerMirroredStrategy``.

    A scalar per-replica value is averaged over the replicas (``axis=None``) instead of along an
    axis it does not have; other values go through Keras as before. Idempotent.
    """
    if _patched["multi_worker_metrics"]:
        return
    from keras.src.backend.tensorflow import trainer as tf_trainer  # private: only here

    keras_reduce = tf_trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction="auto"):
        if reduction in ("auto", "mean") and tf_trainer._collective_all_reduce_multi_worker(strategy):
            return keras.tree.map_structure(
                lambda v: strategy.reduce("MEAN", v, axis=0 if v.shape.rank else None), values)
        return keras_reduce(values, strategy, reduction)

    tf_trainer.reduce_per_replica = reduce_per_replica
    _patched["multi_worker_metrics"] = True


def build_from_spec(model: keras.Model, spec) -> None:
    """Makes ``model`` build its optimizer and metrics from ``spec`` (``(input spec, label spec)``)
    inside its strategy's scope, instead of from a batch it would draw from the dataset."""

    def build(iterator=None, data_batch=None):
        with model.distribute_strategy.scope():
            model._symbolic_build(data_batch=spec)

    model._maybe_symbolic_build = build


def is_patched() -> bool:
    """Whether :func:`patch_multi_worker_metrics` has run in this process."""
    return _patched["multi_worker_metrics"]
