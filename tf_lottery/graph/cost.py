"""What a network costs: FLOPs (the paper's convention), filters, memory, measured latency.

FLOPs follow the paper authors' framework (github.com/arturjordao/DeepPruning), which
reproduces the FLOPs column of the paper's Table 4: a conv costs ``H_out * W_out * C_in * C_out * k_h * k_w`` (per
group), a dense layer ``in * out`` per position it is applied at; BatchNorm, activations,
Add and pooling cost nothing. One multiply-accumulate counts as one FLOP. Depthwise,
grouped, separable, transposed and 1-D/3-D convs follow the same rule (see
:func:`layer_flops`); a layer with weights that is none of these is named by a warning.

Attention, which the paper's ResNets do not have, follows the same convention:
an ``EinsumDense`` costs its output elements times the sizes it sums over, and a
``MultiHeadAttention`` layer over Tq query and Tk key positions costs its four projections
(Tq x size(W_q) + Tk x size(W_k) + Tk x size(W_v) + Tq x size(W_o)) plus QKᵀ (heads x Tq x Tk x key_dim) and the
weighted sum over V (heads x Tq x Tk x value_dim); its softmax, like every activation, is
free, and so is an ``Embedding`` (a table look-up).

A layer that is not Keras' own (a subclassed residual block, keras_hub's transformer and
patching layers) is costed from its call, traced once as the model calls it on one example
(:func:`traced_flops`): each matrix product, einsum or convolution in the trace costs its
output elements times the sizes it sums over, the same convention; every other op is free.
"""

from __future__ import annotations

import math
import numbers
import statistics
import time
import warnings
from typing import Dict, Iterable, Optional

import keras
import numpy as np

from tf_lottery import graph
from tf_lottery.graph import heads, inside
from tf_lottery.graph.reader import node_of


ATTENTION = (keras.layers.MultiHeadAttention,)
"""Layers costed as attention (Q, K, V and output projections, QKᵀ, the sum over V)."""

COUNTED = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D, keras.layers.DepthwiseConv1D,
           keras.layers.DepthwiseConv2D, keras.layers.SeparableConv1D, keras.layers.SeparableConv2D,
           keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose, keras.layers.Conv3DTranspose,
           keras.layers.Dense, keras.layers.EinsumDense) + ATTENTION
"""Layers with a FLOP count (multiply-accumulates of their kernels; attention as above)."""

FREE = (keras.layers.BatchNormalization, keras.layers.LayerNormalization, keras.layers.GroupNormalization,
        keras.layers.Normalization, keras.layers.PReLU, keras.layers.Embedding)
"""Layers with weights that cost nothing by the paper's convention (normalisations, scales)."""

_FREE_NAMES = ("LayerScale", "PositionEmbedding")
"""Classes by name that cost nothing: keras.applications' ConvNeXt scale (a private class) and
keras_hub's and tf_lottery's learned position embeddings, elementwise like BatchNorm."""


def _positions(shape, layer) -> int:
    """Product of the spatial (or sequence) dimensions of a (batch-less) shape."""
    dims = tuple(shape[:-1])
    if any(d is None for d in dims):
        raise ValueError(
            f"cannot cost layer {layer.name!r} (FLOPs, memory): its spatial size is unknown ({tuple(shape)}); build "
            "the model with a fixed input_shape (e.g. input_shape=(224, 224, 3))")
    return math.prod(int(d) for d in dims)


def einsum_flops(layer, output_shape) -> int:
    """FLOPs of an ``EinsumDense``: its output elements times the sizes of the kernel axes it
    sums over (those of the kernel's letters that are not in the output).

    Args:
        layer: A built ``keras.layers.EinsumDense``.
        output_shape: Its output shape without the batch axis.

    Returns:
        The FLOPs of one example.

    Example:
        >>> layer = keras.layers.EinsumDense("ab,bc->ac", output_shape=16)
        >>> layer.build((None, 8))
        >>> einsum_flops(layer, (16,))
        128
    """
    inputs, output = layer.equation.split("->")
    kernel_letters = inputs.split(",")[1]
    summed = [size for letter, size in zip(kernel_letters, layer.kernel.shape) if letter not in output]
    return math.prod(int(d) for d in output_shape if d is not None) * math.prod(summed)


