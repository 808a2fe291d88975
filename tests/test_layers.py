"""The layering is declared for every package, and the tests mirror the package tree.

``make test`` runs import-linter on the contracts in setup.cfg (no package imports a higher
layer, lazily or not; tf_keras and tfmot only in ``legacy``). These tests keep the contract
whole: a new package must take its place in a layer, or it would escape the check.
"""

import configparser
import os
import json
import re

import tf_lottery

ROOT = os.path.join(os.path.dirname(__file__), "..")
PACKAGE = os.path.dirname(tf_lottery.__file__)


def _contract(name):
    parser = configparser.ConfigParser()
    parser.read(os.path.join(ROOT, "setup.cfg"))
    return parser[f"importlinter:contract:{name}"]


def _subpackages():
    return sorted(entry for entry in os.listdir(PACKAGE)
                  if os.path.isfile(os.path.join(PACKAGE, entry, "__init__.py")))


def test_every_package_and_the_cli_stand_in_one_layer():
    layers = [line.strip() for line in _contract("layers")["layers"].splitlines() if line.strip()]
    placed = [name.strip() for layer in layers for name in layer.split("|")]
    assert len(placed) == len(set(placed)), "a package stands in two layers"
    assert sorted(placed) == sorted(["tf_lottery.cli"] + [f"tf_lottery.{p}" for p in _subpackages()])


def test_no_module_sits_flat_beside_the_packages():
    flat = sorted(f for f in os.listdir(PACKAGE) if f.endswith(".py"))
    assert flat == ["__init__.py", "cli.py"]


def test_only_legacy_may_import_tf_keras_and_tfmot():
    sources = {line.strip() for line in _contract("legacy")["source_modules"].splitlines() if line.strip()}
    assert sources == {"tf_lottery.cli"} | {f"tf_lottery.{p}" for p in _subpackages() if p != "legacy"}
    pattern = re.compile(r"^\s*(import|from)\s+(tf_keras|tensorflow_model_optimization)\b", re.M)
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            path = os.path.join(folder, name)
            if name.endswith(".py") and os.path.relpath(path, PACKAGE).split(os.sep)[0] != "legacy":
                assert not pattern.search(open(path).read()), path


def test_the_tests_mirror_the_package_tree():
    tests = os.path.dirname(__file__)
    folders = sorted(entry for entry in os.listdir(tests)
                     if os.path.isdir(os.path.join(tests, entry)) and entry not in ("fixtures", "__pycache__"))
    assert set(folders) <= set(_subpackages()), set(folders) - set(_subpackages())
    for folder in folders:
        assert os.path.isfile(os.path.join(tests, folder, "__init__.py")), folder


def test_import_tf_lottery_loads_no_heavy_package_beyond_what_keras_itself_loads():
    """The public face is lazy: ``import tf_lottery`` adds none of these to what ``import keras`` loads
    (Keras 3.15 itself imports matplotlib, scikit-learn and scipy through TensorFlow's keras)."""
    import subprocess
    import sys
    heavy = ["matplotlib", "sklearn", "scipy", "keras_hub", "tensorflow_datasets", "codecarbon", "statsmodels",
             "tf_lottery.reports", "tf_lottery.criteria", "tf_lottery.experiments"]
    probe = ("import sys, json; import {0}; print(json.dumps(sorted(m for m in {1} if m in sys.modules)))")
    seen = {}
    for module in ("keras", "tf_lottery"):
        done = subprocess.run([sys.executable, "-c", probe.format(module, heavy)], capture_output=True, text=True,
                              timeout=3600)
        assert done.returncode == 0, done.stderr[-2000:]
        seen[module] = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert seen["tf_lottery"] - seen["keras"] == set()
    assert not {"keras_hub", "tensorflow_datasets", "codecarbon"} & seen["tf_lottery"]
