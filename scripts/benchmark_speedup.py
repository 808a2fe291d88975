"""Measured training speed-up of layer tickets against the share of FLOPs they remove.

For each p, GraSP picks p blocks of an untrained ResNet (on a class-balanced random
batch), and dense and ticket train on the same random CIFAR-shaped data with the same
recipe (SGD, batch 128). Each model first trains one untimed warm-up epoch of
``--steps`` steps (tracing, allocation); then the timed epochs alternate dense, ticket,
dense, ticket ... ``--repeats`` times, so drift of the machine hits both alike. Reported:
median images/s of each model, the measured speed-up, and the speed-up FLOPs would
imply (dense FLOPs / ticket FLOPs). Saved to ``benchmarks/results/speedup_<model>.json``.

    python scripts/benchmark_speedup.py --depth=56 --num_blocks=12 --steps=200 --repeats=2
"""

from __future__ import annotations

import os
import platform
import statistics
import time

import keras
import numpy as np
import tensorflow as tf
from absl import app, flags

import tf_lottery as tl
from tf_lottery import training as train
from tf_lottery.core.io import write_json_atomic
from tf_lottery.reports.tables import markdown_table

_DEPTH = flags.DEFINE_integer("depth", 56, "ResNet depth.")
_BLOCKS = flags.DEFINE_list("num_blocks", ["12"], "Values of p to measure.")
_STEPS = flags.DEFINE_integer("steps", 200, "Training steps per timed epoch.", lower_bound=1)
_REPEATS = flags.DEFINE_integer("repeats", 2, "Timed epochs per model.", lower_bound=1)
_BATCH = flags.DEFINE_integer("batch_size", 128, "Batch size.")
_OUT = flags.DEFINE_string("out", "benchmarks/results", "Output folder.")


class _EpochTimer(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds = time.perf_counter() - self.start


def _prepare(model, dataset):
    train.compile_model(model, train.Recipe(batch_size=_BATCH.value), _STEPS.value)
    timer = _EpochTimer()
    model.fit(dataset, epochs=1, steps_per_epoch=_STEPS.value, verbose=0, callbacks=[timer])  # warm-up
    return timer


def _timed_epoch(model, dataset, timer):
    model.fit(dataset, epochs=1, steps_per_epoch=_STEPS.value, verbose=0, callbacks=[timer])
    return _STEPS.value * _BATCH.value / timer.seconds


def main(argv):
    del argv
    rng = np.random.default_rng(0)
    images = rng.standard_normal((2048, 32, 32, 3)).astype("float32")
    labels = rng.integers(0, 10, 2048)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).repeat().batch(_BATCH.value).prefetch(2)
    dense = tl.models.cifar_resnet(_DEPTH.value, seed=0)
    batch = tl.criteria.class_balanced_batch(images, labels, per_class=10)
    rows, results = [], {}
    for p in (int(v) for v in _BLOCKS.value):
        ticket = tl.find_ticket(dense, "grasp", num_blocks=p, data=batch)
        models = {"dense": tl.surgery.remove_blocks(dense, []), "ticket": ticket.model}
        timers = {name: _prepare(model, dataset) for name, model in models.items()}
        speeds = {name: [] for name in models}
        for _ in range(_REPEATS.value):
            for name, model in models.items():
                speeds[name].append(_timed_epoch(model, dataset, timers[name]))
        dense_ips, ticket_ips = (statistics.median(speeds[n]) for n in ("dense", "ticket"))
        dense_flops, ticket_flops = tl.cost.flops(models["dense"]), tl.cost.flops(ticket.model)
        results[str(p)] = {
            "removed": ticket.removed, "images_per_second": speeds,
            "measured_speedup_x": ticket_ips / dense_ips,
            "flops_reduction_pct": tl.cost.reduction(dense_flops, ticket_flops),
            "flops_implied_speedup_x": dense_flops / ticket_flops,
            "params_reduction_pct": tl.cost.reduction(models["dense"].count_params(), ticket.model.count_params()),
        }
        r = results[str(p)]
        rows.append([p, f"{r['flops_reduction_pct']:.2f}", f"{dense_ips:.0f}", f"{ticket_ips:.0f}",
                     f"{r['measured_speedup_x']:.2f}x", f"{r['flops_implied_speedup_x']:.2f}x"])
        print(f"p={p}: dense {speeds['dense']} ticket {speeds['ticket']} img/s", flush=True)
    table = markdown_table(["p", "FLOPs ↓ %", "dense img/s", "ticket img/s", "measured speed-up", "FLOPs-implied"],
                           rows, align="rrrrrr")
    print(table)
    path = os.path.join(_OUT.value, f"speedup_{dense.name}.json")
    write_json_atomic(path, {"model": dense.name, "steps": _STEPS.value, "repeats": _REPEATS.value,
                             "batch_size": _BATCH.value, "machine": {"cpus": os.cpu_count(),
                             "platform": platform.platform()}, "results": results, "table": table})
    print(f"saved {path}")


if __name__ == "__main__":
    app.run(main)
