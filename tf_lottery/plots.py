"""PNG plots: a run's learning curves and block scores, a sweep's accuracy and speed-up plots
(matplotlib, no display needed)."""

from __future__ import annotations

import os
from typing import Dict, List

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _save(fig, path: str) -> None:
    # Write to a temporary name, then rename: no half-written PNG after a kill.
    folder, name = os.path.split(path)
    temporary = os.path.join(folder, f".{name}.tmp.png")
    fig.savefig(temporary, dpi=110, bbox_inches="tight")
    plt.close(fig)
    os.replace(temporary, path)


def learning_curves(histories: Dict[str, dict], path: str) -> None:
    """Training loss and accuracy (and validation accuracy when present) per epoch, one line per model."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    for name, history in histories.items():
        epochs = range(1, len(history.get("loss", [])) + 1)
        left.plot(epochs, history.get("loss", []), marker="o", label=f"{name} train")
        right.plot(epochs, history.get("accuracy", []), marker="o", label=f"{name} train")
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
    """Bar chart of block scores coloured by stage; removed blocks hatched, fixed blocks grey."""
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
        label = r["criterion"] if r.get("rewind") is None else f"{r['criterion']} ({r['rewind']})"
        groups.setdefault(label, []).append(r)
    return groups


def accuracy_difference(rows: List[dict], x_key: str, path: str) -> None:
    """Ticket minus dense accuracy (pp) against ``x_key`` (p or rewind_epoch), one line per
    criterion: the mean over seeds with a ±1 std bar, every seed as a dot."""
    fig, axis = plt.subplots(figsize=(6.4, 4))
    for label, group in _by_criterion(rows).items():
        xs = sorted({r[x_key] for r in group})
        values = [[r["accuracy_pp"] for r in group if r[x_key] == x] for x in xs]
        means = [sum(v) / len(v) for v in values]
        stds = [(sum((a - m) ** 2 for a in v) / (len(v) - 1)) ** 0.5 if len(v) > 1 else 0.0
                for v, m in zip(values, means)]
        line = axis.errorbar(xs, means, yerr=stds, marker="o", capsize=3, label=label)
        axis.scatter([r[x_key] for r in group], [r["accuracy_pp"] for r in group], s=10, alpha=0.4,
                     color=line[0].get_color())
    axis.axhline(0.0, color="black", linewidth=0.8)
    axis.set(xlabel="blocks removed p" if x_key == "p" else "rewind epoch i",
             ylabel="ticket − dense test accuracy (pp)", title="accuracy difference (≥ 0: winning ticket)")
    axis.grid(alpha=0.3)
    axis.legend()
    _save(fig, path)


def accuracy_vs_flops(rows: List[dict], path: str) -> None:
    """Test accuracy against FLOPs: every ticket by criterion, the dense runs in black."""
    fig, axis = plt.subplots(figsize=(6.4, 4))
    for label, group in _by_criterion(rows).items():
        axis.scatter([r["ticket_flops"] / 1e6 for r in group], [100 * r["ticket_accuracy"] for r in group],
                     label=label, alpha=0.8)
    dense = {r["seed"]: r for r in rows}.values()
    axis.scatter([r["dense_flops"] / 1e6 for r in dense], [100 * r["dense_accuracy"] for r in dense],
                 color="black", marker="s", label="dense")
    axis.set(xlabel="FLOPs per image (M)", ylabel="test accuracy (%)", title="accuracy vs FLOPs")
    axis.grid(alpha=0.3)
    axis.legend()
    _save(fig, path)


def speedup_vs_flops_implied(rows: List[dict], path: str) -> None:
    """Measured training speed-up against the speed-up FLOPs imply (dense/ticket FLOPs); y = x dashed."""
    fig, axis = plt.subplots(figsize=(5.4, 4.4))
    for label, group in _by_criterion(rows).items():
        measured = [r for r in group if r["training_speedup_x"] is not None]
        axis.scatter([r["flops_implied_speedup_x"] for r in measured], [r["training_speedup_x"] for r in measured],
                     label=label, alpha=0.8)
    top = max([1.0] + [max(r["flops_implied_speedup_x"], r["training_speedup_x"] or 0) for r in rows]) * 1.05
    axis.plot([1, top], [1, top], linestyle="--", color="grey", label="y = x")
    axis.set(xlabel="FLOPs-implied speed-up (x)", ylabel="measured training speed-up (x)",
             title="training speed-up", xlim=(0.95, top), ylim=(0.95 * min([1.0] + [r["training_speedup_x"] or 1
                                                                                   for r in rows]), top))
    axis.grid(alpha=0.3)
    axis.legend()
    _save(fig, path)
