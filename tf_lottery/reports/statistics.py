"""The statistics of a sweep's cells: paired differences, intervals, power, verdicts, the declared
family of pooled comparisons, and time to the dense accuracy.

Each seed's ticket is paired with the dense run of its seed. A cell's verdict reads its 95 % t
interval against the margin ξ that the sweep declared before it ran (``--sweep_margin``): **wins**
above 0, **winning ticket at ξ** above -ξ, **loses** below -ξ, **undetermined** when the interval
crosses -ξ; the cell's minimum detectable difference at 80 % power says what its seeds could tell
(:mod:`tf_lottery.reports.stats`). The declared pooled comparisons (each criterion over every p,
``--sweep_comparisons`` of two criteria) are tested as one Holm-corrected family.

Example:
    >>> declared = Declared(margin=1.0)
    >>> text = statistics_table(rows, ("criterion", "p"), declared=declared)
"""

from __future__ import annotations

import dataclasses
import statistics as _statistics

from tf_lottery.reports import stats
from tf_lottery.reports.tables import markdown_table
from tf_lottery.reports.cells import cell, group_by, ordered_values


@dataclasses.dataclass(frozen=True)
class Declared:
    """What a sweep declared before its runs: the margin ξ, α, the power of the minimum detectable
    difference, the target MDD of the planner, and the comparisons of two criteria.

    Attributes:
        margin: ξ >= 0: percentage points of accuracy, or % of the dense perplexity.
        alpha: Of the two-sided intervals (0.05).
        power: Of the minimum detectable difference (0.8).
        detectable: The MDD the seeds should reach (the planner's target).
        comparisons: ``(A, B)`` criteria pairs.

    Example:
        >>> Declared.of(Config.create(experiment="sweep", sweep_margin=0.5)).margin
        0.5
    """

    margin: float = 1.0
    alpha: float = 0.05
    power: float = 0.8
    detectable: float = 0.5
    comparisons: tuple = ()

    @property
    def confidence(self) -> float:
        """``1 - alpha``."""
        return 1 - self.alpha

    @classmethod
    def of(cls, config) -> "Declared":
        """The declarations of a sweep's (or compare's) config (``--sweep_margin`` ...)."""
        sweep = config.sweep
        return cls(sweep.sweep_margin, sweep.sweep_alpha, sweep.sweep_power, sweep.sweep_detectable,
                   tuple(sweep.contrast(item) for item in sweep.sweep_comparisons))


DEFAULT = Declared()


def paired_accuracy(group, declared: Declared = DEFAULT) -> stats.Paired:
    """The paired statistics of a cell's rows: each seed's ticket minus the dense run of its seed (pp).

    Args:
        group: The rows of one cell (one per seed).
        declared: The sweep's :class:`Declared` margin and power.

    Returns:
        A :class:`tf_lottery.reports.stats.Paired`.

    Example:
        >>> paired_accuracy([r for r in out.rows if r.criterion == "grasp" and r.p == 1]).verdict
    """
    return stats.paired([r.accuracy_pp for r in group], seeds=[r.seed for r in group], xi=declared.margin,
                        confidence=declared.confidence, target_power=declared.power)


def relative_perplexity(row):
    """Dense minus ticket held-out perplexity in % of the dense one (positive: the ticket predicts
    better), None without both."""
    if row.dense_perplexity is None or row.ticket_perplexity is None:
        return None
    return 100.0 * (row.dense_perplexity - row.ticket_perplexity) / row.dense_perplexity


def verdict_cell(summary: stats.Paired, declared: Declared = DEFAULT, unit: str = "pp") -> str:
    """``winning ticket at ξ = 1 pp``: the verdict with its margin."""
    return stats.verdict_text(summary.verdict, declared.margin, unit)


