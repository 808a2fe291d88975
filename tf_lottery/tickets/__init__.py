"""Layer 6, how a ticket is made: :func:`find_ticket` (the paper's layer tickets) and the
methods registry (:mod:`~tf_lottery.tickets.registry`): ``blocks``, ``filters``, and with
tfmot ``filter_masks`` and ``imp``.

Reached as ``tl.methods`` too (the methods package's name before 0.8).

Example:
    >>> result = tl.find_ticket(model, criterion="grasp", num_blocks=3, data=(images, labels))
    >>> result = tl.methods.get("filters")(dense, (images, labels), config.method)
"""

from tf_lottery.tickets import blocks, filter_masks, filters, imp  # noqa: F401  (importing registers them)
from tf_lottery.tickets.find import SCHEDULES, TicketResult, find_ticket, resolve_count, select
from tf_lottery.tickets.registry import METHODS, Method, get, names, register

__all__ = ["METHODS", "Method", "SCHEDULES", "TicketResult", "find_ticket", "get", "names", "register",
           "resolve_count", "select"]
