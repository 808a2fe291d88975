"""Residual-block surgery on Keras functional models: find blocks, remove them, move weights.

The graph is read operation by operation (:mod:`tf_lottery.graph`): layers and
``keras.ops`` nodes alike, nested models flattened first. A *block* is found from the
graph, never from positions in the layer list: every two-input addition (a
``keras.layers.Add``, ``x + y`` or ``keras.ops.add``, or a ``keras.layers.Lambda`` that,
run on two probe tensors, gives their exact sum: :func:`tf_lottery.graph.inside.adds_its_inputs`)
closes one. Its *input* is the
latest tensor both addends descend from; its operations are everything between that
input and the addition, plus a ReLU that alone follows the addition when the block
input went through the same ReLU (the post-add ReLU of a basic block: since ReLU is
idempotent, dropping it with the block changes nothing). The operations on each side of
the addition are its *branch* (the residual function, the side that removal deletes and
criteria score) and its *shortcut* (empty for an identity shortcut; a projection conv,
a pooling or a zero-padding path otherwise).

A sum whose branch holds an embedding layer (``keras.layers.Embedding``, keras_hub's
``PositionEmbedding``, or any layer class whose name ends in ``Embedding``) is not a block:
the token + position embedding sum of a language model or a ViT encodes the input, and
removing it would remove the positions. A residual block that reads the network's input
directly (``x = inputs + conv(inputs)``) is a block like any other: under the shape rule
it is removable when it keeps its input's shape.

A block is named by the longest ``_``-separated prefix its branch's layer names and its
addition's name have in common: ``stage2_block3`` for ``stage2_block3_conv1 ...
stage2_block3_add``, ``conv4_block2`` in keras.applications' ResNets. Without one, a
named addition names the block (``res0``, ``block_2_add`` -> ``block_2``); an addition
Keras named itself (``add_7``, from ``x + y``) gives way to the branch's common prefix
(``convnext_tiny_stage_1_block_0`` in ConvNeXt), if there is one.

*Stages* come from where the shape of the main path changes: consecutive blocks whose
input and output shapes are equal form a stage, and a block that changes the shape
joins the stage it leads into when the next block keeps its output shape (the first,
downsampling block of a stage in ResNet v1), else the one it leaves when it keeps the width
and the previous block kept its input shape (the pooling last block of a stage in ResNet
v2), else starts one.

A block is *removable* when its shortcut is the identity (one addend is the block input
itself), its output shape equals its input shape, and it calls no layer with weights that is
also called outside it (a shared layer: the graph has one node per call, ``name@1``,
``name@2``; removing the block would delete one call and keep the other, so the block's
weights are not its own). :func:`ineligible` says why each other block stays. The paper's own templates
(``cifar_resnet``, ``imagenet_resnet``) keep the paper's stricter rule (its Appendix A.1):
the input must also be another block's output, which excludes the first block of the
network, whose input is the stem. Any other model gets the shape rule, under which the
first residual block of a MobileNetV2 or EfficientNet stage (fed by a block without a
shortcut) is removable.

Removing blocks builds a new, smaller functional model (physical removal, never a
mask) in which each removed block's output is replaced by its input. Layers with
weights are cloned from their config and receive the weights of their namesakes bit for
bit (a ticket cut at initialization inherits θ0, one cut after training the trained
weights); layers without weights (``Lambda`` included) and ``keras.ops`` nodes are reused.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Dict, Iterable, List, Optional, Sequence

import keras

from tf_lottery.core import keras_internals
from tf_lottery.graph import containers as containers_lib
from tf_lottery.graph import inside
from tf_lottery.graph.heads import tied_head_backbone
from tf_lottery.graph import reader as graph_lib
from tf_lottery.graph.lineage import extend as extend_lineage
from tf_lottery.graph.lineage import lineage, ticket_name
from tf_lottery.graph.rewire import rewire, transfer_weights

_AUTO_NAME = re.compile(r"add(_\d+)?")  # what Keras names an unnamed Add layer or keras.ops.add node

PAPER_RULE_BUILDERS = ("cifar_resnet", "imagenet_resnet")
"""Builders whose models follow the paper's eligibility rule (see the module docstring)."""