def statistics_table(rows, keys, paper_of=None, declared: Declared = DEFAULT) -> str:
    """Every cell's paired statistics: per-seed differences (pp, seed order), mean, sample std,
    the 95 % t interval, the minimum detectable difference, the verdict at ξ and the paper's value
    (when ``paper_of(row)`` has one).

    Args:
        rows: The :class:`~tf_lottery.results.SweepRow` of a sweep.
        keys: The row fields that make a cell (``("criterion", "p")``).
        paper_of: ``row -> the paper's value or None`` (e.g. :func:`table1_paper`), or None.
        declared: The sweep's :class:`~tf_lottery.reports.statistics.Declared` margin and power.

    Returns:
        A Markdown table, one row per cell.

    Example:
        >>> print(statistics_table(out.rows, ("criterion", "p")))
    """
    body = []
    for head, group in group_by(rows, *keys).items():
        summary = paired_accuracy(group, declared)
        if summary.mean is None:
            continue
        published = next((v for v in (paper_of(r) for r in group) if v is not None), None) if paper_of else None
        body.append([*["—" if v is None else v for v in head], ", ".join(map(str, summary.seeds)),
                     stats.per_seed_text(summary), f"{summary.mean:+.2f}",
                     "—" if summary.std is None else f"{summary.std:.2f}", stats.interval_text(summary),
                     stats.detectable_text(summary), verdict_cell(summary, declared),
                     "" if published is None else f"{published:+.2f}"])
    confidence = f"{100 * declared.confidence:g} %"
    headers = [*keys, "seeds", "ticket − dense per seed (pp)", "mean", "std", f"{confidence} CI (t)",
               f"MDD at {100 * declared.power:g} % power (pp)", "verdict", "paper"]
    return markdown_table(headers, body, align="l" * len(keys) + "lrrrrrll")


def perplexity_table(rows, keys, declared: Declared = DEFAULT) -> str:
    """A language-model sweep's cells by held-out perplexity: the dense and ticket means, and dense
    minus ticket in % of the dense perplexity per seed (positive: the ticket predicts held-out text
    better) with its interval, minimum detectable difference and verdict at ξ (in %)."""
    body = []
    for head, group in group_by(rows, *keys).items():
        paired = [r for r in group if relative_perplexity(r) is not None]
        if not paired:
            continue
        summary = stats.paired([relative_perplexity(r) for r in paired], seeds=[r.seed for r in paired],
                               xi=declared.margin, confidence=declared.confidence, target_power=declared.power)
        body.append([*["—" if v is None else v for v in head], ", ".join(map(str, summary.seeds)),
                     f"{_statistics.fmean(r.dense_perplexity for r in paired):.3f}",
                     f"{_statistics.fmean(r.ticket_perplexity for r in paired):.3f}",
                     stats.per_seed_text(summary, "{:+.2f}"), stats.interval_text(summary, "{:+.2f}"),
                     stats.detectable_text(summary), verdict_cell(summary, declared, "%")])
    headers = [*keys, "seeds", "dense perplexity", "ticket perplexity", "dense − ticket per seed (% of dense)",
               f"{100 * declared.confidence:g} % CI (t)", f"MDD at {100 * declared.power:g} % power (%)", "verdict"]
    return markdown_table(headers, body, align="l" * len(keys) + "lrrrrrl")


def verdict_counts(rows, keys, declared: Declared = DEFAULT) -> str:
    """How many cells got each verdict.

    Args:
        rows: The :class:`~tf_lottery.results.SweepRow` of a sweep.
        keys: The row fields that make a cell (``("criterion", "p")``).
        declared: The sweep's :class:`Declared` margin and power.

    Returns:
        ``"wins 3, undetermined 6, loses 1 (of 10 cells)"``.

    Example:
        >>> verdict_counts(out.rows, ("criterion", "p"))
    """
    found = [paired_accuracy(g, declared).verdict for g in group_by(rows, *keys).values()]
    found = [v for v in found if v is not None]
    counts = [f"{stats.verdict_text(name, declared.margin)} {found.count(name)}" for name in stats.VERDICTS
              if found.count(name)]
    return f"{', '.join(counts)} (of {len(found)} cells)"


def _difference(row, perplexity: bool):
    return relative_perplexity(row) if perplexity else row.accuracy_pp


