"""A catalogue of bad inputs: each is refused with one line naming what is wrong, before anything is written.

Command-line cases run the real ``tf-lottery`` entry in-process (flags parsed, ``main`` called);
``tests/test_cli.py`` checks the exit code and the absence of a traceback in real processes.
API cases call the library and expect ``TypeError`` or ``ValueError``.
"""

import math

import numpy as np
import pytest
from absl import app, flags

import tf_lottery as tl
from tf_lottery import cli

SYNTHETIC = ["--dataset=synthetic", "--train_size=0", "--val_size=64", "--length=1ep", "--lr_drops="]


CASES = [
    # flags and the config
    (["--depth=33"], "depth must be 6n+2 with n >= 1"),
    (["--depth=abc"], "depth"),
    (["--experiment=nope"],
     "unknown experiment 'nope'; valid names: compare, dense, describe, export, imp, init_ticket, lottery, plan, robustness, "
     "sweep"),
    (["--experiment=export", "--from=/nowhere"], "--from=/nowhere: not a run folder (it has no config.json)"),
    (["--criterion=grsp"], "unknown criterion 'grsp'; valid names:"),
    (["--dataset=mnits"], "unknown dataset 'mnits'"),
    (["--model=resnet9"], "unknown model 'resnet9'; valid names: byte_decoder, cifar_resnet, convnext_tiny, efficientnetb0, "
                            "imagenet_resnet, mobilenetv2, resnet101"),
    (["--method=layers"], "unknown method 'layers'; valid names: blocks, filter_masks, filters, imp"),
    (["--match=closest"], "match"),
    (["--filter_ranking=random"], "filter_ranking"),
    (["--num_filters=0"], "flag --num_filters=0: 0 is not a positive integer"),
    (["--imp_rate=1.5"], "--imp_rate must be in (0, 1); got 1.5"),
    (["--imp_rate=0"], "--imp_rate must be in (0, 1); got 0.0"),
    (["--imp_levels=0"], "flag --imp_levels=0: 0 is not a positive integer"),
    (["--sweep_methods=blocks,blocks"], "sweep_methods lists blocks twice; got blocks,blocks: give each value once"),
    (["--sweep_methods=blocks,channels"], "unknown method 'channels'; valid names: blocks, filter_masks, filters, imp"),
    (["--length=10epochs"], "e.g. 160ep or 500it; got '10epochs'"),
    (["--length=0ep"], "a length is a positive count"),
    (["--lr_drops=100"], "a length is a positive count with 'ep' (epochs) or 'it' (steps)"),
    (["--warmup=2"], "a length is a count >= 0 with 'ep' (epochs) or 'it' (steps), e.g. 160ep or 500it; got '2'"),
    (["--warmup=3ep", "--length=3ep"], "the warm-up (3ep) must be shorter than the training (3ep)"),
    (["--bn_momentum=1.5"], "bn_momentum must be in [0, 1); got 1.5"),
    (["--learning_rate=nan"], "learning_rate must be a finite number"),
    (["--learning_rate=inf"], "learning_rate must be a finite number"),
    (["--learning_rate=-0.1"], "learning_rate must be a finite number > 0; got -0.1"),
    (["--momentum=1.5"], "momentum must be in [0, 1); got 1.5"),
    (["--lr_drop_factor=0"], "lr_drop_factor must be a finite number > 0; got 0.0"),
    (["--weight_decay=-1"], "weight_decay must be >= 0"),
    (["--batch_size=0"], "batch_size"),
    (["--carbon_country=France"], "carbon_country must be an ISO 3166 alpha-3 code"),
    (["--shortcut=option_c"], "shortcut"),
    (["--blocks_per_stage=3,x,3"], "--blocks_per_stage takes comma-separated integers; got 3,x,3"),
    (["--blocks_per_stage=3,0,3"], "blocks_per_stage must be >= 1"),
    (["--width_multiplier=0"], "width_multiplier must be > 0; got 0.0"),
    (["--num_classes=0"], "num_classes"),
    (["--criterion=hrank", "--aggregation=mean"], "criterion 'hrank' takes no option 'aggregation'"),
    (["--aggregation=max"], "aggregation"),
    (["--prune_first=middle"], "prune_first"),
    (["--schedule=twice"], "schedule"),
    (["--rewind=rewinding"], "rewind"),
    (["--keep_epochs=5"], "keep_epochs must be below the training length (3ep: 0 to 2); got 5"),
    (["--keep_epochs=1,1"], "keep_epochs lists 1 twice; got 1,1: give each value once"),
    (["--num_blocks=2", "--fraction=0.5"], "give --num_blocks or --fraction, not both"),
    (["--sweep_seeds=0,x"], "--sweep_seeds takes comma-separated integers; got 0,x"),
    (["--sweep_num_blocks=1,1"], "sweep_num_blocks lists 1 twice"),
    (["--sweep_rewinds=weights,rewound"], "sweep_rewinds must be among weights, lr, reinit"),
    (["--sweep_experiment=sweep"], "sweep_experiment must be one of imp, init_ticket, lottery"),
    (["--sweep_criteria=snip,hrank", "--aggregation=sum"], "criterion 'hrank' takes no option 'aggregation'"),
    (["--experiment=sweep", "--sweep_experiment=lottery", "--sweep_rewind_epochs=0,3"],
     "rewind epoch must be in [0, 2] for a 3ep recipe; got 3"),
    (["--evals=clean,robustness"], "unknown evaluation 'robustness'; valid names: adversarial, cka, clean, "
                                   "corruptions, cost, generation, latency, shift_sets"),
    (["--severities=6"], "severities takes distinct values from 1 to 5; got [6]"),
    (["--severities=0"], "severities must be >= 1"),
    (["--epsilons=8,8"], "epsilons lists 8 twice; got 8,8: give each value once"),
    (["--corruptions=snow"], "corruptions must be among gaussian_noise, shot_noise"),
    (["--attacks=cw"], "attacks must be among fgsm, pgd; got ('cw',)"),
    (["--shift_sets=cifar10_3"], "unknown shift set 'cifar10_3'; valid names: cifar10_1, cifar10_2, cifar10_c, mnist_c"),
    (["--pgd_step_size=0"], "pgd_step_size must be > 0; got 0.0"),
    (["--cka_examples=6000"], "cka_examples must be from 4 to 5000"),
    (["--experiment=robustness", "--from={tmp}/nothing"], "--from={tmp}/nothing: not a run folder"),
    (SYNTHETIC + ["--experiment=robustness", "--sweep_seeds=0,1"],
     "2 of the 2 runs to evaluate have not finished"),
    (["--latency_batch_sizes=0"], "latency_batch_sizes must be >= 1"),
    (["stray"], "unexpected arguments ['stray']"),
    # issue 27: one spelling per length, each value once, sizes with a limit, flags that would be ignored
    (["--length=\uff12ep"], "a length is a positive count with 'ep' (epochs) or 'it' (steps)"),
    (["--length=99999999999999999999ep"], "a length is at most 100,000ep"),
    (["--length=1000000001it"], "a length is at most 1,000,000,000it"),
    (["--blocks_per_stage=1000000"], "blocks_per_stage must be <= 1000 (deeper graphs take minutes"),
    (["--depth=6000008"], "depth must be <= 6002"),
    (["--method=imp", "--imp_levels=100000"], "imp_levels must be <= 61 at --imp_rate=0.2"),
    (["--latency_batch_sizes=99999999999"], "latency_batch_sizes must be <= 65536 (each batch is built in memory)"),
    (["--memory_batch_size=99999999999"], "memory_batch_size must be <= 2147483647"),
    (["--seed=-1"], "--seed=-1"),
    (["--seed=4294967296"], "seed must be <= 2147483647 (numpy's and TensorFlow's seeds are 32-bit)"),
    (["--sweep_seeds=0,4294967296"], "sweep_seeds must be <= 2147483647"),
    (["--evals=clean,clean"], "evals lists clean twice; got clean,clean: give each value once"),
    (["--latency_batch_sizes=1,1"], "latency_batch_sizes lists 1 twice"),
    (["--sweep_seeds=0,0"], "sweep_seeds lists 0 twice"),
    (["--lr_drops=1ep,1ep"], "lr_drops lists a drop twice; got 1ep,1ep"),
    (["--lr_drops=1ep,01ep"], "lr_drops lists a drop twice; got 1ep,01ep"),
    (["--lr_drops=3ep"], "lr_drops must lie inside the training (3ep); got 3ep, which never takes effect: give drops "
                       "before 3ep (--lr_drops), or none (--lr_drops=)"),
    (["--lr_drops=2ep,7ep"], "lr_drops must lie inside the training (3ep); got 7ep"),
    (["--length=1ep"], "lr_drops must lie inside the training (1ep); got 2ep, which never takes effect: give drops "
                       "before 1ep (--lr_drops), or none (--lr_drops=)"),  # the default drop, 2ep
    (["--runs_dir="], "runs_dir is empty; name the folder of run folders"),
    (["--from={tmp}"], "--experiment=init_ticket takes no --from (it would be ignored); the experiments that read "
                       "run folders: export, plan, robustness"),
    (["--experiment=sweep", "--from={tmp}"], "--experiment=sweep takes no --from"),
    (["--input_shape=28,28"], "input_shape takes height,width,channels (three integers, e.g. 32,32,3); got 28,28"),
    # values the data or the model refuses: found after loading, still before writing
    (SYNTHETIC + ["--num_blocks=4"], "cannot remove 4 blocks: at most 3 can be removed from resnet20"),
    (SYNTHETIC + ["--fraction=1.5"], "fraction must be in (0, 1]; got 1.5"),
    (SYNTHETIC + ["--method=filters", "--match=none"], "--match=none needs --num_filters"),
    (SYNTHETIC + ["--method=filters", "--match=none", "--num_filters=400"],
     "cannot remove 400 filters from resnet20: at most 327 of its 336 prunable filters can go"),
    (SYNTHETIC + ["--method=filter_masks", "--criterion=kl"],
     "unknown filter criterion 'kl'; valid names: expectabs, grasp, hrank, magnitude, random, snip"),
    (SYNTHETIC + ["--method=filters", "--num_blocks=4"], "cannot remove 4 blocks: at most 3"),
    (SYNTHETIC + ["--experiment=imp", "--rewind_epoch=1"], "rewind epoch must be in [0, 0] for a 1ep recipe"),
    (SYNTHETIC + ["--batch_size=1000"], "smaller than one batch (--batch_size=1000)"),
    (SYNTHETIC + ["--train_size=100000"], "train_size must be between 1 and 448; got 100000"),
    (SYNTHETIC + ["--val_size=600"], "val_size must be between 0 and 511; got 600"),
    (SYNTHETIC + ["--test_size=100000"], "test_size must be between 1 and 128; got 100000"),
    (SYNTHETIC + ["--input_shape=28,28,1"], "--input_shape=28,28,1 but synthetic images have 3 channels"),
    (SYNTHETIC + ["--model=resnet50", "--input_shape=16,16,3"], "keras.applications refused --model=resnet50"),
    (SYNTHETIC + ["--model=imagenet_resnet", "--depth=20"], "depth must be one of [18, 34, 50, 101, 152]"),
    (SYNTHETIC + ["--num_blocks=0"], "num_blocks"),
    (SYNTHETIC + ["--num_classes=2"], "--num_classes=2 but synthetic has labels up to 3; it needs at least 4"),
    (SYNTHETIC + ["--experiment=lottery", "--rewind_epoch=1"], "rewind epoch must be in [0, 0] for a 1ep recipe"),
    (SYNTHETIC + ["--experiment=sweep", "--sweep_rewind_epochs=0"],
     "sweep_rewind_epochs and sweep_rewind_steps need --sweep_experiment=lottery"),
    (["--dataset=cifar10", "--data_dir={tmp}/nothing"], "'cifar10' is not available in"),
    (["--dataset=fashion_mnist", "--data_dir={tmp}/nothing"], "apt-get install dataset-fashion-mnist"),
    (SYNTHETIC + ["--lr_drops=100000it"], "--lr_drops=100000it is at or past the end of the training (--length=1ep"),
    (SYNTHETIC + ["--warmup=1000it"], "--warmup=1000it is not shorter than the training (--length=1ep"),
    (SYNTHETIC + ["--evals=shift_sets"], "no published shift set tests synthetic models"),
    (SYNTHETIC + ["--serving_dir={tmp}/a_file"], "--serving_dir={tmp}/a_file: {tmp}/a_file is a file"),
    (["--carbon_country=ZZZ"], "carbon_country='ZZZ' is not a country codecarbon has a grid energy mix for"),
    (["--flagfile={tmp}/latin1.cfg"], "--flagfile={tmp}/latin1.cfg is not UTF-8 text (invalid start byte: byte 0xff"),
    (SYNTHETIC + ["--model=tests.user_models:raises_memory_error"],
     "--model=tests.user_models:raises_memory_error ran out of memory building the model"),
    (SYNTHETIC + ["--model=tests.user_models:exits"],
     "--model=tests.user_models:exits called sys.exit(0) instead of returning a keras.Model"),
    (["--runs_dir={tmp}/a_file"], "--runs_dir={tmp}/a_file is a file; it must be a folder"),
    (["--runs_dir={tmp}/dangling"], "the --runs_dir {tmp}/dangling is a link to {tmp}/gone, which does not exist"),
    # the API
    ("api", lambda: tl.find_ticket(tl.models.cifar_resnet(20), "random", num_blocks=1.5), TypeError,
     "num_blocks must be an integer; got 1.5"),
    ("api", lambda: tl.find_ticket(tl.models.cifar_resnet(20), "random", fraction="half"), TypeError,
     "fraction must be a number in [0, 1]; got 'half'"),
    ("api", lambda: tl.surgery.remove_blocks(tl.models.cifar_resnet(20), "stage1_block2"), TypeError,
     "names must be a list of block names"),
    ("api", lambda: tl.criteria.class_balanced_batch(np.zeros((3, 2)), np.array([0.5, 1.0, 2.0])), ValueError,
     "the labels must be whole numbers; got 0.5 at index 0"),
    ("api", lambda: tl.criteria.class_balanced_batch(np.zeros((3, 2)), np.array([0, -1, 2])), ValueError,
     "the labels must be class indices from 0; got -1 (at index 1)"),
    ("api", lambda: tl.Config.create(deepth=20), ValueError, "unknown config keys ['deepth']"),
    ("api", lambda: tl.train.Recipe(learning_rate=math.nan), ValueError, "learning_rate must be a finite number > 0"),
    ("api", lambda: tl.train.Recipe(batch_size=32.5), ValueError, "batch_size must be an integer >= 1; got 32.5"),
    ("api", lambda: tl.models.cifar_resnet(depth=33), ValueError, "depth must be 6n+2"),
    ("api", lambda: tl.criteria.get("snip")(tl.models.cifar_resnet(8)), ValueError, "needs data"),
    ("api", lambda: tl.Config.create(num_blocks=2.5), ValueError, "num_blocks must be an integer; got 2.5"),
    ("api", lambda: tl.Config.from_dict([]), TypeError, "a config is a JSON object of sections; got list"),
    ("api", lambda: tl.Config.from_dict({"model": {}, "data": [1]}), TypeError,
     "config section 'data' must be a JSON object; got list"),
    ("api", lambda: tl.Config.create(length="２ep"), ValueError, "a length is a positive count"),
    ("api", lambda: tl.criteria.class_balanced_batch(np.zeros((40, 4)), np.arange(5)), ValueError,
     "class_balanced_batch: the labels: 5 labels for 40 images; give one label per image"),
    ("api", lambda: tl.criteria.class_balanced_batch(np.zeros((4, 4)), np.zeros((4, 2, 2))), ValueError,
     "the labels must be a 1-D array of class indices or one-hot rows; got shape (4, 2, 2)"),
    ("api", lambda: tl.train.Recipe(lr_drops=("5ep", "5ep")), ValueError, "lr_drops lists a drop twice"),
    ("api", lambda: tl.graph.cost.memory(tl.models.cifar_resnet(8), batch_size=1.5), TypeError,
     "batch_size must be an integer >= 1; got 1.5"),
    ("api", lambda: tl.train.evaluate(tl.models.cifar_resnet(8), None), TypeError,
     "model must be a compiled keras.Model"),
    ("api", lambda: tl.export.save_model("m", "exports/x"), TypeError, "model must be a keras.Model; got str"),
    ("api", lambda: tl.export.save_ticket(None, "exports/x"), TypeError,
     "result must be a TicketResult (from tl.find_ticket) or a keras.Model; got NoneType"),
]


