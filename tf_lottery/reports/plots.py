"""PNG plots: a run's learning curves and block scores, a sweep's accuracy and speed-up plots
(matplotlib, no display needed)."""

from __future__ import annotations

import statistics
from typing import Dict, List, Optional

import matplotlib
import matplotlib.ticker

from tf_lottery.evals.cka import ordered_views
from tf_lottery.core.io import atomic_path
from tf_lottery.results.records import SweepRow

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _save(fig, path: str) -> None:
    with atomic_path(path) as temporary:  # no half-written PNG after a kill
        fig.savefig(temporary, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)


def learning_curves(histories: Dict[str, dict], path: str, timed: Optional[Dict[str, list]] = None) -> None:
    """Training loss and accuracy (and validation accuracy when present) per epoch, one line per
    model; with ``timed`` (``{model: [[seconds, validation accuracy], ...]}``, :mod:`tf_lottery.results.curves`)
    a third panel of validation accuracy against training wall clock.

    Args:
        histories: ``{model: {column: [value per epoch]}}`` (:func:`tf_lottery.training.read_history`).
        path: The PNG file to write.
        timed: ``{model: [[seconds, validation accuracy], ...]}``, or None.

    Example:
        >>> learning_curves({"dense": tl.train.read_history("runs/mine/history_dense.csv")}, "curves.png")
    """
    timed = {name: curve for name, curve in (timed or {}).items() if curve}
    fig, axes = plt.subplots(1, 3 if timed else 2, figsize=(15 if timed else 10, 3.8))
    left, right = axes[0], axes[1]
    if timed:
        for name, curve in timed.items():
            axes[2].plot(*zip(*curve), marker="x", label=f"{name} val")
        axes[2].set(xlabel="training wall clock (s)", ylabel="validation accuracy", title="accuracy vs time")
        axes[2].grid(alpha=0.3)
        axes[2].legend()
    for name, history in histories.items():
        epochs = range(1, len(history.get("loss", [])) + 1)
        left.plot(epochs, history.get("loss", []), marker="o", label=f"{name} train")
        if "accuracy" in history:  # a ticket healed by distillation has no accuracy on the labels while it trains
            right.plot(epochs, history["accuracy"], marker="o", label=f"{name} train")
        if "val_accuracy" in history:
            right.plot(epochs, history["val_accuracy"], linestyle="--", marker="x", label=f"{name} val")
    left.set(xlabel="epoch", ylabel="loss", title="training loss")
    right.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for axis in (left, right):
        axis.grid(alpha=0.3)
        axis.legend()
    _save(fig, path)


def block_scores(scores: Dict[str, float], stages: Dict[str, int], removable: List[str], removed: List[str],
                 criterion: str, prune_first: str, path: str) -> None:
    """Bar chart of block scores coloured by stage; removed blocks hatched, fixed blocks grey.

    Args:
        scores: ``{block: score}``, in graph order.
        stages: ``{block: stage}``.
        removable: The removable blocks.
        removed: The removed blocks.
        criterion: The criterion's name (the title).
        prune_first: "low" or "high" (the title).
        path: The PNG file to write.

    Example:
        >>> result = tl.find_ticket(model, "magnitude", num_blocks=2)
        >>> block_scores(result.scores, {b.name: b.stage for b in tl.surgery.find_blocks(model)},
        ...              tl.surgery.removable_blocks(model), result.removed, "magnitude", "low", "scores.png")
    """
    names = list(scores)
    colours = plt.get_cmap("tab10")
    fig, axis = plt.subplots(figsize=(max(6, 0.35 * len(names)), 3.8))
    for i, name in enumerate(names):
        colour = colours(stages[name] - 1) if name in removable else "lightgrey"
        axis.bar(i, scores[name], color=colour, edgecolor="black" if name in removed else colour,
                 hatch="//" if name in removed else None, linewidth=1.5 if name in removed else 0.5)
    axis.set_xticks(range(len(names)), [n.replace("_block", "\nb") for n in names], fontsize=7)
    axis.set(ylabel="score", title=f"{criterion} block scores ({prune_first} removed first; hatched: removed; grey: not removable)")
    axis.grid(axis="y", alpha=0.3)
    _save(fig, path)


