"""tf_lottery's training and inference speed against PyTorch on the same CPU, the sides interleaved.

Training (``--parts=train``): CIFAR ResNet-20 and ResNet-56 (He et al. 2016; the paper's template:
3x3 convs with bias, batch norm, 1x1 projection shortcuts, global pooling, a dense classifier), batch
128 of random 32x32x3 images, SGD with Nesterov momentum 0.9 and an L2 of 1e-4 on every conv kernel
(PyTorch: weight decay 2e-4 on the same tensors, the gradient of that L2). Sides:

* ``keras_fit/float32``, ``keras_fit/bfloat16``: a plain ``model.fit`` on one in-memory batch repeated;
* ``harness/float32``, ``harness/bfloat16``: ``tl.train.fit``, the path every run takes (the tf.data
  pipeline with its seeded shuffle and flips, every callback, the crash-safe epoch checkpoint), under
  ``--precision`` (``distribute.activate``, float32 head and loss);
* ``torch/float32``: PyTorch channels_last; ``torch/bfloat16``: ``torch.autocast(bfloat16)`` plus
  channels_last (on one in-memory batch, no augmentation).

Each side lives in a process of its own (its own threads and dtype policy; TensorFlow and PyTorch
never share one), started afresh every round: on this 2-core machine a TensorFlow process now and then
starts in a mode where it keeps one core idle and trains at half speed for its whole life (seen with
plain ``model.fit`` as with the harness, with or without a thread setting), so one process per side
would tie all its measurements to one draw. The coordinator asks the sides in turn, the order
reversed every round, ``--repeats`` rounds, and reports medians (and every value). A timed measurement is ``--steps`` steps after an untimed
warm-up epoch (tracing). The parameter counts and multiply-accumulates of the two models are checked
equal before anything is timed.

Peak (``fraction of peak``): the CPU's *measured* matrix-multiply peak: the best of 5
``torch.mm`` of two 2048x2048 matrices (float32, and bfloat16), on every core; training FLOPs per
image = 3 x 2 x the forward multiply-accumulates (``tl.cost.flops``; the backward pass costs about
twice the forward).

Latency (``--parts=latency``): float32 inference at batch 1 and 128, median over calls after a
warm-up: Keras ``model(x)`` in a ``tf.function`` and ``predict_on_batch``, the exported SavedModel's
``serving_default`` signature, a ``.keras`` file loaded back, the exported ``model.tflite``
(``tf.lite.Interpreter``, every core), and PyTorch (``eval``, ``inference_mode``, channels_last).

    pip install -e ".[bench]"                         # torch==2.13.0, the CPU wheel; never imported by tf_lottery
    python scripts/benchmark_frameworks.py            # about 30 min on 2 cores; keep the machine otherwise idle
    python scripts/benchmark_frameworks.py --depths=20 --repeats=1 --steps=4 --out=/tmp/bench   # a smoke run

Results: ``benchmarks/results/frameworks/results.json`` and ``report.md`` (written atomically).
"""

from __future__ import annotations

import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback

from absl import app, flags

_PARTS = flags.DEFINE_list("parts", ["train", "latency"], "Parts to run: train, latency.")
_DEPTHS = flags.DEFINE_list("depths", ["20", "56"], "CIFAR ResNet depths.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed measurements per side (medians reported).", lower_bound=1)
_STEPS = flags.DEFINE_integer("steps", 30, "Training steps per timed measurement.", lower_bound=2)
_BATCH = flags.DEFINE_integer("batch_size", 128, "Training batch size.", lower_bound=2)
_LATENCY_BATCHES = flags.DEFINE_list("latency_batches", ["1", "128"], "Inference batch sizes.")
_CALLS = flags.DEFINE_integer("calls", 100, "Timed inference calls per measurement (batch 1; fewer for larger "
                              "batches, at least 10).", lower_bound=5)
_OUT = flags.DEFINE_string("out", "benchmarks/results/frameworks", "Output folder.")

TRAIN_SIDES = ("keras_fit/float32", "keras_fit/bfloat16", "harness/float32", "harness/bfloat16", "torch/float32",
               "torch/bfloat16")
KERAS_LATENCY = ("keras_call", "predict_on_batch", "savedmodel", "keras_file", "tflite")
TARGETS = {"harness/float32": ("torch/float32", 1.0), "harness/bfloat16": ("torch/bfloat16", 0.8)}
LATENCY_TARGET = 1.2


# --- the sides, each in its own process ----------------------------------------------------------------
# The frameworks are imported inside the worker processes only: the coordinator imports neither, and a
# TensorFlow worker never loads PyTorch (nor the reverse).

