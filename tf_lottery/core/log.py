"""The one progress line format of tf_lottery runs: ``[tf-lottery HH:MM:SS] message``."""

from __future__ import annotations

import time


def log(message: str) -> None:
    """Prints one progress line (flushed, so it shows in pipes and logs at once).

    Example:
        >>> log("dense: training resnet20")
        [tf-lottery 17:37:18] dense: training resnet20
    """
    print(f"[tf-lottery {time.strftime('%H:%M:%S')}] {message}", flush=True)
