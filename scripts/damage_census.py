"""Damages every file of a run in every way and counts what each rerun did about it.

A small ``init_ticket`` run (synthetic data, ResNet-14, one epoch, exported) is trained twice (seeds 0
and 1, the second only to swap files from). The census lists the run's files by walking its folder and
its dense run's, not from their manifests, and fails at once on any file a manifest lacks. Then, for
each file, each damage and each state of the run, a copy is damaged and the same config runs again on it
in this process:

* damages: ``deleted``, ``truncated`` (half), ``flipped_byte`` (same size), ``wrong_content`` (valid JSON
  holding other values; JSON files only) and ``swapped`` (the same file of the seed-1 run);
* states: ``finished``, and ``half_finished`` (a kill after the ticket's decision: the ticket's training,
  record and exports gone, the manifest as the run left it).

Each outcome is one of:

* ``remade`` — the rerun named the file in one line and ended with a folder that matches its manifest;
* ``named`` — the rerun stopped with one line naming the file (``tf-lottery: error: ...``);
* ``unnamed`` — it finished without naming the file (a defect);
* ``silently_kept`` — the damaged bytes are still there and were not named (a defect);
* ``other`` — anything else (a traceback, a folder that still does not match its manifest: a defect).

Writes ``benchmarks/results/damage_census.json`` (counts per state, damage and outcome; every case)::

    .venv/bin/python scripts/damage_census.py
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import io
import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from tf_lottery import experiments  # noqa: E402
from tf_lottery.config import Config  # noqa: E402
from tf_lottery.core import manifest  # noqa: E402
from tf_lottery.core.io import write_json_atomic  # noqa: E402
from tf_lottery.experiments import integrity  # noqa: E402

DAMAGES = ("deleted", "truncated", "flipped_byte", "wrong_content", "swapped")
# What a kill after the ticket's decision has not written yet.
NOT_YET = ("ticket_final.weights.h5", "train_ticket.json", "history_ticket.csv", "evals/", "export/", "result.json",
           "summary.md", "curves.png")


def config(runs_dir: str, seed: int = 0) -> Config:
    return Config.create(dataset="synthetic", train_size=256, val_size=64, test_size=64, depth=14,
                         min_blocks_per_stage=1, num_blocks=1, length="1ep", batch_size=64, lr_drops=(),
                         evals=("clean",), export=True, runs_dir=runs_dir, seed=seed, latency_batch_sizes=(1,))


def walked(folder: str) -> list:
    """Every file under ``folder`` (relative), found by walking it; fails on one its manifest lacks."""
    recorded = manifest.read(folder)
    names = []
    for parent, _, files in os.walk(folder):
        for name in files:
            relative = os.path.relpath(os.path.join(parent, name), folder).replace(os.sep, "/")
            if relative == manifest.MANIFEST:
                names.append(relative)
                continue
            if relative not in recorded["files"]:
                raise SystemExit(f"census: {folder}/{relative} is not in the manifest: the manifest must record "
                                 "every file the run wrote")
            names.append(relative)
    return sorted(names)


def damage(path: str, how: str, swap_from: str) -> bool:
    """Damages ``path``; returns False when the damage does not apply (wrong_content on a non-JSON file,
    swapped without a counterpart or with an identical one)."""
    if how == "deleted":
        os.remove(path)
        return True
    with open(path, "rb") as handle:
        data = handle.read()
    if how == "truncated":
        new = data[: len(data) // 2]
    elif how == "flipped_byte":
        if not data:
            return False
        middle = len(data) // 2
        new = data[:middle] + bytes([data[middle] ^ 1]) + data[middle + 1:]
    elif how == "wrong_content":
        if not path.endswith(".json"):
            return False
        try:
            payload = json.loads(data)
        except ValueError:
            return False
        new = json.dumps(_altered(payload), indent=2, sort_keys=True).encode() + b"\n"
    else:
        if not os.path.exists(swap_from):
            return False
        with open(swap_from, "rb") as handle:
            new = handle.read()
    if new == data:
        return False
    with open(path, "wb") as handle:
        handle.write(new)
    return True


def _altered(value):
    """``value`` with its first number changed (or, without one, its first string): valid JSON, other content."""
    done = [False]

    def walk(item):
        if done[0]:
            return item
        if isinstance(item, bool) or item is None:
            return item
        if isinstance(item, (int, float)):
            done[0] = True
            return item + 1
        if isinstance(item, str):
            return item
        if isinstance(item, list):
            return [walk(v) for v in item]
        if isinstance(item, dict):
            return {k: walk(v) for k, v in item.items()}
        return item

    changed = walk(value)
    if not done[0] and isinstance(changed, dict) and changed:
        key = sorted(changed)[0]
        changed[key] = "altered"
    return changed


def half_finished(runs: str, ticket: str) -> None:
    """Turns a finished copy into what a kill after the ticket's decision leaves."""
    folder = os.path.join(runs, ticket)
    for name in NOT_YET:
        path = os.path.join(folder, name)
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)
    integrity.seal(folder)


