"""Residual-block surgery on Keras functional models: find blocks, remove them, move weights.

A *block* is found from the graph, never from positions in the layer list: every
two-input ``Add`` layer closes one. Its *input* is the latest tensor both ``Add``
inputs descend from; its layers are everything between that input and the ``Add``,
plus a lone activation that directly follows the ``Add`` (the post-add ReLU of a
basic block). The layers on each side of the ``Add`` are its *branch* (the residual
function, the side that removal deletes and criteria score) and its *shortcut* (empty
for an identity shortcut; a projection conv or a zero-padding path otherwise). Its name
is the ``Add`` layer's name without the ``_add`` suffix, so ``stage2_block3_add``
closes the block ``stage2_block3``.

A block is *removable* when its shortcut is the identity (one ``Add`` input is the
block input itself), its output shape equals its input shape, and its input is the
output of another block. That excludes, as the paper does (its Appendix A.1), the first
block of the network and the downsampling first block of each later stage.

Removing blocks builds a new, smaller functional model (physical removal, never a
mask) in which each removed block's output is replaced by its input, and copies every
kept layer's weights by name: bit-identical, so a ticket cut at initialization inherits
θ0 and one cut after training inherits the trained weights.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Dict, Iterable, List, Optional, Sequence

import keras

from tf_lottery.models.lineage import extend as extend_lineage
from tf_lottery.models.lineage import lineage, lineage_json, rebuild, ticket_name

_STAGE_RE = re.compile(r"stage(\d+)")


@dataclasses.dataclass(frozen=True)
class Block:
    """One residual block of a functional model.

    Attributes:
        name: Block name (the ``Add`` layer's name without ``_add``).
        stage: Stage number, from the name (``stage2_...``) or else by output shape.
        layers: Names of the block's layers, in graph order.
        branch: Names of the residual branch's layers (from the block input to the
            ``Add``), in graph order: what removal deletes and criteria score.
        shortcut: Names of the shortcut's layers (empty for the identity).
        input_layer: Name of the layer producing the block's input.
        add_layer: Name of the ``Add`` layer.
        output_layer: Name of the layer producing the block's output.
        identity_input: Index of the ``Add`` input that is the block input, or None
            when the shortcut is not the identity (projection or zero padding).
        input_shape: Shape of the block input (without the batch axis).
        output_shape: Shape of the block output (without the batch axis).
        removable: Whether removing the block keeps every shape valid.
    """

    name: str
    stage: int
    layers: tuple
    branch: tuple
    shortcut: tuple
    input_layer: str
    add_layer: str
    output_layer: str
    identity_input: Optional[int]
    input_shape: tuple
    output_shape: tuple
    removable: bool


def _model_node(model: keras.Model, layer) -> "keras.src.ops.node.Node":
    """The node through which ``layer`` is called inside ``model``'s graph."""
    for index, node in enumerate(layer._inbound_nodes):
        if f"{id(layer)}_ib-{index}" in model._nodes:
            return node
    raise ValueError(f"layer {layer.name!r} is not called inside model {model.name!r}")


def producers(model: keras.Model) -> Dict[str, List[str]]:
    """For each layer of ``model``, the names of the layers producing its inputs.

    Raises:
        ValueError: for a layer that consumes a multi-output layer (not supported).
    """
    found = {}
    for layer in model.layers:
        node = _model_node(model, layer)
        for tensor in node.input_tensors:
            if tensor._keras_history.tensor_index != 0:
                raise ValueError(f"layer {layer.name!r} consumes a multi-output layer; not supported")
        found[layer.name] = [t._keras_history.operation.name for t in node.input_tensors]
    return found


def _ancestors(name: str, producers: Dict[str, List[str]], cache: Dict[str, frozenset]) -> frozenset:
    """``name`` and every layer it depends on."""
    if name not in cache:
        found = {name}
        for parent in producers[name]:
            found |= _ancestors(parent, producers, cache)
        cache[name] = frozenset(found)
    return cache[name]


def _require_functional(model) -> None:
    if not isinstance(model, keras.Model) or not hasattr(model, "_nodes") or isinstance(model, keras.Sequential):
        raise TypeError(
            f"expected a Keras 3 functional model (keras.Model(inputs, outputs)); got {type(model).__name__}"
        )