def attention_flops(layer, query_shape, key_shape) -> int:
    """FLOPs of a ``MultiHeadAttention`` for one example (see the module docstring).

    Args:
        layer: The attention layer (built).
        query_shape: Its query input's shape without the batch axis (Tq positions, features).
        key_shape: Its key (value) input's shape without the batch axis (Tk positions, features).

    Returns:
        The four projections' FLOPs plus those of QKᵀ and of the weighted sum over V.

    Raises:
        ValueError: for a number of positions that is not known.

    Example:
        >>> layer = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4)
        >>> x = keras.Input((5, 8))
        >>> _ = layer(x, x)
        >>> attention_flops(layer, (5, 8), (5, 8))   # 4 x 5 x 64 + 2 x 5 x 5 x (4 + 4)
        1680
    """
    queries, keys = _positions(query_shape, layer), _positions(key_shape, layer)
    heads, key_dim = layer.num_heads, layer.key_dim
    value_dim = layer.value_dim or key_dim
    projections = (queries * math.prod(layer.query_dense.kernel.shape)
                   + keys * math.prod(layer.key_dense.kernel.shape)
                   + keys * math.prod(layer.value_dense.kernel.shape)
                   + queries * math.prod(layer.output_dense.kernel.shape))
    return projections + heads * queries * keys * (key_dim + value_dim)


def attention_map_elements(layer, query_shape, key_shape) -> int:
    """Elements of a ``MultiHeadAttention``'s attention map for one example (heads x Tq x Tk).

    Args:
        layer: The attention layer.
        query_shape: Its query input's shape without the batch axis.
        key_shape: Its key input's shape without the batch axis.

    Returns:
        ``heads x Tq x Tk``.

    Example:
        >>> attention_map_elements(layer, (5, 8), (5, 8))   # the layer of attention_flops' example
        50
    """
    return layer.num_heads * _positions(query_shape, layer) * _positions(key_shape, layer)


def layer_flops(layer, output_shape=None, input_shape=None) -> int:
    """FLOPs of one layer in the paper's convention (0 for layers that are not counted).

    A conv costs its kernel size times its output positions (per group: a grouped or
    depthwise kernel is already per group); a transposed conv its kernel size times its
    input positions; a separable conv its depthwise and pointwise parts; a dense layer
    its kernel size times the positions it is applied at (1 on a vector, H*W on a
    feature map, as in ConvNeXt's pointwise layers).

    Args:
        layer: A Keras layer.
        output_shape: Its output shape without the batch axis (default: ``layer.output``'s).
        input_shape: Its input shape without the batch axis (default: ``layer.input``'s;
            only transposed convs need it).

    Returns:
        The layer's FLOPs for one example; 0 for a layer that is not counted.

    Raises:
        ValueError: for a spatial size that is not known.

    Example:
        >>> layer_flops(model.get_layer("stage1_block2_conv1"))
        2359296
    """
    if not isinstance(layer, COUNTED):
        return 0
    if output_shape is None:
        output_shape = tuple(layer.output.shape[1:])
    if isinstance(layer, ATTENTION):  # alone, as self-attention; flops() gives it its key input
        return attention_flops(layer, input_shape or output_shape, input_shape or output_shape)
    if isinstance(layer, keras.layers.EinsumDense):
        return einsum_flops(layer, output_shape)
    if isinstance(layer, (keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose, keras.layers.Conv3DTranspose)):
        if input_shape is None:
            input_shape = tuple(layer.input.shape[1:])
        return _positions(input_shape, layer) * math.prod(layer.kernel.shape)
    positions = _positions(output_shape, layer)
    if isinstance(layer, (keras.layers.SeparableConv1D, keras.layers.SeparableConv2D)):
        return positions * (math.prod(layer.depthwise_kernel.shape) + math.prod(layer.pointwise_kernel.shape))
    return positions * math.prod(layer.kernel.shape)


_PRODUCTS = ("MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3", "Einsum", "Conv2D", "Conv3D",
             "DepthwiseConv2dNative", "Conv2DBackpropInput", "Conv3DBackpropInputV2")
"""The ops of a traced call that cost FLOPs (:func:`traced_flops`)."""


