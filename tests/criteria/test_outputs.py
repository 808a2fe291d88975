"""Models that are not one classifier: several outputs (one is scored, by name) and backbones
(refused without a loss of the user's, scored with one)."""

import keras
import numpy as np
import pytest

import tf_lottery as tl
from tests import zoo


def _batch(n=8):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 16, 16, 3)).astype("float32"), np.arange(n) % 4


@pytest.mark.parametrize("criterion", ["grasp", "snip", "synflow", "magnitude"])
def test_a_two_headed_model_is_scored_on_the_output_it_names(criterion):
    model = zoo.two_heads()
    with pytest.raises(ValueError, match=r"has 2 outputs \(logits, aux\); a criterion scores one: pass output="):
        tl.criteria.get(criterion)(model, _batch())
    scores = tl.criteria.get(criterion)(model, _batch(), output="logits")
    single = keras.Model(model.inputs, model.get_layer("logits").output, name="two_heads")
    assert scores == pytest.approx(tl.criteria.get(criterion)(single, _batch()), rel=1e-6)
    with pytest.raises(ValueError, match=r"has no output 'head'; its outputs: \['logits', 'aux'\]"):
        tl.criteria.get(criterion)(model, _batch(), output="head")


def test_find_ticket_on_a_two_headed_model_keeps_both_heads():
    model = zoo.two_heads()
    result = tl.find_ticket(model, "snip", num_blocks=1, data=_batch(), output="logits", min_blocks_per_stage=0)
    assert len(result.model.outputs) == 2
    assert [t._keras_history.operation.name for t in result.model.outputs] == ["logits", "aux"]


def test_a_backbone_is_refused_without_a_loss_and_scored_with_one():
    model = zoo.backbone()
    with pytest.raises(ValueError, match=r"outputs \(16, 16, 8\) per example, not class scores .* pass loss=fn"):
        tl.criteria.get("snip")(model, _batch())
    targets = np.zeros((8, 16, 16, 8), "float32")

    def mse(outputs, labels):
        return keras.ops.mean((outputs - labels) ** 2)

    scores = tl.criteria.get("snip")(model, (_batch()[0], targets), loss=mse)
    assert sorted(scores) == ["block1", "block2", "block3"] and all(v > 0 for v in scores.values())
    # The loss is the user's: the same scores as SNIP by hand on it.
    import tensorflow as tf
    conv = model.get_layer("block2_conv2")
    with tf.GradientTape() as tape:
        loss = mse(model(_batch()[0], training=True), targets)
    grads = tape.gradient(loss, [model.get_layer("block2_conv1").kernel, conv.kernel])
    kernels = [model.get_layer("block2_conv1").kernel, conv.kernel]
    hand = np.concatenate([np.abs((k * g).numpy()).ravel() for k, g in zip(kernels, grads)]).mean()
    assert scores["block2"] == pytest.approx(hand, rel=1e-4)
    with pytest.raises(TypeError, match="loss must be a function"):
        tl.criteria.get("snip")(model, (_batch()[0], targets), loss="mse")