class KerasSide:
    """A Keras side: ``kind`` "keras_fit" or "harness", in ``precision`` ("float32" or "bfloat16")."""

    def __init__(self, kind: str, precision: str, batch: int):
        import keras
        import numpy as np

        import tf_lottery as tl
        from tf_lottery.config import Config
        from tf_lottery.runtime import distribute

        self.keras, self.np, self.tl, self.Config = keras, np, tl, Config
        self.kind, self.precision, self.batch = kind, precision, batch
        distribute.activate(Config.create(precision=precision).runtime)
        self.policy = distribute.current().precision
        rng = np.random.default_rng(0)
        images = rng.random((4 * batch, 32, 32, 3), dtype=np.float32)
        labels = rng.integers(0, 10, 4 * batch).astype("int64")
        options = tl.data.DataOptions("synthetic", crop=False, flip=True)
        self.data = tl.data.PreparedData({"train": (images, labels), "val": (images[:0], labels[:0]),
                                          "test": (images[:256], labels[:256])},
                                         np.zeros((32, 32, 3), "float32"), options)
        self.workdir = tempfile.mkdtemp(prefix="bench_frameworks_")
        self.models, self.runs = {}, 0

    def model(self, depth: int):
        config = self.Config.create(dataset="synthetic", depth=depth, weight_decay=1e-4)
        self.keras.utils.set_random_seed(0)
        return self.tl.experiments.preparing.dense_model(config, self.data)

    def info(self, depth: int) -> dict:
        model = self.model(depth)
        trainable = sum(int(self.np.prod(w.shape)) for w in model.trainable_weights)
        return {"params": int(model.count_params()), "trainable": trainable,
                "macs": int(self.tl.cost.flops(model)), "policy": self.policy}

    def recipe(self, epochs: int, steps: int):
        return self.tl.train.Recipe(length=f"{epochs}ep", batch_size=self.batch, learning_rate=0.01, lr_drops=())

    def _epoch_of(self, steps: int):
        """The random images as prepared data whose training split is ``steps`` batches."""
        images, labels = self.data.splits["train"]
        reps = -(-steps * self.batch // len(labels))
        train = (self.np.concatenate([images] * reps)[:steps * self.batch],
                 self.np.concatenate([labels] * reps)[:steps * self.batch])
        return self.tl.data.PreparedData({**self.data.splits, "train": train}, self.data.mean, self.data.options)

    def train(self, depth: int, steps: int) -> float:
        """Images/s of ``steps`` training steps, after a warm-up that traces."""
        if self.kind == "harness":  # two epochs of ``steps``: the record leaves the first (tracing) out
            self.runs += 1
            fitted = self.tl.train.fit(self.model(depth), self._epoch_of(steps), self.recipe(2, steps),
                                       self.workdir, f"run{self.runs}", verbose=0)
            return fitted["timing"]["images_per_second"]
        import tensorflow as tf

        if depth not in self.models:
            model = self.model(depth)
            self.tl.train.compile_model(model, self.recipe(1, steps), steps)
            images, labels = self.data.arrays("train", self.batch)
            dataset = tf.data.Dataset.from_tensors((images, labels)).repeat().prefetch(2)
            model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0)  # traces
            self.models[depth] = (model, dataset)
        model, dataset = self.models[depth]
        start = time.perf_counter()
        model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0)
        return steps * self.batch / (time.perf_counter() - start)

    def latency(self, depth: int, batches: list, calls: int) -> dict:
        """Milliseconds per call of each float32 inference path at each batch size."""
        import tensorflow as tf

        model = self.model(depth)
        folder = os.path.join(self.workdir, f"export{depth}")
        self.tl.export.save_model(model, folder, tflite=True, overwrite=True)
        signature = tf.saved_model.load(os.path.join(folder, "saved_model")).signatures["serving_default"]
        reloaded = self.keras.models.load_model(os.path.join(folder, "model.keras"))
        call = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
        found = {}
        for batch in batches:
            images = self.np.random.default_rng(1).random((batch, 32, 32, 3), dtype=self.np.float32)
            tensor = tf.constant(images)
            interpreter = tf.lite.Interpreter(os.path.join(folder, "model.tflite"), num_threads=os.cpu_count())
            interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], images.shape)
            interpreter.allocate_tensors()

            def tflite():
                interpreter.set_tensor(interpreter.get_input_details()[0]["index"], images)
                interpreter.invoke()
                return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])

            paths = {"keras_call": lambda: call(tensor).numpy(),
                     "predict_on_batch": lambda: model.predict_on_batch(images),
                     "savedmodel": lambda: signature(image=tensor)["logits"].numpy(),
                     "keras_file": lambda: reloaded.predict_on_batch(images),
                     "tflite": tflite}
            found[str(batch)] = {name: _median_ms(paths[name], _calls_for(batch, calls)) for name in KERAS_LATENCY}
        return found


