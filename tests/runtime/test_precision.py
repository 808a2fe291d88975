"""--precision: what auto resolves to, what stays float32 under bfloat16, and resuming in the same precision."""

import glob
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import tf_lottery as tl
from tf_lottery.config import Config
from tf_lottery.runtime import distribute, precision
from tf_lottery.training import resume


@pytest.fixture
def bfloat16():
    execution = distribute.activate(Config.create(precision="bfloat16").runtime)
    try:
        yield execution
    finally:
        distribute.deactivate()


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16 amx_tile\nbugs\t\t: none\n")
    assert distribute.cpu_flags(str(info)) == {"fpu", "avx512f", "avx512_bf16", "amx_tile"}
    assert distribute.cpu_flags(str(tmp_path / "missing")) == frozenset()  # another OS: nothing detected


@pytest.mark.parametrize("flags, native", [({"avx512f", "avx512_bf16"}, True), ({"amx_bf16"}, True),
                                           ({"avx512f", "avx2"}, False), (set(), False)])
def test_bfloat16_is_detected_from_the_cpu_flags(flags, native):
    assert distribute.has_bfloat16("default", frozenset(flags)) is native  # no GPU on the test machines
    assert distribute.has_bfloat16("tpu", frozenset(flags)) is True


@pytest.mark.parametrize("native, policy", [(True, "mixed_bfloat16"), (False, "float32")])
def test_auto_is_bfloat16_only_where_the_hardware_has_it(monkeypatch, native, policy):
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx512_bf16"} if native else {"avx2"}))
    assert distribute.precision_policy("auto") == policy


def test_explicit_precisions_and_the_older_flag():
    assert distribute.precision_policy("float32") == "float32"
    assert distribute.precision_policy("bfloat16") == "mixed_bfloat16"
    assert distribute.precision_policy("float32", mixed=True) == "mixed_bfloat16"  # --mixed_precision, no GPU
    with pytest.raises(ValueError, match="--precision=float16 needs a GPU"):
        distribute.precision_policy("float16")
    with pytest.raises(ValueError, match="precision must be one of auto, float32, bfloat16, float16; got 'half'"):
        distribute.precision_policy("half")
    with pytest.raises(ValueError, match="--mixed_precision and --precision=bfloat16 both set"):
        Config.create(precision="bfloat16", mixed_precision=True)


def test_the_resolved_policy_enters_the_identity_and_auto_resolving_to_float32_keeps_old_folders(monkeypatch):
    plain = Config.create()
    distribute.activate(Config.create(precision="bfloat16").runtime)
    try:
        mixed = Config.create().bound()
        assert mixed.precision == "mixed_bfloat16"
        assert mixed.identity("dense")["execution"] == {"precision": "mixed_bfloat16"}
    finally:
        distribute.deactivate()
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx2"}))
    distribute.activate(Config.create(precision="auto").runtime)
    try:
        assert Config.create().bound().digest("ticket") == plain.digest("ticket")
    finally:
        distribute.deactivate()


def test_under_bfloat16_variables_head_and_loss_are_float32(bfloat16):
    data = tl.data.prepare(tl.data.DataOptions("synthetic", train_size=64, val_size=0, test_size=32))
    config = Config.create(dataset="synthetic", depth=8)
    model = tl.experiments.preparing.dense_model(config, data)
    recipe = tl.train.Recipe(length="1ep", batch_size=32, lr_drops=())
    tl.train.compile_model(model, recipe, steps_per_epoch=2)
    images, labels = data.arrays("train", 32)
    assert model.get_layer("stage1_block1_conv1").compute_dtype == "bfloat16"
    assert model.get_layer("logits").compute_dtype == "float32"
    logits = model(images, training=True)
    assert logits.dtype == "float32"
    assert model.compute_loss(x=images, y=labels, y_pred=logits).dtype == "float32"
    model.fit(images, labels, batch_size=32, epochs=1, verbose=0)
    assert {v.dtype for v in model.weights} == {"float32"}
    assert {v.dtype for v in model.optimizer.variables if v.path != model.optimizer.iterations.path} == {"float32"}


