"""Layer 2: reading and rewriting a Keras 3 functional graph.

:mod:`~tf_lottery.graph.reader` (operations, nested models flattened),
:mod:`~tf_lottery.graph.containers` (layers that call a sequence of blocks, opened), :mod:`~tf_lottery.graph.heads`
(logits, softmax end, penultimate features), :mod:`~tf_lottery.graph.lineage` (where a model
comes from), :mod:`~tf_lottery.graph.rewire` (rebuild with re-routed outputs, weights by name)
and :mod:`~tf_lottery.graph.cost` (FLOPs, filters, memory, latency).

Example:
    >>> g = tl.graph.analyse(model)
    >>> g.parents["stage1_block2_add"]
    ['stage1_block2_bn2', 'stage1_block1_out']
"""

from tf_lottery.graph import containers, cost, heads, lineage, reader, rewire  # noqa: F401
from tf_lottery.graph.reader import Graph, analyse, check_model, flat, is_nested, leaf_layers, operation, output_of

__all__ = ["Graph", "analyse", "check_model", "containers", "cost", "flat", "heads", "is_nested", "leaf_layers", "lineage",
           "operation", "output_of", "reader", "rewire"]
