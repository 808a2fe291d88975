"""The seed planner (--experiment=plan, tf_lottery.reports.plan) against hand computations."""

import dataclasses
import json
import math
import subprocess
import sys

import pytest

from tf_lottery import experiments
from tf_lottery.config import Config
from tf_lottery.reports import stats
from tf_lottery.reports.plan import plan, plan_text
from tf_lottery.reports.statistics import Declared
from tf_lottery.results.records import SweepRow

BASE = SweepRow(seed=0, criterion="grasp", p=5, experiment="init_ticket", rewind=None, rewind_epoch=None,
                dense_accuracy=0.93, ticket_accuracy=0.93, dense_flops=100, ticket_flops=70, dense_train_seconds=10.0,
                ticket_train_seconds=8.0, accuracy_pp=0.0, flops_reduction_pct=30.0, params_reduction_pct=5.0,
                memory_reduction_pct=7.0, co2_reduction_pct=None, energy_reduction_pct=None, training_speedup_x=1.2,
                images_per_second_ratio_x=1.2, flops_implied_speedup_x=1.43, run_folder="r", dense_run_folder="d",
                length="16ep")
PILOT = {("grasp", 0): 0.30, ("grasp", 1): -0.10, ("grasp", 2): 0.20,
         ("random", 0): 0.10, ("random", 1): -0.50, ("random", 2): 0.00}
ROWS = [dataclasses.replace(BASE, seed=s, criterion=c, accuracy_pp=v) for (c, s), v in PILOT.items()]


def test_the_plan_pools_the_spreads_by_hand():
    found = plan(ROWS, Declared(detectable=0.5))
    # grasp: mean 0.1333, squares 0.02778 + 0.05444 + 0.00444 = 0.08667; random: mean -0.1333,
    # squares 0.05444 + 0.13444 + 0.01778 = 0.20667; pooled variance (0.08667 + 0.20667) / 4
    pooled = math.sqrt((0.086667 + 0.206667) / 4)
    assert found["cells"]["pooled_std"] == pytest.approx(pooled, abs=1e-5)
    assert found["cells"]["degrees_of_freedom"] == 4
    assert found["cells"]["seeds_needed"] == stats.seeds_needed(pooled, 0.5)
    # grasp − random per seed: 0.2, 0.4, 0.2: std 0.11547
    assert found["contrasts"]["pooled_std"] == pytest.approx(0.115470, abs=1e-6)
    assert found["contrasts"]["seeds_needed"] == stats.seeds_needed(0.115470, 0.5)
    assert found["contrasts"]["detectable_by_seeds"][3] == pytest.approx(stats.minimum_detectable(0.11547, 3), rel=1e-5)
    first = found["per_cell"][0]
    assert (first["criterion"], first["n"], first["mean"]) == ("grasp", 3, pytest.approx(0.13333, abs=1e-5))
    text = plan_text(found)
    assert f"**{stats.seeds_needed(pooled, 0.5)} seeds**" in text and "grasp − random" in text


def test_a_pilot_of_one_seed_has_no_spread_and_says_so():
    found = plan([ROWS[0], ROWS[3]], Declared())
    assert found["cells"]["pooled_std"] is None and found["cells"]["seeds_needed"] is None
    assert "No spread is known yet" in plan_text(found)
    with pytest.raises(ValueError, match="needs a pilot sweep's rows"):
        plan([])


def test_the_plan_command_reads_a_sweeps_results_and_writes_its_plan(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps({"config": {}, "rows": [r.to_dict() for r in ROWS]}))
    config = Config.create(experiment="plan", sweep_detectable=0.3, **{"from": (str(tmp_path),)})
    found = experiments.get("plan")(config)
    assert found["target"] == 0.3 and found["cells"]["seeds_needed"] == stats.seeds_needed(
        found["cells"]["pooled_std"], 0.3)
    written = json.loads((tmp_path / "plan.json").read_text())
    assert written["cells"]["seeds_needed"] == found["cells"]["seeds_needed"]
    assert "Seeds needed for an MDD of at most 0.3 pp" in (tmp_path / "plan.md").read_text()


def test_the_plan_command_refuses_what_is_not_a_sweep_in_one_line(tmp_path):
    (tmp_path / "results.json").write_text('{"rows": 3}')
    for args, message in [([f"--from={tmp_path}"], "holds no list of sweep rows"),
                          ([f"--from={tmp_path / 'nowhere'}"], "no results.json there"),
                          ([], "give --from")]:
        done = subprocess.run([sys.executable, "-m", "tf_lottery.cli", "--experiment=plan", *args],
                              capture_output=True, text=True, cwd=tmp_path)
        assert done.returncode != 0 and message in done.stderr and "Traceback" not in done.stderr, done.stderr[-800:]
    assert not (tmp_path / "plan.json").exists()