def _known(shape, layer) -> tuple:
    dims = tuple(shape)
    if any(d is None for d in dims):
        raise ValueError(
            f"cannot cost layer {layer.name!r} (FLOPs): a product in its call has an unknown size {dims}; build the "
            "model with fixed input sizes (a fixed sequence length or image size)")
    return dims


def _op_flops(op, layer) -> int:
    """Multiply-accumulates of one op of a traced call (0 for the free ones)."""
    if op.type not in _PRODUCTS:
        return 0
    out = math.prod(_known(op.outputs[0].shape, layer))
    if op.type == "MatMul":
        a = _known(op.inputs[0].shape, layer)
        return out * a[0 if op.get_attr("transpose_a") else 1]
    if op.type.startswith("BatchMatMul"):
        a = _known(op.inputs[0].shape, layer)
        return out * a[-2 if op.get_attr("adj_x") else -1]
    if op.type == "Einsum":
        terms, result = op.get_attr("equation").decode().replace("...", "").split("->")
        sizes = {}
        for term, tensor in zip(terms.split(","), op.inputs):
            dims = _known(tensor.shape, layer)
            sizes.update(zip(term, dims[len(dims) - len(term):]))
        return out * math.prod(size for letter, size in sizes.items() if letter not in result)
    kernel = _known(op.inputs[1].shape, layer)
    if op.type == "DepthwiseConv2dNative":
        return out * kernel[0] * kernel[1]
    if op.type.startswith("Conv") and "Backprop" in op.type:  # a transposed conv: its input positions x its kernel
        return math.prod(_known(op.inputs[2].shape, layer)[:-1]) * math.prod(kernel)
    return out * math.prod(kernel[:-1])


def traced_flops(layer, node) -> int:
    """FLOPs of one example through a layer that is not Keras' own, from its traced call (module docstring).

    Args:
        layer: The layer.
        node: The Keras node through which the model calls it (:func:`tf_lottery.graph.reader.node_of`):
            the trace calls it the same way, masks included.

    Returns:
        The FLOPs of one example (the trace's batch axis is 1).

    Raises:
        ValueError: for a call that cannot be traced, or a product whose size is not known.

    Example:
        >>> traced_flops(model.get_layer("res1"), tl.graph.reader.node_of(model, "res1"))
        294912
    """
    traced = inside.traced_graph(layer, node, batch_size=1)
    if traced is None:
        raise ValueError(f"cannot cost layer {layer.name!r} ({type(layer).__name__}): its call cannot be traced "
                         "on one example")
    return sum(_op_flops(op, layer) for op in traced.get_operations())


def _traced(layer) -> bool:
    """Whether :func:`flops` costs ``layer`` from its traced call."""
    return (isinstance(layer, keras.layers.Layer) and not isinstance(layer, COUNTED + FREE)
            and type(layer).__name__ not in _FREE_NAMES and not inside.is_stock(layer) and bool(layer.weights))


def uncounted(model: keras.Model) -> list:
    """Names of the layers with weights that :func:`flops` neither counts, traces nor knows to be free.

    Args:
        model: A Keras model.

    Returns:
        Those layers' names, in the flat graph's order.

    Example:
        >>> uncounted(model)          # e.g. ["lstm"] for a keras.layers.LSTM
        []
    """
    return [layer.name for layer in graph.leaf_layers(model)
            if layer.weights and not isinstance(layer, COUNTED + FREE) and type(layer).__name__ not in _FREE_NAMES
            and not _traced(layer)]


