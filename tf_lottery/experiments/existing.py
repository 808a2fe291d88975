"""Runs that already trained: the folders ``--from`` names, or the points the flags name.

``robustness`` measures them and ``export`` exports them again; neither retrains anything.
A ``--from`` folder may be a ticket run (``init_ticket``, ``lottery``, ``imp``), a dense run,
or a sweep or compare folder (all its points).

Example:
    >>> [t.ticket_folder for t in targets(Config.create(experiment="export", runs_from=("runs/sweep-04e2",)))]
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import List, Optional

import keras

from tf_lottery import tickets
from tf_lottery import training
from tf_lottery.config import Config
from tf_lottery.models import function
from tf_lottery.experiments.dense import dense_config
from tf_lottery.config.experiments import EXPERIMENTS
from tf_lottery.experiments.preparing import dense_model
from tf_lottery.experiments.sweep import points
from tf_lottery.results.records import ScoringRecord
from tf_lottery.experiments import integrity
from tf_lottery.experiments.runs import DamagedRunFile, RunFolder, read_json_object


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
    remedy = ("it cannot be remade from this folder: rerun the command that made the run (its folder is named by "
              "the hash of its config), or restore the file")
    config = read_json_object(path, Config.from_dict, remedy)
    if re.fullmatch(function.PATTERN, config.model.type) and not function.is_trusted(config.model.type):
        raise function.refusal(config.model.type, f"--from={folder}: its config.json")
    return config.replace(runs_dir=os.path.dirname(os.path.abspath(folder)))


def _from_folder(folder: str, seen: tuple = ()) -> List[Target]:
    """The targets of one ``--from`` folder (a sweep folder gives all its points).

    A sweep's rows name their points' folders; each must be a folder beside the sweep's own
    (the runs folder it came from), never a path leading elsewhere, nor the sweep itself.
    """
    folder = os.path.realpath(folder)
    if folder in seen:
        raise DamagedRunFile(f"{seen[-1]}/results.json is damaged: a row names {folder}, which lists the sweep "
                             "again (a loop); rerun the sweep's command to rewrite it")
    config = _read_config(folder)
    scope = EXPERIMENTS.get(config.experiment).scope
    if scope == "dense":
        return [Target(config, None)]
    if scope == "ticket":
        return [Target(config, folder)]
    results = os.path.join(folder, "results.json")
    if not os.path.exists(results):
        raise ValueError(f"--from={folder}: this {config.experiment} has not finished (no results.json); "
                         "run it first")
    remedy = f"rerun {config.command_line()}, which rewrites it from its points (they are kept)"
    rows = read_json_object(results, remedy=remedy).get("rows")
    parent = os.path.dirname(folder)
    named = [row.get("run_folder") if isinstance(row, dict) else None for row in rows or ()] if isinstance(
        rows, list) else None
    if not named or not all(isinstance(name, str) and name for name in named):
        raise DamagedRunFile(f"{results} is damaged (no list of rows, each with its run_folder): it should hold the "
                             f"sweep's rows, one per point; {remedy}")
    found = []
    for name in named:
        point = os.path.basename(os.path.normpath(name))
        if point in ("", ".", "..") or not os.path.isdir(os.path.join(parent, point)):
            raise DamagedRunFile(f"{results} is damaged: its row run_folder={name!r} is not a run folder beside it "
                                 f"in {parent}; {remedy}")
        found += _from_folder(os.path.join(parent, point), (*seen, folder))
    return found


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
    for target in unique.values():
        for folder in (target.ticket_folder, RunFolder(dense_config(target.config), "dense").path):
            bad = integrity.untrusted(folder) if folder else []
            if bad:
                raise ValueError(f"{folder} does not match its manifest ({'; '.join(f.describe() for f in bad[:3])}"
                                 f"{' ...' if len(bad) > 3 else ''}): rerun its own command "
                                 f"({target.config.command_line()}), which remakes or retrains what is damaged; "
                                 f"{config.experiment} retrains nothing")
    return list(unique.values())


def trained_ticket(config: Config, folder: RunFolder, data) -> keras.Model:
    """The trained ticket of a run folder: its decision applied to θ0, then its final weights."""
    levels = [name for name in os.listdir(folder.path) if re.fullmatch(r"scores_level\d+\.json", name)]
    last = max(levels, key=lambda name: int(re.sub(r"\D", "", name)), default=None)
    file = "scores.json" if folder.exists("scores.json") or last is None else last  # IMP: the last level's
    scoring = folder.read_json(file, ScoringRecord.from_dict)
    ticket = tickets.get(config.method.type).apply(dense_model(config, data), scoring.ticket, config.method)
    folder.load_weights(ticket, "ticket_final.weights.h5",  # present: result.json was checked
                        retrains=f"{folder.file('ticket_final.weights.h5')} {folder.file('train_ticket.json')} "
                                 f"{folder.file('result.json')}")
    training.compile_model(ticket, config.training.recipe(), 1)
    return ticket
