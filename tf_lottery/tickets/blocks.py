"""``blocks``: the paper's layer tickets. Score the residual blocks, remove the weakest.

A thin adapter from the config's method section to :func:`tf_lottery.tickets.find_ticket`.
"""

from __future__ import annotations

from tf_lottery.surgery import family_ticket, remove_blocks
from tf_lottery.surgery.families import block_model, has_family
from tf_lottery.tickets.find import TicketResult, find_ticket, resolve_count
from tf_lottery.tickets.registry import register


def check(model, method) -> None:
    """Fails (ValueError naming the maximum) when ``method``'s p cannot be removed from ``model``."""
    resolve_count(block_model(model), method.num_blocks, method.fraction, method.min_blocks_per_stage)


def apply(model, ticket, method):
    """``model`` without the blocks ``ticket`` (a :class:`~tf_lottery.results.records.TicketRecord`) removed."""
    cut = family_ticket if has_family(model) else remove_blocks  # as find_ticket cuts it
    return cut(model, ticket.removed, method.min_blocks_per_stage)


@register("blocks", check=check, apply=apply,
          fields=("criterion", "num_blocks", "fraction", "schedule", "min_blocks_per_stage", "aggregation",
                  "prune_first", "score_per_class", "score_sequences", "residual_layers", "rewind",
                  "rewind_epoch",
                  "rewind_step"),
          summary="remove whole residual blocks (the paper's layer tickets)")
def blocks(model, data, method, seed: int = 0) -> TicketResult:
    """Scores ``model``'s blocks with ``method.criterion`` and removes ``method.num_blocks`` of them.

    Args:
        model: The dense network (θ0, or trained for ``lottery``).
        data: What the criterion needs, e.g. ``(images, labels)``.
        method: A :class:`tf_lottery.config.MethodConfig`.
        seed: The run's seed (reaches criteria that take one, such as ``random``).

    Returns:
        A :class:`~tf_lottery.tickets.TicketResult`.
    """
    return find_ticket(model, method.criterion, method.num_blocks, method.fraction, data, method.schedule,
                       method.min_blocks_per_stage, method.prune_first, **method.criterion_options(seed))
