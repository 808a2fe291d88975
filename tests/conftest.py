"""Shared fixtures: small models and inputs, built once per session where safe."""

import importlib.util

import numpy as np
import pytest

from tf_lottery import legacy

from tf_lottery.runtime import distribute  # Two logical CPU devices for the whole session (before TensorFlow starts), so that
# MirroredStrategy runs in-process (tests/runtime/test_distribute.py); one-device code uses /cpu:0.
distribute.split_cpu(2)


@pytest.fixture
def images():
    """A fixed batch of 4 CIFAR-sized images."""
    return np.random.default_rng(123).standard_normal((4, 32, 32, 3)).astype("float32")


def pytest_collection_modifyitems(config, items):
    """Tests marked ``baselines`` (tfmot and tf_keras) are skipped, by name, without the baselines extra;
    those marked ``harness`` (lm-evaluation-harness) without the lm_eval extra."""
    extras = {"baselines": legacy.baselines_installed(), "harness": importlib.util.find_spec("lm_eval") is not None}
    reasons = {"baselines": "needs the baselines extra: pip install 'tf_lottery[baselines]'",
               "harness": "needs the lm_eval extra: pip install 'tf_lottery[lm_eval]'"}
    for marker, installed in extras.items():
        if installed:
            continue
        skip = pytest.mark.skip(reason=reasons[marker])
        for item in items:
            if marker in item.keywords:
                item.add_marker(skip)
