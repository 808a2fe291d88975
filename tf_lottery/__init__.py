"""tf_lottery: layer lottery tickets at initialization, in Keras 3.

Example:
    >>> import tf_lottery as tl
    >>> model = tl.models.cifar_resnet(depth=32, num_classes=10, seed=0)
    >>> ticket = tl.surgery.remove_blocks(model, ["stage1_block2"])
"""

from tf_lottery import (
    carbon, config, cost, criteria, data, distribute, evals, export, filters, graph, methods, models, records, resume,
    serving, surgery, tickets, train,
)
from tf_lottery.config import Config
from tf_lottery.tickets import TicketResult, find_ticket

__version__ = "0.7.0"
__all__ = [
    "Config", "TicketResult", "carbon", "config", "cost", "criteria", "data", "distribute", "evals", "export",
    "filters", "find_ticket", "graph", "methods", "models", "records", "resume", "serving", "surgery", "tickets", "train",
    "__version__",
]
