"""The three runtime patches of Keras' trainer and batch norm, for tf_lottery's training.

Keras 3.15 cannot train under ``MultiWorkerMirroredStrategy`` as released
(keras-team/keras#20585, tensorflow/tensorflow#72388), and its symbolic build opens an
iterator of its own on the dataset. Two patches fix that for tf_lottery's runs, and a third
makes training faster:

1. :func:`patch_multi_worker_metrics`: a scalar per-replica metric is averaged over the
   replicas (``axis=None``) instead of along an axis it does not have (Keras' TensorFlow
   trainer's ``reduce_per_replica``); other values go through Keras as before.
2. :func:`build_from_spec`: a model builds its optimizer and metrics from the dataset's
   element spec instead of from a real batch, so ``fit`` needs no cross-worker reduction of a
   batch and the training order stays the one of one device. Only that model is changed.

3. :func:`fused_batch_norm`: while a training step of *one model* is traced, its
   ``BatchNormalization`` layers in training mode compute with TensorFlow's fused kernel
   (``FusedBatchNormV3`` and its fused gradient, oneDNN's on x86) instead of Keras 3's separate
   moments, normalization and their gradients. Same formula, same moving-average update (Keras'
   biased batch variance); only the order of float sums differs. The kernel is set on that model's
   layers (an instance attribute), never on the class, so another model, trained by another thread
   at the same time, keeps Keras' own path. Measured on a 2-core CPU: batch norm was 27 % of a
   float32 ResNet-20 step's kernel time (10 % fused), and ``tl.train.fit`` trains ResNet-20 /
   ResNet-56 1.29x / 1.69x faster than a plain ``model.fit`` (``scripts/profile_training.py``,
   ``scripts/benchmark_frameworks.py``).

Every private Keras name they touch is read through :mod:`tf_lottery.core.keras_internals`, which
fails with one line naming the missing feature when a Keras release renames it; the features the
patches test for (renormalization, synchronized batch norm) are detected on the layer, not by version.

Example:
    >>> patch_multi_worker_metrics()   # idempotent
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import keras

from tf_lottery.core import keras_internals

#: The newest Keras release the patches were checked against (with the multi-worker tests); an older or newer
#: Keras in the supported range works as long as the features :mod:`tf_lottery.core.keras_internals` reads exist.
CHECKED_AGAINST = "3.15.1"
WRITTEN_FOR = CHECKED_AGAINST  # the 0.9 name

_patched = {"multi_worker_metrics": False}


def patch_multi_worker_metrics() -> None:
    """Lets Keras 3 ``fit`` and ``evaluate`` reduce metrics under ``MultiWorkerMirroredStrategy``.

    A scalar per-replica value is averaged over the replicas (``axis=None``) instead of along an
    axis it does not have; other values go through Keras as before. Idempotent.

    Raises:
        KerasInternalsError: when the installed Keras' trainer lacks what the patch wraps.

    Example:
        >>> patch_multi_worker_metrics()
        >>> is_patched()
        True
    """
    if _patched["multi_worker_metrics"]:
        return
    trainer = keras_internals.tensorflow_trainer_module()
    keras_reduce = trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction="auto"):
        if reduction in ("auto", "mean") and keras_internals.is_multi_worker_collective(strategy):
            return keras.tree.map_structure(
                lambda v: strategy.reduce("MEAN", v, axis=0 if v.shape.rank else None), values)
        return keras_reduce(values, strategy, reduction)

    trainer.reduce_per_replica = reduce_per_replica
    _patched["multi_worker_metrics"] = True


def build_from_spec(model: keras.Model, spec) -> None:
    """Makes ``model`` build its optimizer and metrics from ``spec`` (``(input spec, label spec)``)
    inside its strategy's scope, instead of from a batch it would draw from the dataset.

    Args:
        model: a compiled model (only this model is changed).
        spec: the dataset's element spec.

    Raises:
        KerasInternalsError: when the installed Keras has no symbolic build.

    Example:
        >>> build_from_spec(model, dataset.element_spec)
    """
    keras_internals.build_model_from_spec(model, spec)


def is_patched() -> bool:
    """Whether :func:`patch_multi_worker_metrics` has run in this process.

    Returns:
        True once the metric patch is in place.

    Example:
        >>> is_patched()
        False
    """
    return _patched["multi_worker_metrics"]


#: The smallest epsilon TensorFlow's fused kernel accepts (a smaller one takes Keras' own path).
FUSED_MIN_EPSILON = 1.001e-5


def _fusable(layer, inputs, training, mask) -> bool:
    """Whether the fused kernel computes exactly what Keras' call would here."""
    return (bool(training) and layer.trainable and mask is None and keras.backend.backend() == "tensorflow"
            and len(inputs.shape) == 4 and layer.axis in (-1, 3) and not getattr(layer, "synchronized", False)
            # renormalization came in Keras 3.13: a layer of an earlier Keras has none (by feature, not version)
            and not getattr(layer, "renorm", False) and layer.epsilon >= FUSED_MIN_EPSILON)


def _fused_call(layer, keras_call, inputs, training=None, mask=None):
    """``BatchNormalization.call`` through ``tf.compat.v1.nn.fused_batch_norm`` (training mode, NHWC).

    As Keras does, the statistics are computed in float32 (bfloat16 inputs are cast up) and the
    output is cast to the layer's compute dtype; the moving statistics move by ``momentum`` towards
    the batch's mean and biased variance (the kernel returns the unbiased one, n / (n - 1) larger).
    """
    if not _fusable(layer, inputs, training, mask):
        return keras_call(inputs, training=training, mask=mask)
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


def batch_norm_layers(model: keras.layers.Layer) -> list:
    """Every ``BatchNormalization`` layer of ``model``, its nested models' and subclassed layers' too.

    Args:
        model: a Keras model or layer.

    Returns:
        The layers, each once.

    Example:
        >>> len(batch_norm_layers(tl.models.cifar_resnet(20)))
        19
    """
    found = [model] if isinstance(model, keras.layers.BatchNormalization) else []
    for layer in keras_internals.child_layers(model, recursive=True):
        if isinstance(layer, keras.layers.BatchNormalization) and layer not in found:
            found.append(layer)
    return found


@contextlib.contextmanager
def fused_batch_norm(model: keras.layers.Layer) -> Iterator[keras.layers.Layer]:
    """Inside the block, ``model``'s ``BatchNormalization`` layers in training mode use TensorFlow's fused
    kernel (see the module docstring); a step traced inside keeps it. Layers in inference mode, with a
    mask, synchronized across replicas, renormalized or not 4-D take Keras' own path, and so does every
    layer of every other model: the kernel is set on this model's layers, not on the class.

    Args:
        model: the model (or layer) about to be trained.

    Yields:
        ``model``.

    Example:
        >>> with fused_batch_norm(model):
        ...     model.fit(dataset, epochs=1)   # the train function is traced here
    """
    patched = []
    for layer in batch_norm_layers(model):
        if "call" in vars(layer):  # already fused by an enclosing block (or set by the user): leave it
            continue
        keras_call = layer.call

        def call(inputs, training=None, mask=None, layer=layer, keras_call=keras_call):
            return _fused_call(layer, keras_call, inputs, training=training, mask=mask)

        layer.call = call
        patched.append(layer)
    try:
        yield model
    finally:
        for layer in patched:
            del layer.call
