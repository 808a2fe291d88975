"""scripts/lm_twin.py, the tiny-LM twin's evidence script, on a tiny decoder and a corpus the test
writes: every model is trained once and recorded, a second start trains nothing, and the report's
numbers are the runs' numbers (paired differences, CPU-second speed-ups, the criteria's agreement)
and scripts/benchmark_language.py's interleaved speed-ups of the same decoder."""

import itertools
import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("keras_hub")

from tests.corpora import tiny_fortunes  # noqa: E402

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "scripts", "lm_twin.py")
BENCHMARK = os.path.join(os.path.dirname(__file__), "..", "scripts", "benchmark_language.py")
AFTER_TRAINING = ("block_influence", "angular", "cka", "removal_loss", "random")
SEEDS = (0, 1)


def _twin(tmp_path, *extra, check=True):
    command = [sys.executable, SCRIPT, "--corpus=fortunes", f"--data_dir={tmp_path / 'corpus'}",
               "--seeds=" + ",".join(map(str, SEEDS)), "--layers=2", "--hidden=16", "--heads=2", "--length=16",
               "--batch_size=4", "--train_steps=4", "--checkpoint_steps=2", "--removed=1", "--calibration=4",
               "--val_sequences=8", f"--out={tmp_path / 'out'}", f"--cache={tmp_path / 'cache'}", *extra]
    result = subprocess.run(command, capture_output=True, text=True, timeout=3600,
                            env={**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0 or not check, result.stderr[-3000:]
    return result


def _run(tmp_path, seed, name):
    return json.loads((tmp_path / "out" / "runs" / f"{seed}_{name}.json").read_text())


@pytest.fixture(scope="module")
def twin(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("twin")
    tiny_fortunes(tmp_path / "corpus")
    _twin(tmp_path)
    return tmp_path


def test_every_model_of_every_seed_is_trained_and_recorded(twin):
    names = ["dense", "grasp_1", "snip_1"] + [f"trained_{c}" for c in AFTER_TRAINING]
    assert sorted(os.listdir(twin / "out" / "runs")) == sorted(f"{s}_{n}.json" for s in SEEDS for n in names)
    for seed in SEEDS:
        dense = _run(twin, seed, "dense")
        assert dense["layers"] == 2 and dense["removed"] == []
        for name in ("grasp_1", "snip_1"):
            ticket = _run(twin, seed, name)
            assert ticket["layers"] == 1 and len(ticket["removed"]) == 1 and ticket["params"] < dense["params"]
            assert ticket["flops_per_token"] < dense["flops_per_token"]
        for criterion in AFTER_TRAINING:
            row = _run(twin, seed, f"trained_{criterion}")
            assert len(row["removed"]) == 1 and row["heal_steps"] == 1  # max(1, 10 % of 4 steps)
    # training states are removed once a model is recorded
    assert not [name for name in os.listdir(twin / "cache" / "S4_L2_H16") if not name.endswith(".lock")]


def test_the_report_is_computed_from_the_runs(twin):
    results = json.loads((twin / "out" / "results.json").read_text())
    for name in ("grasp_1", "snip_1"):
        row = results["at_initialization"][name]
        dense = [_run(twin, s, "dense") for s in SEEDS]
        ticket = [_run(twin, s, name) for s in SEEDS]
        assert row["seeds"] == list(SEEDS)
        # in % of the dense perplexity, read against the margin ξ (1 % by default)
        differences = [100 * (d["perplexity"] - t["perplexity"]) / d["perplexity"] for d, t in zip(dense, ticket)]
        assert row["dense_minus_ticket_pct"]["mean"] == pytest.approx(np.mean(differences), rel=1e-12)
        assert row["dense_minus_ticket_pct"]["xi"] == 1.0 and results["margin_pct"] == 1.0
        assert row["measured_speedup_cpu"] == pytest.approx(
            [d["train_cpu_seconds"] / t["train_cpu_seconds"] for d, t in zip(dense, ticket)], rel=1e-12)
        assert row["flops_implied_speedup"] == pytest.approx(
            [d["flops_per_token"] / t["flops_per_token"] for d, t in zip(dense, ticket)], rel=1e-12)
    assert set(results["after_training"]) == set(AFTER_TRAINING)
    for criterion in AFTER_TRAINING:
        dense = [_run(twin, s, "dense")["perplexity"] for s in SEEDS]
        healed = [100 * (d - _run(twin, s, f"trained_{criterion}")["perplexity_after_healing"]) / d
                  for d, s in zip(dense, SEEDS)]
        assert results["dense_minus_healed_pct"][criterion]["mean"] == pytest.approx(np.mean(healed), rel=1e-12)
    # two criteria compared by their paired difference: SNIP's ticket minus GraSP's, each against its dense
    contrast = [100 * (_run(twin, s, "grasp_1")["perplexity"] - _run(twin, s, "snip_1")["perplexity"])
                / _run(twin, s, "dense")["perplexity"] for s in SEEDS]
    assert results["contrasts_pct"]["snip_1 - grasp_1"]["mean"] == pytest.approx(np.mean(contrast), rel=1e-9)
    for a, b in itertools.combinations(AFTER_TRAINING, 2):
        same = [_run(twin, s, f"trained_{a}")["removed"] == _run(twin, s, f"trained_{b}")["removed"] for s in SEEDS]
        assert results["agreement_jaccard"][f"{a} / {b}"] == pytest.approx(np.mean(same))  # one layer: 1 or 0
    assert results["setup"]["train_tokens"] == 4 * 4 * 16
    report = (twin / "out" / "report.md").read_text()
    assert "| GraSP −1 " in report and "| SNIP −1 " in report and "| block_influence " in report
    # removed layers read as indices, one group per seed: "| GraSP −1 | 0; 1 |"
    cell = "; ".join(_run(twin, s, "grasp_1")["removed"][0].rsplit("_", 1)[1] for s in SEEDS)
    assert f"| GraSP −1 | {cell} " in report


def test_a_second_start_trains_nothing_and_reports_recovered_runs_and_interleaved_speed_ups(twin):
    runs = twin / "out" / "runs"
    # runs rebuilt after their machine was lost keep one of the two clocks (the evidence page's recovery)
    no_cpu = {**_run(twin, 0, "grasp_1"), "train_cpu_seconds": None, "train_seconds": 2.5}
    (runs / "0_grasp_1.json").write_text(json.dumps(no_cpu))
    no_wall = {**_run(twin, 1, "grasp_1"), "train_seconds": None}
    (runs / "1_grasp_1.json").write_text(json.dumps(no_wall))
    written = {name: os.stat(runs / name).st_mtime_ns for name in os.listdir(runs)}
    # scripts/benchmark_language.py measures this decoder and its ticket interleaved: the report's third column
    benchmark = subprocess.run(
        [sys.executable, BENCHMARK, "--layers=2", "--hidden=16", "--heads=2", "--length=16", "--batch_size=4",
         "--removed=1", "--steps=2", "--repeats=1", "--prompt=4", f"--out={twin}", "--name=speed"],
        capture_output=True, text=True, timeout=3600, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert benchmark.returncode == 0, benchmark.stderr[-3000:]
    speed = json.loads((twin / "speed.json").read_text())
    ticket = speed["models"]["-1"]
    assert ticket["layers"] == 1 and ticket["flops_per_token"] == _run(twin, 0, "grasp_1")["flops_per_token"]
    assert ticket["speedups"]["flops_implied"] == pytest.approx(
        speed["models"]["dense"]["flops_per_token"] / ticket["flops_per_token"])
    _twin(twin, f"--speed={twin / 'speed.json'}")
    assert {name: os.stat(runs / name).st_mtime_ns for name in os.listdir(runs)} == written
    results = json.loads((twin / "out" / "results.json").read_text())
    speedup = results["at_initialization"]["grasp_1"]
    assert speedup["measured_speedup_cpu"] == pytest.approx([
        _run(twin, 0, "dense")["train_cpu_seconds"] / 2.5,
        _run(twin, 1, "dense")["train_cpu_seconds"] / no_wall["train_cpu_seconds"]])
    assert speedup["interleaved_speedup_cpu"] == ticket["speedups"]["train_cpu"]
    assert speedup["interleaved_speedup_wall"] == ticket["speedups"]["train_wall"]
    assert f"| {ticket['speedups']['train_cpu']:.2f}x " in (twin / "out" / "report.md").read_text()
    # one of another decoder is refused by name before anything is read or written
    (twin / "other.json").write_text(json.dumps({**speed, "setup": {**speed["setup"], "hidden": 32}}))
    refused = _twin(twin, f"--speed={twin / 'other.json'}", check=False)
    assert refused.returncode != 0 and "'hidden': 32" in refused.stderr and "Traceback" not in refused.stderr
    assert json.loads((twin / "out" / "results.json").read_text()) == results


@pytest.mark.slow
def test_the_healing_methods_heal_the_same_ticket_and_are_reported_against_fine_tuning(twin):
    _twin(twin, "--seeds=0", "--report_seeds=0,1", "--heal_methods=finetune,distil,linear")
    for criterion in AFTER_TRAINING:
        tuned = _run(twin, 0, f"trained_{criterion}")
        distilled, linear = (_run(twin, 0, f"trained_{criterion}_{heal}") for heal in ("distil", "linear"))
        assert distilled["removed"] == linear["removed"] == tuned["removed"]
        assert distilled["heal_steps"] == tuned["heal_steps"] and linear["heal_steps"] == 0
        assert distilled["kl_after_healing"] >= 0 and distilled["perplexity_after_healing"] > 1
        if linear["removed"] == ["transformer_layer_0"]:  # nothing before the first layer to fold into
            assert linear["perplexity_after_healing"] is None and "is the first block" in linear["refused"]
        else:
            assert linear["calibration_tokens"] > 0 and linear["perplexity_after_healing"] > 1
    results = json.loads((twin / "out" / "results.json").read_text())
    assert set(results["healing"]) >= {f"trained_{c}_distil" for c in AFTER_TRAINING}
    assert "## Healing methods after training" in (twin / "out" / "report.md").read_text()
    assert not [name for name in os.listdir(twin / "cache" / "S4_L2_H16") if name.startswith("0_cut_")
                and not name.endswith(".lock")]  # each cut is forgotten once its rows are recorded
    refused = _twin(twin, "--heal_methods=finetune,prune_more", check=False)
    assert refused.returncode != 0 and "--heal_methods must name some of finetune, distil, linear" in refused.stderr
