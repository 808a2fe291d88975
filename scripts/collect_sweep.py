"""Collects a sweep's finished runs into a committed folder and writes its report from their small files.

The evidence campaigns train in a runs folder outside the repository (``scripts/campaign.sh``); this
script trains nothing. For the sweep a flagfile names, it copies each finished run's small files
(config, result, histories, scores, training records; never weights) and its dense run's into
``<out>/runs/<run folder>/`` with a ``manifest.json`` of the copy (naming the weights as not kept), then rebuilds the sweep's rows from those copies alone and writes
``<out>/results.json``, ``<out>/report.md`` and the plots, exactly as the sweep would (the same
:func:`tf_lottery.reports.write`). Runs still training are listed, not reported. Rerun it as runs finish.

The copies keep their run folders' names (each the hash of its config), so
``tests/test_evidence.py`` can check that every committed run's hash still holds under today's code.

    .venv/bin/python scripts/collect_sweep.py --flagfile=flags/fashion_mnist_converged_table2.cfg \\
        --runs=/work/campaign/runs --out=benchmarks/results/fashion_mnist_converged/table2

``--from_committed`` rebuilds the report from ``<out>/runs`` alone (no runs folder needed).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys

from absl import app, flags

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import relative_paths  # noqa: E402

from tf_lottery import cli, reports  # noqa: E402
from tf_lottery.config import Config  # noqa: E402
from tf_lottery.core import manifest  # noqa: E402
from tf_lottery.core.io import write_json_atomic  # noqa: E402
from tf_lottery.experiments.rows import sweep_row  # noqa: E402
from tf_lottery.experiments.sweep import points  # noqa: E402
from tf_lottery.results.records import RunRecord  # noqa: E402

SMALL_FILES = ("config.json", "result.json", "scores.json", "summary.md", "dense.json", "train_dense.json",
               "train_ticket.json", "history_dense.csv", "history_ticket.csv", "emissions.csv")
"""What a committed run keeps: everything a report reads, and no weights."""

_RUNS = flags.DEFINE_string("runs", None, "The runs folder the campaign trains in.")
_OUT = flags.DEFINE_string("out", None, "The committed folder: <out>/runs, results.json, report.md.")
_FROM_COMMITTED = flags.DEFINE_boolean("from_committed", False, "Rebuild from <out>/runs alone.")


def _execution(runs_dir: str):
    """The execution identity the campaign's runs were made under (bfloat16 compute), read from a run."""
    for name in sorted(os.listdir(runs_dir)):
        path = os.path.join(runs_dir, name, "config.json")
        if name.startswith(("dense-", "init_ticket-")) and os.path.exists(path):
            with open(path, encoding="utf-8") as handle:
                execution = json.load(handle).get("execution")
            return None if execution is None else tuple(sorted(execution.items()))
    return None


def _copy_small_files(source: str, target: str) -> None:
    os.makedirs(target, exist_ok=True)
    for name in SMALL_FILES:
        if os.path.exists(os.path.join(source, name)):
            shutil.copyfile(os.path.join(source, name), os.path.join(target, name))
    evals = os.path.join(source, "evals")
    for side in os.listdir(evals) if os.path.isdir(evals) else ():
        for name in os.listdir(os.path.join(evals, side)):
            if name.endswith(".json"):
                os.makedirs(os.path.join(target, "evals", side), exist_ok=True)
                shutil.copyfile(os.path.join(evals, side, name), os.path.join(target, "evals", side, name))
    relative_paths.rewrite_folder(target)  # records of 0.9 named the machine's paths
    # The copy's own manifest: a rerun verifies these small files and reports "weights not kept".
    manifest.write(target, not_kept=sorted(n for n in os.listdir(source) if n.endswith(".weights.h5")))


def collect(config: Config, runs_dir, out: str) -> tuple:
    """Copies the finished runs (unless ``runs_dir`` is None) and writes the report; returns (finished, all)."""
    committed = os.path.join(out, "runs")
    source = runs_dir or committed
    config = dataclasses.replace(config, execution=_execution(source))
    wanted = points(config)
    finished = []
    for point in wanted:
        name = f"{point.experiment}-{point.digest('ticket')}"
        dense = f"dense-{point.digest('dense')}"
        if not os.path.exists(os.path.join(source, name, "result.json")):
            continue
        if runs_dir is not None:
            _copy_small_files(os.path.join(runs_dir, name), os.path.join(committed, name))
            _copy_small_files(os.path.join(runs_dir, dense), os.path.join(committed, dense))
        finished.append(point)
    rows = []
    for point in finished:
        name = f"{point.experiment}-{point.digest('ticket')}"
        with open(os.path.join(committed, name, "result.json"), encoding="utf-8") as handle:
            record = RunRecord.from_dict(json.load(handle))
        rows.append(sweep_row(point.replace(runs_dir=committed), record, rewinds=False))
    os.makedirs(out, exist_ok=True)
    write_json_atomic(os.path.join(out, "results.json"), {
        "config": config.to_dict(), "rows": [r.to_dict() for r in rows],
        "finished": len(finished), "planned": len(wanted),
        "unfinished": [f"{p.experiment}-{p.digest('ticket')}" for p in wanted if p not in finished]})
    if rows:
        reports.write(config, rows, out)
    return len(finished), len(wanted)


def main(argv):
    del argv
    config = cli.config_from_flags()
    if not _OUT.value or not (_RUNS.value or _FROM_COMMITTED.value):
        raise app.UsageError("give --out, and --runs (or --from_committed)")
    done, planned = collect(config, None if _FROM_COMMITTED.value else _RUNS.value, _OUT.value)
    print(f"{done} of {planned} runs finished; report in {_OUT.value}/report.md")


if __name__ == "__main__":
    app.run(main)
