"""A damaged run file either reruns to the same result or gives one error naming the file.

A finished ``init_ticket`` run (and its dense run) is copied, one file is truncated, filled with
garbage or made a JSON list, and the same config runs again on the copy. What a run can
remake (its record, the dense record, an evaluation cache, its config) is remade and the run
ends with the same record; what it cannot (trained weights, a training record, a decision a
ticket was trained from) is named, with what it should hold and the command that retrains
only that part. Property-based: hypothesis draws the file, the damage and whether the run's
``result.json`` is also gone (so that the run rebuilds it from its parts).
"""

import json
import os
import re
import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tf_lottery import experiments
from tf_lottery.config import Config
from tf_lottery.experiments.runs import DamagedRunFile

TICKET_FILES = ["config.json", "result.json", "scores.json", "train_ticket.json", "ticket_final.weights.h5",
                "evals/ticket/clean.json", "history_ticket.csv", "summary.md"]
DENSE_FILES = ["config.json", "dense.json", "train_dense.json", "dense_final.weights.h5", "evals/dense/clean.json",
               "history_dense.csv"]
#: What a rerun remakes when damaged; any other file must be named in the error instead.
REMADE = {("ticket", "config.json"), ("ticket", "summary.md"), ("ticket", "history_ticket.csv"),
          ("dense", "history_dense.csv"), ("ticket", "result.json"), ("ticket", "evals/ticket/clean.json"),
          ("dense", "config.json"), ("dense", "dense.json"), ("dense", "evals/dense/clean.json")}
