"""Layer 8, what a person reads: the run table, the sweep, compare and robustness reports,
their plots and statistics, and the paper's own numbers.

:mod:`~tf_lottery.reports.cells` (formatting), :mod:`~tf_lottery.reports.run_report`,
:mod:`~tf_lottery.reports.paper_tables` (Tables 1, 2, 4 and CKA in the paper's shapes),
:mod:`~tf_lottery.reports.statistics` (paired differences, verdicts, time to dense),
:mod:`~tf_lottery.reports.recipe_check`, :mod:`~tf_lottery.reports.sweep`,
:mod:`~tf_lottery.reports.compare` (Table 3 and cost), :mod:`~tf_lottery.reports.robustness`
(Table 5), :mod:`~tf_lottery.reports.plots`, :mod:`~tf_lottery.reports.stats`,
:mod:`~tf_lottery.reports.paper` and :mod:`~tf_lottery.reports.tables` (Markdown).

Example:
    >>> print(tl.reports.run_table(record))
"""

from tf_lottery.reports import paper, plots, robustness, stats, tables  # noqa: F401
from tf_lottery.reports.cells import cell, mean_std
from tf_lottery.reports.compare import METHOD_LABELS, cka_table3, cost_table, table3, write_compare
from tf_lottery.reports.paper_tables import cka_table2, has_cka, table1, table2, table4
from tf_lottery.reports.recipe_check import dense_table, model_label, recipe_text, warmup_epochs
from tf_lottery.reports.run_report import run_table
from tf_lottery.reports.statistics import (
    Declared, declared_family, family_table, paired_accuracy, statistics_table, time_to_dense_table, verdict_counts,
)
from tf_lottery.reports.sweep import write
from tf_lottery.reports.tables import markdown_table

__all__ = [
    "Declared", "METHOD_LABELS", "cell", "declared_family", "family_table", "cka_table2", "cka_table3", "cost_table", "dense_table", "has_cka", "markdown_table",
    "mean_std", "model_label", "paired_accuracy", "paper", "plots", "recipe_text", "robustness", "run_table",
    "statistics_table", "stats", "table1", "table2", "table3", "table4", "time_to_dense_table", "verdict_counts",
    "warmup_epochs", "write", "write_compare",
]
