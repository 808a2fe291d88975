"""``filters``: filter tickets, the paper's Table 3 baseline ("standard structured LTH").

Scores every prunable filter (the block-internal channels, :mod:`tf_lottery.surgery.filters`)
with the run's criterion and removes the weakest physically. How many:

* ``--match=layers`` (default, the paper's protocol, its Section 4): as many as the layer
  ticket with the same p, criterion and data removes, so both tickets have exactly the
  same number of filters (ResNet32: 1,200 after one stage-1 block, 1,168 after two);
* ``--match=none``: ``--num_filters``.

Ranking is global by default (``--filter_ranking``; ``layerwise`` is the paper authors'
per-layer rate topped up to the exact count).
"""

from __future__ import annotations

import dataclasses
from typing import Optional

from tf_lottery import criteria
from tf_lottery.core.options import choice, integer
from tf_lottery.graph import cost
from tf_lottery.surgery import filters as filters_lib
from tf_lottery.tickets.blocks import blocks
from tf_lottery.tickets.find import TicketResult, resolve_count
from tf_lottery.tickets.registry import register

MATCHES = ("layers", "none")
FIELDS = ("criterion", "num_blocks", "fraction", "min_blocks_per_stage", "aggregation", "prune_first",
          "score_per_class", "residual_layers", "rewind", "rewind_epoch", "rewind_step")


@dataclasses.dataclass(frozen=True)
class FiltersSettings:
    """The options of ``filters`` and ``filter_masks`` (how many filters, and how they are ranked)."""

    match: str = choice("layers", MATCHES, "filters: remove as many filters as the layer ticket with the same p "
                        "and criterion (the paper's Table 3), or --num_filters.")
    num_filters: Optional[int] = integer(None, "filters, --match=none: filters to remove.", lower_bound=1)
    filter_ranking: str = choice("global", filters_lib.RANKINGS, "filters: rank all prunable filters at once, or "
                                 "give each conv its share first (the paper authors' per-layer rate).")


def check(model, method) -> None:
    """Fails (ValueError) for a criterion without a per-filter form, or a count that cannot be removed."""
    criteria.filter_criterion(method.criterion)
    if method.match == "layers":
        resolve_count(model, method.num_blocks, method.fraction, method.min_blocks_per_stage)
    elif method.num_filters is None:
        raise ValueError("--match=none needs --num_filters (the number of filters to remove)")
    else:
        filters_lib.check_count(model, method.num_filters)


def apply(model, ticket, method):
    """``model`` without the filters ``ticket`` (a :class:`~tf_lottery.results.records.TicketRecord`) removed."""
    return filters_lib.remove_filters(model, ticket.removed)


def target_count(model, data, method, seed: int = 0) -> tuple:
    """How many filters to remove, and the details of how that number was found.

    Returns:
        ``(count, details)``; for ``match="layers"`` the details name the layer ticket's
        blocks and filter count.
    """
    if method.match == "none":
        return method.num_filters, {"match": "none", "num_filters": method.num_filters}
    layers = blocks(model, data, method, seed)
    depthwise = cost.count_depthwise_filters(model) - cost.count_depthwise_filters(layers.model)
    if depthwise:
        raise ValueError(f"the layer ticket removes {', '.join(layers.removed)}, which hold {depthwise} depthwise "
                         "filters; a filter ticket removes block-internal Conv2D filters only, so matching the filter "
                         "count would not compare like with like: compare this model's layer ticket by accuracy "
                         "and cost alone, or give --match=none --num_filters=N")
    target = cost.count_filters(layers.model, depthwise=False)
    return cost.count_filters(model, depthwise=False) - target, {
        "match": "layers", "target_filters": target, "layer_ticket_removed": list(layers.removed)}


@register("filters", check=check, apply=apply, fields=FIELDS, unit="filters", settings=FiltersSettings,
          summary="remove block-internal filters, as many as the layer ticket removes (the paper's Table 3)")
def filters(model, data, method, seed: int = 0) -> TicketResult:
    """Scores ``model``'s prunable filters with ``method.criterion`` and removes the weakest.

    Args:
        model: The dense network (θ0, or trained for ``lottery``).
        data: What the criterion needs, e.g. ``(images, labels)``.
        method: A :class:`tf_lottery.config.MethodConfig`.
        seed: The run's seed.

    Returns:
        A :class:`~tf_lottery.tickets.TicketResult` whose ``removed`` are filter names
        (``"stage1_block2_conv1:7"``) and whose ``details`` give the matched count.

    Raises:
        ValueError: when the count cannot be met (naming the maximum).

    Example:
        >>> config = Config.create(method="filters", criterion="snip", num_blocks=1)
        >>> result = tl.methods.get("filters")(dense, (x, y), config.method)
        >>> tl.cost.count_filters(result.model) == tl.cost.count_filters(layer_ticket)
        True
    """
    count, details = target_count(model, data, method, seed)
    options = method.criterion_options(seed)
    scores = criteria.filter_scores(model, method.criterion, data, **options)
    direction = method.prune_first or criteria.get(method.criterion).prune_first
    removed = filters_lib.select_filters(model, scores, count, direction, method.filter_ranking)
    flat = criteria.flat_scores(scores)
    return TicketResult(removed, flat, [flat], method.criterion, direction, "oneshot",
                        details={**details, "ranking": method.filter_ranking, "removed_filters": len(removed)},
                        model=filters_lib.remove_filters(model, removed))
