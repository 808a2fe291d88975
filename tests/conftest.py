"""Shared fixtures: small models and inputs, built once per session where safe."""

import numpy as np
import pytest


@pytest.fixture
def images():
    """A fixed batch of 4 CIFAR-sized images."""
    return np.random.default_rng(123).standard_normal((4, 32, 32, 3)).astype("float32")
