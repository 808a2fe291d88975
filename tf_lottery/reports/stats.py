"""Paired statistics of tickets against their dense networks, and the verdict of each cell.

A report cell (one criterion and p, one method, one rewind epoch...) holds one ticket per
seed, each trained from the θ0 of its seed and compared with the dense network of the same
seed. The unit of evidence is therefore the *paired* difference ``ticket - dense`` of each
seed (percentage points), not two separate means: the seed's shared θ0, data order and
scoring batch cancel out of it.

:func:`paired` summarises those differences: mean, sample standard deviation, and a 95 %
confidence interval for the mean from Student's t distribution with n - 1 degrees of freedom
(``mean ± t_{0.975, n-1} · sd / sqrt(n)``; with 3 seeds t = 4.303, so an interval is wide:
that is what three seeds can say). The verdict follows the paper's winning-ticket criterion,
Accuracy(ticket) + ξ ≥ Accuracy(dense) (Jordao et al., Eq. 1), with the paper's ξ = 0 applied
to the whole interval rather than to one draw:

* ``"wins"``: the interval lies at or above -ξ (the ticket is not worse, at 95 %);
* ``"loses"``: the interval lies below -ξ;
* ``"within noise"``: the interval straddles -ξ;
* ``"one seed"``: a single difference has no interval; it says nothing about noise.

The t interval assumes the differences are roughly normal; with 3 to 5 seeds nothing better
is identifiable (a bootstrap of 3 values has only 10 distinct resamples' means).

Example:
    >>> summary = paired([0.4, 0.9, 0.2])
    >>> round(summary.mean, 3), round(summary.low, 2), round(summary.high, 2), summary.verdict
    (0.5, -0.4, 1.4, 'within noise')
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from typing import Iterable, Optional, Sequence

CONFIDENCE = 0.95
VERDICTS = ("wins", "loses", "within noise", "one seed")


def t_quantile(confidence: float, degrees: int) -> float:
    """The two-sided Student's t quantile: ``t`` with ``P(|T| <= t)`` = ``confidence``.

    Raises:
        ValueError: for a confidence outside (0, 1) or fewer than 1 degree of freedom.

    Example:
        >>> round(t_quantile(0.95, 2), 3)
        4.303
    """
    from scipy import stats

    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1); got {confidence!r}")
    if degrees < 1:
        raise ValueError(f"a t interval needs at least 1 degree of freedom (2 values); got {degrees}")
    return float(stats.t.ppf(0.5 + confidence / 2, degrees))


@dataclasses.dataclass(frozen=True)
class Paired:
    """The paired differences of one cell and what they say.

    Attributes:
        differences: Ticket minus dense per seed (pp), in seed order; unavailable ones left out.
        seeds: The seeds of ``differences``.
        mean: Their mean (None without any).
        std: Sample standard deviation (n - 1; None for fewer than 2).
        low, high: The ``confidence`` interval of the mean (None for fewer than 2).
        confidence: 0.95.
        xi: The paper's ξ (0: a ticket must be at least as accurate as dense).
        verdict: One of :data:`VERDICTS` (None without any difference).
    """

    differences: tuple
    seeds: tuple
    mean: Optional[float]
    std: Optional[float]
    low: Optional[float]
    high: Optional[float]
    confidence: float
    xi: float
    verdict: Optional[str]

    @property
    def n(self) -> int:
        return len(self.differences)

    def to_dict(self) -> dict:
        values = dataclasses.asdict(self)
        values.update(differences=list(self.differences), seeds=list(self.seeds), n=self.n)
        return values


def verdict(low: Optional[float], high: Optional[float], xi: float = 0.0) -> str:
    """``"wins"``, ``"loses"`` or ``"within noise"`` for an interval; ``"one seed"`` without one.

    Example:
        >>> verdict(0.0, 0.8), verdict(-0.9, -0.1), verdict(-0.2, 0.5), verdict(None, None)
        ('wins', 'loses', 'within noise', 'one seed')
    """
    if low is None or high is None:
        return "one seed"
    if low >= -xi:
        return "wins"
    if high < -xi:
        return "loses"
    return "within noise"


def paired(differences: Iterable[Optional[float]], seeds: Optional[Sequence] = None,
           confidence: float = CONFIDENCE, xi: float = 0.0) -> Paired:
    """Mean, sample std, t interval and verdict of per-seed paired differences.

    Args:
        differences: Ticket minus dense per seed (pp); None (unavailable) values are left out.
        seeds: The seed of each difference (default 0, 1, ...), kept beside it.
        confidence: Of the interval (0.95).
        xi: The paper's ξ >= 0 (Eq. 1): how far below dense a ticket may be and still win.

    Returns:
        A :class:`Paired`.

    Raises:
        ValueError: for ``seeds`` of another length, a negative ``xi`` or a bad ``confidence``.

    Example:
        >>> paired([0.1, 0.3, 0.2, 0.4]).verdict
        'wins'
    """
    values = list(differences)
    seeds = list(range(len(values))) if seeds is None else list(seeds)
    if len(seeds) != len(values):
        raise ValueError(f"{len(seeds)} seeds for {len(values)} differences")
    if not (math.isfinite(xi) and xi >= 0):
        raise ValueError(f"xi must be a finite number >= 0 (the paper's ξ); got {xi!r}")
    kept = [(s, v) for s, v in zip(seeds, values) if v is not None]
    known = tuple(v for _, v in kept)
    mean = statistics.fmean(known) if known else None
    std = low = high = None
    if len(known) > 1:
        std = statistics.stdev(known)
        half = t_quantile(confidence, len(known) - 1) * std / math.sqrt(len(known))
        low, high = mean - half, mean + half
    return Paired(known, tuple(s for s, _ in kept), mean, std, low, high, confidence, xi,
                  verdict(low, high, xi) if known else None)


def interval_text(summary: Paired, spec: str = "{:+.2f}") -> str:
    """``[-0.40, +1.40]``, or ``—`` without an interval."""
    if summary.low is None:
        return "—"
    return f"[{spec.format(summary.low)}, {spec.format(summary.high)}]"


def per_seed_text(summary: Paired, spec: str = "{:+.2f}") -> str:
    """``+0.40 / +0.90 / +0.20`` (seed order)."""
    return " / ".join(spec.format(v) for v in summary.differences)
