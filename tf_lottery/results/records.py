"""Typed run records: what a run measured, with ``to_dict``/``from_dict``.

The JSON files of a run folder are these records written out: ``train_<model>.json`` a
:class:`TrainingRecord`, ``scores.json`` a :class:`ScoringRecord`, ``dense.json`` a
:class:`ModelRecord`, ``result.json`` a :class:`RunRecord` (with its
:class:`Comparison`), and each row of a sweep's ``results.json`` a :class:`SweepRow`.
Their JSON layout is the one tf_lottery 0.1 wrote, so older run folders load too.
Comparing, the report, the plots and the sweep read fields, never nested keys.

Example:
    >>> record = RunRecord.from_dict(json.load(open("runs/init_ticket-.../result.json")))
    >>> record.comparison.accuracy_pp, record.ticket.flops, record.dense.accuracy
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Dict, List, Optional

from tf_lottery.core.io import run_path
from tf_lottery.graph import cost


def _known(record) -> dict:
    """A dataclass as a dict without its None fields (JSON stays as small as before)."""
    return {k: v for k, v in dataclasses.asdict(record).items() if v is not None}


def _take(cls, values: dict):
    """``cls(**values)`` with only ``cls``'s fields (keys a later version added are ignored)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in values.items() if k in names})


def folder_name(path: Optional[str]) -> Optional[str]:
    """A run folder as records write it: its name, relative to the runs folder (``dense-3f2a9c1b7d4e``),
    so a runs folder stays whole when moved (:func:`tf_lottery.core.io.run_path` reads it back).

    Args:
        path: A run folder's path, or None.

    Returns:
        The folder's name, or None for None.

    Example:
        >>> folder_name("/work/runs/dense-3f2a9c1b7d4e/")
        'dense-3f2a9c1b7d4e'
    """
    return None if path is None else os.path.basename(os.path.normpath(path))


@dataclasses.dataclass(frozen=True)
class Energy:
    """Energy and CO2 of one phase (codecarbon), or why they are unavailable.

    Attributes:
        phase: "scoring", "dense", "ticket", ...
        status: "ok" or "unavailable" (never a silent 0).
        mode: "measured (RAPL)" or "estimated (...)".
        country: ISO alpha-3 country of the grid.
        duration_s: Seconds tracked, when ok.
        energy_kwh: Energy in kWh, when ok.
        co2_kg: Emissions in kg CO2eq, when ok.
        cpu_power_w: The CPU's power in W, when ok.
        ram_power_w: The memory's power in W, when ok.
        reason: When unavailable.

    Example:
        >>> Energy("dense", reason="no RAPL and no TDP for this CPU").value("energy_kwh") is None
        True
    """

    phase: str
    status: str = "unavailable"
    mode: str = "unavailable"
    country: Optional[str] = None
    duration_s: Optional[float] = None
    energy_kwh: Optional[float] = None
    co2_kg: Optional[float] = None
    cpu_power_w: Optional[float] = None
    ram_power_w: Optional[float] = None
    reason: Optional[str] = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def estimated(self) -> bool:
        return "estimated" in self.mode

    def value(self, key: str) -> Optional[float]:
        """``energy_kwh`` or ``co2_kg`` when the tracker worked, else None (unavailable)."""
        return getattr(self, key) if self.ok else None

    def to_dict(self) -> dict:
        """The JSON layout (fields that are None left out)."""
        return _known(self)

    @classmethod
    def from_dict(cls, values: dict) -> "Energy":
        """Reads :meth:`to_dict`'s layout (keys of a later version ignored)."""
        return _take(cls, {"phase": "?", **values})


