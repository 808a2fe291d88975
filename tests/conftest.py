"""Shared fixtures: small models and inputs, built once per session where safe."""

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
    """Tests marked ``baselines`` (tfmot and tf_keras) are skipped, by name, without the baselines extra."""
    if legacy.baselines_installed():
        return
    skip = pytest.mark.skip(reason="needs the baselines extra: pip install 'tf_lottery[baselines]'")
    for item in items:
        if "baselines" in item.keywords:
            item.add_marker(skip)
