"""One run prints its difference beside its recipe's measured spread, never a verdict (tf_lottery.experiments.one_run)."""

import json

from tf_lottery.config import Config
from tf_lottery.experiments import one_run

QUICKSTART = dict(experiment="init_ticket", dataset="fashion_mnist", train_size=15000, val_size=1000, crop=False,
                  flip=True, depth=20, criterion="grasp", num_blocks=2, length="3ep", learning_rate=0.05,
                  lr_drops=("2ep",), seed=0)


def _repeats(path, differences, config):
    path.write_text(json.dumps({"recipe": one_run.recipe_identity(config), "seeds": list(range(len(differences))),
                                "differences_pp": differences, "source": "benchmarks/results/quickstart_seeds",
                                "command": "tf-lottery --flagfile=flags/quickstart_seeds.cfg"}))
    return str(path)


def test_the_demo_prints_its_difference_beside_the_shipped_spread_and_follows_the_file(tmp_path):
    config = Config.create(**QUICKSTART)
    path = _repeats(tmp_path / "repeats.json", [0.8, -0.3, -1.9, -0.4, 0.4], config)
    note = one_run.spread_note(config, -0.24, path)
    assert "-0.24 pp from one run (seed 0): one run gives no verdict" in note
    assert "5 seeds of this recipe gave -1.90 to +0.80 pp (mean -0.28, std 1.03" in note
    assert "inside what seeds alone give" in note and "tf-lottery --flagfile=flags/quickstart_seeds.cfg" in note
    # The spread is read from the file: edit it, and the printed spread follows.
    path = _repeats(tmp_path / "repeats.json", [0.1, 0.2, 0.3], config)
    assert "3 seeds of this recipe gave +0.10 to +0.30 pp" in one_run.spread_note(config, -0.24, path)
    assert "outside what seeds alone give" in one_run.spread_note(config, -0.24, path)
    # The seed is not part of the recipe: another seed of the demo gets the same spread.
    assert "3 seeds of this recipe" in one_run.spread_note(config.replace(seed=5), 0.2, path)


def test_another_recipe_or_no_file_names_the_command_that_gives_a_verdict(tmp_path):
    config = Config.create(**QUICKSTART)
    path = _repeats(tmp_path / "repeats.json", [0.8, -0.3], config)
    other = one_run.spread_note(config.replace(depth=32), 0.5, path)
    assert "seeds of this recipe" not in other and "--experiment=sweep --sweep_seeds=0,1,2,3,4,5,6,7" in other
    assert "--sweep_seeds=0,1,2,3,4,5,6,7" in one_run.spread_note(config, 0.5, str(tmp_path / "absent.json"))
    (tmp_path / "bad.json").write_text("{not json")
    assert "seeds of this recipe" not in one_run.spread_note(config, 0.5, str(tmp_path / "bad.json"))
    assert one_run.spread_note(config, None, path) == ""


def test_the_shipped_repeats_are_the_committed_sweeps(tmp_path):
    import os

    import pytest

    root = os.path.join(os.path.dirname(__file__), "..", "..")
    committed = os.path.join(root, "benchmarks", "results", "quickstart_seeds", "results.json")
    if not os.path.exists(one_run.REPEATS):
        pytest.fail(f"{one_run.REPEATS} is missing: run scripts/evidence.py")
    shipped = json.load(open(one_run.REPEATS))
    rows = json.load(open(committed))["rows"]
    assert shipped["differences_pp"] == [r["accuracy_pp"] for r in rows]
    assert shipped["seeds"] == [r["seed"] for r in rows]
    assert shipped["recipe"] == one_run.recipe_identity(Config.create(**QUICKSTART))


def test_the_sweep_a_lottery_run_suggests_repeats_the_lottery_and_its_healing(tmp_path):
    config = Config.create(experiment="lottery", dataset="synthetic", rewind="lr", heal="distil")
    note = one_run.spread_note(config, 0.5, str(tmp_path / "none.json"))
    assert "--experiment=sweep" in note and "--sweep_experiment=lottery" in note and "--heal=distil" in note
