"""Depthwise convolutions (a ConvMixer): counted as filters, and a filter ticket is never matched to a
layer ticket whose removed blocks hold them (the comparison would not be like with like)."""

import keras
import numpy as np
import pytest

import tf_lottery as tl
from tf_lottery.config import Config


def conv_mixer(width=8, depth=4, classes=4):
    """A small ConvMixer: patch stem, then blocks of depthwise conv + residual, pointwise conv."""
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(width, 2, strides=2, name="stem")(inputs)
    for i in range(depth):
        y = keras.layers.DepthwiseConv2D(3, padding="same", name=f"mix{i}_depthwise")(x)
        y = keras.layers.Activation("gelu", name=f"mix{i}_gelu")(y)
        x = keras.layers.Add(name=f"mix{i}_add")([x, y])
        x = keras.layers.Conv2D(width, 1, name=f"mix{i}_pointwise")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(classes)(x), name="conv_mixer")


def test_depthwise_kernels_count_as_filters():
    model = conv_mixer()
    assert tl.cost.count_depthwise_filters(model) == 4 * 8  # 8 channels x multiplier 1, in each of 4 blocks
    assert tl.cost.count_filters(model) == 8 + 4 * 8 + 4 * 8  # stem, pointwise convs, depthwise kernels
    assert tl.cost.count_filters(model, depthwise=False) == 8 + 4 * 8
    ticket = tl.surgery.remove_blocks(model, ["mix1"], min_blocks_per_stage=0)
    assert tl.cost.count_filters(model) - tl.cost.count_filters(ticket) == 8  # the removed block's depthwise


def test_a_filter_ticket_is_not_matched_to_a_layer_ticket_that_removes_depthwise_filters():
    model = conv_mixer()
    x = np.random.default_rng(0).standard_normal((8, 16, 16, 3)).astype("float32")
    method = Config.create(method="filters", criterion="snip", num_blocks=1, min_blocks_per_stage=0).method
    with pytest.raises(ValueError, match=r"which hold 8 depthwise filters; a filter ticket removes block-internal "
                                         r"Conv2D filters only"):
        tl.tickets.get("filters")(model, (x, np.arange(8) % 4), method)
