"""The paper's table shapes over a sweep's rows: Tables 1, 2 and 4 and the CKA tables.

* Table 1 shape (``lottery`` sweeps): criterion (x rewind mode) by rewind epoch θ_i,
  accuracy difference to dense in percentage points.
* Table 2 shape (``init_ticket`` sweeps): p by criterion, the same differences.
* Table 4 shape (every sweep): FLOPs, params, memory and CO2 reductions (% less than
  dense), the measured training speed-up (time ratio) and images/s ratio, and the speed-up
  FLOPs alone would imply.

Cells are ``mean ± std`` over seeds with the cell's verdict; the paper's value (CIFAR-10, one
run, :mod:`tf_lottery.reports.paper`) stands beside each cell where it has one; the best cell
of a row is **bold**.
"""

from __future__ import annotations

from typing import Optional

from tf_lottery.config import Config
from tf_lottery.reports import paper
from tf_lottery.reports.tables import markdown_table
from tf_lottery.training import parse_length
from tf_lottery.reports.cells import cell, group_by, mean_std, ordered_values
from tf_lottery.reports.statistics import DEFAULT, Declared, paired_accuracy, verdict_cell


def difference_table(rows, row_keys, column_key, column_label, best_of: str = "row", value: str = "accuracy_pp",
                      spec: str = "{:+.2f}", paper_of=None, declared: Declared = DEFAULT) -> str:
    """Rows x columns of accuracy differences (pp; or another row field ``value`` formatted by
    ``spec``), both in sweep order; the best (highest) mean of each row (``best_of="row"``) or of
    each column (``"column"``) in bold. Accuracy cells carry their verdict; ``paper_of(row)``,
    when given, adds the paper's value after each column."""
    columns = ordered_values(rows, column_key)
    groups = group_by(rows, *row_keys, column_key)
    heads = list(dict.fromkeys(tuple(getattr(r, k) for k in row_keys) for r in rows))
    values = {(h, c): [getattr(r, value) for r in groups.get(h + (c,), [])] for h in heads for c in columns}
    means = {key: mean_std(v)[0] for key, v in values.items()}
    along = heads if best_of == "column" else columns

    def best(key):
        h, c = key
        rivals = [means[(o, c)] if best_of == "column" else means[(h, o)] for o in along]
        known = [m for m in rivals if m is not None]
        return len(along) > 1 and means[key] is not None and means[key] == max(known)

    def shown(key):
        if not values[key]:
            return ""
        text = cell(values[key], spec, bold=best(key))
        if value == "accuracy_pp" and means[key] is not None:
            text += f" ({verdict_cell(paired_accuracy(groups[key[0] + (key[1],)], declared), declared)})"
        return text

    def published(key):
        found = [paper_of(r) for r in groups.get(key[0] + (key[1],), [])]
        return next((f"{v:+.2f}" for v in found if v is not None), "")

    if paper_of and not any(published((h, c)) for h in heads for c in columns):
        paper_of = None  # the paper has no number for any cell (another model): no empty columns
    body, headers = [], list(row_keys)
    for c in columns:
        headers += [column_label(c)] + (["paper"] if paper_of else [])
    for h in heads:
        line = list(h)
        for c in columns:
            line += [shown((h, c))] + ([published((h, c))] if paper_of else [])
        body.append(line)
    per_column = 2 if paper_of else 1
    return markdown_table(headers, body, align="l" * len(row_keys) + "r" * (per_column * len(columns)))


def model_depth(config: Config) -> Optional[int]:
    """The depth of a CIFAR ResNet (the paper's networks), else None: the paper has numbers for those only."""
    return getattr(config.model.settings, "depth", None) if config.model.type == "cifar_resnet" else None


def table1_paper(config: Config):
    """``paper_of(row)`` for Table 1: a rewind epoch matches the paper's θ_0/25/50/75 of 200 epochs
    at the same fraction of this training's length (in epochs)."""
    count, unit = parse_length(config.training.length)
    depth, epochs = model_depth(config), count if unit == "ep" else None
    return lambda r: paper.table1(depth, r.criterion, r.rewind, None if r.by_step else r.rewind_epoch, epochs)


def table1(rows, paper_of=None, declared: Declared = DEFAULT) -> str:
    """Table 1 shape: after-training criterion (x rewind mode) by rewind epoch θ_i (or step: θ_<k>it),
    pp vs dense.

    Args:
        rows: The :class:`~tf_lottery.results.SweepRow` of a sweep.
        paper_of: ``row -> the paper's value or None`` (e.g. :func:`table1_paper`), or None.
        declared: The sweep's :class:`~tf_lottery.reports.statistics.Declared` margin and power.

    Returns:
        A Markdown table, each cell mean ± std over seeds with its verdict.

    Example:
        >>> print(table1(out.rows, paper_of=table1_paper(config)))   # out: a lottery sweep's result
    """
    keys = ("criterion", "rewind") if len(ordered_values(rows, "rewind")) > 1 else ("criterion",)
    suffix = "it" if any(r.by_step for r in rows) else ""
    return difference_table(rows, keys, "rewind_at", lambda at: f"θ_{at}{suffix}", paper_of=paper_of,
                            declared=declared)


