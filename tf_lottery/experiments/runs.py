"""Run folders: keyed by a hash of the config's identity, so a rerun resumes and a sweep never
overwrites.

``runs/<experiment>-<hash>/`` holds ``config.json`` and everything the run produced. The
hash covers the sections the run's *scope* takes (:meth:`tf_lottery.config.Config.identity`):
where output goes, what is exported or measured never changes it. Each stage of an
experiment leaves a file when it is done (written atomically); a rerun of the same config
finds them and skips the stages already done.

One process at a time works in a run folder: :meth:`RunFolder.lock` takes a file lock
(``filelock``) under ``<runs_dir>/.locks/``. A second process that needs the folder waits,
saying for what, or with ``--nowait_for_lock`` fails at once with one line. Locks are
always taken in the order sweep, ticket, dense, so two processes never wait for each other.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import warnings
from typing import Callable, Iterator, Optional

import filelock

from tf_lottery.config import Config
from tf_lottery.core.io import (
    atomic_path, ensure_free_space, nearest_existing, remove_leftovers, state_bytes, write_json_atomic, write_text_atomic,
)
from tf_lottery.core.log import log
from tf_lottery.core import manifest
from tf_lottery.experiments import integrity

OPTIMIZER_SKIP = r"Skipping variable loading for optimizer "
"""The start of Keras' warning that a weights file's optimizer state does not fit the model's optimizer."""


class RunInUse(RuntimeError):
    """Another process holds the run folder (and the caller chose not to wait)."""


class DamagedRunFile(ValueError):
    """A run file that does not parse or does not hold what it should, and cannot be remade here.

    The message names the file, what it should hold and what the user can do.
    """


# What each run file holds (by name, or by the start of its name), for the messages.
_ROLES = (
    ("config.json", "the run's config (its sections as JSON)"),
    ("result.json", "the run's record: scoring, both trainings and their evaluations"),
    ("results.json", "the sweep's rows, one per point"),
    ("dense.json", "the dense network's measured record"),
    ("scores", "the ticket's decision: the scores and what was removed"),
    ("train_", "the training record (timing, steps, energy)"),
    ("evals/", "one evaluation's cached result"),
    (".weights.h5", "trained weights"),
)
_DAMAGE = (KeyError, TypeError, ValueError, AttributeError, IndexError)


def _role(name: str) -> str:
    """What a run file holds: its exact name first, then the start of its name, then its ending
    (``train_dense.json`` is a training record, not ``dense.json``)."""
    for matches in (str.__eq__, str.startswith, str.endswith):
        found = next((what for key, what in _ROLES if matches(name, key)), None)
        if found:
            return found
    return "a run file"