#: What block surgery needs, said in the error for a model without a residual block.
NO_BLOCKS_HINT = (
    "block surgery needs a functional residual network: each block adds its input (the identity shortcut) or a "
    "projection of it to its branch's output with keras.layers.Add, `+` or keras.ops.add"
)


@dataclasses.dataclass(frozen=True)
class Block:
    """One residual block of a functional model.

    Attributes:
        name: Block name (see the module docstring).
        stage: Stage number, from 1 (see the module docstring).
        layers: Names of the block's operations, in graph order.
        branch: Names of the residual branch's operations (from the block input to the
            addition), in graph order: what removal deletes and criteria score.
        shortcut: Names of the shortcut's operations (empty for the identity).
        input_layer: Name of the operation producing the block's input.
        add_layer: Name of the addition.
        output_layer: Name of the operation producing the block's output.
        identity_input: Index of the addend that is the block input, or None
            when the shortcut is not the identity (projection or zero padding).
        input_shape: Shape of the block input (without the batch axis).
        output_shape: Shape of the block output (without the batch axis).
        removable: Whether the block can be removed: its removal keeps every shape valid
            and it shares no layer with the rest of the model (see :func:`ineligible`).
        shared: Names of the layers with weights the block calls that are also called
            outside it (a shared layer); such a block is not removable.

    The names in ``layers``, ``branch``, ``shortcut``, ``input_layer``, ``add_layer`` and
    ``output_layer`` are calls of :func:`tf_lottery.graph.analyse`: an operation's name, or
    ``name@2`` for the second call of a shared layer.

    Example:
        >>> block = find_blocks(tl.models.cifar_resnet(20))[1]
        >>> block.name, block.stage, block.identity_input, block.removable
        ('stage1_block2', 1, 0, True)
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
    shared: tuple = ()


def producers(model: keras.Model) -> Dict[str, List[str]]:
    """For each operation of ``model``'s flat graph, the names of the operations producing its inputs.

    Args:
        model: A Keras 3 functional model (nested models are flattened).

    Returns:
        ``{operation name: [names of its parents, in input order]}``.

    Raises:
        ValueError: for an operation that consumes a multi-output operation (not supported).

    Example:
        >>> producers(tl.models.cifar_resnet(20))["stage1_block2_add"]
        ['stage1_block1_out', 'stage1_block2_bn2']
    """
    return {name: list(parents) for name, parents in graph_lib.analyse(model).parents.items()}


def _is_addition(g: graph_lib.Graph, name: str) -> bool:
    """Whether call ``name`` adds two tensors: a ``keras.layers.Add``, ``x + y`` or ``keras.ops.add``, or
    a two-input ``keras.layers.Lambda`` that computes their sum (:func:`tf_lottery.graph.inside.adds_its_inputs`)."""
    operation = g.operations[name]
    if len(g.parents[name]) != 2:
        return False
    if isinstance(operation, keras.layers.Add):
        return True
    if isinstance(operation, keras.layers.Lambda):
        return inside.adds_its_inputs(operation, g.nodes[name])
    return keras_internals.is_ops_addition(operation)


def _is_relu(operation) -> bool:
    if isinstance(operation, keras.layers.ReLU):
        return True
    return isinstance(operation, keras.layers.Activation) and operation.get_config().get("activation") == "relu"


def _is_embedding(operation) -> bool:
    """A layer that embeds positions or tokens (``keras.layers.Embedding``, keras_hub's
    ``PositionEmbedding``, ``TokenAndPositionEmbedding``, and any layer class named ``*Embedding``)."""
    return isinstance(operation, keras.layers.Embedding) or type(operation).__name__.endswith("Embedding")


def _same_relu(a, b) -> bool:
    """Whether ``a`` and ``b`` are ReLUs with one configuration (so ``a(b(x)) == b(x)``)."""
    def config(op):
        return {k: v for k, v in op.get_config().items() if k not in ("name", "trainable")}
    return _is_relu(a) and _is_relu(b) and type(a) is type(b) and config(a) == config(b)


def _common_prefix(names: Sequence[str]) -> str:
    parts = [name.split("_") for name in names]
    prefix = []
    for pieces in zip(*parts):
        if len(set(pieces)) != 1:
            break
        prefix.append(pieces[0])
    return "_".join(prefix)


def _block_name(g: graph_lib.Graph, branch: Sequence[str], add: str) -> str:
    """See the module docstring: the branch's and addition's common prefix, else a named
    addition's name, else the branch's common prefix, else the addition's (auto) name."""
    bare_add = add[: -len("_add")] if add.endswith("_add") else add
    layer_names = [g.operations[n].name for n in branch if isinstance(g.operations[n], keras.layers.Layer)]
    shortest = len(min(layer_names, key=len)) if layer_names else 0
    shared = _common_prefix([*layer_names, add]) if len(layer_names) >= 2 else ""
    if shared and len(shared) < shortest:
        return shared
    if not _AUTO_NAME.fullmatch(g.operations[add].name):
        return bare_add
    prefix = _common_prefix(layer_names) if len(layer_names) >= 2 else ""
    return prefix if prefix and len(prefix) < shortest else bare_add


