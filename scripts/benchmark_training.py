"""How fast tf_lottery trains, as ratios measured in one run with the two sides interleaved.

Five parts (``--parts``), each printed and saved to ``benchmarks/results/training.json`` and
``training.md`` (written atomically):

* ``harness``: ``tl.train.fit`` (the tf.data pipeline, seeded shuffle and augmentation, every
  callback, the crash-safe epoch checkpoint) against a plain ``model.fit`` on the same model,
  the same arrays and the same recipe (a ``from_tensor_slices`` / ``shuffle`` /
  ``random_flip_left_right`` / ``batch`` / ``prefetch`` pipeline, no callbacks): images/s
  ratio (target >= 0.97).
* ``input``: the share of a training step spent waiting for input: one ``fit`` epoch on the
  harness's pipeline against one on a single cached batch repeated (no input work at all),
  ``1 - t(cached) / t(pipeline)`` (target <= 5 %).
* ``criteria``: each at-initialization criterion's scoring time (first call, with tracing,
  and the median of the next ones) as a share of one dense training epoch of CIFAR-10
  (50,000 images at the measured images/s of the same network) (GraSP target <= 1 % on
  ResNet-56).
* ``tickets``: dense against GraSP tickets, images/s measured against the speed-up their
  FLOPs imply, ResNet-20/32/56 at several p.
* ``mirrored``: ``--strategy=mirrored`` on the CPU split in two logical devices against one
  device, at the same global batch: a CPU split in two cannot be faster (its two halves
  share the same cores); the figure shows what the strategy costs.

Every timed epoch is ``--steps`` steps of batch ``--batch_size`` on random CIFAR-shaped
images; each side first runs an untimed epoch (tracing), then the sides alternate
``--repeats`` times so that drift of the machine hits both alike; medians are reported.

    python scripts/benchmark_training.py                       # everything (about 20 min on 2 cores)
    python scripts/benchmark_training.py --parts=criteria --repeats=5
"""

from __future__ import annotations

import dataclasses
import os
import platform
import statistics
import tempfile
import time

from absl import app, flags, logging

from tf_lottery.runtime import distribute

distribute.split_cpu(2)  # before TensorFlow starts: the mirrored part needs two logical devices

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tf_lottery as tl  # noqa: E402
from tf_lottery.config import Config  # noqa: E402
from tf_lottery.core.io import write_json_atomic, write_text_atomic  # noqa: E402
from tf_lottery.reports.tables import markdown_table  # noqa: E402

PARTS = ("harness", "input", "criteria", "tickets", "mirrored")
_PARTS = flags.DEFINE_list("parts", list(PARTS), f"Parts to run, among {', '.join(PARTS)}.")
_STEPS = flags.DEFINE_integer("steps", 40, "Training steps per timed epoch.", lower_bound=2)
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed epochs per side.", lower_bound=1)
_BATCH = flags.DEFINE_integer("batch_size", 128, "Global batch size.", lower_bound=2)
_DEPTH = flags.DEFINE_integer("depth", 20, "ResNet depth of the harness, input and mirrored parts.")
_CRITERIA_DEPTH = flags.DEFINE_integer("criteria_depth", 56, "ResNet depth of the criteria part.")
_TICKETS = flags.DEFINE_list("tickets", ["20:1,2,3", "32:1,3,5", "56:3,6,12"],
                             "tickets part: depth:p,p,... for each network.")
_EPOCH_IMAGES = flags.DEFINE_integer("epoch_images", 50_000, "criteria: images of the dense epoch (CIFAR-10).")
_OUT = flags.DEFINE_string("out", "benchmarks/results", "Output folder.")


def _data(count: int) -> tl.data.PreparedData:
    """Random CIFAR-shaped images (10 classes) prepared as a run prepares them (flip on, crop off)."""
    rng = np.random.default_rng(0)
    images = rng.random((count, 32, 32, 3), dtype=np.float32)
    labels = rng.integers(0, 10, count).astype("int64")
    empty = (images[:0], labels[:0])
    options = tl.data.DataOptions("synthetic", crop=False, flip=True)
    return tl.data.PreparedData({"train": (images, labels), "val": empty, "test": (images[:256], labels[:256])},
                                np.zeros((32, 32, 3), "float32"), options)