def _by_criterion(rows):
    groups = {}
    for r in rows:
        label = r.criterion if r.rewind is None else f"{r.criterion} ({r.rewind})"
        groups.setdefault(label, []).append(r)
    return groups


def _scatter_by_criterion(axis, rows: List[SweepRow], x_of, y_of) -> None:
    for label, group in _by_criterion(rows).items():
        shown = [r for r in group if y_of(r) is not None]
        axis.scatter([x_of(r) for r in shown], [y_of(r) for r in shown], label=label, alpha=0.8)


def _finish(fig, axis, path: str) -> None:
    axis.grid(alpha=0.3)
    axis.legend()
    _save(fig, path)


def accuracy_difference(rows: List[SweepRow], x_key: str, path: str) -> None:
    """Ticket minus dense accuracy (pp) against ``x_key`` (p or rewind_at), one line per
    criterion: the mean over seeds with a ±1 std bar (sample std), every seed as a dot.

    Args:
        rows: :class:`~tf_lottery.results.SweepRow` of a sweep.
        x_key: The field on the x axis: ``p`` or ``rewind_at``.
        path: The PNG file to write.

    Example:
        >>> accuracy_difference(out.rows, "p", "accuracy_difference.png")   # out: a sweep's result
    """
    fig, axis = plt.subplots(figsize=(6.4, 4))
    for label, group in _by_criterion(rows).items():
        xs = sorted({getattr(r, x_key) for r in group})
        values = [[r.accuracy_pp for r in group if getattr(r, x_key) == x] for x in xs]
        stds = [statistics.stdev(v) if len(v) > 1 else 0.0 for v in values]
        line = axis.errorbar(xs, [statistics.fmean(v) for v in values], yerr=stds, marker="o", capsize=3,
                             label=label)
        axis.scatter([getattr(r, x_key) for r in group], [r.accuracy_pp for r in group], s=10, alpha=0.4,
                     color=line[0].get_color())
    axis.axhline(0.0, color="black", linewidth=0.8)
    axis.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    rewind_axis = "rewind step k" if any(r.by_step for r in rows) else "rewind epoch i"
    axis.set(xlabel="blocks removed p" if x_key == "p" else rewind_axis,
             ylabel="ticket − dense test accuracy (pp)", title="accuracy difference (≥ 0: winning ticket)")
    _finish(fig, axis, path)


def accuracy_vs_flops(rows: List[SweepRow], path: str) -> None:
    """Test accuracy against FLOPs: every ticket by criterion, the dense runs in black.

    Args:
        rows: :class:`~tf_lottery.results.SweepRow` of a sweep.
        path: The PNG file to write.

    Example:
        >>> accuracy_vs_flops(out.rows, "accuracy_vs_flops.png")
    """
    fig, axis = plt.subplots(figsize=(6.4, 4))
    _scatter_by_criterion(axis, rows, lambda r: r.ticket_flops / 1e6, lambda r: 100 * r.ticket_accuracy)
    dense = {r.seed: r for r in rows}.values()
    axis.scatter([r.dense_flops / 1e6 for r in dense], [100 * r.dense_accuracy for r in dense],
                 color="black", marker="s", label="dense")
    axis.set(xlabel="FLOPs per image (M)", ylabel="test accuracy (%)", title="accuracy vs FLOPs")
    _finish(fig, axis, path)


