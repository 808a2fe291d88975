"""PNG plots of a run: learning curves and block scores (matplotlib, no display needed)."""

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