@dataclasses.dataclass(frozen=True)
class Timing:
    """Measured training time of every finished epoch (see :meth:`tf_lottery.training.resume.EpochCheckpoint.timing`).

    ``sessions`` > 1 means the training was killed and resumed: the times of the finished
    epochs of every session are summed (the part of an epoch a kill cut short is not);
    ``fit_call_seconds`` is the last session's ``fit`` call alone; ``steady_epoch_seconds`` are
    the epochs after the first of their session (the first includes tracing), and
    ``epoch_steps`` each epoch's optimizer steps (the last epoch of a length in steps can be
    short), both None in records written before tf_lottery 0.9.

    Attributes:
        train_seconds: Summed time of the finished epochs, in seconds.
        epoch_seconds: Each finished epoch's time.
        epochs_timed: How many epochs were timed.
        images_per_second: Training throughput, None when it was not measured.
        images_per_second_note: How the throughput was measured, or why it is missing.
        fit_call_seconds: The last session's ``fit`` call, in seconds.
        sessions: How many sessions the training took (1: never resumed).
        steady_epoch_seconds: The epoch times after each session's first.
        epoch_steps: Each epoch's optimizer steps.

    Raises:
        ValueError: for a time that is negative or not a number, or counts that are not counts.

    Example:
        >>> Timing(12.0, [7.0, 5.0], 2, 640.0, "steady epochs").steady_seconds() is None
        True
    """

    train_seconds: float
    epoch_seconds: List[float]
    epochs_timed: int
    images_per_second: Optional[float]
    images_per_second_note: str
    fit_call_seconds: Optional[float] = None
    sessions: int = 1
    steady_epoch_seconds: Optional[List[float]] = None
    epoch_steps: Optional[List[int]] = None

    def to_dict(self) -> dict:
        """The JSON layout (the lists added in 0.9 left out when None)."""
        values = dataclasses.asdict(self)
        for added in ("steady_epoch_seconds", "epoch_steps"):  # a record from before 0.9 keeps its layout
            if values[added] is None:
                values.pop(added)
        return values

    def __post_init__(self):
        """Refuses what no measurement gives (a record read back from a damaged or edited file)."""
        counts = (self.train_seconds, *self.epoch_seconds, *(self.steady_epoch_seconds or ()),
                  *((self.fit_call_seconds,) if self.fit_call_seconds is not None else ()))
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
                   for v in counts):
            raise ValueError(f"a training time is negative or not a number (train_seconds={self.train_seconds!r}, "
                             f"epoch_seconds={self.epoch_seconds!r}): no measurement gives one")
        if not isinstance(self.sessions, int) or self.sessions < 1 or not isinstance(self.epochs_timed, int) \
                or self.epochs_timed < 0:
            raise ValueError(f"sessions={self.sessions!r} and epochs_timed={self.epochs_timed!r} must be counts "
                             "(sessions >= 1)")

    def steady_seconds(self) -> Optional[float]:
        """The training's time at its steady pace: the mean steady epoch times the epochs (None
        when no epoch was steady, or the record predates the list)."""
        if not self.steady_epoch_seconds:
            return None
        return sum(self.steady_epoch_seconds) / len(self.steady_epoch_seconds) * self.epochs_timed

    def steady_images_per_second(self) -> Optional[float]:
        """Images per second over steady epochs only (None when there were none)."""
        return self.images_per_second if self.steady_epoch_seconds else None


@dataclasses.dataclass(frozen=True)
class TrainingRecord:
    """One model's training: timing, steps, epochs and energy (``train_<model>.json``), and from
    tf_lottery 0.9 on its per-epoch history (``{column: [values]}``, the history CSV's content, so
    that a damaged CSV can be written again; None in older records).

    Attributes:
        timing: The measured time.
        steps: Optimizer steps taken.
        epochs: Epochs trained.
        energy: Energy and CO2 of the training.
        history: ``{column: [value per epoch]}``.

    Example:
        >>> record = TrainingRecord.from_dict(json.load(open("runs/dense-6b7b7f746cfd/train_dense.json")))
        >>> record.timing.train_seconds, record.epochs
    """

    timing: Timing
    steps: int
    epochs: int
    energy: Energy
    history: Optional[Dict[str, List[float]]] = None

    def to_dict(self) -> dict:
        """The layout of ``train_<model>.json``: ``{"train": {...}, "energy": {...}}``."""
        train = {"timing": self.timing.to_dict(), "steps": self.steps, "epochs": self.epochs}
        if self.history is not None:
            train["history"] = self.history
        return {"train": train, "energy": self.energy.to_dict()}

    @classmethod
    def from_dict(cls, values: dict) -> "TrainingRecord":
        """Reads :meth:`to_dict`'s layout."""
        train = values["train"]
        return cls(_take(Timing, train["timing"]), train["steps"], train["epochs"], Energy.from_dict(values["energy"]),
                   train.get("history"))


