"""Same-family tickets: a model of the dense model's own class with fewer blocks, the kept weights moved.

:func:`tf_lottery.surgery.remove_blocks` returns a flat functional model whose layers keep
their names, so a ticket's blocks are still named as in the dense model (iterative
schedules, lineage and run identities rely on it). For a keras_hub model that flat model
is no longer a ``ViTBackbone`` or a ``GPT2CausalLM``: it has no ``generate()``, saves no
preset, and a layer whose config does not round-trip (keras_hub 0.32's
``ViTPatchingAndEmbedding``) makes its ``.keras`` file unloadable.

:func:`family_ticket` builds the same removal as a model of the dense model's class: the
class is rebuilt from its ``get_config()`` with the number of blocks lowered, the kept
blocks receive the removed model's weights in order (block ``j`` of the ticket is the
``j``-th kept block), and every other weight (embeddings, final norms, a task's head) is
moved in the order the class creates it, shapes checked. Keras numbers a family's layers
by position, so the ticket's block names are positional (``transformer_layer_0 ...``): its
lineage keeps the removed blocks' original names, and :func:`kept_blocks` the original name
of each of its blocks.

A *family* says where a class keeps its blocks and which ``__init__`` argument counts them;
a keras_hub task (``ViTImageClassifier``, ``GPT2CausalLM``) is rebuilt around the family
ticket of its backbone. Registered: keras_hub's ``ViTBackbone``; and, by keras_hub's own
convention (:data:`TRANSFORMER_LAYERS`), every model whose ``transformer_layers`` list is as long
as its config's ``num_layers``: GPT-2, Llama and Llama 3, Gemma, BERT, Mistral, Mixtral, Qwen,
Phi-3, OPT, RoBERTa and more. A class that sets its layers by position (Gemma 2's alternating
sliding window) is rebuilt only where every kept layer keeps its settings.

Example:
    >>> result = tl.find_ticket(classifier, "snip", data=batch, num_blocks=2)
    >>> smaller = family_ticket(classifier, result.removed)   # a ViTImageClassifier with 2 fewer layers
    >>> smaller.save("ticket.keras")
"""

from __future__ import annotations

import dataclasses
import re
from typing import Callable, List, Optional, Sequence, Union

import keras

from tf_lottery.core.registry import Registry
from tf_lottery.graph import reader as graph_reader
from tf_lottery.graph.containers import class_path
from tf_lottery.graph.lineage import extend as extend_lineage
from tf_lottery.graph.lineage import record_kept, recorded_kept
from tf_lottery.graph.lineage import ticket_name
from tf_lottery.surgery.residual import check_removal, removable_blocks


@dataclasses.dataclass(frozen=True)
class Family:
    """Where one model class keeps its blocks.

    Attributes:
        blocks: ``model -> its block layers``, in the order the model calls them.
        count: The ``__init__`` argument (a ``get_config()`` key) giving their number.
        per_layer: ``get_config()`` keys that hold one entry per block, by position (keras_hub 0.32's
            SmolLM3: ``layer_types``, ``rope_layer_enabled_list``, read by each layer at its
            ``layer_idx``): a ticket's lists keep its kept blocks' entries, so every kept block keeps
            its settings.

    Example:
        >>> Family(lambda model: list(model.transformer_layers)).count
        'num_layers'
    """

    blocks: Callable[[keras.Model], list]
    count: str = "num_layers"
    per_layer: tuple = ("layer_types", "rope_layer_enabled_list")


FAMILIES: Registry[Family] = Registry("model family")
"""``{"module.Class": Family}`` (:func:`tf_lottery.graph.containers.class_path`)."""


