"""Layer 3, residual-block and filter surgery on Keras functional models.

:mod:`~tf_lottery.surgery.residual` (discovery, stages, eligibility, removal),
:mod:`~tf_lottery.surgery.families` (a ticket of the dense model's own class: keras_hub models),
:mod:`~tf_lottery.surgery.silencing` (zero a branch in place) and
:mod:`~tf_lottery.surgery.filters` (prunable filter groups, physical slicing, masks).

Example:
    >>> tl.surgery.removable_blocks(model)[:2]
    ['stage1_block2', 'stage1_block3']
    >>> ticket = tl.surgery.remove_blocks(model, ["stage1_block2"])
"""

from tf_lottery.graph.lineage import lineage, lineage_json
from tf_lottery.graph.rewire import rewire, transfer_weights
from tf_lottery.surgery import families, filters  # noqa: F401
from tf_lottery.surgery.families import family_ticket, kept_blocks
from tf_lottery.surgery.residual import (
    NO_BLOCKS_HINT, PAPER_RULE_BUILDERS, Block, blocks, bypassed, check_removal, contained, eligibility_rule, find_blocks,
    floor_hint, ineligible, looked_at, max_removable, producers, removable_blocks, remove_blocks, removed_with, stage_sizes,
)
from tf_lottery.surgery.silencing import silence_blocks, silencing_variables

__all__ = [
    "Block", "NO_BLOCKS_HINT", "PAPER_RULE_BUILDERS", "blocks", "bypassed", "check_removal", "contained",
    "eligibility_rule", "families", "removed_with",
    "family_ticket", "filters", "kept_blocks",
    "find_blocks", "floor_hint", "ineligible", "lineage", "looked_at", "lineage_json", "max_removable", "producers", "remove_blocks", "removable_blocks",
    "rewire", "silence_blocks", "silencing_variables", "stage_sizes", "transfer_weights",
]
