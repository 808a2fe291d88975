"""The one seam between tf_lottery and Keras' private internals.

Keras 3 keeps the graph of a functional model behind private names: which operation produced a
symbolic tensor (``tensor._keras_history``), how a model runs its graph with another function per
operation (``Model._run_through_graph``), the nodes of each call (``_inbound_nodes``, ``_nodes``),
and the sublayers a layer tracks (``_flatten_layers``). tf_lottery needs them to read and rewrite a
model's graph, and three runtime patches (:mod:`tf_lottery.runtime.keras_patches`) need the trainer's.
Every such read or write goes through a function of this module, and nowhere else (a test scans the
package for private Keras names outside this file). Each function says what it needs from Keras, and
when the installed Keras lacks it, fails with :class:`KerasInternalsError` naming the missing feature,
by feature rather than by version string.

Example:
    >>> x = keras.Input((4,), name="pixels")
    >>> producer_name(keras.layers.Dense(2, name="head")(x))
    'head'
"""

from __future__ import annotations

from typing import Callable, Iterator, List

import keras


class KerasInternalsError(RuntimeError):
    """The installed Keras lacks a private feature tf_lottery reads or patches.

    The message names the feature and what uses it, so a Keras upgrade that renames it fails at the
    first use with one line, not deep inside a rewrite.
    """


def _need(owner, attribute: str, purpose: str):
    """``getattr(owner, attribute)``, or :class:`KerasInternalsError` naming the feature and its use."""
    try:
        return getattr(owner, attribute)
    except AttributeError:
        raise KerasInternalsError(
            f"Keras {keras.__version__} has no {type(owner).__name__}.{attribute}, which tf_lottery needs to "
            f"{purpose}; install a Keras in tf_lottery's supported range (setup.cfg)") from None


# --- symbolic tensors ---------------------------------------------------------------------------

def producer(tensor):
    """The operation (layer or ``keras.ops`` node) that produced a symbolic Keras tensor.

    Needs ``KerasTensor._keras_history`` (operation, node index, tensor index).

    Args:
        tensor: a symbolic tensor of a functional model (``model.inputs``, ``model.outputs`` or an
            intermediate one).

    Returns:
        The producing operation; an ``InputLayer`` for a model input.

    Raises:
        TypeError: when ``tensor`` is not a symbolic Keras tensor.
        KerasInternalsError: when this Keras has no ``_keras_history``.

    Example:
        >>> producer(model.outputs[0]).name
        'predictions'
    """
    history = _history(tensor)
    return history.operation


def producer_name(tensor) -> str:
    """The name of the operation that produced ``tensor`` (see :func:`producer`).

    Args:
        tensor: a symbolic Keras tensor.

    Returns:
        The operation's name: for a model input, the input's name.

    Raises:
        TypeError: when ``tensor`` is not a symbolic Keras tensor.
        KerasInternalsError: when this Keras has no ``_keras_history``.

    Example:
        >>> [producer_name(t) for t in model.inputs]
        ['pixels']
    """
    return producer(tensor).name


def producer_index(tensor) -> int:
    """Which output of its producing operation ``tensor`` is (0 for a single-output operation).

    Args:
        tensor: a symbolic Keras tensor.

    Returns:
        The output's index.

    Raises:
        TypeError: when ``tensor`` is not a symbolic Keras tensor.
        KerasInternalsError: when this Keras has no ``_keras_history``.

    Example:
        >>> producer_index(model.outputs[0])
        0
    """
    return _history(tensor).tensor_index


def _history(tensor):
    if not isinstance(tensor, keras.KerasTensor):
        raise TypeError(f"expected a symbolic Keras tensor (keras.KerasTensor); got {type(tensor).__name__}")
    return _need(tensor, "_keras_history", "find the operation that produced a tensor")


# --- functional models --------------------------------------------------------------------------

def is_functional(model) -> bool:
    """Whether ``model`` is a functional Keras model: a graph of nodes that tf_lottery can read.

    Needs the graph's depth map (``_nodes_by_depth``), which a functional model has and a subclassed
    model lacks; a model without it is not functional, whatever its class says.

    Args:
        model: any object.

    Returns:
        True for a ``keras.Model(inputs, outputs)`` (and its subclasses that keep the graph).

    Example:
        >>> is_functional(keras.Model(x, keras.layers.Dense(2)(x)))
        True
    """
    return isinstance(model, keras.Model) and hasattr(model, "_nodes_by_depth")


