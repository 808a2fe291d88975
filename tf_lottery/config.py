"""The experiment config: one frozen, JSON-serialisable record that is the truth of a run.

Flags and flagfiles are parsed into a :class:`Config`; experiments read nothing else.
Its defaults are the embedded quick demo (``tf-lottery`` with no flags): Fashion-MNIST
from local files (15,000 training images, flips but no crops, so that three epochs
suffice), ResNet-20, GraSP at initialization, two blocks removed, three epochs at a
learning rate of 0.05 divided by 10 after two. The paper's CIFAR-10 setups are flagfiles under ``flags/``; the library's own
training default (``tf_lottery.train.Recipe``) is the paper group's 200-epoch recipe.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Optional

from tf_lottery.data.pipeline import DataOptions
from tf_lottery.models.cifar_resnet import depth_to_blocks
from tf_lottery.train import Recipe

REWINDS = ("weights", "lr", "reinit")
SWEEPABLE = ("init_ticket", "lottery")
_TUPLES = ("blocks_per_stage", "input_shape", "lr_drops", "latency_batch_sizes", "keep_epochs",
           "sweep_num_blocks", "sweep_criteria", "sweep_seeds", "sweep_rewinds", "sweep_rewind_epochs")
# The fields only a ticket reads; the shared dense run of a config ignores them.
TICKET_FIELDS = ("criterion", "num_blocks", "fraction", "schedule", "min_blocks_per_stage", "aggregation",
                 "prune_first", "score_per_class", "rewind", "rewind_epoch")
SWEEP_FIELDS = ("sweep_experiment", "sweep_num_blocks", "sweep_criteria", "sweep_seeds", "sweep_rewinds",
                "sweep_rewind_epochs")


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything an experiment needs (see ``tf-lottery --helpfull`` for each flag).

    Model: experiment, model, depth, blocks_per_stage, width_multiplier, shortcut, seed,
    input_shape and num_classes (None: from the dataset). Data: dataset, data_dir,
    download, train_size, val_size, test_size, mean_subtraction, crop, flip. Ticket:
    criterion, num_blocks, fraction, schedule, min_blocks_per_stage, aggregation,
    prune_first, score_per_class; rewind, rewind_epoch (``lottery`` only), keep_epochs
    (dense epochs whose weights are kept). Sweep (``sweep`` only): sweep_experiment and the
    lists sweep_num_blocks, sweep_criteria, sweep_seeds, sweep_rewinds, sweep_rewind_epochs
    (empty: the single value of the matching field). Training: length, batch_size,
    learning_rate, momentum, nesterov, lr_drops, lr_drop_factor, weight_decay. Output:
    runs_dir, export, carbon_country, latency_batch_sizes, memory_batch_size, tensorboard.
    """

    experiment: str = "init_ticket"
    model: str = "cifar_resnet"
    depth: int = 20
    blocks_per_stage: Optional[tuple] = None
    width_multiplier: float = 1.0
    shortcut: str = "projection"
    seed: int = 0
    input_shape: Optional[tuple] = None
    num_classes: Optional[int] = None

    dataset: str = "fashion_mnist"
    data_dir: Optional[str] = None
    download: bool = False
    train_size: Optional[int] = 15000
    val_size: int = 1000
    test_size: Optional[int] = None
    mean_subtraction: bool = True
    crop: bool = False
    flip: bool = True

    criterion: str = "grasp"
    num_blocks: Optional[int] = 2
    fraction: Optional[float] = None
    schedule: str = "oneshot"
    min_blocks_per_stage: int = 2
    aggregation: Optional[str] = None
    prune_first: Optional[str] = None
    score_per_class: int = 10
    rewind: str = "weights"
    rewind_epoch: int = 0
    keep_epochs: tuple = ()

    sweep_experiment: str = "init_ticket"
    sweep_num_blocks: tuple = ()
    sweep_criteria: tuple = ()
    sweep_seeds: tuple = ()
    sweep_rewinds: tuple = ()
    sweep_rewind_epochs: tuple = ()

    length: str = "3ep"
    batch_size: int = 128
    learning_rate: float = 0.05
    momentum: float = 0.9
    nesterov: bool = True
    lr_drops: tuple = ("2ep",)
    lr_drop_factor: float = 0.1
    weight_decay: float = 1e-4

    runs_dir: str = "runs"
    export: bool = True
    carbon_country: str = "USA"
    latency_batch_sizes: tuple = (1, 128)
    memory_batch_size: int = 128
    tensorboard: bool = False

    def __post_init__(self):
        for name in _TUPLES:
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, tuple(value))
        if self.blocks_per_stage is None:
            depth_to_blocks(self.depth)  # fails early with the valid form
        self.recipe()  # validates lengths and rates
        if self.rewind not in REWINDS:
            raise ValueError(f"rewind must be one of {REWINDS}; got {self.rewind!r}")
        if self.sweep_experiment not in SWEEPABLE:
            raise ValueError(f"sweep_experiment must be one of {SWEEPABLE}; got {self.sweep_experiment!r}")
        for rewind in self.sweep_rewinds:
            if rewind not in REWINDS:
                raise ValueError(f"sweep_rewinds must be among {REWINDS}; got {self.sweep_rewinds}")
        for name in ("keep_epochs", "sweep_num_blocks", "sweep_seeds", "sweep_rewind_epochs"):
            values = getattr(self, name)
            if any(v < 0 for v in values) or len(set(values)) != len(values):
                raise ValueError(f"{name} takes distinct integers >= 0; got {list(values)}")
        if len(set(self.sweep_criteria)) != len(self.sweep_criteria):
            raise ValueError(f"sweep_criteria lists a criterion twice: {list(self.sweep_criteria)}")
        if self.score_per_class < 1:
            raise ValueError(f"score_per_class must be >= 1; got {self.score_per_class}")
        if len(self.carbon_country) != 3 or not self.carbon_country.isalpha():
            raise ValueError(f"carbon_country must be an ISO 3166 alpha-3 code such as USA or FRA; got {self.carbon_country!r}")
        for size in self.latency_batch_sizes:
            if size < 1:
                raise ValueError(f"latency batch sizes must be >= 1; got {self.latency_batch_sizes}")

    def recipe(self) -> Recipe:
        """The training recipe of this config (validates lengths and rates)."""
        return Recipe(self.length, self.batch_size, self.learning_rate, self.momentum, self.nesterov,
                      self.lr_drops, self.lr_drop_factor)

    def data_options(self) -> DataOptions:
        """The data options of this config."""
        return DataOptions(self.dataset, self.data_dir, self.download, self.train_size, self.val_size,
                           self.test_size, self.mean_subtraction, self.crop, self.flip, self.seed)

    def model_kwargs(self, input_shape=None, num_classes=None) -> dict:
        """Keyword arguments for the model builder; shapes default to the dataset's."""
        return dict(
            depth=self.depth,
            num_classes=self.num_classes or num_classes,
            input_shape=self.input_shape or input_shape,
            seed=self.seed,
            blocks_per_stage=self.blocks_per_stage,
            width_multiplier=self.width_multiplier,
            shortcut=self.shortcut,
            weight_decay=self.weight_decay,
        )

    def criterion_options(self) -> dict:
        """Options passed to the criterion (only those set)."""
        return {"aggregation": self.aggregation} if self.aggregation else {}

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, indent=2) + "\n"

    @classmethod
    def from_dict(cls, values: dict) -> "Config":
        """Inverse of :meth:`to_dict`.

        Raises:
            ValueError: naming unknown keys.
        """
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - fields)
        if unknown:
            raise ValueError(f"unknown config keys {unknown}")
        return cls(**values)

    def digest(self) -> str:
        """A short hash of the config: the key of its run folder.

        ``runs_dir`` is left out: where the folder lives is not what the run is.
        """
        identity = {k: v for k, v in self.to_dict().items() if k != "runs_dir"}
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]