def _stages(found: List[dict]) -> List[int]:
    """Stage numbers of the blocks, in graph order (see the module docstring)."""
    def keeps(b):
        return b["input_shape"] == b["output_shape"]

    keys = []
    for i, b in enumerate(found):
        if keeps(b):
            keys.append(b["output_shape"])
            continue
        following = found[i + 1] if i + 1 < len(found) else None
        previous = found[i - 1] if i else None
        if following is not None and keeps(following) and following["input_shape"] == b["output_shape"]:
            keys.append(b["output_shape"])
        elif (previous is not None and keeps(previous) and previous["output_shape"] == b["input_shape"]
              and b["input_shape"][-1:] == b["output_shape"][-1:]):
            keys.append(b["input_shape"])
        else:
            keys.append(("transition", i))
    stages, stage = [], 0
    for i, key in enumerate(keys):
        if i == 0 or key != keys[i - 1]:
            stage += 1
        stages.append(stage)
    return stages


def eligibility_rule(model: keras.Model) -> str:
    """Which rule decides the removable blocks of ``model`` (see the module docstring).

    Args:
        model: A functional model.

    Returns:
        ``"paper"`` for a model built by one of :data:`PAPER_RULE_BUILDERS` (its lineage says so),
        ``"shape"`` for any other model.

    Example:
        >>> eligibility_rule(tl.models.cifar_resnet(20))
        'paper'
    """
    origin = lineage(model)
    return "paper" if origin is not None and origin.get("builder") in PAPER_RULE_BUILDERS else "shape"