def outcome(work: str, where: str, folder: str, name: str, how: str, swap_from: str, dense: str) -> dict:
    path = os.path.join(work, folder, name)
    with open(path, "rb") if os.path.exists(path) else contextlib.nullcontext() as handle:
        before = handle.read() if handle else None
    if not damage(path, how, swap_from):
        return {"outcome": "not_applicable"}
    damaged = open(path, "rb").read() if os.path.exists(path) else None
    said = io.StringIO()
    try:
        with contextlib.redirect_stdout(said):
            experiments.get("init_ticket")(config(work))
    except (ValueError, OSError, RuntimeError) as error:
        message = str(error)
        named = path in message and "\n" not in message.strip()
        return {"outcome": "named" if named else "other", "message": message[:400]}
    except Exception as error:  # noqa: BLE001  (anything else is what the census is for)
        return {"outcome": "other", "message": f"{type(error).__name__}: {str(error)[:400]}"}
    text = said.getvalue()
    named = path in text
    now = open(path, "rb").read() if os.path.exists(path) else None
    if not named and damaged is not None and now == damaged and damaged != before:
        return {"outcome": "silently_kept"}
    if not named:
        return {"outcome": "unnamed"}
    bad = integrity.untrusted(os.path.join(work, folder)) + integrity.untrusted(os.path.join(work, dense))
    if bad:
        return {"outcome": "other", "message": "still does not match: " + "; ".join(f.describe() for f in bad[:3])}
    return {"outcome": "remade"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join("benchmarks", "results", "damage_census.json"))
    parser.add_argument("--states", default="finished,half_finished")
    args = parser.parse_args()
    scratch = tempfile.mkdtemp(prefix="damage-census-")
    runs, other = os.path.join(scratch, "runs"), os.path.join(scratch, "other")
    with contextlib.redirect_stdout(io.StringIO()):
        record = experiments.get("init_ticket")(config(runs))
        swap = experiments.get("init_ticket")(config(other, seed=1))
    folders = {"ticket": os.path.basename(record.run_folder), "dense": os.path.basename(record.dense_run_folder)}
    swaps = {"ticket": swap.run_folder, "dense": swap.dense_run_folder}
    files = {where: walked(os.path.join(runs, folder)) for where, folder in folders.items()}
    cases, counts = [], collections.Counter()
    for state in args.states.split(","):
        source = runs
        if state == "half_finished":
            source = os.path.join(scratch, "half")
            shutil.copytree(runs, source)
            half_finished(source, folders["ticket"])
        for where, folder in folders.items():
            names = walked(os.path.join(source, folder)) if state != "finished" else files[where]
            for name in names:
                for how in DAMAGES:
                    work = os.path.join(scratch, "work")
                    shutil.rmtree(work, ignore_errors=True)
                    shutil.copytree(source, work)
                    found = outcome(work, where, folder, name, how, os.path.join(swaps[where], name), folders["dense"])
                    if found["outcome"] == "not_applicable":
                        continue
                    counts[(state, found["outcome"])] += 1
                    cases.append({"state": state, "run": where, "file": name, "damage": how, **found})
                    print(state, where, name, how, found["outcome"], found.get("message", "")[:160], flush=True)
    shutil.rmtree(scratch, ignore_errors=True)
    for case in cases:  # committed results name no machine's paths
        if "message" in case:
            case["message"] = case["message"].replace(os.path.join(scratch, "work") + os.sep, "<copy>/")
    summary = collections.defaultdict(dict)
    for (state, kind), count in sorted(counts.items()):
        summary[state][kind] = count
    by_damage = collections.Counter((c["damage"], c["outcome"]) for c in cases)
    write_json_atomic(args.out, {
        "files": {where: len(names) for where, names in files.items()},
        "counts": summary, "by_damage": {f"{d} {o}": n for (d, o), n in sorted(by_damage.items())},
        "cases": cases})
    print(json.dumps(summary), f"-> {args.out}")


if __name__ == "__main__":
    main()
