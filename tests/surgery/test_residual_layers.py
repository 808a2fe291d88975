"""Blocks that are one layer: a subclassed residual block is found by tracing its call, one the
trace cannot see is declared, and either is scored, removed and rebuilt like any block."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import tf_lottery as tl
from tests import zoo


@pytest.fixture(scope="module")
def model():
    return zoo.layer_resnet(seed=1)


def _batch():
    return zoo.vit_batch(n=8, image_size=16)


def test_a_subclassed_residual_block_is_a_block(model):
    found = tl.surgery.find_blocks(model)
    assert [(b.name, b.branch, b.input_layer, b.removable) for b in found] == [
        ("res1", ("res1",), "stem", True), ("res2", ("res2",), "res1", True), ("res3", ("res3",), "res2", True)]


def test_removing_a_residual_layer_rewires_its_consumers_to_its_input(model):
    ticket = tl.surgery.remove_blocks(model, ["res2"], min_blocks_per_stage=0)
    assert tl.surgery.blocks(ticket) == ["res1", "res3"]
    x, _ = _batch()
    res1 = keras.Model(model.input, tl.graph.output_of(model, "res1"))(x)
    by_hand = model.get_layer("logits")(model.get_layer("pool")(model.get_layer("res3")(res1)))
    np.testing.assert_allclose(ticket.predict(x, verbose=0), keras.ops.convert_to_numpy(by_hand), rtol=1e-5,
                               atol=1e-6)
    for layer in ticket.layers:
        for a, b in zip(layer.get_weights(), model.get_layer(layer.name).get_weights()):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("criterion", ["snip", "grasp", "magnitude", "expectabs", "random"])
def test_criteria_score_a_residual_layer_from_its_own_weights(model, criterion):
    data = _batch() if criterion in ("snip", "grasp") else _batch()[0]
    scores = tl.criteria.get(criterion)(model, data)
    assert sorted(scores) == ["res1", "res2", "res3"] and all(np.isfinite(v) for v in scores.values())


def test_magnitude_of_a_residual_layer_is_the_mean_of_its_conv_kernels(model):
    layer = model.get_layer("res2")
    hand = np.concatenate([np.abs(layer.conv1.kernel.numpy()).ravel(),
                           np.abs(layer.conv2.kernel.numpy()).ravel()]).mean()
    # float32 sums in another order (Keras 3.12 against 3.15) differ in the 8th digit
    assert tl.criteria.get("magnitude")(model)["res2"] == pytest.approx(hand, rel=1e-6)


def test_what_cannot_reach_inside_a_residual_layer_refuses_it_by_name_and_synflow_reaches_it(model):
    with pytest.raises(ValueError, match=r"cannot silence block 'res1': it is one ResidualBlock layer"):
        tl.surgery.silence_blocks(model, ["res1"])
    # SynFlow reaches it: a layer whose sublayers keep float32 computes in its own dtype inside the float64 pass.
    scores = tl.criteria.get("synflow")(model)
    assert sorted(scores) == ["res1", "res2", "res3"] and all(np.isfinite(v) for v in scores.values())


def test_a_layer_the_trace_cannot_see_is_declared():
    gated = zoo.layer_resnet(block=zoo.GatedBlock)
    with pytest.raises(ValueError, match=r"looked at 0 two-input additions \(none\) and 3 shape-keeping layers with "
                                         r"weights \(res1, res2, res3\).*residual_layers=\[\.\.\.\]"):
        tl.find_ticket(gated, "snip", num_blocks=1, data=_batch())
    result = tl.find_ticket(gated, "snip", num_blocks=1, data=_batch(), min_blocks_per_stage=0,
                            residual_layers=["res1", "res2", "res3"])
    assert len(result.removed) == 1
    assert len(tl.surgery.blocks(result.model)) == 2  # the ticket keeps the declaration
    with pytest.raises(ValueError, match=r"residual_layers names \['nope'\], not layers of"):
        tl.surgery.find_blocks(gated, residual_layers=["nope"])
    with pytest.raises(ValueError, match=r"residual layer .pool. must keep the shape of its \(first\) input"):
        tl.surgery.find_blocks(zoo.layer_resnet(block=zoo.GatedBlock), residual_layers=["pool"])


def test_residual_layers_on_the_command_line(tmp_path):
    from tf_lottery.config import Config

    declared = Config.create(residual_layers=("res1", "res2"))
    assert declared.identity("ticket")["method"]["residual_layers"] == ["res1", "res2"]
    assert "residual_layers" not in Config().identity("ticket")["method"]  # earlier runs keep their folders
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    command = [sys.executable, "-m", "tf_lottery.cli", "--model=tests.user_models:gated_resnet", "--dataset=synthetic",
               "--train_size=0", "--val_size=64", "--length=1ep", "--lr_drops=", "--batch_size=64", "--num_blocks=1",
               "--min_blocks_per_stage=1", "--criterion=snip", "--evals=clean", "--noexport", f"--runs_dir={tmp_path}"]
    refused = subprocess.run(command, capture_output=True, text=True, timeout=3600, cwd=root)
    assert refused.returncode != 0 and "declare a layer that does with residual_layers" in refused.stderr
    assert "Traceback" not in refused.stderr and not list(tmp_path.iterdir())  # refused before writing
    done = subprocess.run(command + ["--residual_layers=res1,res2,res3"], capture_output=True, text=True,
                          timeout=3600, cwd=root)
    assert done.returncode == 0, done.stderr[-3000:]
    (folder,) = [p for p in tmp_path.iterdir() if p.name.startswith("init_ticket-")]
    import json
    removed = json.loads((folder / "result.json").read_text())["ticket"]["removed"]
    assert len(removed) == 1 and removed[0] in ("res1", "res2", "res3")


def test_residual_layer_flops_are_counted_from_their_traced_call(model):
    # stem 16 x 16 x 8 x (3 x 3 x 3); each block two convs 16 x 16 x 8 x (3 x 3 x 8); the head 8 x 4
    block = 2 * 16 * 16 * 8 * 3 * 3 * 8
    assert tl.cost.flops(model) == 16 * 16 * 8 * 27 + 3 * block + 8 * 4
    assert tl.cost.uncounted(model) == []
    ticket = tl.surgery.remove_blocks(model, ["res2"], min_blocks_per_stage=0)
    assert tl.cost.flops(model) - tl.cost.flops(ticket) == block


def _four_blocks(shortcut: str):
    """Four residual blocks, the first reading the model's input, their sums written three ways."""
    inputs = keras.Input((16, 16, 8))
    x = inputs
    for i in range(4):
        y = keras.layers.Conv2D(8, 3, padding="same", name=f"b{i}_conv")(x)
        if shortcut == "operator":
            x = x + y
        elif shortcut == "lambda":  # the identity path through a Lambda (Python code) before the sum
            x = keras.layers.Add(name=f"b{i}_add")([keras.layers.Lambda(lambda t: t, name=f"b{i}_same")(x), y])
        else:
            x = keras.layers.Add(name=f"b{i}_add")([x, y])
    return keras.Model(inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x)))