def find_blocks(model: keras.Model, residual_layers: Optional[Sequence[str]] = None) -> List[Block]:
    """Returns every residual block of ``model`` in graph order.

    Args:
        model: A Keras 3 functional model (nested models are flattened first).
        residual_layers: Names of layers that are blocks by themselves although the rule of
            :mod:`tf_lottery.graph.inside` does not recognise them; recorded on ``model``
            (and the tickets cut from it) for every later call.

    Returns:
        A list of :class:`Block` (empty for a model without residual blocks). A keras_hub
        ``*CausalLM`` task's are its backbone's (:func:`tf_lottery.graph.heads.tied_head_backbone`:
        its tied head calls the token embedding again, outside every block).

    Raises:
        TypeError: for a Sequential, subclassed or non-Keras model, naming what to do.
        ValueError: for a layer called more than once (a shared layer).

    Example:
        >>> [b.name for b in find_blocks(model)][:2]
        ['stage1_block1', 'stage1_block2']
    """
    backbone = tied_head_backbone(model)
    if backbone is not None:
        return find_blocks(backbone, residual_layers)
    if residual_layers:
        inside.declare(model, residual_layers)
    g = graph_lib.analyse(model)
    declared = inside.declared(model) or inside.declared(g.model)
    rule = eligibility_rule(model)
    key = (rule, declared)
    if key in g.blocks:
        return list(g.blocks[key])
    found = _residual_layer_blocks(g, declared)
    for add in g.order:
        parents = g.parents[add]
        if not _is_addition(g, add):
            continue
        left, right = (g.ancestors(p) for p in parents)
        input_layer = max(left & right, key=g.position)
        upstream = g.ancestors(input_layer)
        body = g.ancestors(add) - upstream
        output_layer = add
        followers = g.consumers[add]
        if len(followers) == 1 and _same_relu(g.operations[followers[0]], g.operations[input_layer]):
            output_layer = followers[0]
            body = body | {output_layer}
        identity = parents.index(input_layer) if input_layer in parents else None
        sides = [g.ancestors(p) - upstream for p in parents]

        def weights(names):
            return sum(g.operations[n].count_params() for n in names
                       if isinstance(g.operations[n], keras.layers.Layer))

        # The shortcut is the identity side, else the side with fewer operations (a projection
        # conv, or a zero-padding path), ties broken by fewer weights.
        branch_side = 1 - identity if identity is not None else max(
            (0, 1), key=lambda i: (len(sides[i]), weights(sides[i])))
        branch = tuple(sorted(sides[branch_side], key=g.position))
        if any(_is_embedding(g.operations[n]) for n in branch):
            continue  # token + position embeddings: they encode the input, not a residual function
        found.append(dict(
            name=_block_name(g, branch, add),
            layers=tuple(sorted(body, key=g.position)),
            branch=branch,
            shortcut=tuple(sorted(sides[1 - branch_side], key=g.position)),
            input_layer=input_layer,
            add_layer=add,
            output_layer=output_layer,
            identity_input=identity,
            input_shape=g.shapes[input_layer],
            output_shape=g.shapes[output_layer],
        ))
    found.sort(key=lambda b: g.position(b["add_layer"]))
    names = [b["name"] for b in found]
    for b in found:  # a prefix two blocks share names neither: fall back to the additions' names
        if names.count(b["name"]) > 1:
            b["name"] = b["add_layer"][: -len("_add")] if b["add_layer"].endswith("_add") else b["add_layer"]

    paper_rule = rule == "paper"
    # A block's output, for the paper's rule: its last operation, or a ReLU that alone follows
    # its addition without being part of it (its input had no ReLU to make it idempotent).
    outputs = {b["output_layer"] for b in found} | {
        g.consumers[b["add_layer"]][0] for b in found
        if len(g.consumers[b["add_layer"]]) == 1 and _is_relu(g.operations[g.consumers[b["add_layer"]][0]])}
    blocks_ = []
    for b, stage in zip(found, _stages(found)):
        shared = _shared_layers(g, set(b["layers"]))
        removable = (
            b["identity_input"] is not None
            and b["input_shape"] == b["output_shape"]
            and (not paper_rule or b["input_layer"] in outputs)
            and not shared
        )
        blocks_.append(Block(stage=stage, removable=removable, shared=shared, **b))
    g.blocks[key] = tuple(blocks_)
    return blocks_


def _shared_layers(g: graph_lib.Graph, body: set) -> tuple:
    """The layers with weights that the calls ``body`` call and that are also called outside them."""
    return tuple(layer for layer, calls in g.calls.items()
                 if g.operations[calls[0]].weights and body & set(calls) and not set(calls) <= body)


