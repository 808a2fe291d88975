"""Writes the quick demo's shipped spread (``tf_lottery/experiments/quickstart_seeds.json``) from the
committed sweep of its recipe over eight seeds (``benchmarks/results/quickstart_seeds/results.json``,
made by ``tf-lottery --flagfile=flags/quickstart_seeds.cfg`` and ``scripts/collect_sweep.py``).

The demo prints its one difference beside this spread (:mod:`tf_lottery.experiments.one_run`);
``tests/experiments/test_one_run.py`` checks that the shipped file is the committed sweep's.

    .venv/bin/python scripts/quickstart_spread.py
"""

from __future__ import annotations

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))

from tf_lottery import cli  # noqa: E402
from tf_lottery.core.io import write_json_atomic  # noqa: E402
from tf_lottery.experiments import one_run  # noqa: E402

SOURCE = os.path.join("benchmarks", "results", "quickstart_seeds", "results.json")


def main() -> int:
    with open(os.path.join(HERE, "..", SOURCE), encoding="utf-8") as handle:
        rows = json.load(handle)["rows"]
    cli.FLAGS.unparse_flags()
    cli.FLAGS(["tf-lottery", f"--flagfile={os.path.join(HERE, '..', 'flags', 'quickstart.cfg')}"])
    demo = cli.config_from_flags()
    write_json_atomic(one_run.REPEATS, {
        "recipe": one_run.recipe_identity(demo), "seeds": [r["seed"] for r in rows],
        "differences_pp": [r["accuracy_pp"] for r in rows], "source": os.path.dirname(SOURCE),
        "command": "tf-lottery --flagfile=flags/quickstart_seeds.cfg"})
    print(f"{one_run.REPEATS}: {len(rows)} seeds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
