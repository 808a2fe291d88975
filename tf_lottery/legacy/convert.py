"""Keras 3 <-> tf_keras: the same functional graph in tf_keras, weights moved by layer name.

tfmot only wraps tf_keras layers, so a Keras 3 model (any functional model of stock
layers) is rebuilt layer for layer in tf_keras from each layer's config: same names,
same wiring, same regularizers; initializers are left out (the weights are copied, bit for
bit, by layer name). Layers that need a mask on weights tfmot does not prune by itself
(a conv's bias, a BatchNormalization's gamma and beta) are built as the prunable
subclasses of :func:`prunable_classes`.

Example:
    >>> legacy = to_tf_keras(ticket)                 # tf_keras model, same weights
    >>> copy_weights(legacy, ticket)                 # and back, after training
"""

from __future__ import annotations

import inspect
from typing import Dict, Iterable, Optional

import keras

from tf_lottery.core import keras_internals
from tf_lottery import surgery

_BASE_KWARGS = {"name", "trainable", "dtype"}
_SERIALISED = ("_regularizer", "_constraint")  # nested objects kept (initializers are not: weights are copied)


def _legacy_config(layer_class, config: dict) -> dict:
    """``config`` (Keras 3) with only the keys ``layer_class`` (tf_keras) takes, in tf_keras form."""
    accepted = set(_BASE_KWARGS)
    for cls in inspect.getmro(layer_class):
        if "__init__" in vars(cls):
            accepted |= set(inspect.signature(cls.__init__).parameters)
    result = {}
    for key, value in config.items():
        if key not in accepted or key.endswith("_initializer"):
            continue
        if key == "dtype" and isinstance(value, dict):  # a Keras 3 DTypePolicy
            value = value.get("config", {}).get("name", "float32")
        if isinstance(value, dict) and "class_name" in value and key.endswith(_SERIALISED):
            value = {"class_name": value["class_name"], "config": value.get("config", {})}
        result[key] = value
    return result


def prunable_classes() -> Dict[str, type]:
    """tf_keras Conv2D and BatchNormalization subclasses whose every per-channel weight tfmot can mask.

    tfmot masks a conv's kernel only; a filter mask must also silence its bias and its
    BatchNorm's gamma and beta, or the channel still passes a constant to the next conv.
    """
    import tf_keras
    from tensorflow_model_optimization.sparsity.keras import PrunableLayer

    class FilterPrunableConv2D(tf_keras.layers.Conv2D, PrunableLayer):
        def get_prunable_weights(self):
            return [self.kernel] + ([self.bias] if self.use_bias else [])

    class FilterPrunableBatchNormalization(tf_keras.layers.BatchNormalization, PrunableLayer):
        def get_prunable_weights(self):
            return [w for w in (self.gamma, self.beta) if w is not None]

    return {"Conv2D": FilterPrunableConv2D, "BatchNormalization": FilterPrunableBatchNormalization}


def to_tf_keras(model: keras.Model, prunable: Iterable[str] = ()) -> "tf_keras.Model":  # noqa: F821
    """The tf_keras twin of a Keras 3 functional model, with its weights.

    Args:
        model: A Keras 3 functional model of stock layers.
        prunable: Names of Conv2D/BatchNormalization layers to build as
            :func:`prunable_classes` (every per-channel weight maskable).

    Returns:
        A tf_keras functional model: same layer names, wiring and weights (bit for bit).

    Raises:
        ValueError: for a layer class tf_keras does not have, naming it.
    """
    import tf_keras

    prunable, special = set(prunable), prunable_classes() if prunable else {}
    operations = [op for op in model.operations if not isinstance(op, keras.layers.Layer) or
                  isinstance(op, keras.Model)]
    if operations:
        raise ValueError(f"{model.name!r} has {type(operations[0]).__name__} {operations[0].name!r}, which is not a "
                         "layer (a keras.ops node such as x + y, or a nested model); tfmot methods need a flat model "
                         "of stock layers: write the operation as a layer (keras.layers.Add ...)")
    parents = surgery.producers(model)
    tensors: Dict[str, object] = {}
    for inp in model.inputs:
        name = keras_internals.producer_name(inp)
        tensors[name] = tf_keras.Input(shape=tuple(inp.shape[1:]), dtype=inp.dtype, name=name)
    for layer in model.layers:
        if layer.name in tensors:
            continue
        kind = type(layer).__name__
        stock = type(layer).__module__.startswith("keras.")  # a user's subclass may compute something else
        cls = special.get(kind) if layer.name in prunable else getattr(tf_keras.layers, kind, None)
        if cls is None or not stock:
            raise ValueError(f"layer {layer.name!r} is a {kind}, which tf_keras has no layer for; "
                             "tfmot methods need a model of stock layers")
        twin = cls(**_legacy_config(cls, layer.get_config()))
        inputs = [tensors[p] for p in parents[layer.name]]
        tensors[layer.name] = twin(inputs if len(inputs) > 1 else inputs[0])
    outputs = [tensors[keras_internals.producer_name(t)] for t in model.outputs]
    legacy = tf_keras.Model([tensors[keras_internals.producer_name(i)] for i in model.inputs],
                            outputs if len(outputs) > 1 else outputs[0], name=model.name)
    copy_weights(model, legacy)
    return legacy


def copy_weights(source, target, names: Optional[Iterable[str]] = None) -> None:
    """Copies weights between two models of the same architecture (Keras 3 or tf_keras), by layer name.

    Wrapped layers (tfmot's ``prune_low_magnitude``) are looked through: their inner layer's
    weights are copied.

    Raises:
        ValueError: for a layer of ``target`` missing from ``source`` or of another shape.
    """
    def inner(layer):
        return getattr(layer, "layer", layer)

    found = {inner(layer).name: inner(layer) for layer in source.layers}
    for layer in (inner(t) for t in target.layers):
        if not layer.weights or (names is not None and layer.name not in names):
            continue
        if layer.name not in found:
            raise ValueError(f"layer {layer.name!r} has no namesake in {source.name}")
        values = found[layer.name].get_weights()
        if [tuple(v.shape) for v in values] != [tuple(w.shape) for w in layer.get_weights()]:
            raise ValueError(f"layer {layer.name!r}: shapes differ between {source.name} and {target.name}")
        layer.set_weights(values)
