"""Atomic writes: a killed process never leaves a half-written file or folder behind.

Everything tf_lottery writes (JSON, text, weights, plots, exports) goes through
:func:`atomic_path`: the writer writes to a temporary name in the same folder, which is
renamed over the target only once the writer has finished.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import shutil
import uuid
from typing import Iterator

import numpy as np

# Names atomic_path gives its temporaries: what a killed writer leaves behind.
_LEFTOVER_PREFIXES = (".tmp-", ".old-")

# Room kept free beyond what a write needs: file system metadata, logs, codecarbon's CSV.
_MARGIN_BYTES = 4 * 2**20


@contextlib.contextmanager
def atomic_path(path: str, folder: bool = False) -> Iterator[str]:
    """Yields a temporary path beside ``path``; on success it replaces ``path``, on error it goes.

    The temporary name ends with ``path``'s own name, so writers that read the ending
    (``.weights.h5`` for Keras, ``.png`` for matplotlib) accept it.

    Args:
        path: The file (or, with ``folder=True``, the folder) to write.
        folder: Whether ``path`` is a folder (an existing one is replaced whole).

    Example:
        >>> with atomic_path("runs/x/theta_0.weights.h5") as temporary:
        ...     model.save_weights(temporary)
    """
    parent, name = os.path.split(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    if folder:  # what a killed writer of this folder left: a staging or a replaced copy
        for stale in os.listdir(parent):
            if stale.startswith(_LEFTOVER_PREFIXES) and stale.endswith(f"-{name}"):
                shutil.rmtree(os.path.join(parent, stale), ignore_errors=True)
    temporary = os.path.join(parent, f".tmp-{uuid.uuid4().hex[:8]}-{name}")
    try:
        yield temporary
        if folder and os.path.exists(path):
            old = os.path.join(parent, f".old-{uuid.uuid4().hex[:8]}-{name}")
            os.replace(path, old)
            os.replace(temporary, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(temporary, path)
    except BaseException:
        if os.path.isdir(temporary):
            shutil.rmtree(temporary, ignore_errors=True)
        elif os.path.exists(temporary):
            os.unlink(temporary)
        raise


def remove_leftovers(folder: str) -> None:
    """Removes what :func:`atomic_path` leaves when its writer is killed (``.tmp-*``, ``.old-*``),
    in ``folder`` and its subfolders. Call it only where no other process is writing."""
    for parent, folders, files in os.walk(folder):
        for name in folders + files:
            if name.startswith(_LEFTOVER_PREFIXES):
                path = os.path.join(parent, name)
                shutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) else os.remove(path)


def nearest_existing(path: str) -> str:
    """``path`` made absolute, or its nearest parent that exists (where a folder to be made will live)."""
    existing = os.path.abspath(path)
    while not os.path.exists(existing) and os.path.dirname(existing) != existing:
        existing = os.path.dirname(existing)
    return existing


def ensure_free_space(folder: str, needed_bytes: int) -> None:
    """Fails cleanly before a large write that the disk cannot take.

    HDF5 (under Keras' ``.weights.h5``) crashes the whole process on a full disk instead of
    raising, so weights and exports check the free space first.

    Raises:
        OSError: ``ENOSPC``, naming the folder, the bytes needed and the bytes free.
    """
    free = shutil.disk_usage(nearest_existing(folder)).free
    if free < needed_bytes + _MARGIN_BYTES:
        raise OSError(errno.ENOSPC, f"no space left on the device for {folder}: about "
                      f"{(needed_bytes + _MARGIN_BYTES) / 2**20:.1f} MiB needed, {free / 2**20:.1f} MiB free", folder)


def state_bytes(model) -> int:
    """Bytes of a model's weights and, when compiled, its optimizer's state (what ``save_weights`` writes)."""
    variables = list(model.variables)
    if getattr(model, "optimizer", None) is not None:
        variables += list(model.optimizer.variables)
    return sum(math.prod(v.shape) * np.dtype(v.dtype).itemsize for v in variables) + 64 * 2**10


def write_text_atomic(path: str, text: str) -> None:
    """Writes ``text`` to ``path`` atomically (flushed to disk before the rename).

    Example:
        >>> write_text_atomic("runs/x/summary.md", "# done\\n")
    """
    with atomic_path(path) as temporary:
        with open(temporary, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())


def write_json_atomic(path: str, payload) -> None:
    """Writes ``payload`` as indented JSON, atomically (see :func:`write_text_atomic`)."""
    write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")


def run_path(runs_dir, recorded):
    """Where a run folder that another record names lives under ``runs_dir``.

    Records name other runs relative to the runs folder (``dense-3f2a9c1b7d4e``); records of 0.9
    and earlier hold the path of their time (``/work/runs/dense-...`` or ``runs/dense-...``). Both are
    read as the folder of that name under ``runs_dir``, so a runs folder stays whole when moved.

    Args:
        runs_dir: The runs folder of the reading run (None: the recorded path as it is).
        recorded: The recorded name or path (None: nothing recorded).

    Returns:
        The path, or None.

    Example:
        >>> run_path("/data/runs", "/old/place/runs/dense-3f2a9c1b7d4e")
        '/data/runs/dense-3f2a9c1b7d4e'
    """
    if recorded is None or runs_dir is None:
        return recorded
    return os.path.join(runs_dir, os.path.basename(os.path.normpath(recorded)))