def _per_seed(rows, perplexity: bool) -> dict:
    """``{seed: mean difference over the rows of that seed}`` (None values left out)."""
    found = {}
    for row in rows:
        value = _difference(row, perplexity)
        if value is not None:
            found.setdefault(row.seed, []).append(value)
    return {seed: _statistics.fmean(values) for seed, values in found.items()}


def declared_family(rows, declared: Declared = DEFAULT, perplexity: bool = False) -> list:
    """The declared comparisons of a sweep, tested as one Holm-corrected family
    (:func:`tf_lottery.reports.stats.family`).

    * each criterion pooled over p: the per-seed mean over p of ticket − dense, tested over seeds;
    * each declared pair ``A-B``: per seed, the mean over the p both have of A's ticket minus B's
      ticket (the dense run cancels), tested over seeds.

    With several training lengths every comparison is made at each length.

    Args:
        rows: The :class:`~tf_lottery.results.SweepRow` of a sweep.
        declared: The sweep's :class:`Declared` margin and power.
        perplexity: Compare % of the dense perplexity (a language model) instead of accuracy.

    Returns:
        :class:`tf_lottery.reports.stats.Comparison` objects, in declaration order.

    Example:
        >>> [found.name for found in declared_family(out.rows, Declared.of(config))]
    """
    planned = []
    lengths = ordered_values(rows, "length")
    for length in lengths:
        at = [r for r in rows if r.length == length]
        suffix = f" at {length}" if len(lengths) > 1 else ""
        for name in ordered_values(at, "criterion"):
            per_seed = _per_seed([r for r in at if r.criterion == name], perplexity)
            planned.append((f"{name} pooled over p{suffix}", "ticket", list(per_seed.values()), list(per_seed)))
        for first, second in declared.comparisons:
            a = {(r.seed, r.p): _difference(r, perplexity) for r in at if r.criterion == first}
            b = {(r.seed, r.p): _difference(r, perplexity) for r in at if r.criterion == second}
            both = {}
            for key in a.keys() & b.keys():
                if a[key] is not None and b[key] is not None:
                    both.setdefault(key[0], []).append(a[key] - b[key])
            seeds = sorted(both)
            planned.append((f"{first} − {second}{suffix}", "contrast",
                            [_statistics.fmean(both[s]) for s in seeds], seeds))
    return stats.family(planned, declared.margin, declared.confidence, declared.power)


def family_table(rows, declared: Declared = DEFAULT, perplexity: bool = False) -> str:
    """The declared family: each comparison's per-seed mean, interval, MDD, its unadjusted verdict
    and its verdict after Holm's correction, with the adjusted p-values.

    Args:
        rows: The :class:`~tf_lottery.results.SweepRow` of a sweep.
        declared: The sweep's :class:`Declared` margin and power.
        perplexity: Compare % of the dense perplexity instead of accuracy.

    Returns:
        A Markdown table.

    Example:
        >>> print(family_table(out.rows, Declared.of(config)))
    """
    unit = "%" if perplexity else "pp"
    body = []
    for found in declared_family(rows, declared, perplexity):
        summary = found.summary
        unadjusted = stats.verdict_text(summary.verdict, declared.margin, unit)
        tests = "; ".join(f"{name}: {adjusted:.3g}" for name, (_, adjusted) in found.tests.items())
        body.append([found.name, ", ".join(map(str, summary.seeds)), f"{summary.mean:+.2f}",
                     stats.interval_text(summary), stats.detectable_text(summary), unadjusted,
                     f"**{stats.verdict_text(found.verdict, declared.margin, unit)}**", tests])
    headers = ["comparison", "seeds", f"mean ({unit})", f"{100 * declared.confidence:g} % CI (t)",
               f"MDD ({unit})", "verdict of the interval", "verdict after Holm", "Holm-adjusted one-sided p"]
    return markdown_table(headers, body, align="llrrrlll")


