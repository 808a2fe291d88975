"""The operation graph of a Keras 3 functional model, as block surgery reads it.

Keras 3 puts two kinds of node in a functional graph: layers, and operations such as
``x + y`` or ``keras.ops.add(x, y)`` that are not layers (``model.layers`` leaves them out,
``model.operations`` has both). Surgery reads every operation, named by its ``name``.

Nested models (a functional model or a ``Sequential`` called as a layer, as
keras.applications' ConvNeXt does with its stem) are *flattened first*: :func:`flat`
returns a view of the model in which every nested model is replaced by its own layers,
called on the outer tensors, and every registered container (one layer calling a sequence
of blocks, keras_hub's ``ViTEncoder``: :mod:`tf_lottery.graph.containers`) by its sublayers. The view shares the layer objects, hence the variables,
with the model: scoring it scores the model, silencing it silences the model. Blocks
inside nested models are therefore found and removable, and a ticket cut from such a
model is a flat functional model (layer names unchanged).

A layer called more than once (a shared layer, each call its own Keras node) is one node of
the graph *per call*: its calls are named ``name@1``, ``name@2``, ... in call order, and every
other operation by its own name (:func:`call_names`), so that block surgery can tell which
call belongs to which block.

What surgery cannot read is refused by :func:`check_model` with what to do instead:
``Sequential`` models (no shortcut can be written in one) and subclassed models (their graph
lives in Python ``call`` code).

Example:
    >>> view = flat(model)                   # model itself when nothing is nested
    >>> g = analyse(model)
    >>> g.parents["stage1_block2_add"]
    ['stage1_block2_bn2', 'stage1_block1_out']
"""

from __future__ import annotations

import dataclasses
import weakref
from typing import Dict, List

import keras

from tf_lottery.core import keras_internals
from tf_lottery.graph import containers
from tf_lottery.graph.inside import DECLARED_ATTR, call_inputs
from tf_lottery.graph.lineage import KEPT_ATTR, LINEAGE_ATTR


def check_model(model) -> None:
    """Refuses models whose graph surgery cannot read, naming what to do instead.

    Args:
        model: The model to check.

    Raises:
        TypeError: for anything but a Keras 3 functional model.

    Example:
        >>> check_model(keras.Sequential([keras.layers.Dense(2)]))
        Traceback (most recent call last):
        TypeError: 'sequential' is a keras.Sequential model: each layer feeds the next, so it has no residual ...
    """
    if isinstance(model, keras.Sequential):
        raise TypeError(
            f"{model.name!r} is a keras.Sequential model: each layer feeds the next, so it has no residual "
            "block (a block adds a shortcut to its branch). Build it with the functional API, "
            "keras.Model(inputs, outputs), adding each block's input to its output (keras.layers.Add, `+` or "
            "keras.ops.add)"
        )
    if not keras_internals.is_functional(model):
        raise TypeError(
            f"expected a Keras 3 functional model (keras.Model(inputs, outputs)); got {type(model).__name__}. "
            "A subclassed model computes in Python code (call), which tf_lottery cannot read or rewrite: "
            "write it with the functional API (its layers called on keras.Input tensors), or, for a tf_keras "
            "model, rebuild it in Keras 3"
        )


_CHECKED: "weakref.WeakSet" = weakref.WeakSet()


def _inline(operation):
    """What to call instead of ``operation`` when flattening: a nested model's own layers, a
    registered container's sublayers (:mod:`tf_lottery.graph.containers`)."""
    unroll = containers.unroll_of(operation)
    if unroll is not None:
        def run_container(inputs, *args, **kwargs):
            if operation not in _CHECKED:
                containers.check_unrolled(operation, tuple(inputs.shape[1:]), inputs.dtype)
                _CHECKED.add(operation)
            return unroll(operation, inputs)
        return run_container
    if isinstance(operation, keras.Sequential):
        def run_sequential(inputs, *args, **kwargs):
            x = inputs
            for layer in operation.layers:
                x = _inline(layer)(x)
            return x
        return run_sequential
    if isinstance(operation, keras.Model):
        check_model(operation)
        return lambda inputs, *args, **kwargs: keras_internals.run_through_graph(operation, inputs, _inline)
    return operation


