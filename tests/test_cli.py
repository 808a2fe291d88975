import os
import re
import subprocess
import sys

import pytest
from absl import app

import tf_lottery as tl
from tf_lottery import cli


def _run(*args):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run(
        [sys.executable, "-m", "tf_lottery.cli", *args], capture_output=True, text=True, env=env, timeout=3600
    )


def test_describe_resnet56():
    result = _run("--experiment=describe", "--depth=56", "--dataset=cifar10")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "| stage3_block9 |     3 | yes       |  74368 | 4718592 |   3.752 |" in out
    assert "| stage2_block1 |     2 | no" in out
    for total in ("861,770", "125,747,840", "2,128", "| removable blocks                  |          24 |"):
        assert total in out


def test_describe_from_a_flagfile(tmp_path):
    flagfile = tmp_path / "small.cfg"
    flagfile.write_text("--experiment=describe\n--depth=20\n--input_shape=28,28,1\n--num_classes=7\n")
    result = _run(f"--flagfile={flagfile}")
    assert result.returncode == 0, result.stderr
    assert "resnet20: 7 classes, input (28, 28, 1)" in result.stdout


# The whole catalogue is tests/test_bad_input.py (in-process); these run as real processes to
# check the exit code and that no traceback reaches the user, one case per kind of refusal.
@pytest.mark.parametrize(
    "args, message",
    [
        (["--depth=33"], "depth must be 6n+2 with n >= 1"),
        (["--experiment=nope"], "unknown experiment 'nope'; valid names: compare, dense, describe, export, imp, "
                                "init_ticket, lottery, plan, robustness, sweep"),
        (["--shortcut=option_c"], "shortcut"),
        (["--no_such_flag=1"], "no_such_flag"),
        (["--blocks_per_stage=3,x,3"], "--blocks_per_stage takes comma-separated integers"),
        (["stray"], "unexpected arguments"),
        (["--experiment=lottery", "--criterion=hrank", "--aggregation=mean"],
         "criterion 'hrank' takes no option 'aggregation'; its options: batch_size"),
        (["--learning_rate=nan"], "learning_rate must be a finite number > 0; got nan"),
    ],
)
def test_bad_input_exits_nonzero_with_a_clear_message(args, message, tmp_path):
    result = _run(*args, f"--runs_dir={tmp_path}")
    assert result.returncode != 0
    assert message in result.stderr + result.stdout and "Traceback" not in result.stderr
    assert not os.listdir(tmp_path)  # nothing written


def test_a_value_with_control_characters_gives_one_printable_line(tmp_path):
    result = _run("--weight_decay=\r\x1e", f"--runs_dir={tmp_path}")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    ours = [line for line in result.stderr.splitlines() if "Flags parsing error" in line]
    assert ours == ["FATAL Flags parsing error: flag --weight_decay=\\r\\x1e: could not convert string to float: "
                    "'\\r\\x1e'"], result.stderr
    assert "\r" not in result.stderr and "\x1e" not in result.stderr
    in_a_list = _run("--epsilons=0\x1e0", f"--runs_dir={tmp_path}")  # a list of integers: our own message
    assert in_a_list.returncode != 0 and "\x1e" not in in_a_list.stderr
    assert "--epsilons takes comma-separated integers; got 0\\x1e0" in in_a_list.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--dataset=synthetic", "--train_size=0", "--val_size=0", "--num_blocks=4"],
         "cannot remove 4 blocks: at most 3 can be removed from resnet20, since every stage keeps min_blocks_per_stage=2 blocks (blocks per stage: stage 1: 3, stage 2: 3, stage 3: 3); lower it with min_blocks_per_stage= (flag --min_blocks_per_stage)"),
        (["--experiment=sweep", "--dataset=synthetic", "--train_size=0", "--val_size=0", "--sweep_num_blocks=1,2,4"],
         "cannot remove 4 blocks: at most 3 can be removed"),
        (["--experiment=sweep", "--dataset=synthetic", "--sweep_rewind_epochs=0,1"],
         "sweep_rewind_epochs and sweep_rewind_steps need --sweep_experiment=lottery"),
        (["--dataset=cifar10", "--data_dir={tmp}/nothing"], "'cifar10' is not available in"),
        (["--dataset=fashion_mnist", "--data_dir={tmp}/nothing"], "apt-get install dataset-fashion-mnist"),
    ],
)
def test_impossible_runs_fail_before_writing(args, message, tmp_path):
    runs = tmp_path / "runs"
    result = _run(*[a.format(tmp=tmp_path) for a in args], f"--runs_dir={runs}")
    assert result.returncode == 2
    assert "tf-lottery: error: " in result.stderr and message in result.stderr and "Traceback" not in result.stderr
    assert not runs.exists()


