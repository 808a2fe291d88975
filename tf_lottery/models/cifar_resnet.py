"""The CIFAR ResNet family of He et al. (2016), in the template the paper used.

Stem: 3x3 conv (16 filters), BN, ReLU. Three stages of ``n`` basic blocks with 16/32/64
filters (depth = 6n + 2). Block: conv3x3, BN, ReLU, conv3x3, BN, Add, ReLU. The first
block of stages 2 and 3 has stride 2 and, on its shortcut, a 1x1 stride-2 projection
conv without BN ("option B", the paper authors' template) or a zero-padded identity
("option A"). All convs: ``padding="same"``, he_normal, L2 1e-4, with bias. Head:
global average pooling and a Dense classifier.

Every layer is named from its place (``stage2_block3_conv1`` ...) and gets an
initializer seed derived from the model seed *and its name*, so a block keeps the same
initial weights θ0 whichever other blocks are removed: a ticket rebuilt from its spec
with the same seed is bit-identical to one cut out of the dense model.

The classifier outputs **logits** by default: the losses use ``from_logits=True``
(numerically stable), GraSP divides logits by a temperature, and KL-based criteria
apply the softmax themselves. ``output="softmax"`` is available for users who want
probabilities from the exported graph.
"""

from __future__ import annotations

import dataclasses
import zlib
from typing import ClassVar, Iterable, Optional, Sequence

import keras
from keras import layers

from tf_lottery.core import options
from tf_lottery.graph.lineage import attach as attach_lineage
from tf_lottery.models.registry import register_builder

SHORTCUTS = ("projection", "zero_pad")
OUTPUTS = ("logits", "softmax")
KERAS_BN_MOMENTUM = 0.99


@dataclasses.dataclass(frozen=True)
class CifarResNetSpec:
    """Everything that defines a CIFAR ResNet, JSON-serialisable.

    Attributes:
        blocks_per_stage: Basic blocks in each stage, e.g. (5, 5, 5) for ResNet32.
        base_filters: Filters of the stem and stage 1; stage s has base * 2**(s-1).
        width_multiplier: Scales ``base_filters`` (rounded, at least 1).
        shortcut: "projection" (1x1 stride-2 conv, option B) or "zero_pad" (option A).
        input_shape: (height, width, channels) of one image.
        num_classes: Classifier outputs.
        output: "logits" or "softmax".
        weight_decay: L2 factor on every conv kernel.
        seed: Seed of every initializer (combined with the layer name).
        bn_momentum: BatchNormalization's moving-average momentum (Keras' 0.99, the paper's
            template; left out of :meth:`to_dict` at that value, so specs from before it stay equal).

    Raises:
        ValueError: for a momentum outside [0, 1), empty or non-positive stages, or an unknown
            shortcut or output.

    Example:
        >>> spec = CifarResNetSpec(blocks_per_stage=(3, 3, 3))
        >>> spec.depth, build_from_spec(spec, ["stage1_block2"]).name
        (20, 'resnet20_minus1')
    """

    blocks_per_stage: tuple = (5, 5, 5)
    base_filters: int = 16
    width_multiplier: float = 1.0
    shortcut: str = "projection"
    input_shape: tuple = (32, 32, 3)
    num_classes: int = 10
    output: str = "logits"
    weight_decay: float = 1e-4
    seed: int = 0
    bn_momentum: float = KERAS_BN_MOMENTUM

    def __post_init__(self):
        if not 0 <= self.bn_momentum < 1:
            raise ValueError(f"bn_momentum must be in [0, 1); got {self.bn_momentum!r}")
        object.__setattr__(self, "blocks_per_stage", tuple(int(n) for n in self.blocks_per_stage))
        object.__setattr__(self, "input_shape", tuple(int(d) for d in self.input_shape))
        if not self.blocks_per_stage or any(n < 1 for n in self.blocks_per_stage):
            raise ValueError(
                f"blocks_per_stage must be a non-empty list of integers >= 1; got {self.blocks_per_stage}"
            )
        if self.shortcut not in SHORTCUTS:
            raise ValueError(f"shortcut must be one of {SHORTCUTS}; got {self.shortcut!r}")
        if self.output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}; got {self.output!r}")
        if len(self.input_shape) != 3 or any(d < 1 for d in self.input_shape):
            raise ValueError(f"input_shape must be (height, width, channels) >= 1; got {self.input_shape}")
        if self.num_classes < 1:
            raise ValueError(f"num_classes must be >= 1; got {self.num_classes}")
        if self.width_multiplier <= 0 or self.base_filters < 1:
            raise ValueError(
                f"width_multiplier must be > 0 and base_filters >= 1; got "
                f"{self.width_multiplier} and {self.base_filters}"
            )

    @property
    def depth(self) -> int:
        """Conv + dense layers on the main path: 2 per block, plus stem and classifier."""
        return 2 * sum(self.blocks_per_stage) + 2

    def stage_filters(self) -> list[int]:
        """Filters of each stage, doubling from stage to stage."""
        base = max(1, round(self.base_filters * self.width_multiplier))
        return [base * 2**s for s in range(len(self.blocks_per_stage))]

    def block_names(self) -> list[str]:
        """Names of all blocks of the dense network, in order."""
        return [
            block_name(stage, block)
            for stage, count in enumerate(self.blocks_per_stage, start=1)
            for block in range(1, count + 1)
        ]

    def to_dict(self) -> dict:
        """Returns a JSON-ready dict (tuples become lists; ``bn_momentum`` only when not Keras' default)."""
        values = {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}
        if values["bn_momentum"] == KERAS_BN_MOMENTUM:
            values.pop("bn_momentum")
        return values

    @classmethod
    def from_dict(cls, values: dict) -> "CifarResNetSpec":
        """Inverse of :meth:`to_dict`.

        Raises:
            ValueError: naming any key that is not a spec field.
        """
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - fields)
        if unknown:
            raise ValueError(f"unknown spec keys {unknown}; valid keys: {sorted(fields)}")
        return cls(**values)


