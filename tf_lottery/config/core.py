"""The experiment config: one frozen record in sections, the truth of a run.

Flags and flagfiles are parsed into a :class:`Config`; experiments read nothing else.
Its defaults are the embedded quick demo (``tf-lottery`` with no flags): Fashion-MNIST
from local files (15,000 training images, flips but no crops, so that three epochs
suffice), ResNet-20, GraSP at initialization, two blocks removed, three epochs at a
learning rate of 0.05 divided by 10 after two. The paper's CIFAR-10 setups are flagfiles
under ``flags/``; the library's own training default (``tf_lottery.training.Recipe``) is the
paper group's 200-epoch recipe.

Every setting has one *flat name*, its flag (``--depth``, ``--criterion``): ``Config.create``
and ``Config.replace`` take flat names, and a ``config.json`` written by tf_lottery 0.1
(one flat dict) loads with ``Config.from_dict``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from typing import Dict, Optional, Tuple

from tf_lottery.runtime import distribute
from tf_lottery.core import options
from tf_lottery.config.experiments import EXPERIMENTS
from tf_lottery.config.sections import (
    SECTIONS, DataConfig, EvaluationConfig, MethodConfig, ModelConfig, RuntimeConfig, SweepConfig, TrainingConfig,
)
from tf_lottery.data import DATASETS, DataOptions
from tf_lottery.data.streaming import MEAN_FOLDER
from tf_lottery.evals import EVALS
from tf_lottery.models import MODELS, function
from tf_lottery.core.options import choice, integer
from tf_lottery.tickets import METHODS



def serving(registry, task: str) -> list:
    """The names of ``registry`` (models or evaluations) whose entries declare that they serve ``task``
    (their ``tasks`` attribute), a pattern of names shown as the registry lists it.

    Args:
        registry: :data:`tf_lottery.models.MODELS` or :data:`tf_lottery.evals.EVALS`.
        task: A ``--task`` value.

    Returns:
        The names, in the registry's order.

    Example:
        >>> serving(EVALS, "causal_lm")
        ['clean', 'cost', 'generation', 'latency']
    """
    names = []
    for name in registry.names():
        probe = name.replace("<package.module>:<function>", "package.module:function")
        if task in registry.get(probe).tasks:
            names.append(name.replace("<package.module>:<function>", "package.module:function (yours)"))
    return names

#: The identity scopes of a run folder (dense, ticket, sweep), each with the kinds of section identity it hashes.
SCOPES = {"dense": ("dense",), "ticket": ("dense", "ticket"), "sweep": ("dense", "ticket", "sweep")}


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything an experiment needs, in sections (see ``tf-lottery --helpfull`` for each flag).

    Attributes:
        experiment: What to run (a registered experiment).
        seed: Seed of θ0, the data split and order, and the scoring batch.
        model, data, training, method, sweep, evaluation, runtime: The sections
            (:mod:`tf_lottery.config.sections`).
        execution: What of the execution the run was bound to changes the trained weights
            (:meth:`tf_lottery.runtime.distribute.Execution.identity` as sorted items; the command line
            binds it, and ``config.json`` keeps it, so a run trained on several replicas is
            found again from a process that runs on one). None: the current execution's.

    Example:
        >>> config = Config.create(depth=32, criterion="snip", num_blocks=3)
        >>> config.model.settings.depth, config.method.criterion
        (32, 'snip')
        >>> config.replace(seed=1).digest("dense") != config.digest("dense")
        True
    """

    experiment: str = choice("init_ticket", EXPERIMENTS, "What to run.")
    seed: int = integer(0, "Seed of θ0, the data split and order, and the scoring batch.", lower_bound=0,
                        upper_bound=2**31 - 1, why="numpy's and TensorFlow's seeds are 32-bit")
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    training: TrainingConfig = dataclasses.field(default_factory=TrainingConfig)
    method: MethodConfig = dataclasses.field(default_factory=MethodConfig)
    sweep: SweepConfig = dataclasses.field(default_factory=SweepConfig)
    evaluation: EvaluationConfig = dataclasses.field(default_factory=EvaluationConfig)
    runtime: RuntimeConfig = dataclasses.field(default_factory=RuntimeConfig)
    execution: Optional[tuple] = None

    def __post_init__(self):
        options.check_options(self)
        self._check_task()
        self._check_heal()
        for name in self.sweep.sweep_criteria:  # each point's criterion takes the method's options
            dataclasses.replace(self.method, criterion=name)
        for epoch in self.sweep.sweep_rewind_epochs:  # each point's rewind epoch is inside the training
            self.training.recipe().resumed_at(epoch)

    def _check_task(self) -> None:
        """Refuses what a ``--task`` cannot run: a language model's model, method and evaluations,
        and a language evaluation of an image run."""
        task, builder = self.data.task, MODELS.get(self.model.type)
        if task == "causal_lm" and task not in builder.tasks:
            raise ValueError(f"--task=causal_lm trains a language model: --model={' or '.join(serving(MODELS, task))}; "
                             f"got --model={self.model.type}")
        if task not in builder.tasks:
            raise ValueError(f"--model={self.model.type} builds a model for --task={' or '.join(builder.tasks)}; "
                             f"got --task={task}")
        refused = [name for name in self.evaluation.evals if task not in EVALS.get(name).tasks]
        if refused and task == "causal_lm":
            raise ValueError(f"--evals={','.join(refused)} measure images; --task=causal_lm takes "
                             f"{','.join(serving(EVALS, task))}")
        if refused:
            raise ValueError(f"--evals={','.join(refused)} measures a language model's generate(): it needs "
                             "--task=causal_lm")
        if self.data.task == "causal_lm":
            if self.method.type != "blocks" or set(self.sweep.sweep_methods) - {"blocks"}:
                raise ValueError(f"--task=causal_lm makes layer tickets (--method=blocks); got --method="
                                 f"{','.join(self.sweep.sweep_methods or (self.method.type,))}")


    def _check_heal(self) -> None:
        """Refuses a ``--heal`` other than fine-tuning where it cannot run: outside ``lottery`` (the ticket
        of a trained network), for a method that trains its tickets its own way, or hidden states of a
        method whose tickets change the blocks' widths."""
        heal = self.method.heal
        if heal == "finetune":
            return
        experiment = self.sweep.sweep_experiment if self.experiment == "sweep" else self.experiment
        if experiment != "lottery":
            raise ValueError(f"--heal={heal} heals the ticket of a trained network: --experiment=lottery (or "
                             f"--sweep_experiment=lottery); got --experiment={experiment}")
        for name in self.sweep.sweep_methods or (self.method.type,):
            method = METHODS.get(name)
            if method.fit is not None:
                raise ValueError(f"--heal={heal} trains the ticket on the dense model's outputs, but --method={name} "
                                 "trains its tickets its own way; use --method=blocks or filters")
            if method.unit != "blocks" and self.method.heal_hidden > 0:
                raise ValueError(f"--heal_hidden={self.method.heal_hidden:g} matches the kept blocks' hidden states, "
                                 f"which --method={name} narrows; use --heal_hidden=0 (logits only)")

    # --- flat names ----------------------------------------------------------------------

    @staticmethod
    def layout(model_type: str = "cifar_resnet") -> Dict[str, Tuple[Optional[str], str]]:
        """``{flat name: (section or None, field)}`` for a model type; the model builder's
        settings map to ``("model.settings", field)``."""
        found = {o.name: (None, o.field) for o in options.options_of(Config)}
        for section, kind in SECTIONS.items():
            found.update({o.name: (section, o.field) for o in options.options_of(kind)})
        settings = MODELS.get(model_type).settings
        found.update({o.name: ("model.settings", o.field) for o in options.options_of(settings)})
        return found

    @classmethod
    def create(cls, **flat) -> "Config":
        """A config from flat names (the flags' names); the rest keep their defaults.

        Raises:
            ValueError: naming unknown names, or any invalid value.

        Example:
            >>> Config.create(dataset="synthetic", depth=20, length="1ep", runs_dir="/tmp/runs")
        """
        return cls._create(flat, trust=True)

    @classmethod
    def _create(cls, flat: dict, trust: bool) -> "Config":
        """:meth:`create`; ``trust``: the caller named ``model``, so a user's function may be imported
        (a config read from an artifact never gets here with trust: :meth:`from_dict`, :meth:`replace`)."""
        model_type = flat.get("model", ModelConfig().type)
        if trust and isinstance(model_type, str) and re.fullmatch(function.PATTERN, model_type):
            function.trust(model_type)
        layout = cls.layout(model_type)
        unknown = sorted(set(flat) - set(layout))
        if unknown:
            raise ValueError(f"unknown config keys {unknown} (for --model={model_type})")
        parts: Dict[Optional[str], dict] = {}
        for name, value in flat.items():
            section, field = layout[name]
            parts.setdefault(section, {})[field] = value
        sections = {name: kind(**parts.get(name, {})) for name, kind in SECTIONS.items() if name != "model"}
        settings = MODELS.get(model_type).settings(**parts.get("model.settings", {}))
        sections["model"] = ModelConfig(**parts.get("model", {}), settings=settings)
        return cls(**parts.get(None, {}), **sections)

    def flat(self) -> dict:
        """Every setting by its flat name (tuples stay tuples)."""
        values = {}
        for name, (section, field) in self.layout(self.model.type).items():
            holder = self if section is None else (self.model.settings if section == "model.settings"
                                                   else getattr(self, section))
            values[name] = getattr(holder, field)
        return values

    def replace(self, **flat) -> "Config":
        """A copy with some settings changed, by flat name (a new ``model`` drops the old
        builder's settings).

        Example:
            >>> Config().replace(criterion="snip", seed=3).method.criterion
            'snip'
        """
        values = self.flat()
        if "model" in flat and flat["model"] != self.model.type:
            for name in options.options_of(self.model.settings.__class__):
                values.pop(name.name)
        return dataclasses.replace(Config._create({**values, **flat}, trust="model" in flat), execution=self.execution)

    def command_line(self) -> str:
        """The ``tf-lottery`` command that runs this config: its experiment and every setting that
        differs from its default, as flags (what an error message tells the user to rerun).

        Example:
            >>> Config.create(depth=32, sweep_seeds=(0, 1), export=False).command_line()
            'tf-lottery --depth=32 --noexport --sweep_seeds=0,1'
        """
        # The defaults: the demo's, with this model builder's own settings at theirs (not a Config of that
        # model, which the demo's task and data may refuse: a language model's).
        builder_settings = MODELS.get(self.model.type).settings()
        default = {**Config().flat(), **{o.name: getattr(builder_settings, o.field)
                                         for o in options.options_of(type(builder_settings))},
                   "model": Config().model.type}
        words = ["tf-lottery"]
        for name, value in sorted(self.flat().items()):
            if value == default.get(name) or value is None:  # None: implied by another flag (--fraction)
                continue
            if isinstance(value, bool):
                words.append(f"--{name}" if value else f"--no{name}")
            elif isinstance(value, tuple):
                words.append(f"--{name}={','.join(map(str, value))}")
            else:
                words.append(f"--{name}={'' if value is None else value}")
        return " ".join(words)

    def bound(self, execution=None) -> "Config":
        """This config bound to an execution (default: the current one): its identity then keeps
        that execution's part whatever strategy the process that reads it runs under."""
        found = (execution or distribute.current()).identity()
        return dataclasses.replace(self, execution=tuple(sorted(found.items())))

    @property
    def precision(self) -> str:
        """The dtype policy this config's runs compute in ("float32", "mixed_bfloat16", ...): the bound
        execution's, else the current one's (reports name it, since speed-ups hold per precision)."""
        found = distribute.current().identity() if self.execution is None else dict(self.execution)
        return found.get("precision", "float32")

    # --- JSON and identity ---------------------------------------------------------------

    def to_dict(self) -> dict:
        """JSON-ready, in sections: ``{"experiment", "seed", "model": {...}, "data": {...}, ...}``."""
        return {"experiment": self.experiment, "seed": self.seed,
                **{name: getattr(self, name).to_dict() for name in SECTIONS},
                **({"execution": dict(self.execution)} if self.execution is not None else {})}

    def to_json(self) -> str:
        """:meth:`to_dict` as ``config.json`` holds it (keys sorted, indented)."""
        return json.dumps(self.to_dict(), sort_keys=True, indent=2) + "\n"

    @classmethod
    def from_dict(cls, values: dict) -> "Config":
        """Inverse of :meth:`to_dict`; also reads the flat ``config.json`` of tf_lottery 0.1.

        Raises:
            TypeError: for ``values`` that are not a dict (a ``config.json`` holding a list).
            ValueError: naming unknown keys.
        """
        if not isinstance(values, dict):
            raise TypeError(f"a config is a JSON object of sections; got {type(values).__name__}")
        if not isinstance(values.get("model", {}), dict):  # 0.1: one flat dict, "model" a name
            return cls.create(**values)
        unknown = sorted(set(values) - {"experiment", "seed", "execution", *SECTIONS})
        if unknown:
            raise ValueError(f"unknown config keys {unknown}")
        wrong = [name for name in SECTIONS if name in values and not isinstance(values[name], dict)]
        if wrong:
            raise TypeError(f"config section {wrong[0]!r} must be a JSON object; got {type(values[wrong[0]]).__name__}")
        sections = {name: kind.from_dict(values[name]) for name, kind in SECTIONS.items() if name in values}
        top = {k: values[k] for k in ("experiment", "seed") if k in values}
        execution = values.get("execution")
        return cls(**top, **sections, execution=None if execution is None else tuple(sorted(execution.items())))

    def identity(self, scope: str) -> dict:
        """What a run of ``scope`` is: the seed and the sections whose ``IDENTITY`` the scope takes.

        ``"dense"``: seed, model, data, training. ``"ticket"``: and the method's fields
        (``MethodConfig.identity``).
        ``"sweep"``: and the sweep's lists. Evaluation and runtime never enter, except what
        of the execution changes the trained weights: more than one replica (the global
        batch, ``--lr_scaling``) or mixed precision (:meth:`tf_lottery.runtime.distribute.Execution.identity`).

        Raises:
            ValueError: for an unknown scope.
        """
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {sorted(SCOPES)}; got {scope!r}")
        kept = {name: getattr(self, name).to_dict() for name, kind in SECTIONS.items()
                if kind.IDENTITY in SCOPES[scope]}
        if "method" in kept:  # only what the method reads: another method's settings never split runs
            kept["method"] = self.method.identity()
        if "data" in kept:
            kept["data"] = self.data.identity()
        if "model" in kept:
            dataset = DATASETS.get(self.data.dataset)
            if self.data.task == "causal_lm":  # the model is built for the run's sequences, not the corpus' default
                dataset = dataclasses.replace(dataset, input_shape=(self.data.sequence_length,))
            kept["model"] = self.model.identity(dataset)
        if "training" in kept:
            kept["training"] = self.training.identity()
        if "sweep" in kept:
            kept["sweep"] = self.sweep.identity()
        # Several replicas or mixed precision train other weights.
        execution = distribute.current().identity() if self.execution is None else dict(self.execution)
        return {"seed": self.seed, **kept, **({"execution": execution} if execution else {})}

    def digest(self, scope: str) -> str:
        """A short hash of :meth:`identity`: the key of the run folder.

        Example:
            >>> Config().digest("ticket") == Config().replace(runs_dir="elsewhere", export=False).digest("ticket")
            True
        """
        return hashlib.sha256(json.dumps(self.identity(scope), sort_keys=True).encode()).hexdigest()[:12]

    # --- what the stages read -------------------------------------------------------------

    def data_options(self):
        """The :class:`tf_lottery.data.DataOptions` of this config (the data section and the seed)."""
        d = self.data
        shape = tuple(self.model.input_shape) if self.model.input_shape else None
        return DataOptions(d.dataset, d.data_dir, d.download, d.train_size, d.val_size, d.test_size,
                           d.mean_subtraction, d.crop, d.flip, self.seed, image_shape=shape, data_path=d.data_path,
                           cache_dir=d.cache_dir, sequence_length=d.sequence_length)

    def data_mean_dir(self) -> str:
        """Where a streamed dataset's training mean is kept between runs: ``<runs_dir>/.data``."""
        return os.path.join(self.runtime.runs_dir, MEAN_FOLDER)

    def criterion_options(self) -> dict:
        """The options the criterion gets (see :meth:`MethodConfig.criterion_options`)."""
        return self.method.criterion_options(self.seed)
