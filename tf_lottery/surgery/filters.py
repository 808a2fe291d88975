"""Filter surgery: find the prunable filters of residual blocks, score them, remove them physically.

The baseline of the paper's Table 3 ("standard structured LTH"): filter tickets at
initialization, with the filter count matched to a layer ticket's.

*Prunable* filters follow the paper authors' framework (github.com/arturjordao/DeepPruning,
``rebuild_filters.py``): only channels *inside* a residual branch, never one that feeds an
``Add`` (its width is fixed by the shortcut). A :class:`FilterGroup` is a conv of a block's
branch whose output reaches the next conv of the branch only through channel-wise layers
(BatchNormalization, ReLU, Activation, Dropout): in a basic block, ``conv1`` (including
the strided ``conv1`` of a downsampling block); in a bottleneck block, the first two convs.
A group never holds a layer called more than once (a shared layer): its filters serve every call.

Removal is physical: a new, narrower model in which the group's conv keeps only the kept
filters (kernel and bias sliced on the output axis), its BatchNorm keeps the same four
vectors' entries, and the consumer conv keeps the matching input channels. Every other
weight is copied bit for bit. A filter is named ``"<conv>:<index>"`` (index in the dense
conv), so a removal is a list of names, like a block removal.

Per-filter scores (:func:`tf_lottery.criteria.filter_scores`, each criterion's per-filter
form) come from the per-weight scores the block criteria compute (SNIP's
``|w * dL/dw|``, GraSP's ``-w * Hg``, magnitude's ``|w|``), reduced over the filter's
kernel slice (``kh x kw x c_in`` weights) by the same ``aggregation`` (mean by default:
convs of different fan-in stay comparable in one global ranking; ``sum`` is the filter's
total, for magnitude its L1 norm, Li et al. 2017). After training, ``expectabs`` and
``hrank`` score a filter by its own post-activation feature map. ``random`` is seeded per
filter name.

Example:
    >>> scores = tl.criteria.filter_scores(model, "snip", (x, y))
    >>> removed = select_filters(model, scores, 32, prune_first="low")
    >>> ticket = remove_filters(model, removed)
    >>> tl.cost.count_filters(ticket)
    1200
"""

from __future__ import annotations

import dataclasses
import re
from typing import Dict, Iterable, List, Mapping

import keras
import numpy as np

from tf_lottery.graph import reader as graph
from tf_lottery.surgery import residual as surgery
from tf_lottery.graph.lineage import attach as attach_lineage
from tf_lottery.graph.lineage import lineage

#: Layers that act on each channel alone: a filter can be removed across them.
CHANNELWISE = (keras.layers.BatchNormalization, keras.layers.ReLU, keras.layers.Activation, keras.layers.Dropout)
#: How filters are ranked for removal: ``global`` (one ranking over all groups) or ``layerwise`` (the same share from each group).
RANKINGS = ("global", "layerwise")


@dataclasses.dataclass(frozen=True)
class FilterGroup:
    """Filters of one conv that can be removed, and the layers their removal touches.

    Attributes:
        conv: The conv whose output filters can be removed.
        followers: The channel-wise layers between it and ``consumer``, in order.
        consumer: The conv that reads those channels (loses the same input channels).
        block: The residual block it belongs to.
        filters: Its number of filters.

    Example:
        >>> filter_groups(tl.models.cifar_resnet(20))[1]
        FilterGroup(conv='stage1_block2_conv1', followers=('stage1_block2_bn1', 'stage1_block2_relu1'), consumer='stage1_block2_conv2', block='stage1_block2', filters=16)
    """

    conv: str
    followers: tuple
    consumer: str
    block: str
    filters: int

    def name(self, index: int) -> str:
        """The name of filter ``index``: ``"stage1_block2_conv1:7"``."""
        return f"{self.conv}:{index}"


def _consumers(model: keras.Model) -> Dict[str, List[str]]:
    return {name: list(names) for name, names in graph.analyse(model).consumers.items()}


def _plain_conv(layer) -> bool:
    return (isinstance(layer, keras.layers.Conv2D) and not isinstance(layer, keras.layers.DepthwiseConv2D)
            and layer.groups == 1 and layer.data_format == "channels_last")


