"""The config's sections: one frozen dataclass per concern, each declaring its flags.

Every field is declared with :mod:`tf_lottery.core.options` (help, kind, allowed values), so
the command line is generated from these classes. Each section says whether it enters
a run's identity (the hash naming its run folder) through ``IDENTITY``:

* ``"dense"``: what the dense network is (model, data, training, and the seed): the
  key of the shared dense run folder, and part of every other key;
* ``"ticket"``: how the ticket is made (method): added for a ticket run;
* ``"sweep"``: the sweep's lists: added for a sweep's own folder;
* ``None``: what is measured (evaluation: results are cached per evaluation instead)
  and where and how output goes (runtime): never in a hash.
"""

from __future__ import annotations

import dataclasses
import os
import math
from typing import ClassVar, Optional

from tf_lottery.config.experiments import EXPERIMENTS
from tf_lottery.core import options
from tf_lottery.criteria import CRITERIA, settings_classes as criteria_settings
from tf_lottery.data import DATASETS, TASKS
from tf_lottery.data.streaming import DATA_PATHS, resolve_path
from tf_lottery.runtime import carbon
from tf_lottery.runtime.distribute import LR_SCALINGS, PRECISIONS, STRATEGIES, XLA_MODES
from tf_lottery.evals import EVALS, options_classes as eval_options
from tf_lottery.tickets import METHODS, SCHEDULES
from tf_lottery.tickets.registry import settings_classes as method_settings
from tf_lottery.models import MODELS
from tf_lottery.core.options import boolean, choice, integer, integers, names, real, text
from tf_lottery.training import NO_WARMUP, Recipe, parse_length
from tf_lottery.training.recipe import OPTIMIZERS, canonical_drops, canonical_length

#: The ``--rewind`` modes of ``lottery``: the kept layers' weights back to epoch i, the trained weights with the
#: learning-rate schedule replayed from epoch i, or a random re-initialization.
REWINDS = ("weights", "lr", "reinit")
HEALS = ("finetune", "distil")
"""``--heal``: how a ``lottery`` ticket trains after the cut: on the labels, or on the trained dense model's
outputs (:mod:`tf_lottery.training.healing`)."""
HEAL_FIELDS = ("heal", "heal_temperature", "heal_hidden")
"""The fields that name a ticket run when ``--heal`` is not ``finetune``."""
SCORE_SEQUENCES = 64
"""``--task=causal_lm``: the sequences a criterion scores on when ``--score_sequences`` is not given."""


def _sweepable():
    return [name for name in EXPERIMENTS.names() if EXPERIMENTS.get(name).sweepable]


def _json_ready_default(field) -> object:
    """A dataclass field's default as :func:`_json_ready` writes it (tuples become lists)."""
    return list(field.default) if isinstance(field.default, tuple) else field.default


def _json_ready(instance) -> dict:
    """A dataclass's fields as a dict, tuples as lists."""
    values = {f.name: getattr(instance, f.name) for f in dataclasses.fields(instance)}
    return {name: list(value) if isinstance(value, tuple) else value for name, value in values.items()}


class Section:
    """What every section shares: validation of its options, JSON round trip."""

    IDENTITY: ClassVar[Optional[str]] = None

    def __post_init__(self):
        options.normalise(self)
        options.check_options(self)
        options.check_composed(self)

    def to_dict(self) -> dict:
        """JSON-ready values (tuples become lists)."""
        return _json_ready(self)

    @classmethod
    def from_dict(cls, values: dict):
        """Inverse of :meth:`to_dict`.

        Raises:
            ValueError: naming unknown keys and the valid ones.
        """
        fields = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(fields))
        if unknown:
            raise ValueError(f"unknown {cls.__name__} keys {unknown}; valid keys: {fields}")
        return cls(**values)