def _residual_layer_blocks(g: graph_lib.Graph, declared: Sequence[str]) -> List[dict]:
    """The blocks that are one layer (:mod:`tf_lottery.graph.inside`): declared, or recognised.

    Raises:
        ValueError: for a declared layer that is not called on one tensor of its output's shape.
    """
    found = []
    for name in g.order:
        layer, parents = g.operations[name], g.parents[name]
        shapes = [g.shapes[p] for p in parents]
        if layer.name in declared:
            if not parents or shapes[0] != g.shapes[name]:
                raise ValueError(f"residual layer {name!r} must keep the shape of its (first) input; it takes "
                                 f"{shapes} and gives {g.shapes[name]}")
        elif not inside.candidate(layer, shapes, g.shapes[name]):
            continue
        else:
            node = graph_lib.node_of(g.model, name)
            if not inside.is_residual_layer(layer, node) or len(inside.inner_residual_layers(layer, node)) >= 2:
                continue  # no residual sum it can see, or a container of blocks (not one block)
        found.append(dict(name=name, layers=(name,), branch=(name,), shortcut=(), input_layer=parents[0],
                          add_layer=name, output_layer=name, identity_input=0, input_shape=shapes[0],
                          output_shape=g.shapes[name]))
    return found


def looked_at(model: keras.Model) -> str:
    """What block discovery looked at in a model where it found no block, for the error.

    Args:
        model: A functional model.

    Returns:
        One sentence: the additions and shape-keeping layers it saw, and how to declare a block
        (or register a container of blocks) it cannot see.

    Example:
        >>> x = keras.Input((8,))
        >>> looked_at(keras.Model(x, keras.layers.Dense(8)(x)))[:45]
        'it looked at 0 two-input additions (none) and'
    """
    g = graph_lib.analyse(model)
    additions = [n for n in g.order if _is_addition(g, n)]
    keeping = [n for n in g.order if isinstance(g.operations[n], keras.layers.Layer) and len(g.parents[n]) == 1
               and g.shapes[g.parents[n][0]] == g.shapes[n] and g.operations[n].weights]
    containers = {n: inside.inner_residual_layers(g.operations[n], graph_lib.node_of(g.model, n)) for n in keeping
                  if inside.candidate(g.operations[n], [g.shapes[p] for p in g.parents[n]], g.shapes[n])}
    containers = {n: inner for n, inner in containers.items() if len(inner) >= 2}
    held = "".join(f"; {n} holds {len(inner)} residual layers ({', '.join(inner[:4])}): a container of blocks, "
                   f"opened once its family is registered: @tl.graph.containers.register("
                   f"{containers_lib.class_path(type(g.operations[n]))!r}) on a function calling its sublayers "
                   "as its call does" for n, inner in containers.items())
    lambdas = [n for n in g.order if isinstance(g.operations[n], keras.layers.Lambda) and len(g.parents[n]) == 2
               and n not in additions]
    if lambdas:
        held += (f"; {len(lambdas)} two-input Lambda layers ({', '.join(lambdas[:4])}) do not give the exact sum of "
                 "two probe tensors, so they close no block (write a residual sum as keras.layers.Add, `+` or a Lambda "
                 "returning t[0] + t[1])")
    return (f"it looked at {len(additions)} two-input additions ({', '.join(additions[:8]) or 'none'}) and "
            f"{len(keeping)} shape-keeping layers with weights ({', '.join(keeping[:8]) or 'none'}), none of which "
            "holds a residual sum it can see; declare a layer that does with residual_layers=[...] "
            f"(--residual_layers){held}")


def blocks(model: keras.Model, residual_layers: Optional[Sequence[str]] = None) -> List[str]:
    """Names of all residual blocks of ``model``, in graph order.

    Args:
        model: A Keras 3 functional model.
        residual_layers: Layers that are blocks by themselves (see :func:`find_blocks`).

    Returns:
        The block names, e.g. ``["stage1_block1", ...]``.

    Example:
        >>> blocks(tl.models.cifar_resnet(20))[:3]
        ['stage1_block1', 'stage1_block2', 'stage1_block3']
    """
    return [b.name for b in find_blocks(model, residual_layers)]


def removable_blocks(model: keras.Model) -> List[str]:
    """Names of the blocks whose removal keeps every shape valid (see module docstring).

    Args:
        model: A Keras 3 functional model.

    Returns:
        The removable blocks' names, in graph order.

    Example:
        >>> len(removable_blocks(tl.models.cifar_resnet(32)))
        12
    """
    return [b.name for b in find_blocks(model) if b.removable]


