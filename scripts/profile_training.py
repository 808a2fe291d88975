"""Where a training step's time goes: TensorFlow's profiler on CIFAR ResNets, and the knobs that could move it.

Two parts (``--parts``), printed and saved to ``benchmarks/results/profile/results.json`` and ``report.md``:

* ``trace``: ``--steps`` training steps of the model every run trains (``tl.train.compile_model``, batch
  128 of random 32x32x3 images held in memory) under ``tf.profiler``, in each ``--precisions``, with
  Keras' own batch norm (``keras``) and with the fused kernel ``tl.train.fit`` trains with
  (``harness``: ``keras_patches.fused_batch_norm``). The
  trace's host plane is read back (``xplane.pb``) and every kernel's time on TensorFlow's compute
  threads is summed by kind: conv forward, conv gradient to the input, conv gradient to the kernel,
  batch norm (forward and backward: every op under a ``*_bn*`` layer), the optimizer's update, the rest
  (ReLU, Add, pooling, the classifier, the loss, the metrics, casts). Busy share = kernel time /
  (compute threads x wall time): what is left is the framework between kernels (Python, the executor,
  waiting on one another).
* ``knobs``: images/s of ``model.fit`` under each setting, each in a fresh process (threads are fixed
  when TensorFlow starts): the defaults; one thread between ops; one thread inside ops; 8 steps per
  execution; oneDNN off (``TF_ENABLE_ONEDNN_OPTS=0``); XLA (``jit_compile=True``).

    python scripts/profile_training.py                  # about 10 min on 2 cores; keep the machine otherwise idle
    python scripts/profile_training.py --parts=trace --depths=20 --steps=5 --out=/tmp/profile   # a smoke run
"""

from __future__ import annotations

import collections
import contextlib
import glob
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from absl import app, flags

_PARTS = flags.DEFINE_list("parts", ["trace", "knobs"], "Parts to run: trace, knobs.")
_DEPTHS = flags.DEFINE_list("depths", ["20", "56"], "CIFAR ResNet depths.")
_PRECISIONS = flags.DEFINE_list("precisions", ["float32", "bfloat16"], "--precision values to trace.")
_STEPS = flags.DEFINE_integer("steps", 20, "Steps traced, or timed per knob measurement.", lower_bound=2)
_REPEATS = flags.DEFINE_integer("repeats", 3, "knobs: timed measurements per setting (median).", lower_bound=1)
_BATCH = flags.DEFINE_integer("batch_size", 128, "Batch size.", lower_bound=2)
_OUT = flags.DEFINE_string("out", "benchmarks/results/profile", "Output folder.")
_KNOB = flags.DEFINE_string("knob", None, "Internal: measure one knob in this process and print its JSON.")

KNOBS = {  # name: (environment, intra-op threads, inter-op threads, steps per execution, jit_compile)
    "defaults": ({}, None, None, 1, False),
    "one thread between ops": ({}, None, 1, 1, False),
    "one thread inside ops": ({}, 1, None, 1, False),
    "8 steps per execution": ({}, None, None, 8, False),
    "oneDNN off": ({"TF_ENABLE_ONEDNN_OPTS": "0"}, None, None, 1, False),
    "XLA": ({}, None, None, 1, True),
}
KINDS = ("conv forward", "conv grad input", "conv grad kernel", "batch norm", "optimizer", "rest")
_BN = re.compile(r"_bn\d*(_\d+)?/")
# Scheduling and bookkeeping events of the compute threads, not kernels.
_NOT_KERNELS = ("ThreadpoolListener", "ExecutorState", "MemoryAllocation", "MemoryDeallocation")


def kind_of(name: str) -> str:
    """The kind of a kernel event ``scope/.../op:OpType`` of the trace."""
    scope, _, op_type = name.rpartition(":")
    if "Conv2DBackpropInput" in op_type:
        return "conv grad input"
    if "Conv2DBackpropFilter" in op_type:
        return "conv grad kernel"
    if _BN.search(scope + "/"):
        return "batch norm"
    if "Conv2D" in op_type:
        return "conv forward"
    if "ResourceApply" in op_type or "/sgd/" in scope.lower() or "AssignVariable" in op_type:
        return "optimizer"
    return "rest"


