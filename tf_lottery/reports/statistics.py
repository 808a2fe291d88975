"""The statistics of a sweep's cells: paired differences, intervals, verdicts, time to the dense accuracy.

Each seed's ticket is paired with the dense run of its seed, and a cell "wins" only when the
95 % t interval of the paired differences lies at or above 0 (the paper's ξ = 0), "loses" when it
lies below, and is "within noise" otherwise (:mod:`tf_lottery.reports.stats`).
"""

from __future__ import annotations


from tf_lottery.reports import stats
from tf_lottery.reports.tables import markdown_table
from tf_lottery.reports.cells import cell, group_by


def paired_accuracy(group) -> stats.Paired:
    """The paired statistics of a cell's rows: each seed's ticket minus the dense run of its seed (pp)."""
    return stats.paired([r.accuracy_pp for r in group], seeds=[r.seed for r in group])


def statistics_table(rows, keys, paper_of=None) -> str:
    """Every cell's paired statistics: per-seed differences (pp, seed order), mean, sample std,
    the 95 % t interval, the verdict and the paper's value (when ``paper_of(row)`` has one)."""
    body = []
    for head, group in group_by(rows, *keys).items():
        summary = paired_accuracy(group)
        if summary.mean is None:
            continue
        published = next((v for v in (paper_of(r) for r in group) if v is not None), None) if paper_of else None
        body.append([*["—" if v is None else v for v in head], ", ".join(map(str, summary.seeds)),
                     stats.per_seed_text(summary), f"{summary.mean:+.2f}",
                     "—" if summary.std is None else f"{summary.std:.2f}", stats.interval_text(summary),
                     summary.verdict, "" if published is None else f"{published:+.2f}"])
    headers = [*keys, "seeds", "ticket − dense per seed (pp)", "mean", "std", "95 % CI (t)", "verdict", "paper"]
    return markdown_table(headers, body, align="l" * len(keys) + "lrrrrll")


def perplexity_table(rows, keys) -> str:
    """A language-model sweep's cells by held-out perplexity: the ticket's mean, and dense minus ticket per
    seed (positive: the ticket predicts held-out text better) with its 95 % t interval and verdict."""
    body = []
    for head, group in group_by(rows, *keys).items():
        paired = [r for r in group if r.dense_perplexity is not None and r.ticket_perplexity is not None]
        if not paired:
            continue
        summary = stats.paired([r.dense_perplexity - r.ticket_perplexity for r in paired],
                               seeds=[r.seed for r in paired])
        body.append([*["—" if v is None else v for v in head], ", ".join(map(str, summary.seeds)),
                     f"{sum(r.dense_perplexity for r in paired) / len(paired):.3f}",
                     f"{sum(r.ticket_perplexity for r in paired) / len(paired):.3f}",
                     stats.per_seed_text(summary, "{:+.3f}"), stats.interval_text(summary, "{:+.3f}"),
                     summary.verdict])
    headers = [*keys, "seeds", "dense perplexity", "ticket perplexity", "dense − ticket per seed", "95 % CI (t)",
               "verdict"]
    return markdown_table(headers, body, align="l" * len(keys) + "lrrrrl")


def verdict_counts(rows, keys) -> str:
    """``"wins 3, within noise 6, loses 1 (of 10 cells)"``."""
    found = [paired_accuracy(g).verdict for g in group_by(rows, *keys).values()]
    found = [v for v in found if v is not None]
    counts = [f"{name} {found.count(name)}" for name in stats.VERDICTS if found.count(name)]
    return f"{', '.join(counts)} (of {len(found)} cells)"


STATISTICS_NOTE = (
    "Each seed's ticket is paired with the dense run of the same seed (same θ0, data order and scoring batch). "
    "95 % CI: Student's t interval of the mean paired difference, mean ± t(0.975, n − 1) · std / √n "
    "(t = 4.30 for 3 seeds). Verdict (the paper's Eq. 1 with ξ = 0, applied to the interval): **wins** when the "
    "interval lies at or above 0, **loses** when it lies below 0, **within noise** otherwise; one seed gives no "
    "interval. The paper's values are single CIFAR-10 runs: they are a direction to compare with, not a "
    "tolerance.")


def time_to_dense_table(rows, keys) -> str:
    """How long each ticket takes to reach its dense network's final validation accuracy, mean
    over the seeds whose ticket gets there, and how many do (:mod:`tf_lottery.results.curves`)."""
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