def stage_sizes(model: keras.Model) -> Dict[int, int]:
    """How many blocks each stage of ``model`` has (see the module docstring for stages).

    Args:
        model: A Keras 3 functional model.

    Returns:
        ``{stage: number of blocks}``, stages numbered from 1.

    Example:
        >>> stage_sizes(tl.models.cifar_resnet(20))
        {1: 3, 2: 3, 3: 3}
    """
    found: Dict[int, int] = {}
    for b in find_blocks(model):
        found[b.stage] = found.get(b.stage, 0) + 1
    return found


def ineligible(model: keras.Model) -> Dict[str, str]:
    """``{block: why it cannot be removed}`` for every block that is not removable, in graph order.

    A block stays when its shortcut is not the identity (a projection or a padding path), when it
    changes its input's shape, under the paper's rule when its input is not another block's output,
    and when it calls a layer with weights that is also called outside it (a shared layer: removing
    the block would remove one call and keep the other, so the block's weights are not its own).

    Args:
        model: A Keras 3 functional model.

    Returns:
        ``{block name: reason}``, a phrase that follows the block's name (empty when every block is removable).

    Example:
        >>> ineligible(model)["b2"]
        "calls layer 'shared_conv', which block 'b3' also calls (a shared layer goes with all its calls or none)"
    """
    found = find_blocks(model)
    g = graph_lib.analyse(model)
    paper = eligibility_rule(model) == "paper"
    why = {}
    for b in found:
        if b.removable:
            continue
        if b.identity_input is None:
            why[b.name] = "has a shortcut that is not the identity (a projection or a padding path)"
        elif b.input_shape != b.output_shape:
            why[b.name] = f"changes its input's shape from {b.input_shape} to {b.output_shape}"
        elif b.shared:
            why[b.name] = " and ".join(f"calls layer {layer!r}, which {_other_users(g, found, b, layer)} also calls"
                                       for layer in b.shared) + " (a shared layer goes with all its calls or none)"
        elif paper:
            why[b.name] = ("does not take its input from another block's output (the paper's rule, which keeps the "
                           "network's first block)")
    return why


def _other_users(g: graph_lib.Graph, found: List[Block], block: Block, layer: str) -> str:
    """Who else calls shared ``layer``: the smallest other block holding one of its calls, else the rest of the model."""
    others = set(g.calls[layer]) - set(block.layers)
    holders = [o for o in found if o.name != block.name and others & set(o.layers)
               and not set(block.layers) <= set(o.layers)]
    if holders:
        return f"block {min(holders, key=lambda o: len(o.layers)).name!r}"
    return f"a call outside any block ({', '.join(sorted(others, key=g.position))})"


def floor_hint(model: keras.Model, min_blocks_per_stage: int) -> str:
    """What the floor leaves, for an error: the stages' sizes and how to lower the floor.

    Args:
        model: A Keras 3 functional model.
        min_blocks_per_stage: The floor: blocks each stage keeps.

    Returns:
        One sentence for an error message (which blocks can never go, or how to lower the floor).

    Example:
        >>> floor_hint(tl.models.cifar_resnet(20), 2)[:52]
        'every stage keeps min_blocks_per_stage=2 blocks (blo'
    """
    sizes = ", ".join(f"stage {s}: {n}" for s, n in sorted(stage_sizes(model).items()))
    found = find_blocks(model)
    if min_blocks_per_stage == 0 or max_removable(model, 0) == max_removable(model, min_blocks_per_stage):
        # The floor is not what limits: the blocks that cannot go (each stage's first, with a projection
        # or no shortcut, or one sharing a layer) stay whatever the floor.
        why = list(ineligible(model).items())
        listed = "; ".join(f"{name} {reason}" for name, reason in why[:4]) + (" ..." if len(why) > 4 else "")
        return (f"only {sum(b.removable for b in found)} of its {len(found)} blocks are removable ({listed}); "
                "lowering min_blocks_per_stage does not change that")
    return (f"every stage keeps min_blocks_per_stage={min_blocks_per_stage} blocks (blocks per stage: {sizes}); "
            f"lower it with min_blocks_per_stage= (flag --min_blocks_per_stage), 0 lets a stage lose them all")


