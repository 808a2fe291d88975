"""What a layer computes inside its ``call``: whether it is a *residual layer*.

A functional graph shows a subclassed layer as one node; its residual sum (keras_hub's
``TransformerEncoder``, a decoder layer, a user's ``ResidualBlock(keras.layers.Layer)``) is
in Python code. The rule that makes such a layer a block, by itself:

1. it is called on one tensor and its output has that tensor's shape;
2. it is not one of Keras' own layers (none of those holds a residual sum) and it has weights;
3. traced once on a symbolic input of that shape (``tf.function``, inference mode), its graph
   holds a residual sum ``x + f(x)``: an addition one of whose operands is the input (through
   identities and casts only) and another is computed from it. Post-norm layers
   (``LayerNorm(x + f(x))``) count: the sum is inside; ``x + w`` (a learned position
   embedding) does not.

A layer that holds two or more such layers (keras_hub's ``ViTEncoder``, every encoder layer
of a ViT in one layer) is a *container*, not one block. A registered container family
(:mod:`tf_lottery.graph.containers`) is opened in the model's flat view, so its blocks are
found one by one; an unregistered container is left out, and a model whose blocks are all
inside one is told how to register it.

When the trace cannot decide (a layer that needs more inputs, or one whose shortcut is
computed in a way the rule does not see), declare the layer: :func:`declare` records the
names on the model (tickets cut from it keep them), and ``find_blocks(model,
residual_layers=[...])``, ``tl.find_ticket(..., residual_layers=[...])`` and the
``--residual_layers`` flag do it for you.

A layer called on two tensors is an *addition* when it computes their sum
(:func:`adds_its_inputs`, run on two probe tensors): how a residual sum written as a
``keras.layers.Lambda`` closes a block.

Example:
    >>> is_residual_layer(model.get_layer("block1"), (32, 32, 16))
    True
"""

from __future__ import annotations

import json
import weakref
import inspect
from typing import Iterable, Tuple

import keras
import numpy as np
import tensorflow as tf

from tf_lottery.core import keras_internals

DECLARED_ATTR = "_tf_lottery_residual_layers"

_TRACED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_PASS_THROUGH = ("Identity", "Cast", "IdentityN")
_ADDITIONS = ("AddV2", "Add")


def declare(model: keras.Model, names: Iterable[str]) -> None:
    """Records layer names of ``model`` as residual layers (blocks by themselves), whatever the trace says.

    Raises:
        ValueError: for a name that is not a layer of ``model``.
    """
    names = list(names)
    known = {op.name for op in model.operations}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"residual_layers names {unknown}, not layers of {model.name!r}")
    setattr(model, DECLARED_ATTR, json.dumps(sorted(set(declared(model)) | set(names))))


def declared(model: keras.Model) -> Tuple[str, ...]:
    """The residual layers declared on ``model`` (:func:`declare`)."""
    text = getattr(model, DECLARED_ATTR, None)
    return tuple(json.loads(text)) if text else ()


def carry_declarations(source: keras.Model, target: keras.Model) -> None:
    """Gives ``target`` (a ticket or view of ``source``) the declarations of ``source`` that it still has."""
    names = [n for n in declared(source) if n in {op.name for op in target.operations}]
    if names:
        setattr(target, DECLARED_ATTR, json.dumps(names))


def is_stock(layer) -> bool:
    """Whether ``layer`` is one of Keras' own layers (none of which holds a residual sum)."""
    return type(layer).__module__.startswith(("keras.", "keras_core.", "tf_keras."))


def candidate(layer, input_shapes: list, output_shape: tuple) -> bool:
    """Rules 1 and 2 of the module docstring: worth tracing (other inputs, such as a padding mask, may follow
    the first)."""
    return (isinstance(layer, keras.layers.Layer) and not isinstance(layer, keras.Model) and not is_stock(layer)
            and bool(layer.weights) and len(input_shapes) >= 1 and tuple(input_shapes[0]) == tuple(output_shape))


def _takes_training(layer) -> bool:
    return "training" in inspect.signature(layer.call).parameters


