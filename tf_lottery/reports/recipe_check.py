"""The recipe check: the dense runs of a sweep, and whether their recipe trained (no collapse, seeds agree).
"""

from __future__ import annotations


from tf_lottery.config import Config
from tf_lottery.reports.tables import markdown_table
from tf_lottery.results import curves
from tf_lottery.results.records import folder_name
from tf_lottery.training import parse_length
from tf_lottery.reports.cells import cell, group_by, percent_cell


def _recipe_flags(first, warmup_epochs: int) -> tuple:
    """``(last-epoch training-accuracy gain, worst validation drop after the warm-up, check)`` of one dense run."""
    gain = curves.last_epoch_gain(first.dense_train_accuracy)
    drop = curves.worst_drop(first.dense_curve, warmup_epochs)
    gap = curves.worst_gap(first.dense_curve, first.dense_train_accuracy, warmup_epochs)
    collapsed = (drop is not None and drop > curves.COLLAPSE_PP) or (gap is not None and gap > curves.GAP_PP)
    values = [v for _, v in first.dense_curve or []]
    # A dip the training recovered from (its last epoch within BAND_PP of its best: a high learning rate's noisy
    # epoch, say) is named apart from a collapse that lasts to the end.
    recovered = bool(values) and 100.0 * (max(values) - values[-1]) <= curves.BAND_PP
    problems = ([] if gain is None or gain <= curves.FLAT_PP else ["still rising"]) + (
        [("validation dip, recovered" if recovered else "validation collapse")] if collapsed else [])
    check = "—" if gain is None and drop is None else (", ".join(problems) or "ok")
    return (("—" if gain is None else f"{gain:+.2f}"),
            ("—" if drop is None else f"{drop:.1f}") + ("" if gap is None else f" / {gap:.1f}"), check)


def dense_table(rows, warmup_epochs: int = 0) -> str:
    """The dense runs: test accuracy and training time per seed, and the recipe check: the last
    epoch's training-accuracy gain (flattened at most ``curves.FLAT_PP``), the worst validation
    drop after the warm-up (a collapse beyond ``curves.COLLAPSE_PP``), and the seeds' spread.

    Args:
        rows: The :class:`~tf_lottery.results.SweepRow` of a sweep.
        warmup_epochs: Epochs of the warm-up (left out of the drop).

    Returns:
        A Markdown table, one row per seed.

    Example:
        >>> print(dense_table(out.rows, warmup_epochs(config)))
    """
    body = []
    for (seed,), group in group_by(rows, "seed").items():
        first = group[0]
        body.append([seed, percent_cell(first.dense_accuracy), f"{first.dense_train_seconds:.0f}",
                     *_recipe_flags(first, warmup_epochs), plateau_cell(first.dense_curve),
                     folder_name(first.dense_run_folder) or ""])
    accuracies = [None if g[0].dense_accuracy is None else 100 * g[0].dense_accuracy
                  for g in group_by(rows, "seed").values()]
    known = [a for a in accuracies if a is not None]
    spread = max(known) - min(known) if len(known) > 1 else None
    band = "" if spread is None else (f"spread {spread:.2f} pp: "
                                      f"{'within' if spread <= curves.BAND_PP else 'outside'} the "
                                      f"{curves.BAND_PP:g} pp band")
    body.append(["mean ± std", cell(accuracies, "{:.2f}"), "", "", "", band, "",
                 f"{len(accuracies)} seed{'s' if len(accuracies) > 1 else ''}"])
    headers = ["seed", "test accuracy (%)", "training time (s)", "last epoch's training-accuracy gain (pp)",
               "worst validation drop / gap to training after warm-up (pp)", "recipe check",
               f"last {100 * curves.PLATEAU_FRACTION:g} % of epochs: validation range / change (pp)", "dense run folder"]
    return markdown_table(headers, body, align="lrrrrlll")