def family_note(declared: Declared = DEFAULT, perplexity: bool = False) -> str:
    unit = "% of the dense perplexity" if perplexity else "pp"
    return (f"Declared by the sweep's configuration (--sweep_margin, --sweep_alpha, --sweep_power, "
            f"--sweep_comparisons): ξ = {declared.margin:g} {unit}, α = {declared.alpha:g}, power "
            f"{100 * declared.power:g} %. A comparison against dense has three one-sided t tests (above 0, above −ξ, "
            "below −ξ); a comparison of two criteria four (above 0, below 0, and equivalence within ±ξ as two "
            f"one-sided tests). Holm's correction runs over every test of the family; each is rejected at α/2 = "
            f"{declared.alpha / 2:g} after it, so a family of one test reads as its {100 * declared.confidence:g} % "
            "interval. A criterion pooled over p is the per-seed mean over its p values; two criteria are paired "
            "by seed and p.")


def statistics_note(declared: Declared = DEFAULT) -> str:
    """How the statistics tables read, with the declared margin."""
    return (
        "Each seed's ticket is paired with the dense run of the same seed (same θ0, data order and scoring batch). "
        f"{100 * declared.confidence:g} % CI: Student's t interval of the mean paired difference, mean ± t(1 − α/2, "
        f"n − 1) · std / √n (t = {stats.t_quantile(declared.confidence, 2):.2f} for 3 seeds, "
        f"{stats.t_quantile(declared.confidence, 7):.2f} for 8). MDD: the minimum detectable difference, the smallest true "
        f"distance from a boundary that these seeds detect with {100 * declared.power:g} % power at their spread "
        "(noncentral t). Verdict (the paper's Eq. 1, ξ declared by the sweep, applied to the interval): "
        f"**wins** when the interval lies above 0; **winning ticket at ξ = {declared.margin:g} pp** when it lies "
        f"above −ξ; **loses** when it lies below −ξ; **undetermined** when it crosses −ξ: these seeds cannot "
        "tell, and the MDD says what they could have told. The paper's values are single CIFAR-10 runs: a "
        "direction to compare with, not a tolerance.")


STATISTICS_NOTE = statistics_note()


def time_to_dense_table(rows, keys) -> str:
    """How long each ticket takes to reach its dense network's final validation accuracy, mean
    over the seeds whose ticket gets there, and how many do (:mod:`tf_lottery.results.curves`).

    Args:
        rows: The :class:`~tf_lottery.results.SweepRow` of a sweep.
        keys: The row fields that make a cell (``("criterion", "p")``).

    Returns:
        A Markdown table; '' when no row has curves.

    Example:
        >>> print(time_to_dense_table(out.rows, ("criterion", "p")))
    """
    body = []
    for head, group in group_by(rows, *keys).items():
        curved = [r for r in group if r.ticket_curve and r.dense_curve]
        if not curved:
            continue
        reached = [r for r in curved if r.ticket_seconds_to_dense is not None]
        body.append([*["—" if v is None else v for v in head],
                     cell([100 * r.dense_curve[-1][1] for r in curved], "{:.2f}"),
                     cell([r.dense_train_seconds for r in curved], "{:,.0f}"),
                     cell([r.dense_seconds_to_final for r in curved], "{:,.0f}"),
                     cell([r.ticket_train_seconds for r in curved], "{:,.0f}"),
                     cell([r.ticket_seconds_to_dense for r in reached], "{:,.0f}") if reached else "never",
                     cell([r.time_to_dense_speedup_x for r in reached], "{:.2f}", suffix="x") if reached else "—",
                     f"{len(reached)} of {len(curved)}"])
    headers = [*keys, "dense final val acc (%)", "dense training (s)", "dense first reaches it (s)",
               "ticket training (s)", "ticket reaches it (s)", "dense time / ticket time to it", "seeds reaching it"]
    return markdown_table(headers, body, align="l" * len(keys) + "rrrrrrr")


TIME_NOTE = (
    "Time to accuracy: the training wall clock (set-up and epochs, the clock of the training speed-up) at the end "
    "of the first epoch whose validation accuracy reaches the dense network's final validation accuracy (same "
    "seed, same validation examples); epoch granularity, so an upper bound by less than one epoch. \"never\": no "
    "epoch of the ticket got there. The ratio is the dense network's whole training time over the ticket's time "
    "to that accuracy, over the seeds that reach it. Curves: `accuracy_vs_time.png`.")