def register(model_class: Union[str, type], blocks: Callable[[keras.Model], list], count: str = "num_layers",
             per_layer: Sequence[str] = Family.per_layer) -> None:
    """Registers a model class whose blocks :func:`family_ticket` can remove.

    Args:
        model_class: The class, or its ``"module.Class"`` path.
        blocks: ``model -> its block layers`` in call order.
        count: The ``get_config()`` key giving the number of blocks.
        per_layer: The ``get_config()`` keys holding one entry per block (:attr:`Family.per_layer`).

    Raises:
        ValueError: if the class is already registered.

    Example:
        >>> register(MyBackbone, lambda model: model.encoder_layers, count="depth")
    """
    key = model_class if isinstance(model_class, str) else class_path(model_class)
    FAMILIES.register(key)(Family(blocks, count, tuple(per_layer)))


register("keras_hub.src.models.vit.vit_backbone.ViTBackbone",
         lambda model: list(model.get_layer("vit_encoder").encoder_layers))

TRANSFORMER_LAYERS = Family(lambda model: list(model.transformer_layers))
"""keras_hub's convention, which its language backbones follow (31 of them in keras_hub 0.32):
the blocks are ``model.transformer_layers`` and ``num_layers`` counts them."""


def _follows_convention(model) -> bool:
    layers = getattr(model, "transformer_layers", None)
    if not isinstance(layers, (list, tuple)) or not layers:
        return False
    if not all(isinstance(layer, keras.layers.Layer) for layer in layers):
        return False
    try:
        config = model.get_config()
    except (NotImplementedError, AttributeError, TypeError):  # a model that cannot be rebuilt from its config
        return False
    return config.get("num_layers") == len(layers)


def family_of(model) -> Optional[Family]:
    """The family of ``model``'s class, or None.

    The family registered for its class, else for the nearest registered class it derives from
    (keras_hub's ``Llama3Backbone`` is a ``LlamaBackbone``), else :data:`TRANSFORMER_LAYERS`
    when ``model`` follows keras_hub's convention (a ``transformer_layers`` list as long as its
    config's ``num_layers``: ``MistralBackbone``, ``QwenBackbone``, ``OPTBackbone``, ...).

    Args:
        model: Any model.

    Returns:
        A :class:`Family`, or None.

    Example:
        >>> family_of(tl.models.cifar_resnet(20)) is None
        True
    """
    for cls in type(model).__mro__:
        if class_path(cls) in FAMILIES:
            return FAMILIES.get(class_path(cls))
    return TRANSFORMER_LAYERS if isinstance(model, keras.Model) and _follows_convention(model) else None


def _backbone(model):
    """``(backbone, family)``: ``model`` itself when its class is registered, a task's backbone otherwise."""
    if family_of(model) is not None:
        return model, family_of(model)
    inner = getattr(model, "backbone", None)
    if isinstance(inner, keras.Model) and family_of(inner) is not None:
        return inner, family_of(inner)
    return None, None


def has_family(model) -> bool:
    """Whether :func:`family_ticket` can rebuild ``model`` (its class, or its backbone's, is registered).

    Args:
        model: Any model.

    Returns:
        True for a registered family's model, or a task around one.

    Example:
        >>> has_family(keras_hub.models.GPT2Backbone(vocabulary_size=64, num_layers=2, num_heads=2,
        ...     hidden_dim=8, intermediate_dim=16, max_sequence_length=16))
        True
    """
    return _backbone(model)[0] is not None


def block_model(model) -> keras.Model:
    """The model whose graph surgery reads for ``model``'s blocks: a registered family's task's backbone
    (a causal LM's task graph calls its tied embedding twice, which surgery cannot read), else ``model``.

    Args:
        model: Any model.

    Returns:
        The backbone of a task whose backbone has a family, else ``model``.

    Example:
        >>> block_model(gpt2_lm) is gpt2_lm.backbone
        True
    """
    backbone, _ = _backbone(model)
    return backbone if backbone is not None else model


def kept_blocks(model) -> List[str]:
    """The original name of each block of a family ticket, in order (its own names are positional).

    Args:
        model: A family's model or ticket.

    Returns:
        What the ticket recorded; for a model cut from nothing, its blocks' own names (empty without
        a family).

    Example:
        >>> kept_blocks(smaller)
        ['transformer_layer_0', 'transformer_layer_2', 'transformer_layer_3']
    """
    recorded = recorded_kept(model)
    if recorded is not None:
        return recorded["kept"]
    backbone, family = _backbone(model)
    return [layer.name for layer in family.blocks(backbone)] if family else []


