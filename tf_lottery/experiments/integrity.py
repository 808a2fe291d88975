"""A run folder is verified, not believed: what a rerun does about each file that does not match the manifest.

Every run folder carries a ``manifest.json`` (:mod:`tf_lottery.core.manifest`): each file's size and
SHA-256, kept current as the run writes. A rerun compares the folder with it before it trusts
anything, and for each file that is missing, changed, or there without being recorded it does what
that file's role allows, saying so in one line that names the file:

* **remade** — what follows from sound files: ``result.json``, ``summary.md``, the plots, the
  evaluation caches (``evals/``), the history CSVs (from the training records), ``dense.json``,
  the exports (from the weights) and θ0 (from the seed). The file is moved aside
  (``<name>.damaged``) and the run's stages make it again, with the records built from it.
* **trained again** — what only training makes: a training's record (``train_<name>.json``) and
  weights (``<name>_final.weights.h5``, a dense run's ``theta_<k>`` snapshots), and the ticket's
  decision (``scores*.json``; the ticket was trained from it). That training and every stage
  after it are done again; earlier ones are kept.
* **named** — ``emissions.csv`` (codecarbon's log, which nothing reads) and files no tf_lottery
  stage wrote are named and left alone, never read.

Runs made before manifests existed are adopted on their first sound read (their manifest is
written then, naming absent weights as not kept). A manifest's ``not_kept`` names weights that were
deliberately not kept (committed evidence): the run is reported from its small files, and a stage
that needs those weights stops with one line saying so rather than retrain.
"""

from __future__ import annotations

import math
import os
import re
import shutil
from typing import List, Optional, Tuple

from tf_lottery.core import manifest
from tf_lottery.core.log import log

LOG_FILES = ("emissions.csv",)
# Built from sound files by a stage of the run (the records first: they embed the others).
_DERIVED = re.compile(r"^(result\.json|summary\.md|dense\.json|[^/]+\.png|history_[^/]+\.csv|evals/.+|export/.+|"
                      r"theta_0\.weights\.h5)$")
_TRAINING = re.compile(r"^(?:train_(?P<record>[^/]+)\.json|(?P<weights>[^/]+)_final\.weights\.h5)$")
_DECISION = re.compile(r"^scores(?:_level(?P<level>\d+))?\.json$")
_SNAPSHOT = re.compile(r"^theta_(?:step_)?\d+\.weights\.h5$")
_RECORDS = {"ticket": ("result.json", "summary.md"), "dense": ("dense.json",)}
_LAST = math.inf


def role(name: str) -> Tuple[str, float]:
    """What a run file is, for the rerun: ``(kind, stage)``.

    ``kind`` is ``"config"``, ``"log"``, ``"derived"``, ``"trained"`` or ``"unknown"``; ``stage`` orders
    the trained files (a decision before the training it feeds, IMP's levels in order, the ticket last).
    """
    if name == "config.json":
        return "config", 0
    if name in LOG_FILES:
        return "log", 0
    if _DERIVED.match(name):
        return "derived", 0
    decision = _DECISION.match(name)
    if decision:
        return "trained", 2 * int(decision["level"] or 0)
    if _SNAPSHOT.match(name):
        return "trained", 1
    training = _TRAINING.match(name)
    if training:
        which = training["record"] or training["weights"]
        level = re.fullmatch(r"level(\d+)", which)
        return "trained", (2 * int(level[1]) + 1) if level else (1 if which == "dense" else _LAST)
    return "unknown", 0


def _training_in_progress(folder: str, name: str) -> bool:
    """Whether ``name`` is a history CSV of a training whose resume state is there (it is rewritten from it)."""
    match = re.fullmatch(r"history_(.+)\.csv", name)
    return bool(match) and os.path.isdir(os.path.join(folder, f"resume_{match[1]}"))


def _set_aside(folder: str, name: str) -> None:
    """Moves a run file (or, under ``export/``, its whole export) aside as ``<name>.damaged``."""
    if name.startswith("export/"):
        name = "/".join(name.split("/")[:2])
    path = os.path.join(folder, name)
    if os.path.lexists(path):
        aside = path + ".damaged"
        if os.path.isdir(aside):
            shutil.rmtree(aside)
        os.replace(path, aside)