class TorchSide:
    """A PyTorch side in ``precision`` ("float32": channels_last; "bfloat16": autocast plus channels_last)."""

    def __init__(self, precision: str, batch: int):
        import torch

        self.torch, self.precision, self.batch = torch, precision, batch
        torch.manual_seed(0)
        generator = torch.Generator().manual_seed(0)
        self.images = torch.rand((batch, 3, 32, 32), generator=generator).contiguous(
            memory_format=torch.channels_last)
        self.labels = torch.randint(0, 10, (batch,), generator=generator)
        self.models = {}

    def model(self, depth: int):
        return torch_resnet(self.torch, depth).to(memory_format=self.torch.channels_last)

    def info(self, depth: int) -> dict:
        model = self.model(depth)
        trainable = sum(p.numel() for p in model.parameters())
        buffers = sum(b.numel() for name, b in model.named_buffers() if not name.endswith("num_batches_tracked"))
        return {"params": trainable + buffers, "trainable": trainable, "macs": torch_macs(self.torch, model),
                "threads": self.torch.get_num_threads()}

    def _step(self, model, optimizer):
        torch = self.torch
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.precision == "bfloat16"):
            loss = torch.nn.functional.cross_entropy(model(self.images), self.labels)
        loss.backward()
        optimizer.step()

    def train(self, depth: int, steps: int) -> float:
        torch = self.torch
        if depth not in self.models:
            model = self.model(depth)
            model.train()
            kernels = [p for name, p in model.named_parameters() if p.dim() == 4]
            others = [p for name, p in model.named_parameters() if p.dim() != 4]
            optimizer = torch.optim.SGD([{"params": kernels, "weight_decay": 2e-4}, {"params": others}], lr=0.01,
                                        momentum=0.9, nesterov=True)
            for _ in range(steps):  # warm-up: oneDNN primitives, allocator
                self._step(model, optimizer)
            self.models[depth] = (model, optimizer)
        model, optimizer = self.models[depth]
        start = time.perf_counter()
        for _ in range(steps):
            self._step(model, optimizer)
        return steps * self.batch / (time.perf_counter() - start)

    def latency(self, depth: int, batches: list, calls: int) -> dict:
        torch = self.torch
        model = self.model(depth).eval()
        found = {}
        for batch in batches:
            images = torch.rand((batch, 3, 32, 32)).contiguous(memory_format=torch.channels_last)

            def forward():
                with torch.inference_mode():
                    return model(images).numpy()

            found[str(batch)] = {"torch": _median_ms(forward, _calls_for(batch, calls))}
        return found

    def peak(self) -> dict:
        """GFLOP/s of the best of 5 ``torch.mm`` of two 2048x2048 matrices, float32 and bfloat16."""
        torch, n = self.torch, 2048
        found = {}
        for name, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
            a, b = torch.rand((n, n), dtype=dtype), torch.rand((n, n), dtype=dtype)
            torch.mm(a, b)
            best = min(_seconds(lambda: torch.mm(a, b)) for _ in range(5))
            found[name] = 2 * n ** 3 / best / 1e9
        return found


