"""Times every block criterion on one network and saves the numbers.

Each criterion is run once untimed (tracing, graph building) and then ``--repeats``
times; the median wall time is reported. Results go to
``benchmarks/results/criteria_<model>.json`` (written atomically) and are printed.

    python scripts/benchmark_criteria.py --depth=56 --examples=100 --repeats=3
"""

from __future__ import annotations

import os
import platform
import statistics
import time

import numpy as np
from absl import app, flags

import tf_lottery as tl
from tf_lottery.core.io import write_json_atomic
from tf_lottery.reports.tables import markdown_table

_DEPTH = flags.DEFINE_integer("depth", 56, "ResNet depth.")
_EXAMPLES = flags.DEFINE_integer("examples", 100, "Scoring examples (10 per class for 100).")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed runs per criterion.", lower_bound=1)
_CRITERIA = flags.DEFINE_list("criteria", None, "Criteria to time (default: all).")
_OUT = flags.DEFINE_string("out", "benchmarks/results", "Output folder.")


def main(argv):
    del argv
    model = tl.models.cifar_resnet(_DEPTH.value, seed=0)
    rng = np.random.default_rng(0)
    images = rng.standard_normal((_EXAMPLES.value, 32, 32, 3)).astype("float32")
    labels = np.arange(_EXAMPLES.value) % 10
    rows, results = [], {}
    for name in _CRITERIA.value or tl.criteria.names():
        criterion = tl.criteria.get(name)
        start = time.perf_counter()
        criterion(model, (images, labels))
        first = time.perf_counter() - start
        times = []
        for _ in range(_REPEATS.value):
            start = time.perf_counter()
            criterion(model, (images, labels))
            times.append(time.perf_counter() - start)
        results[name] = {"first_s": first, "median_s": statistics.median(times), "runs_s": times}
        rows.append([name, criterion.when, f"{first:.2f}", f"{statistics.median(times):.2f}"])
        print(f"{name}: first {first:.2f} s, median {statistics.median(times):.2f} s", flush=True)
    payload = {
        "model": model.name,
        "examples": _EXAMPLES.value,
        "repeats": _REPEATS.value,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "results": results,
    }
    path = os.path.join(_OUT.value, f"criteria_{model.name}.json")
    write_json_atomic(path, payload)
    print(markdown_table(["criterion", "regime", "first call (s)", "median (s)"], rows, align="llrr"))
    print(f"saved {path}")


if __name__ == "__main__":
    app.run(main)