def block_name(stage: int, block: int) -> str:
    """The name of block ``block`` of stage ``stage`` (both from 1)."""
    return f"stage{stage}_block{block}"


def depth_to_blocks(depth: int, num_stages: int = 3) -> tuple:
    """Blocks per stage of a CIFAR ResNet of depth 6n + 2.

    Args:
        depth: The network's depth (convs and the classifier).
        num_stages: Stages of equal size.

    Returns:
        ``(n,) * num_stages``.

    Raises:
        ValueError: if ``depth`` is not of the form 6n + 2 with n >= 1.

    Example:
        >>> depth_to_blocks(32)
        (5, 5, 5)
    """
    per_stage_layers = 2 * num_stages
    if not isinstance(depth, int) or depth < per_stage_layers + 2 or (depth - 2) % per_stage_layers:
        raise ValueError(
            f"depth must be 6n+2 with n >= 1 (8, 14, 20, 32, 44, 56, 110, ...); got {depth!r}"
        )
    return (((depth - 2) // per_stage_layers),) * num_stages


def model_name(spec: CifarResNetSpec, removed_blocks: Iterable[str] = ()) -> str:
    """``resnet{depth}`` for a dense network, ``resnet{depth}_minus{p}`` for a ticket."""
    p = len(set(removed_blocks))
    return f"resnet{spec.depth}" + (f"_minus{p}" if p else "")


def _seed_for(seed: int, name: str) -> int:
    """A per-layer seed that depends only on the model seed and the layer name."""
    return zlib.crc32(f"{seed}/{name}".encode()) & 0x7FFFFFFF


def build_from_spec(spec: CifarResNetSpec, removed_blocks: Iterable[str] = ()) -> keras.Model:
    """Builds the network described by ``spec`` without ``removed_blocks``.

    The kept blocks keep their dense names and (same seed) their dense θ0.

    Args:
        spec: The architecture.
        removed_blocks: Names of blocks to leave out. Only blocks that are not the first
            of their stage may be left out (the first one changes shape or, in stage 1,
            is the paper's ineligible first block).

    Returns:
        An uncompiled functional ``keras.Model`` with input named ``image``.

    Raises:
        ValueError: for an unknown block name or the first block of a stage.

    Example:
        >>> build_from_spec(CifarResNetSpec(), ["stage2_block3"]).name
        'resnet32_minus1'
    """
    removed = set(removed_blocks)
    all_blocks = spec.block_names()
    unknown = sorted(removed - set(all_blocks))
    if unknown:
        raise ValueError(f"unknown blocks {unknown}; blocks of this spec: {all_blocks}")
    first_blocks = sorted(n for n in removed if n.endswith("_block1"))
    if first_blocks:
        raise ValueError(f"the first block of a stage cannot be removed: {first_blocks}")

    def conv(filters, kernel, stride, name):
        return layers.Conv2D(
            filters,
            kernel,
            strides=stride,
            padding="same",
            use_bias=True,
            kernel_initializer=keras.initializers.HeNormal(seed=_seed_for(spec.seed, name)),
            kernel_regularizer=keras.regularizers.L2(spec.weight_decay) if spec.weight_decay else None,
            name=name,
        )

    def bn(name):
        return layers.BatchNormalization(momentum=spec.bn_momentum, name=name)

    inputs = keras.Input(shape=spec.input_shape, name="image")
    x = conv(spec.stage_filters()[0], 3, 1, "stem_conv")(inputs)
    x = bn("stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)

    for stage, (count, filters) in enumerate(zip(spec.blocks_per_stage, spec.stage_filters()), start=1):
        for block in range(1, count + 1):
            name = block_name(stage, block)
            if name in removed:
                continue
            downsample = stage > 1 and block == 1
            stride = 2 if downsample else 1
            y = conv(filters, 3, stride, f"{name}_conv1")(x)
            y = bn(f"{name}_bn1")(y)
            y = layers.ReLU(name=f"{name}_relu1")(y)
            y = conv(filters, 3, 1, f"{name}_conv2")(y)
            y = bn(f"{name}_bn2")(y)
            shortcut = x
            if downsample and spec.shortcut == "projection":
                shortcut = conv(filters, 1, 2, f"{name}_proj")(x)
            elif downsample:
                # Option A: subsample, then pad the new channels with zeros. Built from
                # stock layers only, so the graph exports and loads with no custom objects.
                shortcut = layers.AveragePooling2D(1, strides=2, padding="same", name=f"{name}_subsample")(x)
                zeros = layers.Rescaling(0.0, name=f"{name}_zeros")(shortcut)
                shortcut = layers.Concatenate(name=f"{name}_pad")([shortcut, zeros])
            y = layers.Add(name=f"{name}_add")([shortcut, y])
            x = layers.ReLU(name=f"{name}_out")(y)

    x = layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = layers.Dense(
        spec.num_classes,
        activation="softmax" if spec.output == "softmax" else None,
        kernel_initializer=keras.initializers.HeNormal(seed=_seed_for(spec.seed, "logits")),
        name="logits",
    )(x)
    model = keras.Model(inputs, outputs, name=model_name(spec, removed))
    return attach_lineage(model, "cifar_resnet", spec.to_dict(), removed)


@dataclasses.dataclass(frozen=True)
class CifarResNetSettings:
    """The ``cifar_resnet`` builder's own settings (each one a flag).

    Raises:
        ValueError: for a depth that is not 6n + 2, a width multiplier <= 0 or a momentum outside [0, 1).

    Example:
        >>> CifarResNetSettings(depth=56).blocks()
        (9, 9, 9)
    """

    depth: int = options.integer(20, "ResNet depth, 6n+2 (20, 32, 44, 56, 110, ...).", upper_bound=6 * 1000 + 2,
                                 why="1,000 blocks a stage: deeper graphs take minutes and gigabytes to build")
    blocks_per_stage: Optional[tuple] = options.integers(
        None, "Blocks per stage, e.g. 3,4,6; overrides --depth.", lower_bound=1, distinct=False, upper_bound=1000,
        why="deeper graphs take minutes and gigabytes to build")
    width_multiplier: float = options.real(1.0, "Scales the 16/32/64 filters.")
    shortcut: str = options.choice("projection", SHORTCUTS,
                                   "Downsampling shortcut: 1x1 projection conv (paper) or zero-padded identity "
                                   "(option A).")
    bn_momentum: float = options.real(KERAS_BN_MOMENTUM,
                                      "BatchNormalization moving-average momentum (0.99: Keras' default, the paper's "
                                      "template; 0.9 tracks the statistics within an epoch on short schedules).")

    #: Settings added after runs existed, with the default that builds what was built before them:
    #: at that value they stay out of a run's identity, so earlier run folders keep their names.
    IDENTITY_DEFAULTS: ClassVar[dict] = {"bn_momentum": KERAS_BN_MOMENTUM}

    def __post_init__(self):
        options.normalise(self)
        options.check_options(self)
        self.blocks()  # fails early with the valid form
        if self.width_multiplier <= 0:
            raise ValueError(f"width_multiplier must be > 0; got {self.width_multiplier}")
        if not 0 <= self.bn_momentum < 1:
            raise ValueError(f"bn_momentum must be in [0, 1); got {self.bn_momentum}")

    @staticmethod
    def canonical(values: dict) -> dict:
        """One spelling of one network for a run's identity: three equal stages given as
        ``blocks_per_stage`` are the ``depth`` they make (``--blocks_per_stage=2,2,2`` is ``--depth=14``);
        other stages override ``depth``, which then says nothing and is left out."""
        stages = values.get("blocks_per_stage")
        if stages is None:
            return values
        stages = tuple(stages)
        values = dict(values)
        if len(stages) == 3 and len(set(stages)) == 1:
            values["depth"], values["blocks_per_stage"] = 6 * stages[0] + 2, None
        else:
            values.pop("depth", None)
        return values

    def blocks(self) -> tuple:
        """Blocks per stage: ``blocks_per_stage``, else from ``depth``.

        Raises:
            ValueError: for a depth that is not 6n + 2.
        """
        return self.blocks_per_stage if self.blocks_per_stage is not None else depth_to_blocks(self.depth)


def _from_settings(settings: CifarResNetSettings, input_shape, num_classes, seed, weight_decay) -> keras.Model:
    return cifar_resnet(settings.depth, num_classes, input_shape, seed, blocks_per_stage=settings.blocks_per_stage,
                        width_multiplier=settings.width_multiplier, shortcut=settings.shortcut,
                        weight_decay=weight_decay, bn_momentum=settings.bn_momentum)


def _from_spec(spec: dict, removed) -> keras.Model:
    return build_from_spec(CifarResNetSpec.from_dict(spec), removed)


@register_builder("cifar_resnet", settings=CifarResNetSettings, from_settings=_from_settings, from_spec=_from_spec)
def cifar_resnet(
    depth: Optional[int] = 32,
    num_classes: int = 10,
    input_shape: Sequence[int] = (32, 32, 3),
    seed: int = 0,
    *,
    blocks_per_stage: Optional[Sequence[int]] = None,
    width_multiplier: float = 1.0,
    shortcut: str = "projection",
    output: str = "logits",
    weight_decay: float = 1e-4,
    removed_blocks: Iterable[str] = (),
    bn_momentum: float = 0.99,
) -> keras.Model:
    """Builds a CIFAR ResNet (paper template) with named blocks.

    Args:
        depth: 6n + 2 (20, 32, 44, 56, 110, ...); ignored when ``blocks_per_stage`` is given.
        num_classes: Classifier outputs.
        input_shape: (height, width, channels), e.g. (28, 28, 1) for Fashion-MNIST.
        seed: Same seed, bit-identical initial weights.
        blocks_per_stage: Explicit blocks per stage, e.g. (3, 4, 6).
        width_multiplier: Scales the 16/32/64 filters.
        shortcut: "projection" (paper) or "zero_pad" (option A).
        output: "logits" (library default) or "softmax".
        weight_decay: L2 on conv kernels (paper: 1e-4).
        removed_blocks: Blocks to leave out (see :func:`build_from_spec`).
        bn_momentum: BatchNormalization momentum (Keras' 0.99, the paper's template).

    Returns:
        A functional ``keras.Model`` named ``resnet{depth}``.

    Raises:
        ValueError: for an impossible depth or any invalid option.

    Example:
        >>> model = cifar_resnet(depth=32, num_classes=10, input_shape=(32, 32, 3), seed=0)
        >>> model.count_params()
        470218
    """
    if blocks_per_stage is None:
        blocks_per_stage = depth_to_blocks(depth)
    spec = CifarResNetSpec(
        blocks_per_stage=tuple(blocks_per_stage),
        width_multiplier=width_multiplier,
        shortcut=shortcut,
        input_shape=tuple(input_shape),
        num_classes=num_classes,
        output=output,
        weight_decay=weight_decay,
        seed=seed,
        bn_momentum=bn_momentum,
    )
    return build_from_spec(spec, removed_blocks)
