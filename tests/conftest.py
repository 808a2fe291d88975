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


def _transformers_installed() -> bool:
    """Whether the transformers extra is installed (looked up, not imported: torch stays out of this process)."""
    return all(importlib.util.find_spec(name) is not None for name in ("transformers", "torch", "safetensors"))


def pytest_collection_modifyitems(config, items):
    """Tests marked ``baselines`` (tfmot and tf_keras) are skipped, by name, without the baselines extra;
    tests marked ``transformers`` without the transformers extra; tests marked ``harness``
    (lm-evaluation-harness) without the lm_eval extra."""
    skips = {}
    if not legacy.baselines_installed():
        skips["baselines"] = pytest.mark.skip(reason="needs the baselines extra: pip install 'tf_lottery[baselines]'")
    if not _transformers_installed():
        skips["transformers"] = pytest.mark.skip(
            reason="needs the transformers extra: pip install 'tf_lottery[transformers]'")
    if importlib.util.find_spec("lm_eval") is None:
        skips["harness"] = pytest.mark.skip(reason="needs the lm_eval extra: pip install 'tf_lottery[lm_eval]'")
    for item in items:
        for marker, skip in skips.items():
            if marker in item.keywords:
                item.add_marker(skip)