def flops(model: keras.Model, sequence_length: Optional[int] = None) -> int:
    """Total FLOPs of one example's forward pass (see the module docstring).

    Every layer of the flat graph counts (nested models included), at the shapes it has
    in this model. A layer with weights that is not counted is named in a warning.

    A model of token sequences (every input ``(batch, length)``: a keras_hub backbone or task) costs
    one sequence of its fixed length, or of ``sequence_length`` tokens when its inputs take any
    length, attention over every position included. A keras_hub ``*CausalLM`` task is costed as its
    backbone plus its head, the reversed token embedding (tied or not): ``length x hidden x
    vocabulary`` (:func:`tf_lottery.graph.heads.tied_head_backbone`).

    Args:
        model: A functional model.
        sequence_length: Tokens per sequence, for a model of token sequences of any length.

    Returns:
        The FLOPs of one example (one multiply-accumulate is one FLOP).

    Raises:
        ValueError: for a model whose spatial size is not fixed, a model of token sequences of any
            length without ``sequence_length`` (or of a fixed other length), or a ``sequence_length``
            for a model that does not take token sequences.

    Example:
        >>> flops(tl.models.cifar_resnet(32))
        69124736
        >>> flops(gpt2_lm, sequence_length=128) == flops(gpt2_lm.backbone, 128) + 128 * 768 * 50257
        True
    """
    backbone = heads.tied_head_backbone(model)
    body = backbone if backbone is not None else model
    length = _sequence_length(body, sequence_length)
    if length is not None and any(t.shape[1] is None for t in keras.tree.flatten(body.input)):
        fixed = keras.tree.map_structure(
            lambda t: keras.Input((length, *t.shape[2:]), dtype=t.dtype, name=t.name), body.input)
        body = keras.Model(fixed, body(fixed), name=body.name)
    g = graph.analyse(body)
    missing = uncounted(body)
    if missing:
        warnings.warn(f"FLOPs of {model.name!r} leave out layers {missing}: tf_lottery.graph.cost counts convs, dense "
                      "and attention layers and traces layers that are not Keras' own (normalisations and scales "
                      "cost nothing)", stacklevel=2)
    total = sum(operation_flops(g, name) for name in g.order)
    if backbone is not None:
        table = backbone.token_embedding.embeddings
        total += length * int(table.shape[0]) * int(table.shape[1])
    return total


def _sequence_length(model: keras.Model, sequence_length: Optional[int]) -> Optional[int]:
    """The length :func:`flops` costs ``model`` at: None for a model that does not take token
    sequences, else its fixed length or ``sequence_length`` (see :func:`flops` for the refusals)."""
    inputs = keras.tree.flatten(model.input)
    sequences = all(len(t.shape) == 2 and "int" in str(t.dtype) for t in inputs)
    if sequence_length is not None:
        if isinstance(sequence_length, bool) or not isinstance(sequence_length, numbers.Integral) \
                or sequence_length < 1:
            raise ValueError(f"sequence_length must be an integer >= 1; got {sequence_length!r}")
        if not sequences:
            raise ValueError(f"sequence_length={sequence_length} is for a model of token sequences; {model.name!r} "
                             f"takes {[tuple(t.shape) for t in inputs]}")
    if not sequences:
        return None
    fixed = {t.shape[1] for t in inputs}
    if fixed != {None}:
        if sequence_length is not None and fixed != {sequence_length}:
            raise ValueError(f"{model.name!r} takes sequences of {sorted(fixed, key=str)} tokens only; got "
                             f"sequence_length={sequence_length}")
        return int(next(iter(fixed))) if len(fixed) == 1 and None not in fixed else None
    if sequence_length is None:
        raise ValueError(f"the FLOPs of {model.name!r} depend on its sequence length, and it takes sequences of any "
                         f"length: give one, tl.cost.flops(model, sequence_length=128)")
    return int(sequence_length)


def _attention_inputs(g, name: str) -> tuple:
    """The query and key (value) shapes of attention layer ``name`` in graph ``g`` (self-attention: one input)."""
    parents = g.parents[name]
    return g.shapes[parents[0]], g.shapes[parents[1] if len(parents) > 1 else parents[0]]


def operation_flops(g, name: str) -> int:
    """FLOPs of operation ``name`` at its shapes in graph ``g`` (:func:`tf_lottery.graph.analyse`), as
    :func:`flops` counts them: a counted layer by its formula (attention: at its query and value
    inputs), a layer that is not Keras' own from its traced call, anything else 0.

    Args:
        g: A :class:`tf_lottery.graph.Graph`.
        name: One of its operations.

    Returns:
        The operation's FLOPs for one example.

    Example:
        >>> g = tl.graph.analyse(model)
        >>> sum(operation_flops(g, name) for name in g.order) == flops(model)
        True
    """
    layer, parents = g.operations[name], g.parents[name]
    if not (isinstance(layer, COUNTED) or _traced(layer)):
        return 0
    if _traced(layer):
        return traced_flops(layer, node_of(g.model, name))
    if isinstance(layer, ATTENTION):
        return attention_flops(layer, *_attention_inputs(g, name))
    return layer_flops(layer, g.shapes[name], g.shapes[parents[0]] if parents else None)


