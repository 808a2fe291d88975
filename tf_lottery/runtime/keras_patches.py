"""Every patch of Keras' private internals, in one place, for the Keras version it was written for.

Keras 3.15 cannot train under ``MultiWorkerMirroredStrategy`` as released
(keras-team/keras#20585, tensorflow/tensorflow#72388), and its symbolic build opens an
iterator of its own on the dataset. Two patches fix that for tf_lottery's runs, and a third
makes training faster:

1. :func:`patch_multi_worker_metrics`: a scalar per-replica metric is averaged over the
   replicas (``axis=None``) instead of along an axis it does not have
   (``keras.src.backend.tensorflow.trainer.reduce_per_replica``); other values go through
   Keras as before.
2. :func:`build_from_spec`: a model builds its optimizer and metrics from the dataset's
   element spec (``Model._symbolic_build``) instead of from a real batch, so ``fit`` needs no
   cross-worker reduction of a batch and the training order stays the one of one device.

3. :func:`fused_batch_norm`: while a training step is traced, ``BatchNormalization`` in training
   mode computes with TensorFlow's fused kernel (``FusedBatchNormV3`` and its fused gradient,
   oneDNN's on x86) instead of Keras 3's separate moments, normalization and their gradients.
   Same formula, same moving-average update (Keras' biased batch variance); only the order of
   float sums differs. Measured on a 2-core CPU: batch norm was 27 % of a float32 ResNet-20
   step's kernel time (10 % fused), and ``tl.train.fit`` trains ResNet-20 / ResNet-56 1.29x / 1.69x
   faster than a plain ``model.fit`` (``scripts/profile_training.py``, ``scripts/benchmark_frameworks.py``).

They use names Keras does not promise to keep. :data:`WRITTEN_FOR` is the Keras release they
were written and tested against; a test fails when the installed Keras differs, so a Keras
upgrade re-checks them rather than breaking multi-worker runs silently.

Example:
    >>> patch_multi_worker_metrics()   # idempotent
"""

from __future__ import annotations

import contextlib
from typing import Iterator

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


#: The smallest epsilon TensorFlow's fused kernel accepts (a smaller one takes Keras' own path).
FUSED_MIN_EPSILON = 1.001e-5
_keras_batch_norm_call = keras.layers.BatchNormalization.call


def _fusable(layer, inputs, training, mask) -> bool:
    """Whether the fused kernel computes exactly what Keras' call would here."""
    return (bool(training) and layer.trainable and mask is None and keras.backend.backend() == "tensorflow"
            and len(inputs.shape) == 4 and layer.axis in (-1, 3) and not getattr(layer, "synchronized", False)
            # renormalization came in Keras 3.13: a layer of an earlier Keras has none (by feature, not version)
            and not getattr(layer, "renorm", False) and layer.epsilon >= FUSED_MIN_EPSILON)


def _fused_call(layer, inputs, training=None, mask=None):
    """``BatchNormalization.call`` through ``tf.compat.v1.nn.fused_batch_norm`` (training mode, NHWC).

    As Keras does, the statistics are computed in float32 (bfloat16 inputs are cast up) and the
    output is cast to the layer's compute dtype; the moving statistics move by ``momentum`` towards
    the batch's mean and biased variance (the kernel returns the unbiased one, n / (n - 1) larger).
    """
    if not _fusable(layer, inputs, training, mask):
        return _keras_batch_norm_call(layer, inputs, training=training, mask=mask)
    import tensorflow as tf

    x = tf.cast(inputs, tf.float32)
    channels = x.shape[-1]
    scale = tf.cast(layer.gamma, tf.float32) if layer.scale else tf.ones((channels,), tf.float32)
    offset = tf.cast(layer.beta, tf.float32) if layer.center else tf.zeros((channels,), tf.float32)
    outputs, mean, unbiased = tf.compat.v1.nn.fused_batch_norm(
        x, scale, offset, epsilon=layer.epsilon, data_format="NHWC", is_training=True)
    count = tf.cast(tf.size(x) // channels, tf.float32)
    variance = unbiased * ((count - 1.0) / count)
    momentum = layer.momentum
    layer.moving_mean.assign(tf.cast(layer.moving_mean, tf.float32) * momentum + mean * (1.0 - momentum))
    layer.moving_variance.assign(tf.cast(layer.moving_variance, tf.float32) * momentum
                                 + variance * (1.0 - momentum))
    return tf.cast(outputs, layer.compute_dtype)


@contextlib.contextmanager
def fused_batch_norm() -> Iterator[None]:
    """Inside the block, ``BatchNormalization`` layers in training mode use TensorFlow's fused kernel
    (see the module docstring); a step traced inside keeps it. Layers in inference mode, with a
    mask, synchronized across replicas, renormalized or not 4-D take Keras' own path.

    Example:
        >>> with fused_batch_norm():
        ...     model.fit(dataset, epochs=1)   # the train function is traced here
    """
    keras.layers.BatchNormalization.call = _fused_call
    try:
        yield
    finally:
        keras.layers.BatchNormalization.call = _keras_batch_norm_call