def _model(depth: int) -> keras.Model:
    return tl.models.cifar_resnet(depth, input_shape=(32, 32, 3), num_classes=10, seed=0, weight_decay=1e-4)


def _recipe(epochs: int) -> tl.train.Recipe:
    return tl.train.Recipe(length=f"{epochs}ep", batch_size=_BATCH.value, learning_rate=0.01, lr_drops=())


class _EpochTimer(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds = time.perf_counter() - self.start


def _fit_timed(model, dataset, steps: int) -> float:
    """Seconds of one ``fit`` epoch of ``steps`` steps (the model compiled and traced before)."""
    timer = _EpochTimer()
    model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=[timer])
    return timer.seconds


def _alternate(sides: dict) -> dict:
    """Runs each side's ``measure()`` (images/s) ``--repeats`` times, alternating; the order flips every round."""
    speeds = {name: [] for name in sides}
    names = list(sides)
    for round_ in range(_REPEATS.value):
        for name in (names if round_ % 2 == 0 else names[::-1]):
            speeds[name].append(sides[name]())
    return {name: {"images_per_second": statistics.median(values), "runs": values} for name, values in speeds.items()}


# --- parts ---------------------------------------------------------------------------------------

def harness_part() -> dict:
    """tl.train.fit against a plain model.fit on the same model, arrays and recipe."""
    data = _data(_STEPS.value * _BATCH.value)
    images, labels = data.splits["train"]
    plain_data = (tf.data.Dataset.from_tensor_slices((images, labels)).shuffle(len(labels), seed=0)
                  .map(lambda x, y: (tf.image.random_flip_left_right(x), y), num_parallel_calls=tf.data.AUTOTUNE)
                  .batch(_BATCH.value, drop_remainder=True).repeat().prefetch(tf.data.AUTOTUNE))
    folder = tempfile.mkdtemp()
    counter = iter(range(10_000))

    def harness():  # two epochs: the first traces, the second is timed (the record leaves it out)
        keras.utils.set_random_seed(0)
        fitted = tl.train.fit(_model(_DEPTH.value), data, _recipe(2), folder, f"h{next(counter)}", verbose=0)
        return fitted["timing"]["images_per_second"]

    def plain():
        keras.utils.set_random_seed(0)
        model = _model(_DEPTH.value)
        tl.train.compile_model(model, _recipe(2), _STEPS.value)
        _fit_timed(model, plain_data, _STEPS.value)  # traces
        return _STEPS.value * _BATCH.value / _fit_timed(model, plain_data, _STEPS.value)

    sides = _alternate({"tl.train.fit": harness, "model.fit": plain})
    ratio = sides["tl.train.fit"]["images_per_second"] / sides["model.fit"]["images_per_second"]
    return {"model": f"resnet{_DEPTH.value}", "sides": sides, "ratio": ratio, "target": ">= 0.97",
            "met": ratio >= 0.97}


def input_part() -> dict:
    """Share of a step spent waiting for the harness's input pipeline."""
    data = _data(_STEPS.value * _BATCH.value)
    pipeline = data.train_pipeline(_BATCH.value)
    cached = pipeline.take(1).cache().repeat()
    model = _model(_DEPTH.value)
    tl.train.compile_model(model, _recipe(1), _STEPS.value)
    for dataset in (pipeline, cached):
        _fit_timed(model, dataset, _STEPS.value)  # traces
    sides = _alternate({"pipeline": lambda: _STEPS.value * _BATCH.value / _fit_timed(model, pipeline, _STEPS.value),
                        "one cached batch": lambda: _STEPS.value * _BATCH.value / _fit_timed(model, cached,
                                                                                              _STEPS.value)})
    share = max(0.0, 1 - sides["pipeline"]["images_per_second"] / sides["one cached batch"]["images_per_second"])
    return {"model": f"resnet{_DEPTH.value}", "sides": sides, "wait_share": share, "target": "<= 5 %",
            "met": share <= 0.05}


