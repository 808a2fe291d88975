"""Crash-safe training state: a training killed at any moment resumes at its last finished epoch.

``resume_<model>/`` in the run folder holds, after every finished epoch:

* ``epoch-<k>.weights.h5``: the model and optimizer state after k epochs, written to a
  temporary name and renamed (Keras' ``BackupAndRestore`` writes in place, so a kill
  during the write leaves a truncated file that blocks every rerun);
* ``progress.json``, written after the weights (atomically): every finished epoch's wall
  seconds, its session and its logs, which checkpoints exist, and the precision (the model's
  Keras dtype policy) the training computes in.

A kill at any point leaves ``progress.json`` naming a complete checkpoint. The last two
checkpoints are kept: one that does not load is reported and the previous one is used,
or, with none left, training starts over (never a traceback). The history CSV is written
from ``progress.json``, so it always holds each finished epoch exactly once. The state is
discarded by the caller only after the final weights are saved. A training resumes in the
precision it began in: a model of another dtype policy is refused (:func:`check_precision`), since
its float32 variables would load and silently continue another training.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
import time
from typing import List, Optional

import keras

from tf_lottery.core.faults import crash_point
from tf_lottery.core.io import atomic_path, ensure_free_space, state_bytes, write_json_atomic, write_text_atomic
from tf_lottery.core.log import log

_KEPT_CHECKPOINTS = 2


def _number(value, least: float = 0.0) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= least


def checked_progress(progress) -> dict:
    """``progress`` when it is a resume state's ``progress.json``: a list of finished epochs (each with its
    index, session, non-negative wall seconds and steps, and its logs) and a list of checkpoint epoch counts.

    Args:
        progress: What ``progress.json`` held, as read.

    Returns:
        ``progress``, unchanged.

    Raises:
        ValueError: saying which field is wrong (the caller names the file and trains from the start).

    Example:
        >>> checked_progress({"epochs": [{"epoch": 0, "session": 0, "seconds": -1.0}], "checkpoints": [1]})
        Traceback (most recent call last):
        ValueError: epochs[0]['seconds'] is -1.0, not a count or seconds >= 0
    """
    if not isinstance(progress, dict):
        raise ValueError(f"a JSON {type(progress).__name__}, not an object")
    epochs, checkpoints = progress.get("epochs", []), progress.get("checkpoints", [])
    if not isinstance(epochs, list) or not isinstance(checkpoints, list):
        raise ValueError("'epochs' and 'checkpoints' must be lists")
    for index, epoch in enumerate(epochs):
        if not isinstance(epoch, dict):
            raise ValueError(f"epochs[{index}] is not an object")
        for key, least in (("epoch", 0), ("session", 0), ("seconds", 0), ("setup_seconds", 0), ("steps", 0)):
            if key in epoch or key in ("epoch", "session", "seconds"):
                if not _number(epoch.get(key), least) or (key in ("epoch", "session", "steps") and
                                                          not isinstance(epoch.get(key), int)):
                    raise ValueError(f"epochs[{index}]['{key}'] is {epoch.get(key)!r}, not a count or seconds >= 0")
        if not isinstance(epoch.get("logs", {}), dict):
            raise ValueError(f"epochs[{index}]['logs'] is not an object")
    if not all(isinstance(c, int) and not isinstance(c, bool) and c >= 1 for c in checkpoints):
        raise ValueError("'checkpoints' must hold epoch counts >= 1")
    return progress


def state_folder(workdir: str, name: str) -> str:
    """The resume state folder of model ``name`` in ``workdir``.

    Args:
        workdir: The run folder.
        name: The model's name in the run (``"dense"``, ``"ticket"``).

    Returns:
        ``<workdir>/resume_<name>``.

    Example:
        >>> state_folder("runs/mine", "ticket")
        'runs/mine/resume_ticket'
    """
    return os.path.join(workdir, f"resume_{name}")


def discard(workdir: str, name: str) -> None:
    """Removes the resume state of ``name`` (once its final weights are saved).

    Args:
        workdir: The run folder.
        name: The model's name in the run.

    Example:
        >>> discard("runs/mine", "ticket")   # nothing happens when there is no state
    """
    shutil.rmtree(state_folder(workdir, name), ignore_errors=True)


def precision_of(model: keras.Model) -> str:
    """The dtype policy ``model`` was built under.

    Args:
        model: A Keras model.

    Returns:
        The policy's name: ``"float32"``, ``"mixed_bfloat16"``, ...

    Example:
        >>> precision_of(tl.models.cifar_resnet(20))
        'float32'
    """
    return model.dtype_policy.name


def check_precision(saved: Optional[str], model: keras.Model, folder: str) -> None:
    """Refuses to resume a training state saved in another precision than ``model`` computes in.

    Args:
        saved: The precision the state was saved in (None: a state from before precisions were kept).
        model: The model about to resume.
        folder: The state folder, for the error.

    Raises:
        ValueError: naming both precisions and the state folder.

    Example:
        >>> check_precision("float32", tl.models.cifar_resnet(20), "runs/mine/resume_dense")   # same: silent
    """
    if saved is not None and saved != precision_of(model):
        raise ValueError(f"{folder} holds a training that computes in {saved}, but this model computes in "
                         f"{precision_of(model)}: a run continues in the precision it began in; rerun with the "
                         "run's --precision, or delete the folder to train from the start")


def history_csv(epochs: List[dict]) -> str:
    """The CSV of the finished epochs' logs (``epoch`` first, then the log keys sorted, as
    Keras' ``CSVLogger`` writes it).

    Args:
        epochs: Finished epochs, each ``{"epoch", "logs", ...}``.

    Returns:
        The CSV text.

    Example:
        >>> history_csv([{"epoch": 0, "logs": {"loss": 2.5, "accuracy": 0.25}}])
        'epoch,accuracy,loss\\n0,0.25,2.5\\n'
    """
    keys = sorted({key for record in epochs for key in record["logs"]})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["epoch", *keys])
    for record in epochs:
        writer.writerow([record["epoch"], *[record["logs"].get(k, "") for k in keys]])
    return out.getvalue()


class EpochCheckpoint(keras.callbacks.Callback):
    """Times every epoch and saves the training state after it (see the module docstring).

    Call :meth:`restore` before ``fit`` (and start ``fit`` at the epoch it returns). Put the
    callback last, so the ones that save files of their own at the end of an epoch (θ_i)
    have done so before the epoch counts as finished.

    Args:
        workdir: The run folder.
        name: The model's name in the run ("dense", "ticket").
        history_path: Where the history CSV goes.

    Attributes:
        epochs: Every finished epoch (this session's and the ones before a resume):
            ``{"epoch", "seconds", "setup_seconds", "session", "logs"}``.
        resumed_from: The epoch count this session started from (0 for a fresh start).

    Example:
        >>> checkpoint = EpochCheckpoint("runs/mine", "ticket", "runs/mine/history_ticket.csv")
        >>> start = checkpoint.restore(model)
        >>> model.fit(train, epochs=10, initial_epoch=start, callbacks=[checkpoint])
    """

    def __init__(self, workdir: str, name: str, history_path: str):
        super().__init__()
        self.folder = state_folder(workdir, name)
        self.name, self.history_path = name, history_path
        self.epochs: List[dict] = []
        self.resumed_from = 0
        self._session = 0

    # --- loading ------------------------------------------------------------------------

    def _progress(self) -> Optional[dict]:
        path = os.path.join(self.folder, "progress.json")
        if not os.path.exists(path):
            return None
        try:
            with open(path, encoding="utf-8") as handle:
                return checked_progress(json.load(handle))
        except (OSError, ValueError) as error:
            log(f"{self.name}: resume state {path} is unreadable ({error}); training from the start")
            return None

    def restore(self, model: keras.Model, gather=None) -> int:
        """Loads the newest checkpoint that loads into ``model`` (compiled); returns its epoch count.

        Returns 0 (train from the start) when there is none, saying why when one was unusable.

        Args:
            model: The compiled model.
            gather: ``epoch -> [every worker's epoch]`` when several worker processes train
                together (:func:`tf_lottery.runtime.distribute.gather_from_workers`): a kill can stop
                one worker an epoch before another, so all of them resume from the newest
                epoch every one of them has (two checkpoints are kept), or from the start.

        Raises:
            ValueError: when the state was saved in another precision (:func:`check_precision`).
        """
        progress = self._progress() or {}
        epochs = progress.get("epochs", [])
        available = sorted(progress.get("checkpoints", []), reverse=True)
        if not available and gather is None:
            return 0
        check_precision(progress.get("precision"), model, self.folder)
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        variables = list(model.weights) + (list(model.optimizer.variables) if model.optimizer is not None else [])
        start = [v.numpy() for v in variables]  # a checkpoint that fails halfway must not leave its half behind
        done = self._load_newest(model, available, epochs, variables, start)
        while gather is not None:
            every = gather(done)
            if min(every) == max(every):
                break
            done = self._load_newest(model, [e for e in available if e <= min(every)], epochs, variables, start)
        return done

    def _load_newest(self, model, available, epochs, variables, start) -> int:
        """Loads the first checkpoint of ``available`` that loads; returns its epoch count (0, with
        the starting values back in place, when none does)."""
        for done in available:
            path = os.path.join(self.folder, f"epoch-{done}.weights.h5")
            try:
                model.load_weights(path)
            except (OSError, ValueError) as error:
                log(f"{self.name}: checkpoint {path} does not load ({str(error).splitlines()[0][:120]}); "
                    "trying the one before")
                continue
            self.epochs = [e for e in epochs if e["epoch"] < done]
            self.resumed_from = done
            self._session = max(e["session"] for e in self.epochs) + 1 if self.epochs else 0
            log(f"{self.name}: resuming after epoch {done} from {self.folder}")
            return done
        for variable, value in zip(variables, start):
            variable.assign(value)
        self.epochs, self.resumed_from = [], 0
        if available:
            log(f"{self.name}: no checkpoint in {self.folder} loads; training from the start")
        self._session = max((e["session"] for e in epochs), default=-1) + 1
        return 0

    # --- callback -----------------------------------------------------------------------

    def on_train_begin(self, logs=None):
        """Starts the session's clock and writes the history of the epochs before it."""
        self._train_begin = time.perf_counter()
        self._first_epoch_of_session = True
        write_text_atomic(self.history_path, history_csv(self.epochs))

    def on_epoch_begin(self, epoch, logs=None):
        """Starts the epoch's clock."""
        self._epoch_begin = time.perf_counter()
        self._steps_before = optimizer_steps(self.model)

    def on_train_batch_end(self, batch, logs=None):
        """A crash point for the tests (:func:`tf_lottery.core.faults.crash_point`)."""
        crash_point("batch")

    def on_epoch_end(self, epoch, logs=None):
        """Records the epoch, saves the state after it (unless it diverged) and rewrites the history."""
        seconds = time.perf_counter() - self._epoch_begin
        setup = self._epoch_begin - self._train_begin if self._first_epoch_of_session else 0.0
        self._first_epoch_of_session = False
        logs = {k: float(v) for k, v in (logs or {}).items()}
        self.epochs.append({"epoch": epoch, "seconds": seconds, "setup_seconds": setup, "session": self._session,
                            "steps": optimizer_steps(self.model) - self._steps_before, "logs": logs})
        if all(math.isfinite(v) for v in logs.values()):  # a diverged epoch is never resumed from
            self._save(epoch + 1)
        write_text_atomic(self.history_path, history_csv(self.epochs))

    def _save(self, done: int) -> None:
        os.makedirs(self.folder, exist_ok=True)
        ensure_free_space(self.folder, state_bytes(self.model))
        with atomic_path(os.path.join(self.folder, f"epoch-{done}.weights.h5")) as temporary:
            self.model.save_weights(temporary)
            crash_point("checkpoint")
        kept = sorted(_checkpoints(self.folder))[-_KEPT_CHECKPOINTS:]
        write_json_atomic(os.path.join(self.folder, "progress.json"), {"epochs": self.epochs, "checkpoints": kept,
                                                                       "precision": precision_of(self.model)})
        for stale in set(_checkpoints(self.folder)) - set(kept):
            os.remove(os.path.join(self.folder, f"epoch-{stale}.weights.h5"))

    # --- what the record reads ----------------------------------------------------------

    def timing(self, batch_size: int, steps_per_epoch: int) -> dict:
        """Timing of every finished epoch, this session's and earlier ones (see :func:`timing_of`)."""
        return timing_of(self.epochs, batch_size, steps_per_epoch)


def optimizer_steps(model) -> int:
    """Optimizer steps ``model`` has taken.

    Args:
        model: A Keras (or tf_keras) model.

    Returns:
        Its optimizer's ``iterations``; 0 for a model without an optimizer.

    Example:
        >>> optimizer_steps(tl.models.cifar_resnet(20))   # not compiled
        0
    """
    optimizer = getattr(model, "optimizer", None)  # iterations: a Keras, tf_keras or mirrored variable
    return int(keras.ops.convert_to_numpy(optimizer.iterations)) if optimizer is not None else 0


def timing_of(epochs: List[dict], batch_size: int, steps_per_epoch: int) -> dict:
    """Timing of finished epochs (``{"seconds", "setup_seconds", "session", "steps"}`` each;
    ``steps``, the epoch's optimizer steps, is below ``steps_per_epoch`` for the last epoch of a
    length in steps that is not whole epochs; records from before 0.9 have none).

    ``train_seconds`` sums the epochs and each session's set-up before its first epoch
    (tracing, building the pipeline); ``images_per_second`` leaves out the first epoch of
    every session (it includes tracing) unless no other is left; ``steady_epoch_seconds`` are
    those epochs (a resumed run is compared at that pace); ``sessions`` counts the
    processes that trained (more than 1: resumed after an interruption).

    Args:
        epochs: Finished epochs, as :class:`EpochCheckpoint` records them.
        batch_size: Images per step.
        steps_per_epoch: Steps of a whole epoch.

    Returns:
        The fields of :class:`tf_lottery.results.Timing`, as a dict.

    Example:
        >>> timing_of([{"seconds": 2.0, "setup_seconds": 1.0, "session": 0},
        ...            {"seconds": 1.0, "setup_seconds": 0.0, "session": 0, "steps": 5}], 10, 10)["images_per_second"]
        50.0
    """
    epoch_seconds = [e["seconds"] for e in epochs]
    steady = [e for e in epochs if e["setup_seconds"] == 0.0]
    note = "over the epochs after the first of each session (the first includes tracing)"
    if not steady:
        steady, note = epochs, "every epoch was the first of its session: includes tracing"
    seconds = sum(e["seconds"] for e in steady)
    images = batch_size * sum(e.get("steps", steps_per_epoch) for e in steady)
    return {
        "train_seconds": sum(epoch_seconds) + sum(e["setup_seconds"] for e in epochs),
        "epoch_seconds": epoch_seconds,
        "epochs_timed": len(epoch_seconds),
        "images_per_second": images / seconds if seconds > 0 else None,
        "images_per_second_note": note,
        "sessions": len({e["session"] for e in epochs}),
        "steady_epoch_seconds": [e["seconds"] for e in epochs if e["setup_seconds"] == 0.0],
        "epoch_steps": [e.get("steps", steps_per_epoch) for e in epochs],
    }


def _checkpoints(folder: str) -> List[int]:
    """Epoch counts of the complete checkpoints in ``folder`` (temporaries start with a dot)."""
    return [int(n[len("epoch-"):-len(".weights.h5")]) for n in os.listdir(folder)
            if n.startswith("epoch-") and n.endswith(".weights.h5")]
