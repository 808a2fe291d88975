import dataclasses
import json
import os

import pytest

from tf_lottery import experiments
from tf_lottery import reports as report
from tf_lottery import training as train
from tf_lottery.config import Config
from tf_lottery.experiments.dense import dense_config
from tf_lottery.experiments.sweep import points
from tf_lottery.results.records import RunRecord, SweepRow


def _config(tmp_path, **changes):
    values = dict(experiment="sweep", dataset="synthetic", train_size=None, val_size=64, depth=20, length="1ep",
                  batch_size=64, learning_rate=0.05, lr_drops=(), runs_dir=str(tmp_path), latency_batch_sizes=(1,),
                  memory_batch_size=8, export=False, sweep_num_blocks=(1,), sweep_criteria=("snip", "grasp"),
                  sweep_seeds=(0, 1))
    values.update(changes)
    return Config.create(**values)


def _count_trainings(monkeypatch):
    trained = []
    real_fit = train.fit
    monkeypatch.setattr(train, "fit", lambda model, *a, **k: trained.append(model.name) or real_fit(model, *a, **k))
    return trained


def test_points_are_seed_major_and_share_one_dense_config_per_seed():
    config = Config.create(experiment="sweep", sweep_num_blocks=(1, 2, 3), sweep_criteria=("snip", "grasp"),
                           sweep_seeds=(0, 1))
    runs = points(config)
    assert [(r.seed, r.method.num_blocks, r.method.criterion) for r in runs[:3]] == [
        (0, 1, "snip"), (0, 1, "grasp"), (0, 2, "snip")]
    assert len(runs) == 12 and all(r.experiment == "init_ticket" and not r.sweep.sweep_seeds for r in runs)
    assert len({dense_config(r) for r in runs}) == 2
    assert len({r.digest("ticket") for r in runs}) == 12


def test_explicit_cells_and_a_training_length_axis():
    config = Config.create(experiment="sweep", sweep_cells=("grasp:3", "random:5"), sweep_seeds=(0, 1),
                           sweep_lengths=("4ep", "16ep"), length="16ep", lr_drops=("8ep", "12ep"), warmup="1ep")
    runs = points(config)
    assert [(r.seed, r.training.length, r.method.criterion, r.method.num_blocks) for r in runs[:4]] == [
        (0, "4ep", "grasp", 3), (0, "4ep", "random", 5), (0, "16ep", "grasp", 3), (0, "16ep", "random", 5)]
    assert len(runs) == 8
    assert {r.training.length: r.training.lr_drops for r in runs} == {"4ep": ("2ep", "3ep"), "16ep": ("8ep", "12ep")}
    assert {r.training.warmup for r in runs} == {"1ep"}  # the warm-up keeps its length
    assert len({dense_config(r) for r in runs}) == 4  # one dense network per seed and length
    # The full-length points are the very runs a sweep without the axis makes: the same folders.
    plain = points(Config.create(experiment="sweep", sweep_cells=("grasp:3", "random:5"), sweep_seeds=(0, 1),
                                 length="16ep", lr_drops=("8ep", "12ep"), warmup="1ep"))
    assert [r.digest("ticket") for r in plain] == [r.digest("ticket") for r in runs if r.training.length == "16ep"]
    with pytest.raises(ValueError, match="falls at 4.5ep of 6ep, not a whole epoch"):
        points(config.replace(sweep_lengths=("6ep",)))
    with pytest.raises(ValueError, match="not both"):
        Config.create(experiment="sweep", sweep_cells=("grasp:3",), sweep_criteria=("snip",))


