"""Learning curves of dense runs side by side: how the twin recipes were chosen.

Reads finished (or interrupted) dense run folders, and writes per epoch the training accuracy,
the validation accuracy and the wall clock of each, the recipe check of each run
(:mod:`tf_lottery.results.curves`: flattened, collapsed) and one plot, into ``--out``.

Usage (README "Twin recipes"):
    .venv/bin/python scripts/recipe_curves.py --out=benchmarks/results/twin_recipe \\
        runs/dense-<hash> runs/dense-<hash> ...
"""

from __future__ import annotations

import json
import os
import sys

from absl import app, flags

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from tf_lottery.results import curves  # noqa: E402
from tf_lottery import training as train
from tf_lottery.core.io import write_json_atomic, write_text_atomic  # noqa: E402
from tf_lottery.reports.tables import markdown_table  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("out", "benchmarks/results/twin_recipe", "Folder for curves.json, report.md, curves.png.")


def _label(config: dict) -> str:
    training, data, model = config["training"], config["data"], config["model"]
    warmup = training.get("warmup", "0ep")
    return (f"ResNet-{model.get('depth')}, {data.get('train_size')} images, {training['length']}, lr "
            f"{training['learning_rate']:g}, warm-up {warmup}, drops {','.join(training['lr_drops']) or 'none'}, "
            f"BN momentum {model.get('bn_momentum', 0.99):g}")


def read_run(folder: str) -> dict:
    """One dense run's config, history and per-epoch seconds (interrupted runs: the finished epochs)."""
    with open(os.path.join(folder, "config.json")) as handle:
        config = json.load(handle)
    history = train.read_history(os.path.join(folder, "history_dense.csv"))
    progress = os.path.join(folder, "resume_dense", "progress.json")
    record = os.path.join(folder, "train_dense.json")
    if os.path.exists(record):
        with open(record) as handle:
            timing = json.load(handle)["train"]["timing"]
        seconds, total = timing["epoch_seconds"], timing["train_seconds"]
    else:
        with open(progress) as handle:
            epochs = json.load(handle)["epochs"]
        seconds = [e["seconds"] for e in epochs]
        total = sum(seconds) + sum(e["setup_seconds"] for e in epochs)
    curve = curves.learning_curve(history, seconds, total)
    warmup, unit = train.parse_length(config["training"].get("warmup", "0ep"), allow_zero=True)
    test = None
    summary = os.path.join(folder, "evals", "dense", "clean.json")
    if os.path.exists(summary):
        with open(summary) as handle:
            test = json.load(handle)["result"]["accuracy"]
    return {"folder": os.path.basename(folder), "label": _label(config), "train_accuracy": history.get("accuracy"),
            "curve": curve, "test_accuracy": test, "finished": os.path.exists(record),
            "last_epoch_gain_pp": curves.last_epoch_gain(history.get("accuracy")),
            "worst_drop_after_warmup_pp": curves.worst_drop(curve, warmup if unit == "ep" else 1),
            "worst_gap_after_warmup_pp": curves.worst_gap(curve, history.get("accuracy"),
                                                          warmup if unit == "ep" else 1)}


def report(runs) -> str:
    parts = ["# Learning curves of candidate twin recipes (dense networks, Fashion-MNIST, one core each)", ""]
    for run in runs:
        body = [[i + 1, f"{100 * a:.2f}", f"{100 * v:.2f}", f"{s:.0f}"]
                for i, (a, (s, v)) in enumerate(zip(run["train_accuracy"], run["curve"]))]
        test = "unfinished" if run["test_accuracy"] is None else f"{100 * run['test_accuracy']:.2f} %"
        parts += [f"## {run['label']}", "", f"`{run['folder']}`; test accuracy {test}; last epoch's training-accuracy "
                  f"gain {run['last_epoch_gain_pp']:+.2f} pp; worst validation drop after the warm-up "
                  f"{run['worst_drop_after_warmup_pp']:.1f} pp; largest training - validation gap after it "
                  f"{run['worst_gap_after_warmup_pp']:.1f} pp.", "",
                  markdown_table(["epoch", "training accuracy (%)", "validation accuracy (%)", "wall clock (s)"],
                                 body, align="rrrr"), ""]
    return "\n".join(parts)


def plot(runs, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4))
    for run in runs:
        epochs = range(1, len(run["curve"]) + 1)
        line = left.plot(epochs, run["train_accuracy"], marker="o", label=run["label"])[0]
        left.plot(epochs, [v for _, v in run["curve"]], marker="x", linestyle="--", color=line.get_color())
        right.plot([s for s, _ in run["curve"]], [v for _, v in run["curve"]], marker="x", label=run["label"])
    left.set(xlabel="epoch", ylabel="accuracy", title="training (solid) and validation (dashed) accuracy")
    right.set(xlabel="training wall clock (s, one core)", ylabel="validation accuracy", title="validation vs time")
    for axis in (left, right):
        axis.grid(alpha=0.3)
    right.legend(fontsize=7, loc="lower right")
    fig.savefig(path, dpi=110, bbox_inches="tight")


def main(argv):
    folders = argv[1:]
    if not folders:
        raise app.UsageError("give one or more dense run folders")
    missing = [f for f in folders if not os.path.exists(os.path.join(f, "history_dense.csv"))]
    if missing:
        raise app.UsageError(f"not a dense run folder with a history (history_dense.csv): {missing}")
    runs = [read_run(f) for f in folders]
    os.makedirs(FLAGS.out, exist_ok=True)
    write_json_atomic(os.path.join(FLAGS.out, "curves.json"), runs)
    write_text_atomic(os.path.join(FLAGS.out, "report.md"), report(runs))
    plot(runs, os.path.join(FLAGS.out, "curves.png"))
    print(report(runs))


if __name__ == "__main__":
    app.run(main)