def _cli(args, runs_dir, capsys):
    """(exit code, what the user sees on stderr) of one command line, run in-process."""
    cli.FLAGS.unparse_flags()
    try:
        argv = cli.parse_flags(["tf-lottery", f"--runs_dir={runs_dir}", *args])  # later flags win
        code = cli.main(argv)
        return code, capsys.readouterr().err
    except (app.UsageError, flags.Error) as error:  # absl prints it as one line and exits 1
        return 1, str(error)
    finally:
        cli.FLAGS.unparse_flags()


def _id(case):
    return " ".join(case[0]).replace("--", "")[:60] if isinstance(case[0], list) else None


@pytest.mark.parametrize("case", CASES, ids=[_id(c) or f"api{i}" for i, c in enumerate(CASES)])
def test_bad_input_is_refused_with_one_clear_line_before_anything_is_written(case, tmp_path, capsys):
    if case[0] == "api":
        _, call, kind, message = case
        with pytest.raises(kind) as raised:
            call()
        assert message in str(raised.value)
        return
    args, message = case
    (tmp_path / "a_file").write_text("not a folder")
    (tmp_path / "dangling").symlink_to(tmp_path / "gone")
    (tmp_path / "latin1.cfg").write_bytes(b"--depth=\xff20\n")
    code, seen = _cli([a.format(tmp=tmp_path) for a in args], tmp_path / "runs", capsys)
    assert code != 0
    assert message.format(tmp=tmp_path) in seen, seen
    assert len(seen.strip().splitlines()) == 1 and "Traceback" not in seen
    assert not (tmp_path / "runs").exists()  # nothing written


