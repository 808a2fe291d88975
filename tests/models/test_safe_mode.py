"""Artifacts never run code unless the user opts in: a lineage or a config.json naming
``package.module:function`` is not imported in safe mode (each case checked with a module that would
leave a marker file on import)."""

import json
import os
import subprocess
import sys
import uuid

import pytest

import tf_lottery as tl
from tf_lottery.config import Config
from tf_lottery.models import function

MODULE = '''
import pathlib
pathlib.Path({marker!r}).write_text("imported")

import keras

def build(input_shape, num_classes):
    inputs = keras.Input(input_shape)
    x = keras.layers.Flatten()(inputs)
    return keras.Model(inputs, keras.layers.Dense(num_classes)(x))
'''


@pytest.fixture
def hostile(tmp_path, monkeypatch):
    """A module in the working folder whose import leaves a marker; its unique name keeps it out of
    this process's earlier imports and trust."""
    name = f"marker_{uuid.uuid4().hex[:8]}"
    marker = tmp_path / "imported.txt"
    (tmp_path / f"{name}.py").write_text(MODULE.format(marker=str(marker)))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return f"{name}:build", marker


def _lineage(path):
    return {"builder": path, "spec": {"function": path, "model_args": {}, "input_shape": [4, 4, 1], "num_classes": 3,
                                      "seed": 0, "weight_decay": 0.0}, "removed": []}


def test_a_lineage_naming_a_function_is_refused_without_importing_it(hostile):
    path, marker = hostile
    with pytest.raises(function.UnsafeModelError, match="safe_mode=False"):
        tl.models.rebuild(json.dumps(_lineage(path)))
    assert not marker.exists() and path.split(":")[0] not in sys.modules


def test_safe_mode_false_is_the_opt_in(hostile):
    path, marker = hostile
    model = tl.models.rebuild(_lineage(path), safe_mode=False)
    assert marker.exists() and model.output.shape[-1] == 3


def test_a_config_read_from_a_file_imports_nothing(hostile, tmp_path):
    path, marker = hostile
    saved = json.loads(Config.create(dataset="synthetic", depth=8).to_json())
    saved["model"] = {"type": path, "input_shape": None, "num_classes": None, "model_args": ""}
    config = Config.from_dict(saved)
    assert config.model.type == path and not marker.exists()
    with pytest.raises(function.UnsafeModelError):
        config.identity("dense")  # its identity needs the built model: refused, not imported
    assert not marker.exists()
    # replace() on it does not trust it either
    with pytest.raises(function.UnsafeModelError):
        config.replace(seed=3).identity("dense")
    assert not marker.exists()


def test_the_callers_own_name_is_trusted(hostile):
    path, marker = hostile
    config = Config.create(model=path, dataset="synthetic")  # the caller named it: imported at once
    assert marker.exists() and config.model.type == path


def _cli(*args, cwd):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run([sys.executable, "-m", "tf_lottery.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env=env)


def test_export_from_a_shared_run_folder_imports_nothing_unless_the_same_model_is_given(hostile, tmp_path):
    path, marker = hostile
    run = tmp_path / "shared" / "dense-0123456789ab"
    run.mkdir(parents=True)
    saved = json.loads(Config.create(dataset="synthetic", depth=8, experiment="dense").to_json())
    saved["model"] = {"type": path, "input_shape": None, "num_classes": None, "model_args": ""}
    (run / "config.json").write_text(json.dumps(saved))
    done = _cli("--experiment=export", f"--from={run}", cwd=tmp_path)
    assert done.returncode != 0 and "Refused (safe mode)" in done.stderr and f"--model={path}" in done.stderr
    assert "Traceback" not in done.stderr and not marker.exists()
