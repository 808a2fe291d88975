"""Generic graph rewiring: rebuild a functional model with some outputs re-routed, move weights by name.

What block surgery, filter surgery, dtype changes and lineage rebuilds share. Layers with
weights are cloned from their config (a fresh copy with the same name) and receive their
namesakes' weights bit for bit; layers without weights and ``keras.ops`` nodes are reused.

Example:
    >>> ticket = rewire(model, {"stage1_block2_out": "stage1_block1_out"}, name="resnet20_minus1")
    >>> transfer_weights(model, ticket)
"""

from __future__ import annotations

import inspect
import re
from typing import Dict, List, Optional

import keras

from tf_lottery.core import keras_internals
from tf_lottery.graph import reader as graph_lib


def transfer_weights(source: keras.Model, target: keras.Model, strict: bool = True) -> List[str]:
    """Copies weights from ``source`` to ``target`` layer by layer, matched by name.

    The copy is exact (``set_weights(get_weights())``), including BatchNorm statistics.

    Args:
        source: Model to read weights from.
        target: Model to write weights into.
        strict: If True, every target layer with weights must exist in ``source``.

    Returns:
        The names of the layers that received weights.

    Raises:
        ValueError: for a missing layer (when ``strict``) or a shape mismatch.

    Example:
        >>> ticket = rewire(model, {"stage1_block2_out": "stage1_block1_out"})
        >>> "stage1_block1_conv1" in transfer_weights(model, ticket)
        True
    """
    source_layers = {layer.name: layer for layer in graph_lib.leaf_layers(source)}
    copied = []
    for layer in graph_lib.leaf_layers(target):
        if not layer.weights:
            continue
        if layer.name not in source_layers:
            if strict:
                raise ValueError(f"layer {layer.name!r} of {target.name} has no namesake in {source.name}")
            continue
        values = source_layers[layer.name].get_weights()
        expected = [tuple(w.shape) for w in layer.weights]
        if [v.shape for v in values] != expected:
            raise ValueError(
                f"layer {layer.name!r}: shapes {[v.shape for v in values]} in {source.name} do not match "
                f"{expected} in {target.name}"
            )
        layer.set_weights(values)
        copied.append(layer.name)
    return copied


class RewireError(ValueError):
    """An operation of the model failed when called on the rebuilt graph's tensors.

    Args:
        model_name: The model being rebuilt.
        operation: The operation that failed.
        error: What it raised.

    Attributes:
        operation: The name of the operation that failed.
    """

    def __init__(self, model_name: str, operation, error: Exception):
        first = _what_failed(error)
        super().__init__(f"rebuilding {model_name!r}: {type(operation).__name__} {operation.name!r} failed on its "
                         f"new inputs: {first}")
        self.operation = operation.name


_NOISE = ("Exception encountered", "Arguments received", "•", "Could not automatically infer")


def _what_failed(error: Exception) -> str:
    """The line of a Keras call error that says what went wrong (Keras wraps it in lines about the call)."""
    lines = [re.sub(r"\x1b\[[0-9;]*m|\[[0-9;]*m", "", line).strip() for line in str(error).splitlines()]
    useful = [line for line in lines if line and not line.startswith(_NOISE) and not line.endswith(":")]
    return (useful[-1] if useful else type(error).__name__)[:300]


_LAYER_ARGUMENTS = ("name", "trainable", "dtype")


def _taken(cls, config: dict) -> dict:
    """The entries of ``config`` that ``cls.__init__`` names (with the arguments every layer takes)."""
    parameters = inspect.signature(cls.__init__).parameters
    return {key: value for key, value in config.items() if key in parameters or key in _LAYER_ARGUMENTS}


