"""Training throughput of a filter ticket removed physically against the same filters as tfmot masks.

A ResNet (default 32) at initialization; ``--fraction`` of its prunable filters
(block-internal channels) are picked at random (the choice does not change the cost) and
(1) removed physically (``tl.filters.remove_filters``), trained in Keras 3 like every
tf_lottery ticket, (2) masked with tfmot (``filter_masks``: kernel, bias and BatchNorm of
each filter, frozen), trained in tf_keras as tfmot requires. Each is compared with the
dense network trained by the same framework (the two frameworks' speeds differ). All train
on one random CIFAR-shaped batch with ``train_on_batch`` (SGD, batch 128; no input
pipeline, so only the model's step is timed; tf.data on a single pinned core stalled for
about 1 s per step here): one untimed warm-up epoch of ``--steps`` steps each, then timed
epochs alternating the four models ``--repeats`` times. Reported: images/s of
each model's fastest epoch (and the median), the speed-up, params, non-zero weights and
FLOPs as run, and the time of ``remove_filters``. Saved to
``benchmarks/results/baselines_<model>.json``.

    python scripts/benchmark_baselines.py --depth=32 --fraction=0.5 --steps=100 --repeats=3
    taskset -c 0 python scripts/benchmark_baselines.py --threads=1 ...   # on one core beside other work
"""

from __future__ import annotations

import os
import platform
import statistics
import time

import numpy as np
import tensorflow as tf
from absl import app, flags

import tf_lottery as tl
from tf_lottery.graph import cost
from tf_lottery.surgery import filters
from tf_lottery import training as train
from tf_lottery.core.io import write_json_atomic
from tf_lottery.legacy import convert, masked
from tf_lottery.reports.tables import markdown_table

_DEPTH = flags.DEFINE_integer("depth", 32, "ResNet depth.")
_FRACTION = flags.DEFINE_float("fraction", 0.5, "Share of the prunable filters removed or masked.")
_STEPS = flags.DEFINE_integer("steps", 100, "Training steps per timed epoch.", lower_bound=1)
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed epochs per model.", lower_bound=1)
_BATCH = flags.DEFINE_integer("batch_size", 128, "Batch size.")
_THREADS = flags.DEFINE_integer("threads", 0, "TensorFlow intra- and inter-op threads (0: its default). Set it to "
                                "the cores the process may use when pinned with taskset.", lower_bound=0)
_OUT = flags.DEFINE_string("out", "benchmarks/results", "Output folder.")


def _batch():
    rng = np.random.default_rng(0)
    return (rng.standard_normal((_BATCH.value, 32, 32, 3)).astype("float32"),
            rng.integers(0, 10, _BATCH.value))


def _keras3_trainer(model, batch):
    train.compile_model(model, train.Recipe(batch_size=_BATCH.value, lr_drops=()), _STEPS.value)

    def epoch():
        start = time.perf_counter()
        for _ in range(_STEPS.value):
            model.train_on_batch(*batch)
        return time.perf_counter() - start

    return epoch


def _tf_keras_trainer(model, batch, masks=None):
    """tf_keras training of ``model``'s twin: wrapped with tfmot's frozen masks when ``masks`` are given."""
    import tf_keras
    from tensorflow_model_optimization.sparsity.keras import UpdatePruningStep

    twin = convert.to_tf_keras(model, prunable=list(masks or ()))
    if masks:
        twin = masked.wrap(twin, masks)
    twin.compile(optimizer=tf_keras.optimizers.SGD(0.01, momentum=0.9, nesterov=True),
                 loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    step = UpdatePruningStep()  # what fit would call: advances tfmot's step counter before each batch
    step.set_model(twin)
    step.on_train_begin()

    def epoch():
        start = time.perf_counter()
        for i in range(_STEPS.value):
            if masks:
                step.on_train_batch_begin(i)
            twin.train_on_batch(*batch)
        return time.perf_counter() - start

    return epoch


def main(argv):
    del argv
    if _THREADS.value:
        tf.config.threading.set_intra_op_parallelism_threads(_THREADS.value)
        tf.config.threading.set_inter_op_parallelism_threads(_THREADS.value)
    dense = tl.models.cifar_resnet(_DEPTH.value, seed=0)
    count = round(_FRACTION.value * filters.count_prunable(dense))
    names = filters.select_filters(dense, tl.criteria.filter_scores(dense, "random", seed=0), count)
    start = time.perf_counter()
    physical = filters.remove_filters(dense, names)
    surgery_seconds = time.perf_counter() - start
    masks = filters.filter_masks(dense, names)
    masked_model = masked.masked_copy(dense, masks)
    batch = _batch()
    # Keras 3 and tf_keras train at different speeds on some CPUs: each ticket is compared with the dense
    # network trained by the same framework.
    epochs = {"dense (Keras 3)": _keras3_trainer(dense, batch),
              "filters removed (Keras 3)": _keras3_trainer(physical, batch),
              "dense (tf_keras)": _tf_keras_trainer(dense, batch),
              "filters as tfmot masks (tf_keras)": _tf_keras_trainer(masked_model, batch, masks)}
    for epoch in epochs.values():
        epoch()  # warm-up: tracing and allocation
    seconds = {name: [] for name in epochs}
    for _ in range(_REPEATS.value):
        for name, epoch in epochs.items():
            seconds[name].append(epoch())
    images = _STEPS.value * _BATCH.value
    # The fastest epoch of each, and the median: on a shared machine an epoch can be slowed by other work.
    rates = {name: images / min(values) for name, values in seconds.items()}
    medians = {name: statistics.median(images / s for s in values) for name, values in seconds.items()}
    sizes = {"dense (Keras 3)": (dense, "dense (Keras 3)"), "filters removed (Keras 3)": (physical, "dense (Keras 3)"),
             "dense (tf_keras)": (dense, "dense (tf_keras)"),
             "filters as tfmot masks (tf_keras)": (masked_model, "dense (tf_keras)")}
    rows, results = [], {}
    for name, (model, baseline) in sizes.items():
        nonzero = int(sum(np.count_nonzero(w) for w in model.get_weights()))
        speedup = rates[name] / rates[baseline]
        results[name] = {"images_per_second": rates[name], "median_images_per_second": medians[name],
                         "speedup_x": speedup, "speedup_over": baseline,
                         "params": int(model.count_params()), "nonzero_params": nonzero,
                         "flops": cost.flops(model), "epoch_seconds": seconds[name]}
        rows.append([name, f"{rates[name]:,.0f}", f"{speedup:.2f}x", f"{model.count_params():,}", f"{nonzero:,}",
                     f"{cost.flops(model):,}"])
    table = markdown_table(["model", "train images/s (best epoch)", "speed-up over the same framework's dense",
                            "params", "non-zero weights", "FLOPs (as run)"], rows, align="lrrrrr")
    print(f"resnet{_DEPTH.value}, {count} of {filters.count_prunable(dense)} prunable filters; "
          f"remove_filters took {surgery_seconds:.2f} s\n{table}")
    payload = {"model": f"resnet{_DEPTH.value}", "filters_removed": count, "remove_filters_seconds": surgery_seconds,
               "steps": _STEPS.value, "repeats": _REPEATS.value, "batch_size": _BATCH.value,
               "threads": _THREADS.value or "tensorflow default",
               "machine": {"cpus": os.cpu_count(), "platform": platform.platform()}, "results": results}
    os.makedirs(_OUT.value, exist_ok=True)
    write_json_atomic(os.path.join(_OUT.value, f"baselines_resnet{_DEPTH.value}.json"), payload)


if __name__ == "__main__":
    app.run(main)
