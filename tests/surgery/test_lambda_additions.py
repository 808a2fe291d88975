"""A residual addition written as a ``keras.layers.Lambda`` (or as ``x + y``) closes a block like
``keras.layers.Add``; a two-input Lambda that computes anything else does not."""

import keras
import numpy as np
import pytest

import tf_lottery as tl
from tf_lottery import surgery

_ADDITIONS = {
    "lambda_index": lambda t: t[0] + t[1],
    "lambda_ops": lambda t: keras.ops.add(t[1], t[0]),
    "lambda_sum": lambda t: sum(t),
}
_NOT_ADDITIONS = {
    "difference": lambda t: t[0] - t[1],
    "product": lambda t: t[0] * t[1],
    "scaled": lambda t: t[0] + 0.5 * t[1],
    "rectified": lambda t: keras.ops.relu(t[0] + t[1]),
    "maximum": lambda t: keras.ops.maximum(t[0], t[1]),
    "first": lambda t: t[0] + 0.0 * t[1],
}


def _merge(kind, x, y, name):
    if kind == "add":
        return keras.layers.Add(name=name)([x, y])
    if kind == "plus":
        return x + y
    function = _ADDITIONS.get(kind) or _NOT_ADDITIONS[kind]
    return keras.layers.Lambda(function, name=name)([x, y])


def four_blocks(kind, skip=None):
    """Four residual blocks (conv, BN, ReLU, conv, BN; sum; ReLU) closed by ``kind``; ``skip``
    leaves one block out (the hand-built model without it)."""
    inputs = keras.Input((10, 10, 3), name="image")
    x = keras.layers.ReLU(name="stem_relu")(keras.layers.Conv2D(6, 3, padding="same", name="stem_conv")(inputs))
    for i in range(4):
        name = f"b{i}"
        if name == skip:
            continue
        y = keras.layers.Conv2D(6, 3, padding="same", name=f"{name}_conv1")(x)
        y = keras.layers.ReLU(name=f"{name}_relu1")(keras.layers.BatchNormalization(name=f"{name}_bn1")(y))
        y = keras.layers.BatchNormalization(name=f"{name}_bn2")(
            keras.layers.Conv2D(6, 3, padding="same", name=f"{name}_conv2")(y))
        x = keras.layers.ReLU(name=f"{name}_out")(_merge(kind, x, y, f"{name}_add"))
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="logits")(x), name=f"four_{kind}")


def _randomise(model, seed=0):
    """Non-trivial BatchNorm statistics, so that a block's contribution shows in inference mode."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.2, beta.shape),
                               rng.normal(0, 0.2, mean.shape), rng.uniform(0.5, 1.5, var.shape)])


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).standard_normal((4, 10, 10, 3)).astype("float32")


@pytest.mark.parametrize("kind", ["add", "plus", *_ADDITIONS])
def test_a_residual_sum_in_a_lambda_or_written_plus_closes_a_block(kind):
    model = four_blocks(kind)
    found = surgery.find_blocks(model)
    assert len(found) == 4 and all(b.removable for b in found), found
    if kind != "plus":  # x + y: Keras names the sums add, add_1, ...
        assert [b.name for b in found] == ["b0", "b1", "b2", "b3"]
    assert [b.branch for b in found][1] == ("b1_conv1", "b1_bn1", "b1_relu1", "b1_conv2", "b1_bn2")


@pytest.mark.parametrize("kind", ["lambda_index", "lambda_ops", "lambda_sum", "plus"])
@pytest.mark.parametrize("victim", [0, 2])
def test_removal_equals_the_hand_built_model_without_the_block(kind, victim, images):
    model = four_blocks(kind)
    _randomise(model)
    name = surgery.blocks(model)[victim]
    ticket = surgery.remove_blocks(model, [name], min_blocks_per_stage=0)
    assert len(surgery.blocks(ticket)) == 3 and name not in surgery.blocks(ticket)
    by_hand = four_blocks(kind, skip=f"b{victim}")
    tl.surgery.transfer_weights(model, by_hand)
    for layer in by_hand.layers:  # the same weights, bit for bit
        for mine, theirs in zip(ticket.get_layer(layer.name).weights, layer.weights):
            np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    np.testing.assert_array_equal(ticket(images, training=False).numpy(), by_hand(images, training=False).numpy())
    assert np.abs(ticket(images, training=False).numpy() - model(images, training=False).numpy()).max() > 1e-4


@pytest.mark.parametrize("kind", list(_NOT_ADDITIONS))
def test_a_two_input_lambda_that_is_not_a_sum_closes_no_block(kind):
    model = four_blocks(kind)
    assert surgery.find_blocks(model) == []
    with pytest.raises(ValueError, match="has no residual block.* 4 two-input Lambda layers \\(b0_add, b1_add, b2_add, "
                                         "b3_add\\) do not give the exact sum of two probe tensors"):
        surgery.remove_blocks(model, ["b1"])


def test_a_lambda_is_probed_once_per_layer():
    """The probe runs the Lambda on two small tensors once per layer; a ticket reusing the layer is not probed again."""
    calls = []

    def add(t):
        calls.append(1)
        return t[0] + t[1]

    inputs = keras.Input((10, 10, 3))
    x = keras.layers.Conv2D(6, 3, padding="same", name="stem")(inputs)
    x = keras.layers.Lambda(add, name="sum")([x, keras.layers.Conv2D(6, 3, padding="same", name="c0")(x)])
    x = keras.layers.Lambda(add, name="sum2")([x, keras.layers.Conv2D(6, 3, padding="same", name="c1")(x)])
    model = keras.Model(inputs, x)
    built = len(calls)
    assert surgery.blocks(model) == ["sum", "sum2"]
    assert len(calls) - built == 2
    ticket = surgery.remove_blocks(model, [], min_blocks_per_stage=0)
    rebuilt = len(calls)
    assert surgery.blocks(ticket) == ["sum", "sum2"] and len(calls) == rebuilt