def criteria_part() -> dict:
    """Scoring time of each at-initialization criterion against one dense CIFAR-10 epoch."""
    data = _data(_STEPS.value * _BATCH.value)
    model = _model(_CRITERIA_DEPTH.value)
    tl.train.compile_model(model, _recipe(1), _STEPS.value)
    pipeline = data.train_pipeline(_BATCH.value)
    _fit_timed(model, pipeline, _STEPS.value)  # traces
    speed = statistics.median(_STEPS.value * _BATCH.value / _fit_timed(model, pipeline, _STEPS.value)
                              for _ in range(_REPEATS.value))
    epoch_seconds = _EPOCH_IMAGES.value / speed
    batch = tl.criteria.class_balanced_batch(*data.splits["train"], per_class=10, seed=0)
    fresh = _model(_CRITERIA_DEPTH.value)  # scored at initialization, as a run scores
    results = {}
    for name in tl.criteria.names():
        criterion = tl.criteria.get(name)
        if criterion.when not in ("init", "any"):
            continue
        start = time.perf_counter()
        criterion(fresh, batch)
        first = time.perf_counter() - start
        runs = []
        for _ in range(_REPEATS.value):
            start = time.perf_counter()
            criterion(fresh, batch)
            runs.append(time.perf_counter() - start)
        steady = statistics.median(runs)
        results[name] = {"first_s": first, "median_s": steady, "runs_s": runs,
                         "first_share": first / epoch_seconds, "share": steady / epoch_seconds}
    grasp = results["grasp"]["share"]
    return {"model": f"resnet{_CRITERIA_DEPTH.value}", "examples": int(len(batch[1])),
            "dense_images_per_second": speed, "dense_epoch_seconds": epoch_seconds, "criteria": results,
            "target": "GraSP <= 1 % of a dense epoch", "met": grasp <= 0.01}


def tickets_part() -> dict:
    """Dense and GraSP tickets: images/s measured against the FLOPs-implied speed-up."""
    data = _data(_STEPS.value * _BATCH.value)
    pipeline = data.train_pipeline(_BATCH.value)
    batch = tl.criteria.class_balanced_batch(*data.splits["train"], per_class=10, seed=0)
    rows = []
    for spec in _TICKETS.value:
        depth, _, blocks = spec.partition(":")
        dense = _model(int(depth))
        for p in (int(b) for b in blocks.split(",")):
            ticket = tl.find_ticket(dense, "grasp", num_blocks=p, data=batch)
            models = {"dense": tl.surgery.remove_blocks(dense, []), "ticket": ticket.model}
            for model in models.values():
                tl.train.compile_model(model, _recipe(1), _STEPS.value)
                _fit_timed(model, pipeline, _STEPS.value)  # traces
            sides = _alternate({name: (lambda m=model: _STEPS.value * _BATCH.value / _fit_timed(m, pipeline,
                                                                                                 _STEPS.value))
                                for name, model in models.items()})
            flops = {name: tl.cost.flops(model) for name, model in models.items()}
            measured = sides["ticket"]["images_per_second"] / sides["dense"]["images_per_second"]
            rows.append({"model": dense.name, "p": p, "removed": ticket.removed, "sides": sides,
                         "flops_reduction_pct": tl.cost.reduction(flops["dense"], flops["ticket"]),
                         "measured_speedup_x": measured, "flops_implied_speedup_x": flops["dense"] / flops["ticket"]})
            print(f"{dense.name} p={p}: measured {measured:.2f}x, FLOPs imply "
                  f"{flops['dense'] / flops['ticket']:.2f}x", flush=True)
    return {"rows": rows}