def run_through_graph(model: keras.Model, inputs, operation_fn: Callable) -> object:
    """Runs ``model``'s graph on ``inputs``, calling ``operation_fn(operation)(*args, **kwargs)``
    instead of each operation: how tf_lottery inlines nested models and rebuilds tickets.

    Needs ``Functional._run_through_graph(inputs, operation_fn=...)``.

    Args:
        model: a functional model.
        inputs: tensors in the structure of ``model.inputs`` (a flat list is accepted).
        operation_fn: maps an operation to the callable run in its place.

    Returns:
        The outputs, in the structure of ``model.outputs``.

    Raises:
        KerasInternalsError: when this Keras cannot run a graph with a per-operation function.

    Example:
        >>> run_through_graph(model, [keras.Input((32, 32, 3))], operation_fn=lambda op: op)
    """
    run = _need(model, "_run_through_graph", "run a model's graph operation by operation")
    return run(inputs, operation_fn=operation_fn)


def pack_like_inputs(model: keras.Model, inputs: List[object]):
    """``inputs`` (flat, in ``model.inputs`` order) packed in the structure ``model`` was built with
    (a dict of named inputs stays a dict), for ``keras.Model(pack_like_inputs(...), outputs)``.

    Needs ``Functional._inputs_struct``.

    Args:
        model: a functional model.
        inputs: one tensor per entry of ``model.inputs``.

    Returns:
        The same tensors in ``model``'s input structure.

    Raises:
        KerasInternalsError: when this Keras does not record a model's input structure.

    Example:
        >>> keras.Model(pack_like_inputs(model, new_inputs), outputs)
    """
    structure = _need(model, "_inputs_struct", "keep a model's input structure when rebuilding it")
    return keras.tree.pack_sequence_as(structure, inputs)


def calls_in(model: keras.Model, operation) -> list:
    """The nodes (calls) of ``operation`` that belong to ``model``'s graph, in call order.

    A layer shared by two places of the graph has two nodes here; a layer also used by another
    model has nodes that are not ``model``'s, and they are left out.

    Needs ``Operation._inbound_nodes`` and ``Functional._nodes`` (the keys ``"{id}_ib-{index}"``).

    Args:
        model: a functional model.
        operation: one of ``model.operations``.

    Returns:
        The ``keras`` nodes through which ``model`` calls ``operation``.

    Raises:
        KerasInternalsError: when this Keras keeps no per-call nodes.

    Example:
        >>> len(calls_in(model, model.get_layer("stem_conv")))
        1
    """
    nodes = _need(operation, "_inbound_nodes", "read which calls of a layer a model makes")
    keys = _need(model, "_nodes", "read which calls of a layer a model makes")
    return [node for index, node in enumerate(nodes) if f"{id(operation)}_ib-{index}" in keys]


# --- layers -------------------------------------------------------------------------------------

def child_layers(layer, recursive: bool = False) -> Iterator[keras.layers.Layer]:
    """The layers ``layer`` tracks (its sublayers), without ``layer`` itself.

    Needs ``Layer._flatten_layers(include_self, recursive)``.

    Args:
        layer: a Keras layer or model.
        recursive: also the sublayers' sublayers, depth first.

    Returns:
        An iterator over the tracked sublayers.

    Raises:
        KerasInternalsError: when this Keras cannot list a layer's tracked sublayers.

    Example:
        >>> [inner.name for inner in child_layers(transformer_layer)]
        ['self_attention', 'feedforward_intermediate', ...]
    """
    flatten = _need(layer, "_flatten_layers", "list the sublayers of a layer")
    return flatten(include_self=False, recursive=recursive)


def is_ops_addition(operation) -> bool:
    """Whether ``operation`` is the graph node of ``keras.ops.add`` (what ``x + y`` on symbolic tensors
    makes), which Keras defines in a private module and does not export as a class.

    Args:
        operation: an operation of a functional model.

    Returns:
        True for the ``Add`` operation of ``keras.ops`` (not for the ``keras.layers.Add`` layer).

    Example:
        >>> is_ops_addition(producer(x + y))
        True
    """
    return type(operation).__name__ == "Add" and type(operation).__module__.startswith("keras.src.ops")


# --- the trainer (runtime patches) --------------------------------------------------------------

def tensorflow_trainer_module():
    """Keras' TensorFlow trainer module, whose ``reduce_per_replica`` the multi-worker patch wraps.

    Returns:
        The module ``keras.src.backend.tensorflow.trainer``.

    Raises:
        KerasInternalsError: when this Keras has no such module or it lacks ``reduce_per_replica``.

    Example:
        >>> tensorflow_trainer_module().reduce_per_replica
    """
    try:
        from keras.src.backend.tensorflow import trainer
    except ImportError:
        raise KerasInternalsError(
            f"Keras {keras.__version__} has no keras.src.backend.tensorflow.trainer, which tf_lottery's "
            "multi-worker metric patch wraps") from None
    _need(trainer, "reduce_per_replica", "reduce metrics over the workers")
    return trainer