# The evaluations whose results sit at the top of a model record, as in tf_lottery 0.1:
# "clean" under "test", "cost"'s fields at the top level, "latency" under "latency".
_COST_KEYS = ("params", "nonzero_params", "flops", "filters", "memory_bytes", "memory_batch_size", "layers",
              "flops_per_token")  # the last two: a language model's (--task=causal_lm)


@dataclasses.dataclass(frozen=True)
class ModelRecord:
    """A trained model, measured: its training and every evaluation's result.

    Attributes:
        model_name: The Keras model's name (``resnet20_minus2``).
        blocks: Residual blocks it has.
        training: How it trained.
        evals: ``{evaluation name: result}`` (:mod:`tf_lottery.evals`).
        removed: For a ticket, the removed blocks in removal order.

    Example:
        >>> dense = ModelRecord.from_dict(json.load(open("runs/dense-6b7b7f746cfd/dense.json")))
        >>> dense.accuracy, dense.flops, dense.energy.status
    """

    model_name: str
    blocks: int
    training: TrainingRecord
    evals: Dict[str, dict]
    removed: Optional[List[str]] = None

    # The standard evaluations, by field. None when that evaluation did not run.
    @property
    def accuracy(self) -> Optional[float]:
        return self.evals.get("clean", {}).get("accuracy")

    def cost(self, key: str) -> Optional[int]:
        """A ``cost`` figure: params, flops, filters, memory_bytes or memory_batch_size."""
        return self.evals.get("cost", {}).get(key)

    @property
    def params(self) -> Optional[int]:
        return self.cost("params")

    @property
    def flops(self) -> Optional[int]:
        return self.cost("flops")

    @property
    def latency(self) -> Dict[str, dict]:
        """``{batch size: {"median_s", ...}}`` (empty when not measured)."""
        return self.evals.get("latency", {})

    @property
    def train_seconds(self) -> float:
        return self.training.timing.train_seconds

    @property
    def images_per_second(self) -> Optional[float]:
        return self.training.timing.images_per_second

    @property
    def energy(self) -> Energy:
        return self.training.energy

    def to_dict(self) -> dict:
        """The layout of 0.1: clean results under ``test``, cost at the top, other evaluations under ``evals``."""
        out = {"model_name": self.model_name, "blocks": self.blocks, **self.training.to_dict()}
        others = dict(self.evals)
        if "clean" in others:
            out["test"] = others.pop("clean")
        if "cost" in others:
            out.update(others.pop("cost"))
        if "latency" in others:
            out["latency"] = others.pop("latency")
        if others:
            out["evals"] = others
        if self.removed is not None:
            out["removed"] = list(self.removed)
        return out

    @classmethod
    def from_dict(cls, values: dict) -> "ModelRecord":
        """Reads :meth:`to_dict`'s layout."""
        evals = dict(values.get("evals", {}))
        if "test" in values:
            evals["clean"] = values["test"]
        if "params" in values:
            evals["cost"] = {k: values[k] for k in _COST_KEYS if k in values}
        if "latency" in values:
            evals["latency"] = values["latency"]
        return cls(values["model_name"], values["blocks"], TrainingRecord.from_dict(values), evals,
                   values.get("removed"))