def speedup_vs_flops_implied(rows: List[SweepRow], path: str) -> None:
    """Measured training speed-up against the speed-up FLOPs imply (dense/ticket FLOPs); y = x dashed.

    Args:
        rows: :class:`~tf_lottery.results.SweepRow` of a sweep.
        path: The PNG file to write.

    Example:
        >>> speedup_vs_flops_implied(out.rows, "speedup.png")
    """
    fig, axis = plt.subplots(figsize=(5.4, 4.4))
    _scatter_by_criterion(axis, rows, lambda r: r.flops_implied_speedup_x, lambda r: r.training_speedup_x)
    measured = [r.training_speedup_x for r in rows if r.training_speedup_x is not None]
    top = 1.05 * max([1.0] + measured + [r.flops_implied_speedup_x for r in rows])
    bottom = 0.95 * min([1.0] + measured)
    axis.plot([1, top], [1, top], linestyle="--", color="grey", label="y = x")
    axis.set(xlabel="FLOPs-implied speed-up (x)", ylabel="measured training speed-up (x)",
             title="training speed-up", xlim=(0.95, top), ylim=(bottom, top))
    _finish(fig, axis, path)


def _robustness_lines(rows) -> Dict[str, tuple]:
    """``{label: (dense or ticket side results of each seed)}``: one line per dense model and ticket kind."""
    lines: Dict[str, list] = {}
    for row in rows:
        dense = lines.setdefault(f"{row.model} dense", {})
        dense[row.dense_run_folder] = row.dense
        if row.ticket is not None:
            kind = f"{row.model} {row.method}" + (f" {row.criterion}" if row.criterion else "") + (
                f" p={row.p}" if row.p is not None else "")
            lines.setdefault(kind, {})[row.run_folder] = row.ticket
    return {label: tuple(sides.values()) for label, sides in lines.items()}


def _mean_line(axis, xs, per_seed, label, dashed=False) -> None:
    """The mean over seeds at each x (points where no seed has a value are skipped)."""
    means = [statistics.fmean(v) if v else None for v in per_seed]
    shown = [(x, m) for x, m in zip(xs, means) if m is not None]
    if shown:
        axis.plot(*zip(*shown), marker="o", linestyle="--" if dashed else "-", label=label)


def accuracy_vs_severity(rows, path: str) -> None:
    """Accuracy (mean over corruptions and seeds) against severity, 0 = clean; dense dashed.

    Args:
        rows: The robustness experiment's rows (``tf_lottery.experiments.robustness.RobustnessRow``).
        path: The PNG file to write (nothing is written when no row measured it).

    Example:
        >>> accuracy_vs_severity(tl.experiments.get("robustness")(config).rows, "accuracy_vs_severity.png")
    """
    lines = {k: v for k, v in _robustness_lines(rows).items() if all("corruptions" in s for s in v)}
    if not lines:
        return
    fig, axis = plt.subplots(figsize=(6.4, 4))
    for label, sides in lines.items():
        severities = sorted({int(s) for side in sides for t in side["corruptions"]["accuracy"].values() for s in t})
        per_seed = [[100 * side["corruptions"]["clean"] for side in sides]]
        for severity in severities:
            per_seed.append([100 * statistics.fmean(t[str(severity)] for t in side["corruptions"]["accuracy"].values())
                             for side in sides])
        _mean_line(axis, [0, *severities], per_seed, label, dashed=label.endswith("dense"))
    axis.set(xlabel="severity (0 = clean)", ylabel="accuracy (%)", title="accuracy under corruptions")
    _finish(fig, axis, path)


def accuracy_vs_epsilon(rows, path: str) -> None:
    """Accuracy (mean over seeds) against epsilon, one panel per attack; dense dashed.

    Args:
        rows: The robustness experiment's rows (``tf_lottery.experiments.robustness.RobustnessRow``).
        path: The PNG file to write (nothing is written when no row measured it).

    Example:
        >>> accuracy_vs_epsilon(robustness.rows, "accuracy_vs_epsilon.png")
    """
    lines = {k: v for k, v in _robustness_lines(rows).items() if all("adversarial" in s for s in v)}
    if not lines:
        return
    attacks = list(next(iter(lines.values()))[0]["adversarial"]["accuracy"])
    fig, axes = plt.subplots(1, len(attacks), figsize=(5.2 * len(attacks), 4), squeeze=False)
    for axis, attack in zip(axes[0], attacks):
        for label, sides in lines.items():
            epsilons = sorted({int(e) for side in sides for e in side["adversarial"]["accuracy"][attack]})
            per_seed = [[100 * side["adversarial"]["clean"] for side in sides]]
            per_seed += [[100 * side["adversarial"]["accuracy"][attack][str(e)] for side in sides] for e in epsilons]
            _mean_line(axis, [0, *epsilons], per_seed, label, dashed=label.endswith("dense"))
        axis.set(xlabel="epsilon (pixel levels out of 255)", ylabel="accuracy (%)", title=attack.upper())
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    _save(fig, path)