def _remove(folder: str, name: str) -> None:
    path = os.path.join(folder, name)
    if os.path.isdir(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.remove(path)


def read_manifest(folder: str) -> Optional[dict]:
    """The run's manifest, or None when it has none (a run made before manifests: adopted later) or when
    it is damaged (moved aside, saying so: the run is then adopted again from what reads soundly)."""
    try:
        return manifest.read(folder)
    except manifest.DamagedManifest as error:
        _set_aside(folder, manifest.MANIFEST)
        log(f"warning: {error}; it is set aside and the run is verified again from what reads soundly")
        return None


def findings(folder: str) -> List[manifest.Finding]:
    """The files of a run folder that do not match its manifest (none for a folder without one)."""
    recorded = read_manifest(folder) if os.path.isdir(folder) else None
    if recorded is None:
        return []
    return [f for f in manifest.check(folder, recorded)
            if not (f.problem == "unrecorded" and (_training_in_progress(folder, f.name) or role(f.name)[0] == "log"))]


def untrusted(folder: str) -> List[manifest.Finding]:
    """The findings of :func:`findings` that a reader must not believe (not the log, not files no stage reads);
    read only: for experiments that use finished runs without remaking them (``compare``, ``export``)."""
    return [f for f in findings(folder) if role(f.name)[0] not in ("log", "unknown")]


def repair(folder: str, scope: str, found: List[manifest.Finding]) -> Tuple[List[str], bool]:
    """Acts on ``found`` (see the module docstring) under the caller's lock.

    Args:
        folder: The run folder.
        scope: ``"ticket"`` or ``"dense"``: which records embed the other files.
        found: From :func:`findings`.

    Returns:
        ``(lines, set_aside)``: one line per finding, and whether anything was set aside to be remade
        or trained again (only named files leave the run finished).

    Raises:
        ValueError: for a recorded file of no known role (the run cannot be verified): delete the folder.
    """
    lines, retrain_from, set_aside = [], None, False
    for finding in found:
        kind, stage = role(finding.name)
        path = os.path.join(folder, finding.name)
        if kind == "unknown" and finding.problem != "unrecorded":
            raise ValueError(f"{path} is {finding.problem} and tf_lottery cannot remake it: the run cannot be "
                             f"verified; move {folder} away and rerun")
        if kind == "unknown":
            lines.append(f"{path}: not written by this run; left as it is and never read")
        elif kind == "log":
            lines.append(f"{path}: {finding.problem} ({finding.detail or 'a log nothing reads'}); left as it is")
        elif kind in ("config", "derived"):
            _set_aside(folder, finding.name)
            set_aside = True
            lines.append(f"{path}: {finding.problem}{f' ({finding.detail})' if finding.detail else ''}; "
                         "remade from the run's sound files")
            for record in _RECORDS.get(scope, ()):
                _remove(folder, record)
        else:
            _set_aside(folder, finding.name)
            set_aside = True
            retrain_from = stage if retrain_from is None else min(retrain_from, stage)
            lines.append(f"{path}: {finding.problem}{f' ({finding.detail})' if finding.detail else ''}; it cannot "
                         "be remade without training, so that training is done again")
    if retrain_from is not None:
        for name in manifest.files_of(folder):
            kind, stage = role(name)
            if kind == "derived" or (kind == "trained" and stage >= retrain_from):
                _remove(folder, name)
        for entry in os.listdir(folder):  # a resume state of a training that is done again cannot be trusted either
            if entry.startswith("resume_"):
                shutil.rmtree(os.path.join(folder, entry), ignore_errors=True)
        for name in os.listdir(os.path.join(folder, "export")) if os.path.isdir(os.path.join(folder, "export")) else ():
            if not name.endswith(".damaged"):
                shutil.rmtree(os.path.join(folder, "export", name), ignore_errors=True)
    return lines, set_aside


def verify(folder: str, scope: str) -> bool:
    """Verifies a run folder against its manifest and repairs what it can (under the caller's lock).

    Returns:
        Whether anything was set aside (then the run is not finished: its stages remake or retrain it).

    Raises:
        ValueError: when the run cannot be verified (see :func:`repair`).
    """
    found = findings(folder)
    lines, set_aside = repair(folder, scope, found)
    for line in lines:
        log(f"warning: {line}")
    if found:
        seal(folder)  # what is left is sound (or named): the stages' writes are recorded on top of it
    return set_aside


def seal(folder: str, not_kept: Optional[List[str]] = None, extra: Optional[dict] = None) -> None:
    """Writes the run's manifest from its files, keeping the ``not_kept`` names and the other fields it
    had (``extra`` adds or replaces fields)."""
    try:
        current = manifest.read(folder) or {}
    except manifest.DamagedManifest:
        current = {}
    kept = {key: value for key, value in current.items()
            if key not in ("format", "files", "not_kept", "folder", "digest")}
    not_kept = current.get("not_kept", []) if not_kept is None else not_kept
    not_kept = [name for name in not_kept if not os.path.exists(os.path.join(folder, name))]
    manifest.write(folder, not_kept=not_kept, extra={**kept, **(extra or {})})


def record_file(folder: str, name: str) -> None:
    """Adds (or updates) one file's entry in the run's manifest after a stage wrote it (no-op without one)."""
    path = os.path.join(folder, manifest.MANIFEST)
    if not os.path.exists(path):
        return
    try:
        current = manifest.read(folder)
    except manifest.DamagedManifest:
        return  # the next verification names it
    current["files"][name] = manifest.entry(os.path.join(folder, name))
    current["not_kept"] = [n for n in current.get("not_kept", []) if n != name]
    manifest.save(folder, current)


def not_kept(folder: str) -> List[str]:
    """The files a run's manifest names as deliberately not kept (its weights, for committed evidence)."""
    try:
        return list((manifest.read(folder) or {}).get("not_kept", []))
    except manifest.DamagedManifest:
        return []


def adopt(folder: str, weights: List[str]) -> None:
    """Writes the manifest of a run made before manifests, on its first sound read: what is there is
    recorded, and ``weights`` that are absent are named as not kept."""
    seal(folder, not_kept=[name for name in weights if not os.path.exists(os.path.join(folder, name))])
    log(f"{os.path.join(folder, manifest.MANIFEST)} was missing (a run from before tf_lottery 0.10, or a manifest "
        "set aside): the run read soundly, and its files are recorded now")