@dataclasses.dataclass(frozen=True)
class TicketRecord:
    """How a ticket was found (the JSON of :class:`tf_lottery.tickets.TicketResult`, no model).

    Attributes:
        removed: The removed blocks, in removal order.
        scores: ``{block: score}`` of the (first) scoring.
        rounds: Each round's scores (one round for a one-shot schedule).
        criterion: The criterion's name.
        prune_first: Which end of the ranking went first (``"low"`` or ``"high"``).
        schedule: ``"oneshot"`` or ``"iterative"``.
        details: Method-specific facts (e.g. how a filter ticket's count was matched).

    Example:
        >>> result = tl.find_ticket(tl.models.cifar_resnet(20, seed=0), "magnitude", num_blocks=1)
        >>> result.record().removed
        ['stage3_block2']
    """

    removed: List[str]
    scores: Dict[str, float]
    rounds: List[Dict[str, float]]
    criterion: str
    prune_first: str
    schedule: str
    details: Optional[dict] = None  # method-specific: e.g. how a filter ticket's count was matched

    def to_dict(self) -> dict:
        """The JSON layout (``details`` left out when None, as 0.1 wrote a layer ticket)."""
        values = dataclasses.asdict(self)
        if values["details"] is None:  # the 0.1/0.2 layout of a layer ticket
            del values["details"]
        return values

    @classmethod
    def from_dict(cls, values: dict) -> "TicketRecord":
        """Reads :meth:`to_dict`'s layout."""
        return _take(cls, values)


@dataclasses.dataclass(frozen=True)
class ScoringRecord:
    """The scoring stage (``scores.json``): the ticket found, time, examples and energy.

    Attributes:
        ticket: How the ticket was found.
        scoring_seconds: The scoring's time.
        scoring_examples: Examples the criterion saw.
        energy: Energy and CO2 of the scoring.

    Example:
        >>> ScoringRecord.from_dict(json.load(open("runs/init_ticket-27cb9d7dd0a7/scores.json"))).ticket.removed
    """

    ticket: TicketRecord
    scoring_seconds: float
    scoring_examples: int
    energy: Energy

    def to_dict(self) -> dict:
        """The layout of ``scores.json``."""
        return {"ticket": self.ticket.to_dict(), "scoring_seconds": self.scoring_seconds,
                "scoring_examples": self.scoring_examples, "energy": self.energy.to_dict()}

    @classmethod
    def from_dict(cls, values: dict) -> "ScoringRecord":
        """Reads :meth:`to_dict`'s layout."""
        return cls(TicketRecord.from_dict(values["ticket"]), values["scoring_seconds"], values["scoring_examples"],
                   Energy.from_dict(values["energy"]))


def _less(dense: Optional[float], ticket: Optional[float]) -> Optional[float]:
    return None if dense is None or ticket is None else cost.reduction(dense, ticket)


def _ratio(top: Optional[float], bottom: Optional[float]) -> Optional[float]:
    return top / bottom if top and bottom else None


def _wins(dense: "ModelRecord", ticket: "ModelRecord", accuracy_pp: Optional[float]) -> Optional[bool]:
    """Whether the ticket wins: perplexity where both sides have one (lower wins), else accuracy."""
    perplexity = [side.evals.get("clean", {}).get("perplexity") for side in (dense, ticket)]
    if None not in perplexity:
        return perplexity[1] <= perplexity[0]
    return None if accuracy_pp is None else accuracy_pp >= 0.0