def filter_groups(model: keras.Model) -> List[FilterGroup]:
    """The prunable filter groups of ``model``, in graph order (see the module docstring).

    Args:
        model: A Keras 3 functional residual network.

    Returns:
        A :class:`FilterGroup` for each conv whose filters can be removed.

    Raises:
        TypeError: if ``model`` is not a functional Keras 3 model.

    Example:
        >>> [g.conv for g in filter_groups(tl.models.cifar_resnet(20))][:2]
        ['stage1_block1_conv1', 'stage1_block2_conv1']
    """
    consumers = _consumers(model)
    shared = set(graph.analyse(model).calls)  # a layer called more than once: its filters serve every call
    groups = []
    for block in surgery.find_blocks(model):
        branch = set(block.branch)
        for name in block.branch:
            layer = graph.operation(model, name)
            if not _plain_conv(layer) or layer.name in shared:
                continue
            followers, current = [], name
            while len(consumers[current]) == 1 and consumers[current][0] in branch:
                nxt = graph.operation(model, consumers[current][0])
                if nxt.name in shared:
                    break
                if _plain_conv(nxt):
                    groups.append(FilterGroup(name, tuple(followers), nxt.name, block.name, int(layer.filters)))
                    break
                if not isinstance(nxt, CHANNELWISE) or (
                        isinstance(nxt, keras.layers.BatchNormalization) and nxt.axis not in (-1, 3, [-1], [3])):
                    break
                followers.append(nxt.name)
                current = nxt.name
    return groups


def count_prunable(model: keras.Model) -> int:
    """Filters in all groups of ``model`` (those a filter ticket chooses from).

    Args:
        model: A Keras 3 functional residual network.

    Returns:
        The number of prunable filters.

    Example:
        >>> count_prunable(tl.models.cifar_resnet(20))
        336
    """
    return sum(g.filters for g in filter_groups(model))


def max_removable(model: keras.Model) -> int:
    """Filters that can be removed in all: every group keeps at least one.

    Args:
        model: A Keras 3 functional residual network.

    Returns:
        The prunable filters less one per group.

    Example:
        >>> max_removable(tl.models.cifar_resnet(20))
        327
    """
    return sum(g.filters - 1 for g in filter_groups(model))


def parse_name(name: str) -> tuple:
    """Splits a filter's name into its conv and index.

    Args:
        name: A filter name, ``"<conv>:<index>"``.

    Returns:
        ``(conv name, index)``.

    Raises:
        ValueError: for a name without ``:<index>``.

    Example:
        >>> parse_name("stage1_block2_conv1:7")
        ('stage1_block2_conv1', 7)
    """
    conv, _, index = str(name).rpartition(":")
    if not conv or not index.isdigit():
        raise ValueError(f"a filter is named '<conv layer>:<index>', e.g. 'stage1_block2_conv1:7'; got {name!r}")
    return conv, int(index)


def check_removal(model: keras.Model, names: Iterable[str]) -> Dict[str, List[int]]:
    """Validates filter names against ``model``'s groups.

    Args:
        model: A Keras 3 functional residual network.
        names: Filter names, ``"<conv>:<index>"``.

    Returns:
        ``{conv: sorted removed indices}``.

    Raises:
        ValueError: for a malformed or unknown filter, one named twice, or a conv left without
            filters.

    Example:
        >>> check_removal(model, ["stage1_block2_conv1:7", "stage1_block2_conv1:3"])
        {'stage1_block2_conv1': [3, 7]}
    """
    groups = {g.conv: g for g in filter_groups(model)}
    removed: Dict[str, List[int]] = {}
    for name in names:
        conv, index = parse_name(name)
        if conv not in groups:
            raise ValueError(f"{conv!r} has no prunable filters; prunable convs of {model.name}: {sorted(groups)}")
        if index >= groups[conv].filters:
            raise ValueError(f"filter {name!r} does not exist: {conv} has {groups[conv].filters} filters")
        removed.setdefault(conv, []).append(index)
    for conv, indices in removed.items():
        if len(set(indices)) != len(indices):
            raise ValueError(f"a filter of {conv} is named twice")
        if len(indices) >= groups[conv].filters:
            raise ValueError(f"removing all {groups[conv].filters} filters of {conv}: every conv keeps at least one")
        indices.sort()
    return removed


# --- scores -------------------------------------------------------------------------------

# --- selection ----------------------------------------------------------------------------