def _move(targets: list, sources: list, what: str) -> None:
    """Copies ``sources`` into ``targets`` in order, checking that they are the same weights one for one."""
    if len(targets) != len(sources):
        raise ValueError(f"{what}: {len(targets)} weights to fill from {len(sources)}; the family's layers are not "
                         "created alike")
    for new, old in zip(targets, sources):
        if tuple(new.shape) != tuple(old.shape) or new.name != old.name:
            raise ValueError(f"{what}: weight {new.path} {tuple(new.shape)} does not match {old.path} "
                             f"{tuple(old.shape)}; the family's layers are not created in the same order")
        new.assign(old.value)


class PositionRefusal(ValueError):
    """A family ticket refused because a kept block would take another block's position-set settings.

    Args:
        message: The one-line reason.
        old: See the attribute.
        new: See the attribute.

    Example:
        >>> try:
        ...     family_ticket(gemma2_lm, ["decoder_block_0"])
        ... except PositionRefusal as refusal:
        ...     len(refusal.old) - len(refusal.new)
        1

    Attributes:
        old: The settings of each of the dense model's blocks, in order.
        new: The settings of each block of a rebuilt model of as many blocks as the ticket, by position.
    """

    def __init__(self, message: str, old: List[dict], new: List[dict]):
        super().__init__(message)
        self.old, self.new = old, new


INDEX_SETTINGS = ("layer_idx", "layer_index")
"""A block's own position, which only indexes its family's per-layer lists (:attr:`Family.per_layer`):
not a setting that must be kept where those lists move with their blocks."""


def _per_layer_lists(config: dict, family: Family, count: int, kept: Sequence[int]) -> dict:
    """The config's per-layer lists (:attr:`Family.per_layer`, as long as the blocks) with the kept blocks' entries."""
    return {key: [config[key][i] for i in kept] for key in family.per_layer
            if isinstance(config.get(key), (list, tuple)) and len(config[key]) == count}


def _rebuild_backbone(backbone, family: Family, kept: Sequence[int], model, name: str):
    config = backbone.get_config()
    if family.count not in config:
        raise ValueError(f"{class_path(type(backbone))} has no {family.count!r} in its config; its family is "
                         "registered with the wrong count argument")
    old_blocks = family.blocks(backbone)
    lists = _per_layer_lists(config, family, len(old_blocks), kept)
    new = type(backbone).from_config({**config, family.count: len(kept), **lists, "name": name})
    new_blocks = family.blocks(new)
    ignored = INDEX_SETTINGS if lists else ()
    _check_settings_kept(backbone, old_blocks, kept, model, [_layer_settings(b, ignored) for b in old_blocks],
                         [_layer_settings(b, ignored) for b in new_blocks])
    for j, i in enumerate(kept):
        _move(list(new_blocks[j].weights), list(old_blocks[i].weights), f"block {old_blocks[i].name}")
    return new, old_blocks


def _layer_settings(layer, ignored: Sequence[str] = ()) -> dict:
    """The public numbers, strings and flags a layer keeps as attributes: what its constructor set.

    Read from the attributes rather than ``get_config()``, which some layers cannot give
    (keras_hub 0.32's ``LlamaTransformerDecoder`` names an attribute it never sets).
    """
    return {key: value for key, value in vars(layer).items()
            if not key.startswith("_") and key != "name" and key not in ignored
            and isinstance(value, (bool, int, float, str, type(None)))}


