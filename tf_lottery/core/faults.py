"""Crash points for the kill tests: stop the process with SIGKILL at a named moment.

``TF_LOTTERY_CRASH_AT=name`` (or ``name:n``) kills the process the first (or n-th) time
the code reaches ``crash_point(name)``: during scoring (``scoring``), after a training
batch (``batch``), while a checkpoint is being written (``checkpoint``), between the end
of training and the final weights (``trained``), during an export (``export``), after a chunk of
a next-token training is saved (``chunk``). Unset,
as always outside the tests, a crash point costs one environment look-up.

Example:
    $ TF_LOTTERY_CRASH_AT=checkpoint:2 tf-lottery ...   # killed while writing the 2nd checkpoint
"""

from __future__ import annotations

import os
import signal
from typing import Dict

_REACHED: Dict[str, int] = {}


def crash_point(name: str) -> None:
    """Kills this process if ``TF_LOTTERY_CRASH_AT`` names this point (and this is its n-th time)."""
    spec = os.environ.get("TF_LOTTERY_CRASH_AT")
    if not spec:
        return
    target, _, nth = spec.partition(":")
    if target != name:
        return
    _REACHED[name] = _REACHED.get(name, 0) + 1
    if _REACHED[name] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