OUTCOMES = set()  # what the drawn damages became
DAMAGES = {
    "truncated": lambda data: data[: len(data) // 2],
    "garbage": lambda data: b"\x00\xffnot what it was\n",
    "empty": lambda data: b"",
    "json_list": lambda data: b"[1, 2, 3]\n",
    "json_without_keys": lambda data: b'{"ticket": 1}\n',
}


def _config(runs_dir):
    return Config.create(dataset="synthetic", train_size=256, val_size=64, test_size=64, depth=14,
                         min_blocks_per_stage=1, criterion="grasp", num_blocks=1, length="1ep", batch_size=64,
                         lr_drops=(), evals=("clean",), export=False, runs_dir=str(runs_dir))


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    runs = tmp_path_factory.mktemp("finished")
    record = experiments.get("init_ticket")(_config(runs))
    return runs, record


def _rerun_damaged(finished, where, name, damage, rebuild, work):
    runs, record = finished
    if os.path.exists(work):
        shutil.rmtree(work)
    shutil.copytree(runs, work)
    folder = {"ticket": os.path.basename(record.run_folder), "dense": os.path.basename(record.dense_run_folder)}
    path = os.path.join(work, folder[where], name)
    with open(path, "rb") as handle:
        data = handle.read()
    with open(path, "wb") as handle:
        handle.write(DAMAGES[damage](data))
    if rebuild and (where, name) != ("ticket", "result.json"):
        os.remove(os.path.join(work, folder["ticket"], "result.json"))
    try:
        again = experiments.get("init_ticket")(_config(work))
    except DamagedRunFile as error:
        return None, str(error), path
    except ValueError as error:  # a damaged history CSV: named by the reader
        return None, str(error), path
    return again, None, path


def _check(finished, where, name, damage, rebuild, work):
    _, record = finished
    again, error, path = _rerun_damaged(finished, where, name, damage, rebuild, work)
    if error is None:
        assert again.ticket.removed == record.ticket.removed
        assert again.ticket.accuracy == record.ticket.accuracy and again.dense.accuracy == record.dense.accuracy
        assert again.dense.training == record.dense.training and again.ticket.training == record.ticket.training
        return "same"
    assert (where, name) not in REMADE, f"{where}/{name} ({damage}) should be remade: {error}"
    assert path in error, error
    assert "\n" not in error.strip() and "it should hold" in error, error
    return "named"


@pytest.mark.parametrize("name", ["result.json", "evals/ticket/clean.json", "config.json"])
def test_what_a_rerun_can_remake_is_remade(finished, tmp_path, name):
    assert _check(finished, "ticket", name, "truncated", rebuild=True, work=str(tmp_path / "w")) == "same"
    damaged = [n for n in os.listdir(tmp_path / "w" / os.path.basename(finished[1].run_folder) /
                                     os.path.dirname(name)) if n.endswith(".damaged")]
    assert damaged == [os.path.basename(name) + ".damaged"]  # kept for inspection


def test_a_damaged_summary_is_written_again_from_the_record(finished, tmp_path):
    again, error, path = _rerun_damaged(finished, "ticket", "summary.md", "garbage", False, str(tmp_path / "w"))
    assert error is None
    with open(path) as handle:
        assert handle.read().startswith("# init_ticket ") and "| test accuracy (%)" in open(path).read()


@pytest.mark.parametrize("where,name", [("ticket", "history_ticket.csv"), ("dense", "history_dense.csv")])
def test_a_damaged_history_is_written_again_from_the_training_record(finished, tmp_path, where, name):
    again, error, path = _rerun_damaged(finished, where, name, "garbage", True, str(tmp_path / "w"))
    assert error is None, error
    with open(path) as handle:
        assert handle.readline().startswith("epoch,") and len(handle.readlines()) == 1  # one epoch


def test_trained_weights_are_named_with_the_command_that_retrains_that_part(finished, tmp_path):
    _, error, path = _rerun_damaged(finished, "ticket", "ticket_final.weights.h5", "garbage", True,
                                    str(tmp_path / "w"))
    assert error.startswith(f"{path} is damaged (")
    assert "it should hold trained weights; these weights cannot be remade without training: delete" in error
    assert "train_ticket.json and rerun tf-lottery --batch_size=64 --dataset=synthetic --depth=14" in error


def test_a_decision_a_ticket_was_trained_from_is_not_silently_remade(finished, tmp_path):
    _, error, path = _rerun_damaged(finished, "ticket", "scores.json", "json_list", True, str(tmp_path / "w"))
    assert error.startswith(f"{path} is damaged (a JSON list, not an object): it should hold the ticket's decision")
    assert "the ticket was trained from this decision: delete" in error


@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(file=st.sampled_from([("ticket", n) for n in TICKET_FILES] + [("dense", n) for n in DENSE_FILES]),
       damage=st.sampled_from(sorted(DAMAGES)), rebuild=st.booleans())
def test_any_damage_to_any_run_file_reruns_the_same_or_names_the_file(finished, tmp_path, file, damage, rebuild):
    where, name = file
    work = str(tmp_path / f"w-{where}-{name.replace('/', '_')}")
    OUTCOMES.add(_check(finished, where, name, damage, rebuild, work))


def test_a_config_json_holding_a_list_is_named_under_export_from(finished, tmp_path):
    runs, record = finished
    shutil.copytree(runs, tmp_path / "w")
    folder = tmp_path / "w" / os.path.basename(record.run_folder)
    (folder / "config.json").write_text("[]\n")
    config = Config.create(experiment="export", **{"from": (str(folder),)}, runs_dir=str(tmp_path / "w"))
    with pytest.raises(DamagedRunFile, match=r"config.json is damaged \(a JSON list, not an object\): it should hold "
                                             r"the run's config"):
        experiments.get("export")(config)


def test_a_sweep_s_rows_never_lead_outside_its_runs_folder_nor_back_to_itself(finished, tmp_path):
    runs, record = finished
    shutil.copytree(runs, tmp_path / "w")
    sweep = tmp_path / "w" / "sweep-000000000000"
    sweep.mkdir()
    (sweep / "config.json").write_text(Config.create(experiment="sweep", dataset="synthetic").to_json())
    for rows, message in [([{"run_folder": "/anything/.."}], "is not a run folder beside it"),
                          ([{"run_folder": str(sweep)}], "which lists the sweep again (a loop)"),
                          ([{"folder": "x"}], "no list of rows, each with its run_folder"),
                          ({}, "no list of rows")]:
        (sweep / "results.json").write_text(json.dumps({"rows": rows} if isinstance(rows, list) else rows))
        config = Config.create(experiment="export", **{"from": (str(sweep),)}, runs_dir=str(tmp_path / "w"))
        with pytest.raises(DamagedRunFile, match=re.escape(message)):
            experiments.get("export")(config)
