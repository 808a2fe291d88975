"""Times block removal (``tl.surgery.remove_blocks``) on a deep ResNet and saves the numbers.

The default case is the one a sweep pays for at every point: ResNet-110 with 10 of its
51 removable blocks removed (every fifth, so all three stages lose blocks). One untimed
call first, then ``--repeats`` timed calls; the median is reported, with the time of the
parts (finding the blocks on a model seen for the first time and again, reading the
lineage) measured on their own. Results go to
``benchmarks/results/surgery_<model>.json`` (written atomically) and are printed.
``--model=vit`` times a vision transformer (``tf_lottery.models.vit``, 32x32x3 inputs) of
``--depth`` encoder layers instead, 2 blocks each (attention and MLP half-blocks).

    python scripts/benchmark_surgery.py --depth=110 --num_blocks=10 --repeats=5
    python scripts/benchmark_surgery.py --model=vit --depth=12 --num_blocks=4   # 24 blocks
"""

from __future__ import annotations

import os
import platform
import statistics
import time

import keras
from absl import app, flags

import tf_lottery as tl
from tf_lottery.core.io import write_json_atomic
from tf_lottery.models.vit import vit
from tf_lottery.reports.tables import markdown_table

_MODEL = flags.DEFINE_enum("model", "resnet", ["resnet", "vit"], "A CIFAR ResNet or a ViT.")
_DEPTH = flags.DEFINE_integer("depth", 110, "ResNet depth, or ViT encoder layers.")
_NUM_BLOCKS = flags.DEFINE_integer("num_blocks", 10, "Blocks removed.", lower_bound=1)
_REPEATS = flags.DEFINE_integer("repeats", 5, "Timed calls.", lower_bound=1)
_OUT = flags.DEFINE_string("out", "benchmarks/results", "Output folder.")


def _median_seconds(fn, repeats: int) -> tuple[float, list]:
    fn()  # untimed: first-call costs
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def main(argv):
    del argv
    if _MODEL.value == "vit":
        keras.utils.set_random_seed(0)
        model = vit((32, 32, 3), 10, depth=_DEPTH.value)
        model.name = f"vit{_DEPTH.value}"
    else:
        model = tl.models.cifar_resnet(_DEPTH.value, seed=0)
    removable = tl.surgery.removable_blocks(model)
    names = removable[::5][: _NUM_BLOCKS.value]
    if len(names) < _NUM_BLOCKS.value:
        raise app.UsageError(f"--num_blocks={_NUM_BLOCKS.value}: at most {len(names)} every-fifth blocks here")
    # find_blocks caches its answer on the graph; a new model object over the same graph is not
    # cached, so each timed call reads the graph from scratch.
    fresh = [keras.Model(model.input, model.output) for _ in range(_REPEATS.value + 1)]
    parts = {
        "remove_blocks": lambda: tl.surgery.remove_blocks(model, names),
        "find_blocks (first call)": lambda: tl.surgery.find_blocks(fresh.pop()),
        "find_blocks (cached)": lambda: tl.surgery.find_blocks(model),
        "lineage": lambda: tl.models.lineage(model),
    }
    results, rows = {}, []
    for part, fn in parts.items():
        median, times = _median_seconds(fn, _REPEATS.value)
        results[part] = {"median_s": median, "runs_s": times}
        rows.append([part, f"{1000 * median:.1f}", f"{1000 * min(times):.1f}", f"{1000 * max(times):.1f}"])
    payload = {
        "model": model.name,
        "layers": len(model.layers),
        "blocks": len(tl.surgery.blocks(model)),
        "removed": names,
        "repeats": _REPEATS.value,
        "target_s": {"remove_blocks": 1.0, "find_blocks (first call)": 0.1},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "results": results,
    }
    path = os.path.join(_OUT.value, f"surgery_{model.name}.json")
    write_json_atomic(path, payload)
    print(f"{model.name} ({len(model.layers)} layers), {len(names)} blocks removed, {_REPEATS.value} timed calls")
    print(markdown_table(["part", "median (ms)", "min (ms)", "max (ms)"], rows, align="lrrr"))
    print(f"saved {path}")


if __name__ == "__main__":
    app.run(main)