def max_removable(model: keras.Model, min_blocks_per_stage: int = 2) -> int:
    """How many blocks can be removed in all while every stage keeps its floor.

    Args:
        model: A Keras 3 functional model.
        min_blocks_per_stage: The floor: blocks each stage keeps.

    Returns:
        The largest number of blocks :func:`remove_blocks` accepts at once.

    Example:
        >>> model = tl.models.cifar_resnet(20)
        >>> max_removable(model), max_removable(model, min_blocks_per_stage=0)
        (3, 6)
    """
    all_blocks = find_blocks(model)
    total = 0
    for stage in sorted({b.stage for b in all_blocks}):
        in_stage = [b for b in all_blocks if b.stage == stage]
        eligible = sum(b.removable for b in in_stage)
        total += max(0, min(eligible, len(in_stage) - min_blocks_per_stage))
    return total


def check_removal(model: keras.Model, names: Iterable[str], min_blocks_per_stage: int = 2) -> List[Block]:
    """Validates a removal and returns the blocks to remove, in graph order.

    Args:
        model: A Keras 3 functional model.
        names: The blocks to remove.
        min_blocks_per_stage: The floor: blocks each stage keeps.

    Returns:
        The :class:`Block` of each name, in graph order.

    Raises:
        TypeError: for ``names`` that is a string or holds anything but strings.
        ValueError: for an unknown name, a block that is not removable, a repeated
            name, or a removal that leaves a stage with fewer than
            ``min_blocks_per_stage`` blocks.

    Example:
        >>> [b.name for b in check_removal(model, ["stage1_block3", "stage1_block2"], 1)]
        ['stage1_block2', 'stage1_block3']
    """
    if isinstance(names, str) or not all(isinstance(n, str) for n in names):
        raise TypeError(f"names must be a list of block names, e.g. ['stage1_block2']; got {names!r}")
    names = list(names)
    if min_blocks_per_stage < 0:
        raise ValueError(f"min_blocks_per_stage must be >= 0; got {min_blocks_per_stage}")
    all_blocks = find_blocks(model)
    if not all_blocks:
        raise ValueError(f"{model.name!r} has no residual block, so no block can be removed; {NO_BLOCKS_HINT}; "
                         f"{looked_at(model)}")
    by_name = {b.name: b for b in all_blocks}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ValueError(f"unknown blocks {unknown}; blocks of {model.name}: {list(by_name)}")
    if len(set(names)) != len(names):
        raise ValueError(f"a block is named twice in {names}")
    fixed = [n for n in names if not by_name[n].removable]
    if fixed:
        why = ineligible(model)
        raise ValueError(
            f"blocks {fixed} are not removable (" + "; ".join(f"{n!r} {why[n]}" for n in fixed) +
            f"); removable blocks: {[b.name for b in all_blocks if b.removable]}"
        )
    inside = contained(model)
    for name in names:
        overlap = [n for n in names if n in inside[name]]
        if overlap:
            raise ValueError(f"{overlap} lie inside {name!r}, which is named with them: removing {name!r} removes "
                             f"{inside[name]} already; name either the outer block or the inner ones")
    gone = removed_with(model, names)
    for stage in sorted({by_name[n].stage for n in gone}):
        left = sum(b.stage == stage for b in all_blocks) - sum(by_name[n].stage == stage for n in gone)
        if left < min_blocks_per_stage:
            raise ValueError(
                f"removing {[n for n in gone if by_name[n].stage == stage]} leaves stage {stage} with "
                f"{left} blocks, below the floor: {floor_hint(model, min_blocks_per_stage)}"
            )
    return [b for b in all_blocks if b.name in set(names)]