def _model(depth, precision):
    import keras

    import tf_lottery as tl
    from tf_lottery.config import Config
    from tf_lottery.runtime import distribute

    distribute.activate(Config.create(precision=precision).runtime)
    keras.utils.set_random_seed(0)
    return tl.models.build(Config.create(depth=depth).model, _Shape(), seed=0, weight_decay=1e-4)


class _Shape:
    """What a model builder reads of prepared data: CIFAR's input shape and classes."""
    input_shape, num_classes = (32, 32, 3), 10


def _dataset(batch):
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    images = rng.random((batch, 32, 32, 3), dtype=np.float32)
    labels = rng.integers(0, 10, batch).astype("int64")
    return tf.data.Dataset.from_tensors((images, labels)).repeat().prefetch(2)


def trace_one(depth: int, precision: str, path: str) -> dict:
    """Kernel time by kind over ``--steps`` traced steps of ResNet-``depth`` in ``precision`` on ``path``
    ("keras": Keras' batch norm; "harness": the fused kernel of ``tl.train.fit``)."""
    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    import tf_lottery as tl
    from tf_lottery.runtime import distribute, keras_patches

    model = _model(depth, precision)
    steps = _STEPS.value
    tl.train.compile_model(model, tl.train.Recipe(length="1ep", batch_size=_BATCH.value, lr_drops=()), steps)
    dataset = _dataset(_BATCH.value)
    with keras_patches.fused_batch_norm(model) if path == "harness" else contextlib.nullcontext():
        model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0)  # traces (the step keeps its batch norm)
    folder = tempfile.mkdtemp(prefix="profile_")
    start = time.perf_counter()
    tf.profiler.experimental.start(folder)
    model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0)
    tf.profiler.experimental.stop()
    traced_wall = time.perf_counter() - start
    untraced = time.perf_counter()
    model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0)
    wall = time.perf_counter() - untraced
    distribute.deactivate()
    space = xplane_pb2.XSpace()
    with open(sorted(glob.glob(os.path.join(folder, "**", "*.xplane.pb"), recursive=True))[-1], "rb") as handle:
        space.ParseFromString(handle.read())
    shutil.rmtree(folder, ignore_errors=True)
    host = next(plane for plane in space.planes if plane.name == "/host:CPU")
    by_kind, by_op = collections.Counter(), collections.Counter()
    threads = 0
    for line in host.lines:
        if not line.name.startswith("tf_Compute"):
            continue
        threads += 1
        for event in line.events:
            name = host.event_metadata[event.metadata_id].name
            if name.startswith(_NOT_KERNELS):
                continue
            seconds = event.duration_ps / 1e12
            by_kind[kind_of(name)] += seconds
            by_op[name.rpartition(":")[2]] += seconds
    kernel = sum(by_kind.values())
    return {"depth": depth, "precision": precision, "path": path, "steps": steps, "wall_seconds": wall,
            "traced_wall_seconds": traced_wall, "images_per_second": steps * _BATCH.value / wall,
            "compute_threads": threads, "kernel_seconds": kernel,
            "busy_share": kernel / (max(1, threads) * traced_wall),
            "by_kind_share": {k: by_kind[k] / kernel for k in KINDS},
            "top_ops_seconds": dict(by_op.most_common(12))}