def test_the_sweeps_declarations_name_the_sweep_never_a_run():
    base = Config.create(experiment="sweep", sweep_cells=("grasp:3", "random:3"), sweep_seeds=(0, 1))
    declared = base.replace(sweep_margin=0.5, sweep_alpha=0.1, sweep_power=0.9, sweep_detectable=0.3,
                            sweep_comparisons=("grasp-random",))
    assert [r.digest("ticket") for r in points(base)] == [r.digest("ticket") for r in points(declared)]
    assert base.digest("sweep") != declared.digest("sweep")
    # at their defaults the declarations stay out of the identity: earlier sweeps keep their folders
    assert "sweep_margin" not in Config.create(experiment="sweep").identity("sweep")["sweep"]
    assert base.replace(sweep_shard="2/3").digest("sweep") == base.digest("sweep")  # a shard is not another sweep
    for bad, message in [(dict(sweep_cells=("grasp:0",)), "criterion:p items"),
                         (dict(sweep_cells=("grasp",)), "got 'grasp'"),
                         (dict(sweep_comparisons=("grasp-grasp",)), "A-B items"),
                         (dict(sweep_shard="3/2"), "1 <= i <= n"), (dict(sweep_alpha=1.5), "sweep_alpha"),
                         (dict(sweep_power=0.01), "sweep_power"), (dict(sweep_detectable=0.0), "sweep_detectable")]:
        with pytest.raises(ValueError, match=message):
            Config.create(experiment="sweep", **bad)


def test_shards_split_the_sweep_by_dense_network_and_cover_it_once():
    from tf_lottery.experiments.sweep import share

    config = Config.create(experiment="sweep", sweep_cells=("grasp:3", "random:3"), sweep_seeds=(0, 1, 2, 3, 4))
    runs = points(config)
    shards = [share(runs, (i, 3)) for i in (1, 2, 3)]
    assert [[r.seed for r in shard] for shard in shards] == [[0, 0, 3, 3], [1, 1, 4, 4], [2, 2]]
    assert sorted(r.digest("ticket") for shard in shards for r in shard) == sorted(r.digest("ticket") for r in runs)
    assert share(runs, None) == runs and share(runs, (6, 6)) == []


def test_lottery_points_keep_every_rewind_epoch_in_one_dense_run():
    config = Config.create(experiment="sweep", sweep_experiment="lottery", length="4ep", lr_drops=(),
                           sweep_criteria=("kl", "random"), sweep_rewinds=("weights", "lr"),
                           sweep_rewind_epochs=(0, 1, 3))
    runs = points(config)
    assert len(runs) == 12
    assert {dense_config(r).training.keep_epochs for r in runs} == {(1, 3)}
    with pytest.raises(ValueError, match="need --sweep_experiment=lottery"):
        points(Config.create(experiment="sweep", sweep_rewind_epochs=(0, 1)))


def test_points_rewinding_to_steps_keep_every_step_in_one_dense_run():
    config = Config.create(experiment="sweep", sweep_experiment="lottery", length="4ep", lr_drops=(),
                           sweep_criteria=("kl",), sweep_rewind_steps=(0, 5, 30))
    runs = points(config)
    assert [(r.method.rewind_epoch, r.method.rewind_step) for r in runs] == [(0, 0), (0, 5), (0, 30)]
    assert {dense_config(r).training.keep_steps for r in runs} == {(5, 30)}
    assert {dense_config(r).training.keep_epochs for r in runs} == {()}
    assert len({r.digest("ticket") for r in runs}) == 3
    with pytest.raises(ValueError, match="not both"):
        Config.create(sweep_rewind_epochs=(0, 1), sweep_rewind_steps=(0, 5))
    with pytest.raises(ValueError, match="need --sweep_experiment=lottery"):
        points(Config.create(experiment="sweep", sweep_rewind_steps=(0, 5)))


def test_rewind_steps_leave_every_earlier_identity_alone():
    """Runs and sweeps from before --rewind_step keep their folders: the new fields enter an
    identity only when set."""
    base = Config.create(experiment="lottery")
    for scope in ("dense", "ticket", "sweep"):
        assert "keep_steps" not in base.identity(scope).get("training", {})
        assert "rewind_step" not in base.identity(scope).get("method", {})
        assert "sweep_rewind_steps" not in base.identity(scope).get("sweep", {})
    stepped = base.replace(rewind_step=5)
    assert stepped.identity("ticket")["method"]["rewind_step"] == 5
    assert stepped.digest("ticket") != base.digest("ticket")
    assert dense_config(stepped).identity("dense")["training"]["keep_steps"] == [5]


def test_bad_sweep_lists_are_refused():
    with pytest.raises(ValueError, match="sweep_seeds lists 1 twice; got 1,1: give each value once"):
        Config.create(sweep_seeds=(1, 1))
    with pytest.raises(ValueError, match="sweep_rewinds must be among"):
        Config.create(sweep_rewinds=("weights", "rewinding"))
    with pytest.raises(ValueError, match="sweep_experiment must be one of"):
        Config.create(sweep_experiment="sweep")


