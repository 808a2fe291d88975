"""The experiment config: one frozen, JSON-serialisable record that is the truth of a run.

Flags and flagfiles are parsed into a :class:`Config`; experiments read nothing else.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Optional

from tf_lottery.models.cifar_resnet import depth_to_blocks


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything an experiment needs.

    Attributes:
        experiment: Registered experiment name (see ``tf_lottery.experiments``).
        model: Registered model builder name.
        depth: ResNet depth 6n+2; ignored when ``blocks_per_stage`` is set.
        blocks_per_stage: Explicit blocks per stage, or None to derive from ``depth``.
        width_multiplier: Scales the 16/32/64 filters.
        shortcut: "projection" or "zero_pad".
        input_shape: (height, width, channels).
        num_classes: Classifier outputs.
        seed: Seed of the initial weights (and, later, data order).
        memory_batch_size: Batch size for the memory estimate.
    """

    experiment: str = "describe"
    model: str = "cifar_resnet"
    depth: int = 32
    blocks_per_stage: Optional[tuple] = None
    width_multiplier: float = 1.0
    shortcut: str = "projection"
    input_shape: tuple = (32, 32, 3)
    num_classes: int = 10
    seed: int = 0
    memory_batch_size: int = 128

    def __post_init__(self):
        if self.blocks_per_stage is not None:
            object.__setattr__(self, "blocks_per_stage", tuple(int(n) for n in self.blocks_per_stage))
        else:
            depth_to_blocks(self.depth)  # fails early with the valid form
        object.__setattr__(self, "input_shape", tuple(int(n) for n in self.input_shape))

    def model_kwargs(self) -> dict:
        """Keyword arguments for the model builder."""
        return dict(
            depth=self.depth,
            num_classes=self.num_classes,
            input_shape=self.input_shape,
            seed=self.seed,
            blocks_per_stage=self.blocks_per_stage,
            width_multiplier=self.width_multiplier,
            shortcut=self.shortcut,
        )

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, indent=2)

    def digest(self) -> str:
        """A short hash of the config: the key of its run folder."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:12]
