import os
import subprocess
import sys

import pytest


def _run(*args):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run(
        [sys.executable, "-m", "tf_lottery.cli", *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_describe_resnet56():
    result = _run("--experiment=describe", "--depth=56")
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


@pytest.mark.parametrize(
    "args, message",
    [
        (["--depth=33"], "depth must be 6n+2 with n >= 1"),
        (["--experiment=nope"], "unknown experiment 'nope'; valid names: describe"),
        (["--shortcut=option_c"], "shortcut"),
        (["--no_such_flag=1"], "no_such_flag"),
        (["--blocks_per_stage=3,x,3"], "--blocks_per_stage takes comma-separated integers"),
        (["stray"], "unexpected arguments"),
    ],
)
def test_bad_input_exits_nonzero_with_a_clear_message(args, message):
    result = _run(*args)
    assert result.returncode != 0
    assert message in result.stderr + result.stdout


def test_criteria_benchmark_script_writes_its_numbers(tmp_path):
    import json

    script = os.path.join(os.path.dirname(__file__), "..", "scripts", "benchmark_criteria.py")
    result = subprocess.run(
        [sys.executable, script, "--depth=8", "--examples=20", "--repeats=1", "--criteria=snip,random",
         f"--out={tmp_path}"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    saved = json.loads((tmp_path / "criteria_resnet8.json").read_text())
    assert set(saved["results"]) == {"snip", "random"}
    assert all(r["median_s"] > 0 for r in saved["results"].values())
    assert "| snip " in result.stdout
