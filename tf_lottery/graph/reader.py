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

What surgery cannot read is refused by :func:`check_model` with what to do instead:
``Sequential`` models (no shortcut can be written in one), subclassed models (their graph
lives in Python ``call`` code), and layers called more than once (shared layers).

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

    Raises:
        TypeError: for anything but a Keras 3 functional model.
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
    and its declared residual layers, so the view is read as the model."""
    for attribute in (LINEAGE_ATTR, DECLARED_ATTR, KEPT_ATTR):
        if getattr(model, attribute, None) is not None:
            setattr(view, attribute, getattr(model, attribute))


def is_nested(model: keras.Model) -> bool:
    """Whether ``model`` calls another model, or a registered container, as a layer."""
    return any(isinstance(op, keras.Model) or containers.unroll_of(op) is not None for op in model.operations)


def flat(model: keras.Model) -> keras.Model:
    """``model`` with every nested model inlined (``model`` itself when nothing is nested).

    The view shares layers and variables with ``model`` and carries its lineage.

    Raises:
        TypeError: see :func:`check_model` (also for a nested subclassed model).
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


@dataclasses.dataclass
class Graph:
    """The operations of a flat functional model and how they connect.

    Attributes:
        model: The flat model (see :func:`flat`).
        order: Operation names in topological order (inputs first).
        operations: ``{name: layer or operation}``.
        parents: ``{name: names of the operations producing its inputs}``.
        consumers: ``{name: names of the operations consuming its output}``.
        shapes: ``{name: output shape without the batch axis}``.
        blocks: :func:`tf_lottery.surgery.find_blocks`' result per eligibility rule (a cache:
            a functional graph never changes).
    """

    model: keras.Model
    order: List[str]
    operations: Dict[str, object]
    parents: Dict[str, List[str]]
    consumers: Dict[str, List[str]]
    shapes: Dict[str, tuple]
    blocks: Dict[str, tuple] = dataclasses.field(default_factory=dict)

    def position(self, name: str) -> int:
        """Topological position of operation ``name``."""
        return self._position[name]

    def __post_init__(self):
        self._position = {name: i for i, name in enumerate(self.order)}
        self._ancestors: Dict[str, frozenset] = {}

    def ancestors(self, name: str) -> frozenset:
        """``name`` and every operation it depends on."""
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


def _node(model: keras.Model, operation):
    """The one node through which ``operation`` is called inside ``model``."""
    nodes = keras_internals.calls_in(model, operation)
    if len(nodes) != 1:
        raise ValueError(
            f"{operation.name!r} is called {len(nodes)} times in {model.name!r}; block surgery needs each layer "
            "called once (a shared layer cannot be removed with one block and kept with another): give each call "
            "its own layer"
        )
    return nodes[0]


def analyse(model: keras.Model) -> Graph:
    """The :class:`Graph` of ``model`` (flattened first; cached per model).

    Raises:
        TypeError: see :func:`check_model`.
        ValueError: for a layer called twice, two operations of one name, or an
            operation consuming the second output of a multi-output operation.
    """
    view = flat(model)
    if view in _GRAPHS:
        return _GRAPHS[view]
    order, operations, parents, shapes = [], {}, {}, {}
    for operation in view.operations:
        name = operation.name
        if name in operations:
            raise ValueError(f"two operations of {model.name!r} are named {name!r}; surgery names them apart")
        node = _node(view, operation)
        inputs = call_inputs(operation, node)
        for tensor in inputs:
            if keras_internals.producer_index(tensor) != 0:
                raise ValueError(f"{name!r} consumes output {keras_internals.producer_index(tensor)} of a "
                                 "multi-output operation; not supported")
        order.append(name)
        operations[name] = operation
        parents[name] = [keras_internals.producer_name(t) for t in inputs]  # the main input first
        output = node.outputs[0]
        shapes[name] = tuple(output.shape[1:])
    consumers = {name: [] for name in order}
    for name in order:
        for parent in parents[name]:
            consumers[parent].append(name)
    graph = Graph(view, order, operations, parents, consumers, shapes)
    _GRAPHS[view] = graph
    return graph


def operation(model: keras.Model, name: str):
    """The layer or operation called ``name`` in ``model``'s flat graph.

    Raises:
        ValueError: for a name that is not in the graph.
    """
    found = analyse(model).operations.get(name)
    if found is None:
        raise ValueError(f"no operation named {name!r} in {model.name!r}")
    return found


def node_of(model: keras.Model, name: str):
    """The Keras node through which ``model``'s flat graph calls operation ``name`` (its arguments included)."""
    return _node(flat(model), operation(model, name))


def output_of(model: keras.Model, name: str):
    """The symbolic output tensor of operation ``name`` in ``model``'s flat graph."""
    view = flat(model)
    return _node(view, operation(model, name)).outputs[0]


def leaf_layers(model: keras.Model) -> List[keras.layers.Layer]:
    """Every layer of ``model``'s flat graph (nested models' layers, not the models)."""
    return [op for op in flat(model).operations if isinstance(op, keras.layers.Layer)]
