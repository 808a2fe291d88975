"""Training under tf.distribute: mirrored on two logical CPU devices, two local workers, resume.

The test session splits the CPU into two logical devices (conftest.py), so MirroredStrategy
runs in this process; the command-line runs are processes of their own (``--cpu_devices=2``).

Tolerances: a replica's gradient is the mean over its half of the batch and the halves are
summed by the all-reduce, so the sums run in another order than on one device (float32
differences near 1e-7 after a step), and synchronized batch norm computes the variance as
E[x^2] - E[x]^2 where one device takes two passes. With ``--sync_batchnorm`` the two replicas
otherwise train exactly what one device trains on the global batch, so:

* after three steps, weights agree to 1e-4 (measured: 1.2e-7 after one step);
* after a whole run (2 x 14 steps at learning rate 0.02), weights agree to 2 % + 5e-3 (measured:
  at most 0.32 % on a moving variance, 7.5e-4 on a kernel), the removed blocks are the same,
  block scores agree to 1e-5 and test accuracy within two of 128 examples (an argmax moves
  only at a near-tie).
"""

import glob
import json
import os
import socket
import subprocess
import sys
import tempfile

import h5py
import keras
import numpy as np
import pytest

import tf_lottery as tl
from tf_lottery.runtime import distribute
from tf_lottery.config import Config

ARGS = ["--dataset=synthetic", "--train_size=0", "--val_size=64", "--length=2ep", "--lr_drops=", "--num_blocks=1",
        "--depth=14", "--min_blocks_per_stage=1", "--evals=clean", "--learning_rate=0.02", "--noexport"]
GLOBAL_BATCH = 64


@pytest.fixture
def mirrored_on_two_cpus():
    """This process under MirroredStrategy on /cpu:0 and /cpu:1, synchronized batch norm."""
    execution = distribute.activate(Config.create(strategy="mirrored", cpu_devices=2, sync_batchnorm=True).runtime)
    try:
        yield execution
    finally:
        distribute.deactivate()


def _train(config, recipe):
    data = tl.data.prepare(config.data_options())
    with distribute.scope():
        keras.utils.set_random_seed(0)
        model = tl.experiments.preparing.dense_model(config, data)
        tl.train.fit(model, data, recipe, tempfile.mkdtemp(), "dense", verbose=0)
    return [w.numpy() for w in model.weights], [w.path for w in model.weights]


def test_mirrored_on_two_cpu_devices_trains_the_weights_of_one_device(request):
    config = Config.create(dataset="synthetic", depth=8, train_size=None, val_size=0, weight_decay=1e-4)
    one, names = _train(config, tl.train.Recipe(length="3it", batch_size=32, learning_rate=0.02, lr_drops=()))
    execution = request.getfixturevalue("mirrored_on_two_cpus")
    assert execution.replicas == 2 and execution.is_chief
    # 16 images a replica, the learning rate scaled linearly: the global recipe of one device.
    two, _ = _train(config, tl.train.Recipe(length="3it", batch_size=16, learning_rate=0.01, lr_drops=()))
    for name, a, b in zip(names, one, two):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-4, err_msg=name)


def test_without_sync_batchnorm_each_replica_normalizes_its_own_half():
    config = Config.create(dataset="synthetic", depth=8, train_size=None, val_size=0)
    recipe = tl.train.Recipe(length="1it", batch_size=16, learning_rate=0.01, lr_drops=())
    distribute.activate(Config.create(strategy="mirrored", cpu_devices=2, sync_batchnorm=True).runtime)
    try:
        synced, names = _train(config, recipe)
    finally:
        distribute.deactivate()
    distribute.activate(Config.create(strategy="mirrored", cpu_devices=2).runtime)
    try:
        halves, _ = _train(config, recipe)
    finally:
        distribute.deactivate()
    # Statistics over 16 images instead of 32 change the step far beyond float noise.
    assert max(np.abs(a - b).max() for a, b in zip(synced, halves)) > 1e-3


def test_global_recipe_and_identity():
    recipe = tl.train.Recipe(batch_size=64, learning_rate=0.1)
    assert distribute.Execution().global_recipe(recipe) is recipe
    assert distribute.Execution().identity() == {}
    base = Config()
    assert base.identity("dense") == Config().identity("dense")  # one float32 replica: folders unchanged
    try:
        distribute.activate(Config.create(strategy="mirrored", cpu_devices=2).runtime)
        scaled = distribute.current().global_recipe(recipe)
        assert (scaled.batch_size, scaled.learning_rate) == (128, 0.2)
        assert base.identity("dense")["execution"] == {"replicas": 2, "lr_scaling": "linear", "sync_batchnorm": False}
    finally:
        distribute.deactivate()
    try:
        distribute.activate(Config.create(strategy="mirrored", cpu_devices=2, lr_scaling="none").runtime)
        assert distribute.current().global_recipe(recipe).learning_rate == 0.1
    finally:
        distribute.deactivate()


