"""``filter_masks``: the filter ticket of ``filters``, held as whole-filter masks by tfmot.

For users who prune with tfmot today: the same filters as ``filters`` picks (same
criterion, same matched count), but nothing is removed. The ticket keeps the dense
architecture; tfmot's wrappers hold a mask on each removed filter's kernel slice *and*
bias, and on its BatchNorm's gamma and beta (with the kernel alone, bias and beta would
still pass a constant to the next conv), frozen while it trains
(:mod:`tf_lottery.legacy.masked`). At θ0 its forward pass equals the physical filter
ticket's; it trains at the dense network's speed (masks remove no computation), which the
``compare`` experiment measures.
"""

from __future__ import annotations

import dataclasses

from tf_lottery.surgery import filters as filters_lib
from tf_lottery.legacy.masked import fit_attached, masked_copy
from tf_lottery.tickets import filters as physical
from tf_lottery.tickets.registry import register


def apply(model, ticket, method):
    """A masked copy of ``model``: the filters ``ticket.removed`` silenced, their masks attached."""
    return masked_copy(model, filters_lib.filter_masks(model, ticket.removed),
                       name=f"{model.name}_masked{len(ticket.removed)}f")


@register("filter_masks", check=physical.check, apply=apply, fit=fit_attached, fields=physical.FIELDS,
          unit="filters", settings=physical.FiltersSettings,
          summary="the filters ticket as whole-filter tfmot masks (no removal, no speed-up)")
def filter_masks(model, data, method, seed: int = 0):
    """Picks filters exactly as ``filters`` does and masks them instead of removing them.

    Returns:
        A :class:`~tf_lottery.tickets.TicketResult` whose model is the masked dense architecture.

    Example:
        >>> result = tl.methods.get("filter_masks")(dense, (x, y), config.method)
        >>> result.model.count_params() == dense.count_params()
        True
    """
    found = physical.filters(model, data, method, seed)
    masked = apply(model, found, method)
    return dataclasses.replace(found, model=masked, details={**found.details, "masked": True})