def _check_settings_kept(backbone, old_blocks, kept: Sequence[int], model, old: List[dict], new: List[dict]) -> None:
    """Refuses a rebuild in which a kept block would run with other settings than it had.

    A class may set each layer by its position: Gemma 2 (``GemmaBackbone`` with
    ``use_sliding_window_attention``) alternates local and global attention, Gemma 3 makes
    every sixth layer global. Rebuilt with fewer layers, the layer after a removed one takes
    its predecessor's position and settings, and the ticket would compute something else
    with the right weights. ``old`` and ``new`` are the settings of every dense block and of every
    rebuilt block, by position. The refusal (a :class:`PositionRefusal`, which :func:`position_rule`
    reads) says how to cut a flat ticket of ``model`` (the model being cut: the backbone, or a task
    around it) instead.
    """
    for position, i in enumerate(kept):
        before, after = old[i], new[position]
        changed = sorted(key for key in set(before) | set(after) if before.get(key) != after.get(key))
        if changed:
            what = ", ".join(f"{key}={after.get(key)!r} (it has {before.get(key)!r})" for key in changed)
            raise PositionRefusal(
                f"{type(backbone).__name__} sets its layers by position: {old_blocks[i].name!r} would be the "
                f"ticket's layer {position} with {what}. Remove layers that leave every kept layer its settings "
                "(whole periods of the pattern, such as two consecutive layers of an alternating one, or the last "
                f"layers), or cut a flat ticket, which keeps each layer as it is: {_flat_way(model)}", old, new)


def position_rule(model, refusal: PositionRefusal) -> Callable[[set, set], bool]:
    """Which removals a family that sets its layers by position allows, read from a refusal.

    Args:
        model: The model the refused ticket was cut from (a backbone, or a task around it).
        refusal: What :func:`family_ticket` raised for a removal of as many blocks.

    Returns:
        ``allowed(removed, kept) -> bool``: whether some removal of that many blocks that removes every
        block of ``removed`` and keeps every block of ``kept`` (the blocks that are not removable kept
        too) leaves every kept block its settings. :func:`tf_lottery.tickets.select` takes it as
        ``allowed=`` to choose the best-scored removal the family allows.

    Example:
        >>> try:
        ...     family_ticket(gemma2, ["decoder_block_1"])
        ... except PositionRefusal as refusal:
        ...     allowed = position_rule(gemma2, refusal)
        >>> allowed({"decoder_block_3"}, set()), allowed({"decoder_block_1"}, set())
        (True, False)
    """
    backbone, family = _backbone(model)
    order = [layer.name for layer in family.blocks(backbone)]
    removable = set(removable_blocks(backbone))
    old, new = refusal.old, refusal.new

    def allowed(removed: set, kept: set) -> bool:
        reachable = {0}  # how many blocks are kept so far, over every choice that fits the settings
        for i, name in enumerate(order):
            may_remove = name in removed or (name in removable and name not in kept)
            may_keep = name not in removed
            reachable = ({j for j in reachable if may_remove}
                         | {j + 1 for j in reachable if may_keep and j < len(new) and old[i] == new[j]})
        return len(new) in reachable
    return allowed


def flat_refusal(model) -> Optional[str]:
    """Why block surgery cannot cut ``model`` flat although its family can cut it in its own class
    (the graph reader's refusal of the task's graph), or None. A causal LM whose head calls its
    backbone's token embedding again (tied weights) is read call by call and cut flat.

    Args:
        model: Any model.

    Returns:
        The reason (the graph reader's error), or None.

    Example:
        >>> flat_refusal(gpt2_lm)            # None: the shared embedding lies outside every block
    """
    backbone, _ = _backbone(model)
    if backbone is None or backbone is model:
        return None
    try:
        graph_reader.analyse(model)
    except ValueError as error:
        return str(error)
    return None


def _flat_way(model) -> str:
    """How a flat ticket of ``model`` is cut: of the model itself, or of a task's backbone only."""
    refusal = flat_refusal(model)
    if refusal is None:
        return "tl.surgery.remove_blocks(model, names), or tl.find_ticket(..., same_family=False)"
    return (f"of its backbone only, tl.surgery.remove_blocks(model.backbone, names) (a {type(model).__name__} is "
            f"cut in its own class only: {refusal})")


