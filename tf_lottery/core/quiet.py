"""TensorFlow's C++ start-up lines, kept off the terminal.

Importing TensorFlow prints lines from its C++ core before its log level applies ("All log
messages before absl::InitializeLog() is called are written to STDERR", "Could not find cuda
drivers", the CPU-feature notice), twice, and a CUDA build on a machine without a GPU prints
"failed call to cuInit" when it first looks for devices. :func:`quiet_tensorflow_startup`,
called by ``tf_lottery/__init__.py`` before anything imports TensorFlow, sets
``TF_CPP_MIN_LOG_LEVEL=2`` and holds the process's standard error while TensorFlow is imported
and lists its physical devices. What it held is kept (:func:`startup_output`): ``tf-lottery
--verbosity=N`` prints it, and a failed import prints it at once.

It does nothing when TensorFlow is already imported or when the user set ``TF_CPP_MIN_LOG_LEVEL``
below 2 (``TF_CPP_MIN_LOG_LEVEL=0 tf-lottery ...`` shows every line as it comes); a user's 2 or 3 is
kept, and the start-up lines are held as without it.

Example:
    >>> quiet_tensorflow_startup()   # then: import tensorflow, silently
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import tempfile
from typing import Iterator

LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"

_held: list = []  # the text held back at start-up (one entry; empty when nothing was held)


def startup_output() -> str:
    """What TensorFlow printed while :func:`quiet_tensorflow_startup` held it back ("" if nothing)."""
    return "".join(_held)


def _user_level() -> int:
    """The user's ``TF_CPP_MIN_LOG_LEVEL`` (2 when unset or not a number: this module's own)."""
    try:
        return int(os.environ.get(LEVEL_VARIABLE, "2"))
    except ValueError:
        return 2


@contextlib.contextmanager
def dropping(*patterns: str) -> Iterator[None]:
    """Holds the process's standard error (file descriptor 2, where TensorFlow's C++ core writes) for the
    enclosed code, then writes it back without the lines that contain one of ``patterns``.

    For notices that are not errors but print as ``E0000`` lines (oneDNN's "supports DT_INT32 only on
    platforms with AVX-512", when GraSP's second-order graph runs unoptimised). Nothing is held when the
    user asked for TensorFlow's lines (``TF_CPP_MIN_LOG_LEVEL`` below 2) or there is no real stderr.

    Example:
        >>> with dropping("oneDNN supports DT_INT32 only"):
        ...     scores = hessian_gradient(images, labels, params, temperature)
    """
    try:
        stderr_fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        stderr_fd = None
    if stderr_fd is None or _user_level() < 2:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(stderr_fd)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), stderr_fd)
        try:
            yield
        finally:
            os.dup2(saved, stderr_fd)
            os.close(saved)
            held.seek(0)
            kept = [line for line in held.read().decode(errors="replace").splitlines(keepends=True)
                    if not any(pattern in line for pattern in patterns)]
            sys.stderr.write("".join(kept))
            sys.stderr.flush()


def quiet_tensorflow_startup() -> bool:
    """Imports TensorFlow with its C++ start-up lines held back; returns whether it did.

    Raises:
        ImportError: TensorFlow's own, after its held-back output is printed.
    """
    if "tensorflow" in sys.modules or _user_level() < 2:  # the user asked to see TensorFlow's lines
        return False
    os.environ.setdefault(LEVEL_VARIABLE, "2")
    try:
        stderr_fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # no real stderr (a notebook kernel, a test capture)
        importlib.import_module("tensorflow")
        return True
    sys.stderr.flush()
    saved = os.dup(stderr_fd)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), stderr_fd)
        try:
            tensorflow = importlib.import_module("tensorflow")
            tensorflow.config.list_physical_devices()  # CUDA's first look for a GPU prints here
        except BaseException:
            os.dup2(saved, stderr_fd)
            held.seek(0)
            sys.stderr.write(held.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, stderr_fd)
            os.close(saved)
        held.seek(0)
        _held.append(held.read().decode(errors="replace"))
    return True
