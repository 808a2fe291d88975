"""Lineage: where a model comes from, so a ticket can be rebuilt from JSON.

A model built by a registered builder carries ``{"builder", "spec", "removed"}``: the
builder's name, its JSON spec and the blocks left out (empty for the dense model).
Every ticket cut from it by :func:`tf_lottery.surgery.remove_blocks` extends the list; a
filter ticket (:func:`tf_lottery.filters.remove_filters`) adds ``"filters"``:
``{conv: removed filter indices of the dense conv}``.
The lineage is kept on the model as a JSON *string*: Keras tracks containers set on a
model, and copying a tracked dict drags the whole model into the copy.

Example:
    >>> text = lineage_json(ticket)
    >>> again = rebuild(text, weights_from=ticket)     # same architecture, same weights
"""

from __future__ import annotations

import json
from typing import Iterable, Optional, Union

import keras

from tf_lottery.models.registry import MODELS, natural_key

LINEAGE_ATTR = "_tf_lottery_lineage"


def attach(model: keras.Model, builder: str, spec: dict, removed: Iterable[str] = (),
           filters: Optional[dict] = None) -> keras.Model:
    """Records the lineage of ``model`` on it (as JSON); returns ``model``.

    Args:
        filters: ``{conv: removed filter indices}`` of a filter ticket (left out when empty).
    """
    origin = {"builder": builder, "spec": spec, "removed": sorted(set(removed), key=natural_key)}
    if filters:
        origin["filters"] = {conv: sorted(int(i) for i in indices) for conv, indices in sorted(filters.items())}
    setattr(model, LINEAGE_ATTR, json.dumps(origin, sort_keys=True))
    return model


def lineage(model: keras.Model) -> Optional[dict]:
    """Where ``model`` comes from: ``{"builder", "spec", "removed"}``, or None if unknown.

    Returns a fresh dict each call (editing it changes nothing on the model).
    """
    text = getattr(model, LINEAGE_ATTR, None)
    return json.loads(text) if text is not None else None


def lineage_json(model: keras.Model) -> str:
    """:func:`lineage` as a JSON string.

    Raises:
        ValueError: if ``model`` carries no lineage.
    """
    origin = getattr(model, LINEAGE_ATTR, None)
    if origin is None:
        raise ValueError(f"model {model.name!r} has no tf_lottery lineage (not built by a registered builder)")
    return origin


def extend(source: keras.Model, ticket: keras.Model, removed: Iterable[str]) -> Optional[dict]:
    """Gives ``ticket`` the lineage of ``source`` with ``removed`` blocks added; returns it (or None).

    Removed filters of layers the ticket no longer has (they went with a removed block) are dropped.
    """
    origin = lineage(source)
    if origin is None:
        return None
    present = {layer.name for layer in ticket.layers}
    filters = {conv: indices for conv, indices in origin.get("filters", {}).items() if conv in present}
    attach(ticket, origin["builder"], origin["spec"], list(origin["removed"]) + list(removed), filters)
    return lineage(ticket)


def ticket_name(dense_name: str, removed_count: int) -> str:
    """``resnet20`` -> ``resnet20_minus2``: a ticket is named after its dense model and p."""
    base = dense_name.split("_minus")[0]
    return base + (f"_minus{removed_count}" if removed_count else "")


def rebuild(origin: Union[str, dict], weights_from: Optional[keras.Model] = None) -> keras.Model:
    """Builds the model a lineage describes and, optionally, copies weights into it by name.

    Works for every registered builder: the builder's ``from_spec`` builds it with the
    removed blocks left out, then the removed filters (if any) are cut out of it.

    Args:
        origin: A lineage dict or its JSON string.
        weights_from: A model whose layers' weights are copied into the rebuilt one.

    Returns:
        The rebuilt ``keras.Model`` (with the spec's seed, so θ0 without ``weights_from``).

    Raises:
        UnknownNameError: for a builder that is not registered (listing the valid ones).
        ValueError: for a spec the builder refuses.

    Example:
        >>> ticket2 = rebuild(lineage_json(ticket), weights_from=ticket)
    """
    from tf_lottery.surgery import transfer_weights  # surgery imports this module

    if isinstance(origin, str):
        origin = json.loads(origin)
    builder = MODELS.get(origin.get("builder"))
    model = builder.from_spec(origin["spec"], origin.get("removed", ()))
    if origin.get("filters"):
        from tf_lottery.filters import remove_filters

        model = remove_filters(model, [f"{conv}:{i}" for conv, indices in origin["filters"].items() for i in indices])
    if weights_from is not None:
        transfer_weights(weights_from, model)
    return model