def read_json_object(path: str, parse: Optional[Callable] = None, remedy: Optional[str] = None):
    """The JSON object in ``path`` (or ``parse`` of it).

    Args:
        path: The file (it must exist).
        parse: Turns the dict into a record; its errors on a missing key or a wrong type count as damage.
        remedy: What to do about a damaged file (named in the error); None: re-raise the parser's error.

    Raises:
        DamagedRunFile: for a file that does not parse (truncated, garbage, a list), with ``remedy``.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            payload = json.load(handle)
        if not isinstance(payload, dict):
            raise TypeError(f"a JSON {type(payload).__name__}, not an object")
        return parse(payload) if parse is not None else payload
    except (OSError, UnicodeDecodeError) + _DAMAGE as error:
        if remedy is None:
            raise
        reason = f"{type(error).__name__}: {error}" if isinstance(error, KeyError) else str(error)
        raise DamagedRunFile(f"{path} is damaged ({reason}): it should hold {_role(os.path.basename(path))}; "
                             f"{remedy}") from None


class RunFolder:
    """The folder of one run.

    Args:
        config: The run's config.
        scope: Its identity scope: "dense", "ticket" or "sweep".

    Raises:
        ValueError: if the folder holds a config of another identity (a hash collision or a hand edit).

    Example:
        >>> run = RunFolder(config, "ticket")
        >>> run.start()
        >>> run.path
        'runs/init_ticket-3f2a9c1b7d4e'
    """

    def __init__(self, config: Config, scope: str):
        self.config, self.scope = config, scope
        self.digest = config.digest(scope)
        self.path = os.path.join(config.runtime.runs_dir, f"{config.experiment}-{self.digest}")
        # A damaged config.json is remade from the flags: the folder's name is their hash.
        saved = self.read_json("config.json", Config.from_dict, recompute=True)
        if saved is not None and saved.identity(scope) != config.identity(scope):
            raise ValueError(f"{self.path}/config.json holds a different config; move the folder away")
        if saved is None and self.exists("config.json.damaged") and not self.exists("config.json"):
            write_text_atomic(self.file("config.json"), config.to_json())  # what start() writes, the same bytes

    @contextlib.contextmanager
    def lock(self, wait: bool = True) -> Iterator[None]:
        """Holds the folder's lock for the enclosed code (see :func:`folder_lock`).

        Example:
            >>> with run.lock():
            ...     train_or_load(...)
        """
        with folder_lock(self.path, wait):
            yield

    def start(self) -> None:
        """Creates the folder with its config.json (once the inputs are known to be valid) and
        removes temporaries a killed process left (under the lock, nobody else writes here).

        Raises:
            ValueError: when the folder is a link whose target is gone.
        """
        _refuse_dangling_link(self.path, "run folder")
        if not self.exists("config.json"):
            write_text_atomic(self.file("config.json"), self.config.to_json())
        remove_leftovers(self.path)
        if integrity.read_manifest(self.path) is None:  # a new run (or one from before manifests: adopted)
            earlier = [n for n in manifest.files_of(self.path) if n != "config.json"]
            if earlier:
                log(f"warning: {self.file(manifest.MANIFEST)} was missing (a run from before tf_lottery 0.10, "
                    f"or a manifest set aside): the {len(earlier)} files there are recorded as they are")
            integrity.seal(self.path)
        else:
            integrity.record_file(self.path, "config.json")  # remade from the flags after a verification

    def verify(self) -> bool:
        """Verifies the folder against its manifest and sets aside what must be remade or retrained
        (under this folder's lock; see :mod:`tf_lottery.experiments.integrity`).

        Returns:
            Whether anything was found (the run is then not finished).
        """
        return integrity.verify(self.path, self.scope)

    def seal(self, extra: Optional[dict] = None) -> None:
        """Records every file of the folder in its manifest (at the end of a stage that wrote files
        other than through this class: trainings' histories, plots, exports)."""
        integrity.seal(self.path, extra=extra)

    def file(self, name: str) -> str:
        """Path of a file of the run."""
        return os.path.join(self.path, name)

    def exists(self, name: str) -> bool:
        return os.path.exists(self.file(name))

    def read_json(self, name: str, parse: Optional[Callable] = None, recompute: bool = False,
                  remedy: Optional[str] = None):
        """A JSON file of the run (a dict, or ``parse`` of it), or None when it is not there.

        Args:
            name: The file, relative to the run folder.
            parse: Turns the dict into a record (``RunRecord.from_dict``); its errors on a dict
                that lacks a key or holds a wrong type count as damage.
            recompute: Whether the caller remakes the file when it is missing: a damaged one is
                then moved aside (to ``<name>.damaged``, for inspection) and None is returned.
            remedy: What the error tells the user to do (default: see :meth:`damaged`).

        Raises:
            DamagedRunFile: for a damaged file the caller cannot remake, naming the file, what it
                should hold and what to do.
        """
        if not self.exists(name):
            return None
        try:
            return read_json_object(self.file(name), parse)
        except (OSError, UnicodeDecodeError) + _DAMAGE as error:
            reason = f"{type(error).__name__}: {error}" if isinstance(error, KeyError) else str(error)
            if recompute:
                os.replace(self.file(name), self.file(name + ".damaged"))
                log(f"warning: {self.file(name)} was damaged ({reason}); it is remade "
                    f"(the damaged copy is kept as {name}.damaged)")
                return None
            raise self.damaged(name, reason, remedy) from None

    def damaged(self, name: str, reason: str, remedy: Optional[str] = None) -> DamagedRunFile:
        """The error for a damaged run file ``name``: what it should hold, and what to do (by default:
        delete it and rerun the run's command, which remakes or retrains only what is missing)."""
        remedy = remedy or (f"delete it and rerun the run's command ({self.config.command_line()}), which remakes "
                            "only what is missing")
        return DamagedRunFile(f"{self.file(name)} is damaged ({reason}): it should hold {_role(name)}; {remedy}")

    def load_weights(self, model, name: str, retrains: str) -> None:
        """Loads the weights file ``name`` into ``model``.

        A weights file saved after training holds the training optimizer's state, which a model loaded
        here never takes (it is compiled anew, or exported): Keras' warning that it skips it
        (:data:`OPTIMIZER_SKIP`, one per load, printed by every keras_hub task, which compiles itself
        when built) is silenced, and only it.

        Args:
            retrains: What must be deleted with it to train them again (named in the error).

        Raises:
            DamagedRunFile: when the file does not load (truncated, or of another model),
                naming it and the command that retrains only that part.
        """
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=OPTIMIZER_SKIP, category=UserWarning)
                model.load_weights(self.file(name))
        except Exception as error:  # h5py's OSError, Keras' ValueError: any failure means the file is unusable
            first = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
            raise self.damaged(name, first, f"these weights cannot be remade without training: delete {retrains} "
                               f"and rerun {self.config.command_line()}, which trains only that part") from None

    def write_json(self, name: str, payload) -> None:
        write_json_atomic(self.file(name), payload)
        integrity.record_file(self.path, name)

    def write_text(self, name: str, text: str) -> None:
        write_text_atomic(self.file(name), text)
        integrity.record_file(self.path, name)

    def save_weights(self, model, name: str) -> None:
        """Saves weights atomically (``name`` ends in ``.weights.h5``, as Keras requires)."""
        ensure_free_space(self.path, state_bytes(model))
        with atomic_path(self.file(name)) as temporary:
            model.save_weights(temporary)
        integrity.record_file(self.path, name)


@contextlib.contextmanager
def folder_lock(path: str, wait: bool = True) -> Iterator[None]:
    """Holds the lock of the run folder ``path`` (``<runs_dir>/.locks/<folder>.lock``) for the enclosed code.

    Args:
        path: The run folder.
        wait: Wait for another process to release it (saying so), or fail at once.

    Raises:
        RunInUse: when ``wait`` is False and another process holds the folder.
    """
    folder = os.path.join(os.path.dirname(path) or ".", ".locks")
    os.makedirs(folder, exist_ok=True)
    file = os.path.join(folder, os.path.basename(path) + ".lock")
    lock = filelock.FileLock(file)
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        owner = _read(file + ".owner") or "another process"
        if not wait:
            raise RunInUse(f"{path} is in use by {owner}; rerun when it is done "
                           "(or without --nowait_for_lock to wait for it)") from None
        log(f"waiting for {path}: in use by {owner}")
        lock.acquire()
    try:
        write_text_atomic(file + ".owner", f"process {os.getpid()} since {time.strftime('%H:%M:%S')}")
        yield
    finally:
        lock.release()


def _read(path: str) -> Optional[str]:
    try:
        with open(path) as handle:
            return handle.read().strip()
    except OSError:
        return None


def _refuse_dangling_link(path: str, what: str) -> None:
    if os.path.islink(path) and not os.path.exists(path):
        raise ValueError(f"the {what} {path} is a link to {os.readlink(path)}, which does not exist; restore its "
                         "target or remove the link")


def check_runs_dir(path: str) -> None:
    """Fails before anything is written when run folders cannot be made under ``path``.

    Raises:
        ValueError: for a path that is a file, or a folder (or its nearest existing parent)
            that is not writable.
    """
    _refuse_dangling_link(path, "--runs_dir")
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"--runs_dir={path} is a file; it must be a folder (it is created when missing)")
    existing = nearest_existing(path)
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"--runs_dir={path}: {existing} is not writable")