@pytest.mark.parametrize("flags, message", [
    (dict(strategy="default", devices=("cpu:0",)), "--devices is for --strategy=mirrored"),
    (dict(strategy="mirrored", devices=("gpu:7",)),
     "--devices names 'gpu:7', which this machine does not have; it has cpu:0, cpu:1"),
    (dict(strategy="mirrored", devices=("cpu:0", "cpu:0")), "devices lists cpu:0 twice"),
    (dict(cpu_devices=3), "--cpu_devices=3 must be set before TensorFlow starts"),
    (dict(strategy="tpu"), "--strategy=tpu found no TPU"),
])
def test_bad_strategy_settings_are_named(flags, message):
    with pytest.raises((ValueError, RuntimeError), match=message.replace("(", r"\(").replace(".", r"\.")):
        distribute.activate(Config.create(**flags).runtime)
    distribute.deactivate()


def test_a_tfmot_method_is_refused_under_several_replicas(mirrored_on_two_cpus):
    config = Config.create(dataset="synthetic", method="imp", length="1ep", lr_drops=(), train_size=None, val_size=0)
    with pytest.raises(ValueError, match="--method=imp trains its tickets with tfmot"):
        tl.experiments.preparing.set_up(config)


def test_float32_head_and_scoring_under_mixed_bfloat16():
    data = tl.data.prepare(tl.data.DataOptions("synthetic"))
    config = Config.create(dataset="synthetic", depth=8)
    keras.utils.set_random_seed(0)
    reference = tl.experiments.preparing.dense_model(config, data)
    distribute.activate(Config.create(mixed_precision=True).runtime)
    try:
        assert distribute.current().precision == "mixed_bfloat16"  # no GPU here
        keras.utils.set_random_seed(0)
        model = tl.experiments.preparing.dense_model(config, data)
        assert model.get_layer("stem_conv").compute_dtype == "bfloat16"
        assert model.get_layer("logits").compute_dtype == "float32"
        assert model(data.arrays("test", 4)[0]).dtype == "float32"
        batch = data.arrays("train", 40)
        mixed = tl.criteria.get("grasp")(model, batch)
        assert model.get_layer("stem_conv").compute_dtype == "bfloat16"  # restored after scoring
    finally:
        distribute.deactivate()
    # Same θ0 (variables are float32 under a mixed policy), scored in float32: the same scores.
    for a, b in zip(reference.weights, model.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    plain = tl.criteria.get("grasp")(reference, batch)
    assert mixed.keys() == plain.keys()
    for name in plain:
        assert mixed[name] == pytest.approx(plain[name], rel=1e-4, abs=1e-9)


# --- whole runs, from the command line ---------------------------------------------------------------

def _cli(runs_dir, *extra, env_extra=None, wait=True):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", **(env_extra or {})}
    env.pop("TF_LOTTERY_CRASH_AT", None)
    env.update(env_extra or {})
    command = [sys.executable, "-m", "tf_lottery.cli", *ARGS, *extra, f"--runs_dir={runs_dir}"]
    if not wait:
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=3600)


def _weights(path):
    found = {}
    with h5py.File(path) as handle:
        handle.visititems(lambda k, v: found.__setitem__(k, v[()]) if isinstance(v, h5py.Dataset) else None)
    return found


def _result(runs_dir):
    (folder,) = glob.glob(os.path.join(runs_dir, "init_ticket-*"))
    return folder, json.load(open(os.path.join(folder, "result.json")))


@pytest.fixture(scope="module")
def one_device(tmp_path_factory):
    runs = tmp_path_factory.mktemp("one_device")
    result = _cli(runs, f"--batch_size={GLOBAL_BATCH}")
    assert result.returncode == 0, result.stderr[-3000:]
    return runs


@pytest.fixture(scope="module")
def mirrored(tmp_path_factory):
    runs = tmp_path_factory.mktemp("mirrored")
    result = _cli(runs, f"--batch_size={GLOBAL_BATCH // 2}", "--learning_rate=0.01", "--strategy=mirrored",
                  "--cpu_devices=2", "--sync_batchnorm")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "strategy mirrored (2 replicas), float32" in result.stdout
    return runs