def test_an_impossible_point_fails_before_anything_runs(tmp_path):
    with pytest.raises(ValueError, match="cannot remove 4 blocks: at most 3"):
        experiments.get("sweep")(_config(tmp_path, sweep_num_blocks=(1, 4)))
    assert not list(tmp_path.iterdir())


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("runs")
    trained = []
    real_fit = train.fit
    train.fit = lambda model, *a, **k: trained.append(model.name) or real_fit(model, *a, **k)
    try:
        config = _config(tmp_path)
        return config, experiments.get("sweep")(config), trained
    finally:
        train.fit = real_fit


def test_each_seed_trains_its_dense_network_once(swept):
    _, result, trained = swept
    assert sorted(trained) == ["resnet20"] * 2 + ["resnet20_minus1"] * 4
    rows = result.rows
    assert len(rows) == 4 and len({r.dense_run_folder for r in rows}) == 2
    for seed in (0, 1):
        same_seed = [r for r in rows if r.seed == seed]
        assert len({r.dense_accuracy for r in same_seed}) == 1


def test_rows_and_report_agree_with_the_runs(swept):
    config, result, _ = swept
    folder = result.run_folder
    assert {"report.md", "results.json", "accuracy_difference.png", "accuracy_vs_flops.png", "speedup.png"} <= set(
        os.listdir(folder))
    for row in result.rows:
        run = RunRecord.from_dict(json.load(open(os.path.join(row.run_folder, "result.json"))))
        assert row.accuracy_pp == pytest.approx(100 * (run.ticket.accuracy - run.dense.accuracy))
    snip = [r.accuracy_pp for r in result.rows if r.criterion == "snip"]
    text = open(os.path.join(folder, "report.md")).read()
    assert report.cell(snip) in text and "Table 2 shape" in text and "Table 4 shape" in text
    saved = json.load(open(os.path.join(folder, "results.json")))["rows"]
    # results.json names the runs relative to the runs folder: the sweep's folder moves whole
    assert [r["run_folder"] for r in saved] == [os.path.basename(r.run_folder) for r in result.rows]
    assert not any(os.path.isabs(r["dense_run_folder"]) or os.sep in r["dense_run_folder"] for r in saved)
    assert [SweepRow.from_dict(r) for r in saved] == [dataclasses.replace(
        r, run_folder=os.path.basename(r.run_folder), dense_run_folder=os.path.basename(r.dense_run_folder))
        for r in result.rows]
    record = json.load(open(os.path.join(result.rows[0].run_folder, "result.json")))
    assert record["run_folder"] == os.path.basename(result.rows[0].run_folder)
    assert record["dense_run_folder"] == os.path.basename(result.rows[0].dense_run_folder)


def test_an_interrupted_sweep_resumes_run_by_run(swept, monkeypatch):
    config, result, _ = swept
    os.remove(os.path.join(result.rows[-1].run_folder, "result.json"))  # the last point was cut short
    trained = _count_trainings(monkeypatch)
    again = experiments.get("sweep")(config)
    assert trained == []  # its ticket had finished training: only measuring and recording were left
    assert [r.accuracy_pp for r in again.rows] == [r.accuracy_pp for r in result.rows]


@pytest.mark.slow
def test_a_lottery_sweep_gives_table_1(tmp_path, monkeypatch):
    trained = _count_trainings(monkeypatch)
    config = _config(tmp_path, sweep_experiment="lottery", sweep_seeds=(), sweep_criteria=("random",),
                     sweep_rewind_epochs=(0, 1), length="2ep")
    result = experiments.get("sweep")(config)
    assert trained == ["resnet20", "resnet20_minus1", "resnet20_minus1"]
    assert [(r.rewind, r.rewind_epoch) for r in result.rows] == [("weights", 0), ("weights", 1)]
    assert "| criterion |" in result.report and "θ_0" in result.report and "θ_1" in result.report
    dense_folder = result.rows[0].dense_run_folder
    assert {"theta_0.weights.h5", "theta_1.weights.h5"} <= set(os.listdir(dense_folder))


