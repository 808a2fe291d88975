"""Times how long a fresh process takes to start: ``import tensorflow``, ``import tf_lottery``, ``tf-lottery --help``.

Each command runs ``--repeats`` times in a new Python process, the three interleaved (so a
machine that slows down slows all three alike), after one untimed warm-up run of each (file
caches); the median wall time is reported. The target of the command line's start-up is
``tf-lottery --help`` within 1.5x of importing TensorFlow alone. Also counts the C++ start-up
lines each prints on standard error (tf_lottery holds TensorFlow's back: ``tf_lottery/core/quiet.py``).
Results go to ``benchmarks/results/startup.json`` (written atomically) and are printed.

    python scripts/benchmark_startup.py --repeats=5
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time

from absl import app, flags

from tf_lottery.core.io import write_json_atomic
from tf_lottery.reports.tables import markdown_table

_REPEATS = flags.DEFINE_integer("repeats", 5, "Timed runs of each command.", lower_bound=1)
_OUT = flags.DEFINE_string("out", "benchmarks/results", "Output folder.")
_LOAD = flags.DEFINE_string("load", "idle", "What else ran on the machine (recorded: figures beside other load "
                            "are marked as such), e.g. 'idle' or 'shared: a training on the other core'.")

COMMANDS = {
    "python -c 'import tensorflow'": [sys.executable, "-c", "import tensorflow"],
    "python -c 'import keras'": [sys.executable, "-c", "import keras"],
    "python -c 'import tf_lottery'": [sys.executable, "-c", "import tf_lottery"],
    "tf-lottery --help": [sys.executable, "-m", "tf_lottery.cli", "--help"],
}
NOISE = ("absl::InitializeLog", "cudart_stub", "cpu_feature_guard", "cuInit")


def _timed(command) -> tuple:
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    seconds = time.perf_counter() - start
    return seconds, sum(1 for line in done.stderr.splitlines() if any(n in line for n in NOISE))


def main(argv):
    del argv
    for command in COMMANDS.values():
        _timed(command)  # warm-up: file caches
    runs = {name: [] for name in COMMANDS}
    noise = {}
    for _ in range(_REPEATS.value):
        for name, command in COMMANDS.items():
            seconds, lines = _timed(command)
            runs[name].append(seconds)
            noise[name] = lines
    medians = {name: statistics.median(times) for name, times in runs.items()}
    base = medians["python -c 'import tensorflow'"]
    rows = [[name, f"{medians[name]:.2f}", f"{min(runs[name]):.2f}", f"{max(runs[name]):.2f}",
             f"{medians[name] / base:.2f}x", str(noise[name])] for name in COMMANDS]
    payload = {
        "repeats": _REPEATS.value,
        "target": "tf-lottery --help within 1.5x of import tensorflow",
        "help_over_tensorflow_x": medians["tf-lottery --help"] / base,
        "tf_lottery_over_keras_x": medians["python -c 'import tf_lottery'"] / medians["python -c 'import keras'"],
        "load": _LOAD.value,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "results": {name: {"median_s": medians[name], "runs_s": runs[name], "cpp_startup_lines": noise[name]}
                    for name in COMMANDS},
    }
    path = os.path.join(_OUT.value, "startup.json")
    write_json_atomic(path, payload)
    print(f"{_REPEATS.value} runs of each, interleaved, after a warm-up run; machine: {_LOAD.value}")
    print(markdown_table(["command", "median (s)", "min (s)", "max (s)", "vs import tensorflow",
                         "C++ start-up lines"], rows, align="lrrrrr"))
    print(f"saved {path}")


if __name__ == "__main__":
    app.run(main)