def find_blocks(model: keras.Model) -> List[Block]:
    """Returns every residual block of ``model`` in graph order.

    Args:
        model: A Keras 3 functional model.

    Returns:
        A list of :class:`Block`.

    Raises:
        TypeError: if ``model`` is not a functional Keras 3 model.

    Example:
        >>> [b.name for b in find_blocks(model)][:2]
        ['stage1_block1', 'stage1_block2']
    """
    _require_functional(model)
    parents_of = producers(model)
    order = {layer.name: i for i, layer in enumerate(model.layers)}
    consumers: Dict[str, List[str]] = {name: [] for name in parents_of}
    for name, parents in parents_of.items():
        for parent in parents:
            consumers[parent].append(name)
    cache: Dict[str, frozenset] = {}

    found = []
    for layer in model.layers:
        if not isinstance(layer, keras.layers.Add) or len(parents_of[layer.name]) != 2:
            continue
        left, right = (_ancestors(p, parents_of, cache) for p in parents_of[layer.name])
        input_layer = max(left & right, key=order.__getitem__)
        body = (_ancestors(layer.name, parents_of, cache) - _ancestors(input_layer, parents_of, cache))
        output_layer = layer.name
        followers = consumers[layer.name]
        if len(followers) == 1 and isinstance(
            model.get_layer(followers[0]), (keras.layers.ReLU, keras.layers.Activation)
        ):
            output_layer = followers[0]
            body = body | {output_layer}
        parents = parents_of[layer.name]
        identity = parents.index(input_layer) if input_layer in parents else None
        inside = _ancestors(input_layer, parents_of, cache)
        sides = [_ancestors(p, parents_of, cache) - inside for p in parents]
        # The shortcut is the identity side, else the side with fewer layers (a projection
        # conv, or a zero-padding path), ties broken by fewer weights.
        branch_side = 1 - identity if identity is not None else max(
            (0, 1), key=lambda i: (len(sides[i]), sum(model.get_layer(n).count_params() for n in sides[i])))
        name = layer.name[: -len("_add")] if layer.name.endswith("_add") else layer.name
        found.append(
            dict(
                name=name,
                layers=tuple(sorted(body, key=order.__getitem__)),
                branch=tuple(sorted(sides[branch_side], key=order.__getitem__)),
                shortcut=tuple(sorted(sides[1 - branch_side], key=order.__getitem__)),
                input_layer=input_layer,
                add_layer=layer.name,
                output_layer=output_layer,
                identity_input=identity,
                input_shape=tuple(model.get_layer(input_layer).output.shape[1:]),
                output_shape=tuple(model.get_layer(output_layer).output.shape[1:]),
            )
        )

    outputs = {b["output_layer"] for b in found}
    shapes: List[tuple] = []
    blocks = []
    for b in found:
        match = _STAGE_RE.search(b["name"])
        if match:
            stage = int(match.group(1))
        else:  # unnamed models: a new output shape starts a new stage
            if b["output_shape"] not in shapes:
                shapes.append(b["output_shape"])
            stage = shapes.index(b["output_shape"]) + 1
        removable = (
            b["identity_input"] is not None
            and b["input_shape"] == b["output_shape"]
            and b["input_layer"] in outputs
        )
        blocks.append(Block(stage=stage, removable=removable, **b))
    return blocks


def blocks(model: keras.Model) -> List[str]:
    """Names of all residual blocks of ``model``, in graph order.

    Example:
        >>> blocks(tl.models.cifar_resnet(20))[:3]
        ['stage1_block1', 'stage1_block2', 'stage1_block3']
    """
    return [b.name for b in find_blocks(model)]


def removable_blocks(model: keras.Model) -> List[str]:
    """Names of the blocks whose removal keeps every shape valid (see module docstring).

    Example:
        >>> len(removable_blocks(tl.models.cifar_resnet(32)))
        12
    """
    return [b.name for b in find_blocks(model) if b.removable]


def max_removable(model: keras.Model, min_blocks_per_stage: int = 2) -> int:
    """How many blocks can be removed in all while every stage keeps its floor."""
    all_blocks = find_blocks(model)
    total = 0
    for stage in sorted({b.stage for b in all_blocks}):
        in_stage = [b for b in all_blocks if b.stage == stage]
        eligible = sum(b.removable for b in in_stage)
        total += max(0, min(eligible, len(in_stage) - min_blocks_per_stage))
    return total