ROWS = [  # two seeds, two criteria, p = 1 and 2: hand-made to check the arithmetic
    SweepRow(seed=s, criterion=c, p=p, experiment="init_ticket", rewind=None, rewind_epoch=None, accuracy_pp=pp,
         dense_accuracy=0.9 + s / 100, ticket_accuracy=0.9 + s / 100 + pp / 100, dense_flops=100, ticket_flops=100 - 10 * p,
         dense_train_seconds=10.0, ticket_train_seconds=10.0 / x, flops_reduction_pct=10.0 * p, params_reduction_pct=5.0,
         memory_reduction_pct=7.0, co2_reduction_pct=None if c == "snip" else 20.0, energy_reduction_pct=None,
         training_speedup_x=x, images_per_second_ratio_x=x, flops_implied_speedup_x=100 / (100 - 10 * p), run_folder="r", dense_run_folder=f"d{s}")
    for s, c, p, pp, x in [(0, "snip", 1, 0.5, 1.1), (1, "snip", 1, -0.1, 1.2), (0, "grasp", 1, 0.2, 1.0),
                           (1, "grasp", 1, 0.4, 1.2), (0, "snip", 2, -1.0, 1.3), (1, "snip", 2, -2.0, 1.3),
                           (0, "grasp", 2, 0.3, 1.4), (1, "grasp", 2, 0.1, 1.4)]
]


def test_cells_are_mean_and_sample_std():
    assert report.mean_std([0.5, -0.1]) == (pytest.approx(0.2), pytest.approx(0.42426, abs=1e-5), 2)
    assert report.cell([0.5, -0.1]) == "+0.20 ± 0.42"
    assert report.cell([1.25]) == "+1.25"
    assert report.cell([0.3, 0.3]) == "+0.30"
    assert report.cell([None, None]) == "unavailable"


def test_table_2_marks_the_best_criterion_of_each_p():
    lines = report.table2(ROWS).splitlines()
    assert [c.strip() for c in lines[0].split("|")[1:-1]] == ["p", "snip", "grasp"]
    p1 = [c.strip() for c in lines[2].split("|")[1:-1]]
    p2 = [c.strip() for c in lines[3].split("|")[1:-1]]
    # Two seeds: t(0.975, 1) = 12.71. GraSP's [+0.2, +0.4] gives [-0.97, +1.57], above -ξ = -1 pp.
    assert p1 == ["1", "+0.20 ± 0.42 (undetermined)", "**+0.30 ± 0.14** (winning ticket at ξ = 1 pp)"]  # a tie would bold both
    assert p2 == ["2", "-1.50 ± 0.71 (undetermined)", "**+0.20 ± 0.14** (undetermined)"]  # [-1.07, +1.47]
    # A narrower margin, declared so: the same interval crosses -0.5.
    narrow = report.table2(ROWS, declared=report.Declared(margin=0.5)).splitlines()[2]
    assert "**+0.30 ± 0.14** (undetermined)" in narrow


def test_table_2_puts_the_papers_value_beside_each_cell():
    from tf_lottery.reports import paper

    lines = report.table2(ROWS, paper_of=lambda r: paper.table2(32, r.criterion, r.p)).splitlines()
    assert [c.strip() for c in lines[0].split("|")[1:-1]] == ["p", "snip", "paper", "grasp", "paper"]
    assert [c.strip() for c in lines[3].split("|")[1:-1]][2::2] == ["+0.00", "+0.72"]


def test_statistics_table_by_hand():
    text = report.statistics_table(ROWS, ("criterion", "p"))
    snip_p1 = next(line for line in text.splitlines() if line.startswith("| snip") and "| 1 " in line)
    # [+0.5, -0.1]: mean 0.2, std 0.4243, half width 12.706 * 0.4243 / sqrt(2) = 3.812; two seeds of that
    # spread detect 4.90 pp at 80 % power (statsmodels' TTestPower: 11.549 standard deviations)
    assert [c.strip() for c in snip_p1.split("|")[1:-1]] == [
        "snip", "1", "0, 1", "+0.50 / -0.10", "+0.20", "0.42", "[-3.61, +4.01]", "4.90", "undetermined", ""]
    assert "MDD at 80 % power (pp)" in text.splitlines()[0]
    assert report.verdict_counts(ROWS, ("criterion", "p")) == "winning ticket at ξ = 1 pp 1, undetermined 3 (of 4 cells)"
    three = [dataclasses.replace(ROWS[0], seed=s, accuracy_pp=v) for s, v in enumerate([1.0, 1.2, 0.8])]
    assert report.verdict_counts(three, ("criterion", "p")) == "wins 1 (of 1 cells)"
    assert "[+0.50, +1.50]" in report.statistics_table(three, ("criterion", "p"))
    near = [dataclasses.replace(ROWS[0], seed=s, accuracy_pp=v) for s, v in enumerate([-0.2, 0.1, -0.1])]
    assert report.verdict_counts(near, ("criterion", "p")) == "winning ticket at ξ = 1 pp 1 (of 1 cells)"


