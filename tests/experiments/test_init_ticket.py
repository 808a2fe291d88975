import json
import os
import shutil

import pytest

import tf_lottery as tl
from tf_lottery import evals, experiments
from tf_lottery.graph import cost
from tf_lottery import training as train
from tf_lottery.config import Config
from tf_lottery.experiments.dense import dense_config
from tf_lottery.results.records import ModelRecord, RunRecord

FILES = {
    "config.json", "scores.json", "scores.png", "history_ticket.csv", "curves.png", "train_ticket.json",
    "ticket_final.weights.h5", "result.json", "summary.md", "export", "evals", "manifest.json",
}
DENSE_FILES = {
    "config.json", "theta_0.weights.h5", "history_dense.csv", "train_dense.json", "dense_final.weights.h5",
    "dense.json", "export", "evals", "manifest.json",
}


def _config(tmp_path, **changes):
    values = dict(dataset="synthetic", train_size=None, val_size=64, depth=20, criterion="grasp", num_blocks=2,
                  length="1ep", batch_size=64, learning_rate=0.05, lr_drops=(), runs_dir=str(tmp_path),
                  latency_batch_sizes=(1, 8), memory_batch_size=8)
    values.update(changes)
    return Config.create(**values)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    config = _config(tmp_path_factory.mktemp("runs"))
    return config, experiments.get("init_ticket")(config)


def test_the_run_record_is_complete(finished):
    config, result = finished
    folder = result.run_folder
    assert folder.endswith(f"init_ticket-{config.digest('ticket')}")
    assert FILES <= set(os.listdir(folder))
    assert not [n for n in os.listdir(folder) if n.endswith(".tmp") or n.startswith(".")]
    assert json.load(open(os.path.join(folder, "config.json"))) == json.loads(config.to_json())
    assert "test accuracy (%)" in open(os.path.join(folder, "summary.md")).read()
    assert set(os.listdir(os.path.join(folder, "export"))) == {"ticket"}
    assert set(os.listdir(os.path.join(folder, "evals", "ticket"))) == {"clean.json", "cost.json", "latency.json"}
    dense_folder = result.dense_run_folder
    assert dense_folder == os.path.join(config.runtime.runs_dir, f"dense-{config.digest('dense')}")
    assert DENSE_FILES <= set(os.listdir(dense_folder))
    assert set(os.listdir(os.path.join(dense_folder, "export"))) == {"dense"}
    assert result.exports["dense"] == os.path.join(dense_folder, "export", "dense")
    saved = json.load(open(os.path.join(folder, "result.json")))
    # Recorded relative: another run to the runs folder, the run's own files to its folder.
    assert saved["run_folder"] == os.path.basename(folder) and saved["dense_run_folder"] == os.path.basename(dense_folder)
    assert saved["exports"] == {"dense": os.path.join(os.path.basename(dense_folder), "export", "dense"),
                                "ticket": os.path.join("export", "ticket")}
    assert result.to_dict() == saved and RunRecord.from_dict(saved).to_dict() == saved
    moved = RunRecord.from_dict(saved).anchored("/elsewhere/runs/" + os.path.basename(folder), "/elsewhere/runs")
    assert moved.exports["dense"] == os.path.join("/elsewhere/runs", os.path.basename(dense_folder), "export", "dense")
    assert moved.exports["ticket"] == os.path.join("/elsewhere/runs", os.path.basename(folder), "export", "ticket")


def test_the_numbers_mean_what_they_say(finished):
    config, result = finished
    dense, ticket, diff = result.dense, result.ticket, result.comparison
    assert len(ticket.removed) == 2 and dense.blocks - ticket.blocks == 2
    assert diff.accuracy_pp == pytest.approx(100 * (ticket.accuracy - dense.accuracy))
    assert diff.winning_ticket == (diff.accuracy_pp >= 0)
    assert ticket.flops == dense.flops - 2 * 4_718_592 // 4  # 16x16 images: a quarter of 32x32 FLOPs
    assert diff.flops_reduction_pct == pytest.approx(100 * (1 - ticket.flops / dense.flops))
    assert diff.training_speedup_x == pytest.approx(dense.train_seconds / ticket.train_seconds)
    assert set(dense.latency) == {"1", "8"} and diff.latency_batch_size == 8
    for side in (dense, ticket):
        assert side.energy.status in ("ok", "unavailable")
        if side.energy.ok:
            assert side.energy.co2_kg > 0
    assert result.to_dict()["measured_vs_estimated"]["energy, CO2"].startswith(("measured", "estimated"))


