"""Damages every file of a finished run in every way and counts what each rerun became.

A small ``init_ticket`` run (synthetic data, ResNet-14, one epoch) is trained once; then, for
each of its run files and its dense run's, each damage (truncated, garbage, empty, a JSON list,
a JSON object lacking keys) and with or without the run's ``result.json`` (so that the rerun
rebuilds it from its parts), a copy is damaged and the same config runs again on it. Each
outcome is ``same`` (the rerun ended with the same record), ``named`` (one error naming the
file), or ``other`` (anything else: a defect). Writes ``benchmarks/results/damage_census.json``.

    python scripts/damage_census.py
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import tempfile

from tf_lottery import experiments
from tf_lottery.config import Config
from tf_lottery.core.io import write_json_atomic

FILES = {"ticket": ["config.json", "result.json", "scores.json", "train_ticket.json", "ticket_final.weights.h5",
                    "evals/ticket/clean.json", "history_ticket.csv", "summary.md"],
         "dense": ["config.json", "dense.json", "train_dense.json", "dense_final.weights.h5",
                   "evals/dense/clean.json", "history_dense.csv"]}
DAMAGES = {"truncated": lambda data: data[: len(data) // 2], "garbage": lambda data: b"\x00\xffnot it\n",
           "empty": lambda data: b"", "json_list": lambda data: b"[1, 2]\n",
           "json_without_keys": lambda data: b'{"ticket": 1}\n'}


def config(runs_dir: str) -> Config:
    return Config.create(dataset="synthetic", train_size=256, val_size=64, test_size=64, depth=14,
                         min_blocks_per_stage=1, num_blocks=1, length="1ep", batch_size=64, lr_drops=(),
                         evals=("clean",), export=False, runs_dir=runs_dir)


def outcome(record, runs: str, work: str, where: str, name: str, damage: str, rebuild: bool) -> tuple:
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(runs, work)
    folders = {"ticket": os.path.basename(record.run_folder), "dense": os.path.basename(record.dense_run_folder)}
    path = os.path.join(work, folders[where], name)
    with open(path, "rb") as handle:
        data = handle.read()
    with open(path, "wb") as handle:
        handle.write(DAMAGES[damage](data))
    result_file = os.path.join(work, folders["ticket"], "result.json")
    if rebuild and os.path.exists(result_file) and path != result_file:
        os.remove(result_file)
    try:
        again = experiments.get("init_ticket")(config(work))
    except ValueError as error:  # DamagedRunFile and the history reader's error are ValueErrors
        message = str(error)
        return ("named" if path in message and "\n" not in message.strip() else "other"), message
    except Exception as error:  # noqa: BLE001  (anything else is what the census is for)
        return "other", f"{type(error).__name__}: {error}"
    same = (again.ticket.removed == record.ticket.removed and again.ticket.accuracy == record.ticket.accuracy
            and again.dense.training == record.dense.training and again.ticket.training == record.ticket.training)
    return ("same" if same else "other"), None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join("benchmarks", "results", "damage_census.json"))
    args = parser.parse_args()
    scratch = tempfile.mkdtemp(prefix="damage-census-")
    runs = os.path.join(scratch, "runs")
    record = experiments.get("init_ticket")(config(runs))
    cases, counts = [], collections.Counter()
    for where, names in FILES.items():
        for name in names:
            for damage in DAMAGES:
                for rebuild in (False, True):
                    kind, message = outcome(record, runs, os.path.join(scratch, "work"), where, name, damage, rebuild)
                    counts[kind] += 1
                    cases.append({"run": where, "file": name, "damage": damage, "result_json_removed": rebuild,
                                  "outcome": kind, "message": message})
    shutil.rmtree(scratch, ignore_errors=True)
    write_json_atomic(args.out, {"counts": dict(counts), "cases": cases})
    print(json.dumps(dict(counts)), f"-> {args.out}")
    for case in cases:
        if case["outcome"] == "other":
            print("other:", case["run"], case["file"], case["damage"], case["result_json_removed"], case["message"])


if __name__ == "__main__":
    main()
