"""Paired statistics of tickets against their dense networks: intervals, power, verdicts, Holm.

A report cell (one criterion and p, one method, one rewind epoch...) holds one ticket per
seed, each trained from the θ0 of its seed and compared with the dense network of the same
seed. The unit of evidence is therefore the *paired* difference ``ticket - dense`` of each
seed (percentage points; for a language model, % of the dense perplexity), not two separate
means: the seed's shared θ0, data order and scoring batch cancel out of it.

:func:`paired` summarises those differences: mean, sample standard deviation, a 95 % confidence
interval for the mean from Student's t distribution with n - 1 degrees of freedom
(``mean ± t_{0.975, n-1} · sd / sqrt(n)``; with 3 seeds t = 4.303), and the **minimum detectable
difference** (MDD): the smallest true distance between the mean and a tested boundary that the
interval separates from that boundary with 80 % power, given the cell's spread and its number of
seeds (two-sided t test at α = 0.05, power from the noncentral t distribution; :func:`power`).

The verdict applies the paper's winning-ticket criterion, Accuracy(ticket) + ξ ≥ Accuracy(dense)
(Jordao et al., Eq. 1), to the whole interval, with a margin ξ that the sweep declares before it
runs (the paper cites 1 pp as a common choice):

* ``"wins"``: the interval lies above 0 (the ticket is better, at 95 %);
* ``"winning ticket at ξ"``: the interval lies above -ξ (the ticket is at most ξ worse);
* ``"loses"``: the interval lies below -ξ;
* ``"undetermined"``: the interval crosses -ξ: these seeds cannot tell. The MDD says how large
  a difference they could have told;
* ``"one seed"``: a single difference has no interval; it says nothing about noise.

A report's declared **pooled comparisons** (a criterion over every p; one criterion against another
or against random, paired by seed and p) are tested together as one family: each comparison is a
set of one-sided t tests (:func:`one_sided_p`), and :func:`holm` controls the family-wise error rate
over all of them. Each one-sided test is at α/2 = 0.025, so that a single test without correction
says what the 95 % interval says.

The t interval assumes the differences are roughly normal; with 3 to 10 seeds nothing better is
identifiable (a bootstrap of 3 values has only 10 distinct resamples' means).

Example:
    >>> summary = paired([0.4, 0.9, 0.2], xi=1.0)
    >>> round(summary.mean, 3), round(summary.low, 2), round(summary.high, 2), summary.verdict
    (0.5, -0.4, 1.4, 'winning ticket at ξ')
    >>> round(summary.detectable, 2)  # three seeds of this spread detect 1.18 pp at 80 % power
    1.18
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from typing import Iterable, Optional, Sequence

CONFIDENCE = 0.95
"""Two-sided confidence of every interval (α = 0.05)."""
POWER = 0.80
"""The power at which the minimum detectable difference is given."""
WINS, WINNING, UNDETERMINED, LOSES, ONE_SEED = "wins", "winning ticket at ξ", "undetermined", "loses", "one seed"
VERDICTS = (WINS, WINNING, UNDETERMINED, LOSES, ONE_SEED)
"""A ticket against its dense network, best first."""
BETTER, WORSE, EQUIVALENT = "better", "worse", "equivalent at ±ξ"
CONTRASTS = (BETTER, EQUIVALENT, UNDETERMINED, WORSE, ONE_SEED)
"""One ticket against another (A − B): A better, within ±ξ of B, undetermined, A worse."""
MAX_SEEDS = 1000
"""Where :func:`seeds_needed` stops looking."""


def _check_confidence(confidence: float) -> None:
    if not (isinstance(confidence, (int, float)) and 0 < confidence < 1):
        raise ValueError(f"confidence must be a number in (0, 1); got {confidence!r}")


def t_quantile(confidence: float, degrees: int) -> float:
    """The two-sided Student's t quantile: ``t`` with ``P(|T| <= t)`` = ``confidence``.

    Args:
        confidence: In (0, 1), e.g. 0.95.
        degrees: Degrees of freedom, at least 1.

    Returns:
        The quantile.

    Raises:
        ValueError: for a confidence outside (0, 1) or fewer than 1 degree of freedom.

    Example:
        >>> round(t_quantile(0.95, 2), 3)
        4.303
    """
    from scipy import stats

    _check_confidence(confidence)
    if degrees < 1:
        raise ValueError(f"a t interval needs at least 1 degree of freedom (2 values); got {degrees}")
    return float(stats.t.ppf(0.5 + confidence / 2, degrees))


def power(effect: float, std: float, n: int, confidence: float = CONFIDENCE) -> float:
    """The power of the paired two-sided t test (level 1 - ``confidence``) to reject a boundary
    that the true mean difference is ``effect`` away from, with ``n`` seeds of spread ``std``.

    The t statistic then follows the noncentral t distribution with n - 1 degrees of freedom and
    noncentrality ``effect · sqrt(n) / std``; the power is its mass beyond ±t_{1-α/2, n-1} (both
    tails, as statsmodels' ``TTestPower(alternative="two-sided")``).

    Args:
        effect: The true distance from the boundary (same unit as ``std``); its sign does not matter.
        std: The standard deviation of one paired difference (> 0).
        n: Seeds (>= 2).
        confidence: 1 - α.

    Returns:
        The probability in [0, 1] that the interval excludes the boundary.

    Raises:
        ValueError: for ``n`` < 2, ``std`` <= 0 or a bad ``confidence``.

    Example:
        >>> round(power(0.5, 0.41, 8), 3)
        0.839
    """
    from scipy import stats

    _check_confidence(confidence)
    if n < 2:
        raise ValueError(f"power needs at least 2 seeds; got n={n}")
    if not (math.isfinite(std) and std > 0):
        raise ValueError(f"std must be a finite number > 0; got {std!r}")
    degrees = n - 1
    critical = stats.t.ppf(0.5 + confidence / 2, degrees)
    shift = abs(effect) * math.sqrt(n) / std
    upper = stats.nct.sf(critical, degrees, shift)
    if not math.isfinite(upper):
        upper = 1.0 - stats.nct.cdf(critical, degrees, shift)
    lower = stats.nct.cdf(-critical, degrees, shift)  # the wrong-side tail: below 1e-8 unless shift is small;
    if not math.isfinite(lower):                      # scipy returns NaN for it at large shifts
        lower = 0.0
    return float(min(1.0, upper + lower))


def minimum_detectable(std: float, n: int, confidence: float = CONFIDENCE, target_power: float = POWER) -> float:
    """The minimum detectable difference: the smallest true distance from a boundary that ``n``
    seeds of spread ``std`` detect with ``target_power`` (the inverse of :func:`power` in ``effect``).

    Args:
        std: The standard deviation of one paired difference (> 0).
        n: Seeds (>= 2).
        confidence: 1 - α of the two-sided test (0.95).
        target_power: In (0, 1); 0.8 by convention.

    Returns:
        The difference, in the unit of ``std``.

    Raises:
        ValueError: for ``n`` < 2, ``std`` <= 0, a ``target_power`` outside (1 - confidence, 1).

    Example:
        >>> round(minimum_detectable(0.41, 3), 2), round(minimum_detectable(0.41, 8), 2)
        (1.34, 0.47)
    """
    from scipy import optimize

    if not (isinstance(target_power, (int, float)) and 1 - confidence < target_power < 1):
        raise ValueError(f"target_power must be a number in ({1 - confidence:g}, 1); got {target_power!r}")
    power(0.0, std, n, confidence)  # validates
    high = std
    while power(high, std, n, confidence) < target_power:
        high *= 2
    return float(optimize.brentq(lambda e: power(e, std, n, confidence) - target_power, 0.0, high, xtol=1e-10))


def seeds_needed(std: float, target: float, confidence: float = CONFIDENCE, target_power: float = POWER) -> int:
    """The fewest seeds whose minimum detectable difference is at most ``target``.

    Args:
        std: The spread of one paired difference, e.g. from a pilot (> 0).
        target: The difference to detect (> 0), in the unit of ``std``.
        confidence: 1 - α.
        target_power: 0.8 by convention.

    Returns:
        n >= 2.

    Raises:
        ValueError: for ``target`` <= 0, or more than :data:`MAX_SEEDS` seeds needed.

    Example:
        >>> seeds_needed(0.41, 0.5)
        8
    """
    if not (math.isfinite(target) and target > 0):
        raise ValueError(f"target must be a finite number > 0; got {target!r}")
    for n in range(2, MAX_SEEDS + 1):
        if minimum_detectable(std, n, confidence, target_power) <= target:
            return n
    raise ValueError(f"more than {MAX_SEEDS} seeds needed to detect {target:g} with a spread of {std:g}")


def pooled_std(groups: Iterable[Sequence[float]]) -> Optional[float]:
    """The pooled sample standard deviation of several groups (each group's own mean removed):
    ``sqrt(Σ (n_i - 1) s_i² / Σ (n_i - 1))``; groups of fewer than 2 values add nothing.

    Args:
        groups: The paired differences of each cell.

    Returns:
        The pooled spread, or None when no group has 2 values.

    Example:
        >>> round(pooled_std([[0.1, 0.5], [1.0, 1.2, 1.4]]), 4)
        0.2309
    """
    squares = degrees = 0.0
    for group in groups:
        values = [v for v in group if v is not None]
        if len(values) > 1:
            squares += (len(values) - 1) * statistics.variance(values)
            degrees += len(values) - 1
    return math.sqrt(squares / degrees) if degrees else None


@dataclasses.dataclass(frozen=True)
class Paired:
    """The paired differences of one cell and what they say.

    Attributes:
        differences: Ticket minus dense per seed, in seed order; unavailable ones left out.
        seeds: The seeds of ``differences``.
        mean: Their mean (None without any).
        std: Sample standard deviation (n - 1; None for fewer than 2).
        low, high: The ``confidence`` interval of the mean (None for fewer than 2).
        confidence: 0.95.
        xi: The margin ξ >= 0 of the verdict (the paper's Eq. 1).
        verdict: One of :data:`VERDICTS` (None without any difference).
        detectable: The minimum detectable difference at :data:`POWER` (None for fewer than 2
            values or no spread).

    Example:
        >>> summary = paired([0.4, 0.9, 0.2], seeds=[0, 1, 2], xi=1.0)
        >>> summary.mean, summary.n, summary.verdict
        (0.5, 3, 'winning ticket at ξ')
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
    detectable: Optional[float] = None

    @property
    def n(self) -> int:
        return len(self.differences)

    def to_dict(self) -> dict:
        """JSON-ready, with ``n``."""
        values = dataclasses.asdict(self)
        values.update(differences=list(self.differences), seeds=list(self.seeds), n=self.n)
        return values


def verdict(low: Optional[float], high: Optional[float], xi: float = 0.0) -> str:
    """A ticket's verdict against dense from the interval of ``ticket - dense`` and the margin ξ.

    Args:
        low, high: The interval (None: a single seed).
        xi: The margin ξ >= 0.

    Returns:
        One of :data:`VERDICTS`.

    Example:
        >>> verdict(0.1, 0.8), verdict(-0.4, 0.5, xi=1.0), verdict(-1.5, -1.1, xi=1.0), verdict(-1.2, 0.3, xi=1.0)
        ('wins', 'winning ticket at ξ', 'loses', 'undetermined')
    """
    if low is None or high is None:
        return ONE_SEED
    if low > 0:
        return WINS
    if low > -xi:
        return WINNING
    if high < -xi:
        return LOSES
    return UNDETERMINED


def contrast(low: Optional[float], high: Optional[float], xi: float = 0.0) -> str:
    """One ticket against another from the interval of ``A - B``: ``better`` (above 0), ``worse``
    (below 0), ``equivalent at ±ξ`` (inside (-ξ, +ξ)), else ``undetermined``.

    Args:
        low: The interval's low end (None: a single seed).
        high: Its high end.
        xi: The margin ξ >= 0.

    Returns:
        One of :data:`CONTRASTS`, or the single-seed verdict without an interval.

    Example:
        >>> contrast(0.1, 0.4), contrast(-0.3, 0.2, xi=1.0), contrast(-0.3, 1.2, xi=1.0)
        ('better', 'equivalent at ±ξ', 'undetermined')
    """
    if low is None or high is None:
        return ONE_SEED
    if low > 0:
        return BETTER
    if high < 0:
        return WORSE
    if -xi < low and high < xi:
        return EQUIVALENT
    return UNDETERMINED


def _check_xi(xi) -> None:
    if not (isinstance(xi, (int, float)) and math.isfinite(xi) and xi >= 0):
        raise ValueError(f"xi must be a finite number >= 0 (the paper's ξ); got {xi!r}")


def paired(differences: Iterable[Optional[float]], seeds: Optional[Sequence] = None,
           confidence: float = CONFIDENCE, xi: float = 0.0, target_power: float = POWER,
           kind: str = "ticket") -> Paired:
    """Mean, sample std, t interval, minimum detectable difference and verdict of per-seed
    paired differences.

    Args:
        differences: Ticket minus dense per seed; None (unavailable) values are left out.
        seeds: The seed of each difference (default 0, 1, ...), kept beside it.
        confidence: Of the interval (0.95).
        xi: The margin ξ >= 0 (Eq. 1): how far below dense a ticket may be and still be a
            winning ticket.
        target_power: The power of the minimum detectable difference (0.8).
        kind: ``"ticket"`` (against dense: :func:`verdict`) or ``"contrast"`` (ticket A against
            ticket B: :func:`contrast`).

    Returns:
        A :class:`Paired`.

    Raises:
        ValueError: for ``seeds`` of another length, a negative ``xi``, a bad ``confidence`` or
            ``kind``.

    Example:
        >>> paired([0.1, 0.3, 0.2, 0.4]).verdict
        'wins'
    """
    values = list(differences)
    seeds = list(range(len(values))) if seeds is None else list(seeds)
    if len(seeds) != len(values):
        raise ValueError(f"{len(seeds)} seeds for {len(values)} differences")
    _check_xi(xi)
    _check_confidence(confidence)
    if kind not in ("ticket", "contrast"):
        raise ValueError(f"kind must be 'ticket' or 'contrast'; got {kind!r}")
    kept = [(s, v) for s, v in zip(seeds, values) if v is not None]
    known = tuple(v for _, v in kept)
    mean = statistics.fmean(known) if known else None
    std = low = high = detectable = None
    if len(known) > 1:
        std = statistics.stdev(known)
        half = t_quantile(confidence, len(known) - 1) * std / math.sqrt(len(known))
        low, high = mean - half, mean + half
        if std > 0:
            detectable = minimum_detectable(std, len(known), confidence, target_power)
    judge = verdict if kind == "ticket" else contrast
    return Paired(known, tuple(s for s, _ in kept), mean, std, low, high, confidence, xi,
                  judge(low, high, xi) if known else None, detectable)


def one_sided_p(differences: Sequence[float], boundary: float, alternative: str) -> float:
    """The p-value of the one-sided t test that the mean difference lies beyond ``boundary``.

    Args:
        differences: At least 2 values.
        boundary: The boundary tested (0, -ξ or +ξ).
        alternative: ``"greater"`` (the mean is above the boundary) or ``"less"``.

    Returns:
        The p-value (scipy.stats.ttest_1samp); 0 or 1 when every difference equals another and
        lies beyond or short of the boundary.

    Raises:
        ValueError: for fewer than 2 differences or another alternative.

    Example:
        >>> round(one_sided_p([0.4, 0.9, 0.2], -1.0, "greater"), 4)
        0.0094
    """
    from scipy import stats

    values = [float(v) for v in differences]
    if len(values) < 2:
        raise ValueError(f"a t test needs at least 2 differences; got {len(values)}")
    if alternative not in ("greater", "less"):
        raise ValueError(f"alternative must be 'greater' or 'less'; got {alternative!r}")
    if statistics.pstdev(values) == 0:  # no spread: the test degenerates to a comparison
        mean = values[0]
        beyond = mean > boundary if alternative == "greater" else mean < boundary
        return 0.0 if beyond else 1.0
    return float(stats.ttest_1samp(values, boundary, alternative=alternative).pvalue)


def holm(p_values: Sequence[float]) -> list:
    """Holm's step-down adjustment of a family of p-values (family-wise error rate control).

    The k-th smallest of m p-values is multiplied by m - k + 1, the results made non-decreasing
    in that order and capped at 1; a hypothesis is rejected at level α when its adjusted p-value
    is at most α (Holm, 1979).

    Args:
        p_values: The family's p-values in [0, 1].

    Returns:
        The adjusted p-values, in the order given.

    Raises:
        ValueError: for a value outside [0, 1].

    Example:
        >>> holm([0.01, 0.04, 0.03])
        [0.03, 0.06, 0.06]
    """
    values = [float(p) for p in p_values]
    bad = [p for p in values if not 0 <= p <= 1]
    if bad:
        raise ValueError(f"p-values must be in [0, 1]; got {bad[0]!r}")
    order = sorted(range(len(values)), key=values.__getitem__)
    adjusted, running = [0.0] * len(values), 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(values) - rank) * values[index]))
        adjusted[index] = round(running, 15)
    return adjusted


