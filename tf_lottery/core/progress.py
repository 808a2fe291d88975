"""Progress over a known number of steps: the index, the total, the time elapsed and the time left.

What a sweep, a compare or a robustness run prints before each point, beside Keras' per-epoch
bars. The time left is the mean time of the finished steps times the steps still to go: an
estimate, which a resumed run's quick, already finished points make optimistic at first.

Example:
    >>> progress = Progress(4, clock=iter([0.0, 0.0, 90.0]).__next__)
    >>> progress.status(1)
    '1/4, 0 s elapsed'
    >>> progress.status(2)
    '2/4, 1 min 30 s elapsed, about 4 min 30 s left'
"""

from __future__ import annotations

import time
from typing import Callable


def format_duration(seconds: float) -> str:
    """``8 s``, ``12 min 04 s``, ``2 h 05 min``: a duration as a person reads it.

    Example:
        >>> format_duration(3725)
        '1 h 02 min'
    """
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


class Progress:
    """Elapsed time and an estimate of the time left over ``total`` steps.

    Args:
        total: The number of steps.
        clock: Seconds, monotonic (a parameter so tests can drive it).
    """

    def __init__(self, total: int, clock: Callable[[], float] = time.monotonic):
        self.total = total
        self._clock = clock
        self._start = clock()

    def status(self, number: int) -> str:
        """The status before step ``number`` (1-based) starts: ``3/10, 12 min 04 s elapsed, about 28 min left``."""
        elapsed = self._clock() - self._start
        text = f"{number}/{self.total}, {format_duration(elapsed)} elapsed"
        done = number - 1
        if done > 0:
            text += f", about {format_duration(elapsed / done * (self.total - done))} left"
        return text