def test_the_declared_family_pools_over_p_pairs_by_seed_and_p_and_corrects_by_holm():
    from statsmodels.stats.multitest import multipletests

    from tf_lottery.reports import stats

    declared = report.Declared(margin=1.0, comparisons=(("grasp", "snip"),))
    found = report.declared_family(ROWS, declared)
    assert [c.name for c in found] == ["snip pooled over p", "grasp pooled over p", "grasp − snip"]
    # snip per seed: seed 0 (0.5 - 1.0) / 2 = -0.25, seed 1 (-0.1 - 2.0) / 2 = -1.05
    assert found[0].summary.differences == (pytest.approx(-0.25), pytest.approx(-1.05))
    # grasp − snip per seed, paired by p: seed 0 ((0.2 - 0.5) + (0.3 + 1.0)) / 2 = 0.5; seed 1 ((0.4 + 0.1) + (0.1 + 2.0)) / 2 = 1.3
    assert found[2].kind == "contrast" and found[2].summary.differences == (pytest.approx(0.5), pytest.approx(1.3))
    raw = [stats.one_sided_p([-0.25, -1.05], 0.0, "greater"), stats.one_sided_p([-0.25, -1.05], -1.0, "greater"),
           stats.one_sided_p([-0.25, -1.05], -1.0, "less")]
    assert [p for p, _ in found[0].tests.values()] == pytest.approx(raw)
    every = [p for c in found for p, _ in c.tests.values()]
    assert len(every) == 3 + 3 + 4
    assert [a for c in found for _, a in c.tests.values()] == pytest.approx(list(multipletests(every, method="holm")[1]))
    text = report.family_table(ROWS, declared)
    line = next(line for line in text.splitlines() if line.startswith("| grasp − snip"))
    assert [c.strip() for c in line.split("|")[1:4]] == ["grasp − snip", "0, 1", "+0.90"]
    assert "verdict after Holm" in text


def test_a_training_length_axis_keeps_each_length_apart():
    rows = [dataclasses.replace(r, length=length) for length in ("4ep", "16ep") for r in ROWS]
    text = report.statistics_table(rows, ("length", "criterion", "p"))
    heads = [[c.strip() for c in line.split("|")[1:4]] for line in text.splitlines()[2:]]
    assert heads.count(["4ep", "snip", "1"]) == 1 and heads.count(["16ep", "snip", "1"]) == 1
    assert report.table2(rows).splitlines()[0].split("|")[1].strip() == "length"
    names = [c.name for c in report.declared_family(rows, report.Declared(comparisons=(("grasp", "snip"),)))]
    assert names == ["snip pooled over p at 4ep", "grasp pooled over p at 4ep", "grasp − snip at 4ep",
                     "snip pooled over p at 16ep", "grasp pooled over p at 16ep", "grasp − snip at 16ep"]


def test_time_to_the_dense_accuracy_table():
    dense = [(5.0, 0.70), (9.0, 0.80), (13.0, 0.85)]
    fast = dataclasses.replace(ROWS[0], dense_train_seconds=13.0, dense_curve=dense, dense_seconds_to_final=13.0,
                               ticket_curve=[(4.0, 0.72), (7.0, 0.86), (10.0, 0.86)], ticket_seconds_to_dense=7.0)
    never = dataclasses.replace(fast, seed=1, ticket_curve=[(4.0, 0.7), (7.0, 0.8)], ticket_seconds_to_dense=None)
    assert fast.time_to_dense_speedup_x == pytest.approx(13.0 / 7.0) and never.time_to_dense_speedup_x is None
    line = report.time_to_dense_table([fast, never], ("criterion", "p")).splitlines()[2]
    assert [c.strip() for c in line.split("|")[1:-1]] == [
        "snip", "1", "85.00", "13", "13", "9", "7", "1.86x", "1 of 2"]