def _model(policy):
    keras.mixed_precision.set_global_policy(policy)
    try:
        return tl.models.cifar_resnet(8, input_shape=(16, 16, 3), num_classes=4, seed=0)
    finally:
        keras.mixed_precision.set_global_policy("float32")


class _KillInSecondEpochEnd(keras.callbacks.Callback):
    """Killed at the end of epoch 1 (0-based) before its checkpoint: epoch 0's is the newest."""

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            raise KeyboardInterrupt("killed")


def test_a_training_killed_in_bfloat16_resumes_in_bfloat16_and_refuses_float32(tmp_path):
    data = tl.data.prepare(tl.data.DataOptions("synthetic", train_size=128, val_size=0, test_size=32))
    recipe = tl.train.Recipe(length="3ep", batch_size=32, learning_rate=0.05, lr_drops=())
    with pytest.raises(KeyboardInterrupt):
        tl.train.fit(_model("mixed_bfloat16"), data, recipe, str(tmp_path), "dense", verbose=0,
                     extra_callbacks=[_KillInSecondEpochEnd()])
    progress = json.load(open(tmp_path / "resume_dense" / "progress.json"))
    assert progress["precision"] == "mixed_bfloat16" and progress["checkpoints"] == [1]
    with pytest.raises(ValueError, match="computes in mixed_bfloat16, but this model computes in float32"):
        tl.train.fit(_model("float32"), data, recipe, str(tmp_path), "dense", verbose=0)
    resumed = _model("mixed_bfloat16")
    result = tl.train.fit(resumed, data, recipe, str(tmp_path), "dense", verbose=0)
    assert result["history"]["epoch"] == [0, 1, 2] and result["timing"]["sessions"] == 2
    assert resumed.get_layer("stage1_block1_conv1").compute_dtype == "bfloat16"
    assert resume.precision_of(resumed) == "mixed_bfloat16"
    assert np.all(np.isfinite(result["history"]["loss"]))


def _cli(runs_dir, *extra, env_extra=None):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", **(env_extra or {})}
    command = [sys.executable, "-m", "tf_lottery.cli", "--dataset=synthetic", "--train_size=0", "--val_size=64",
               "--length=2ep", "--lr_drops=", "--num_blocks=1", "--depth=14", "--min_blocks_per_stage=1",
               "--evals=clean", "--noexport", "--batch_size=64", f"--runs_dir={runs_dir}", *extra]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=3600)


def test_a_run_killed_in_bfloat16_resumes_in_its_own_folder_in_bfloat16(tmp_path):
    killed = _cli(tmp_path, "--precision=bfloat16", env_extra={"TF_LOTTERY_CRASH_AT": "batch:10"})
    assert killed.returncode != 0
    resumed = _cli(tmp_path, "--precision=bfloat16")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "strategy default (1 replica), mixed_bfloat16" in resumed.stdout
    assert "dense: resuming after epoch 1" in resumed.stdout
    (dense,) = glob.glob(os.path.join(tmp_path, "dense-*"))
    assert json.load(open(os.path.join(dense, "config.json")))["execution"] == {"precision": "mixed_bfloat16"}
    (run,) = glob.glob(os.path.join(tmp_path, "init_ticket-*"))
    assert "Precision: mixed_bfloat16." in open(os.path.join(run, "summary.md")).read()
    float32 = _cli(tmp_path, "--precision=float32")  # another precision: other folders, nothing resumed
    assert float32.returncode == 0, float32.stderr[-3000:]
    assert "resuming" not in float32.stdout and len(glob.glob(os.path.join(tmp_path, "dense-*"))) == 2


def test_float16_on_a_cpu_is_one_clear_line_and_nothing_is_written(tmp_path):
    result = _cli(tmp_path / "runs", "--precision=float16")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "tf-lottery: error: --precision=float16 needs a GPU (float16 on CPUs and TPUs is emulated and needs loss "
        "scaling); use --precision=bfloat16 or auto")
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists() or not os.listdir(tmp_path / "runs")
