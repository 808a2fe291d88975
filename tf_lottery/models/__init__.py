"""Layer 4, the models: builders (a registry), the one ``build`` from a config, and rebuilding from a lineage.

Example:
    >>> model = tl.models.cifar_resnet(depth=32, num_classes=10, seed=0)
    >>> dense = tl.models.build(config.model, data, seed=config.seed)
    >>> again = tl.models.rebuild(tl.models.lineage_json(model))
    >>> resnet50 = tl.models.get("resnet50")(input_shape=(64, 64, 3), num_classes=10)   # keras.applications
"""

from tf_lottery.models.registry import (
    MODELS, ModelBuilder, build, get, names, register_builder, register_pattern, settings_classes,
)
# Importing a builder's module registers it.
from tf_lottery.models.cifar_resnet import (  # noqa: E402
    CifarResNetSettings,
    CifarResNetSpec,
    build_from_spec as cifar_resnet_from_spec,
    cifar_resnet,
    depth_to_blocks,
)
from tf_lottery.models.applications import FAMILIES as APPLICATIONS, ApplicationSettings, build_application
from tf_lottery.models.imagenet_resnet import ImageNetResNetSettings, ImageNetResNetSpec, imagenet_resnet
from tf_lottery.models.function import FunctionSettings, canonical_names, parse_model_args
from tf_lottery.models.decoder import ByteDecoderSettings, byte_decoder
from tf_lottery.graph.heads import float32_head, logits_output, outputs_probabilities
from tf_lottery.graph.lineage import lineage, lineage_json
from tf_lottery.models.from_lineage import rebuild

__all__ = [
    "APPLICATIONS", "MODELS", "ApplicationSettings", "CifarResNetSettings", "CifarResNetSpec", "ImageNetResNetSettings",
    "ImageNetResNetSpec", "ModelBuilder", "build", "build_application", "cifar_resnet", "cifar_resnet_from_spec",
    "depth_to_blocks", "float32_head", "get", "imagenet_resnet", "lineage", "lineage_json", "logits_output", "names",
    "outputs_probabilities", "rebuild", "register_builder", "register_pattern", "settings_classes",
    "FunctionSettings", "canonical_names", "parse_model_args",
]
