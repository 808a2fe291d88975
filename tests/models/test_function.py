"""``--model=package.module:function``: a user's model function in the config, the command line
and every experiment, with a run identity that follows the function."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import tf_lottery as tl
from tf_lottery.config import Config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMALL = "tests.user_models:small_resnet"


@pytest.mark.parametrize("text, expected", [
    ("", {}),
    ("width=4", {"width": 4}),
    ("width=4,act=gelu,rate=0.1,deep=true", {"width": 4, "act": "gelu", "rate": 0.1, "deep": True}),
    ("sizes=[1,2],width=3", {"sizes": [1, 2], "width": 3}),
    ('{"width": 4, "name": "x"}', {"width": 4, "name": "x"}),
])
def test_model_args_are_json_or_key_value_pairs(text, expected):
    assert tl.models.parse_model_args(text) == expected


@pytest.mark.parametrize("text, message", [
    ("width", "key=value pairs"), ("width=1,width=2", "gives 'width' twice"), ("{width: 1}", "not a JSON object"),
    ("[1, 2]", "key=value pairs"), ("1x=2", "key=value pairs"),
])
def test_bad_model_args_are_refused(text, message):
    with pytest.raises(ValueError, match=message):
        Config.create(model=SMALL, model_args=text)


def test_a_function_model_is_built_seeded_named_and_rebuilt_from_its_lineage():
    config = Config.create(model=SMALL, model_args="width=4", dataset="synthetic")
    info = tl.data.get("synthetic")
    model = tl.models.build(config.model, info, seed=3, weight_decay=1e-4)
    again = tl.models.build(config.model, info, seed=3, weight_decay=1e-4)
    assert model.name == "small_resnet" and tl.surgery.blocks(model) == ["add", "add_1", "add_2"]
    for a, b in zip(model.weights, again.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert model.get_layer("conv2d_1").kernel_regularizer.get_config()["l2"] == pytest.approx(1e-4)
    ticket = tl.surgery.remove_blocks(model, ["add_1"], min_blocks_per_stage=0)
    rebuilt = tl.models.rebuild(tl.models.lineage_json(ticket), weights_from=ticket)
    assert tl.surgery.blocks(rebuilt) == ["add", "add_2"]
    x = np.random.default_rng(0).normal(size=(2, 16, 16, 3)).astype("float32")
    np.testing.assert_array_equal(rebuilt.predict(x, verbose=0), ticket.predict(x, verbose=0))


def test_the_identity_follows_the_function_and_its_arguments():
    base = Config.create(model=SMALL, dataset="synthetic")
    wider = base.replace(model_args="width=16")
    assert base.identity("dense")["model"]["architecture"] != wider.identity("dense")["model"]["architecture"]
    assert base.digest("dense") != wider.digest("dense")
    assert base.replace(model_args="width=8").digest("dense") != base.digest("dense")  # the text is part of it
    assert base.identity("dense")["model"]["type"] == SMALL


_DIGEST_AND_BLOCKS = """
import sys, json, keras
sys.path.insert(0, {root!r})
if {build_first}:
    for _ in range(3):
        keras.layers.Add(); keras.layers.Conv2D(2, 1); keras.layers.Dense(2)   # bump Keras' name counters
from tf_lottery.config import Config
import tf_lottery as tl
config = Config.create(model={path!r}, dataset="synthetic")
model = tl.models.build(config.model, tl.data.get("synthetic"), seed=0)
print(json.dumps([config.digest("dense"), tl.surgery.blocks(model), model.name]))
"""


def test_block_names_and_identity_do_not_depend_on_what_the_process_built_first():
    runs = []
    for build_first in (False, True):
        script = _DIGEST_AND_BLOCKS.format(root=ROOT, build_first=build_first, path=SMALL)
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=3600, cwd=ROOT)
        assert done.returncode == 0, done.stderr[-2000:]
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    assert runs[0] == runs[1]
    assert runs[0][1] == ["add", "add_1", "add_2"] and runs[0][2] == "small_resnet"


def test_canonical_names_keep_the_names_an_author_gave():
    for _ in range(2):
        keras.layers.Conv2D(2, 1)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="stem")(inputs)
    y = keras.layers.Conv2D(4, 3, padding="same")(x)
    model = keras.Model(inputs, keras.layers.Add()([x, y]))
    tl.models.canonical_names(model)
    assert [op.name for op in model.operations] == ["input_layer", "stem", "conv2d", "add"]


@pytest.mark.parametrize("path, message", [
    ("tests.no_such_module:f", "module 'tests.no_such_module' does not import"),
    ("tests.user_models:missing", "has no function 'missing'"),
])
def test_a_model_path_that_does_not_import_is_refused(path, message):
    with pytest.raises(ValueError, match=message):
        Config.create(model=path)


def test_a_function_that_returns_no_model_is_refused():
    config = Config.create(model="tests.user_models:not_a_model", dataset="synthetic", input_shape=(16, 16, 3),
                           num_classes=4)
    with pytest.raises(TypeError, match="must return a keras.Model; got str"):
        tl.models.build(config.model, tl.data.get("synthetic"))


def test_a_function_model_of_two_outputs_is_refused_before_a_run_folder_is_written(tmp_path):
    command = [sys.executable, "-m", "tf_lottery.cli", "--model=tests.user_models:two_heads", "--dataset=synthetic",
               "--train_size=0", "--val_size=64", "--length=1ep", "--lr_drops=", f"--runs_dir={tmp_path}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600, cwd=ROOT,
                          env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert ("--model=tests.user_models:two_heads builds a model of 2 outputs (logits, aux); the command line trains, "
            "scores and evaluates a model of one output") in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_init_ticket_runs_end_to_end_on_a_function_model(tmp_path):
    command = [sys.executable, "-m", "tf_lottery.cli", f"--model={SMALL}", "--model_args=width=4,blocks=4",
               "--dataset=synthetic", "--train_size=0", "--val_size=64", "--length=1ep", "--lr_drops=", "--batch_size=64",
               "--num_blocks=1", "--min_blocks_per_stage=1", "--latency_batch_sizes=1", "--memory_batch_size=8",
               f"--runs_dir={tmp_path}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600, cwd=ROOT,
                          env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert done.returncode == 0, done.stderr[-3000:]
    (folder,) = [p for p in tmp_path.iterdir() if p.name.startswith("init_ticket-")]
    result = json.loads((folder / "result.json").read_text())
    assert len(result["ticket"]["removed"]) == 1 and result["ticket"]["removed"][0].startswith("add")
    config = json.loads((folder / "config.json").read_text())
    assert config["model"]["type"] == SMALL and config["model"]["model_args"] == "width=4,blocks=4"
    metadata = json.loads((folder / "export" / "ticket" / "metadata.json").read_text())
    assert metadata["lineage"]["builder"] == SMALL and metadata["lineage"]["spec"]["model_args"] == {
        "width": 4, "blocks": 4}
    assert metadata["lineage"]["removed"] == result["ticket"]["removed"]
    again = subprocess.run(command, capture_output=True, text=True, timeout=3600, cwd=ROOT,
                           env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert again.returncode == 0 and f"this config already ran: {folder}" in again.stdout + again.stderr