def test_table_4_reports_reductions_and_speedups():
    text = report.table4(ROWS)
    snip_p2 = next(line for line in text.splitlines() if line.startswith("| snip") and "| 2 " in line)
    cells = [c.strip() for c in snip_p2.split("|")[1:-1]]
    assert cells == ["snip", "2", "20.00", "5.00", "7.00", "unavailable", "1.30x", "1.30x", "1.25x",
                     "-1.50 ± 0.71 (undetermined)", "2", ""]
    grasp_p1 = next(line for line in text.splitlines() if line.startswith("| grasp") and "| 1 " in line)
    assert "1.10 ± 0.14x" in grasp_p1 and "20.00" in grasp_p1
    with_paper = report.table4(ROWS, depth=32)
    grasp_p1 = next(line for line in with_paper.splitlines() if line.startswith("| grasp") and "| 1 " in line)
    assert grasp_p1.rstrip(" |").endswith("6.82 / 10.13 / 11.11 / 1.10x")


def test_report_writes_its_plots(tmp_path):
    text = report.write(Config(), ROWS, str(tmp_path))
    assert "fashion_mnist, ResNet-20, 3ep at learning rate 0.05" in text
    dense_mean = next(line for line in text.splitlines() if line.startswith("| mean ± std"))
    assert [c.strip() for c in dense_mean.split("|")[1:-1]] == [
        "mean ± std", "90.50 ± 0.71", "", "", "", "spread 1.00 pp: within the 1 pp band", "", "2 seeds"]
    assert "## Statistics: paired differences per cell" in text and "Verdicts: winning ticket at ξ = 1 pp 1, undetermined 3 (of 4 cells)" in text
    for name in ("report.md", "accuracy_difference.png", "accuracy_vs_flops.png", "speedup.png"):
        assert os.path.getsize(tmp_path / name) > 1000
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]
    assert "## Declared comparisons (Holm-corrected family)" in text and "| grasp pooled over p |" in text.replace(
        "  ", "")


def test_the_report_says_whether_every_training_plateaued(tmp_path):
    rising = [[1, 0.80], [2, 0.85], [3, 0.90], [4, 0.92], [5, 0.94]]  # the last 20 %: epoch 5 only -> 4, 5
    flat = [[1, 0.80], [2, 0.85], [3, 0.90], [4, 0.931], [5, 0.932]]
    rows = [dataclasses.replace(r, dense_curve=flat, ticket_curve=rising if r.criterion == "snip" else flat)
            for r in ROWS]
    text = report.write(Config(), rows, str(tmp_path))
    assert "## Plateau: did every training converge?" in text
    lines = {tuple(c.strip() for c in line.split("|")[1:3]): [c.strip() for c in line.split("|")[3:-1]]
             for line in text.split("## Plateau")[1].split("\n\n")[1].splitlines()[2:]}
    assert lines[("dense", "")] == ["2 of 2", "—", "0.10 / 0.10"]
    assert lines[("snip", "1")] == ["0 of 2", "still rising", "2.00 / 2.00"]
    assert lines[("grasp", "2")][0] == "2 of 2"


def _flagfile_config(name):
    from tf_lottery import cli

    cli.FLAGS.unparse_flags()
    try:
        cli.FLAGS(["tf-lottery", f"--flagfile={os.path.join(os.path.dirname(__file__), '..', '..', 'flags', name)}"])
        return cli.config_from_flags()
    finally:
        cli.FLAGS.unparse_flags()


@pytest.mark.parametrize("name", sorted(os.listdir(os.path.join(os.path.dirname(__file__), "..", "..", "flags"))))
def test_every_shipped_flagfile_is_valid_and_feasible(name):
    """Each flagfile parses into a valid config whose every p can be removed from its model."""
    from tf_lottery import data
    from tf_lottery import tickets as methods
    from tf_lottery.experiments.preparing import dense_model

    config = _flagfile_config(name)
    model = dense_model(config, data.get(config.data.dataset))  # shapes only: nothing is loaded
    runs = points(config) if config.experiment == "sweep" else [config]
    for run in runs:
        methods.get(run.method.type).check(model, run.method)