def _assert_agree(runs, reference):
    mine_folder, mine = _result(runs)
    their_folder, theirs = _result(reference)
    assert os.path.basename(mine_folder) != os.path.basename(their_folder)  # replicas are part of the identity
    assert mine["ticket"]["removed"] == theirs["ticket"]["removed"]  # scored once, on the same θ0
    for block, score in theirs["ticket_search"]["scores"].items():
        assert mine["ticket_search"]["scores"][block] == pytest.approx(score, rel=1e-5, abs=1e-12)
    for side in ("dense", "ticket"):
        assert mine[side]["train"]["steps"] == theirs[side]["train"]["steps"]
        assert abs(mine[side]["test"]["accuracy"] - theirs[side]["test"]["accuracy"]) <= 2 / 128
    for pattern, name in (("dense-*", "dense"), ("init_ticket-*", "ticket")):
        (a_folder,), (b_folder,) = glob.glob(os.path.join(runs, pattern)), glob.glob(os.path.join(reference, pattern))
        a, b = (_weights(os.path.join(f, f"{name}_final.weights.h5")) for f in (a_folder, b_folder))
        assert a.keys() == b.keys()
        for key in a:
            if "optimizer" not in key:
                np.testing.assert_allclose(a[key], b[key], rtol=2e-2, atol=5e-3, err_msg=f"{name} {key}")


def test_init_ticket_under_mirrored_agrees_with_one_device(mirrored, one_device):
    _assert_agree(mirrored, one_device)