def test_the_ticket_started_from_the_dense_theta0(finished):
    """The ticket's scores were taken at θ0 and its removed blocks are the selection's."""
    config, result = finished
    scores = json.load(open(os.path.join(result.run_folder, "scores.json")))
    assert scores["ticket"]["removed"] == result.ticket.removed
    dense = tl.models.cifar_resnet(20, input_shape=(16, 16, 3), num_classes=4, seed=config.seed)
    x, y = tl.criteria.class_balanced_batch(*tl.data.prepare(config.data_options()).splits["train"], per_class=10)
    again = tl.find_ticket(dense, "grasp", num_blocks=2, data=(x, y))
    assert again.removed == scores["ticket"]["removed"]


def test_a_finished_config_is_not_run_again(finished, monkeypatch):
    config, result = finished
    monkeypatch.setattr(train, "fit", lambda *a, **k: pytest.fail("trained again"))
    assert experiments.get("init_ticket")(config) == result


@pytest.mark.slow
def test_an_interrupted_run_resumes_without_redoing_finished_stages(tmp_path, monkeypatch):
    config = _config(tmp_path, num_blocks=1, export=False)
    first = experiments.get("init_ticket")(config)
    folder = first.run_folder
    for name in ("result.json", "train_ticket.json", "ticket_final.weights.h5", "history_ticket.csv", "summary.md",
                 "evals"):
        path = os.path.join(folder, name)  # as if killed while training the ticket
        shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
    trained = []
    real_fit = train.fit
    monkeypatch.setattr(train, "fit", lambda model, *a, **k: trained.append(model.name) or real_fit(model, *a, **k))
    second = experiments.get("init_ticket")(config)
    assert trained == ["resnet20_minus1"]
    assert second.dense.evals["clean"] == first.dense.evals["clean"]  # the dense weights were reloaded
    assert second.ticket.removed == first.ticket.removed


def test_a_different_config_gets_its_own_folder(tmp_path):
    a, b = _config(tmp_path), _config(tmp_path, seed=1)
    assert a.digest("ticket") != b.digest("ticket")
    assert Config.from_dict(json.loads(a.to_json())) == a
    # Where output goes, what is exported, logged or measured is not what the run is.
    same = a.replace(runs_dir=str(tmp_path / "elsewhere"), export=False, tensorboard=True, carbon_country="FRA",
                     latency_batch_sizes=(2,), evals=("clean",))
    assert same.digest("ticket") == a.digest("ticket") and same.digest("dense") == a.digest("dense")
    # The method is the ticket's identity, not the dense run's.
    snip = a.replace(criterion="snip")
    assert snip.digest("dense") == a.digest("dense") and snip.digest("ticket") != a.digest("ticket")
    assert a.replace(sweep_seeds=(0, 1)).digest("ticket") == a.digest("ticket")


def test_a_second_criterion_reuses_the_dense_run_of_its_seed(finished, monkeypatch):
    config, result = finished
    trained = []
    real_fit = train.fit
    monkeypatch.setattr(train, "fit", lambda model, *a, **k: trained.append(model.name) or real_fit(model, *a, **k))
    snip = experiments.get("init_ticket")(config.replace(criterion="snip", num_blocks=1, export=False))
    assert trained == ["resnet20_minus1"]  # only the ticket
    assert snip.dense_run_folder == result.dense_run_folder
    assert snip.dense == result.dense


def test_the_dense_run_ignores_ticket_fields_and_keeps_rewind_epochs():
    base = Config()
    assert dense_config(base) == dense_config(Config.create(criterion="snip", num_blocks=3, prune_first="low"))
    assert dense_config(base) != dense_config(Config.create(seed=1))
    assert dense_config(base) != dense_config(Config.create(depth=32))
    lottery = dense_config(Config.create(experiment="lottery", rewind_epoch=2, keep_epochs=(1,)))
    assert lottery.training.keep_epochs == (1, 2) and lottery.experiment == "dense"
    assert dense_config(Config.create(experiment="lottery", rewind_epoch=0)) == dense_config(base)  # θ0 always kept


def test_the_dense_experiment_finds_the_shared_dense_run(finished, monkeypatch):
    config, result = finished
    monkeypatch.setattr(train, "fit", lambda *a, **k: pytest.fail("trained again"))
    record = experiments.get("dense")(config.replace(experiment="dense", criterion="kl"))
    assert record == result.dense


