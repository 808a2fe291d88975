"""The ``compare`` experiment: every method from the same θ0 and recipe, the Table 3 report."""

import os

import numpy as np
import pytest

import tf_lottery as tl
from tf_lottery import experiments
from tf_lottery.config import Config
from tf_lottery.experiments.compare import METHODS
from tf_lottery.experiments.preparing import dense_model
from tf_lottery.experiments.sweep import points


def _config(tmp_path, **changes):
    values = dict(experiment="compare", dataset="synthetic", train_size=None, val_size=32, depth=20,
                  sweep_criteria=("snip", "grasp"), sweep_num_blocks=(1,), length="1ep", batch_size=32,
                  learning_rate=0.05, lr_drops=(), runs_dir=str(tmp_path), export=False, latency_batch_sizes=(4,),
                  memory_batch_size=4)
    values.update(changes)
    return Config.create(**values)


def test_points_run_each_method_once_per_setting_and_imp_under_its_own_experiment(tmp_path):
    runs = points(_config(tmp_path, sweep_seeds=(0, 1), sweep_num_blocks=(1, 2)), default_methods=METHODS)
    kinds = [(p.seed, p.method.type) for p in runs]
    assert len(runs) == 2 * (3 * 2 * 2 + 1)  # seeds x (3 methods x p x criteria + one IMP run)
    assert kinds.count((0, "imp")) == 1 and kinds.count((1, "blocks")) == 4
    assert {p.experiment for p in runs if p.method.type == "imp"} == {"imp"}
    assert {p.experiment for p in runs if p.method.type != "imp"} == {"init_ticket"}
    dense = {p.digest("dense") for p in runs if p.seed == 0}
    assert len(dense) == 1  # one shared dense run per seed, IMP included
    only = points(_config(tmp_path, sweep_methods=("filters",)), default_methods=METHODS)
    assert {p.method.type for p in only} == {"filters"}


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    config = _config(tmp_path_factory.mktemp("runs"))
    return config, experiments.get("compare")(config)


@pytest.mark.slow
def test_every_method_ran_from_the_same_dense_run(compared):
    config, result = compared
    rows = result.rows
    assert sorted((r.method, r.criterion if r.p is not None else None) for r in rows) == sorted(
        [(m, c) for m in ("blocks", "filters", "filter_masks") for c in ("snip", "grasp")] + [("imp", None)])
    assert len({r.dense_run_folder for r in rows}) == 1
    by = {(r.method, r.criterion): r for r in rows}
    for criterion in ("snip", "grasp"):
        layers, physical, masked = (by[(m, criterion)] for m in ("blocks", "filters", "filter_masks"))
        assert physical.ticket_filters == layers.ticket_filters < layers.dense_filters  # matched exactly
        assert physical.ticket_params < physical.dense_params and physical.ticket_flops < physical.dense_flops
        # Masks remove nothing: the dense size and FLOPs, fewer non-zero weights.
        assert (masked.ticket_params, masked.ticket_flops, masked.ticket_filters) == (
            masked.dense_params, masked.dense_flops, masked.dense_filters)
        assert masked.ticket_nonzero_params < masked.dense_params
        assert layers.p == physical.p == masked.p == 1
    imp = next(r for r in rows if r.method == "imp")
    assert imp.p is None and imp.ticket_params == imp.dense_params
    dense = dense_model(config, tl.data.prepare(config.data_options()))
    kernels = sum(int(np.prod(layer.kernel.shape)) for layer in tl.methods.imp.kernel_layers(dense))
    assert imp.ticket_nonzero_params <= imp.dense_params - round(0.2 * kernels)