def check_removal(model: keras.Model, names: Iterable[str], min_blocks_per_stage: int = 2) -> List[Block]:
    """Validates a removal and returns the blocks to remove, in graph order.

    Raises:
        TypeError: for ``names`` that is a string or holds anything but strings.
        ValueError: for an unknown name, a block that is not removable, a repeated
            name, or a removal that leaves a stage with fewer than
            ``min_blocks_per_stage`` blocks.
    """
    if isinstance(names, str) or not all(isinstance(n, str) for n in names):
        raise TypeError(f"names must be a list of block names, e.g. ['stage1_block2']; got {names!r}")
    names = list(names)
    if min_blocks_per_stage < 1:
        raise ValueError(f"min_blocks_per_stage must be >= 1; got {min_blocks_per_stage}")
    all_blocks = find_blocks(model)
    by_name = {b.name: b for b in all_blocks}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ValueError(f"unknown blocks {unknown}; blocks of {model.name}: {list(by_name)}")
    if len(set(names)) != len(names):
        raise ValueError(f"a block is named twice in {names}")
    fixed = [n for n in names if not by_name[n].removable]
    if fixed:
        raise ValueError(
            f"blocks {fixed} are not removable (first block of the network or of a stage, or a "
            f"shortcut that changes shape); removable blocks: {[b.name for b in all_blocks if b.removable]}"
        )
    for stage in sorted({by_name[n].stage for n in names}):
        left = sum(b.stage == stage for b in all_blocks) - sum(by_name[n].stage == stage for n in names)
        if left < min_blocks_per_stage:
            raise ValueError(
                f"removing {[n for n in names if by_name[n].stage == stage]} leaves stage {stage} with "
                f"{left} blocks, below min_blocks_per_stage={min_blocks_per_stage}"
            )
    return [b for b in all_blocks if b.name in set(names)]


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
    """
    source_layers = {layer.name: layer for layer in source.layers}
    copied = []
    for layer in target.layers:
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


def remove_blocks(model: keras.Model, names: Sequence[str], min_blocks_per_stage: int = 2) -> keras.Model:
    """Returns a new, smaller model without the blocks ``names``; kept weights are inherited.

    Each removed block's output is replaced by its input; every other layer is cloned
    with its name and receives its weights from ``model`` bit for bit.

    Args:
        model: A functional model (e.g. from :func:`tf_lottery.models.cifar_resnet`).
        names: Blocks to remove; each must be in :func:`removable_blocks`.
        min_blocks_per_stage: Blocks each stage must keep (the paper authors' framework: 2).

    Returns:
        A new uncompiled ``keras.Model``. ``model`` is left untouched.

    Raises:
        ValueError: see :func:`check_removal`.

    Example:
        >>> ticket = remove_blocks(model, ["stage1_block2", "stage3_block4"])
        >>> "stage1_block2" in blocks(ticket)
        False
    """
    victims = check_removal(model, names, min_blocks_per_stage)
    skipped = {layer: b for b in victims for layer in b.layers}
    new_outputs: Dict[str, object] = {}

    def new_input(tensor):
        name = tensor._keras_history.operation.name
        new_outputs[name] = keras.Input(shape=tensor.shape[1:], dtype=tensor.dtype, name=name)
        return new_outputs[name]

    inputs = keras.tree.map_structure(new_input, model.input)

    def call(layer, *args, **kwargs):
        block = skipped.get(layer.name)
        if block is None:
            out = layer(*args, **kwargs)
        elif layer.name == block.output_layer:
            out = new_outputs[block.input_layer]
        else:  # inside a removed block: not on any path to the output, never built
            out = args[0][0] if isinstance(args[0], (list, tuple)) else args[0]
        new_outputs[layer.name] = out
        return out

    def clone(layer):
        if layer.name in skipped:
            return layer  # never called: the removed block's output bypasses it
        return layer.__class__.from_config(layer.get_config())

    ticket = keras.models.clone_model(model, input_tensors=inputs, clone_function=clone, call_function=call)
    removed = [b.name for b in victims]
    origin = lineage(model)
    count = len(origin["removed"]) + len(removed) if origin is not None else None
    name = ticket_name(model.name, count) if origin is not None else f"{model.name}_ticket"
    ticket = keras.Model(ticket.input, ticket.output, name=name)
    transfer_weights(model, ticket)
    extend_lineage(model, ticket, removed)
    return ticket


# lineage, lineage_json and rebuild live in tf_lottery.models; imported above, they stay
# reachable as tl.surgery.lineage etc., where tf_lottery 0.1 had them.
__all__ = [
    "Block", "blocks", "check_removal", "find_blocks", "lineage", "lineage_json", "max_removable", "rebuild",
    "remove_blocks", "removable_blocks", "silence_blocks", "silencing_variables", "transfer_weights",
]


def silencing_variables(model: keras.Model, block: Block) -> list:
    """The variables that, set to zero, make ``block``'s residual branch output exactly 0.

    A branch ending in BatchNormalization is silenced by its gamma and beta; one ending in
    a conv or dense layer (a pre-activation block) by its kernel and bias. In inference
    mode a silenced block with an identity shortcut passes its input through (after its
    post-add activation, which leaves a non-negative input as it is): what removing it does.

    Raises:
        ValueError: naming the block and its last branch layer when that layer is neither.
    """
    if not block.branch:
        raise ValueError(f"block {block.name!r} has no residual branch to silence")
    last = model.get_layer(block.branch[-1])
    if isinstance(last, keras.layers.BatchNormalization) and last.scale and last.center:
        return [last.gamma, last.beta]
    if isinstance(last, (keras.layers.Conv2D, keras.layers.Dense)):
        return [last.kernel] + ([last.bias] if last.use_bias else [])
    raise ValueError(
        f"cannot silence block {block.name!r}: its branch ends in {type(last).__name__} {last.name!r}; "
        "silencing needs a last BatchNormalization with scale and center, or a conv or dense layer"
    )


def silence_blocks(model: keras.Model, names: Iterable[str]) -> None:
    """Zeroes the residual branch of blocks in place (see :func:`silencing_variables`).

    Raises:
        ValueError: for an unknown block or a branch that cannot be silenced.

    Example:
        >>> silence_blocks(dense, ["stage1_block2"])   # dense now computes what the ticket does
    """
    by_name = {b.name: b for b in find_blocks(model)}
    for name in names:
        if name not in by_name:
            raise ValueError(f"unknown block {name!r}; blocks: {list(by_name)}")
        for variable in silencing_variables(model, by_name[name]):
            variable.assign(keras.ops.zeros_like(variable))
