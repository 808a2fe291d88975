"""The ``robustness`` experiment: existing runs measured without retraining, the Table 5 report."""

import json
import os

import numpy as np
import pytest

from tf_lottery import experiments
from tf_lottery.reports import robustness as report_robustness
from tf_lottery.config import Config
from tf_lottery.evals import adversarial, cka, robustness as robust_evals
from tf_lottery.experiments.existing import trained_ticket as _ticket
from tf_lottery.experiments.robustness import RobustnessRow, targets
from tf_lottery.experiments.preparing import dense_model
from tf_lottery.data import prepare
from tf_lottery.experiments.runs import RunFolder

MEASURES = dict(corruptions=("gaussian_noise", "contrast"), severities=(1, 3), robustness_examples=48,
                attacks=("fgsm", "pgd"), epsilons=(0, 4), pgd_steps=2, attack_examples=24, cka_examples=40)


def _config(tmp_path, **changes):
    values = dict(experiment="sweep", dataset="synthetic", train_size=None, val_size=32, depth=20,
                  sweep_criteria=("grasp",), sweep_num_blocks=(1, 2), length="1ep", batch_size=32,
                  learning_rate=0.05, lr_drops=(), runs_dir=str(tmp_path), export=False, latency_batch_sizes=(4,),
                  memory_batch_size=4)
    values.update(changes)
    return Config.create(**values)


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    swept = experiments.get("sweep")(_config(runs))
    config = _config(runs, experiment="robustness", **MEASURES)
    return config, swept, experiments.get("robustness")(config)


def _mtimes(folder):
    return {os.path.join(root, name): os.stat(os.path.join(root, name)).st_mtime_ns
            for root, _, names in os.walk(folder) for name in names if "/evals/" in os.path.join(root, name)}


def test_every_ticket_is_measured_against_the_dense_run_of_its_seed(measured):
    config, swept, result = measured
    assert sorted(r.p for r in result.rows) == [1, 2]
    assert {r.run_folder for r in result.rows} == {row.run_folder for row in swept.rows}
    assert len({r.dense_run_folder for r in result.rows}) == 1
    for row in result.rows:
        assert set(row.ticket) == {"clean", "corruptions", "adversarial", "cka"}
        assert set(row.dense) == {"clean", "corruptions", "adversarial"}  # CKA is a ticket's, against dense
        table = row.ticket["corruptions"]["accuracy"]
        assert list(table) == ["gaussian_noise", "contrast"] and list(table["contrast"]) == ["1", "3"]
        assert row.ticket["adversarial"]["examples"] == 24 and row.ticket["cka"]["examples"] == 40
        assert list(row.ticket["cka"]["views"]) == ["stage1", "stage2", "stage3", "penultimate"]
    saved = json.loads(open(os.path.join(result.run_folder, "results.json")).read())
    assert [r["run_folder"] for r in saved["rows"]] == [os.path.basename(r.run_folder) for r in result.rows]


def test_the_results_are_the_models_measured_by_hand(measured):
    config, _, result = measured
    row = next(r for r in result.rows if r.p == 2)
    point = Config.from_dict(json.load(open(os.path.join(row.run_folder, "config.json"))))
    data = prepare(point.data_options())
    ticket = _ticket(point, RunFolder(point, "ticket"), data)
    dense = dense_model(point, data)
    dense.load_weights(os.path.join(row.dense_run_folder, "dense_final.weights.h5"))
    images, labels = data.splits["test"][0][:48], data.splits["test"][1][:48]
    pixels = robust_evals.pixels(data, images)
    noisy = robust_evals.preprocess(data, robust_evals._corrupted(pixels, "gaussian_noise", 3, 0))
    assert row.ticket["corruptions"]["accuracy"]["gaussian_noise"]["3"] == adversarial.accuracy(ticket, noisy, labels)
    assert row.ticket["corruptions"]["clean"] == adversarial.accuracy(ticket, images, labels)
    views = cka.compare(dense, ticket, data.splits["test"][0][:40])
    assert row.ticket["cka"]["views"]["penultimate"]["linear"] == pytest.approx(
        views["penultimate"]["linear"], abs=1e-5)  # float32 features: equal up to reduction order
    assert row.ticket["adversarial"]["accuracy"]["pgd"]["0"] == row.ticket["adversarial"]["clean"]


def test_pixels_round_trip_exactly(measured):
    config, _, _ = measured
    data = prepare(_config(config.runtime.runs_dir).data_options())
    raw = data.splits["test"][0][:16]
    np.testing.assert_allclose(robust_evals.preprocess(data, robust_evals.pixels(data, raw)), raw, atol=1e-6)