@pytest.mark.slow
def test_the_report_has_the_table3_shape_and_a_cost_table(compared):
    config, result = compared
    with open(os.path.join(result.run_folder, "report.md")) as handle:
        text = handle.read()
    assert os.path.basename(result.run_folder).startswith("compare-")
    table3 = text.split("## Table 3 shape: filter vs layer tickets at initialization, p = 1 (pp vs dense)")[1]
    table3 = table3.split("\n\n")[1].splitlines()
    assert [c.strip() for c in table3[0].split("|")[1:4]] == ["method", "snip", "grasp"]
    assert [line.split("|")[1].strip() for line in table3[2:]] == [
        "layers (ours)", "filters (standard LTH, removed)", "filters (tfmot masks)"]
    assert "## Statistics: paired differences per cell" in text and "## Time to the dense network's final" in text
    assert "## Weight lottery tickets (IMP)" in text and "1 x 0.2" in text
    assert "filters (tfmot masks), weights (IMP, tfmot) train in tf_keras" in text  # their times: another framework
    cost = text.split("## Cost of every method (mean ± std over seeds)")[1]
    for label in ("dense", "layers (ours)", "filters (standard LTH, removed)", "filters (tfmot masks)",
                  "weights (IMP, tfmot)"):
        assert f"| {label} " in cost
    by = {(r.method, r.criterion): r for r in result.rows}
    pp = by[("filters", "snip")].accuracy_pp
    assert f"{pp:+.2f}" in text


def test_a_filter_ticket_exports_and_serves_like_a_layer_ticket(tmp_path):
    import tensorflow as tf

    model = tl.models.cifar_resnet(20, input_shape=(16, 16, 3), seed=0)
    ticket = tl.filters.remove_filters(model, ["stage1_block2_conv1:1", "stage3_block1_conv1:9"])
    path = tl.export.save_model(ticket, str(tmp_path / "ticket"), {"method": "filters"})
    x = np.random.default_rng(0).standard_normal((2, 16, 16, 3)).astype("float32")
    served = tf.saved_model.load(os.path.join(path, "saved_model")).signatures["serving_default"]
    np.testing.assert_allclose(served(image=tf.constant(x))["logits"].numpy(), ticket(x, training=False).numpy(),
                               rtol=1e-5, atol=1e-5)
    import json

    with open(os.path.join(path, "metadata.json")) as handle:
        meta = json.load(handle)
    assert meta["method"] == "filters" and meta["lineage"]["filters"] == {
        "stage1_block2_conv1": [1], "stage3_block1_conv1": [9]}
    rebuilt = tl.models.rebuild(meta["lineage"])
    assert rebuilt.get_layer("stage3_block1_conv1").filters == 63


@pytest.mark.slow
def test_robustness_measures_every_kind_of_ticket_from_a_compare_folder(compared):
    config, result = compared
    measuring = config.replace(experiment="robustness", evals=("cka", "corruptions"), corruptions=("contrast",),
                               severities=(2,), robustness_examples=16, cka_examples=16,
                               **{"from": (result.run_folder,)})
    measured = experiments.get("robustness")(measuring)
    assert sorted((r.method, r.criterion or "") for r in measured.rows) == sorted(
        (r.method, r.criterion if r.p is not None else "") for r in result.rows)  # IMP reads no criterion
    for row in measured.rows:
        # Every ticket was rebuilt with its trained weights: the clean accuracy is the compare's.
        compared_row = next(r for r in result.rows if r.run_folder == row.run_folder)
        assert row.ticket["clean"]["accuracy"] == compared_row.ticket_accuracy
        assert 0 < row.ticket["cka"]["views"]["penultimate"]["linear"] <= 1 + 1e-9
    imp = next(r for r in measured.rows if r.method == "imp")
    assert imp.p is None and imp.criterion is None


@pytest.mark.slow
def test_the_table_3_cka_table_marks_the_most_similar_method_of_each_criterion(compared):
    import dataclasses

    from tf_lottery import reports as report

    _, result = compared
    similarity = {"blocks": 0.95, "filters": 0.80, "filter_masks": 0.85}
    rows = [dataclasses.replace(r, cka_linear=similarity.get(r.method)) for r in result.rows]
    lines = report.cka_table3(rows).strip().splitlines()
    assert [line.split("|")[1].strip() for line in lines[2:]] == [
        "layers (ours)", "filters (standard LTH, removed)", "filters (tfmot masks)"]
    assert lines[2].count("**0.950**") == 2 and "**" not in lines[3] + lines[4]
    assert not report.has_cka(result.rows) and report.has_cka(rows)


