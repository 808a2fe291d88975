"""ImageNet-style ResNets of He et al. (2016), Table 1, with the project's naming.

ResNet-18 and -34 stack basic blocks (two 3x3 convs); ResNet-50, -101 and -152 stack
bottleneck blocks (1x1 reduce, 3x3, 1x1 expand by 4), in four stages of 64/128/256/512
base filters with 2/2/2/2, 3/4/6/3, 3/4/6/3, 3/4/23/3 and 3/8/36/3 blocks. The first block of
stages 2-4 downsamples by 2; a block whose shape changes has a 1x1 projection conv with
BatchNorm on its shortcut (option B). Convs have no bias (BatchNorm follows each one).

Choices where the paper is silent or variants differ, stated once here:

* the stride of a downsampling bottleneck is on its 3x3 conv (ResNet "v1.5", as torchvision;
  keras.applications' ResNet50 puts it on the first 1x1);
* ``stem="imagenet"``: 7x7/2 conv, BN, ReLU, 3x3/2 max pooling; ``stem="cifar"``: one 3x3/1
  conv, BN, ReLU and no pooling, the usual form on 32x32 inputs;
* every layer's initializer (he_normal) is seeded from the model seed and the layer's
  name, so a block keeps its θ0 whichever blocks are removed (as in ``cifar_resnet``);
* removal eligibility follows the paper's rule, like ``cifar_resnet``: the first block of
  stage 1 keeps the identity shape but is fed by the stem, so it stays.

Names follow ``cifar_resnet``: ``stem_conv``, ``stage2_block3_conv1``, ``stage2_block1_proj``,
``stage2_block3_add``, ``stage2_block3_out``, ``pool``, ``logits``.

Example:
    >>> model = imagenet_resnet(18, num_classes=10, input_shape=(64, 64, 3))
    >>> model.name, len(tl.surgery.blocks(model))
    ('imagenet_resnet18', 8)
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Sequence

import keras
from keras import layers

from tf_lottery.core import options
from tf_lottery.models.applications import OUTPUTS
from tf_lottery.models.cifar_resnet import _seed_for, block_name
from tf_lottery.graph.lineage import attach as attach_lineage
from tf_lottery.models.registry import register_builder

LAYOUTS = {18: ("basic", (2, 2, 2, 2)), 34: ("basic", (3, 4, 6, 3)), 50: ("bottleneck", (3, 4, 6, 3)),
           101: ("bottleneck", (3, 4, 23, 3)), 152: ("bottleneck", (3, 8, 36, 3))}
"""Depth -> (block kind, blocks per stage), from He et al. (2016), Table 1."""

STEMS = ("imagenet", "cifar")


@dataclasses.dataclass(frozen=True)
class ImageNetResNetSpec:
    """Everything that defines an ImageNet-style ResNet, JSON-serialisable.

    Attributes:
        depth: 18, 34, 50, 101 or 152 (:data:`LAYOUTS`).
        stem: "imagenet" (7x7/2 conv and max pooling) or "cifar" (one 3x3 conv, for small inputs).
        width_multiplier: Scales the filters of every stage.
        input_shape: (height, width, channels) of one image.
        num_classes: Classifier outputs.
        output: "logits" or "softmax".
        weight_decay: L2 factor on every conv kernel.
        seed: Seed of every initializer.

    Raises:
        ValueError: for an unknown depth, stem or output, a bad input shape, no class or a width
            multiplier <= 0.

    Example:
        >>> spec = ImageNetResNetSpec(depth=18, stem="cifar", input_shape=(32, 32, 3), num_classes=10)
        >>> len(spec.block_names()), build_from_spec(spec).name
        (8, 'imagenet_resnet18')
    """

    depth: int = 50
    stem: str = "imagenet"
    width_multiplier: float = 1.0
    input_shape: tuple = (224, 224, 3)
    num_classes: int = 1000
    output: str = "logits"
    weight_decay: float = 1e-4
    seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "input_shape", tuple(int(d) for d in self.input_shape))
        if self.depth not in LAYOUTS:
            raise ValueError(f"depth must be one of {sorted(LAYOUTS)} for imagenet_resnet; got {self.depth!r}")
        if self.stem not in STEMS:
            raise ValueError(f"stem must be one of {STEMS}; got {self.stem!r}")
        if self.output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}; got {self.output!r}")
        if len(self.input_shape) != 3 or any(d < 1 for d in self.input_shape):
            raise ValueError(f"input_shape must be (height, width, channels) >= 1; got {self.input_shape}")
        if self.num_classes < 1 or self.width_multiplier <= 0:
            raise ValueError(f"num_classes must be >= 1 and width_multiplier > 0; got {self.num_classes} and "
                             f"{self.width_multiplier}")

    def block_names(self) -> list:
        """The names of every block the spec's network has, in graph order."""
        return [block_name(stage, block) for stage, count in enumerate(LAYOUTS[self.depth][1], start=1)
                for block in range(1, count + 1)]

    def to_dict(self) -> dict:
        """JSON-ready (tuples as lists): the spec a lineage records."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


def build_from_spec(spec: ImageNetResNetSpec, removed_blocks: Iterable[str] = ()) -> keras.Model:
    """Builds the network ``spec`` describes without ``removed_blocks`` (kept blocks keep their θ0).

    Raises:
        ValueError: for an unknown block or the first block of a stage.
    """
    removed = set(removed_blocks)
    unknown = sorted(removed - set(spec.block_names()))
    if unknown:
        raise ValueError(f"unknown blocks {unknown}; blocks of this spec: {spec.block_names()}")
    firsts = sorted(n for n in removed if n.endswith("_block1"))
    if firsts:
        raise ValueError(f"the first block of a stage cannot be removed: {firsts}")
    kind, counts = LAYOUTS[spec.depth]
    base = max(1, round(64 * spec.width_multiplier))
    regularizer = keras.regularizers.L2(spec.weight_decay) if spec.weight_decay else None

    def conv(filters, kernel, stride, name):
        return layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False, name=name,
                             kernel_initializer=keras.initializers.HeNormal(seed=_seed_for(spec.seed, name)),
                             kernel_regularizer=regularizer)

    def conv_bn(x, filters, kernel, stride, name, suffix, relu=True):
        x = conv(filters, kernel, stride, f"{name}_conv{suffix}")(x)
        x = layers.BatchNormalization(name=f"{name}_bn{suffix}")(x)
        return layers.ReLU(name=f"{name}_relu{suffix}")(x) if relu else x

    inputs = keras.Input(shape=spec.input_shape, name="image")
    if spec.stem == "imagenet":
        x = conv(base, 7, 2, "stem_conv")(inputs)
    else:
        x = conv(base, 3, 1, "stem_conv")(inputs)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    if spec.stem == "imagenet":
        x = layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)

    for stage, count in enumerate(counts, start=1):
        filters = base * 2 ** (stage - 1)
        out_filters = filters * (4 if kind == "bottleneck" else 1)
        for block in range(1, count + 1):
            name = block_name(stage, block)
            if name in removed:
                continue
            stride = 2 if stage > 1 and block == 1 else 1
            if kind == "basic":
                y = conv_bn(x, filters, 3, stride, name, 1)
                y = conv_bn(y, filters, 3, 1, name, 2, relu=False)
            else:
                y = conv_bn(x, filters, 1, 1, name, 1)
                y = conv_bn(y, filters, 3, stride, name, 2)
                y = conv_bn(y, out_filters, 1, 1, name, 3, relu=False)
            shortcut = x
            if stride != 1 or x.shape[-1] != out_filters:
                shortcut = conv(out_filters, 1, stride, f"{name}_proj")(x)
                shortcut = layers.BatchNormalization(name=f"{name}_proj_bn")(shortcut)
            y = layers.Add(name=f"{name}_add")([shortcut, y])
            x = layers.ReLU(name=f"{name}_out")(y)

    x = layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = layers.Dense(spec.num_classes, activation="softmax" if spec.output == "softmax" else None,
                           kernel_initializer=keras.initializers.HeNormal(seed=_seed_for(spec.seed, "logits")),
                           name="logits")(x)
    p = len(removed)
    model = keras.Model(inputs, outputs, name=f"imagenet_resnet{spec.depth}" + (f"_minus{p}" if p else ""))
    return attach_lineage(model, "imagenet_resnet", spec.to_dict(), removed)


@dataclasses.dataclass(frozen=True)
class ImageNetResNetSettings:
    """The ``imagenet_resnet`` builder's own settings (each one a flag; ``depth`` is shared with
    ``cifar_resnet``, whose default it does not take).

    Example:
        >>> tl.models.get("imagenet_resnet").from_settings(ImageNetResNetSettings(depth=18, stem="cifar"),
        ...                                                 (32, 32, 3), 10, 0, 1e-4).name
        'imagenet_resnet18'
    """

    depth: int = options.integer(50, "ResNet depth: 6n+2 for cifar_resnet; 18, 34, 50, 101 or 152 for "
                                      "imagenet_resnet.")
    stem: str = options.choice("imagenet", STEMS, "imagenet_resnet stem: 7x7/2 conv and max pooling, or one 3x3 "
                                                  "conv (cifar) for small inputs.")
    width_multiplier: float = options.real(1.0, "Scales the filters of every stage.")
    output: str = options.choice("logits", OUTPUTS, "keras.applications and imagenet_resnet models: the head's "
                                                    "output, logits (library default) or softmax probabilities.")

    def __post_init__(self):
        options.normalise(self)
        options.check_options(self)
        ImageNetResNetSpec(depth=self.depth, stem=self.stem, width_multiplier=self.width_multiplier,
                           output=self.output)  # fails early with the valid values


def _from_settings(settings: ImageNetResNetSettings, input_shape, num_classes, seed, weight_decay) -> keras.Model:
    return imagenet_resnet(settings.depth, num_classes, input_shape, seed, stem=settings.stem,
                           width_multiplier=settings.width_multiplier, output=settings.output,
                           weight_decay=weight_decay)


def _from_spec(spec: dict, removed) -> keras.Model:
    return build_from_spec(ImageNetResNetSpec(**spec), removed)


@register_builder("imagenet_resnet", settings=ImageNetResNetSettings, from_settings=_from_settings,
                  from_spec=_from_spec)
def imagenet_resnet(depth: int = 50, num_classes: int = 1000, input_shape: Sequence[int] = (224, 224, 3),
                    seed: int = 0, *, stem: str = "imagenet", width_multiplier: float = 1.0, output: str = "logits",
                    weight_decay: float = 1e-4, removed_blocks: Iterable[str] = ()) -> keras.Model:
    """Builds an ImageNet-style ResNet (18, 34, 50, 101, 152) with named blocks.

    Args:
        depth: 18, 34 (basic blocks), 50, 101 or 152 (bottleneck blocks).
        num_classes: Classifier outputs.
        input_shape: (height, width, channels).
        seed: Same seed, bit-identical θ0.
        stem: "imagenet" (7x7/2 conv, max pooling) or "cifar" (3x3/1 conv).
        width_multiplier: Scales the 64/128/256/512 filters.
        output: "logits" or "softmax".
        weight_decay: L2 on conv kernels.
        removed_blocks: Blocks to leave out (not the first of a stage).

    Returns:
        A functional ``keras.Model`` named ``imagenet_resnet{depth}``.

    Raises:
        ValueError: for an unsupported depth or any invalid option.

    Example:
        >>> imagenet_resnet(50, num_classes=10, input_shape=(64, 64, 3)).count_params()
        23528522
    """
    spec = ImageNetResNetSpec(depth=depth, stem=stem, width_multiplier=width_multiplier,
                              input_shape=tuple(input_shape), num_classes=num_classes, output=output,
                              weight_decay=weight_decay, seed=seed)
    return build_from_spec(spec, removed_blocks)
