"""Lineage: where a model comes from, so a ticket can be rebuilt from JSON.

A model built by a registered builder carries ``{"builder", "spec", "removed"}``: the
builder's name, its JSON spec and the blocks left out (empty for the dense model).
Every ticket cut from it by :func:`tf_lottery.surgery.remove_blocks` extends the list; a
filter ticket (:func:`tf_lottery.surgery.filters.remove_filters`) adds ``"filters"``:
``{conv: removed filter indices of the dense conv}``.
A ticket rebuilt in its own class (:func:`tf_lottery.surgery.family_ticket`), whose blocks are
renamed by position, also records the original name of each (:func:`record_kept`).
The lineage is kept on the model as a JSON *string*: Keras tracks containers set on a
model, and copying a tracked dict drags the whole model into the copy.

Rebuilding a model from its lineage needs the model builders: :func:`tf_lottery.models.rebuild`.

Example:
    >>> text = lineage_json(ticket)
    >>> lineage(ticket)["removed"]
    ['stage1_block2']
"""

from __future__ import annotations

import json
from typing import Iterable, Optional

import keras

from tf_lottery.core.naming import natural_key

#: The model attribute that holds a model's lineage as JSON (:func:`attach`, :func:`lineage`).
LINEAGE_ATTR = "_tf_lottery_lineage"
#: The model attribute that holds, as JSON, the blocks a family ticket kept and removed (:func:`record_kept`).
KEPT_ATTR = "_tf_lottery_kept_blocks"


def attach(model: keras.Model, builder: str, spec: dict, removed: Iterable[str] = (),
           filters: Optional[dict] = None) -> keras.Model:
    """Records the lineage of ``model`` on it (as JSON).

    Args:
        model: The model to tag.
        builder: The registered builder that makes its dense model (``tl.models.get(builder)``).
        spec: The builder's arguments (JSON-ready).
        removed: Blocks removed from the dense model.
        filters: ``{conv: removed filter indices}`` of a filter ticket (left out when empty).

    Returns:
        ``model``.

    Example:
        >>> model = attach(model, "my_resnet", {"depth": 20})
        >>> lineage(model)
        {'builder': 'my_resnet', 'removed': [], 'spec': {'depth': 20}}
    """
    origin = {"builder": builder, "spec": spec, "removed": sorted(set(removed), key=natural_key)}
    if filters:
        origin["filters"] = {conv: sorted(int(i) for i in indices) for conv, indices in sorted(filters.items())}
    setattr(model, LINEAGE_ATTR, json.dumps(origin, sort_keys=True))
    return model


def lineage(model: keras.Model) -> Optional[dict]:
    """Where ``model`` comes from.

    Args:
        model: A Keras model.

    Returns:
        ``{"builder", "spec", "removed"}`` (and ``"filters"`` for a filter ticket), a fresh dict each
        call (editing it changes nothing on the model); None if unknown.

    Example:
        >>> lineage(tl.surgery.remove_blocks(tl.models.cifar_resnet(20), ["stage1_block2"]))["removed"]
        ['stage1_block2']
    """
    text = getattr(model, LINEAGE_ATTR, None)
    return json.loads(text) if text is not None else None


def lineage_json(model: keras.Model) -> str:
    """:func:`lineage` as a JSON string.

    Args:
        model: A Keras model.

    Returns:
        The JSON (keys sorted).

    Raises:
        ValueError: if ``model`` carries no lineage.

    Example:
        >>> lineage_json(tl.models.cifar_resnet(20))[:40]
        '{"builder": "cifar_resnet", "removed": [],'
    """
    origin = getattr(model, LINEAGE_ATTR, None)
    if origin is None:
        raise ValueError(f"model {model.name!r} has no tf_lottery lineage (not built by a registered builder)")
    return origin


def extend(source: keras.Model, ticket: keras.Model, removed: Iterable[str]) -> Optional[dict]:
    """Gives ``ticket`` the lineage of ``source`` with ``removed`` blocks added.

    Removed filters of layers the ticket no longer has (they went with a removed block) are dropped.

    Args:
        source: The model the ticket was cut from.
        ticket: The ticket.
        removed: Blocks removed from ``source`` to make it.

    Returns:
        The ticket's lineage, or None (and nothing recorded) when ``source`` has none.

    Example:
        >>> extend(dense, ticket, ["stage1_block2"])["removed"]
        ['stage1_block2']
    """
    origin = lineage(source)
    if origin is None:
        return None
    present = {layer.name for layer in ticket.layers}
    filters = {conv: indices for conv, indices in origin.get("filters", {}).items() if conv in present}
    attach(ticket, origin["builder"], origin["spec"], list(origin["removed"]) + list(removed), filters)
    return lineage(ticket)


def ticket_name(dense_name: str, removed_count: int) -> str:
    """A ticket's name: its dense model's name and p.

    Args:
        dense_name: The dense model's name (a ticket's name is read back to it).
        removed_count: Blocks removed in all (0: the dense name).

    Returns:
        ``<dense name>_minus<p>``.

    Example:
        >>> ticket_name("resnet20", 2), ticket_name("resnet20_minus1", 3)
        ('resnet20_minus2', 'resnet20_minus3')
    """
    base = dense_name.split("_minus")[0]
    return base + (f"_minus{removed_count}" if removed_count else "")


def record_kept(model: keras.Model, kept: Iterable[str], removed: Iterable[str]) -> None:
    """Records on a family ticket the original name of each of its blocks, in order, and of the
    blocks removed on the way to it (which a model without a lineage keeps nowhere else).

    Args:
        model: A family ticket.
        kept: The original names of its blocks, in order.
        removed: The original names of the blocks removed.

    Example:
        >>> record_kept(ticket, ["layer_0", "layer_2"], ["layer_1"])
        >>> recorded_kept(ticket)["removed"]
        ['layer_1']
    """
    setattr(model, KEPT_ATTR, json.dumps({"kept": list(kept), "removed": list(removed)}))


def recorded_kept(model: keras.Model) -> Optional[dict]:
    """What :func:`record_kept` recorded on ``model``.

    Args:
        model: A Keras model.

    Returns:
        ``{"kept": [...], "removed": [...]}``, or None when nothing was recorded.

    Example:
        >>> recorded_kept(tl.models.cifar_resnet(20)) is None
        True
    """
    text = getattr(model, KEPT_ATTR, None)
    return json.loads(text) if text is not None else None
