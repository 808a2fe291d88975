"""Measures what ``--deterministic`` costs: training throughput with and without it.

Trains the dense ResNet of the quick demo's setup (Fashion-MNIST, ResNet-20) for a short
schedule twice in each mode, each in its own process (the thread setting is per
process), and reads the images/s each run recorded; it also checks that the two
deterministic runs ended with bit-identical weights. Saves
``benchmarks/results/deterministic.json`` (atomically) and prints a table.

    python scripts/benchmark_deterministic.py --train_size=6000 --length=2ep
"""

from __future__ import annotations

import glob
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile

import h5py
import numpy as np
from absl import app, flags

from tf_lottery.core.io import write_json_atomic
from tf_lottery.reports.tables import markdown_table

_TRAIN_SIZE = flags.DEFINE_integer("train_size", 6000, "Training images.")
_LENGTH = flags.DEFINE_string("length", "2ep", "Training length.")
_DATASET = flags.DEFINE_string("dataset", "fashion_mnist", "Dataset.")
_REPEATS = flags.DEFINE_integer("repeats", 2, "Runs per mode.", lower_bound=2)
_OUT = flags.DEFINE_string("out", "benchmarks/results", "Output folder.")


def _weights(path: str) -> dict:
    found = {}
    with h5py.File(path) as handle:
        handle.visititems(lambda k, v: found.__setitem__(k, v[()]) if isinstance(v, h5py.Dataset) else None)
    return found


def _run(deterministic: bool, runs_dir: str) -> dict:
    command = [sys.executable, "-m", "tf_lottery.cli", "--experiment=dense", f"--dataset={_DATASET.value}",
               f"--train_size={_TRAIN_SIZE.value}", f"--length={_LENGTH.value}", "--lr_drops=", "--noexport",
               "--latency_batch_sizes=1", "--evals=clean", f"--runs_dir={runs_dir}",
               "--deterministic" if deterministic else "--nodeterministic"]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-2000:])
    (folder,) = glob.glob(os.path.join(runs_dir, "dense-*"))
    record = json.load(open(os.path.join(folder, "dense.json")))
    return {"images_per_second": record["train"]["timing"]["images_per_second"],
            "train_seconds": record["train"]["timing"]["train_seconds"],
            "test_accuracy": record["test"]["accuracy"],
            "weights": os.path.join(folder, "dense_final.weights.h5")}


def main(argv):
    del argv
    with tempfile.TemporaryDirectory() as scratch:
        runs = {mode: [_run(mode == "deterministic", os.path.join(scratch, f"{mode}{i}"))
                       for i in range(_REPEATS.value)] for mode in ("default", "deterministic")}
        identical = {}
        for mode, done in runs.items():
            first, second = _weights(done[0]["weights"]), _weights(done[1]["weights"])
            identical[mode] = all(np.array_equal(first[k], second[k]) for k in first)
    rows, results = [], {}
    for mode, done in runs.items():
        speed = statistics.median(r["images_per_second"] for r in done)
        accuracies = [100 * r["test_accuracy"] for r in done]
        results[mode] = {"images_per_second": [r["images_per_second"] for r in done],
                         "test_accuracy_pct": accuracies, "bit_identical_weights": identical[mode]}
        rows.append([mode, f"{speed:,.0f}", " / ".join(f"{a:.2f}" for a in accuracies),
                     "yes" if identical[mode] else "no"])
    slowdown = (statistics.median(results["default"]["images_per_second"])
                / statistics.median(results["deterministic"]["images_per_second"]))
    payload = {"setup": {"dataset": _DATASET.value, "train_size": _TRAIN_SIZE.value, "length": _LENGTH.value,
                         "model": "cifar_resnet depth 20"},
               "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
               "results": results, "slowdown_x": slowdown}
    path = os.path.join(_OUT.value, "deterministic.json")
    write_json_atomic(path, payload)
    print(markdown_table(["mode", "train images/s (median)", "test accuracy (%) per run", "same weights"], rows,
                         align="lrrl"))
    print(f"--deterministic costs {slowdown:.2f}x in training throughput here; saved {path}")


if __name__ == "__main__":
    app.run(main)