def test_adding_an_evaluation_measures_only_it_and_trains_nothing(finished, monkeypatch):
    config, result = finished
    calls = []

    @evals.register("logit_mean", summary="mean logit on the test split (a test evaluation)")
    def logit_mean(model, data, evaluation_config):
        calls.append(model.name)
        return {"mean": float(model.predict(data.splits["test"][0], verbose=0).mean())}

    try:
        monkeypatch.setattr(train, "fit", lambda *a, **k: pytest.fail("trained again"))
        monkeypatch.setattr(cost, "latency", lambda *a, **k: pytest.fail("latency measured again"))
        more = experiments.get("init_ticket")(config.replace(evals=("clean", "cost", "latency", "logit_mean")))
    finally:
        evals.EVALS._entries.pop("logit_mean")
    assert calls == ["resnet20", "resnet20_minus2"]  # dense and ticket, once each
    assert set(more.ticket.evals) == {"clean", "cost", "latency", "logit_mean"}
    assert more.ticket.evals["clean"] == result.ticket.evals["clean"] and more.comparison == result.comparison
    saved = ModelRecord.from_dict(json.load(open(os.path.join(result.dense_run_folder, "dense.json"))))
    assert "logit_mean" in saved.evals


def test_where_the_runs_are_is_not_what_the_run_is(finished, monkeypatch):
    """A trailing slash, a relative path or a moved runs folder finds the run (it is not 'a different config')."""
    config, result = finished
    monkeypatch.setattr(train, "fit", lambda *a, **k: pytest.fail("trained again"))
    moved = os.path.join(os.path.dirname(config.runtime.runs_dir), "moved")
    shutil.copytree(config.runtime.runs_dir, moved)
    monkeypatch.chdir(os.path.dirname(moved))
    for runs_dir in (config.runtime.runs_dir + "/", "moved"):
        again = experiments.get("init_ticket")(config.replace(runs_dir=runs_dir, tensorboard=True))
        assert again.comparison == result.comparison


def test_a_run_times_its_way_to_the_dense_accuracy(finished):
    """The run table and the sweep row read the same curves: epochs' wall clock and validation accuracy."""
    from tf_lottery.results import curves
    from tf_lottery.experiments.rows import sweep_row

    config, result = finished
    dense = curves.read_curve(result.dense_run_folder, "dense", result.dense.training.timing)
    ticket = curves.read_curve(result.run_folder, "ticket", result.ticket.training.timing)
    assert len(dense) == len(ticket) == 1  # one epoch each
    assert dense[-1][0] == pytest.approx(result.dense.train_seconds, abs=1e-3)  # the curve ends at the training time
    summary = open(os.path.join(result.run_folder, "summary.md")).read()
    assert f"time to the dense final val accuracy {100 * dense[-1][1]:.2f} %" in summary
    row = sweep_row(config, result, rewinds=False)
    assert row.dense_curve == dense and row.ticket_curve == ticket
    reached = ticket[-1][1] >= dense[-1][1]
    assert (row.ticket_seconds_to_dense == ticket[-1][0]) if reached else row.ticket_seconds_to_dense is None
    assert row.dense_seconds_to_final == dense[-1][0] and row.dense_train_accuracy is not None


def test_the_manifest_records_every_file_of_the_run_and_a_damaged_export_is_remade(finished, tmp_path, capfd):
    from tf_lottery.core import manifest
    config, result = finished
    for folder in (result.run_folder, result.dense_run_folder):
        recorded = manifest.read(folder)
        assert sorted(recorded["files"]) == manifest.files_of(folder)  # walked, not trusted
        assert manifest.check(folder, recorded) == []
    work = tmp_path / "runs"
    shutil.copytree(config.runtime.runs_dir, work)
    ticket = work / os.path.basename(result.run_folder)
    meta = ticket / "export" / "ticket" / "metadata.json"
    meta.write_text(meta.read_text()[:100])  # truncated: the command line remakes it, as the API does
    capfd.readouterr()
    again = experiments.get("init_ticket")(config.replace(runs_dir=str(work)))
    said = capfd.readouterr().out
    assert f"warning: {meta}: changed" in said and "remade from the run's sound files" in said
    assert tl.export.is_complete(str(ticket / "export" / "ticket")) and again.ticket.removed == result.ticket.removed
    assert (ticket / "export" / "ticket.damaged" / "metadata.json").exists()