def select_filters(model: keras.Model, scores: Mapping[str, np.ndarray], count: int, prune_first: str = "low",
                   ranking: str = "global") -> List[str]:
    """Picks exactly ``count`` filters to remove; every conv keeps at least one.

    ``ranking="global"`` ranks every prunable filter of the network at once (as SNIP and
    GraSP rank weights); ``"layerwise"`` first removes from each conv its share of
    ``count`` (proportional to its width, rounded down, the paper authors' per-layer
    rate) by its own ranking, then tops up to the exact count by the global ranking.
    Ties break by graph order and index, so the pick is deterministic.

    Args:
        model: The network the scores belong to.
        scores: ``{conv: one score per filter}`` (from :func:`filter_scores`).
        count: Filters to remove.
        prune_first: "low" (lowest scores first) or "high" (GraSP).
        ranking: "global" or "layerwise".

    Returns:
        Filter names in removal order.

    Raises:
        ValueError: for a bad ``prune_first`` or ``ranking``, a missing score, or a count that
            cannot be met (naming the maximum).

    Example:
        >>> scores = {g.conv: np.arange(g.filters, dtype=float) for g in filter_groups(model)}
        >>> select_filters(model, scores, 3)   # ties at 0: graph order
        ['stage1_block1_conv1:0', 'stage1_block2_conv1:0', 'stage1_block3_conv1:0']
    """
    if prune_first not in ("low", "high"):
        raise ValueError(f"prune_first must be 'low' or 'high'; got {prune_first!r}")
    if ranking not in RANKINGS:
        raise ValueError(f"filter ranking must be one of {RANKINGS}; got {ranking!r}")
    groups = filter_groups(model)
    check_count(model, count, groups)
    missing = [g.conv for g in groups if g.conv not in scores or len(scores[g.conv]) != g.filters]
    if missing:
        raise ValueError(f"no score (or not one per filter) for the prunable convs {missing}")
    sign = 1.0 if prune_first == "low" else -1.0
    order = {g.conv: i for i, g in enumerate(groups)}
    ranked = sorted(((sign * float(scores[g.conv][i]), order[g.conv], i, g) for g in groups for i in range(g.filters)),
                    key=lambda item: item[:3])
    left = {g.conv: g.filters for g in groups}
    picked: List[str] = []
    chosen: set = set()

    def take(entries, limit):
        """Picks from ``entries`` in order until ``limit`` are picked; every conv keeps one filter."""
        for _, _, index, group in entries:
            if len(picked) == limit:
                break
            name = group.name(index)
            if left[group.conv] > 1 and name not in chosen:
                picked.append(name)
                chosen.add(name)
                left[group.conv] -= 1

    if ranking == "layerwise":
        total = sum(g.filters for g in groups)
        for group in groups:
            share = min(group.filters - 1, count * group.filters // total)
            take([e for e in ranked if e[3] is group], len(picked) + share)
    take(ranked, count)
    return picked


def check_count(model: keras.Model, count: int, groups=None) -> int:
    """Checks that ``count`` filters can be removed from ``model``.

    Args:
        model: A Keras 3 functional residual network.
        count: Filters to remove.
        groups: ``model``'s :func:`filter_groups`, when already found.

    Returns:
        ``count``.

    Raises:
        ValueError: for a negative count or more than can be removed (naming the maximum).

    Example:
        >>> check_count(tl.models.cifar_resnet(20), 10)
        10
    """
    groups = filter_groups(model) if groups is None else groups
    most = sum(g.filters - 1 for g in groups)
    if count < 0:
        raise ValueError(f"the number of filters to remove must be >= 0; got {count}")
    if count > most:
        raise ValueError(f"cannot remove {count} filters from {model.name}: at most {most} of its "
                         f"{sum(g.filters for g in groups)} prunable filters can go (every conv keeps one)")
    return count


# --- removal ------------------------------------------------------------------------------

def remove_filters(model: keras.Model, names: Iterable[str]) -> keras.Model:
    """Returns a new, narrower model without the filters ``names``; every kept weight is inherited.

    Args:
        model: A functional model.
        names: Filter names ``"<conv>:<index>"`` (indices in ``model``'s convs).

    Returns:
        A new uncompiled ``keras.Model``; ``model`` is left untouched.

    Raises:
        ValueError: see :func:`check_removal`.

    Example:
        >>> ticket = remove_filters(model, ["stage1_block2_conv1:3", "stage3_block1_conv1:0"])
        >>> ticket.get_layer("stage1_block2_conv1").filters
        15
    """
    removed = check_removal(model, names)
    groups = {g.conv: g for g in filter_groups(model)}
    keep = {conv: np.setdiff1d(np.arange(groups[conv].filters), indices) for conv, indices in removed.items()}

    def clone(layer):
        config = layer.get_config()
        if layer.name in keep:
            config["filters"] = int(keep[layer.name].size)
        return layer.__class__.from_config(config)

    narrow = keras.models.clone_model(model, clone_function=clone)
    total = _removed_in_all(model, removed)
    narrow = keras.Model(narrow.input, narrow.output, name=_ticket_name(model.name, total))
    sliced = _sliced_weights(model, groups, keep)
    for layer in narrow.layers:
        if layer.weights:
            layer.set_weights(sliced.get(layer.name) or graph.operation(model, layer.name).get_weights())
    _extend_lineage(model, narrow, removed)
    return narrow


def _sliced_weights(model, groups, keep) -> Dict[str, list]:
    sliced: Dict[str, list] = {}
    for conv, kept in keep.items():
        group = groups[conv]
        sliced[conv] = [w[..., kept] for w in graph.operation(model, conv).get_weights()]  # kernel, bias: last axis
        for name in group.followers:
            values = graph.operation(model, name).get_weights()
            if values:  # BatchNorm: gamma, beta, moving mean, moving variance (1-D, one per channel)
                sliced[name] = [v[kept] for v in values]
        consumer = sliced.get(group.consumer) or graph.operation(model, group.consumer).get_weights()
        sliced[group.consumer] = [consumer[0][:, :, kept, :], *consumer[1:]]
    return sliced


def _removed_in_all(model: keras.Model, removed: Mapping[str, List[int]]) -> int:
    """Filters ``model``'s lineage already lacks plus those removed now."""
    origin = lineage(model) or {}
    return sum(len(v) for v in origin.get("filters", {}).values()) + sum(len(v) for v in removed.values())


def _ticket_name(name: str, total: int) -> str:
    """``resnet32`` -> ``resnet32_minus32f``; a layer ticket ``resnet32_minus1`` -> ``resnet32_minus1_32f``."""
    base = re.sub(r"_(minus)?\d+f$", "", name)
    return f"{base}_{total}f" if "_minus" in base else f"{base}_minus{total}f"


def _extend_lineage(source: keras.Model, ticket: keras.Model, removed: Mapping[str, List[int]]) -> None:
    """Adds the removed filters (as indices of the dense convs) to the lineage of ``ticket``."""
    origin = lineage(source)
    if origin is None:
        return
    filters = dict(origin.get("filters", {}))
    for conv, indices in removed.items():
        if conv in filters:  # indices are of ``source``'s conv: map them back to the dense conv's
            alive = np.setdiff1d(np.arange(len(filters[conv]) + int(source.get_layer(conv).filters)),
                                 filters[conv])
            indices = sorted(filters[conv] + [int(alive[i]) for i in indices])
        filters[conv] = [int(i) for i in indices]
    attach_lineage(ticket, origin["builder"], origin["spec"], origin["removed"], filters=filters)


# --- silencing (what removal does, expressed on the dense model) ----------------------------

def filter_masks(model: keras.Model, names: Iterable[str]) -> Dict[str, Dict[str, np.ndarray]]:
    """Per-variable 0/1 masks that silence the filters ``names`` in ``model`` without removing them.

    A removed filter's conv kernel slice and bias entry, and its BatchNorm gamma and beta, are
    masked: with only the kernel masked, the bias and BatchNorm beta would still pass a
    constant to the next conv. In inference mode the masked model computes exactly what
    :func:`remove_filters` returns.

    Args:
        model: A Keras 3 functional residual network.
        names: Filter names, ``"<conv>:<index>"``.

    Returns:
        ``{layer name: {"kernel"|"bias"|"gamma"|"beta": float32 array shaped like it}}``.

    Raises:
        ValueError: see :func:`check_removal`.

    Example:
        >>> masks = filter_masks(dense, ["stage1_block2_conv1:3"])
        >>> masks["stage1_block2_conv1"]["kernel"][..., 3].max()
        0.0
    """
    removed = check_removal(model, names)
    groups = {g.conv: g for g in filter_groups(model)}
    masks: Dict[str, Dict[str, np.ndarray]] = {}
    for conv, indices in removed.items():
        layer = graph.operation(model, conv)
        masks[conv] = {"kernel": np.ones(layer.kernel.shape, "float32")}
        masks[conv]["kernel"][..., indices] = 0
        if layer.use_bias:
            masks[conv]["bias"] = np.ones(layer.bias.shape, "float32")
            masks[conv]["bias"][indices] = 0
        for name in groups[conv].followers:
            norm = graph.operation(model, name)
            if isinstance(norm, keras.layers.BatchNormalization):
                masks[name] = {}
                for attr, present in (("gamma", norm.scale), ("beta", norm.center)):
                    if present:
                        masks[name][attr] = np.ones(getattr(norm, attr).shape, "float32")
                        masks[name][attr][indices] = 0
    return masks


def apply_masks(model: keras.Model, masks: Mapping[str, Mapping[str, np.ndarray]]) -> None:
    """Multiplies ``model``'s variables by ``masks`` in place (any per-variable masks: these of
    :func:`filter_masks`, or IMP's kernel masks).

    Args:
        model: The model whose variables are masked.
        masks: ``{layer name: {variable attribute: 0/1 array shaped like it}}``.

    Example:
        >>> apply_masks(dense, filter_masks(dense, ["stage1_block2_conv1:3"]))   # silences that filter
    """
    for layer_name, by_weight in masks.items():
        layer = graph.operation(model, layer_name)
        for attr, mask in by_weight.items():
            variable = getattr(layer, attr)
            variable.assign(variable.numpy() * np.asarray(mask, dtype=variable.dtype))