@dataclasses.dataclass(frozen=True)
class ModelConfig(Section):
    """The model: a registered builder (``type``, flag ``--model``) and that builder's own
    settings (for ``cifar_resnet``: depth, blocks_per_stage, width_multiplier, shortcut).

    Attributes:
        settings: The builder's settings dataclass (``MODELS.get(type).settings``; None: its defaults).

    Raises:
        ValueError: for an option out of its allowed values, an ``input_shape`` that is not three
            integers, or ``settings`` of another builder's class.

    Example:
        >>> ModelConfig("cifar_resnet", settings=tl.models.CifarResNetSettings(depth=56))
    """

    IDENTITY: ClassVar[str] = "dense"

    type: str = choice("cifar_resnet", MODELS, "Model builder.", flag="model")
    input_shape: Optional[tuple] = integers(None, "Image height,width,channels (default: the dataset's).",
                                            lower_bound=1, distinct=False, upper_bound=4096,
                                            why="larger images do not fit a training batch in memory")
    num_classes: Optional[int] = integer(None, "Classifier outputs (default: the dataset's).", lower_bound=1)
    settings: object = None  # the builder's settings dataclass (default: its defaults)

    def __post_init__(self):
        super().__post_init__()
        if self.input_shape is not None and len(self.input_shape) != 3:
            raise ValueError(f"input_shape takes height,width,channels (three integers, e.g. 32,32,3); got "
                             f"{','.join(map(str, self.input_shape))}")
        kind = MODELS.get(self.type).settings
        if self.settings is None:
            object.__setattr__(self, "settings", kind())
        elif not isinstance(self.settings, kind):
            raise ValueError(f"model {self.type!r} takes {kind.__name__} settings; got {type(self.settings).__name__}")

    def to_dict(self) -> dict:
        """``{"type", "input_shape", "num_classes", <the builder's settings>...}``."""
        common = {"type": self.type, "input_shape": list(self.input_shape) if self.input_shape else None,
                  "num_classes": self.num_classes}
        return {**common, **_json_ready(self.settings)}

    def identity(self, dataset=None) -> dict:
        """:meth:`to_dict` less the builder's settings that stand at the value that builds what was
        built before they existed (its ``IDENTITY_DEFAULTS``): earlier run folders keep their names.

        For a builder whose settings do not say everything it builds (``--model=module:function``),
        also ``"architecture"``: a digest of the model it builds at the run's input shape and
        class count (``dataset``, a :class:`tf_lottery.data.DatasetInfo`, gives the defaults).

        Raises:
            ValueError: for such a builder when neither the config nor ``dataset`` gives the input
                shape and class count.
        """
        values = self.to_dict()
        for name, default in getattr(type(self.settings), "IDENTITY_DEFAULTS", {}).items():
            if values.get(name) == default:
                values.pop(name)
        canonical = getattr(type(self.settings), "canonical", None)
        if canonical is not None:  # the builder's own equivalent spellings (depth against stages, say)
            values = canonical(values)
        if dataset is not None:  # the dataset's own shape and classes, given explicitly, are the default
            if values.get("num_classes") == getattr(dataset, "num_classes", None):
                values["num_classes"] = None
            shape = values.get("input_shape")
            if shape is not None and tuple(shape) == tuple(getattr(dataset, "input_shape", ()) or ()):
                values["input_shape"] = None
        builder = MODELS.get(self.type)
        if builder.architecture is not None:
            shape = self.input_shape or getattr(dataset, "input_shape", None)
            classes = self.num_classes or getattr(dataset, "num_classes", None)
            if not shape or not classes:
                raise ValueError(f"--model={self.type} needs --input_shape and --num_classes with this dataset (its "
                                 "shape and classes are known only once it is loaded)")
            values["architecture"] = builder.architecture(self.settings, tuple(shape), classes)
        return values

    @classmethod
    def from_dict(cls, values: dict) -> "ModelConfig":
        """Inverse of :meth:`to_dict`: the builder's settings are the keys besides the common ones.

        Raises:
            ValueError: naming the keys the builder's settings do not have, and the ones they have.
        """
        values = dict(values)
        kind = values.pop("type", "cifar_resnet")
        common = {k: values.pop(k) for k in ("input_shape", "num_classes") if k in values}
        settings_class = MODELS.get(kind).settings
        fields = [f.name for f in dataclasses.fields(settings_class)]
        unknown = sorted(set(values) - set(fields))
        if unknown:
            raise ValueError(f"unknown settings {unknown} for model {kind!r}; its settings: {fields}")
        return cls(kind, settings=settings_class(**values), **common)


