"""How a ticket is made from a dense network: one registry of methods.

A method takes the dense model, the scoring data and the config's method section and
returns a :class:`tf_lottery.tickets.TicketResult` (the ticket and how it was found); it
also applies a recorded decision (``scores.json``) to any model of the same architecture,
which is how a resumed run, or a ``lottery`` ticket rewound to other weights, gets its
ticket without scoring again.
``blocks`` (the paper's layer tickets: score residual blocks, remove the weakest) is the
first entry; filter tickets and tfmot weight tickets are the next.

Example:
    >>> method = tl.methods.get("blocks")
    >>> method.check(dense, config.method)                   # fails before anything is written
    >>> result = method(dense, (images, labels), config.method, seed=0)
    >>> same = method.apply(dense, result.record(), config.method)   # the decision, applied again
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from tf_lottery.registry import Registry

METHODS: Registry = Registry("method")


@dataclasses.dataclass(frozen=True)
class Method:
    """A registered way of making a ticket.

    Attributes:
        name: Registry name (the ``--method`` flag's value).
        make: ``(model, data, method_config, seed) -> TicketResult``.
        check: ``(model, method_config) -> None``: raises ValueError when the method
            cannot be applied to the model as configured (e.g. too many blocks).
        apply: ``(model, ticket_record, method_config) -> keras.Model``: the ticket a
            recorded decision makes of ``model`` (whose weights it inherits).
        summary: One line for listings.
    """

    name: str
    make: Callable
    check: Callable
    apply: Callable
    summary: str

    def __call__(self, model, data, method_config, seed: int = 0):
        return self.make(model, data, method_config, seed)


def register(name: str, *, check: Callable, apply: Callable, summary: str):
    """Decorator registering ``make`` as a :class:`Method`."""

    return METHODS.entry(name, lambda make: Method(name, make, check, apply, summary))


def get(name: str) -> Method:
    """Returns the method registered as ``name`` (the error lists the valid names)."""
    return METHODS.get(name)


from tf_lottery.methods import blocks  # noqa: E402,F401  (importing registers the method)

__all__ = ["METHODS", "Method", "get", "register"]