def _rest(model, blocks) -> list:
    """``model``'s weights that are not its blocks', in creation order."""
    inside = {id(v) for block in blocks for v in block.weights}
    return [v for v in model.weights if id(v) not in inside]


def _snake(name: str) -> str:
    """A class name as Keras names its instances: ``GPT2CausalLM`` -> ``gpt2_causal_lm``."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", re.sub(r"\W+", "", name))
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def stable_name(model) -> str:
    """``model``'s name without the counter Keras adds to a name it gave itself (``gpt2_causal_lm_1`` ->
    ``gpt2_causal_lm``): a family ticket is named after its dense model and its number of removed blocks,
    as a functional ticket is (``gpt2_causal_lm_minus2``), whatever else the process built before. A name
    the user gave is kept.

    Args:
        model: A Keras model.

    Returns:
        Its name without an automatic counter.

    Example:
        >>> stable_name(keras_hub.models.GPT2CausalLM(backbone, preprocessor=None))  # a second one: ..._1
        'gpt2_causal_lm'
    """
    automatic = _snake(type(model).__name__)
    return automatic if re.fullmatch(re.escape(automatic) + r"(_\d+)?", model.name) else model.name


def family_ticket(model: keras.Model, names: Sequence[str], min_blocks_per_stage: int = 0) -> keras.Model:
    """Returns ``model`` without the blocks ``names``, as a model of ``model``'s own class.

    Args:
        model: A model of a registered family, or a keras_hub task around one.
        names: Blocks to remove, as :func:`tf_lottery.surgery.blocks` names them.
        min_blocks_per_stage: Blocks each stage must keep (a transformer has one stage).

    Returns:
        A new model of ``type(model)``: the kept blocks' weights and every other weight bit
        for bit; its lineage (when ``model`` has one) adds ``names``.

    Raises:
        ValueError: for a class that is not registered, a name that is not a block of the
            family, the removals :func:`tf_lottery.surgery.check_removal` refuses, or a removal
            after which a kept layer would run with other settings (a class that sets its
            layers by position, such as Gemma 2's alternating sliding window).

    Example:
        >>> smaller = family_ticket(gpt2_lm, ["transformer_layer_1"])
        >>> smaller.backbone.num_layers
        2
    """
    backbone, family = _backbone(model)
    if family is None:
        raise ValueError(f"{type(model).__name__} {model.name!r} is not a registered model family; registered: "
                         f"{FAMILIES.names()} and any model whose transformer_layers list is as long as its config's "
                         "num_layers (tf_lottery.surgery.families.register adds one); remove_blocks "
                         "gives a flat functional ticket of any model")
    check_removal(backbone, names, min_blocks_per_stage)
    order = [layer.name for layer in family.blocks(backbone)]
    outside = [n for n in names if n not in order]
    if outside:
        raise ValueError(f"blocks {outside} are not among {type(backbone).__name__}'s layers {order}")
    kept = [i for i, name in enumerate(order) if name not in set(names)]
    original = kept_blocks(model)
    removed = [original[order.index(n)] for n in names]
    earlier = (recorded_kept(model) or {}).get("removed", [])
    count = len(earlier) + len(removed)
    new_backbone, old_blocks = _rebuild_backbone(backbone, family, kept, model,
                                                 ticket_name(stable_name(backbone), count))
    _move(_rest(new_backbone, family.blocks(new_backbone)), _rest(backbone, old_blocks), type(backbone).__name__)
    if backbone is model:
        ticket = new_backbone
    else:
        ticket = type(model).from_config({**model.get_config(), "backbone": new_backbone,
                                          "name": ticket_name(stable_name(model), count)})
        _move(_rest(ticket, [new_backbone]), _rest(model, [backbone]), type(model).__name__)
    record_kept(ticket, [original[i] for i in kept], earlier + removed)
    extend_lineage(model, ticket, removed)
    return ticket