@dataclasses.dataclass(frozen=True)
class DataConfig(Section):
    """The data: which dataset, how much of it, and its preprocessing and augmentation.

    Raises:
        ValueError: for an option out of its allowed values, a dataset of another ``task``, or (for
            ``classify``) a ``data_path`` the dataset has no source for.

    Example:
        >>> DataConfig("cifar10", crop=True).identity()["crop"]
        True
    """

    IDENTITY: ClassVar[str] = "dense"

    dataset: str = choice("fashion_mnist", DATASETS, "Dataset.")
    data_dir: Optional[str] = text(None, "Where the dataset is (Fashion-MNIST IDX folder or tfds data_dir).")
    download: bool = boolean(False, "Let tfds download a missing dataset (needs internet).")
    train_size: Optional[int] = integer(15000, "Training examples (0 = all).", lower_bound=0, zero_means_none=True)
    val_size: int = integer(1000, "Validation examples held out of the training split.", lower_bound=0)
    test_size: Optional[int] = integer(None, "Test examples (0 = all).", lower_bound=0, zero_means_none=True)
    mean_subtraction: bool = boolean(True, "Subtract the per-pixel training mean.")
    crop: bool = boolean(False, "Pad-4 random crop augmentation.")
    flip: bool = boolean(True, "Random horizontal flip augmentation.")
    data_path: str = choice("auto", DATA_PATHS, "memory (numpy arrays), stream (tfds as_dataset, for data that does "
                            "not fit in memory) or auto (tfds:<name> datasets stream, the registered ones load).")
    cache_dir: Optional[str] = text(None, "stream: cache the decoded examples on disk in this folder (tf.data cache).")
    task: str = choice("classify", TASKS, "What the model learns: classify (images and their labels) or causal_lm "
                       "(the next token of a text corpus: --dataset=fortunes, python_docs or tfds_text:<name> "
                       "--model=byte_decoder or package.module:function; flags/fortunes_causal_lm.cfg).")
    sequence_length: int = integer(128, "causal_lm: tokens per training sequence (the model's "
                                   "max_sequence_length).", lower_bound=2, upper_bound=65536,
                                   why="attention over a sequence costs its length squared")

    def __post_init__(self):
        super().__post_init__()
        info = DATASETS.get(self.dataset)
        if info.task != self.task:
            texts = [name for name in DATASETS.names() if DATASETS.get(name).task == "causal_lm"]
            raise ValueError(f"--dataset={self.dataset} is data for --task={info.task}; got --task={self.task}"
                             + (f" (text corpora: {', '.join(texts)})" if self.task == "causal_lm" else ""))
        if self.task == "classify":
            resolve_path(info, self.data_path)  # a path the dataset lacks fails here

    def identity(self) -> dict:
        """The fields that name a dense run: all but the cache folder, the data path only
        when it is not the dataset's automatic one, and the task and sequence length only for a
        language model (so earlier runs keep their folders)."""
        values = self.to_dict()
        values.pop("cache_dir")
        if self.task == "classify":
            values.pop("task")
            values.pop("sequence_length")
        else:
            values.pop("data_path")
            return values
        requested = values.pop("data_path")
        info = DATASETS.get(self.dataset)
        if resolve_path(info, requested) != resolve_path(info, "auto"):
            values["data_path"] = resolve_path(info, requested)
        # One spelling of the same data: the default folder given explicitly (or with a trailing /) is the
        # default; "all the examples" given as their count is all of them.
        values["data_dir"] = _canonical_dir(info, self.data_dir)
        sizes = info.split_sizes or {}
        for split, left in (("train", sizes.get("train", 0) - self.val_size), ("test", sizes.get("test"))):
            if values[f"{split}_size"] == 0 or (left and values[f"{split}_size"] == left):
                values[f"{split}_size"] = None
        return values


def _canonical_dir(info, data_dir: Optional[str]) -> Optional[str]:
    """``--data_dir`` as a run's identity reads it: None for the dataset's default folder (or a dataset that
    reads no folder), else the path without a trailing separator."""
    if data_dir is None or info.name == "synthetic":
        return None
    path = os.path.normpath(os.path.expanduser(data_dir))
    return None if info.default_dir and path == os.path.normpath(info.default_dir) else path