def is_multi_worker_collective(strategy) -> bool:
    """Whether ``strategy`` all-reduces across workers (``MultiWorkerMirroredStrategy``), as Keras' trainer
    decides it.

    Args:
        strategy: a ``tf.distribute`` strategy.

    Returns:
        True under a multi-worker collective strategy.

    Raises:
        KerasInternalsError: when this Keras' trainer cannot tell.

    Example:
        >>> is_multi_worker_collective(tf.distribute.get_strategy())
        False
    """
    trainer = tensorflow_trainer_module()
    check = _need(trainer, "_collective_all_reduce_multi_worker", "tell a multi-worker strategy")
    return check(strategy)


def build_model_from_spec(model: keras.Model, spec) -> None:
    """Makes ``model`` build its optimizer and metrics from ``spec`` (``(input spec, label spec)``) inside
    its strategy's scope, instead of from a batch it would draw from the dataset.

    Needs ``Trainer._symbolic_build(data_batch=...)`` and replaces this model's
    ``_maybe_symbolic_build`` (only this model's: an instance attribute).

    Args:
        model: a compiled Keras model.
        spec: the dataset's element spec, ``(inputs, labels)``.

    Raises:
        KerasInternalsError: when this Keras has no symbolic build.

    Example:
        >>> build_model_from_spec(model, dataset.element_spec)
    """
    symbolic_build = _need(model, "_symbolic_build", "build a model's optimizer from a dataset's spec")
    _need(model, "_maybe_symbolic_build", "build a model's optimizer from a dataset's spec")

    def build(iterator=None, data_batch=None):
        with model.distribute_strategy.scope():
            symbolic_build(data_batch=spec)

    model._maybe_symbolic_build = build


# --- calls of a shared layer (issue 45: the general case) ---------------------------------------

def producer_call(tensor):
    """The node (the one call) that produced a symbolic Keras tensor.

    A layer called twice has two nodes; this tells which call ``tensor`` comes from.

    Needs ``KerasTensor._keras_history`` (its node index) and ``Operation._inbound_nodes``.

    Args:
        tensor: a symbolic tensor of a functional model.

    Returns:
        The Keras node of the call that produced ``tensor``.

    Raises:
        TypeError: when ``tensor`` is not a symbolic Keras tensor.
        KerasInternalsError: when this Keras keeps no per-call nodes.

    Example:
        >>> producer_call(shared(shared(x))) is calls_in(model, shared)[1]
        True
    """
    history = _history(tensor)
    nodes = _need(history.operation, "_inbound_nodes", "read which call of a layer produced a tensor")
    return nodes[history.node_index]


def run_calls(model: keras.Model, inputs, call_fn: Callable) -> object:
    """Runs ``model``'s graph on ``inputs`` call by call: ``call_fn(node, args, kwargs)`` gives the outputs of
    each call (node) in place of ``node.operation(*args, **kwargs)``.

    Unlike :func:`run_through_graph`, the function sees the node, so the two calls of a shared layer can be
    told apart (one kept and one bypassed, say). Calls run in depth order, inputs first; a call whose inputs
    were not computed is skipped, as Keras does.

    Needs ``Functional._nodes_by_depth`` and ``Functional._outputs_struct``, and of each node ``operation``, ``is_input``, ``input_tensors``,
    ``arguments.fill_in`` and ``outputs``.

    Args:
        model: a functional model.
        inputs: tensors in the structure of ``model.inputs`` (a flat list is accepted).
        call_fn: ``(node, args, kwargs) -> outputs`` of that call.

    Returns:
        The outputs, in the structure of ``model.outputs``.

    Raises:
        KerasInternalsError: when this Keras keeps no depth map of a model's nodes.
        ValueError: when an output cannot be computed from ``inputs``.

    Example:
        >>> run_calls(model, [keras.Input((32, 32, 3))], lambda node, args, kwargs: node.operation(*args, **kwargs))
    """
    by_depth = _need(model, "_nodes_by_depth", "run a model's graph call by call")
    structure = _need(model, "_outputs_struct", "run a model's graph call by call")
    values = {id(tensor): value for tensor, value in zip(model.inputs, keras.tree.flatten(inputs))}
    for depth in sorted(by_depth, reverse=True):
        for node in by_depth[depth]:
            if node.operation is None or node.is_input:
                continue
            if any(id(tensor) not in values for tensor in node.input_tensors):
                continue
            args, kwargs = node.arguments.fill_in(values)
            outputs = call_fn(node, args, kwargs)
            values.update((id(tensor), value) for tensor, value in zip(node.outputs, keras.tree.flatten(outputs)))
    missing = [i for i, tensor in enumerate(model.outputs) if id(tensor) not in values]
    if missing:
        raise ValueError(f"outputs {missing} of {model.name!r} cannot be computed from its inputs")
    return keras.tree.pack_sequence_as(structure, [values[id(tensor)] for tensor in model.outputs])