@dataclasses.dataclass(frozen=True)
class Comparison:
    """One declared comparison of a family, with its Holm-adjusted verdict.

    Attributes:
        name: What is compared, e.g. ``"grasp pooled over p"`` or ``"grasp − snip"``.
        kind: ``"ticket"`` (against dense) or ``"contrast"`` (A − B).
        summary: The :class:`Paired` statistics of its per-seed differences (unadjusted 95 %
            interval and MDD).
        tests: ``{hypothesis: (p-value, Holm-adjusted p-value)}``, e.g. ``{"above -ξ": (...)}``.
        verdict: From the adjusted p-values at α/2: one of :data:`VERDICTS` or :data:`CONTRASTS`.

    Example:
        >>> [found] = family([("grasp pooled over p", "ticket", [0.4, 0.9, 0.2], [0, 1, 2])], xi=1.0)
        >>> found.kind, found.summary.mean
        ('ticket', 0.5)
    """

    name: str
    kind: str
    summary: Paired
    tests: dict
    verdict: str

    def to_dict(self) -> dict:
        """JSON-ready: each test as ``{"p", "holm"}``."""
        return {"name": self.name, "kind": self.kind, "summary": self.summary.to_dict(),
                "tests": {k: {"p": p, "holm": a} for k, (p, a) in self.tests.items()}, "verdict": self.verdict}