@pytest.mark.parametrize("shortcut", ["add", "operator", "lambda"])
def test_a_block_that_reads_the_model_input_is_a_block(shortcut):
    """A regression of 0.9 dropped it as "the stem"; the stem rule must never drop a real block."""
    import numpy as np
    model = _four_blocks(shortcut)
    found = tl.surgery.find_blocks(model)
    assert len(found) == 4 and found[0].input_layer == model.inputs[0]._keras_history.operation.name, found
    if shortcut == "lambda":  # a shortcut of Python code is not an identity: removal would not know what to keep
        assert not any(b.removable for b in found)
        return
    assert all(b.removable for b in found)
    first = found[0].name
    ticket = tl.surgery.remove_blocks(model, [first], min_blocks_per_stage=0)
    assert len(tl.surgery.find_blocks(ticket)) == 3
    x = np.random.default_rng(0).standard_normal((2, 16, 16, 8)).astype("float32")
    assert ticket(x).shape == (2, 2)


def test_an_embedding_sum_is_not_a_block():
    inputs = keras.Input((6,), dtype="int32")
    tokens = keras.layers.Embedding(50, 8, name="tokens")(inputs)
    x = tokens + keras.layers.Embedding(6, 8, name="positions")(keras.ops.arange(6)[None, :] * 0 + inputs * 0)
    for i in range(2):
        x = keras.layers.Add(name=f"b{i}_add")([x, keras.layers.Dense(8, name=f"b{i}_dense")(x)])
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling1D()(x)))
    assert tl.surgery.blocks(model) == ["b0", "b1"]


class _MaskedResidual(keras.layers.Layer):
    """``x + mask * dense(x)``: a residual layer that a model calls with keywords only."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(8)

    def call(self, inputs, attention_mask):
        return inputs + self.dense(inputs) * keras.ops.expand_dims(attention_mask, -1)


def test_a_residual_layer_called_with_keywords_only_is_a_block_on_its_main_input():
    # Keras flattens keyword arguments by name, so attention_mask comes before inputs (keras_hub's Falcon)
    tokens, mask = keras.Input((5, 8), name="tokens"), keras.Input((5,), name="mask")
    h = keras.layers.Dense(8, name="embed")(tokens)
    for i in range(3):
        h = _MaskedResidual(name=f"layer{i}")(inputs=h, attention_mask=mask)
    model = keras.Model([tokens, mask], keras.layers.Dense(2, name="head")(h))
    assert [(b.name, b.input_layer) for b in tl.surgery.find_blocks(model)] == [
        ("layer0", "embed"), ("layer1", "layer0"), ("layer2", "layer1")]
    ticket = tl.surgery.remove_blocks(model, ["layer1"], min_blocks_per_stage=0)
    rng = np.random.default_rng(0)
    x, m = rng.normal(size=(2, 5, 8)).astype("float32"), (rng.random((2, 5)) > 0.3).astype("float32")
    layer = model.get_layer
    by_hand = layer("head")(layer("layer2")(inputs=layer("layer0")(inputs=layer("embed")(x), attention_mask=m),
                                            attention_mask=m))
    np.testing.assert_allclose(np.asarray(ticket([x, m])), np.asarray(by_hand), rtol=1e-5, atol=1e-6)
