"""Does bfloat16 train to the same accuracy as float32? The Table 2 twin's dense recipe, three seeds each.

Each seed trains the dense network of ``flags/fashion_mnist_table2_resnet32.cfg`` (ResNet-32 on
5,000 Fashion-MNIST images, 8 epochs) once with ``--precision=float32`` and once with
``--precision=bfloat16``, the two interleaved, each in a process of its own through the command line
(``--experiment=dense``), so each run's folder holds its config, history and record as any run's.
The verdict is the issue's test: bfloat16 lands within the float32 runs' seed spread (its mean lies
between the lowest and the highest float32 accuracy), and the paired differences (bfloat16 minus
float32, seed by seed) have a 95 % t interval; training speed is read from each run's own timing
(steady epochs, images/s).

    taskset -c 1 python scripts/precision_twin.py                 # about 30 min on one core
    python scripts/precision_twin.py --seeds=0 --flags=--train_size=512,--length=1ep   # a smoke run

Results: ``benchmarks/results/precision_twin/results.json`` and ``report.md`` (written atomically);
run folders under ``--runs_dir`` (a rerun finds finished runs and only reports).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys

from absl import app, flags

from tf_lottery.core.io import write_json_atomic, write_text_atomic
from tf_lottery.reports.stats import paired
from tf_lottery.reports.tables import markdown_table

PRECISIONS = ("float32", "bfloat16")
FLAGFILE = "flags/fashion_mnist_table2_resnet32.cfg"
_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds.")
_RUNS = flags.DEFINE_string("runs_dir", "/tmp/precision_twin_runs", "Folder of the run folders.")
_OUT = flags.DEFINE_string("out", "benchmarks/results/precision_twin", "Output folder.")
_EXTRA = flags.DEFINE_list("flags", [], "More tf-lottery flags for every run (a smoke run's shorter recipe).")


def _train(seed: int, precision: str) -> dict:
    """Runs (or finds) the dense run of ``seed`` in ``precision``; returns its accuracy and speed."""
    command = [os.path.join(os.path.dirname(sys.executable), "tf-lottery"), f"--flagfile={FLAGFILE}",
               "--experiment=dense", f"--seed={seed}", f"--precision={precision}", f"--runs_dir={_RUNS.value}",
               "--evals=clean", *_EXTRA.value]
    finished = subprocess.run(command, capture_output=True, text=True)
    if finished.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {finished.stderr[-2000:]}")
    folder = finished.stdout.strip().splitlines()[-1].rsplit("(", 1)[1].rstrip(")")
    record = json.load(open(os.path.join(folder, "dense.json")))
    config = json.load(open(os.path.join(folder, "config.json")))
    timing = record["train"]["timing"]
    steady = timing.get("steady_epoch_seconds") or timing["epoch_seconds"]
    steps = record["train"]["steps"] / max(1, record["train"]["epochs"])
    batch = config["training"]["batch_size"]
    return {"seed": seed, "precision": precision, "policy": config.get("execution", {}).get("precision", "float32"),
            "test_accuracy": record["test"]["accuracy"], "train_seconds": timing["train_seconds"],
            "steady_images_per_second": steps * batch / statistics.median(steady), "folder": folder}


def _summary(runs: list) -> dict:
    by = {p: [r for r in runs if r["precision"] == p] for p in PRECISIONS}
    accuracy = {p: [100 * r["test_accuracy"] for r in by[p]] for p in PRECISIONS}
    differences = [b - f for f, b in zip(accuracy["float32"], accuracy["bfloat16"])]
    low, high = min(accuracy["float32"]), max(accuracy["float32"])
    mean_bf16 = statistics.mean(accuracy["bfloat16"])
    summary = paired(differences)
    speed = {p: statistics.median(r["steady_images_per_second"] for r in by[p]) for p in PRECISIONS}
    return {"accuracy": accuracy, "mean": {p: statistics.mean(v) for p, v in accuracy.items()},
            "std": {p: (statistics.stdev(v) if len(v) > 1 else 0.0) for p, v in accuracy.items()},
            "float32_spread": [low, high], "differences_pp": differences,
            "interval_95": None if summary.low is None else [summary.low, summary.high], "verdict": summary.verdict,
            "within_spread": low <= mean_bf16 <= high, "images_per_second": speed,
            "speedup": speed["bfloat16"] / speed["float32"]}


def _report(runs: list, summary: dict) -> str:
    rows = [[r["seed"], r["precision"], r["policy"], f"{100 * r['test_accuracy']:.2f}",
             f"{r['steady_images_per_second']:.0f}", f"{r['train_seconds']:.0f}"] for r in runs]
    low, high = summary["float32_spread"]
    interval = summary["interval_95"]
    interval = "— (one seed)" if interval is None else f"[{interval[0]:+.2f}, {interval[1]:+.2f}] pp"
    verdict = ("within the float32 seed spread" if summary["within_spread"] else "outside the float32 seed spread")
    return "\n".join([
        "# bfloat16 against float32: the Table 2 twin's dense recipe", "",
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; `{FLAGFILE}` with "
        f"`--experiment=dense`, seeds {', '.join(_SEEDS.value)}" + (f", extra flags `{' '.join(_EXTRA.value)}`"
                                                                   if _EXTRA.value else "") + ".", "",
        markdown_table(["seed", "--precision", "policy", "test accuracy (%)", "steady images/s", "training (s)"],
                       rows), "",
        f"- float32: {summary['mean']['float32']:.2f} ± {summary['std']['float32']:.2f} % "
        f"(spread {low:.2f}–{high:.2f}); bfloat16: {summary['mean']['bfloat16']:.2f} ± "
        f"{summary['std']['bfloat16']:.2f} %.",
        f"- bfloat16 − float32 per seed: {' / '.join(f'{d:+.2f}' for d in summary['differences_pp'])} pp; "
        f"95 % t interval {interval} ({summary['verdict']}).",
        f"- Verdict: bfloat16's mean is **{verdict}**.",
        f"- Training speed (median of the runs' steady epochs): float32 {summary['images_per_second']['float32']:.0f}"
        f", bfloat16 {summary['images_per_second']['bfloat16']:.0f} images/s ({summary['speedup']:.2f}x).", "",
        "Reproduce: `taskset -c 1 python scripts/precision_twin.py`.", ""])


def main(argv):
    del argv
    runs = [_train(int(seed), precision) for seed in _SEEDS.value
            for precision in (PRECISIONS if int(seed) % 2 == 0 else PRECISIONS[::-1])]
    runs.sort(key=lambda r: (r["seed"], PRECISIONS.index(r["precision"])))
    summary = _summary(runs)
    os.makedirs(_OUT.value, exist_ok=True)
    write_json_atomic(os.path.join(_OUT.value, "results.json"), {"runs": runs, "summary": summary,
                                                                 "extra_flags": _EXTRA.value})
    text = _report(runs, summary)
    write_text_atomic(os.path.join(_OUT.value, "report.md"), text)
    print(text)


if __name__ == "__main__":
    app.run(main)