@pytest.mark.slow
def test_a_mirrored_run_killed_in_training_resumes_to_the_same_weights(mirrored, tmp_path):
    args = [f"--batch_size={GLOBAL_BATCH // 2}", "--learning_rate=0.01", "--strategy=mirrored", "--cpu_devices=2",
            "--sync_batchnorm"]
    killed = _cli(tmp_path, *args, env_extra={"TF_LOTTERY_CRASH_AT": "batch:10"})
    assert killed.returncode != 0
    resumed = _cli(tmp_path, *args)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "dense: resuming after epoch 1" in resumed.stdout
    for pattern, name in (("dense-*", "dense"), ("init_ticket-*", "ticket")):
        (a_folder,) = glob.glob(os.path.join(tmp_path, pattern))
        (b_folder,) = glob.glob(os.path.join(mirrored, pattern))
        a, b = (_weights(os.path.join(f, f"{name}_final.weights.h5")) for f in (a_folder, b_folder))
        for key in a:
            np.testing.assert_allclose(a[key], b[key], rtol=0, atol=1e-5, err_msg=f"{name} {key}")


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_local_workers_train_together_and_only_the_chief_writes(one_device, tmp_path):
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    workers = [
        _cli(tmp_path, f"--batch_size={GLOBAL_BATCH // 2}", "--learning_rate=0.01", "--strategy=multi_worker",
             "--sync_batchnorm", "--export",
             env_extra={"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})},
             wait=False)
        for i in range(2)]
    try:
        outputs = [worker.communicate(timeout=3600) for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
    for worker, (out, err) in zip(workers, outputs):
        assert worker.returncode == 0, err[-3000:]
    assert "strategy multi_worker (2 replicas, worker 0 of 2)" in outputs[0][0]
    _assert_agree(tmp_path, one_device)
    # The chief's run folders hold everything; the other worker wrote only its private folder.
    chief_files = {os.path.relpath(os.path.join(p, f), tmp_path) for p, _, fs in os.walk(tmp_path) for f in fs}
    assert any(path.startswith("init_ticket-") and path.endswith("export/ticket/metadata.json")
               for path in chief_files)
    private = [p for p in chief_files if p.startswith(".workers/")]
    assert private and all(p.startswith(".workers/1/") for p in private)
    assert {os.path.dirname(p).split("/")[2] for p in private} >= {"init_ticket-" + os.path.basename(
        _result(tmp_path)[0]).split("-")[1]}  # the same run, in the worker's own folder


def test_a_mixed_bfloat16_run_trains_and_exports_a_float32_serving_savedmodel(tmp_path):
    import tensorflow as tf

    result = _cli(tmp_path, "--batch_size=64", "--mixed_precision", "--export")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "strategy default (1 replica), mixed_bfloat16" in result.stdout
    folder, record = _result(tmp_path)
    config = json.load(open(os.path.join(folder, "config.json")))
    assert config["runtime"]["mixed_precision"] is True
    history = open(glob.glob(os.path.join(tmp_path, "dense-*", "history_dense.csv"))[0]).read().splitlines()
    losses = [float(line.split(",")[2]) for line in history[1:]]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]  # it trains
    served = tf.saved_model.load(os.path.join(folder, "export", "ticket", "saved_model"))
    signature = served.signatures["serving_default"]
    assert {name: spec.dtype for name, spec in signature.structured_outputs.items()} == {
        "logits": tf.float32, "probabilities": tf.float32, "class": tf.int64, "features": tf.float32}
    images, labels = tl.data.synthetic_arrays(seed=0)["test"]
    outputs = signature(image=tf.constant(images))
    accuracy = float(np.mean(outputs["class"].numpy() == labels))
    assert abs(accuracy - record["ticket"]["test"]["accuracy"]) <= 1 / 128


def _flagfiles(*names):
    from tf_lottery import cli

    here = os.path.join(os.path.dirname(__file__), "..", "..", "flags")
    cli.FLAGS.unparse_flags()
    try:
        cli.FLAGS(["tf-lottery", *(f"--flagfile={os.path.join(here, name)}" for name in names)])
        return cli.config_from_flags()
    finally:
        cli.FLAGS.unparse_flags()


@pytest.mark.parametrize("gpus", [1, 2, 4, 8])
def test_gpu_recipes_keep_the_papers_recipe_and_global_batch(gpus):
    table = _flagfiles("cifar10_table4_resnet56.cfg")
    config = _flagfiles("cifar10_table4_resnet56.cfg", f"gpus_{gpus}.cfg")
    runtime, training = config.runtime, config.training
    assert runtime.mixed_precision
    assert (training.length, training.learning_rate, training.lr_drops) == (
        table.training.length, table.training.learning_rate, table.training.lr_drops)
    assert config.sweep == table.sweep and config.model == table.model
    if gpus == 1:
        assert (runtime.strategy, runtime.xla, training.batch_size) == ("default", "auto", 128)
    else:
        assert (runtime.strategy, runtime.lr_scaling, runtime.sync_batchnorm) == ("mirrored", "none", True)
        assert runtime.devices == tuple(f"gpu:{i}" for i in range(gpus))
        assert training.batch_size * gpus == table.training.batch_size == 128


def test_a_gpu_recipe_on_a_machine_without_gpus_fails_before_writing(tmp_path):
    here = os.path.join(os.path.dirname(__file__), "..", "..", "flags")
    result = subprocess.run(
        [sys.executable, "-m", "tf_lottery.cli", f"--flagfile={here}/cifar10_table4_resnet56.cfg",
         f"--flagfile={here}/gpus_2.cfg", f"--runs_dir={tmp_path}"],
        capture_output=True, text=True, timeout=3600, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert result.returncode == 2
    assert "tf-lottery: error: --devices names 'gpu:0', which this machine does not have" in result.stderr
    assert "Traceback" not in result.stderr
    assert os.listdir(tmp_path) == []


def test_runs_trained_on_two_replicas_are_found_from_one_device(mirrored, tmp_path):
    """The execution a run was bound to is kept in config.json: exporting it again from a
    one-device process finds its dense run (whose folder name holds the replicas)."""
    folder, _ = _result(mirrored)
    saved = json.load(open(os.path.join(folder, "config.json")))
    assert saved["execution"] == {"lr_scaling": "linear", "replicas": 2, "sync_batchnorm": True}
    result = subprocess.run([sys.executable, "-m", "tf_lottery.cli", "--experiment=export", f"--from={folder}"],
                            capture_output=True, text=True, timeout=3600, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert result.returncode == 0, result.stderr[-3000:]
    assert os.path.exists(os.path.join(folder, "export", "ticket", "metadata.json"))
    (dense_folder,) = glob.glob(os.path.join(mirrored, "dense-*"))
    assert os.path.exists(os.path.join(dense_folder, "export", "dense", "metadata.json"))


def test_a_compare_with_a_tfmot_method_is_refused_before_any_point_runs(mirrored_on_two_cpus, tmp_path):
    config = Config.create(experiment="compare", dataset="synthetic", depth=14, min_blocks_per_stage=1, num_blocks=1,
                           length="1ep", lr_drops=(), train_size=None, val_size=0, runs_dir=str(tmp_path))
    with pytest.raises(ValueError, match="--method=(filter_masks|imp) trains its tickets with tfmot"):
        tl.experiments.get("compare")(config)
    assert os.listdir(tmp_path) in ([], [".locks"])