def cka_per_stage(rows, path: str) -> None:
    """Linear CKA between dense and ticket for each stage and the penultimate features (mean over seeds).

    Args:
        rows: The robustness experiment's rows (``tf_lottery.experiments.robustness.RobustnessRow``).
        path: The PNG file to write (nothing is written when no row measured it).

    Example:
        >>> cka_per_stage(robustness.rows, "cka_per_stage.png")
    """

    lines = {k: v for k, v in _robustness_lines(rows).items() if not k.endswith("dense")
             and all("cka" in s for s in v)}
    if not lines:
        return
    fig, axis = plt.subplots(figsize=(6.4, 4))
    for label, sides in lines.items():
        views = ordered_views(sides[0]["cka"]["views"])
        per_seed = [[side["cka"]["views"][v]["linear"] for side in sides if v in side["cka"]["views"]] for v in views]
        _mean_line(axis, list(range(len(views))), per_seed, label)
        axis.set_xticks(range(len(views)), views)
    axis.set(ylabel="linear CKA with dense", title="representation similarity to the dense network", ylim=(0, 1.02))
    _finish(fig, axis, path)


def _ticket_label(row: SweepRow) -> str:
    parts = [row.method] if row.method != "blocks" else []
    parts += [row.criterion] if row.p is not None or row.method == "blocks" else []
    parts += [f"p={row.p}"] if row.p is not None else []
    parts += [row.rewind_label] if row.rewind_label is not None else []
    return " ".join(parts) or row.method


def accuracy_vs_time(rows: List[SweepRow], path: str) -> None:
    """Validation accuracy against training wall-clock seconds (:mod:`tf_lottery.results.curves`): one panel
    per seed, the dense network in black, every ticket of the seed in colour, the dense final
    accuracy as a dotted line. Rows without curves (sweeps before 0.7) are left out.

    Args:
        rows: :class:`~tf_lottery.results.SweepRow` of a sweep.
        path: The PNG file to write.

    Example:
        >>> accuracy_vs_time(out.rows, "accuracy_vs_time.png")
    """
    seeds = list(dict.fromkeys(r.seed for r in rows if r.ticket_curve))
    if not seeds:
        return
    fig, axes = plt.subplots(1, len(seeds), figsize=(5.2 * len(seeds), 4.0), squeeze=False, sharey=True)
    labels = list(dict.fromkeys(_ticket_label(r) for r in rows if r.ticket_curve))
    colours = plt.get_cmap("tab20" if len(labels) > 10 else "tab10")
    for axis, seed in zip(axes[0], seeds):
        group = [r for r in rows if r.seed == seed and r.ticket_curve]
        dense = next((r.dense_curve for r in group if r.dense_curve), None)
        if dense:
            axis.plot(*zip(*dense), color="black", marker="o", linewidth=2, label="dense")
            axis.axhline(dense[-1][1], color="black", linestyle=":", linewidth=1)
        for r in group:
            label = _ticket_label(r)
            axis.plot(*zip(*r.ticket_curve), marker=".", color=colours(labels.index(label) % colours.N),
                      alpha=0.85, label=label)
        axis.set(xlabel="training wall clock (s)", title=f"seed {seed}")
        axis.grid(alpha=0.3)
    axes[0][0].set_ylabel("validation accuracy")
    low = min(v for r in rows if r.ticket_curve for _, v in r.ticket_curve[len(r.ticket_curve) // 2:])
    axes[0][0].set_ylim(max(0.0, low - 0.05), None)  # the end of training, where tickets and dense meet
    handles, names = axes[0][-1].get_legend_handles_labels()
    fig.legend(handles, names, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    _save(fig, path)
