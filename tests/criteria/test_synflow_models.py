"""SynFlow on models a little off the tested path: a user's residual layer whose sublayers keep float32,
and keras_hub's ViT (whose patch encoder's config does not rebuild as written)."""

import keras
import numpy as np
import pytest

import tf_lottery as tl


class Residual(keras.layers.Layer):
    """The docs' own residual layer (docs/howto/transformers.md): sublayers made without a dtype."""

    def __init__(self, width, **kwargs):
        super().__init__(**kwargs)
        self.width = width
        self.inner = keras.layers.Conv2D(width, 3, padding="same", activation="relu")
        self.outer = keras.layers.Conv2D(width, 3, padding="same")

    def call(self, x):
        return x + self.outer(self.inner(x))

    def get_config(self):
        return {**super().get_config(), "width": self.width}


def _residual_model(widths=(8, 8, 8)):
    inputs = keras.Input((16, 16, 3))
    h = keras.layers.Conv2D(8, 3, padding="same", name="stem")(inputs)
    for i, width in enumerate(widths):
        h = Residual(width, name=f"res{i}")(h)
    return keras.Model(inputs, keras.layers.Dense(4)(keras.layers.GlobalAveragePooling2D()(h)))


def test_synflow_scores_the_docs_residual_layer_and_leaves_the_model_unchanged():
    model = _residual_model()
    before = [w.copy() for w in model.get_weights()]
    scores = tl.criteria.get("synflow")(model)
    assert sorted(scores) == ["res0", "res1", "res2"] and all(np.isfinite(v) and v > 0 for v in scores.values())
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    # Scaling one block's outer kernel scales its paths: its score grows, the ranking follows.
    res1 = model.get_layer("res1")
    res1.outer.kernel.assign(res1.outer.kernel * 10.0)
    again = tl.criteria.get("synflow")(model)
    assert again["res1"] > scores["res1"] * 5
    ticket = tl.find_ticket(model, "synflow", num_blocks=1, min_blocks_per_stage=0)
    assert ticket.removed != ["res1"]


def test_synflow_scores_a_keras_hub_vit():
    keras_hub = pytest.importorskip("keras_hub")
    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.ViTBackbone(image_shape=(16, 16, 3), patch_size=4, num_layers=3, num_heads=2,
                                            hidden_dim=16, mlp_dim=32, use_class_token=True)
    inputs = keras.Input((16, 16, 3))
    model = keras.Model(inputs, keras.layers.Dense(4)(backbone(inputs)[:, 0]))
    scores = tl.criteria.get("synflow")(model)
    # Finite, and not all equal; the layer norms inside keras_hub's blocks are not linearised (SynFlow reaches
    # the layers of the model's graph only), so a block's score may be negative.
    assert len(scores) == 3 and all(np.isfinite(v) for v in scores.values()) and len(set(scores.values())) == 3