@dataclasses.dataclass(frozen=True)
class Comparison:
    """Ticket versus dense: accuracy in percentage points, reductions in % less, ratios in x.

    A figure either side could not measure is None ("unavailable"), never 0. A ticket wins when its
    test accuracy is at least the dense model's; for a language model (both sides measured a held-out
    perplexity) when its perplexity is at most the dense model's.

    Attributes:
        accuracy_pp: Ticket accuracy minus dense accuracy, in percentage points.
        winning_ticket: Whether the ticket wins (see above).
        params_reduction_pct: % fewer parameters.
        flops_reduction_pct: % fewer FLOPs.
        memory_reduction_pct: % less memory.
        training_speedup_x: Dense training time / ticket training time.
        images_per_second_ratio_x: Ticket throughput / dense throughput.
        flops_implied_speedup_x: Dense FLOPs / ticket FLOPs.
        latency_batch_size: The batch size the latencies are compared at (the largest both measured).
        latency_speedup_x: Dense latency / ticket latency at that batch size.
        energy_reduction_pct: % less training energy.
        co2_reduction_pct: % less training CO2.

    Example:
        >>> round(Comparison.between(dense, ticket).flops_reduction_pct, 2)   # ResNet32 minus stage1_block2
        6.83
    """

    accuracy_pp: Optional[float]
    winning_ticket: Optional[bool]
    params_reduction_pct: Optional[float]
    flops_reduction_pct: Optional[float]
    memory_reduction_pct: Optional[float]
    training_speedup_x: Optional[float]
    images_per_second_ratio_x: Optional[float]
    flops_implied_speedup_x: Optional[float]
    latency_batch_size: Optional[int]
    latency_speedup_x: Optional[float]
    energy_reduction_pct: Optional[float]
    co2_reduction_pct: Optional[float]

    @classmethod
    def between(cls, dense: ModelRecord, ticket: ModelRecord) -> "Comparison":
        """Compares two measured models (the one place comparing happens).

        Example:
            >>> Comparison.between(dense_record, ticket_record).training_speedup_x
            1.24
        """
        accuracy_pp = (None if dense.accuracy is None or ticket.accuracy is None
                       else 100.0 * (ticket.accuracy - dense.accuracy))
        timings = dense.training.timing, ticket.training.timing
        if any(t.sessions > 1 for t in timings):
            # A resumed training paid tracing and set-up once per session: both sides are compared
            # at their steady pace, or not at all when a side had no steady epoch.
            speedup = _ratio(timings[0].steady_seconds(), timings[1].steady_seconds())
            throughput = _ratio(timings[1].steady_images_per_second(), timings[0].steady_images_per_second())
        else:
            speedup = _ratio(dense.train_seconds, ticket.train_seconds)
            throughput = _ratio(ticket.images_per_second, dense.images_per_second)
        shared = sorted(set(dense.latency) & set(ticket.latency), key=int)
        batch = shared[-1] if shared else None
        return cls(
            accuracy_pp=accuracy_pp,
            winning_ticket=_wins(dense, ticket, accuracy_pp),
            params_reduction_pct=_less(dense.params, ticket.params),
            flops_reduction_pct=_less(dense.flops, ticket.flops),
            memory_reduction_pct=_less(dense.cost("memory_bytes"), ticket.cost("memory_bytes")),
            training_speedup_x=speedup,
            images_per_second_ratio_x=throughput,
            flops_implied_speedup_x=_ratio(dense.flops, ticket.flops),
            latency_batch_size=None if batch is None else int(batch),
            latency_speedup_x=None if batch is None else _ratio(dense.latency[batch]["median_s"],
                                                                  ticket.latency[batch]["median_s"]),
            energy_reduction_pct=_less(dense.energy.value("energy_kwh"), ticket.energy.value("energy_kwh")),
            co2_reduction_pct=_less(dense.energy.value("co2_kg"), ticket.energy.value("co2_kg")),
        )

    def to_dict(self) -> dict:
        """The layout of 0.1: the latency speed-up's key names its batch size."""
        out = dataclasses.asdict(self)
        batch = out.pop("latency_batch_size")
        speedup = out.pop("latency_speedup_x")
        if batch is not None:  # 0.1's key names the batch size
            out[f"latency_speedup_x_batch{batch}"] = speedup
        return out

    @classmethod
    def from_dict(cls, values: dict) -> "Comparison":
        """Reads :meth:`to_dict`'s layout."""
        values = dict(values)
        latency = [k for k in values if k.startswith("latency_speedup_x_batch")]
        batch = int(latency[0][len("latency_speedup_x_batch"):]) if latency else None
        speedup = values.pop(latency[0]) if latency else None
        return _take(cls, {**values, "latency_batch_size": batch, "latency_speedup_x": speedup})


@dataclasses.dataclass(frozen=True)
class Rewind:
    """How a ``lottery`` ticket started: the rewind mode, epoch i (or optimizer step k, when
    ``step`` > 0) and the recipe it trained with.

    Attributes:
        mode: ``"weights"``, ``"lr"`` or ``"reinit"``.
        epoch: The rewind epoch i.
        ticket_recipe: The ticket's recipe, as a dict.
        step: The rewind step k (0: rewound to ``epoch``).

    Example:
        >>> Rewind("weights", 25, {"length": "200ep"}).to_dict()["epoch"]
        25
    """

    mode: str
    epoch: int
    ticket_recipe: dict
    step: int = 0  # added in 0.9: records from before load with 0 (rewound to an epoch)

    def to_dict(self) -> dict:
        """The JSON layout."""
        return dataclasses.asdict(self)