def test_the_catalogue_is_large_enough():
    assert len(CASES) >= 48


def test_lengths_in_steps_work_wherever_no_epoch_arithmetic_is_needed(tmp_path):
    from tf_lottery.config import Config
    from tf_lottery.experiments import sweep

    recipe = tl.train.Recipe(length="500it", lr_drops=("300it",))
    assert recipe.resumed_at(0) is recipe  # rewinding to θ0 is the whole recipe
    with pytest.raises(ValueError, match="resuming at an epoch needs lengths in epochs"):
        recipe.resumed_at(1)
    for experiment in ("sweep", "compare"):
        config = Config.create(experiment=experiment, dataset="synthetic", train_size=None, val_size=64, length="20it", lr_drops=("10it",),
                               sweep_num_blocks=(1, 2), runs_dir=str(tmp_path))
        sweep.check(config, sweep.points(config))  # refused before 0.9: "needs lengths in epochs"
    imp = Config.create(experiment="sweep", sweep_experiment="imp", dataset="synthetic", train_size=None, val_size=64, length="20it", lr_drops=(),
                        runs_dir=str(tmp_path))
    sweep.check(imp, sweep.points(imp))


def test_one_spelling_per_length_names_one_run():
    from tf_lottery.config import Config

    plain = Config.create(length="2ep", lr_drops=("1ep",))
    for length, drops in [("02ep", ("1ep",)), (" 2 ep", ("01ep",)), ("2ep", (" 1ep",))]:
        assert Config.create(length=length, lr_drops=drops).digest("dense") == plain.digest("dense")
    ordered = Config.create(length="10ep", lr_drops=("4ep", "8ep"))
    assert Config.create(length="10ep", lr_drops=("8ep", "4ep")).digest("dense") == ordered.digest("dense")
    assert ordered.training.lr_drops == ("4ep", "8ep")