def _source(tensor):
    while tensor.op.type in _PASS_THROUGH and tensor.op.inputs:
        tensor = tensor.op.inputs[0]
    return tensor


def _depends_on(tensor, name: str) -> bool:
    """Whether the graph tensor ``tensor`` is computed from the tensor called ``name``."""
    stack, seen = [tensor.op], set()
    while stack:
        op = stack.pop()
        if op.name in seen:
            continue
        seen.add(op.name)
        for t in op.inputs:
            if t.name == name:
                return True
            stack.append(t.op)
    return False


def _is_residual_sum(op, placeholder: str) -> bool:
    """``x + f(x)``: one operand is the input itself, the other is computed from it (a learned
    position embedding, ``x + w``, is not a residual sum)."""
    inputs = list(op.inputs)
    for i, t in enumerate(inputs):
        if _source(t).name == placeholder:
            others = inputs[:i] + inputs[i + 1:]
            if any(_depends_on(o, placeholder) for o in others):
                return True
    return False


def is_residual_layer(layer, node) -> bool:
    """Rule 3 of the module docstring: whether ``layer``'s traced graph adds its first input to
    something computed from it.

    Args:
        layer: The layer.
        node: The Keras node through which the model calls it: the trace calls it the same way
            (the same positional and keyword arguments, other inputs such as masks included).

    A layer whose trace fails is not recognised (declare it instead). Cached per layer.
    """
    if layer not in _TRACED:
        call, tensors = _as_called(layer, node)
        _TRACED[layer] = _adds_its_input(call, [tf.TensorSpec(t.shape, t.dtype) for t in tensors])
    return _TRACED[layer]


def traced_graph(layer, node, batch_size: int = 1):
    """The TensorFlow graph of ``layer``'s call as the model calls it through ``node`` (inference mode),
    on inputs whose batch axis is ``batch_size``; None when the call cannot be traced.

    Example:
        >>> ops = traced_graph(model.get_layer("res1"), tl.graph.reader.node_of(model, "res1")).get_operations()
    """
    call, tensors = _as_called(layer, node)
    return _graph(call, [tf.TensorSpec((batch_size,) + tuple(t.shape[1:]), t.dtype) for t in tensors])


