"""Rebuild a model from its lineage: the builder, its spec, the removed blocks and filters.

Example:
    >>> ticket2 = rebuild(lineage_json(ticket), weights_from=ticket)   # same architecture, same weights
"""

from __future__ import annotations

import json
from typing import Optional, Union

import keras

from tf_lottery.graph.rewire import transfer_weights
from tf_lottery.models.registry import MODELS
from tf_lottery.surgery.filters import remove_filters


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
    if isinstance(origin, str):
        origin = json.loads(origin)
    builder = MODELS.get(origin.get("builder"))
    model = builder.from_spec(origin["spec"], origin.get("removed", ()))
    if origin.get("filters"):
        model = remove_filters(model, [f"{conv}:{i}" for conv, indices in origin["filters"].items() for i in indices])
    if weights_from is not None:
        transfer_weights(weights_from, model)
    return model
