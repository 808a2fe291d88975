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


@pytest.mark.parametrize("criterion", ["grasp", "snip", "synflow"])
def test_a_two_headed_model_is_scored_on_the_output_it_names(criterion):
    model = zoo.two_heads()
    with pytest.raises(ValueError, match=r"has 2 outputs \(logits, aux\); a criterion scores one: pass output="):
        tl.criteria.get(criterion)(model, _batch())
    scores = tl.criteria.get(criterion)(model, _batch(), output="logits")
    single = keras.Model(model.inputs, model.get_layer("logits").output, name="two_heads")
    assert scores == pytest.approx(tl.criteria.get(criterion)(single, _batch()), rel=1e-6)
    with pytest.raises(ValueError, match=r"has no output 'head'; its outputs: \['logits', 'aux'\]"):
        tl.criteria.get(criterion)(model, _batch(), output="head")


def _two_softmax_heads():
    """:func:`zoo.two_heads` with a softmax on each head (the criteria score their logits)."""
    model = zoo.two_heads(seed=4)
    heads = [keras.layers.Softmax(name=f"{name}_probabilities")(model.get_layer(name).output) for name in ("logits", "aux")]
    return keras.Model(model.inputs, heads, name="two_heads"), model


def test_labels_for_every_output_score_the_sum_of_their_cross_entropies():
    import tensorflow as tf
    model, logits_model = _two_softmax_heads()
    x, y = _batch()
    y_aux = np.arange(8) % 3
    scores = tl.criteria.get("snip")(model, (x, {"logits_probabilities": y, "aux_probabilities": y_aux}))
    assert scores == tl.criteria.get("snip")(model, (x, [y, y_aux]))  # a list in output order: the same
    kernels = [logits_model.get_layer(n).kernel for n in ("block2_conv1", "block2_conv2")]
    with tf.GradientTape() as tape:  # SNIP by hand on the sum of both heads' cross-entropies, on their logits
        logits, aux = logits_model(x, training=True)
        loss = sum(tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=out))
                   for labels, out in ((y, logits), (y_aux, aux)))
    grads = tape.gradient(loss, kernels)
    hand = np.concatenate([np.abs((k * g).numpy()).ravel() for k, g in zip(kernels, grads)]).astype("float64").mean()
    assert scores["block2"] == pytest.approx(hand, rel=1e-4)
    for name in ("logits_probabilities", "aux_probabilities"):  # each softmax is switched back on after scoring
        assert tl.graph.heads.outputs_probabilities(tl.graph.heads.scored_output(model, name))


def test_labels_per_output_are_checked_against_each_output():
    model = zoo.two_heads()
    x, y = _batch()
    with pytest.raises(ValueError, match=r"labels per output must name every output of 'two_heads', \['logits', "
                                         r"'aux'\]; got \['logits'\]"):
        tl.criteria.get("grasp")(model, (x, {"logits": y}))
    with pytest.raises(ValueError, match=r"labels of output 'aux' go up to 3, but it has 3 classes"):
        tl.criteria.get("grasp")(model, (x, {"logits": y, "aux": np.arange(8) % 4}))
    with pytest.raises(ValueError, match=r"one label per example each; got lengths \[8, 4\]"):
        tl.criteria.get("grasp")(model, (x, [y, np.arange(4) % 3]))


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


@pytest.mark.parametrize("criterion", ["magnitude", "magnitude_stage", "random"])
def test_a_criterion_that_reads_no_output_scores_a_model_of_several_outputs_without_output(criterion):
    from tests import user_models
    model = user_models.two_heads((16, 16, 3), 4)
    images = np.random.default_rng(0).standard_normal((8, 16, 16, 3)).astype("float32")
    data = None if tl.criteria.get(criterion).needs == "nothing" else images
    scores = tl.criteria.get(criterion)(model, data)
    assert sorted(scores) == sorted(tl.surgery.blocks(model))
    if criterion == "magnitude":  # the weights alone: the same as on the first head's view
        assert scores == tl.criteria.get(criterion)(model, None, output="logits")