def _hypotheses(kind: str, xi: float) -> list:
    """``(name, boundary, alternative)`` of each one-sided test of a comparison."""
    if kind == "ticket":
        return [("above 0", 0.0, "greater"), ("above -ξ", -xi, "greater"), ("below -ξ", -xi, "less")]
    return [("above 0", 0.0, "greater"), ("below 0", 0.0, "less"), ("above -ξ", -xi, "greater"),
            ("below +ξ", xi, "less")]


def _adjusted_verdict(kind: str, rejected: dict) -> str:
    if kind == "ticket":
        if rejected["above 0"]:
            return WINS
        if rejected["above -ξ"]:
            return WINNING
        return LOSES if rejected["below -ξ"] else UNDETERMINED
    if rejected["above 0"]:
        return BETTER
    if rejected["below 0"]:
        return WORSE
    return EQUIVALENT if rejected["above -ξ"] and rejected["below +ξ"] else UNDETERMINED


def family(comparisons: Sequence[tuple], xi: float, confidence: float = CONFIDENCE,
           target_power: float = POWER) -> list:
    """Tests a declared family of comparisons together, Holm-corrected over all their one-sided tests.

    A comparison against dense (``kind="ticket"``) has three one-sided tests: above 0 (wins), above
    -ξ (a winning ticket at ξ) and below -ξ (loses). A comparison of two tickets (``"contrast"``,
    A − B) has four: above 0, below 0, and above -ξ with below +ξ (equivalence at ±ξ, both
    needed: two one-sided tests). Every test is at α/2 = (1 - confidence) / 2 after Holm's
    adjustment over the whole family, so that a family of one test reads as the 95 % interval.

    Args:
        comparisons: ``(name, kind, differences, seeds)`` per comparison; differences per seed
            (None left out).
        xi: The margin ξ >= 0.
        confidence: 1 - α.
        target_power: For each summary's MDD.

    Returns:
        A :class:`Comparison` per comparison with at least 2 differences, in the order given.

    Raises:
        ValueError: for a bad ``xi`` or ``kind``.

    Example:
        >>> found = family([("a", "ticket", [0.4, 0.5, 0.6], None)], xi=1.0)
        >>> found[0].verdict
        'wins'
    """
    _check_xi(xi)
    prepared = []
    for name, kind, differences, seeds in comparisons:
        summary = paired(differences, seeds, confidence, xi, target_power, kind)
        if summary.n < 2:
            continue
        raw = {h: one_sided_p(summary.differences, boundary, alternative)
               for h, boundary, alternative in _hypotheses(kind, xi)}
        prepared.append((name, kind, summary, raw))
    flat = [p for *_, raw in prepared for p in raw.values()]
    adjusted = iter(holm(flat))
    level = (1 - confidence) / 2
    found = []
    for name, kind, summary, raw in prepared:
        tests = {h: (p, next(adjusted)) for h, p in raw.items()}
        rejected = {h: a <= level for h, (_, a) in tests.items()}
        found.append(Comparison(name, kind, summary, tests, _adjusted_verdict(kind, rejected)))
    return found