_FLAT: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def carry_tags(model: keras.Model, view: keras.Model) -> None:
    """Gives ``view`` (a model over ``model``'s layers) what ``model`` says of itself: its lineage
    and its declared residual layers, so the view is read as the model.

    Args:
        model: The model the view is made from.
        view: A ``keras.Model`` over ``model``'s layers.

    Example:
        >>> view = keras.Model(model.inputs, model.get_layer("pool").output)
        >>> carry_tags(model, view)
        >>> tl.graph.lineage.lineage(view)["builder"]
        'cifar_resnet'
    """
    for attribute in (LINEAGE_ATTR, DECLARED_ATTR, KEPT_ATTR):
        if getattr(model, attribute, None) is not None:
            setattr(view, attribute, getattr(model, attribute))


def is_nested(model: keras.Model) -> bool:
    """Whether ``model`` calls another model, or a registered container, as a layer.

    Args:
        model: A functional model.

    Returns:
        True when something in it must be inlined to read its graph.

    Example:
        >>> inner = keras.Sequential([keras.layers.Dense(4), keras.layers.ReLU()])
        >>> x = keras.Input((4,))
        >>> is_nested(keras.Model(x, inner(x))), is_nested(tl.models.cifar_resnet(20))
        (True, False)
    """
    return any(isinstance(op, keras.Model) or containers.unroll_of(op) is not None for op in model.operations)


def flat(model: keras.Model) -> keras.Model:
    """``model`` with every nested model inlined (``model`` itself when nothing is nested).

    The view shares layers and variables with ``model`` and carries its lineage.

    Args:
        model: A Keras 3 functional model.

    Returns:
        A functional model whose operations are all leaves (cached per model).

    Raises:
        TypeError: see :func:`check_model` (also for a nested subclassed model).

    Example:
        >>> [op.name for op in flat(keras.Model(x, inner(x))).operations]   # the models of is_nested's example
        ['input_layer', 'dense', 're_lu']
    """
    check_model(model)
    if not is_nested(model):
        return model
    if model not in _FLAT:
        inputs = [keras.Input(shape=t.shape[1:], dtype=t.dtype, name=keras_internals.producer_name(t))
                  for t in model.inputs]
        outputs = keras_internals.run_through_graph(model, inputs, operation_fn=_inline)
        view = keras.Model(keras_internals.pack_like_inputs(model, inputs), outputs, name=model.name)
        carry_tags(model, view)
        _FLAT[model] = view
    return _FLAT[model]


CALL_SEPARATOR = "@"
"""Between a shared layer's name and the number of its call: ``shared_conv@2`` is its second call."""


def call_names(name: str, calls: int) -> List[str]:
    """The graph names of the ``calls`` calls of the operation ``name``: its own name for a single call,
    ``name@1``, ``name@2``, ... (in call order) for a layer called more than once.

    Args:
        name: The operation's name.
        calls: How many times the model calls it (>= 1).

    Returns:
        One name per call, in call order.

    Example:
        >>> call_names("shared_conv", 2)
        ['shared_conv@1', 'shared_conv@2']
    """
    return [name] if calls == 1 else [f"{name}{CALL_SEPARATOR}{i}" for i in range(1, calls + 1)]