def test_the_compare_report_puts_the_papers_table_3_and_the_statistics_beside_the_cells(tmp_path):
    """A ResNet32 compare report by hand: the paper's Table 3 beside each cell, a verdict per cell."""
    import dataclasses

    from tf_lottery import reports as report
    from tf_lottery.results.records import SweepRow

    base = SweepRow(seed=0, criterion="snip", p=1, experiment="init_ticket", rewind=None, rewind_epoch=None,
                    dense_accuracy=0.9, ticket_accuracy=0.9, dense_flops=100, ticket_flops=90, dense_train_seconds=10.0,
                    ticket_train_seconds=9.0, accuracy_pp=0.0, flops_reduction_pct=10.0, params_reduction_pct=1.0,
                    memory_reduction_pct=1.0, co2_reduction_pct=None, energy_reduction_pct=None,
                    training_speedup_x=1.1, images_per_second_ratio_x=1.1, flops_implied_speedup_x=1.1,
                    run_folder="r", dense_run_folder="d", ticket_filters=1200)
    rows = [dataclasses.replace(base, seed=seed, method=method, criterion=criterion, accuracy_pp=pp)
            for method, criterion, values in [("blocks", "snip", (0.3, 0.5, 0.4)), ("blocks", "grasp", (0.1, -0.2, 0.4)),
                                              ("filters", "snip", (-1.0, -1.3, -0.9)),
                                              ("filters", "grasp", (-0.2, 0.1, -0.5))]
            for seed, pp in enumerate(values)]
    rows += [dataclasses.replace(base, seed=seed, method="filter_masks", criterion="grasp", ticket_filters=1232,
                                 ticket_params=500, dense_params=500, accuracy_pp=pp)
             for seed, pp in enumerate((0.2, -0.3, 0.1))]
    rows += [dataclasses.replace(base, seed=seed, method="imp", criterion="snip", p=None, ticket_filters=1232,
                                 ticket_params=500, dense_params=500, accuracy_pp=pp)
             for seed, pp in enumerate((0.5, 0.7, 0.6))]
    config = _config(tmp_path, depth=32)
    text = report.write_compare(config, rows, str(tmp_path))
    assert "Filter counts of the tickets at p = 1: 1,200 (" in text  # the masks' 1,232 is the dense graph's
    imp_row = next(line for line in text.split("## Statistics")[1].splitlines() if "weights (IMP" in line)
    assert [c.strip() for c in imp_row.split("|")[1:4]] == ["weights (IMP, tfmot)", "—", "—"]
    table3 = text.split("(pp vs dense)")[1].split("\n\n")[1].splitlines()
    assert [c.strip() for c in table3[0].split("|")[1:-1]] == ["method", "snip", "paper", "grasp", "paper"]
    layers = [c.strip() for c in table3[2].split("|")[1:-1]]
    # n = 3, t = 4.303: +0.10 ± 0.30 gives [-0.65, +0.85], above -ξ = -1 pp; -1.07 ± 0.21 gives [-1.59, -0.55]
    assert layers == ["layers (ours)", "**+0.40 ± 0.10** (wins)", "+0.08",
                      "**+0.10 ± 0.30** (winning ticket at ξ = 1 pp)", "+0.40"]
    filters = [c.strip() for c in table3[3].split("|")[1:-1]]
    assert filters[1:] == ["-1.07 ± 0.21 (undetermined)", "-0.79", "-0.20 ± 0.30 (winning ticket at ξ = 1 pp)", "-0.11"]
    assert "Verdicts: wins 2, winning ticket at ξ = 1 pp 3, undetermined 1 (of 6 cells)" in text
    assert os.path.exists(tmp_path / "report.md")