@pytest.mark.parametrize("prefix", ["cifar10", "fashion_mnist"])
def test_the_table_flagfiles_match_the_paper_and_table_4_reuses_table_2(prefix):
    runs = {}
    for table, expected in [("table1_resnet32", "lottery"), ("table2_resnet32", "init_ticket"),
                            ("table4_resnet32", "init_ticket"), ("table4_resnet56", "init_ticket")]:
        config = _flagfile_config(f"{prefix}_{table}.cfg")
        assert config.experiment == "sweep" and config.sweep.sweep_experiment == expected
        assert config.model.settings.depth == int(table[-2:])
        runs[table] = points(config)
    assert {(r.method.num_blocks, r.method.criterion) for r in runs["table2_resnet32"]} == {
        (p, c) for p in range(1, 6) for c in ("snip", "grasp")}
    assert {r.method.criterion for r in runs["table1_resnet32"]} == {"hrank", "expectabs", "pls", "random", "kl"}
    assert {r.method.num_blocks for r in runs["table4_resnet56"]} == {3, 4, 5, 12}
    digests = {r.digest("ticket") for r in runs["table2_resnet32"]}
    assert {r.digest("ticket") for r in runs["table4_resnet32"]} <= digests


@pytest.mark.parametrize("name", ["cifar10_table5_resnet32", "cifar10_table5_resnet56", "fashion_mnist_table5_resnet32"])
def test_the_table_5_flagfiles_measure_exactly_the_runs_of_table_4(name):
    robustness = _flagfile_config(f"{name}.cfg")
    table4 = _flagfile_config(name.replace("table5", "table4") + ".cfg")
    assert robustness.experiment == "robustness"
    assert {"corruptions", "adversarial", "cka"} <= set(robustness.evaluation.evals)
    assert [p.digest("ticket") for p in points(robustness)] == [p.digest("ticket") for p in points(table4)]


def test_a_sweep_report_draws_only_the_plots_its_evaluations_measured(tmp_path):
    """--evals without ``cost`` (no FLOPs) or without ``clean`` (no accuracy): the report and the other plots."""
    config = Config.create(experiment="sweep")
    no_flops = [dataclasses.replace(r, dense_flops=None, ticket_flops=None, flops_reduction_pct=None,
                                    flops_implied_speedup_x=None) for r in ROWS]
    text = report.write(config, no_flops, str(tmp_path))
    assert sorted(f for f in os.listdir(tmp_path) if f.endswith(".png")) == ["accuracy_difference.png"]  # no curves
    assert "(accuracy_difference.png)" in text and "speedup.png" not in text and "accuracy_vs_flops.png" not in text
    assert "accuracy_vs_time.png)" not in text
    no_accuracy = [dataclasses.replace(r, accuracy_pp=None, dense_accuracy=None, ticket_accuracy=None) for r in ROWS]
    (tmp_path / "b").mkdir()
    text = report.write(config, no_accuracy, str(tmp_path / "b"))
    assert sorted(f for f in os.listdir(tmp_path / "b") if f.endswith(".png")) == ["speedup.png"]
    assert "unavailable" in text and "(speedup.png)" in text


def test_shards_run_their_share_and_the_last_writes_the_whole_report(tmp_path):
    config = _config(tmp_path, sweep_criteria=("snip",), sweep_seeds=(0, 1), train_size=128, val_size=32)
    first = experiments.get("sweep")(config.replace(sweep_shard="1/2"))
    assert first.rows == [] and first.report == ""  # seed 1's runs are the other shard's: no report yet
    assert not os.path.exists(os.path.join(first.run_folder, "report.md"))
    finished = {name for name in os.listdir(tmp_path) if os.path.exists(tmp_path / name / "result.json")}
    assert len(finished) == 1  # seed 0's ticket, nothing of seed 1
    second = experiments.get("sweep")(config.replace(sweep_shard="2/2"))
    assert [r.seed for r in second.rows] == [0, 1] and second.run_folder == first.run_folder
    assert os.path.exists(os.path.join(second.run_folder, "report.md"))