def plateau_cell(curve) -> str:
    """``plateaued (0.12 / +0.04)``: the state of the held-out accuracy over the last 20 % of the epochs."""
    found = curves.plateau(curve)
    return "—" if found is None else f"{found.state} ({found.range_pp:.2f} / {found.change_pp:+.2f})"


def plateau_table(rows, keys) -> str:
    """How many runs of each cell (and the dense runs) plateaued over the last 20 % of their epochs,
    with each run's validation range over that window."""
    def summary(found_curves):
        states = [curves.plateau(c) for c in found_curves]
        states = [s for s in states if s is not None]
        count = sum(s.state == "plateaued" for s in states)
        others = sorted({s.state for s in states} - {"plateaued"})
        return [f"{count} of {len(states)}", ", ".join(others) or "—",
                " / ".join(f"{s.range_pp:.2f}" for s in states) or "—"]

    dense = {r.dense_run_folder: r.dense_curve for r in rows}
    body = [["dense", *[""] * (len(keys) - 1), *summary(dense.values())]]
    for head, group in group_by(rows, *keys).items():
        body.append([*["—" if v is None else v for v in head], *summary(r.ticket_curve for r in group)])
    headers = [*keys, "plateaued", "the others", "validation range over the window per run (pp)"]
    return markdown_table(headers, body, align="l" * len(keys) + "rll")


PLATEAU_NOTE = (
    f"Plateaued: the held-out (validation) accuracy moves by at most {curves.PLATEAU_PP:g} pp over the epochs that end "
    f"in the last {100 * curves.PLATEAU_FRACTION:g} % of the training (range = highest − lowest there; change = last − "
    "first). Otherwise \"still rising\" (the last epoch is more than that above the window's first), \"falling\" (more "
    "than that below it: past its peak) or \"moving\".")


RECIPE_NOTE = (
    "Recipe check (docs, the paper's tables page, \"Twin recipes\"): a dense training has flattened when its last epoch adds at most "
    f"{curves.FLAT_PP:g} pp of training accuracy; its validation accuracy has collapsed when an epoch after the "
    f"warm-up falls more than {curves.COLLAPSE_PP:g} pp below the best earlier epoch (drop) or more than "
    f"{curves.GAP_PP:g} pp below that epoch's training accuracy (gap), and it recovered (\"validation dip, "
    f"recovered\") when its last epoch is within {curves.BAND_PP:g} pp of its best; the seeds agree when their dense "
    f"test accuracies span at most {curves.BAND_PP:g} pp.")


def warmup_epochs(config: Config) -> int:
    """Whole epochs of the warm-up (a warm-up in steps counts as its first epoch).

    Args:
        config: A run's config.

    Returns:
        The epochs.

    Example:
        >>> warmup_epochs(Config.create(length="6ep", warmup="1ep", lr_drops=("4ep",)))
        1
    """
    count, unit = parse_length(config.training.warmup, allow_zero=True)
    return count if unit == "ep" else int(count > 0)


def recipe_text(config: Config) -> str:
    """The recipe in words, for a report.

    Args:
        config: A run's config.

    Returns:
        One line.

    Example:
        >>> recipe_text(Config.create(length="6ep", learning_rate=0.05, warmup="1ep", lr_drops=("4ep",)))
        '6ep at learning rate 0.05 (warm-up 1ep, drops at 4ep)'
    """
    training = config.training
    warmup = "" if training.warmup == "0ep" else f"warm-up {training.warmup}, "
    return (f"{training.length} at learning rate {training.learning_rate:g} ({warmup}drops at "
            f"{', '.join(training.lr_drops) or 'none'})")


def model_label(config: Config) -> str:
    """The model's name in a report.

    Args:
        config: A run's config.

    Returns:
        ``ResNet-<depth>`` for a CIFAR ResNet, else the model type.

    Example:
        >>> model_label(Config.create(depth=32))
        'ResNet-32'
    """
    depth = getattr(config.model.settings, "depth", None)
    return f"ResNet-{depth}" if config.model.type == "cifar_resnet" and depth else config.model.type
