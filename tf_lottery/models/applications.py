"""keras.applications families as registered builders: ``--model=resnet50``, ``mobilenetv2`` ...

Each family is built by keras.applications with ``weights=None`` (random θ0, seeded) or a
local weights file, ``include_top=True`` with the run's class count and input shape, and
then rebuilt by :func:`tf_lottery.surgery.rewire` so that

* the model is named after its registry entry (``resnet50``; a ticket ``resnet50_minus3``)
  and its input ``image``, like every builder's (the serving signature's input name),
* every conv and dense kernel carries the run's L2 weight decay in its config (so a
  ticket, whose layers are rebuilt from their configs, keeps it),
* the head outputs logits (``output="logits"``, the library's default) or probabilities.

keras.applications takes no per-layer seeds, so θ0 is made reproducible by seeding
Keras' global generators (``keras.utils.set_random_seed(seed)``) right before the build.
A ticket is rebuilt from its lineage by building the dense model with the same seed and
cutting the same blocks (bit-identical θ0).

Example:
    >>> model = tl.models.get("resnet50")(input_shape=(64, 64, 3), num_classes=10, seed=0)
    >>> tl.surgery.max_removable(model)
    8
"""

from __future__ import annotations

import dataclasses
import os
from typing import Callable, Dict, Optional, Sequence

import keras

from tf_lottery import surgery
from tf_lottery.core import options
from tf_lottery.graph.lineage import attach as attach_lineage
from tf_lottery.models.registry import register_builder

OUTPUTS = ("logits", "softmax")

#: The keras.applications families, by the name ``--model`` takes (``tl.models.APPLICATIONS``).
FAMILIES: Dict[str, Callable] = {
    "resnet50": keras.applications.ResNet50,
    "resnet101": keras.applications.ResNet101,
    "resnet152": keras.applications.ResNet152,
    "resnet50v2": keras.applications.ResNet50V2,
    "resnet101v2": keras.applications.ResNet101V2,
    "resnet152v2": keras.applications.ResNet152V2,
    "mobilenetv2": keras.applications.MobileNetV2,
    "efficientnetb0": keras.applications.EfficientNetB0,
    "convnext_tiny": keras.applications.ConvNeXtTiny,
}
"""Registry name -> keras.applications constructor."""

_REGULARIZED = {"kernel_regularizer": (keras.layers.Conv2D, keras.layers.Dense),
                "depthwise_regularizer": (keras.layers.DepthwiseConv2D,)}


@dataclasses.dataclass(frozen=True)
class ApplicationSettings:
    """The settings of every keras.applications builder (each one a flag).

    Raises:
        ValueError: for a ``weights_file`` that is not a file.

    Example:
        >>> ApplicationSettings(weights_file="resnet50.weights.h5").output
        'logits'
    """

    weights_file: Optional[str] = options.text(
        None, "keras.applications models: a local weights file to start from (its architecture, classes and input "
              "shape must match); default: random θ0 (weights=None).")
    output: str = options.choice("logits", OUTPUTS, "keras.applications and imagenet_resnet models: the head's "
                                                    "output, logits (library default) or softmax probabilities.")

    def __post_init__(self):
        options.normalise(self)
        options.check_options(self)
        if self.weights_file is not None and not os.path.isfile(self.weights_file):
            raise ValueError(f"--weights_file={self.weights_file} is not a file; give a local weights file "
                             "(.weights.h5) saved from the same architecture, or leave it out for random θ0")


def with_weight_decay(weight_decay: float):
    """Clone function: a layer rebuilt from its config with L2 on its kernel (if it has one)."""

    def clone(layer):
        config = layer.get_config()
        for key, kinds in _REGULARIZED.items():
            if weight_decay and isinstance(layer, kinds) and key in config:
                config[key] = keras.regularizers.serialize(keras.regularizers.L2(weight_decay))
        return layer.__class__.from_config(config)

    return clone


def build_application(family: str, input_shape: Sequence[int] = (224, 224, 3), num_classes: int = 1000,
                      seed: int = 0, *, weights_file: Optional[str] = None, output: str = "logits",
                      weight_decay: float = 0.0, removed_blocks: Sequence[str] = ()) -> keras.Model:
    """Builds a keras.applications family the way every builder of the registry does.

    Args:
        family: A key of :data:`FAMILIES` (``"resnet50"``, ``"mobilenetv2"`` ...).
        input_shape: (height, width, channels); keras.applications needs at least 32x32.
        num_classes: Classifier outputs.
        seed: Seed of θ0 (ignored for the layers a weights file sets).
        weights_file: A local weights file for the whole model, or None for random θ0.
        output: "logits" or "softmax".
        weight_decay: L2 factor on every conv and dense kernel.
        removed_blocks: Blocks to cut out (a ticket rebuilt from its lineage).

    Returns:
        A functional ``keras.Model`` named ``family`` carrying its lineage.

    Raises:
        ValueError: for an unknown family or output, or a shape or file keras.applications refuses.

    Example:
        >>> build_application("mobilenetv2", (32, 32, 3), 10).name
        'mobilenetv2'
    """
    if family not in FAMILIES:
        raise ValueError(f"unknown keras.applications family {family!r}; known: {sorted(FAMILIES)}")
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}; got {output!r}")
    input_shape = tuple(int(d) for d in input_shape)
    keras.utils.set_random_seed(seed)
    try:
        base = FAMILIES[family](weights=weights_file, input_shape=input_shape, classes=num_classes,
                                include_top=True, classifier_activation="softmax" if output == "softmax" else None)
    except (ValueError, OSError) as error:
        # Keras lists every layer of a mismatched weights file: the first line says what is wrong.
        first = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
        raise ValueError(f"keras.applications refused --model={family} with input shape {input_shape}, "
                         f"{num_classes} classes and weights {weights_file or 'None'}: {first}") from error
    model = surgery.rewire(base, {}, clone=with_weight_decay(weight_decay), name=family, input_name="image")
    surgery.transfer_weights(base, model)
    spec = {"family": family, "input_shape": list(input_shape), "num_classes": num_classes, "output": output,
            "weight_decay": weight_decay, "seed": seed, "weights_file": weights_file}
    attach_lineage(model, family, spec)
    if removed_blocks:
        model = surgery.remove_blocks(model, list(removed_blocks), min_blocks_per_stage=0)
    return model


def _register(family: str) -> None:
    def from_settings(settings: ApplicationSettings, input_shape, num_classes, seed, weight_decay):
        return build_application(family, input_shape, num_classes, seed, weights_file=settings.weights_file,
                                 output=settings.output, weight_decay=weight_decay)

    def from_spec(spec: dict, removed) -> keras.Model:
        values = {k: v for k, v in spec.items() if k != "family"}
        return build_application(spec["family"], removed_blocks=removed, **values)

    def builder(input_shape=(224, 224, 3), num_classes=1000, seed=0, **kwargs) -> keras.Model:
        return build_application(family, input_shape, num_classes, seed, **kwargs)

    builder.__name__ = family
    builder.__doc__ = f"keras.applications' {FAMILIES[family].__name__} (see :func:`build_application`)."
    register_builder(family, settings=ApplicationSettings, from_settings=from_settings, from_spec=from_spec)(builder)


for _family in FAMILIES:
    _register(_family)
