"""Model builders, registered in :data:`MODELS` (``tl.models.get("cifar_resnet")``)."""

from tf_lottery.models.cifar_resnet import (
    MODELS,
    CifarResNetSpec,
    build,
    cifar_resnet,
    depth_to_blocks,
)


def get(name: str):
    """Returns the model builder registered as ``name`` (error lists the valid names)."""
    return MODELS.get(name)


__all__ = ["MODELS", "CifarResNetSpec", "build", "cifar_resnet", "depth_to_blocks", "get"]