def interval_text(summary: Paired, spec: str = "{:+.2f}") -> str:
    """The interval of a cell as text.

    Args:
        summary: A cell's :class:`Paired`.
        spec: The format of each end.

    Returns:
        ``[low, high]``, or ``—`` without an interval.

    Example:
        >>> interval_text(paired([0.4, 0.9, 0.2], seeds=[0, 1, 2]))
        '[-0.40, +1.40]'
    """
    if summary.low is None:
        return "—"
    return f"[{spec.format(summary.low)}, {spec.format(summary.high)}]"


def per_seed_text(summary: Paired, spec: str = "{:+.2f}") -> str:
    """The differences of a cell, in seed order.

    Args:
        summary: A cell's :class:`Paired`.
        spec: The format of each difference.

    Returns:
        The differences, each formatted by ``spec``, joined by slashes.

    Example:
        >>> per_seed_text(paired([0.4, 0.9, 0.2], seeds=[0, 1, 2]))
        '+0.40 / +0.90 / +0.20'
    """
    return " / ".join(spec.format(v) for v in summary.differences)


def detectable_text(summary: Paired, spec: str = "{:.2f}") -> str:
    """The minimum detectable difference of a cell as text.

    Args:
        summary: A cell's :class:`Paired`.
        spec: The format of the difference.

    Returns:
        The difference, or ``—`` without one.

    Example:
        >>> detectable_text(paired([0.4, 0.9, 0.2], seeds=[0, 1, 2]))
        '1.18'
    """
    return "—" if summary.detectable is None else spec.format(summary.detectable)


def verdict_text(found: Optional[str], xi: float, unit: str = "pp") -> str:
    """A verdict with its margin written out.

    Args:
        found: A verdict (None: no verdict).
        xi: The margin ξ.
        unit: ξ's unit.

    Returns:
        The verdict with ``ξ`` replaced by its value, or ``—``.

    Example:
        >>> verdict_text("winning ticket at ξ", 1.0)
        'winning ticket at ξ = 1 pp'
    """
    if found is None:
        return "—"
    return found.replace("ξ", f"ξ = {xi:g} {unit}".rstrip()) if "ξ" in found else found