@dataclasses.dataclass(frozen=True)
class TrainingConfig(Section):
    """The training recipe, and which dense epochs keep their weights θ_i.

    Lengths are stored in one spelling (``02ep`` becomes ``2ep``), so that they name one run.

    Raises:
        ValueError: for a length, rate or option the recipe does not take, kept epochs that are not
            distinct, kept epochs (but 0) with a length in steps, or kept epochs or steps not below the length.

    Example:
        >>> TrainingConfig(length="200ep", lr_drops=("100ep", "150ep")).recipe().lr_drops
        ('100ep', '150ep')
    """

    IDENTITY: ClassVar[str] = "dense"

    length: str = text("3ep", "Training length: 200ep (epochs) or 5000it (steps).")
    batch_size: int = integer(128, "Batch size.", lower_bound=1)
    learning_rate: float = real(0.05, "Initial SGD learning rate.")
    momentum: float = real(0.9, "SGD momentum.")
    nesterov: bool = boolean(True, "Nesterov momentum.")
    lr_drops: tuple = names(("2ep",), "Lengths where the learning rate drops, e.g. 100ep,150ep.")
    lr_drop_factor: float = real(0.1, "Learning-rate factor at each drop.")
    warmup: str = text(NO_WARMUP, "Linear learning-rate warm-up from 0 at the start of training, inside --length: "
                       "e.g. 2ep or 300it; 0ep: none.")
    weight_decay: float = real(1e-4, "L2 factor on conv kernels.", lower_bound=0)
    keep_epochs: tuple = integers((), "Epochs after which the dense run keeps its weights θ_i (lottery adds "
                                  "--rewind_epoch); runs of the same seed share the dense run only with the same list.",
                                  lower_bound=0)
    keep_steps: tuple = integers((), "Optimizer steps after which the dense run keeps its weights θ_k (lottery and "
                                 "imp add --rewind_step); any length unit.", lower_bound=1)
    optimizer: str = choice("sgd", OPTIMIZERS, "sgd (momentum, --nesterov: the paper's CNN recipe) or adamw (decoupled "
                            "weight decay 0.01, the language models' recipe; ignores --momentum).")

    def __post_init__(self):
        # One spelling per length before anything is checked or hashed: 02ep and 2ep name one run.
        recipe = self.recipe()  # validates lengths and rates
        object.__setattr__(self, "length", recipe.length)
        object.__setattr__(self, "lr_drops", canonical_drops(recipe.lr_drops, recipe.length, inside=True))
        object.__setattr__(self, "warmup", recipe.warmup)
        super().__post_init__()
        _distinct("keep_epochs", self.keep_epochs)
        count, unit = parse_length(self.length)
        if any(self.keep_epochs) and unit != "ep":  # θ0 (epoch 0) is kept whatever the unit
            raise ValueError(f"keep_epochs needs --length in epochs; got --length={self.length}")
        late = [k for k in self.keep_epochs if k >= count]
        if late:
            raise ValueError(f"keep_epochs must be below the training length ({recipe.length}: 0 to {count - 1}); "
                             f"got {late[0]}")
        late = [k for k in self.keep_steps if unit == "it" and k >= count]  # in epochs: checked on the data
        if late:
            raise ValueError(f"keep_steps must be below the training length ({recipe.length}: 1 to {count - 1}); "
                             f"got {late[0]}")

    def recipe(self) -> Recipe:
        """The training recipe (validates lengths and rates)."""
        return Recipe(self.length, self.batch_size, self.learning_rate, self.momentum, self.nesterov,
                      self.lr_drops, self.lr_drop_factor, warmup=self.warmup, optimizer=self.optimizer)

    def identity(self) -> dict:
        """The fields that name a dense run: all, the warm-up and the kept steps only when there are
        some (so runs from before they existed keep their folders)."""
        values = _no_negative_zero(self.to_dict())
        defaults = TrainingConfig.__dataclass_fields__
        if not self.lr_drops:  # a drop factor with no drop changes nothing
            values["lr_drop_factor"] = defaults["lr_drop_factor"].default
        if self.optimizer != "sgd":  # AdamW has no (Nesterov) momentum
            values["momentum"], values["nesterov"] = defaults["momentum"].default, defaults["nesterov"].default
        if parse_length(self.warmup, allow_zero=True)[0] == 0:
            values.pop("warmup")
        if not self.keep_steps:
            values.pop("keep_steps")
        if self.optimizer == "sgd":
            values.pop("optimizer")
        return values