#: The unit of each number a record holds, by field name (``*_pct`` and ``*_x`` for every such field).
UNITS = {"accuracy": "fraction", "accuracy_pp": "percentage points", "memory_bytes": "bytes",
         "latency": "seconds per batch (median)", "train_seconds": "seconds (wall, measured)",
         "energy_kwh": "kWh", "co2_kg": "kg CO2eq", "*_pct": "% less than dense", "*_x": "ratio"}


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """A ticket run's result (``result.json``): both models measured, compared, and where things are.

    Attributes:
        config_hash: The run's identity hash (``config.digest("ticket")``).
        run_folder: Where the run lives.
        dense_run_folder: Where its dense run lives.
        data: Split sizes and the input shape.
        scoring: The scoring stage's time, examples and energy.
        dense: The measured dense model.
        ticket: The measured ticket.
        comparison: Ticket versus dense.
        rewind: For ``lottery``: how the ticket started.
        exports: Export folders, when exported.

    Example:
        >>> record = RunRecord.from_dict(json.load(open("runs/init_ticket-27cb9d7dd0a7/result.json")))
        >>> record.comparison.accuracy_pp, record.ticket.removed
    """

    config_hash: str
    run_folder: str
    dense_run_folder: str
    data: dict
    scoring: ScoringRecord
    dense: ModelRecord
    ticket: ModelRecord
    comparison: Comparison
    rewind: Optional[Rewind] = None
    exports: Optional[Dict[str, str]] = None

    def to_dict(self) -> dict:
        """The layout of ``result.json`` (tf_lottery 0.1's), folders by name, with the units."""
        scoring = self.scoring.to_dict()
        out = {
            "config_hash": self.config_hash, "run_folder": folder_name(self.run_folder),
            "dense_run_folder": folder_name(self.dense_run_folder),
            "data": self.data, "scoring": {k: scoring[k] for k in ("scoring_seconds", "scoring_examples", "energy")},
            "ticket_search": scoring["ticket"],
            "dense": self.dense.to_dict(), "ticket": self.ticket.to_dict(), "comparison": self.comparison.to_dict(),
            "units": UNITS,
            "measured_vs_estimated": {
                "accuracy, latency, training time, images/s": "measured on this machine",
                "params, FLOPs, memory": "computed from the graph (memory: the formula in tf_lottery.graph.cost.memory)",
                "energy, CO2": self.dense.energy.mode,
            },
        }
        if self.rewind is not None:
            out["rewind"] = self.rewind.to_dict()
        if self.exports is not None:
            out["exports"] = {side: self._relative(path) for side, path in self.exports.items()}
        return out

    def _relative(self, path: str) -> str:
        """A recorded path: the run's own files relative to its folder, another run's to the runs folder."""
        if not os.path.isabs(path) and not os.path.isabs(self.run_folder) and os.sep not in os.path.normpath(
                self.run_folder):
            return path  # read from a record: already relative
        own = os.path.normpath(self.run_folder)
        if os.path.commonpath([os.path.abspath(path), os.path.abspath(own)]) == os.path.abspath(own):
            return os.path.relpath(path, own)
        return os.path.relpath(path, os.path.dirname(own) or ".")

    def anchored(self, run_folder: str, runs_dir: str) -> "RunRecord":
        """This record (as read from a result.json) with its folders and exports as paths: the run
        at ``run_folder``, every other run under ``runs_dir``.

        Example:
            >>> record.anchored("runs/init_ticket-3f2a9c1b7d4e", "runs").dense_run_folder
            'runs/dense-6b7b7f746cfd'
        """
        dense = run_path(runs_dir, self.dense_run_folder)
        others = {folder_name(self.dense_run_folder)} - {None}
        exports = None if self.exports is None else {
            side: (os.path.join(runs_dir, path) if path.split("/")[0] in others else os.path.join(run_folder, path))
            if not os.path.isabs(path) else path for side, path in self.exports.items()}
        return dataclasses.replace(self, run_folder=run_folder, dense_run_folder=dense, exports=exports)

    @classmethod
    def from_dict(cls, values: dict) -> "RunRecord":
        """Reads :meth:`to_dict`'s layout, and 0.1's (no ``ticket_search``)."""
        ticket = ModelRecord.from_dict(values["ticket"])
        search = values.get("ticket_search") or {  # 0.1 kept only the removed blocks here
            "removed": ticket.removed or [], "scores": {}, "rounds": [], "criterion": "?", "prune_first": "?",
            "schedule": "?"}
        scoring = ScoringRecord.from_dict({**values["scoring"], "ticket": search})
        rewind = values.get("rewind")
        return cls(values["config_hash"], values["run_folder"], values.get("dense_run_folder"), values["data"],
                   scoring, ModelRecord.from_dict(values["dense"]), ticket, Comparison.from_dict(values["comparison"]),
                   Rewind(**rewind) if rewind else None, values.get("exports"))


