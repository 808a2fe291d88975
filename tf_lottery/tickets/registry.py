"""How a ticket is made from a dense network: one registry of methods.

A method takes the dense model, the scoring data and the config's method section and
returns a :class:`tf_lottery.tickets.TicketResult` (the ticket and how it was found); it
also applies a recorded decision (``scores.json``) to any model of the same architecture,
which is how a resumed run, or a ``lottery`` ticket rewound to other weights, gets its
ticket without scoring again.
Entries: ``blocks`` (the paper's layer tickets: score residual blocks, remove the
weakest), ``filters`` (the paper's Table 3 baseline: remove block-internal filters,
physically), and with tfmot (:mod:`tf_lottery.legacy`) ``filter_masks`` (the same filters
held as masks) and ``imp`` (weight lottery tickets by iterative magnitude pruning).

A method declares the method-section ``fields`` it reads: only those (and ``--method``)
name a ticket run's folder, so a setting of another method never splits runs.

Example:
    >>> method = tl.methods.get("blocks")
    >>> method.check(dense, config.method)                   # fails before anything is written
    >>> result = method(dense, (images, labels), config.method, seed=0)
    >>> same = method.apply(dense, result.record(), config.method)   # the decision, applied again
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional

from tf_lottery import training
from tf_lottery.core.registry import Registry

#: The method registry (``--method``): :func:`get` a :class:`Method` by name.
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
        fields: The :class:`~tf_lottery.config.MethodConfig` fields it reads (its identity).
        fit: ``(model, data, recipe, workdir, name, **kwargs) -> dict`` training its tickets,
            or None for :func:`tf_lottery.training.fit` (a plain Keras 3 ticket).
        unit: What it removes or masks: "blocks", "filters" or "weights" (reports group by it).
        experiment: The experiment that makes its tickets in a sweep or ``compare`` (``imp``
            needs its own level loop), or None for the sweep's experiment.
        settings: A frozen dataclass declaring the method's own options (flags such as ``--imp_rate``),
            composed into the method section of the config, or None. Its options enter the identity of
            the method's runs (less any at a value of the class's ``IDENTITY_DEFAULTS``); a classmethod
            ``check_values(values)`` may refuse a combination the single declarations cannot.

    Example:
        >>> method = get("filters")
        >>> method.unit
        'filters'
        >>> result = method(dense, (images, labels), config.method, seed=0)   # a TicketResult
    """

    name: str
    make: Callable
    check: Callable
    apply: Callable
    summary: str
    fields: tuple = ()
    fit: Optional[Callable] = None
    unit: str = "blocks"
    experiment: Optional[str] = None
    settings: Optional[type] = None

    def trainer(self) -> Callable:
        """The function that trains this method's tickets (see ``fit``)."""
        return self.fit or training.fit

    def __call__(self, model, data, method_config, seed: int = 0):
        """Makes a ticket of ``model``: ``make(model, data, method_config, seed)``."""
        return self.make(model, data, method_config, seed)


def register(name: str, *, check: Callable, apply: Callable, summary: str, fields: tuple,
             fit: Optional[Callable] = None, unit: str = "blocks", experiment: Optional[str] = None,
             settings: Optional[type] = None):
    """Decorator registering ``make`` as a :class:`Method`.

    Args:
        name: The ``--method`` value.
        check, apply, summary, fit, unit, experiment, settings: See :class:`Method`.
        fields: The method section's own fields it reads (its settings' fields are added).

    Returns:
        The decorator, which registers ``make`` and returns it.

    Raises:
        ValueError: for a name registered already.

    Example:
        >>> @register("halves", check=check, apply=apply, fields=("num_blocks",), summary="every other block")
        ... def halves(model, data, method, seed=0):
        ...     ...
    """

    return METHODS.entry(name, lambda make: Method(name, make, check, apply, summary, tuple(fields), fit, unit,
                                                   experiment, settings))


def settings_classes() -> list:
    """The settings classes of the registered methods, in name order (each once), for the config's
    method section (:func:`tf_lottery.core.options.compose`).

    Returns:
        The classes.

    Example:
        >>> [cls.__name__ for cls in settings_classes()]
        ['FiltersSettings', 'ImpSettings']
    """
    return METHODS.declared("settings")


def get(name: str) -> Method:
    """Returns the method registered as ``name``.

    Args:
        name: A method's name (:func:`names`).

    Returns:
        Its :class:`Method`.

    Raises:
        UnknownNameError: for a name that is not registered (listing the valid names).

    Example:
        >>> get("blocks").unit
        'blocks'
    """
    return METHODS.get(name)


def names() -> list:
    """Registered method names.

    Returns:
        The names, sorted.

    Example:
        >>> names()
        ['blocks', 'filter_masks', 'filters', 'imp']
    """
    return METHODS.names()