def mirrored_part() -> dict:
    """Mirrored on two logical CPU devices against one device, at the same global batch."""
    data = _data(_STEPS.value * _BATCH.value)
    folder = tempfile.mkdtemp()
    counter = iter(range(10_000))
    runtimes = {"one device": Config.create().runtime,
                "mirrored, 2 logical CPUs": Config.create(strategy="mirrored", cpu_devices=2).runtime}

    def side(runtime):
        def measure():
            execution = distribute.activate(runtime)
            try:
                recipe = dataclasses.replace(_recipe(2), batch_size=_BATCH.value // execution.replicas)
                with distribute.scope():
                    keras.utils.set_random_seed(0)
                    fitted = tl.train.fit(_model(_DEPTH.value), data, recipe, folder, f"m{next(counter)}", verbose=0)
                return fitted["timing"]["images_per_second"]
            finally:
                distribute.deactivate()

        return measure

    sides = _alternate({name: side(runtime) for name, runtime in runtimes.items()})
    ratio = sides["mirrored, 2 logical CPUs"]["images_per_second"] / sides["one device"]["images_per_second"]
    return {"model": f"resnet{_DEPTH.value}", "sides": sides, "ratio": ratio}


# --- report --------------------------------------------------------------------------------------

def _markdown(results: dict) -> str:
    out = [f"# Training benchmark\n\n{results['machine']['cpus']} CPUs, {results['machine']['platform']}, "
           f"TensorFlow {tf.__version__}, Keras {keras.__version__}; {_STEPS.value} steps of batch "
           f"{_BATCH.value} per timed epoch, medians of {_REPEATS.value} interleaved epochs per side.\n"]
    ratios = []
    if "harness" in results:
        r = results["harness"]
        ratios.append(["harness (tl.train.fit) / plain model.fit, images/s", r["model"], f"{r['ratio']:.3f}",
                       r["target"], "yes" if r["met"] else "no"])
    if "input" in results:
        r = results["input"]
        ratios.append(["share of a step waiting for input", r["model"], f"{100 * r['wait_share']:.1f} %",
                       r["target"], "yes" if r["met"] else "no"])
    if "criteria" in results:
        r = results["criteria"]
        g = r["criteria"]["grasp"]
        ratios.append(["GraSP scoring / one dense CIFAR-10 epoch", r["model"],
                       f"{100 * g['share']:.2f} % ({100 * g['first_share']:.2f} % first call)", r["target"],
                       "yes" if r["met"] else "no"])
    if "mirrored" in results:
        r = results["mirrored"]
        ratios.append(["mirrored on 2 logical CPUs / one device, images/s", r["model"], f"{r['ratio']:.3f}",
                       "< 1 (overhead)", "-"])
    if ratios:
        out.append(markdown_table(["ratio", "model", "measured", "target", "met"], ratios, align="llrll"))
    if "criteria" in results:
        r = results["criteria"]
        out.append(f"\nScoring on {r['examples']} examples; one dense epoch = {_EPOCH_IMAGES.value:,} images at "
                   f"{r['dense_images_per_second']:.0f} images/s = {r['dense_epoch_seconds']:.0f} s.\n")
        out.append(markdown_table(
            ["criterion", "first call (s)", "median (s)", "share of a dense epoch", "first call's share"],
            [[name, f"{c['first_s']:.2f}", f"{c['median_s']:.2f}", f"{100 * c['share']:.2f} %",
              f"{100 * c['first_share']:.2f} %"] for name, c in r["criteria"].items()], align="lrrrr"))
    if "tickets" in results:
        out.append("\nDense against GraSP tickets (images/s, medians):\n")
        out.append(markdown_table(
            ["model", "p", "FLOPs ↓ %", "dense img/s", "ticket img/s", "measured speed-up", "FLOPs-implied"],
            [[r["model"], r["p"], f"{r['flops_reduction_pct']:.2f}", f"{r['sides']['dense']['images_per_second']:.0f}",
              f"{r['sides']['ticket']['images_per_second']:.0f}", f"{r['measured_speedup_x']:.2f}x",
              f"{r['flops_implied_speedup_x']:.2f}x"] for r in results["tickets"]["rows"]], align="lrrrrrr"))
    return "\n".join(out) + "\n"


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)  # the strategies' INFO lines drown the numbers
    unknown = sorted(set(_PARTS.value) - set(PARTS))
    if unknown:
        raise app.UsageError(f"--parts takes {', '.join(PARTS)}; got {', '.join(unknown)}")
    results = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                           "tensorflow": tf.__version__, "keras": keras.__version__},
               "steps": _STEPS.value, "repeats": _REPEATS.value, "batch_size": _BATCH.value}
    makers = {"harness": harness_part, "input": input_part, "criteria": criteria_part, "tickets": tickets_part,
              "mirrored": mirrored_part}
    for part in (p for p in PARTS if p in _PARTS.value):
        start = time.perf_counter()
        results[part] = makers[part]()
        print(f"{part}: done in {time.perf_counter() - start:.0f} s", flush=True)
    text = _markdown(results)
    print(text)
    os.makedirs(_OUT.value, exist_ok=True)
    write_json_atomic(os.path.join(_OUT.value, "training.json"), results)
    write_text_atomic(os.path.join(_OUT.value, "training.md"), text)
    print(f"saved {os.path.join(_OUT.value, 'training.json')} and training.md")


if __name__ == "__main__":
    app.run(main)
