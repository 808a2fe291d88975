"""Rebuild a model from its lineage: the builder, its spec, the removed blocks and filters.

Example:
    >>> ticket2 = rebuild(lineage_json(ticket), weights_from=ticket)   # same architecture, same weights
"""

from __future__ import annotations

import json
import re
from typing import Optional, Union

import keras

from tf_lottery.graph.rewire import transfer_weights
from tf_lottery.models import function
from tf_lottery.models.registry import MODELS
from tf_lottery.surgery.filters import remove_filters


def rebuild(origin: Union[str, dict], weights_from: Optional[keras.Model] = None,
            safe_mode: bool = True) -> keras.Model:
    """Builds the model a lineage describes and, optionally, copies weights into it by name.

    Works for every registered builder: the builder's ``from_spec`` builds it with the
    removed blocks left out, then the removed filters (if any) are cut out of it. A lineage
    whose builder is a user's function (``package.module:function``) would import and run that
    module: in safe mode (the default, as Keras' ``load_model``) it is refused unless this process
    already trusts the name (the user gave it as ``--model`` or to :meth:`Config.create`).

    Args:
        origin: A lineage dict or its JSON string (e.g. an export's ``metadata.json`` lineage).
        weights_from: A model whose layers' weights are copied into the rebuilt one.
        safe_mode: False to import the function a lineage names, trusting its source.

    Returns:
        The rebuilt ``keras.Model`` (with the spec's seed, so θ0 without ``weights_from``).

    Raises:
        UnknownNameError: for a builder that is not registered (listing the valid ones).
        UnsafeModelError: (a ValueError) for a user function in safe mode, saying how to opt in.
        ValueError: for a spec the builder refuses, or a lineage that is not a JSON object.

    Example:
        >>> ticket2 = rebuild(lineage_json(ticket), weights_from=ticket)
    """
    if isinstance(origin, str):
        try:
            origin = json.loads(origin)
        except ValueError as error:
            raise ValueError(f"origin must be a lineage (a dict, or its JSON text); the text does not parse: "
                             f"{error}") from None
    if not isinstance(origin, dict):
        raise ValueError(f"origin must be a lineage: a JSON object with 'builder' and 'spec' (an export's "
                         f"metadata.json 'lineage'); got {type(origin).__name__}")
    name = origin.get("builder")
    if isinstance(name, str) and re.fullmatch(function.PATTERN, name) and not function.is_trusted(name):
        if safe_mode:
            raise function.refusal(name, "this lineage")
        function.trust(name)
    builder = MODELS.get(name)
    model = builder.from_spec(origin["spec"], origin.get("removed", ()))
    if origin.get("filters"):
        model = remove_filters(model, [f"{conv}:{i}" for conv, indices in origin["filters"].items() for i in indices])
    if weights_from is not None:
        transfer_weights(weights_from, model)
    return model
