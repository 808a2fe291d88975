"""SynFlow: synaptic flow, data-free, ``θ ⊙ ∂R/∂θ`` with ``R = Σ f(1; |θ|)``.

Tanaka, Kunin, Yamins and Ganguli, "Pruning neural networks without any data by
iteratively conserving synaptic flow", NeurIPS 2020. Every weight is replaced by its
absolute value, an all-ones image goes through the network (BatchNorm in inference mode,
as in the original), and R is the sum of the outputs. The product of many positive
layers overflows float32 in deep ResNets, so the pass runs in float64 (the original does
the same). The block score is the mean over its conv weights (or the sum). Low = unimportant.
"""

from __future__ import annotations

from typing import Dict

import keras
import numpy as np
import tensorflow as tf

from tf_lottery.criteria import base


def _float64_twin(model: keras.Model) -> keras.Model:
    def clone(layer):
        config = layer.get_config()
        config["dtype"] = "float64"
        return layer.__class__.from_config(config)

    inputs = keras.tree.map_structure(
        lambda t: keras.Input(shape=t.shape[1:], dtype="float64", name=t._keras_history.operation.name),
        model.input,
    )
    return keras.models.clone_model(model, input_tensors=inputs, clone_function=clone)


def synflow_weight_scores(model, data=None) -> Dict[str, np.ndarray]:
    """Per-weight SynFlow score of every conv and dense kernel (``data`` is ignored).

    Returns:
        ``{layer name: array shaped like its kernel}`` (non-negative).
    """
    twin = _float64_twin(model)
    for layer in twin.layers:
        source = model.get_layer(layer.name).get_weights()
        if source:
            layer.set_weights([np.abs(w).astype("float64") for w in source])
    kernels = base.prunable_kernels(twin)
    params = [tf.convert_to_tensor(v.value) for v in twin.trainable_variables]
    ones = tf.ones((1, *twin.inputs[0].shape[1:]), dtype="float64")
    non_trainable = [v.value for v in twin.non_trainable_variables]
    with tf.GradientTape() as tape:
        tape.watch(params)
        outputs, _ = twin.stateless_call(params, non_trainable, ones, training=False)
        r = tf.reduce_sum(outputs)
    grads = tape.gradient(r, params)
    return {name: (params[i] * grads[i]).numpy() for name, i in kernels.items()}


@base.register("synflow", prune_first="low", needs="nothing", when="init",
               summary="theta * dR/dtheta, all-ones input, |theta| (Tanaka et al. 2020)")
def synflow(model, data=None, aggregation: str = "mean") -> Dict[str, float]:
    """Block scores from SynFlow (see module docstring)."""
    return base.aggregate(model, synflow_weight_scores(model), aggregation)
