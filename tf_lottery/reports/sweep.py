"""The sweep report: ``report.md`` and the plots of a sweep folder.

Cells are ``mean ± std`` over seeds (sample std, n - 1; a single seed shows the mean only) and
the cell's verdict (:mod:`tf_lottery.reports.statistics`). Every report also has the statistics
of each cell, the time each ticket takes to reach its dense network's final validation accuracy
(:mod:`tf_lottery.results.curves`), and ``accuracy_vs_time.png``.
"""

from __future__ import annotations

import os
from typing import List

from tf_lottery.config import Config
from tf_lottery.core.io import write_text_atomic
from tf_lottery.reports import paper, plots
from tf_lottery.results.records import SweepRow
from tf_lottery.reports.cells import ordered_values
from tf_lottery.reports.paper_tables import CKA_NOTE, cka_table2, has_cka, model_depth, table1, table1_paper, table2, table4
from tf_lottery.reports.recipe_check import (
    PLATEAU_NOTE, RECIPE_NOTE, dense_table, model_label, plateau_table, recipe_text, warmup_epochs,
)
from tf_lottery.reports.statistics import (
    TIME_NOTE, Declared, family_note, family_table, perplexity_table, statistics_note, statistics_table,
    time_to_dense_table, verdict_counts,
)


def write(config: Config, rows: List[SweepRow], folder: str) -> str:
    """Writes report.md and the plots of a sweep into ``folder``.

    Args:
        config: The sweep's config.
        rows: The :class:`~tf_lottery.results.SweepRow` of a sweep.
        folder: The report's folder.

    Returns:
        The report's text.

    Example:
        >>> text = write(config, out.rows, "runs/sweep-1c0e6a0f2b7d")
    """
    lottery = rows[0].rewinds
    declared = Declared.of(config)
    lengths = len(ordered_values(rows, "length")) > 1
    x_key = "rewind_at" if lottery and len(ordered_values(rows, "p")) == 1 else "p"
    drawn = _draw_plots(rows, x_key, folder)
    seeds = ordered_values(rows, "seed")
    depth = model_depth(config)
    setup = (f"{config.data.dataset}, {model_label(config)}, {recipe_text(config)}, "
             f"train size {config.data.train_size or 'all'}, "
             f"seeds {', '.join(map(str, seeds))}, {len(rows)} runs, precision {config.precision} (dense and "
             "tickets alike)")
    energy = "unavailable" if not any(r.co2_reduction_pct is not None for r in rows) else "codecarbon"
    parts = [
        f"# Sweep {os.path.basename(folder)}", "", setup, "",
        "Accuracy differences are ticket minus dense test accuracy in percentage points, mean ± std over "
        "seeds (each seed's ticket against the dense run of the same seed), with the cell's verdict (see "
        "\"Statistics\"); **bold**: the best of its row; \"paper\": the paper's value (CIFAR-10, one run).", "",
        "## Dense runs", "", dense_table(rows, warmup_epochs(config)), "", RECIPE_NOTE, "",
    ]
    if lottery:
        paper_of = table1_paper(config)
        keys = ("criterion", "rewind", "rewind_at", "p")
        parts += ["## Table 1 shape: after-training criteria by rewind epoch (pp vs dense)", "",
                  table1(rows, paper_of, declared), "",
                  "The paper's column of θ_i is its value at the same fraction of the training (its θ_0, θ_25, "
                  "θ_50, θ_75 of 200 epochs), where the fraction is one of those.", ""]
    else:
        paper_of = lambda r: paper.table2(depth, r.criterion, r.p)  # noqa: E731
        keys = ("length", "criterion", "p") if lengths else ("criterion", "p")
        parts += ["## Table 2 shape: tickets at initialization (pp vs dense)", "", table2(rows, paper_of, declared), ""]
        if has_cka(rows):
            parts += ["## CKA with the dense network (Table 2 shape)", "", cka_table2(rows), "",
                      CKA_NOTE.format(along="row"), ""]
    if any(r.dense_curve for r in rows):
        parts += ["## Plateau: did every training converge?", "", plateau_table(rows, keys), "", PLATEAU_NOTE, ""]
    language = any(r.ticket_perplexity is not None for r in rows)
    if language:
        parts += ["## Held-out perplexity (a language model: the verdict that counts)", "",
                  perplexity_table(rows, keys, declared), "",
                  "Dense minus ticket held-out perplexity per seed in % of the dense perplexity: positive when the "
                  f"ticket predicts held-out text better; the verdict reads the interval against ξ = "
                  f"{declared.margin:g} % as below. The accuracy tables are next-token accuracy.", ""]
    parts += [
        "## Statistics: paired differences per cell", "", statistics_table(rows, keys, paper_of, declared), "",
        f"Verdicts: {verdict_counts(rows, keys, declared)}. {statistics_note(declared)}", "",
        "## Declared comparisons (Holm-corrected family)", "", family_table(rows, declared, language), "",
        family_note(declared, language), "",
        "## Time to the dense network's final accuracy", "", time_to_dense_table(rows, keys), "", TIME_NOTE, "",
        *(["![accuracy vs time](accuracy_vs_time.png)", ""] if "accuracy_vs_time.png" in drawn else []),
        "## Table 4 shape: efficiency (% less than dense; speed-up in x)", "", table4(rows, depth, declared), "",
        f"Training speed-up = dense training time / ticket training time, measured (wall clock, whole "
        f"`fit`){'; a rewound ticket trains n - i epochs, so its time ratio includes the shorter schedule' if lottery else ''}. "
        "Images/s ratio = ticket / dense training throughput after the first epoch: the per-step gain alone. "
        f"CO2 from {energy} (see each run's result.json for its mode). FLOPs, params and memory are computed "
        "from the graph.", "",
        *[f"![{title}]({name})" for name, title in drawn.items() if name != "accuracy_vs_time.png"], "",
    ]
    text = "\n".join(parts)
    write_text_atomic(os.path.join(folder, "report.md"), text)
    return text


def _draw_plots(rows: List[SweepRow], x_key: str, folder: str) -> dict:
    """Draws the sweep's plots whose measurements the rows hold; returns ``{file: title}`` of those drawn.

    Accuracy needs the ``clean`` evaluation and FLOPs the ``cost`` one: a sweep run with
    ``--evals`` lacking either gets the other plots (and the tables say "unavailable"); the
    accuracy-against-time plot needs learning curves (runs of 0.7 and later).
    """
    accuracy = all(r.accuracy_pp is not None for r in rows)
    flops = all(r.ticket_flops is not None and r.dense_flops is not None for r in rows)
    wanted = {
        "accuracy_difference.png": ("accuracy difference", accuracy,
                                    lambda path: plots.accuracy_difference(rows, x_key, path)),
        "accuracy_vs_flops.png": ("accuracy vs FLOPs", accuracy and flops, lambda path: plots.accuracy_vs_flops(rows, path)),
        "speedup.png": ("speed-up", flops, lambda path: plots.speedup_vs_flops_implied(rows, path)),
        "accuracy_vs_time.png": ("accuracy vs time", any(r.ticket_curve for r in rows),
                                 lambda path: plots.accuracy_vs_time(rows, path)),
    }
    drawn = {}
    for name, (title, measured, draw) in wanted.items():
        if measured:
            draw(os.path.join(folder, name))
            drawn[name] = title
    return drawn