def table2(rows, paper_of=None, declared: Declared = DEFAULT) -> str:
    """Table 2 shape: p (by training length, when a sweep has several) by criterion at initialization,
    pp vs dense (the paper's beside, when given).

    Args:
        rows: The :class:`~tf_lottery.results.SweepRow` of a sweep.
        paper_of: ``row -> the paper's value or None`` (e.g. ``lambda r: paper.table2(32, r.criterion, r.p)``),
            or None.
        declared: The sweep's :class:`~tf_lottery.reports.statistics.Declared` margin and power.

    Returns:
        A Markdown table, each cell mean ± std over seeds with its verdict.

    Example:
        >>> print(table2(out.rows))   # out: a sweep's result
    """
    keys = ("length", "p") if len(ordered_values(rows, "length")) > 1 else ("p",)
    return difference_table(rows, keys, "criterion", lambda name: name, paper_of=paper_of, declared=declared)


def has_cka(rows) -> bool:
    """Whether the rows carry CKA (``--evals`` held ``cka``).

    Args:
        rows: The :class:`~tf_lottery.results.SweepRow` of a sweep.

    Returns:
        True when a row has a linear CKA.

    Example:
        >>> if has_cka(out.rows):
        ...     print(cka_table2(out.rows))
    """
    return any(r.cka_linear is not None for r in rows)


def cka_table2(rows) -> str:
    """CKA with dense in the Table 2 shape: p by criterion, linear CKA of the penultimate features.

    Args:
        rows: The :class:`~tf_lottery.results.SweepRow` of a sweep.

    Returns:
        A Markdown table, mean ± std over seeds.

    Example:
        >>> print(cka_table2(out.rows))
    """
    return difference_table(rows, ("p",), "criterion", lambda name: name, value="cka_linear", spec="{:.3f}")


CKA_NOTE = ("Linear CKA (Kornblith et al. 2019) between the dense network's and the ticket's penultimate features "
             "(the classifier's input) on a fixed batch of test images, mean ± std over seeds; 1 = the same "
             "representation up to rotation and scale; **bold**: the most similar of its {along}. Each stage's CKA "
             "and the debiased form are in every run's `evals/ticket/cka.json` and in `--experiment=robustness`.")


def table4(rows, depth: Optional[int] = None, declared: Declared = DEFAULT) -> str:
    """Table 4 shape: reductions (% less than dense) and speed-ups (x), mean ± std over seeds, the
    accuracy difference with its verdict, and the paper's row for a GraSP ResNet32/56 ticket of
    ``depth`` (FLOPs / memory / CO2 reductions and speed-up).

    Args:
        rows: The :class:`~tf_lottery.results.SweepRow` of a sweep.
        depth: The CIFAR ResNet's depth (None: no paper row).
        declared: The sweep's margin and power.

    Returns:
        A Markdown table.

    Example:
        >>> print(table4(out.rows, depth=32))
    """
    keys = (["length"] if len(ordered_values(rows, "length")) > 1 else []) + ["criterion", "p"] + (
        ["rewind", "rewind_at"] if rows and rows[0].rewinds else [])
    body = []
    for head, group in group_by(rows, *keys).items():
        def col(key, spec="{:.2f}", suffix=""):
            return cell([getattr(r, key) for r in group], spec, suffix=suffix)
        accuracy = col("accuracy_pp", "{:+.2f}")
        summary = paired_accuracy(group, declared)
        if summary.verdict is not None:
            accuracy += f" ({verdict_cell(summary, declared)})"
        row = paper.table4(depth, group[0].criterion, group[0].p) if not group[0].rewinds else None
        published = "" if row is None else f"{row[0]:.2f} / {row[1]:.2f} / {row[2]:.2f} / {row[3]:.2f}x"
        body.append([*head, col("flops_reduction_pct"), col("params_reduction_pct"), col("memory_reduction_pct"),
                     col("co2_reduction_pct"), col("training_speedup_x", suffix="x"),
                     col("images_per_second_ratio_x", suffix="x"), col("flops_implied_speedup_x", suffix="x"),
                     accuracy, len(group), published])
    headers = [*keys, "FLOPs ↓ %", "params ↓ %", "memory ↓ %", "CO2 ↓ %", "training speed-up (measured)",
               "images/s ratio (measured)", "FLOPs-implied speed-up", "accuracy (pp)", "seeds",
               "paper: FLOPs / memory / CO2 ↓ %, speed-up"]
    return markdown_table(headers, body, align="l" * len(keys) + "r" * 9 + "l")