@dataclasses.dataclass
class Graph:
    """The calls of a flat functional model and how they connect.

    A node of this graph is one *call*: an operation called once is named by its own name, each
    call of a layer called more than once (a shared layer) by :func:`call_names` (``shared_conv@1``,
    ``shared_conv@2``), so that one call can belong to a block and another not.

    Attributes:
        model: The flat model (see :func:`flat`).
        order: Call names in topological order (inputs first).
        operations: ``{call name: layer or operation}`` (a shared layer under each of its calls).
        parents: ``{call name: names of the calls producing its inputs}``.
        consumers: ``{call name: names of the calls consuming its output}``.
        shapes: ``{call name: output shape without the batch axis}``.
        nodes: ``{call name: the Keras node of the call}`` (its arguments and output tensors).
        calls: ``{layer name: its call names}`` for each layer called more than once.
        outputs: Names of the calls producing the model's outputs.
        blocks: :func:`tf_lottery.surgery.find_blocks`' result per eligibility rule (a cache:
            a functional graph never changes).

    Example:
        >>> g = analyse(tl.models.cifar_resnet(20))
        >>> g.order[:3], g.consumers["stage1_block1_out"], g.shapes["stage1_block2_add"]
        (['image', 'stem_conv', 'stem_bn'], ['stage1_block2_conv1', 'stage1_block2_add'], (32, 32, 16))
    """

    model: keras.Model
    order: List[str]
    operations: Dict[str, object]
    parents: Dict[str, List[str]]
    consumers: Dict[str, List[str]]
    shapes: Dict[str, tuple]
    nodes: Dict[str, object] = dataclasses.field(default_factory=dict)
    calls: Dict[str, tuple] = dataclasses.field(default_factory=dict)
    outputs: List[str] = dataclasses.field(default_factory=list)
    blocks: Dict[str, tuple] = dataclasses.field(default_factory=dict)

    def position(self, name: str) -> int:
        """Topological position of call ``name``."""
        return self._position[name]

    def __post_init__(self):
        self._position = {name: i for i, name in enumerate(self.order)}
        self._ancestors: Dict[str, frozenset] = {}
        self._by_node = {id(node): name for name, node in self.nodes.items()}

    def call_of(self, node) -> str:
        """The call name of a Keras node of :attr:`model`."""
        return self._by_node[id(node)]

    def ancestors(self, name: str) -> frozenset:
        """``name`` and every call it depends on."""
        if name not in self._ancestors:
            stack, found = [name], set()
            while stack:
                current = stack.pop()
                if current in found:
                    continue
                if current in self._ancestors:
                    found |= self._ancestors[current]
                    continue
                found.add(current)
                stack.extend(self.parents[current])
            self._ancestors[name] = frozenset(found)
        return self._ancestors[name]


_GRAPHS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def analyse(model: keras.Model) -> Graph:
    """The :class:`Graph` of ``model`` (flattened first; cached per model).

    Args:
        model: A Keras 3 functional model.

    Returns:
        Its :class:`Graph`.

    Raises:
        TypeError: see :func:`check_model`.
        ValueError: for two operations of one name (or one named like a call of a shared
            layer), or an operation consuming the second output of a multi-output operation.

    Example:
        >>> analyse(tl.models.cifar_resnet(20)).parents["stage1_block2_add"]
        ['stage1_block1_out', 'stage1_block2_bn2']
    """
    view = flat(model)
    if view in _GRAPHS:
        return _GRAPHS[view]
    found, operations, nodes, calls, inputs_of = [], {}, {}, {}, {}
    seen = set()
    for operation in view.operations:
        if operation.name in seen:
            raise ValueError(f"two operations of {model.name!r} are named {operation.name!r}; surgery names them "
                             "apart")
        seen.add(operation.name)
        made = keras_internals.calls_in(view, operation)
        names = call_names(operation.name, len(made))
        if len(names) > 1:
            calls[operation.name] = tuple(names)
        for name, node in zip(names, made):
            inputs = call_inputs(operation, node)
            for tensor in inputs:
                if keras_internals.producer_index(tensor) != 0:
                    raise ValueError(f"{name!r} consumes output {keras_internals.producer_index(tensor)} of a "
                                     "multi-output operation; not supported")
            found.append(name)
            operations[name], nodes[name], inputs_of[name] = operation, node, inputs
    if len(nodes) != len(found):
        clash = sorted({name for name in found if found.count(name) > 1})
        raise ValueError(f"{model.name!r} has an operation named like a call of a shared layer ({', '.join(clash)}); "
                         f"rename it (a shared layer's calls are named <layer>{CALL_SEPARATOR}<call>)")
    call_of = {id(node): name for name, node in nodes.items()}
    parents = {name: [call_of[id(keras_internals.producer_call(t))] for t in inputs_of[name]]  # main input first
               for name in found}
    order: List[str] = []  # Keras' order, each call after the calls it reads (a shared layer's later calls)
    placed = set()
    for name in found:
        stack = [(name, False)]
        while stack:
            current, ready = stack.pop()
            if current in placed:
                continue
            if ready:
                placed.add(current)
                order.append(current)
                continue
            stack.append((current, True))
            stack.extend((p, False) for p in reversed(parents[current]) if p not in placed)
    shapes = {name: tuple(nodes[name].outputs[0].shape[1:]) for name in order}
    consumers = {name: [] for name in order}
    for name in order:
        for parent in parents[name]:
            consumers[parent].append(name)
    outputs = [call_of[id(keras_internals.producer_call(t))] for t in view.outputs]
    graph = Graph(view, order, operations, parents, consumers, shapes, nodes, calls, outputs)
    _GRAPHS[view] = graph
    return graph


