"""The after-training depth criteria of the layer-pruning literature (Block Influence, angular distance,
removal loss, CKA) against values known by construction, on images and on a keras_hub causal LM."""

import keras
import numpy as np
import pytest

import tf_lottery as tl
from tests import zoo
from tf_lottery.criteria import language, similarity

ROTATION = np.array([[0.0, -1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, -1.0], [0.0, 0.0, 1.0, 0.0]])


def _known_blocks():
    """Three residual blocks on (5 positions, 4 features): ``x + 0`` (identity), ``x - 2x = -x`` (a negation)
    and ``x + Rx`` (R turns every feature pair by 90°, so the output is 45° from the input)."""
    inputs = keras.Input((5, 4), name="x")
    h = keras.layers.Dense(4, name="stem")(inputs)
    for i, kernel in enumerate((np.zeros((4, 4)), -2 * np.eye(4), ROTATION.T), start=1):
        branch = keras.layers.Dense(4, use_bias=False, name=f"b{i}_dense")
        h = keras.layers.Add(name=f"b{i}_add")([h, branch(h)])
        branch.set_weights([kernel.astype("float32")])
    logits = keras.layers.Dense(3, name="logits")(keras.layers.GlobalAveragePooling1D(name="pool")(h))
    return keras.Model(inputs, logits, name="known")


def _x(n=16):
    return np.random.default_rng(0).normal(size=(n, 5, 4)).astype("float32")


def test_block_influence_is_one_minus_the_cosine_of_a_blocks_input_and_output():
    scores = tl.criteria.get("block_influence")(_known_blocks(), _x())
    assert scores == pytest.approx({"b1": 0.0, "b2": 2.0, "b3": 1 - np.sqrt(0.5)}, abs=1e-6)


@pytest.mark.parametrize("criterion", ["block_influence", "angular", "cka"])
def test_the_image_criteria_take_a_labelled_batch_as_the_command_line_gives_it(criterion):
    model = _known_blocks()
    x = _x()
    assert tl.criteria.get(criterion)(model, (x, np.arange(16) % 3)) == tl.criteria.get(criterion)(model, x)


def test_the_angular_distance_of_a_window_and_the_window_it_removes():
    model = _known_blocks()
    assert tl.criteria.get("angular")(model, _x()) == pytest.approx({"b1": 0.0, "b2": 1.0, "b3": 0.25}, abs=1e-5)
    # windows of 2: (b1, b2) turns x to -x (1), (b2, b3) turns x to -(x + Rx) (3/4): each block, its best window
    pairs = tl.criteria.get("angular")(model, _x(), window=2)
    assert pairs == pytest.approx({"b1": 1.0, "b2": 0.75, "b3": 0.75}, abs=1e-5)
    result = tl.find_ticket(model, "angular", num_blocks=2, data=_x(), min_blocks_per_stage=0, window=2)
    assert sorted(result.removed) == ["b2", "b3"]
    with pytest.raises(ValueError, match="window must be an integer >= 1; got 0"):
        tl.criteria.get("angular")(model, _x(), window=0)


def test_the_removal_loss_and_cka_of_an_identity_block():
    model = _known_blocks()
    x, y = _x(), np.arange(16) % 3
    losses = tl.criteria.get("removal_loss")(model, (x, y))
    assert losses["b1"] == 0.0  # bypassing x + 0 changes nothing
    dense = float(keras.losses.sparse_categorical_crossentropy(y, model(x), from_logits=True).numpy().mean())
    without_b2 = tl.surgery.remove_blocks(model, ["b2"], min_blocks_per_stage=0)
    hand = float(keras.losses.sparse_categorical_crossentropy(y, without_b2(x), from_logits=True).numpy().mean())
    assert losses["b2"] == pytest.approx(hand - dense, abs=1e-5)
    similar = tl.criteria.get("cka")(model, x)
    assert similar["b1"] == pytest.approx(1.0, abs=1e-9)
    features, features_without_b2 = (keras.Model(m.input, tl.graph.output_of(m, "pool"))(x) for m in (model, without_b2))
    assert similar["b2"] == pytest.approx(similarity.linear_cka(features, features_without_b2), abs=1e-6)
    assert tl.criteria.get("cka").prune_first == "high" and tl.criteria.get("removal_loss").prune_first == "low"


def test_the_cosine_weighs_positions_by_the_mask():
    x = np.array([[[1.0, 0.0], [1.0, 0.0]]])
    y = np.array([[[1.0, 0.0], [0.0, 1.0]]])  # cos 1 at the first position, 0 at the second
    assert similarity.mean_cosine(x, y) == pytest.approx(0.5)
    assert similarity.mean_cosine(x, y, np.array([[1.0, 0.0]])) == pytest.approx(1.0)
    assert similarity.angular_distance(x, y, np.array([[0.0, 1.0]])) == pytest.approx(0.5)
    zero = np.zeros((1, 2, 2))
    assert similarity.mean_cosine(zero, zero) == 1.0 and similarity.mean_cosine(x, zero) == 0.0
    with pytest.raises(ValueError, match="no position is kept"):
        similarity.mean_cosine(x, y, np.zeros((1, 2)))


keras_hub = pytest.importorskip("keras_hub")


@pytest.fixture(scope="module")
def lm():
    return zoo.gpt2_lm(layers=4)


def _tokens():
    ids = np.random.default_rng(3).integers(1, 100, size=(4, 9))
    mask = np.ones_like(ids, bool)
    mask[0, 5:] = False
    return language.next_token_batch(ids, mask)


def test_the_removal_loss_of_a_causal_lm_is_its_next_token_loss_increase(lm):
    inputs, labels = _tokens()
    scores = tl.criteria.get("removal_loss")(lm, (inputs, labels))
    dense = float(language.next_token_loss(lm(inputs, training=False), labels))
    smaller = tl.surgery.family_ticket(lm, ["transformer_layer_2"])
    hand = float(language.next_token_loss(smaller(inputs, training=False), labels)) - dense
    assert scores["transformer_layer_2"] == pytest.approx(hand, abs=1e-5)


def test_block_influence_of_a_causal_lm_leaves_padding_out(lm):
    inputs, _ = _tokens()
    scores = tl.criteria.get("block_influence")(lm, inputs)
    backbone = lm.backbone
    probe = keras.Model(backbone.input, [tl.graph.output_of(backbone, "embeddings_dropout"),  # layer 0's input
                                         tl.graph.output_of(backbone, "transformer_layer_0")])
    x_in, x_out = (np.asarray(t) for t in probe(inputs, training=False))
    real = inputs["padding_mask"].astype(bool)
    cos = np.sum(x_in * x_out, -1) / (np.linalg.norm(x_in, axis=-1) * np.linalg.norm(x_out, axis=-1))
    assert scores["transformer_layer_0"] == pytest.approx(1 - cos[real].mean(), rel=1e-5)
    for criterion in ("angular", "cka"):
        assert sorted(tl.criteria.get(criterion)(lm, inputs)) == [f"transformer_layer_{i}" for i in range(4)]
