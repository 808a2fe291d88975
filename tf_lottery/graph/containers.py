"""Containers: one layer that calls a sequence of blocks, opened so that its blocks are operations of the graph.

keras_hub's ``ViTEncoder`` calls every encoder block of a ViT inside its own ``call``: the
functional graph shows one node, and the blocks are invisible to surgery. A *container
family* registered here says what the container computes in terms of its own sublayers,
with an ``unroll(layer, x)`` function that calls them in the order its ``call`` does.

The flat view of a model (:func:`tf_lottery.graph.reader.flat`) calls that function
instead of the container, so each block inside is one operation of the view: it is found
(a residual layer, :mod:`tf_lottery.graph.inside`), scored and removed like a block of
the model's own graph. A ticket cut from such a model is a flat functional model that
calls the kept blocks, with their weights bit for bit, between the container's other
sublayers (a ViT's encoder dropout and final LayerNorm); it is not a container of the
family any more. The view shares the layers (hence the variables) with the model.

A family is matched by the container's exact class (``"module.Class"``; a subclass may
compute something else). When a model's flat view is first built, every unrolled
container is checked against the container itself on a random input: an ``unroll`` that
computes something else is an error, not a silently different model.

Registered: keras_hub's ``ViTEncoder``. Register your own family:

Example:
    >>> @tl.graph.containers.register("mypackage.layers.Encoder")
    ... def encoder(layer, x):
    ...     for block in layer.blocks:
    ...         x = block(x)
    ...     return layer.norm(x)
"""

from __future__ import annotations

from typing import Callable, Optional, Union

import keras
import numpy as np

from tf_lottery.core.registry import Registry

CONTAINERS: Registry[Callable] = Registry("container family")
"""``{"module.Class": unroll(layer, x) -> output}``: how each family's container computes."""

TOLERANCE = 1e-4
"""Largest difference, relative to the output's scale, allowed between a container and its unrolled calls."""


def class_path(cls: type) -> str:
    """``"module.Class"``, the key of a container family.

    Args:
        cls: A class.

    Returns:
        Its module and qualified name, joined by a dot.

    Example:
        >>> class_path(type(model.get_layer("vit_encoder")))
        'keras_hub.src.models.vit.vit_layers.ViTEncoder'
    """
    return f"{cls.__module__}.{cls.__qualname__}"


def register(family: Union[str, type]) -> Callable[[Callable], Callable]:
    """Returns a decorator registering ``unroll(layer, x) -> output`` for a container class.

    Args:
        family: The container class, or its ``"module.Class"`` path (:func:`class_path`).

    Returns:
        The decorator; it gives the function back.

    Raises:
        ValueError: if the family is already registered.

    Example:
        >>> @register(MyEncoder)
        ... def my_encoder(layer, x):
        ...     for block in layer.blocks:
        ...         x = block(x)
        ...     return x
    """
    return CONTAINERS.register(family if isinstance(family, str) else class_path(family))


def unroll_of(layer) -> Optional[Callable]:
    """The registered ``unroll`` of ``layer``'s class.

    Args:
        layer: Any layer.

    Returns:
        ``unroll(layer, x) -> output``, or None when its class is not a registered container.

    Example:
        >>> unroll_of(keras.layers.Dense(4)) is None
        True
    """
    key = class_path(type(layer))
    return CONTAINERS.get(key) if key in CONTAINERS else None


def check_unrolled(layer, x_shape: tuple, dtype: str) -> None:
    """Checks that the registered ``unroll`` computes what ``layer`` does, on a random input (inference mode).

    Args:
        layer: A registered container.
        x_shape: Its input's shape without the batch axis (``None`` axes become 8).
        dtype: Its input's dtype; an integer input is not checked.

    Raises:
        ValueError: naming the container and the difference found.

    Example:
        >>> check_unrolled(model.get_layer("vit_encoder"), (17, 32), "float32")   # silent: it matches
    """
    if not np.issubdtype(np.dtype(dtype), np.floating):
        return
    shape = (2,) + tuple(8 if d is None else d for d in x_shape)
    x = keras.random.normal(shape, seed=0, dtype=dtype)
    expected = keras.ops.convert_to_numpy(layer(x, training=False)).astype("float64")
    got = keras.ops.convert_to_numpy(unroll_of(layer)(layer, x)).astype("float64")
    scale = max(1.0, float(np.abs(expected).max()))
    difference = float(np.abs(got - expected).max()) if got.shape == expected.shape else float("inf")
    if difference > TOLERANCE * scale:
        raise ValueError(
            f"the unrolled container {layer.name!r} ({class_path(type(layer))}) does not compute what its call "
            f"does: outputs differ by up to {difference:.3g} (shapes {got.shape} and {expected.shape}); its "
            "registered unroll must call the container's sublayers as its call does"
        )


@register("keras_hub.src.models.vit.vit_layers.ViTEncoder")
def vit_encoder(layer, x):
    """keras_hub's ``ViTEncoder`` (0.32): dropout, the encoder blocks in order, the final LayerNorm.

    Args:
        layer: A ``ViTEncoder``.
        x: Its input (the patch embeddings).

    Returns:
        What ``layer(x)`` computes, through its sublayers.

    Example:
        >>> encoder = vit.get_layer("vit_encoder")   # a keras_hub ViTBackbone's
        >>> unroll_of(encoder) is vit_encoder
        True
    """
    x = layer.dropout(x)
    for block in layer.encoder_layers:
        x = block(x)
    return layer.layer_norm(x)