def operation(model: keras.Model, name: str):
    """The layer or operation of call ``name`` in ``model``'s flat graph; a shared layer is also found by
    its own name.

    Args:
        model: A Keras 3 functional model.
        name: A call's name (:class:`Graph`), or a shared layer's own name (a nested model's layer
            by its own name).

    Returns:
        The layer, or the ``keras.ops`` operation.

    Raises:
        ValueError: for a name that is not in the graph.

    Example:
        >>> type(operation(tl.models.cifar_resnet(20), "stage1_block2_conv1")).__name__
        'Conv2D'
        >>> operation(model, "shared_conv@2") is operation(model, "shared_conv")   # a shared layer's call
        True
    """
    g = analyse(model)
    found = g.operations.get(name)
    if found is None and name in g.calls:
        found = g.operations[g.calls[name][0]]
    if found is None:
        raise ValueError(f"no operation named {name!r} in {model.name!r}")
    return found


def node_of(model: keras.Model, name: str):
    """The Keras node of call ``name`` in ``model``'s flat graph (its arguments included).

    Args:
        model: A Keras 3 functional model.
        name: A call's name: an operation's name, or ``name@2`` for the second call of a shared layer.

    Returns:
        The ``keras`` node (its ``arguments`` hold the call's tensors and keyword arguments).

    Raises:
        ValueError: for a name that is not a call of the graph (a shared layer: name one call, ``name@2``).

    Example:
        >>> node_of(tl.models.cifar_resnet(20), "stage1_block2_add").operation.name
        'stage1_block2_add'
    """
    g = analyse(model)
    if name not in g.nodes:
        shared = f": it is called {len(g.calls[name])} times, name one call: {', '.join(g.calls[name])}" \
            if name in g.calls else ""
        raise ValueError(f"no call named {name!r} in {model.name!r}{shared}")
    return g.nodes[name]


def output_of(model: keras.Model, name: str):
    """The symbolic output tensor of call ``name`` in ``model``'s flat graph (see :func:`node_of`).

    Args:
        model: A Keras 3 functional model.
        name: A call's name: an operation's name, or ``name@2`` for the second call of a shared layer.

    Returns:
        A ``keras.KerasTensor``, e.g. to build a model ending there.

    Raises:
        ValueError: for a name that is not a call of the graph.

    Example:
        >>> output_of(tl.models.cifar_resnet(20), "pool").shape
        (None, 64)
    """
    return node_of(model, name).outputs[0]


def leaf_layers(model: keras.Model) -> List[keras.layers.Layer]:
    """Every layer of ``model``'s flat graph (nested models' layers, not the models).

    Args:
        model: A Keras 3 functional model.

    Returns:
        The layers, in graph order (``keras.ops`` operations left out).

    Example:
        >>> len(leaf_layers(tl.models.cifar_resnet(20)))
        71
    """
    return [op for op in flat(model).operations if isinstance(op, keras.layers.Layer)]
