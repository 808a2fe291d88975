"""Runs that already trained: the folders ``--from`` names, or the points the flags name.

``robustness`` measures them and ``export`` exports them again; neither retrains anything.
A ``--from`` folder may be a ticket run (``init_ticket``, ``lottery``, ``imp``), a dense run,
or a sweep or compare folder (all its points).

Example:
    >>> [t.ticket_folder for t in targets(Config.create(experiment="export", runs_from=("runs/sweep-04e2",)))]
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from typing import List, Optional

import keras

from tf_lottery import tickets
from tf_lottery import training
from tf_lottery.config import Config
from tf_lottery.experiments.dense import dense_config
from tf_lottery.config.experiments import EXPERIMENTS
from tf_lottery.experiments.stages import dense_model
from tf_lottery.experiments.sweep import points
from tf_lottery.results.records import ScoringRecord
from tf_lottery.experiments.runs import RunFolder


@dataclasses.dataclass(frozen=True)
class Target:
    """One trained model pair to measure: a ticket run (or a dense run alone).

    Attributes:
        config: The run's config (``runs_dir`` set to where its folder is now).
        ticket_folder: The ticket run's folder, or None for a dense run alone.
    """

    config: Config
    ticket_folder: Optional[str]


def _read_config(folder: str) -> Config:
    path = os.path.join(folder, "config.json")
    if not os.path.exists(path):
        raise ValueError(f"--from={folder}: not a run folder (it has no config.json)")
    with open(path) as handle:
        config = Config.from_dict(json.load(handle))
    return config.replace(runs_dir=os.path.dirname(os.path.abspath(folder)))


def _from_folder(folder: str) -> List[Target]:
    """The targets of one ``--from`` folder (a sweep folder gives all its points)."""
    config = _read_config(folder)
    scope = EXPERIMENTS.get(config.experiment).scope
    if scope == "dense":
        return [Target(config, None)]
    if scope == "ticket":
        return [Target(config, os.path.abspath(folder))]
    results = os.path.join(folder, "results.json")
    if not os.path.exists(results):
        raise ValueError(f"--from={folder}: this {config.experiment} has not finished (no results.json); "
                         "run it first")
    with open(results) as handle:
        rows = json.load(handle)["rows"]
    parent = os.path.dirname(os.path.abspath(folder))
    return [t for row in rows for t in _from_folder(os.path.join(parent, os.path.basename(row["run_folder"])))]


def targets(config: Config) -> List[Target]:
    """The runs to measure: ``--from`` folders, or the points the flags name (all must have finished).

    Raises:
        ValueError: for a folder that is not a run folder, or points that did not run (listed,
            with the command that runs them).

    Example:
        >>> targets(config)[0].ticket_folder
        'runs/init_ticket-6b7b7f746cfd'

    """
    if config.evaluation.runs_from:
        found = [t for folder in config.evaluation.runs_from for t in _from_folder(folder)]
    else:
        found = [Target(point, RunFolder(point, "ticket").path) for point in points(config)]
    missing = [t.ticket_folder for t in found if t.ticket_folder and
               not os.path.exists(os.path.join(t.ticket_folder, "result.json"))]
    if missing:
        raise ValueError(f"{len(missing)} of the {len(found)} runs to evaluate have not finished: "
                         f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}. Train them first (the "
                         f"same flags with --experiment=sweep, or the run's own command); {config.experiment} "
                         "retrains nothing")
    unique = {(t.ticket_folder or RunFolder(dense_config(t.config), "dense").path): t for t in found}
    return list(unique.values())


def trained_ticket(config: Config, folder: RunFolder, data) -> keras.Model:
    """The trained ticket of a run folder: its decision applied to θ0, then its final weights."""
    levels = [name for name in os.listdir(folder.path) if re.fullmatch(r"scores_level\d+\.json", name)]
    last = max(levels, key=lambda name: int(re.sub(r"\D", "", name)), default=None)
    file = "scores.json" if folder.exists("scores.json") or last is None else last  # IMP: the last level's
    scoring = ScoringRecord.from_dict(folder.read_json(file))
    ticket = tickets.get(config.method.type).apply(dense_model(config, data), scoring.ticket, config.method)
    ticket.load_weights(folder.file("ticket_final.weights.h5"))  # present: result.json was checked
    training.compile_model(ticket, config.training.recipe(), 1)
    return ticket