def measure_knob(name: str) -> dict:
    """images/s of ``model.fit`` under knob ``name`` (run in a fresh process: threads are fixed at start)."""
    import tensorflow as tf

    import tf_lottery as tl

    _, intra, inter, per_execution, jit = KNOBS[name]
    if intra:
        tf.config.threading.set_intra_op_parallelism_threads(intra)
    if inter:
        tf.config.threading.set_inter_op_parallelism_threads(inter)
    found = {}
    for depth in map(int, _DEPTHS.value):
        model = _model(depth, "float32")
        recipe = tl.train.Recipe(length="1ep", batch_size=_BATCH.value, lr_drops=())
        model.compile(optimizer=recipe.make_optimizer(_STEPS.value), loss=model_loss(),
                      weighted_metrics=["accuracy"], steps_per_execution=per_execution, jit_compile=jit)
        dataset = _dataset(_BATCH.value)
        model.fit(dataset, epochs=1, steps_per_epoch=_STEPS.value, verbose=0)
        speeds = []
        for _ in range(_REPEATS.value):
            start = time.perf_counter()
            model.fit(dataset, epochs=1, steps_per_epoch=_STEPS.value, verbose=0)
            speeds.append(_STEPS.value * _BATCH.value / (time.perf_counter() - start))
        found[f"resnet{depth}"] = statistics.median(speeds)
    return found


def model_loss():
    import keras

    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def knobs_part() -> dict:
    found = {}
    for name, (environment, *_) in KNOBS.items():
        command = [sys.executable, __file__, f"--knob={name}", f"--depths={','.join(_DEPTHS.value)}",
                   f"--steps={_STEPS.value}", f"--repeats={_REPEATS.value}", f"--batch_size={_BATCH.value}"]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **environment}
        finished = subprocess.run(command, capture_output=True, text=True, env=env)
        if finished.returncode != 0:
            raise RuntimeError(f"knob {name!r} failed: {finished.stderr[-2000:]}")
        found[name] = json.loads(finished.stdout.strip().splitlines()[-1])
    return found


def _markdown(results: dict) -> str:
    lines = ["# Where a training step's time goes", "",
             f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; batch {_BATCH.value}, "
             f"{_STEPS.value} steps; `python scripts/profile_training.py`.", ""]
    if "trace" in results:
        lines += ["## Kernel time by kind (share of all kernel time on TensorFlow's compute threads)", "",
                  "| model | precision | batch norm | images/s | busy share | " + " | ".join(KINDS) + " |",
                  "|:--|:--|:--|--:|--:|" + "--:|" * len(KINDS)]
        for row in results["trace"]:
            norm = "fused (tl.train.fit)" if row["path"] == "harness" else "Keras"
            lines.append(f"| resnet{row['depth']} | {row['precision']} | {norm} | {row['images_per_second']:.0f} | "
                         f"{100 * row['busy_share']:.0f} % | "
                         + " | ".join(f"{100 * row['by_kind_share'][k]:.1f} %" for k in KINDS) + " |")
        lines += ["", "Busy share: kernel time / (compute threads x the traced wall time); the rest is the "
                  "framework between kernels and threads waiting on each other.", ""]
    if "knobs" in results:
        depths = list(next(iter(results["knobs"].values())))
        base = results["knobs"]["defaults"]
        lines += ["## Knobs (`model.fit`, float32, images/s and ratio to the defaults)", "",
                  "| setting | " + " | ".join(depths) + " |", "|:--|" + "--:|" * len(depths)]
        for name, row in results["knobs"].items():
            lines.append(f"| {name} | " + " | ".join(f"{row[d]:.0f} ({row[d] / base[d]:.2f}x)" for d in depths)
                         + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv):
    del argv
    if _KNOB.value:
        print(json.dumps(measure_knob(_KNOB.value)))
        return
    from tf_lottery.core.io import write_json_atomic, write_text_atomic

    results = {}
    if "trace" in _PARTS.value:
        results["trace"] = [trace_one(int(d), p, path) for d in _DEPTHS.value for p in _PRECISIONS.value
                            for path in ("keras", "harness")]
    if "knobs" in _PARTS.value:
        results["knobs"] = knobs_part()
    os.makedirs(_OUT.value, exist_ok=True)
    write_json_atomic(os.path.join(_OUT.value, "results.json"), results)
    text = _markdown(results)
    write_text_atomic(os.path.join(_OUT.value, "report.md"), text)
    print(text)


if __name__ == "__main__":
    app.run(main)
