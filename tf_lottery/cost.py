"""What a network costs: FLOPs (the paper's convention), filters, memory, measured latency.

FLOPs follow the paper authors' framework (github.com/arturjordao/DeepPruning), which
reproduces the FLOPs column of the paper's Table 4: a conv costs ``H_out * W_out * C_in * C_out * k_h * k_w`` (per
group), a dense layer ``in * out``; BatchNorm, activations, Add and pooling cost nothing.
One multiply-accumulate counts as one FLOP.
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Dict, Iterable

import keras
import numpy as np


def _leaf_layers(model: keras.Model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _leaf_layers(layer)
        else:
            yield layer


def layer_flops(layer) -> int:
    """FLOPs of one layer in the paper's convention (0 for layers that are not counted).

    Example:
        >>> layer_flops(model.get_layer("stage1_block2_conv1"))
        2359296
    """
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        kh, kw, channels, multiplier = layer.kernel.shape
        _, h, w, _ = layer.output.shape
        return int(h * w * kh * kw * channels * multiplier)
    if isinstance(layer, keras.layers.Conv2D):
        kh, kw, in_per_group, out = layer.kernel.shape
        _, h, w, _ = layer.output.shape
        return int(h * w * kh * kw * in_per_group * out)
    if isinstance(layer, keras.layers.Dense):
        fan_in, fan_out = layer.kernel.shape
        return int(fan_in * fan_out)
    return 0


def flops(model: keras.Model) -> int:
    """Total FLOPs of one image's forward pass (see the module docstring).

    Example:
        >>> flops(tl.models.cifar_resnet(32))
        69124736
    """
    return sum(layer_flops(layer) for layer in _leaf_layers(model))


def count_filters(model: keras.Model) -> int:
    """Number of conv filters (output channels of every Conv2D, projections included).

    Example:
        >>> count_filters(tl.models.cifar_resnet(32))
        1232
    """
    return sum(
        int(layer.filters)
        for layer in _leaf_layers(model)
        if isinstance(layer, keras.layers.Conv2D) and not isinstance(layer, keras.layers.DepthwiseConv2D)
    )


def memory(model: keras.Model, batch_size: int = 128) -> int:
    """Bytes to hold the parameters plus the activations of one batch in a forward pass.

    ``memory = bytes_per_value * (batch_size * sum(output elements of every layer) + params)``,
    the paper authors' formula (``memory_usage`` in arturjordao/DeepPruning), with the model's own dtype size. It
    counts every layer's output once (the input layer included), no optimizer state and
    no framework workspace: a comparable model-level figure, not a process measurement.

    Args:
        model: A built functional model.
        batch_size: Images per batch (>= 1).

    Returns:
        Bytes, an int.

    Raises:
        ValueError: if ``batch_size`` < 1.

    Example:
        >>> memory(model, batch_size=128)
        ...
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    bytes_per_value = np.dtype(model.dtype or "float32").itemsize
    activations = 0
    for layer in _leaf_layers(model):
        outputs = layer.output if isinstance(layer.output, (list, tuple)) else [layer.output]
        activations += sum(math.prod(int(d) for d in t.shape[1:]) for t in outputs)
    return int(bytes_per_value * (batch_size * activations + model.count_params()))


def latency(
    model: keras.Model,
    batch_sizes: Iterable[int] = (1, 32, 128),
    repeats: int = 10,
    warmup: int = 3,
    seed: int = 0,
) -> Dict[int, dict]:
    """Measures the inference time of ``model`` per batch size (median over repeats).

    Each batch size gets ``warmup`` untimed calls (tracing, allocation), then
    ``repeats`` timed calls of a compiled ``model(x, training=False)``.

    Args:
        model: A functional model.
        batch_sizes: Batch sizes to measure.
        repeats: Timed calls per batch size (>= 1).
        warmup: Untimed calls first (>= 1).
        seed: Seed of the random input.

    Returns:
        ``{batch_size: {"median_s", "min_s", "max_s", "images_per_s", "repeats"}}``,
        every figure measured in seconds on this machine.

    Raises:
        ValueError: for a repeat or warm-up count below 1 or a batch size below 1.

    Example:
        >>> latency(model, batch_sizes=[1, 128])[128]["images_per_s"]
        ...
    """
    import tensorflow as tf

    if repeats < 1 or warmup < 1:
        raise ValueError(f"repeats and warmup must be >= 1; got {repeats} and {warmup}")
    forward = tf.function(lambda x: model(x, training=False))
    rng = np.random.default_rng(seed)
    results = {}
    for batch in batch_sizes:
        if batch < 1:
            raise ValueError(f"batch sizes must be >= 1; got {batch}")
        x = tf.constant(rng.standard_normal((batch, *model.inputs[0].shape[1:])).astype("float32"))
        for _ in range(warmup):
            forward(x).numpy()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            forward(x).numpy()
            times.append(time.perf_counter() - start)
        median = statistics.median(times)
        results[int(batch)] = {
            "median_s": median,
            "min_s": min(times),
            "max_s": max(times),
            "images_per_s": batch / median,
            "repeats": repeats,
        }
    return results


def summary(model: keras.Model, batch_size: int = 128) -> dict:
    """Params, non-zero weights, FLOPs, filters and memory of ``model`` in one dict (no timing).

    ``nonzero_params`` counts the weights that are not exactly 0: below ``params`` for a
    masked ticket (tfmot's masks leave zeros, not a smaller model), whose FLOPs stay the
    dense ones because masked weights are still multiplied.
    """
    return {
        "params": int(model.count_params()),
        "nonzero_params": int(sum(np.count_nonzero(w) for w in model.get_weights())),
        "flops": flops(model),
        "filters": count_filters(model),
        "memory_bytes": memory(model, batch_size),
        "memory_batch_size": batch_size,
    }


def reduction(dense: float, ticket: float) -> float:
    """Percentage by which ``ticket`` is below ``dense`` (e.g. 45.0 for 45 % fewer)."""
    return 100.0 * (dense - ticket) / dense

