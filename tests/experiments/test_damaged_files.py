"""A damaged run file is found by the run's manifest, named, and remade or trained again.

A finished ``init_ticket`` run (and its dense run) is copied, one file is truncated, filled with
garbage, made a JSON list, given a flipped byte or swapped for another run's copy, and the same
config runs again on the copy. Every damaged file is named in one line. What follows from sound
files (the records, evaluation caches, histories, summary, config) is remade and the run ends with
the same record; what only training makes (weights, training records, the decision a ticket was
trained from) is trained again, with the same decision. Property-based: hypothesis draws the file,
the damage and whether the run's ``result.json`` is also gone. Runs from before manifests
(none written) are adopted on a sound read, and a damaged file of theirs is named with its remedy.
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
    "flipped_byte": lambda data: data[:len(data) // 2] + bytes([data[len(data) // 2] ^ 1]) + data[len(data) // 2 + 1:],
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


def _rerun_damaged(finished, where, name, damage, rebuild, work, manifests=True):
    runs, record = finished
    if os.path.exists(work):
        shutil.rmtree(work)
    shutil.copytree(runs, work)
    folder = {"ticket": os.path.basename(record.run_folder), "dense": os.path.basename(record.dense_run_folder)}
    if not manifests:  # a run from before tf_lottery 0.10
        for each in folder.values():
            os.remove(os.path.join(work, each, "manifest.json"))
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


def _check(finished, where, name, damage, rebuild, work, capfd):
    _, record = finished
    capfd.readouterr()
    again, error, path = _rerun_damaged(finished, where, name, damage, rebuild, work)
    said = capfd.readouterr().out
    assert error is None, f"{where}/{name} ({damage}) should be remade or retrained: {error}"
    assert f"warning: {path}: changed" in said or f"warning: {path} was damaged" in said, said[-2000:]
    assert again.ticket.removed == record.ticket.removed
    if (where, name) in REMADE:
        assert again.ticket.accuracy == record.ticket.accuracy and again.dense.accuracy == record.dense.accuracy
        assert again.dense.training == record.dense.training and again.ticket.training == record.ticket.training
        return "same"
    assert "that training is done again" in said
    return "retrained"


@pytest.mark.parametrize("name", ["result.json", "evals/ticket/clean.json", "config.json"])
def test_what_a_rerun_can_remake_is_remade(finished, tmp_path, capfd, name):
    assert _check(finished, "ticket", name, "truncated", rebuild=True, work=str(tmp_path / "w"), capfd=capfd) == "same"
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


@pytest.mark.parametrize("where,name", [("ticket", "ticket_final.weights.h5"), ("ticket", "scores.json"),
                                        ("dense", "train_dense.json")])
def test_what_only_training_makes_is_named_and_trained_again(finished, tmp_path, capfd, where, name):
    _, record = finished
    capfd.readouterr()
    again, error, path = _rerun_damaged(finished, where, name, "flipped_byte", False, str(tmp_path / "w"))
    said = capfd.readouterr().out
    assert error is None and f"warning: {path}: changed (same size, other content); it cannot be remade without " \
                             "training, so that training is done again" in said
    assert os.path.exists(path + ".damaged")  # kept for inspection
    assert again.ticket.removed == record.ticket.removed
    trained = "dense: training" if where == "dense" else "ticket: training"
    assert trained in said


def test_a_file_swapped_in_from_another_run_is_named(finished, tmp_path, capfd):
    runs, record = finished
    work = tmp_path / "w"
    shutil.copytree(runs, work)
    ticket, dense = work / os.path.basename(record.run_folder), work / os.path.basename(record.dense_run_folder)
    shutil.copy(dense / "evals" / "dense" / "clean.json", ticket / "evals" / "ticket" / "clean.json")  # valid JSON
    capfd.readouterr()
    again = experiments.get("init_ticket")(_config(work))
    said = capfd.readouterr().out
    assert f"warning: {ticket / 'evals' / 'ticket' / 'clean.json'}: changed" in said
    assert again.ticket.evals == record.ticket.evals


def test_a_file_the_run_never_wrote_is_named_and_never_read(finished, tmp_path, capfd):
    runs, record = finished
    work = tmp_path / "w"
    shutil.copytree(runs, work)
    ticket = work / os.path.basename(record.run_folder)
    (ticket / "notes.txt").write_text("mine\n")
    capfd.readouterr()
    experiments.get("init_ticket")(_config(work))
    assert f"warning: {ticket / 'notes.txt'}: not written by this run; left as it is" in capfd.readouterr().out
    assert (ticket / "notes.txt").read_text() == "mine\n"


def test_a_run_from_before_manifests_is_adopted_on_a_sound_read(finished, tmp_path, capfd):
    runs, record = finished
    work = tmp_path / "w"
    shutil.copytree(runs, work)
    ticket = work / os.path.basename(record.run_folder)
    os.remove(ticket / "manifest.json")
    capfd.readouterr()
    again = experiments.get("init_ticket")(_config(work))
    assert (f"{ticket / 'manifest.json'} was missing (a run from before tf_lottery 0.10, or a manifest set aside): "
            "the run read soundly, and its files are recorded now") in capfd.readouterr().out
    assert again.ticket.training == record.ticket.training
    written = json.loads((ticket / "manifest.json").read_text())
    assert "ticket_final.weights.h5" in written["files"] and written["not_kept"] == []


def test_a_run_whose_weights_were_not_kept_is_reported_not_retrained(finished, tmp_path, capfd):
    runs, record = finished
    work = tmp_path / "w"
    shutil.copytree(runs, work)
    ticket, dense = work / os.path.basename(record.run_folder), work / os.path.basename(record.dense_run_folder)
    for folder, weights in ((ticket, ["ticket_final.weights.h5"]),
                            (dense, ["dense_final.weights.h5", "theta_0.weights.h5"])):
        for name in weights:
            os.remove(folder / name)
        os.remove(folder / "manifest.json")
    capfd.readouterr()
    again = experiments.get("init_ticket")(_config(work))  # adopted: absent weights are named not kept
    said = capfd.readouterr().out
    assert again.ticket.accuracy == record.ticket.accuracy and ": training " not in said
    assert "weights not kept: ticket_final.weights.h5, dense_final.weights.h5, theta_0.weights.h5" in said
    with pytest.raises(ValueError, match=r"lacks --evals=cost, and its weights were not kept \(ticket_final"):
        experiments.get("init_ticket")(_config(work).replace(evals=("clean", "cost")))


def test_old_runs_name_a_damaged_decision_with_its_remedy(finished, tmp_path):
    _, error, path = _rerun_damaged(finished, "ticket", "scores.json", "json_list", True, str(tmp_path / "w"),
                                    manifests=False)
    assert error.startswith(f"{path} is damaged (a JSON list, not an object): it should hold the ticket's decision")
    assert "the ticket was trained from this decision: delete" in error


def test_a_damaged_training_record_is_named_as_one(finished, tmp_path):
    _, error, path = _rerun_damaged(finished, "dense", "train_dense.json", "json_list", True, str(tmp_path / "w"),
                                    manifests=False)
    assert error.startswith(f"{path} is damaged (a JSON list, not an object): it should hold the training record")


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


def test_a_moved_runs_folder_remakes_its_summary_with_what_it_had(finished, tmp_path, capfd):
    runs, record = finished
    before = open(os.path.join(record.run_folder, "summary.md")).read()
    work = tmp_path / "elsewhere" / "runs"
    shutil.copytree(runs, work)
    ticket = work / os.path.basename(record.run_folder)
    os.remove(ticket / "summary.md")
    experiments.get("init_ticket")(_config(work))
    after = (ticket / "summary.md").read_text()
    assert "no validation split" not in after and "time to the dense final val accuracy" in after
    assert after == before


@pytest.mark.parametrize("how", ["edited", "swapped"])
def test_an_edited_or_swapped_manifest_is_named_and_nothing_is_trained_again(finished, tmp_path, capfd, how):
    runs, record = finished
    work = tmp_path / "w"
    shutil.copytree(runs, work)
    ticket, dense = work / os.path.basename(record.run_folder), work / os.path.basename(record.dense_run_folder)
    if how == "edited":  # a recorded size changed: without the digest, a sound file would be retrained
        payload = json.loads((ticket / "manifest.json").read_text())
        payload["files"]["ticket_final.weights.h5"]["bytes"] += 1
        (ticket / "manifest.json").write_text(json.dumps(payload))
    else:
        shutil.copy(dense / "manifest.json", ticket / "manifest.json")
    capfd.readouterr()
    again = experiments.get("init_ticket")(_config(work))
    said = capfd.readouterr().out
    reason = "its entries do not match its digest: it was edited" if how == "edited" else \
        f"it is the manifest of {dense.name}, not of {ticket.name}"
    assert f"warning: {ticket / 'manifest.json'} is damaged ({reason})" in said
    assert ": training " not in said and again.ticket.training == record.ticket.training


def test_a_half_finished_run_whose_manifest_is_gone_says_so(finished, tmp_path, capfd):
    """A kill after the decision, then the manifest deleted: the files left are recorded, and the log says so."""
    from tf_lottery.experiments import integrity
    runs, record = finished
    work = tmp_path / "w"
    shutil.copytree(runs, work)
    ticket = work / os.path.basename(record.run_folder)
    for name in ("ticket_final.weights.h5", "train_ticket.json", "result.json", "summary.md"):
        os.remove(ticket / name)
    integrity.seal(str(ticket))
    os.remove(ticket / "manifest.json")
    capfd.readouterr()
    experiments.get("init_ticket")(_config(work))
    assert f"warning: {ticket / 'manifest.json'} was missing" in capfd.readouterr().out
