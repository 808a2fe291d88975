"""A finished run, verified rather than believed: the lock around the part of a run that writes, and
the check that a run folder (and its dense run) still match their manifests and hold every requested
evaluation before a rerun says "already ran".

Example:
    >>> with started(config, run) as finished:
    ...     if finished is None:
    ...         ...   # this process runs the stages
"""

from __future__ import annotations

import contextlib
import os
from typing import Optional

from tf_lottery import evals
from tf_lottery.config import Config
from tf_lottery.core.log import log
from tf_lottery.experiments import integrity
from tf_lottery.experiments.measuring import has_evals
from tf_lottery.experiments.recording import dense_input, theta_zero, write_summary
from tf_lottery.experiments.runs import RunFolder, folder_lock
from tf_lottery.results.records import RunRecord

@contextlib.contextmanager
def started(config: Config, run: RunFolder):
    """Holds ``run``'s lock and creates the folder: the part of a run that writes.

    Yields the run's record when another process finished it while this one waited, else None.
    """
    with run.lock(config.runtime.wait_for_lock):
        finished = already_done(config, run, quiet=True, locked=True)
        if finished is None:
            run.start()
            log(f"run folder {run.path}")
        yield finished


def already_done(config: Config, run: RunFolder, quiet: bool = False, locked: bool = False) -> Optional[RunRecord]:
    """The record of a finished run, verified: its folder and its dense run's match their manifests, and it
    holds every requested evaluation (printing its table and writing summary.md again when it differs);
    else None, after setting aside what the run's stages must remake or retrain
    (:mod:`tf_lottery.experiments.integrity`).

    Args:
        quiet: Say nothing when the run lacks evaluations.
        locked: Whether the caller holds the run's lock (else it is taken here).

    Raises:
        ValueError: when the run lacks an evaluation and its weights were not kept (committed evidence):
            it is never trained again for that.
    """
    if not os.path.isdir(run.path):
        return None
    if not locked:
        with run.lock(config.runtime.wait_for_lock):
            return already_done(config, run, quiet, locked=True)
    damaged = run.verify()
    record = run.read_json("result.json", RunRecord.from_dict, recompute=True)  # remade from the stages' files
    if record is None or damaged:
        return None
    # The record names runs relative to the runs folder: in memory they are paths under this one.
    record = record.anchored(run.path, config.runtime.runs_dir)
    dense_folder = record.dense_run_folder
    if dense_folder and os.path.isdir(dense_folder):
        with folder_lock(dense_folder, config.runtime.wait_for_lock):
            if integrity.verify(dense_folder, "dense"):
                return None  # the dense run remakes (or retrains) its part, then this run's record is made again
            if integrity.read_manifest(dense_folder) is None:
                integrity.adopt(dense_folder, ["dense_final.weights.h5", theta_zero()])
    if not _same_dense(run, dense_folder):
        return None
    if not (has_evals(record.dense, config, "dense") and has_evals(record.ticket, config, "ticket")):
        absent = integrity.not_kept(run.path) + (integrity.not_kept(dense_folder) if dense_folder else [])
        if absent:
            wanted = sorted(set(evals.wanted(config.evaluation, "ticket")) - set(record.ticket.evals))
            raise ValueError(f"{run.path} lacks --evals={','.join(wanted) or 'its dense evaluations'}, and its "
                             f"weights were not kept ({', '.join(absent)}, named in manifest.json): it is not "
                             "trained again for that; run it in another --runs_dir to train and measure it")
        if not quiet:
            log(f"{run.path} ran before; measuring the evaluations it lacks")
        return None
    if integrity.read_manifest(run.path) is None:
        integrity.adopt(run.path, ["ticket_final.weights.h5"])
    log(f"this config already ran: {run.path} (delete the folder to run it again)")
    absent = integrity.not_kept(run.path) + (integrity.not_kept(dense_folder) if dense_folder else [])
    if absent:
        log(f"  verified from its small files; weights not kept: {', '.join(absent)}")
    # summary.md follows from the record: remade when missing or damaged (the same bytes, atomically,
    # so two processes doing it at once cannot clash).
    print(write_summary(config, run, record))
    return record


def _same_dense(run: RunFolder, dense_folder: Optional[str]) -> bool:
    """Whether the dense run's ``dense.json`` is the one the ticket's record was made from; if not,
    the record and the summary are set aside (named) so that they are made again from the current one."""
    recorded = (integrity.read_manifest(run.path) or {}).get("made_from", {})
    if not recorded or dense_input(dense_folder) == recorded:
        return True
    for name in ("result.json", "summary.md"):
        if run.exists(name):
            os.replace(run.file(name), run.file(name + ".damaged"))
    log(f"warning: {run.file('result.json')} was made from another {dense_folder}/dense.json; it is made "
        "again from the current one")
    return False