@dataclasses.dataclass(frozen=True)
@options.compose(lambda: [*method_settings(), *criteria_settings()])
class MethodConfig(Section):
    """How the ticket is made: the method (``--method``; ``blocks`` is the paper's layer
    tickets), its criterion and count, and for ``lottery`` how it rewinds.

    The methods' and criteria's own options (``--match``, ``--imp_rate``, ``--angular_window``, ...) are
    declared beside each method and criterion (its ``settings``) and composed in here
    (:func:`tf_lottery.core.options.compose`): one field each, after the section's own.

    Raises:
        ValueError: for an option out of its allowed values, both ``rewind_epoch`` and ``rewind_step``,
            or an option of another criterion than ``criterion``.

    Example:
        >>> MethodConfig(criterion="snip", num_blocks=3).identity()["num_blocks"]
        3
    """

    IDENTITY: ClassVar[str] = "ticket"

    type: str = choice("blocks", METHODS, "How a ticket is made from the dense network.", flag="method")
    criterion: str = choice("grasp", CRITERIA, "Block criterion.")
    num_blocks: Optional[int] = integer(2, "Blocks to remove (the paper's p).", lower_bound=1)
    fraction: Optional[float] = real(None, "Or: fraction of the removable blocks to remove (overrides --num_blocks).")
    schedule: str = choice("oneshot", SCHEDULES, "One scoring, or re-score after each removal.")
    min_blocks_per_stage: int = integer(
        2, "Residual blocks each stage keeps (0 lets a stage lose them all: a MobileNetV2 or EfficientNet stage "
           "opens with a block that has no shortcut, which always stays).", lower_bound=0)
    aggregation: Optional[str] = choice(None, ("sum", "mean"), "Per-weight to block score (default: the criterion's).")
    prune_first: Optional[str] = choice(None, ("low", "high"), "Override the criterion's direction.")
    score_per_class: int = integer(10, "Scoring examples per class.", lower_bound=1)
    score_sequences: Optional[int] = integer(None, f"causal_lm: training sequences the criteria score on (default "
                                             f"{SCORE_SEQUENCES}).", lower_bound=1)
    residual_layers: tuple = names((), "Layers that are residual blocks by themselves although tracing their call "
                                   "does not show the residual sum (a subclassed block); see the docs' Transformers "
                                   "page.")
    rewind: str = choice("weights", REWINDS, "lottery: rewind the kept layers' weights to epoch i, keep the trained "
                         "weights and replay the schedule from epoch i, or re-initialize at random.")
    rewind_epoch: int = integer(0, "lottery, imp: the rewind epoch i (θ_i, the weights after i epochs).",
                                lower_bound=0)
    rewind_step: int = integer(0, "lottery, imp: or the rewind step k (θ_k, the weights after k optimizer steps; "
                               "open_lth's rewinding_steps); 0: rewind to --rewind_epoch.", lower_bound=0)
    heal: str = choice("finetune", HEALS, "lottery: how the ticket trains its --length: fine-tune on the labels, or "
                       "distil the trained dense model's logits (and hidden states, --heal_hidden) instead.")
    heal_temperature: float = real(2.0, "lottery, --heal=distil: the softmax temperature of the distillation (> 0).")
    heal_hidden: float = real(0.0, "lottery, --heal=distil: weight of the kept blocks' hidden states (their squared "
                              "error relative to the dense model's, beside the logits' KL divergence; 0: logits only).")

    def __post_init__(self):
        if self.fraction is not None:  # a fraction overrides the count
            object.__setattr__(self, "num_blocks", None)
        super().__post_init__()
        if self.rewind_epoch and self.rewind_step:
            raise ValueError(f"give --rewind_epoch or --rewind_step, not both; got --rewind_epoch={self.rewind_epoch} "
                             f"and --rewind_step={self.rewind_step}")
        if not self.heal_temperature > 0 or not self.heal_hidden >= 0:
            raise ValueError(f"--heal_temperature must be > 0 and --heal_hidden >= 0; got --heal_temperature="
                             f"{self.heal_temperature:g}, --heal_hidden={self.heal_hidden:g}")
        self.criterion_options(seed=0)  # an option the criterion does not take fails here

    def identity(self) -> dict:
        """The fields that name a ticket run: ``--method`` and the fields the method reads, the
        rewind step, the declared residual layers, the angular window and a healing other than fine-tuning
        only when set (runs from before they existed keep their folders)."""
        fields = METHODS.get(self.type).fields + (HEAL_FIELDS if self.heal != "finetune" else ())
        values = {name: value for name, value in _no_negative_zero(self.to_dict()).items()
                  if (name == "type" or name in fields or self._plugin_option(name))
                  and not (name == "rewind_step" and value == 0)
                  and not (name == "residual_layers" and not value)
                  and not (name == "score_sequences" and value is None)}
        return self._canonical(values)

    def _plugin_option(self, name: str) -> bool:
        """Whether ``name`` is an option of this run's method, or of its criterion (for a method that takes
        one), and so part of its identity; an option at a value of its settings' ``IDENTITY_DEFAULTS`` is
        left out (it builds what runs made before the option existed, which keep their folders)."""
        settings = options.plugin_of(self, name)
        method = METHODS.get(self.type)
        owned = settings is not None and (settings is method.settings or (
            "criterion" in method.fields and settings is CRITERIA.get(self.criterion).settings))
        unset = getattr(settings, "IDENTITY_DEFAULTS", {})
        return owned and not (name in unset and getattr(self, name) == unset[name])

    def _canonical(self, values: dict) -> dict:
        """One spelling of one decision: the criterion's own aggregation and direction given explicitly
        are its defaults, a data-free criterion's batch size says nothing, and removing one block
        iteratively is removing it once."""
        defaults = MethodConfig.__dataclass_fields__
        criterion = CRITERIA.get(self.criterion) if "criterion" in values else None
        if criterion is not None:
            if values.get("aggregation") is not None and values["aggregation"] == criterion.options().get(
                    "aggregation"):
                values["aggregation"] = None
            if values.get("prune_first") is not None and values["prune_first"] == criterion.prune_first:
                values["prune_first"] = None
            if criterion.needs == "nothing" and "score_per_class" in values:
                values["score_per_class"] = defaults["score_per_class"].default
        if values.get("schedule") == "iterative" and values.get("num_blocks") == 1 and values.get("fraction") is None:
            values["schedule"] = "oneshot"
        return values

    def criterion_options(self, seed: int) -> dict:
        """The options the criterion gets: those set here, checked against it, and the run's seed
        for a criterion that takes one (``random``).

        Raises:
            ValueError: naming an option the criterion does not take.
        """
        criterion = CRITERIA.get(self.criterion)
        for settings in criteria_settings():  # a criterion's option set for another criterion
            for field in dataclasses.fields(settings):
                if field.name not in criterion.flags() and getattr(self, field.name) != field.default:
                    owners = [name for name in CRITERIA.names() if field.name in CRITERIA.get(name).flags()]
                    raise ValueError(f"--{field.name} is an option of --criterion={' or '.join(owners)}; "
                                     f"--criterion={self.criterion} does not take it")
        chosen = {flag: getattr(self, flag) for flag in criterion.flags()}
        return criterion.run_options(seed, aggregation=self.aggregation, **chosen)