def _clone(layer):
    """A fresh copy of a layer with weights, from its config (same name, new variables).

    A config that also stores values derived from the arguments, which ``__init__`` refuses
    (keras_hub 0.32's ``ViTPatchingAndEmbedding`` stores ``num_patches``), is tried again with
    only the entries ``__init__`` names; the weights' shapes are checked when they are moved.
    """
    config = {}
    try:
        config = layer.get_config()
        return layer.__class__.from_config(config)
    except Exception as error:  # a user's layer whose config does not rebuild it
        taken = _taken(layer.__class__, config)
        if config and len(taken) < len(config):
            try:
                return layer.__class__.from_config(taken)
            except Exception:  # noqa: BLE001 - the first error says more
                pass
        raise ValueError(
            f"cannot rebuild layer {layer.name!r} ({type(layer).__name__}) from its config for the ticket: "
            f"{error}. A layer with weights must round-trip through get_config/from_config (give its __init__ "
            "arguments to get_config); layers without weights are reused as they are. A keras_hub model is rebuilt "
            "in its own class instead by tl.surgery.family_ticket (find_ticket does it for a registered family)"
        ) from error


def rewire(model: keras.Model, replace: Dict[str, str], clone=_clone, name: Optional[str] = None,
           input_dtype=None, clone_weightless: bool = False, input_name: Optional[str] = None) -> keras.Model:
    """Rebuilds ``model``'s flat graph with the output of each call in ``replace`` taken
    from another call's output, and every layer with weights cloned by ``clone``.

    Calls left without a path to an output are never made; layers without weights and
    ``keras.ops`` nodes are reused as they are. A layer called more than once (a shared
    layer) is cloned once, and its kept calls call the clone: the ticket shares it too.

    Args:
        model: A functional model.
        replace: ``{call: call whose output it passes on}``, by the names of
            :func:`tf_lottery.graph.analyse` (an operation's name; ``name@2`` for the second
            call of a shared layer).
        clone: ``layer -> new layer`` for layers with weights.
        name: Name of the new model (default: ``model``'s).
        input_dtype: Dtype of the new inputs (default: the model's).
        clone_weightless: Also pass layers without weights to ``clone`` (e.g. to change
            every layer's dtype); ``keras.ops`` nodes are always reused.
        input_name: A new name for the (single) input (default: the model's input names).

    Returns:
        A new functional model (weights: whatever ``clone`` gave; see :func:`transfer_weights`).

    Raises:
        RewireError: naming the operation that failed on the new graph's tensors.

    Example:
        >>> ticket = rewire(model, {"stage1_block2_out": "stage1_block1_out"})   # stage1_block2 bypassed
        >>> "stage1_block2_conv1" in [layer.name for layer in ticket.layers]
        False
    """
    view = graph_lib.flat(model)
    g = graph_lib.analyse(view)
    new_outputs: Dict[str, object] = {}
    clones: Dict[str, object] = {}  # by layer name: the calls of a shared layer share its clone

    def new_input(tensor):
        call = g.call_of(keras_internals.producer_call(tensor))
        new_outputs[call] = keras.Input(shape=tensor.shape[1:], dtype=input_dtype or tensor.dtype,
                                        name=input_name or keras_internals.producer_name(tensor))
        return new_outputs[call]

    inputs = [new_input(t) for t in view.inputs]
    needed = set()  # calls on a path to an output once the replacements are made
    stack = list(g.outputs)
    while stack:
        current = stack.pop()
        if current not in needed:
            needed.add(current)
            stack.extend([replace[current]] if current in replace else g.parents[current])
    dead = set(g.order) - needed

    def call_fn(node, args, kwargs):
        call = g.call_of(node)
        operation = g.operations[call]
        if call in replace:
            out = new_outputs[replace[call]]
        elif call in dead:
            out = args[0][0] if isinstance(args[0], (list, tuple)) else args[0]
        else:
            if isinstance(operation, keras.layers.Layer) and (operation.weights or clone_weightless):
                if operation.name not in clones:
                    clones[operation.name] = clone(operation)
                target = clones[operation.name]
            else:
                target = operation
            try:
                out = target(*args, **kwargs)
            except RewireError:
                raise
            except Exception as error:  # name the operation: Keras' own message names only its class
                raise RewireError(model.name, operation, error) from error
        new_outputs[call] = out
        return out

    outputs = keras_internals.run_calls(view, inputs, call_fn)
    return keras.Model(keras_internals.pack_like_inputs(view, inputs), outputs,
                       name=name or model.name)