def count_filters(model: keras.Model, depthwise: bool = True) -> int:
    """Number of conv filters: the output channels of every Conv2D (projections included, and a
    SeparableConv2D's pointwise filters), plus, with ``depthwise``, every depthwise kernel (input
    channels x depth multiplier of each DepthwiseConv2D, and of a SeparableConv2D's depthwise step).

    Args:
        model: A Keras model.
        depthwise: Whether depthwise kernels count as filters.

    Returns:
        The number of filters.

    Example:
        >>> count_filters(tl.models.cifar_resnet(32))
        1232
    """
    return sum(
        int(layer.filters) if not isinstance(layer, keras.layers.DepthwiseConv2D) else 0
        for layer in graph.leaf_layers(model) if isinstance(layer, (keras.layers.Conv2D, keras.layers.SeparableConv2D))
    ) + (count_depthwise_filters(model) if depthwise else 0)


def count_depthwise_filters(model: keras.Model) -> int:
    """Number of depthwise kernels: input channels x depth multiplier of every DepthwiseConv2D and of
    every SeparableConv2D's depthwise step.

    Args:
        model: A Keras model.

    Returns:
        The number of depthwise kernels (0 for a model without depthwise convs).

    Example:
        >>> count_depthwise_filters(tl.models.cifar_resnet(20))
        0
        >>> count_depthwise_filters(keras.applications.MobileNet(weights=None, input_shape=(32, 32, 3)))
        4960
    """
    total = 0
    for layer in graph.leaf_layers(model):
        if isinstance(layer, (keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)):
            kernel = layer.depthwise_kernel if isinstance(layer, keras.layers.SeparableConv2D) else layer.kernel
            total += int(kernel.shape[-2]) * int(kernel.shape[-1])  # (h, w, channels, multiplier)
    return total


def memory(model: keras.Model, batch_size: int = 128) -> int:
    """Bytes to hold the parameters plus the activations of one batch in a forward pass.

    ``memory = bytes_per_value * (batch_size * sum(output elements of every layer) + params)``,
    the paper authors' formula (``memory_usage`` in arturjordao/DeepPruning), with the model's own dtype size. It
    counts every operation's (first) output once (the input layer and ``keras.ops`` nodes
    included, nested models' layers at their shapes in this model) and each attention layer's
    attention map (heads x Tq x Tk, once), no optimizer state and
    no framework workspace: a comparable model-level figure, not a process measurement.

    Args:
        model: A built functional model.
        batch_size: Images per batch (>= 1).

    Returns:
        Bytes, an int.

    Raises:
        TypeError: if ``batch_size`` is not an integer.
        ValueError: if ``batch_size`` < 1.

    Example:
        >>> memory(model, batch_size=128)
        ...
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
        raise TypeError(f"batch_size must be an integer >= 1; got {batch_size!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    bytes_per_value = np.dtype(model.dtype or "float32").itemsize
    g = graph.analyse(model)
    activations = sum(_positions(g.shapes[name], g.operations[name]) * int(g.shapes[name][-1] or 0)
                      if g.shapes[name] else 1 for name in g.order)
    activations += sum(attention_map_elements(g.operations[name], *_attention_inputs(g, name))  # attention maps
                       for name in g.order if isinstance(g.operations[name], ATTENTION))
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

    Args:
        model: A Keras model with a fixed input shape.
        batch_size: The batch :func:`memory` is counted for.

    Returns:
        ``{"params", "nonzero_params", "flops", "filters", "memory_bytes", "memory_batch_size"}``.

    Example:
        >>> summary(tl.models.cifar_resnet(20), batch_size=8)["flops"]
        40813184
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
    """Percentage by which ``ticket`` is below ``dense``.

    Args:
        dense: The dense model's number (FLOPs, parameters, ...).
        ticket: The ticket's.

    Returns:
        ``100 * (dense - ticket) / dense``: positive when the ticket is smaller.

    Example:
        >>> reduction(200.0, 110.0)
        45.0
    """
    return 100.0 * (dense - ticket) / dense