@dataclasses.dataclass(frozen=True)
class SweepConfig(Section):
    """The lists a ``sweep`` runs over; an empty list means the single value of its flag.

    Raises:
        ValueError: for an option out of its allowed values, a list that names a value twice, both
            rewind epochs and rewind steps, both cells and criteria or counts, an ``α``, power or
            detectable difference out of range, a margin that is not finite, a comparison or cell
            that does not parse, or a shard that is not ``i/n``.

    Example:
        >>> SweepConfig(sweep_cells=("grasp:3", "snip:5")).cells()
        [('grasp', 3), ('snip', 5)]
    """

    IDENTITY: ClassVar[str] = "sweep"

    sweep_experiment: str = choice("init_ticket", _sweepable, "sweep: the experiment of each point.")
    sweep_num_blocks: tuple = integers((), "sweep: the values of p, e.g. 1,2,3,4,5 (empty: --num_blocks).")
    sweep_criteria: tuple = names((), "sweep: the criteria, e.g. snip,grasp (empty: --criterion).", choices=CRITERIA)
    sweep_seeds: tuple = integers((), "sweep: the seeds, e.g. 0,1,2 (empty: --seed).", upper_bound=2**31 - 1,
                                  why="numpy's and TensorFlow's seeds are 32-bit")
    sweep_methods: tuple = names((), "sweep, compare: the methods, e.g. blocks,filters (empty: --method; compare: "
                                 "blocks,filters,filter_masks,imp).", choices=METHODS)
    sweep_rewinds: tuple = names((), "sweep (lottery): the rewind modes, e.g. weights,lr (empty: --rewind).",
                                 choices=REWINDS)
    sweep_rewind_epochs: tuple = integers((), "sweep (lottery): the rewind epochs, e.g. 0,25,50,75 "
                                          "(empty: --rewind_epoch).")
    sweep_rewind_steps: tuple = integers((), "sweep (lottery, imp): the rewind steps, e.g. 0,100,500 (empty: "
                                         "--rewind_step); not with --sweep_rewind_epochs.", lower_bound=0)
    sweep_cells: tuple = names((), "sweep: an explicit list of criterion:p cells, e.g. grasp:3,grasp:5,snip:5,"
                               "random:5, run instead of every criterion at every p (not with --sweep_criteria or "
                               "--sweep_num_blocks).")
    sweep_lengths: tuple = names((), "sweep: training lengths to run every point at, e.g. 4ep,8ep,16ep (empty: "
                                 "--length). The learning-rate drops keep their fraction of the training (drops at "
                                 "8ep,12ep of 16ep are at 2ep,3ep of 4ep); the warm-up keeps its length.")
    sweep_margin: float = real(1.0, "sweep: the margin ξ of every verdict, declared before the runs (the paper's "
                               "Eq. 1: a winning ticket is at most ξ below dense): percentage points of accuracy, or "
                               "% of the dense perplexity for a language model.", lower_bound=0)
    sweep_alpha: float = real(0.05, "sweep: α of the two-sided intervals (one-sided tests at α/2, Holm-corrected over "
                              "the declared comparisons).")
    sweep_power: float = real(0.8, "sweep: the power at which each cell's minimum detectable difference is given.")
    sweep_detectable: float = real(0.5, "sweep, plan: the minimum detectable difference the seeds should reach "
                                   "(pp, or % of perplexity); --experiment=plan says how many seeds that takes.")
    sweep_comparisons: tuple = names((), "sweep: declared comparisons of two criteria at the same seeds and p, e.g. "
                                     "grasp-snip,grasp-random (each criterion pooled over p is always declared).")
    sweep_shard: str = text("", "sweep: run only share i of n of the sweep's runs, e.g. 2/8 (a cluster's array task; "
                            "the runs folder's locks guard shared runs; the report is written once every run is "
                            "finished). Not part of the sweep's identity.")

    # Declared after the runs existed: left out of the identity at their defaults, so earlier sweeps keep
    # their folders. The shard says which process runs what, never what the sweep is.
    _LATER = ("sweep_cells", "sweep_lengths", "sweep_margin", "sweep_alpha", "sweep_power", "sweep_detectable",
              "sweep_comparisons")

    def __post_init__(self):
        super().__post_init__()
        for name in ("sweep_num_blocks", "sweep_seeds", "sweep_rewind_epochs", "sweep_rewind_steps"):
            _distinct(name, getattr(self, name))
        for name in ("sweep_criteria", "sweep_methods", "sweep_cells", "sweep_lengths", "sweep_comparisons"):
            values = getattr(self, name)
            if len(set(values)) != len(values):
                raise ValueError(f"--{name} lists a value twice: {','.join(values)}")
        if self.sweep_rewind_epochs and self.sweep_rewind_steps:
            raise ValueError("give --sweep_rewind_epochs or --sweep_rewind_steps, not both")
        if self.sweep_cells and (self.sweep_criteria or self.sweep_num_blocks):
            raise ValueError("give --sweep_cells, or --sweep_criteria and --sweep_num_blocks, not both")
        object.__setattr__(self, "sweep_cells", tuple(f"{c}:{p}" for c, p in self.cells()))
        object.__setattr__(self, "sweep_lengths", tuple(canonical_length(v) for v in self.sweep_lengths))
        if not (0 < self.sweep_alpha < 1):
            raise ValueError(f"--sweep_alpha must be in (0, 1); got {self.sweep_alpha!r}")
        if not (self.sweep_alpha / 2 < self.sweep_power < 1):
            raise ValueError(f"--sweep_power must be in ({self.sweep_alpha / 2:g}, 1); got {self.sweep_power!r}")
        if not (self.sweep_detectable > 0 and math.isfinite(self.sweep_detectable)):
            raise ValueError(f"--sweep_detectable must be a number > 0; got {self.sweep_detectable!r}")
        if not math.isfinite(self.sweep_margin):
            raise ValueError(f"--sweep_margin must be a finite number >= 0; got {self.sweep_margin!r}")
        for item in self.sweep_comparisons:
            self.contrast(item)
        self.shard()

    def cells(self) -> list:
        """``[(criterion, p), ...]`` of ``--sweep_cells``.

        Raises:
            ValueError: naming an item that is not ``criterion:p`` with a registered criterion and p >= 1.
        """
        found = []
        for item in self.sweep_cells:
            name, _, count = str(item).partition(":")
            name = name.strip()
            if name not in CRITERIA.names() or not count.strip().isdigit() or int(count) < 1:
                raise ValueError(f"--sweep_cells takes criterion:p items, p >= 1 and the criterion one of "
                                 f"{', '.join(CRITERIA.names())}; got {item!r}")
            found.append((name, int(count)))
        if len(set(found)) != len(found):
            raise ValueError(f"--sweep_cells lists a cell twice: {','.join(self.sweep_cells)}")
        return found

    @staticmethod
    def contrast(item: str) -> tuple:
        """``"grasp-snip"`` -> ``("grasp", "snip")``.

        Raises:
            ValueError: naming an item that is not two different registered criteria joined by ``-``.
        """
        first, _, second = str(item).partition("-")
        names_ = CRITERIA.names()
        if first not in names_ or second not in names_ or first == second:
            raise ValueError(f"--sweep_comparisons takes A-B items of two different criteria, each one of "
                             f"{', '.join(names_)}; got {item!r}")
        return first, second

    def shard(self) -> Optional[tuple]:
        """``(i, n)`` of ``--sweep_shard`` (1 <= i <= n), None without one.

        Raises:
            ValueError: naming a value that is not ``i/n``.
        """
        if not self.sweep_shard:
            return None
        index, _, count = self.sweep_shard.partition("/")
        if not (index.strip().isdigit() and count.strip().isdigit() and 1 <= int(index) <= int(count)):
            raise ValueError(f"--sweep_shard takes i/n with 1 <= i <= n, e.g. 2/8; got {self.sweep_shard!r}")
        return int(index), int(count)

    def identity(self) -> dict:
        """The lists and declarations that name a sweep: all but the shard; the rewind steps and
        what came later only when given (so sweeps from before they existed keep their folders)."""
        values = self.to_dict()
        values.pop("sweep_shard")
        if not self.sweep_rewind_steps:
            values.pop("sweep_rewind_steps")
        defaults = SweepConfig.__dataclass_fields__
        for name in self._LATER:
            if values[name] == _json_ready_default(defaults[name]):
                values.pop(name)
        return values