def test_a_complete_run_from_the_command_line(tmp_path):
    result = _run("--dataset=synthetic", "--val_size=64", "--train_size=0", "--length=1ep", "--lr_drops=",
                  "--batch_size=64", "--num_blocks=1", "--latency_batch_sizes=1,4", f"--runs_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| test accuracy (%)" in result.stdout and "| FLOPs " in result.stdout
    (folder,) = [n for n in os.listdir(tmp_path) if n.startswith("init_ticket-")]
    assert os.path.exists(tmp_path / folder / "export" / "ticket" / "saved_model" / "saved_model.pb")
    (dense,) = [n for n in os.listdir(tmp_path) if n.startswith("dense-")]
    assert os.path.exists(tmp_path / dense / "export" / "dense" / "saved_model" / "saved_model.pb")


def test_criteria_benchmark_script_writes_its_numbers(tmp_path):
    import json

    script = os.path.join(os.path.dirname(__file__), "..", "scripts", "benchmark_criteria.py")
    result = subprocess.run(
        [sys.executable, script, "--depth=8", "--examples=20", "--repeats=1", "--criteria=snip,random",
         f"--out={tmp_path}"],
        capture_output=True, text=True, timeout=3600,
    )
    assert result.returncode == 0, result.stderr
    saved = json.loads((tmp_path / "criteria_resnet8.json").read_text())
    assert set(saved["results"]) == {"snip", "random"}
    assert all(r["median_s"] > 0 for r in saved["results"].values())
    assert "| snip " in result.stdout


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/usr/share/datasets/fashion-mnist"), reason="dataset-fashion-mnist not installed")
def test_the_quick_demo(tmp_path):
    """`tf-lottery` with no flags but the output folder: the README's demo (about 4 minutes)."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run([sys.executable, "-m", "tf_lottery.cli", f"--runs_dir={tmp_path}"],
                            capture_output=True, text=True, env=env, timeout=3600)
    assert result.returncode == 0, result.stderr[-3000:]
    (folder,) = [n for n in os.listdir(tmp_path) if n.startswith("init_ticket-")]
    import json

    saved = json.loads((tmp_path / folder / "result.json").read_text())
    assert saved["data"] == {"train": 15000, "val": 1000, "test": 10000, "input_shape": [28, 28, 1]}
    assert saved["dense"]["test"]["accuracy"] > 0.6 and saved["ticket"]["test"]["accuracy"] > 0.6
    assert len(saved["ticket"]["removed"]) == 2


def test_help_lists_the_flags_by_section_with_type_default_and_allowed_values():
    text = cli.help_text()
    titles = [line[:-1] for line in text.splitlines() if line.endswith(":") and not line.startswith(" ")]
    assert titles[:9] == ["Examples", "run", "model", "data", "training", "method", "sweep", "evaluation", "runtime"]
    assert any(t.startswith("model settings: --model=cifar_resnet") for t in titles)
    assert "  --criterion  (one name; default: grasp)" in text
    method = text.split("\nmethod:\n", 1)[1].split("\n\n", 1)[0]
    assert "--criterion" in method and "--length" not in method  # each flag under its own section
    for flag in cli.OPTIONS:
        assert f"  --{flag}  (" in text, flag
    allowed = text.split("  --criterion  (one name; default: grasp)\n", 1)[1].split("\n  --", 1)[0]
    for name in tl.criteria.names():
        assert name in allowed


def test_help_is_printed_by_the_command_and_exits_zero():
    done = _run("--help")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "runtime:" in done.stdout and "--strategy  (" in done.stdout and "Traceback" not in done.stderr


def _run_quietly(*args):
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run([sys.executable, "-m", "tf_lottery.cli", *args], capture_output=True, text=True,
                          env={**env, "CUDA_VISIBLE_DEVICES": ""}, timeout=3600)


def test_the_command_starts_without_tensorflows_cpp_lines_and_verbosity_brings_them_back():
    quiet = _run_quietly("--experiment=describe", "--depth=8", "--dataset=synthetic")
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    for noise in ("absl::InitializeLog", "cudart_stub", "cpu_feature_guard", "cuInit"):
        assert noise not in quiet.stderr, quiet.stderr[-2000:]
    assert "resnet8" in quiet.stdout
    verbose = _run_quietly("--experiment=describe", "--depth=8", "--dataset=synthetic", "--verbosity=0")
    assert verbose.returncode == 0 and "absl::InitializeLog" in verbose.stderr  # held back, then printed
    help_ = _run_quietly("--help")
    assert help_.returncode == 0 and "absl::InitializeLog" not in help_.stderr and "Traceback" not in help_.stderr


def test_the_quieting_leaves_an_imported_tensorflow_alone():
    from tf_lottery.core import quiet

    assert quiet.quiet_tensorflow_startup() is False  # TensorFlow is imported in this process already


@pytest.mark.parametrize("level", [None, "2"])
def test_a_grasp_run_prints_no_tensorflow_log_lines_and_names_what_it_removes(tmp_path, level):
    """TensorFlow's C++ lines (the start-up's, and oneDNN's int32 notice when GraSP's second-order graph
    runs) stay off the terminal by default and when the user sets TF_CPP_MIN_LOG_LEVEL=2 themselves."""
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    if level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = level
    done = subprocess.run([sys.executable, "-m", "tf_lottery.cli", "--dataset=synthetic", "--train_size=256",
                           "--val_size=64", "--test_size=64", "--depth=14", "--min_blocks_per_stage=1",
                           "--num_blocks=1", "--length=1ep", "--lr_drops=", "--noexport", "--evals=clean",
                           f"--runs_dir={tmp_path}"], capture_output=True, text=True, env=env, timeout=3600)
    assert done.returncode == 0, done.stderr[-2000:]
    noise = [line for line in done.stderr.splitlines() if re.match(r"[EWI]0000 ", line)]
    assert not noise, noise
    removed = re.search(r"removing \['(\w+)'\]", done.stdout)
    assert removed, done.stdout[-2000:]
    summary = [p for p in tmp_path.glob("init_ticket-*/summary.md")][0].read_text()
    assert f"Removed: {removed[1]}." in summary


def _config_of(*args):
    """The config of a command line parsed as ``tf-lottery`` parses it (flagfiles named from the repository)."""
    cli.FLAGS.unparse_flags()
    cwd = os.getcwd()
    os.chdir(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        cli.parse_flags(["tf-lottery", *args])
        return cli.config_from_flags()
    finally:
        os.chdir(cwd)
        cli.FLAGS.unparse_flags()


def test_a_flagfiles_settings_of_another_builder_are_ignored_with_a_notice_for_a_users_model(capsys):
    pytest.importorskip("keras_hub")
    config = _config_of("--flagfile=flags/fortunes_causal_lm.cfg", "--model=tests.user_models:llama3",
                        "--model_args=layers=2")
    assert config.model.type == "tests.user_models:llama3" and config.model.settings.model_args == "layers=2"
    assert config.method.criterion == "grasp" and config.data.sequence_length == 128  # the rest of the flagfile holds
    notes = [line for line in capsys.readouterr().out.splitlines() if "note:" in line]
    assert len(notes) == 1 and notes[0].endswith(
        "note: --model=tests.user_models:llama3 takes no --hidden_dim, --num_heads, --num_layers (read from a "
        "flagfile, settings of another model builder): ignored")
    with pytest.raises(app.UsageError, match=r"--hidden_dim is not a setting of --model=tests.user_models:llama3; its "
                                             r"settings: model_args"):  # given on the command line itself
        _config_of("--flagfile=flags/fortunes_causal_lm.cfg", "--model=tests.user_models:llama3", "--hidden_dim=64")
    with pytest.raises(app.UsageError, match=r"--depth is not a setting of --model=byte_decoder"):
        _config_of("--flagfile=flags/fortunes_causal_lm.cfg", "--depth=56")
    assert _config_of("--flagfile=flags/fortunes_causal_lm.cfg").model.settings.hidden_dim == 128