def torch_resnet(torch, depth: int):
    """The CIFAR ResNet of ``tl.models.cifar_resnet(depth)`` in PyTorch (same layers, same shapes)."""
    nn = torch.nn

    def bn(channels):  # Keras' epsilon 1e-3 and momentum 0.99 (PyTorch's momentum is 1 - Keras')
        return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1, self.bn1 = nn.Conv2d(cin, cout, 3, stride, 1), bn(cout)
            self.conv2, self.bn2 = nn.Conv2d(cout, cout, 3, 1, 1), bn(cout)
            self.proj = nn.Conv2d(cin, cout, 1, stride) if stride != 1 or cin != cout else None

        def forward(self, x):
            y = torch.relu(self.bn1(self.conv1(x)))
            y = self.bn2(self.conv2(y))
            return torch.relu((x if self.proj is None else self.proj(x)) + y)

    class ResNet(nn.Module):
        def __init__(self, per_stage):
            super().__init__()
            self.stem, self.bn = nn.Conv2d(3, 16, 3, 1, 1), bn(16)
            blocks, cin = [], 16
            for stage, cout in enumerate((16, 32, 64)):
                for index in range(per_stage):
                    stride = 2 if stage > 0 and index == 0 else 1
                    blocks.append(Block(cin, cout, stride))
                    cin = cout
            self.blocks = nn.Sequential(*blocks)
            self.fc = nn.Linear(64, 10)
            for module in self.modules():
                if isinstance(module, nn.Conv2d):
                    nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                    nn.init.zeros_(module.bias)

        def forward(self, x):
            x = self.blocks(torch.relu(self.bn(self.stem(x))))
            return self.fc(torch.mean(x, dim=(2, 3)))

    return ResNet((depth - 2) // 6)


def torch_macs(torch, model) -> int:
    """Multiply-accumulates of one 32x32x3 image's forward pass through the convs and the classifier."""
    total = []

    def conv_hook(module, inputs, output):
        total.append(output.numel() // output.shape[0] * module.in_channels * module.kernel_size[0]
                     * module.kernel_size[1] // module.groups)

    hooks = [m.register_forward_hook(conv_hook) for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.inference_mode():
        model.eval()(torch.zeros((1, 3, 32, 32)))
    for hook in hooks:
        hook.remove()
    linear = sum(m.in_features * m.out_features for m in model.modules() if isinstance(m, torch.nn.Linear))
    return int(sum(total) + linear)


def _seconds(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def _calls_for(batch: int, calls: int) -> int:
    return max(10, calls // max(1, batch // 8))


def _median_ms(function, calls: int) -> float:
    for _ in range(max(5, calls // 5)):  # warm-up
        function()
    return 1000 * statistics.median(_seconds(function) for _ in range(calls))


def _serve(side: str, batch: int, connection) -> None:
    """A worker process: builds ``side`` and answers the coordinator's requests until told to stop."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        framework, precision = side.split("/")
        worker = TorchSide(precision, batch) if framework == "torch" else KerasSide(framework, precision, batch)
        connection.send(("ready", None))
        while True:
            request, args = connection.recv()
            if request == "stop":
                return
            connection.send(("ok", getattr(worker, request)(*args)))
    except Exception:  # reported to the coordinator, which stops with it
        connection.send(("error", traceback.format_exc()))


class Sides:
    """The worker processes, started once."""

    def __init__(self, names, batch: int):
        context = multiprocessing.get_context("spawn")
        self.connections, self.processes = {}, {}
        for name in names:
            ours, theirs = context.Pipe()
            process = context.Process(target=_serve, args=(name, batch, theirs), daemon=True)
            process.start()
            self.connections[name], self.processes[name] = ours, process
        for name in names:
            self._answer(name)

    def _answer(self, name):
        status, value = self.connections[name].recv()
        if status == "error":
            raise RuntimeError(f"side {name} failed:\n{value}")
        return value

    def ask(self, name, request, *args):
        self.connections[name].send((request, args))
        return self._answer(name)

    def close(self):
        for name, connection in self.connections.items():
            connection.send(("stop", ()))
            self.processes[name].join(timeout=60)


def _interleaved(names, request, *args) -> dict:
    """``request`` of every side, ``--repeats`` rounds of fresh processes, the order reversed every round:
    ``{side: [values]}``."""
    found = {name: [] for name in names}
    for round_ in range(_REPEATS.value):
        sides = Sides(names, _BATCH.value)
        try:
            for name in (names if round_ % 2 == 0 else names[::-1]):
                found[name].append(sides.ask(name, request, *args))
        finally:
            sides.close()
    return found


def _ask_once(name, request, *args):
    sides = Sides([name], _BATCH.value)
    try:
        return sides.ask(name, request, *args)
    finally:
        sides.close()


def train_part(depths) -> dict:
    peak = _ask_once("torch/float32", "peak")
    results = {"peak_gflops": peak}
    for depth in depths:
        infos = {name: _ask_once(name, "info", depth) for name in ("harness/float32", "torch/float32")}
        keras_info, torch_info = infos["harness/float32"], infos["torch/float32"]
        if (keras_info["trainable"], keras_info["macs"]) != (torch_info["trainable"], torch_info["macs"]):
            raise RuntimeError(f"ResNet-{depth}: the models differ: Keras {keras_info}, PyTorch {torch_info}")
        speeds = _interleaved(list(TRAIN_SIDES), "train", depth, _STEPS.value)
        flops_per_image = 3 * 2 * keras_info["macs"]
        medians = {name: statistics.median(values) for name, values in speeds.items()}
        results[f"resnet{depth}"] = {
            "params": keras_info["params"], "trainable": keras_info["trainable"], "macs": keras_info["macs"],
            "torch_threads": torch_info["threads"], "runs": speeds, "images_per_second": medians,
            "vs_torch_float32": {n: v / medians["torch/float32"] for n, v in medians.items()},
            "vs_torch_bfloat16": {n: v / medians["torch/bfloat16"] for n, v in medians.items()},
            "fraction_of_peak": {n: v * flops_per_image / 1e9 / peak[n.split("/")[1]] for n, v in medians.items()},
        }
    return results


def latency_part(depths) -> dict:
    batches = [int(b) for b in _LATENCY_BATCHES.value]
    results = {}
    for depth in depths:
        rounds = _interleaved(["harness/float32", "torch/float32"], "latency", depth, batches, _CALLS.value)
        merged = {}
        for batch in map(str, batches):
            paths = {**{p: [r[batch][p] for r in rounds["harness/float32"]] for p in KERAS_LATENCY},
                     "torch": [r[batch]["torch"] for r in rounds["torch/float32"]]}
            medians = {p: statistics.median(v) for p, v in paths.items()}
            merged[batch] = {"ms": medians, "runs": paths,
                             "vs_torch": {p: v / medians["torch"] for p, v in medians.items()}}
        results[f"resnet{depth}"] = merged
    return results


def _markdown(results: dict) -> str:
    lines = ["# tf_lottery against PyTorch on this CPU", "",
             f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python "
             f"{platform.python_version()}; {results['versions']}. Batch {_BATCH.value}, {_STEPS.value} steps per "
             f"timed measurement, medians of {_REPEATS.value} interleaved rounds (each side in its own process).", ""]
    train = results.get("train")
    if train:
        peak = train["peak_gflops"]
        lines += ["## Training, images/s", "",
                  f"Measured matrix-multiply peak (torch.mm 2048², every core): {peak['float32']:.0f} GFLOP/s float32, "
                  f"{peak['bfloat16']:.0f} GFLOP/s bfloat16; a training image costs 3 x 2 x its forward MACs.", ""]
        depths = [k for k in train if k.startswith("resnet")]
        lines += ["| side | " + " | ".join(f"{d} img/s | vs torch fp32 | vs torch bf16 | of peak" for d in depths)
                  + " |", "|:--" + "|--:" * (4 * len(depths)) + "|"]
        for name in TRAIN_SIDES:
            cells = []
            for d in depths:
                row = train[d]
                cells += [f"{row['images_per_second'][name]:.0f}", f"{row['vs_torch_float32'][name]:.2f}x",
                          f"{row['vs_torch_bfloat16'][name]:.2f}x", f"{100 * row['fraction_of_peak'][name]:.0f} %"]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines += ["", "Targets: " + "; ".join(
            f"{side} ≥ {factor}x {ref}: " + ", ".join(
                f"{d} {train[d]['images_per_second'][side] / train[d]['images_per_second'][ref]:.2f}x "
                f"({'met' if train[d]['images_per_second'][side] / train[d]['images_per_second'][ref] >= factor else 'not met'})"
                for d in depths) for side, (ref, factor) in TARGETS.items()) + ".", ""]
    latency = results.get("latency")
    if latency:
        lines += ["## Inference latency, float32, ms per call (ratio to PyTorch)", ""]
        for depth, by_batch in latency.items():
            paths = list(next(iter(by_batch.values()))["ms"])
            lines += [f"### {depth}", "", "| batch | " + " | ".join(paths) + " |", "|--:" + "|--:" * len(paths) + "|"]
            for batch, row in by_batch.items():
                lines.append(f"| {batch} | " + " | ".join(f"{row['ms'][p]:.2f} ({row['vs_torch'][p]:.2f}x)"
                                                         for p in paths) + " |")
            lines.append("")
        lines += [f"Target: batch-1 latency ≤ {LATENCY_TARGET}x PyTorch's.", ""]
    lines += ["Reproduce: `pip install -e \".[bench]\" && python scripts/benchmark_frameworks.py`.", ""]
    return "\n".join(lines)


def main(argv):
    del argv
    from tf_lottery.core.io import write_json_atomic, write_text_atomic  # tf_lottery only: no framework here

    depths = [int(d) for d in _DEPTHS.value]
    results = {"versions": _versions()}
    if "train" in _PARTS.value:
        results["train"] = train_part(depths)
    if "latency" in _PARTS.value:
        results["latency"] = latency_part(depths)
    os.makedirs(_OUT.value, exist_ok=True)
    write_json_atomic(os.path.join(_OUT.value, "results.json"), results)
    text = _markdown(results)
    write_text_atomic(os.path.join(_OUT.value, "report.md"), text)
    print(text)


def _versions() -> str:
    from importlib.metadata import version

    return ", ".join(f"{name} {version(name)}" for name in ("tensorflow", "keras", "torch"))


if __name__ == "__main__":
    sys.exit(app.run(main))