def contained(model: keras.Model) -> dict:
    """Which blocks lie inside which (an additive U-Net skip around blocks holds them).

    Args:
        model: A Keras 3 functional model.

    Returns:
        ``{block: [the blocks inside it, in graph order]}``, an empty list for most blocks.

    Example:
        >>> contained(unet)["skip"]
        ['mid0', 'mid1']
    """
    found = find_blocks(model)
    layers = {b.name: set(b.layers) for b in found}
    return {b.name: [o.name for o in found if o.name != b.name and layers[o.name] < layers[b.name]] for b in found}


def removed_with(model: keras.Model, names: Iterable[str]) -> List[str]:
    """The blocks that go when ``names`` go: each named block and every block inside it.

    Args:
        model: A Keras 3 functional model.
        names: Blocks to remove.

    Returns:
        Their names and those of the blocks inside them, in graph order.

    Example:
        >>> removed_with(tl.models.cifar_resnet(20), ["stage1_block2"])
        ['stage1_block2']
    """
    inside = contained(model)
    gone = set(names) | {inner for name in names for inner in inside[name]}
    return [b.name for b in find_blocks(model) if b.name in gone]


def remove_blocks(model: keras.Model, names: Sequence[str], min_blocks_per_stage: int = 2,
                  residual_layers: Optional[Sequence[str]] = None) -> keras.Model:
    """Returns a new, smaller model without the blocks ``names``; kept weights are inherited.

    Each removed block's output is replaced by its input; every kept layer with weights is
    cloned with its name and receives its weights from ``model`` bit for bit; layers
    without weights and ``keras.ops`` nodes are reused (see the module docstring).

    Args:
        model: A functional model (e.g. from :func:`tf_lottery.models.cifar_resnet`).
        names: Blocks to remove; each must be in :func:`removable_blocks`.
        min_blocks_per_stage: Blocks each stage must keep (the paper authors' framework: 2).
        residual_layers: Layers that are blocks by themselves (see :func:`find_blocks`).

    Returns:
        A new uncompiled ``keras.Model`` (flat, when ``model`` nests models). ``model`` is
        left untouched.

    Raises:
        ValueError: see :func:`check_removal`; also for a layer with weights that cannot
            be rebuilt from its config.

    Example:
        >>> ticket = remove_blocks(model, ["stage1_block2", "stage3_block4"])
        >>> "stage1_block2" in blocks(ticket)
        False
    """
    if residual_layers:
        find_blocks(model, residual_layers)
    victims = check_removal(model, names, min_blocks_per_stage)
    removed = [b.name for b in victims]
    origin = lineage(model)
    count = len(origin["removed"]) + len(removed) if origin is not None else None
    name = ticket_name(model.name, count) if origin is not None else f"{model.name}_ticket"
    ticket = rewire(model, {b.output_layer: b.input_layer for b in victims}, name=name)
    transfer_weights(model, ticket)
    extend_lineage(model, ticket, removed)
    inside.carry_declarations(model, ticket)
    return ticket


def _shared(layer):
    return layer


def bypassed(model: keras.Model, names: Sequence[str]) -> keras.Model:
    """A view of ``model`` with the blocks ``names`` bypassed (each one's output replaced by its input),
    sharing every layer and variable with ``model``: what removing them does, measured without a copy
    (a layer whose config does not round-trip is fine here).

    Args:
        model: A Keras 3 functional model.
        names: Blocks to bypass.

    Returns:
        A ``keras.Model`` sharing ``model``'s layers, without the named blocks' branches.

    Raises:
        ValueError: for an unknown block name.

    Example:
        >>> without = bypassed(model, ["stage2_block3"])      # scores the removal, changes nothing
    """
    by_name = {b.name: b for b in find_blocks(model)}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ValueError(f"unknown blocks {unknown}; blocks of {model.name}: {list(by_name)}")
    view = rewire(model, {by_name[n].output_layer: by_name[n].input_layer for n in names}, clone=_shared)
    inside.carry_declarations(model, view)
    return view