def test_a_registry_named_by_a_list_says_so_in_one_line():
    import tf_lottery as tl

    with pytest.raises(tl.core.registry.UnknownNameError, match=r"named by one string; got list \['grasp'\]"):
        tl.criteria.get(["grasp"])


def test_an_angular_window_longer_than_the_blocks_is_refused():
    import numpy as np

    import tf_lottery as tl

    model = tl.models.cifar_resnet(depth=8, num_classes=3, input_shape=(8, 8, 1), seed=0)
    images = np.zeros((6, 8, 8, 1), "float32")
    with pytest.raises(ValueError, match="angular window=1000 is longer than resnet8's 3 blocks; give a window of 1 to 3"):
        tl.criteria.get("angular")(model, images, window=1000)


def test_cpu_devices_has_a_bound_with_its_reason():
    from tf_lottery.config import Config

    with pytest.raises(ValueError, match="1024"):
        Config.create(cpu_devices=100000)


def test_tensorboard_without_its_package_is_refused_before_anything_is_written(tmp_path, capsys, monkeypatch):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a))
    code, seen = _cli(SYNTHETIC + ["--tensorboard"], tmp_path / "runs", capsys)
    assert code == 2 and "--tensorboard writes logs through the tensorboard package, which is not installed: pip " \
                          "install 'tf_lottery[tensorboard]'" in seen
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("method", ["imp", "filter_masks"])
def test_a_baseline_without_its_extra_is_refused_naming_the_extra(tmp_path, capsys, monkeypatch, method):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tensorflow_model_optimization" else real(name, *a))
    code, seen = _cli(SYNTHETIC + [f"--method={method}", "--criterion=snip"], tmp_path / "runs", capsys)
    assert code == 2 and len(seen.strip().splitlines()) == 1
    assert (f"--method={method} trains under tfmot, which needs the baselines extra (tensorflow_model_optimization "
            "missing): pip install 'tf_lottery[baselines]'") in seen
    assert not (tmp_path / "runs").exists()