def test_a_rerun_reads_every_result_back(measured, tmp_path):
    config, swept, result = measured
    before = _mtimes(config.runtime.runs_dir)
    again = experiments.get("robustness")(config)
    assert _mtimes(config.runtime.runs_dir) == before  # nothing measured again
    assert [r.ticket for r in again.rows] == [r.ticket for r in result.rows]
    # Read back from JSON (keys sorted), the report still orders views, corruptions and epsilons.
    cka_header = next(line for line in again.report.split("## CKA between")[1].splitlines() if "stage1" in line)
    assert cka_header.index("stage1") < cka_header.index("stage3") < cka_header.index("penultimate")
    per_corruption = next(line for line in again.report.split("## Per corruption")[1].splitlines() if "contrast" in line)
    assert per_corruption.index("gaussian_noise") < per_corruption.index("contrast")  # the module's order
    # --from a sweep folder finds the same runs, and a ticket folder its one run.
    from_sweep = targets(config.replace(**{"from": (swept.run_folder,)}))
    assert sorted(t.ticket_folder for t in from_sweep) == sorted(r.run_folder for r in result.rows)
    single = targets(config.replace(**{"from": (result.rows[0].run_folder,)}))
    assert [t.ticket_folder for t in single] == [result.rows[0].run_folder]


def test_the_report_has_the_table_5_shape_and_the_plots(measured):
    config, _, result = measured
    text = open(os.path.join(result.run_folder, "report.md")).read()
    assert "## Table 5 shape" in text and "corruptions (mean)" in text and "pgd 4/255" in text
    assert "## CKA between dense and ticket" in text and "## Per corruption" in text
    for plot in ("accuracy_vs_severity.png", "accuracy_vs_epsilon.png", "cka_per_stage.png"):
        assert os.path.getsize(os.path.join(result.run_folder, plot)) > 1000
    row = next(r for r in result.rows if r.p == 1)
    expected = 100 * (row.ticket["corruptions"]["mean"] - row.dense["corruptions"]["mean"])
    line = next(line for line in report_robustness.table5([row]).splitlines() if "| 1 " in line)
    assert f"{expected:+.2f}" in line


def test_the_papers_table_5_rows_appear_beside_matching_grasp_layer_tickets():
    def row(model, method, criterion, p):
        side = {"clean": {"accuracy": 0.9}}
        return RobustnessRow(0, "cifar10", model, method, criterion, p, f"t{p}", "d", side, side)

    text = report_robustness.paper_table([row("ResNet-32", "blocks", "grasp", 4), row("ResNet-32", "blocks", "snip", 3),
                                          row("ResNet-56", "blocks", "grasp", 12), row("ResNet-32", "blocks", "grasp", 2)])
    lines = text.strip().splitlines()[2:]
    assert len(lines) == 2  # SNIP and a p the paper did not measure have no paper row
    assert "+1.61" in lines[0] and "-0.65" in lines[0] and "+1.98" in lines[1] and "-1.95" in lines[1]


def test_unfinished_runs_are_named_before_anything_is_measured(tmp_path):
    config = _config(tmp_path, experiment="robustness", sweep_num_blocks=(3,))
    with pytest.raises(ValueError, match="1 of the 1 runs to evaluate have not finished"):
        experiments.get("robustness")(config)
    assert not os.path.exists(tmp_path / "robustness")


def test_a_sweep_asking_for_cka_gains_the_cka_table_and_reuses_the_cached_measurement(measured):
    config, swept, result = measured
    before = _mtimes(config.runtime.runs_dir)
    again = experiments.get("sweep")(_config(config.runtime.runs_dir, evals=("clean", "cost", "latency", "cka"),
                                             cka_examples=40))
    assert _mtimes(config.runtime.runs_dir) == before  # the robustness run's CKA, same settings: read back
    by_folder = {r.run_folder: r for r in result.rows}
    for row in again.rows:
        assert row.cka_linear == by_folder[row.run_folder].ticket["cka"]["views"]["penultimate"]["linear"]
        assert row.cka_debiased == by_folder[row.run_folder].ticket["cka"]["views"]["penultimate"]["debiased"]
        assert row.accuracy_pp == next(r for r in swept.rows if r.run_folder == row.run_folder).accuracy_pp
    assert "## CKA with the dense network (Table 2 shape)" in again.report
    assert f"{again.rows[0].cka_linear:.3f}" in again.report


def test_table_5_cells_carry_their_verdict():
    assert report_robustness._winning([0.3, 0.5, 0.4]) == "**+0.40 ± 0.10** (wins)"
    assert report_robustness._winning([-1.0, -1.3, -0.9]) == "-1.07 ± 0.21 (undetermined)"  # [-1.59, -0.55] crosses -1
    assert report_robustness._winning([-2.0, -2.3, -1.9]) == "-2.07 ± 0.21 (loses)"
    assert report_robustness._winning([1.13]) == "**+1.13** (one seed)"
    assert report_robustness._winning([None]) == "unavailable"