@dataclasses.dataclass(frozen=True)
class SweepRow:
    """One point of a sweep, flat: what the report's tables and the plots read.

    ``rewind`` and ``rewind_epoch`` are None for points whose experiment does not rewind. A field
    that a point did not measure is None; fields added after 0.2 are unset in rows of older sweeps.

    Attributes:
        seed: The point's seed.
        criterion: The criterion's name.
        p: Blocks removed (None for a method that does not remove blocks).
        experiment: The experiment that made the point.
        rewind: The rewind mode.
        rewind_epoch: The rewind epoch i.
        dense_accuracy: The dense model's test accuracy.
        ticket_accuracy: The ticket's test accuracy.
        dense_flops: The dense model's FLOPs.
        ticket_flops: The ticket's FLOPs.
        dense_train_seconds: The dense model's training time.
        ticket_train_seconds: The ticket's training time.
        accuracy_pp: Ticket minus dense accuracy, in percentage points.
        flops_reduction_pct: % fewer FLOPs.
        params_reduction_pct: % fewer parameters.
        memory_reduction_pct: % less memory.
        co2_reduction_pct: % less training CO2.
        energy_reduction_pct: % less training energy.
        training_speedup_x: Dense training time / ticket training time.
        images_per_second_ratio_x: Ticket throughput / dense throughput.
        flops_implied_speedup_x: Dense FLOPs / ticket FLOPs.
        run_folder: The point's run folder.
        dense_run_folder: Its dense run's folder.
        method: How the ticket was made (``--method``).
        dense_params: The dense model's parameters.
        ticket_params: The ticket's parameters.
        ticket_nonzero_params: The ticket's non-zero weights (below its parameters for a masked ticket).
        dense_filters: The dense model's conv filters.
        ticket_filters: The ticket's conv filters.
        dense_images_per_second: The dense model's training throughput.
        ticket_images_per_second: The ticket's training throughput.
        latency_batch_size: The batch size of the latencies.
        dense_latency_s: The dense model's median latency, in seconds per batch.
        ticket_latency_s: The ticket's.
        cka_linear: Linear CKA of the penultimate features, dense against ticket (``--evals=cka``).
        cka_debiased: Debiased linear CKA of the same.
        dense_curve: The dense model's learning curve, ``[[seconds, validation accuracy], ...]`` per epoch.
        ticket_curve: The ticket's.
        dense_seconds_to_final: Seconds until the dense model first reached its final validation accuracy.
        ticket_seconds_to_dense: Seconds until the ticket reached the dense model's final validation accuracy.
        dense_train_accuracy: The dense model's training accuracy per epoch (the recipe check).
        rewind_step: The rewind step k (0: rewound to ``rewind_epoch``).
        dense_perplexity: The dense language model's held-out perplexity.
        ticket_perplexity: The ticket's.
        length: The point's training length (a sweep's ``--sweep_lengths`` axis).

    Example:
        >>> rows = [SweepRow.from_dict(row) for row in json.load(open("runs/sweep-1c0e6a0f2b7d/results.json"))["rows"]]
        >>> [(row.criterion, row.p, row.accuracy_pp) for row in rows]
    """

    seed: int
    criterion: str
    p: Optional[int]
    experiment: str
    rewind: Optional[str]
    rewind_epoch: Optional[int]
    dense_accuracy: Optional[float]
    ticket_accuracy: Optional[float]
    dense_flops: Optional[int]
    ticket_flops: Optional[int]
    dense_train_seconds: float
    ticket_train_seconds: float
    accuracy_pp: Optional[float]
    flops_reduction_pct: Optional[float]
    params_reduction_pct: Optional[float]
    memory_reduction_pct: Optional[float]
    co2_reduction_pct: Optional[float]
    energy_reduction_pct: Optional[float]
    training_speedup_x: Optional[float]
    images_per_second_ratio_x: Optional[float]
    flops_implied_speedup_x: Optional[float]
    run_folder: str
    dense_run_folder: Optional[str]
    # Added in 0.3 (rows of older sweeps load with these unset): the method and the cost table.
    method: str = "blocks"
    dense_params: Optional[int] = None
    ticket_params: Optional[int] = None
    ticket_nonzero_params: Optional[int] = None
    dense_filters: Optional[int] = None
    ticket_filters: Optional[int] = None
    dense_images_per_second: Optional[float] = None
    ticket_images_per_second: Optional[float] = None
    latency_batch_size: Optional[int] = None
    dense_latency_s: Optional[float] = None
    ticket_latency_s: Optional[float] = None
    # Added in 0.4: linear and debiased CKA of the penultimate features, dense vs ticket (``--evals=cka``).
    cka_linear: Optional[float] = None
    cka_debiased: Optional[float] = None
    # Added in 0.7: learning curves [[seconds, validation accuracy], ...] per epoch (tf_lottery.results.curves), and the
    # time to the dense network's final validation accuracy (dense: its own first epoch there).
    dense_curve: Optional[list] = None
    ticket_curve: Optional[list] = None
    dense_seconds_to_final: Optional[float] = None
    ticket_seconds_to_dense: Optional[float] = None
    dense_train_accuracy: Optional[list] = None  # per epoch, for the recipe check (tf_lottery.results.curves)
    # Added in 0.9: the rewind step k (0: rewound to ``rewind_epoch``).
    rewind_step: Optional[int] = None
    # Added in 0.9: held-out perplexity of a language model (--task=causal_lm; None for images).
    dense_perplexity: Optional[float] = None
    ticket_perplexity: Optional[float] = None
    # Added in 0.10: the training length of the point (a sweep's --sweep_lengths axis).
    length: Optional[str] = None

    @property
    def rewinds(self) -> bool:
        return self.rewind is not None

    @property
    def by_step(self) -> bool:
        """Whether the ticket rewound to an optimizer step (``rewind_step`` > 0), not an epoch."""
        return bool(self.rewind_step)

    @property
    def rewind_at(self) -> Optional[int]:
        """Where the ticket rewound to: the step k when :attr:`by_step`, else the epoch i (None: no rewind).
        A sweep rewinds to epochs or to steps, never both, so this orders its columns."""
        return self.rewind_step if self.by_step else self.rewind_epoch

    @property
    def rewind_label(self) -> Optional[str]:
        """``"θ_25"`` (after 25 epochs) or ``"θ_500it"`` (after 500 steps); None: no rewind."""
        if self.rewind_at is None:
            return None
        return f"θ_{self.rewind_step}it" if self.by_step else f"θ_{self.rewind_epoch}"

    @property
    def time_to_dense_speedup_x(self) -> Optional[float]:
        """Dense training time / the ticket's time to the dense final validation accuracy (None:
        never reached, or no curves)."""
        return _ratio(self.dense_train_seconds, self.ticket_seconds_to_dense)

    def to_dict(self) -> dict:
        """JSON-ready; the run folders by name (relative to the runs folder)."""
        return {**dataclasses.asdict(self), "run_folder": folder_name(self.run_folder),
                "dense_run_folder": folder_name(self.dense_run_folder)}

    @classmethod
    def from_dict(cls, values: dict) -> "SweepRow":
        """Reads :meth:`to_dict`'s layout (a row of an older sweep leaves the later fields unset)."""
        return _take(cls, values)