def call_inputs(layer, node) -> list:
    """The Keras tensors ``node`` passes to ``layer``, its main input first.

    The main input is the first positional tensor or, for a call made with keywords only
    (keras_hub's Falcon calls ``layer(inputs=x, decoder_padding_mask=mask)``), the tensor given
    as the first parameter of ``layer.call``. Keras flattens keyword arguments by name, which
    would put the mask first.

    Example:
        >>> [t.name for t in call_inputs(layer, node)]   # ['transformer_layer_0', 'padding_mask']
    """
    tensors = list(node.arguments.keras_tensors)
    if node.arguments.args or len(tensors) < 2:
        return tensors
    positional = [p.name for p in inspect.signature(layer.call).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    main = node.arguments.kwargs.get(positional[0]) if positional else None
    if not any(main is t for t in tensors):
        return tensors
    return [main] + [t for t in tensors if t is not main]


def _as_called(layer, node):
    """``(call, tensors)``: ``call(*values)`` calls ``layer`` as ``node`` does, with ``values`` in place of ``tensors``."""
    tensors = call_inputs(layer, node)

    def call(*values):
        by_id = {id(t): v for t, v in zip(tensors, values)}
        args, kwargs = keras.tree.map_structure(
            lambda item: by_id.get(id(item), item), (node.arguments.args, node.arguments.kwargs))
        return _call(layer, args, kwargs)

    return call, tensors


def inner_residual_layers(layer, node) -> list:
    """The sublayers of ``layer`` that are residual layers on its first input's shape: a
    *container* of blocks (keras_hub's ``ViTEncoder``) when there are two or more.

    Each of Keras' own sublayers is skipped; a sublayer is traced alone on a tensor like the
    layer's first input.
    """
    first = call_inputs(layer, node)[0]
    spec = tf.TensorSpec(first.shape, first.dtype)
    found = []
    for inner in keras_internals.child_layers(layer, recursive=False):
        if is_stock(inner) or not inner.weights:
            continue
        if inner not in _TRACED:
            _TRACED[inner] = _adds_its_input(lambda x, inner=inner: _call(inner, (x,), {}), [spec])
        if _TRACED[inner]:
            found.append(inner.name)
    return found


def _call(layer, args, kwargs):
    return layer(*args, **{"training": False, **kwargs}) if _takes_training(layer) else layer(*args, **kwargs)


def _graph(call, specs):
    """The graph of ``call`` traced on ``specs``, or None when it cannot be traced."""
    try:
        return tf.function(call, autograph=False).get_concrete_function(*specs).graph
    except Exception:  # noqa: BLE001 - a call that cannot be traced is not read (a residual layer is declared instead)
        return None


def _adds_its_input(call, specs) -> bool:
    """Whether ``call`` traced on ``specs`` computes ``x + f(x)`` of its first argument (False when it cannot be traced)."""
    graph = _graph(call, specs)
    if graph is None:
        return False
    placeholder = graph.inputs[0].name
    return any(_is_residual_sum(op, placeholder) for op in graph.get_operations() if op.type in _ADDITIONS)


# --- a sum written in Python: a two-input Lambda ------------------------------------------------

_SUMS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
PROBE_STEP = 0.125
"""The probes' values are multiples of this step, between -8 and 8: exact in every float dtype Keras uses
(float16 and bfloat16 included), and so are their sums."""


def adds_its_inputs(layer, node) -> bool:
    """Whether a layer called on two tensors (a ``keras.layers.Lambda`` such as
    ``Lambda(lambda t: t[0] + t[1])``) computes their sum, as ``keras.layers.Add`` does.

    The layer's code is not read: the layer is called as ``node`` calls it (inference mode) on two
    probe tensors of its inputs' shapes (a batch of 2; an unknown axis becomes 3) whose values are
    random multiples of :data:`PROBE_STEP` between -8 and 8, of both signs, so that their sum is exact in any
    float dtype. The layer adds its inputs when its output equals their sum exactly, elementwise and
    in shape. ``t[0] - t[1]``, ``t[0] * t[1]``, ``relu(t[0] + t[1])``, ``t[0] + 0.5 * t[1]`` or a
    maximum are told apart on such probes; a function that adds only on some inputs (equal to the sum on
    the probes but not elsewhere) is not. A call that fails, non-float inputs, or anything but two inputs,
    is not an addition. The answer is cached per layer and input shapes.

    Args:
        layer: The layer (typically a ``keras.layers.Lambda``).
        node: The Keras node of the call (:func:`tf_lottery.graph.reader.node_of`).

    Returns:
        True when the layer computed the exact sum of its two probe inputs.

    Example:
        >>> adds_its_inputs(model.get_layer("b1_add"), tl.graph.reader.node_of(model, "b1_add"))
        True
    """
    call, tensors = _as_called(layer, node)
    key = tuple((tuple(t.shape[1:]), str(t.dtype)) for t in tensors)
    known = _SUMS.setdefault(layer, {})
    if key not in known:
        known[key] = _sums_probes(call, tensors)
    return known[key]


def _sums_probes(call, tensors) -> bool:
    if len(tensors) != 2 or not all("float" in str(t.dtype) for t in tensors):
        return False
    rng = np.random.default_rng(0)
    probes = [rng.integers(-64, 65, size=(2, *[3 if d is None else d for d in t.shape[1:]])) * PROBE_STEP
              for t in tensors]
    try:
        out = call(*[keras.ops.cast(p, t.dtype) for p, t in zip(probes, tensors)])
        out = keras.ops.convert_to_numpy(keras.ops.cast(out, "float64"))
    except Exception:  # noqa: BLE001 - a call that fails on the probes is not an addition
        return False
    expected = probes[0] + probes[1]
    return out.shape == expected.shape and bool(np.array_equal(out, expected))