@dataclasses.dataclass(frozen=True)
@options.compose(eval_options)
class EvaluationConfig(Section):
    """What is measured on each trained model (results are cached per evaluation).

    Each evaluation's own flags (``--severities``, ``--epsilons``, ``--cka_examples``, ...) are declared
    beside it (its ``options``) and composed in here (:func:`tf_lottery.core.options.compose`).

    Example:
        >>> EvaluationConfig(evals=("clean", "cost")).evals
        ('clean', 'cost')
    """

    evals: tuple = names(("clean", "cost", "latency"), "Evaluations of every trained model.", choices=EVALS)
    runs_from: tuple = names((), "robustness, export and plan: run folders to evaluate or export (ticket, dense, sweep or "
                             "compare folders; empty: the runs the other flags name).", flag="from")


@dataclasses.dataclass(frozen=True)
class RuntimeConfig(Section):
    """Where output goes and what is written besides the results, and where training runs (the
    strategy and precision :func:`tf_lottery.runtime.distribute.activate` sets up).

    Raises:
        ValueError: for an option out of its allowed values, an empty ``runs_dir``, a
            ``carbon_country`` that is not an alpha-3 code codecarbon knows, or
            ``mixed_precision`` together with a ``precision`` other than float32.

    Example:
        >>> RuntimeConfig(strategy="mirrored", cpu_devices=2).cpu_devices
        2
    """

    runs_dir: str = text("runs", "Folder of run folders.")
    export: bool = boolean(True, "Export dense and ticket (SavedModel with raw-image and preprocessed signatures, "
                                 ".keras, metadata).")
    tflite: bool = boolean(False, "Exports also write model.tflite (float32, converted from the raw-image signature).")
    tflite_dynamic_range: bool = boolean(False, "Exports also write model_dynamic_range.tflite (int8 weights, "
                                                "dynamic-range quantization); implies --tflite.")
    serving_dir: Optional[str] = text(None, "Also copy each new export's SavedModel to "
                                            "<serving_dir>/<model>-<run hash>/<n>/, TF Serving's numbered version "
                                            "layout.")
    hf_dir: Optional[str] = text(None, "Also write each new language-model export (dense and ticket; the export "
                                       "experiment too) as a Hugging Face transformers folder "
                                       "<hf_dir>/<run folder name>/ (config.json, model.safetensors, the byte "
                                       "tokenizer): keras_hub models of keras_hub's exporter (extras hub, "
                                       "transformers).")
    carbon_country: str = text("USA", "ISO alpha-3 country of the grid for CO2 (codecarbon).")
    tensorboard: bool = boolean(False, "Write TensorBoard logs.")
    wait_for_lock: bool = boolean(True, "When another process is using a run folder, wait for it (else fail at once).")
    deterministic: bool = boolean(False, "TensorFlow op determinism and one thread per op: the same command gives "
                                  "the same weights, bit for bit (slower; docs: Reproducibility).")
    strategy: str = choice("default", STRATEGIES, "tf.distribute strategy: default (one device), mirrored (the "
                           "devices of one machine), multi_worker (the machines of TF_CONFIG), tpu.")
    devices: tuple = names((), "mirrored: the devices, e.g. gpu:0,gpu:1 (empty: every GPU, else every logical CPU).")
    cpu_devices: Optional[int] = integer(None, "Split the CPU into N logical devices before TensorFlow starts "
                                         "(runs mirrored on a CPU machine; 0 = no split).", lower_bound=0,
                                         zero_means_none=True, upper_bound=1024,
                                         why="each logical device holds its own copy of the model and its buffers")
    tpu: Optional[str] = text(None, "tpu: the TPU's name or grpc:// address (empty: the local TPU).")
    lr_scaling: str = choice("linear", LR_SCALINGS, "How the learning rate follows the replicas: linear (times "
                             "the replicas, Goyal et al. 2017) or none. --batch_size is per replica.")
    sync_batchnorm: bool = boolean(False, "Several replicas: batch normalization uses the global batch's statistics "
                                   "(default: each replica's, as on one device with --batch_size images).")
    xla: str = choice("auto", XLA_MODES, "XLA compilation of training steps: auto (Keras: on for one GPU, off on CPUs "
                      "and under tf.distribute), on or off.")
    precision: str = choice("float32", PRECISIONS, "Arithmetic of training and evaluation: float32; bfloat16 "
                            "(mixed_bfloat16: bfloat16 compute, float32 variables, head and loss); float16 (GPUs, "
                            "with loss scaling); auto (bfloat16 where the CPU, GPU or TPU computes it natively, "
                            "detected, else float32).")
    mixed_precision: bool = boolean(False, "Kept from 0.6: --precision=float16 on GPUs, bfloat16 elsewhere.")

    def __post_init__(self):
        super().__post_init__()
        if not self.runs_dir or not self.runs_dir.strip():
            raise ValueError("runs_dir is empty; name the folder of run folders (default: runs); it is created "
                             "when missing")
        if len(self.carbon_country) != 3 or not self.carbon_country.isalpha():
            raise ValueError(f"carbon_country must be an ISO 3166 alpha-3 code such as USA or FRA; "
                             f"got {self.carbon_country!r}")
        carbon.check_country(self.carbon_country)
        if self.mixed_precision and self.precision != "float32":
            raise ValueError(f"--mixed_precision and --precision={self.precision} both set the arithmetic; give "
                             "--precision alone (--mixed_precision is --precision=bfloat16, or float16 on GPUs)")


def _no_negative_zero(values: dict) -> dict:
    """``values`` with every -0.0 as 0.0 (``--weight_decay=-0.0`` trains as ``0``)."""
    return {k: (0.0 if isinstance(v, float) and v == 0.0 else v) for k, v in values.items()}


def _distinct(name: str, values: tuple) -> None:
    if any(v < 0 for v in values) or len(set(values)) != len(values):
        raise ValueError(f"{name} takes distinct integers >= 0; got {list(values)}")


#: The config's sections by name: the attribute of :class:`~tf_lottery.config.Config` (and the key of its JSON) that
#: holds each (``{"model": ModelConfig, "data": DataConfig, ...}``).
SECTIONS = {"model": ModelConfig, "data": DataConfig, "training": TrainingConfig, "method": MethodConfig,
            "sweep": SweepConfig, "evaluation": EvaluationConfig, "runtime": RuntimeConfig}
