"""Block surgery on residual Keras models nobody here wrote: graph idioms and registered families.

Every case is checked the same way: blocks found against a hand count, removal, bit-exact
kept weights, silenced equivalence, FLOPs against a hand count (or the original paper's
figure), every at-initialization criterion, export and a TensorFlow-only load. The large
keras.applications families are marked slow.
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import tf_lottery as tl
from tf_lottery import experiments, export, surgery
from tf_lottery.graph import cost
from tf_lottery.config import Config

AT_INIT = [name for name in tl.criteria.names() if tl.criteria.get(name).when in ("init", "any")]


@keras.saving.register_keras_serializable(package="tests")
class Scale(keras.layers.Layer):
    """A per-channel layer scale (ConvNeXt's idea): output = input * gamma (at 0.1 here, so that
    the block's contribution shows; ConvNeXt starts at 1e-6)."""

    def build(self, input_shape):
        self.gamma = self.add_weight(shape=(input_shape[-1],), initializer=keras.initializers.Constant(0.1),
                                     name="gamma")

    def call(self, x):
        return x * self.gamma


def _conv(filters, name, stride=1, kernel=3, bias=True):
    return keras.layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=bias, name=name)


def _head(x, activation=None, name="head"):
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.layers.Dense(3, activation=activation, name=name)(x)


def plus_merge():
    """Three identity blocks closed by ``x + y`` (Keras names each addition ``add_<n>``)."""
    inputs = keras.Input((16, 16, 3), name="image")
    x = keras.layers.ReLU(name="stem_relu")(_conv(8, "stem")(inputs))
    for i in range(3):
        y = keras.layers.BatchNormalization(name=f"b{i}_bn")(_conv(8, f"b{i}_conv")(x))
        x = keras.layers.ReLU(name=f"b{i}_out")(x + y)
    return keras.Model(inputs, _head(x), name="plus_merge")


def ops_shortcut():
    """keras.ops.add merges and an option-A shortcut written in keras.ops (pooling, zero channels)."""
    inputs = keras.Input((16, 16, 3), name="image")
    x = keras.layers.ReLU(name="stem_relu")(_conv(8, "stem")(inputs))
    for stage, filters in enumerate((8, 16), start=1):
        for block in range(2):
            name = f"s{stage}b{block}"
            stride = 2 if stage > 1 and block == 0 else 1
            y = keras.layers.ReLU(name=f"{name}_relu")(keras.layers.BatchNormalization(name=f"{name}_bn1")(
                _conv(filters, f"{name}_conv1", stride)(x)))
            y = keras.layers.BatchNormalization(name=f"{name}_bn2")(_conv(filters, f"{name}_conv2")(y))
            shortcut = x
            if stride == 2:
                shortcut = keras.ops.average_pool(x, 1, strides=2, padding="same")
                shortcut = keras.ops.concatenate([shortcut, keras.ops.zeros_like(shortcut)], axis=-1)
            x = keras.layers.ReLU(name=f"{name}_out")(keras.ops.add(shortcut, y))
    return keras.Model(inputs, _head(x), name="ops_shortcut")


def lambdas():
    """Lambda layers (Python lambdas) in the stem and inside every branch."""
    inputs = keras.Input((16, 16, 3), name="image")
    x = keras.layers.Lambda(lambda t: t * 2.0 - 1.0, name="to_signed")(inputs)
    x = keras.layers.ReLU(name="stem_relu")(_conv(8, "stem")(x))
    for i in range(3):
        y = keras.layers.BatchNormalization(name=f"b{i}_bn")(_conv(8, f"b{i}_conv")(x))
        y = keras.layers.Lambda(lambda t: keras.ops.relu(t), name=f"b{i}_lambda")(y)
        x = keras.layers.Add(name=f"b{i}_add")([x, y])
    return keras.Model(inputs, _head(x), name="lambdas")


def nested():
    """A nested Sequential stem and blocks that are nested functional models (their Add inside)."""
    inputs = keras.Input((16, 16, 3), name="image")
    stem = keras.Sequential([keras.Input((16, 16, 3)), _conv(8, "stem_conv"),
                             keras.layers.ReLU(name="stem_relu")], name="stem")
    x = stem(inputs)
    for i in range(3):
        block_in = keras.Input((16, 16, 8))
        y = keras.layers.BatchNormalization(name=f"n{i}_bn")(_conv(8, f"n{i}_conv")(block_in))
        out = keras.layers.ReLU(name=f"n{i}_out")(keras.layers.Add(name=f"n{i}_add")([block_in, y]))
        x = keras.Model(block_in, out, name=f"block{i}")(x)
    return keras.Model(inputs, _head(x), name="nested")


def preactivation():
    """BN-ReLU-conv branches ending in a biased conv (ResNet v2)."""
    inputs = keras.Input((16, 16, 3), name="image")
    x = _conv(8, "stem")(inputs)
    for i in range(3):
        y = keras.layers.ReLU(name=f"p{i}_relu")(keras.layers.BatchNormalization(name=f"p{i}_bn")(x))
        x = keras.layers.Add(name=f"p{i}_add")([x, _conv(8, f"p{i}_conv")(y)])
    return keras.Model(inputs, _head(x), name="preactivation")


def layer_scale():
    """ConvNeXt-like blocks: depthwise conv, LayerNorm, Dense per position, GELU, Dense, a layer scale."""
    inputs = keras.Input((8, 8, 3), name="image")
    x = _conv(8, "stem", kernel=2, stride=2)(inputs)
    for i in range(3):
        y = keras.layers.Conv2D(8, 3, padding="same", groups=8, name=f"c{i}_dw")(x)
        y = keras.layers.LayerNormalization(epsilon=1e-6, name=f"c{i}_ln")(y)
        y = keras.layers.Dense(32, activation="gelu", name=f"c{i}_pw1")(y)
        y = Scale(name=f"c{i}_scale")(keras.layers.Dense(8, name=f"c{i}_pw2")(y))
        x = keras.layers.Add(name=f"c{i}_add")([x, y])
    return keras.Model(inputs, _head(x), name="layer_scale")


def softmax_head(kind):
    """The plus-merge network with a softmax head: a Dense activation, a Softmax layer or keras.ops.softmax."""
    body = plus_merge()
    features = body.get_layer("pool").output
    if kind == "dense":
        outputs = keras.layers.Dense(3, activation="softmax", name="probs")(features)
    elif kind == "layer":
        outputs = keras.layers.Softmax(name="probs")(keras.layers.Dense(3, name="head2")(features))
    else:
        outputs = keras.ops.softmax(keras.layers.Dense(3, name="head2")(features))
    return keras.Model(body.input, outputs, name=f"softmax_{kind}")


def shared_ends():
    """A layer called twice in the stem and another twice in the head, around three plain blocks."""
    inputs = keras.Input((16, 16, 3), name="image")
    shared = _conv(8, "stem_shared")
    x = _conv(8, "stem")(inputs)
    x = shared(keras.layers.ReLU(name="stem_relu")(shared(x)))
    for i in range(3):
        y = keras.layers.BatchNormalization(name=f"b{i}_bn")(_conv(8, f"b{i}_conv")(x))
        x = keras.layers.ReLU(name=f"b{i}_out")(keras.layers.Add(name=f"b{i}_add")([x, y]))
    hidden = keras.layers.Dense(8, activation="relu", name="hidden")
    x = hidden(hidden(keras.layers.GlobalAveragePooling2D(name="pool")(x)))
    return keras.Model(inputs, keras.layers.Dense(3, name="head")(x), name="shared_ends")


def lambda_sums():
    """Three identity blocks whose sums are Lambda layers (``t[0] + t[1]``)."""
    inputs = keras.Input((16, 16, 3), name="image")
    x = keras.layers.ReLU(name="stem_relu")(_conv(8, "stem")(inputs))
    for i in range(3):
        y = keras.layers.BatchNormalization(name=f"b{i}_bn")(_conv(8, f"b{i}_conv")(x))
        x = keras.layers.ReLU(name=f"b{i}_out")(keras.layers.Lambda(lambda t: t[0] + t[1], name=f"b{i}_add")([x, y]))
    return keras.Model(inputs, _head(x), name="lambda_sums")


def _conv_flops(hw, k, cin, cout, groups=1):
    return hw * hw * k * k * (cin // groups) * cout


# name -> (builder, expected blocks, expected removable, blocks to remove, hand-counted FLOPs)
CASES = {
    "plus_merge": (plus_merge, ["b0", "b1", "b2"], 3, ["b1"],
                   _conv_flops(16, 3, 3, 8) + 3 * _conv_flops(16, 3, 8, 8) + 8 * 3),
    "ops_shortcut": (ops_shortcut, ["s1b0", "s1b1", "s2b0", "s2b1"], 3, ["s1b1", "s2b1"],
                     _conv_flops(16, 3, 3, 8) + 4 * _conv_flops(16, 3, 8, 8) + _conv_flops(8, 3, 8, 16)
                     + 3 * _conv_flops(8, 3, 16, 16) + 16 * 3),
    "lambdas": (lambdas, ["b0", "b1", "b2"], 3, ["b0", "b2"],
                _conv_flops(16, 3, 3, 8) + 3 * _conv_flops(16, 3, 8, 8) + 8 * 3),
    "nested": (nested, ["n0", "n1", "n2"], 3, ["n1"],
               _conv_flops(16, 3, 3, 8) + 3 * _conv_flops(16, 3, 8, 8) + 8 * 3),
    "preactivation": (preactivation, ["p0", "p1", "p2"], 3, ["p2"],
                      _conv_flops(16, 3, 3, 8) + 3 * _conv_flops(16, 3, 8, 8) + 8 * 3),
    "layer_scale": (layer_scale, ["c0", "c1", "c2"], 3, ["c1"],
                    _conv_flops(4, 2, 3, 8) + 3 * (_conv_flops(4, 3, 8, 8, groups=8) + 16 * (8 * 32 + 32 * 8))
                    + 8 * 3),
    "shared_ends": (shared_ends, ["b0", "b1", "b2"], 3, ["b1"],
                    _conv_flops(16, 3, 3, 8) + 5 * _conv_flops(16, 3, 8, 8) + 2 * 8 * 8 + 8 * 3),
    "lambda_sums": (lambda_sums, ["b0", "b1", "b2"], 3, ["b0", "b2"],
                    _conv_flops(16, 3, 3, 8) + 3 * _conv_flops(16, 3, 8, 8) + 8 * 3),
    "softmax_dense": (lambda: softmax_head("dense"), ["b0", "b1", "b2"], 3, ["b1"], None),
    "softmax_layer": (lambda: softmax_head("layer"), ["b0", "b1", "b2"], 3, ["b1"], None),
    "softmax_op": (lambda: softmax_head("op"), ["b0", "b1", "b2"], 3, ["b1"], None),
}


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    return rng.random((12, 16, 16, 3)).astype("float32"), np.arange(12) % 3


def _batch_for(model, batch):
    shape = tuple(model.inputs[0].shape[1:])
    images = batch[0] if batch[0].shape[1:] == shape else np.random.default_rng(1).random((12, *shape)).astype(
        "float32")
    return images, batch[1]


def _kept_weights_are_inherited(dense, ticket):
    kept = 0
    for layer in tl.graph.leaf_layers(ticket):
        for mine, theirs in zip(layer.weights, tl.graph.operation(dense, layer.name).weights):
            np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
            kept += 1
    assert kept > 0


def _removal_equals_silencing(dense, ticket, removed, images, contributes=True):
    before = dense(images, training=False).numpy()
    surgery.silence_blocks(dense, removed)
    after = dense(images, training=False).numpy()
    scale = np.abs(after).max()
    if contributes:  # the silenced blocks did change the output (not so at θ0 for some families)
        assert np.abs(before - after).max() > 1e-3 * scale
    np.testing.assert_allclose(ticket(images, training=False), after, rtol=1e-5, atol=1e-6 * scale)


@pytest.mark.parametrize("case", list(CASES))
def test_blocks_removal_weights_and_silenced_equivalence(case, batch):
    build, names, removable, remove, _ = CASES[case]
    model = build()
    assert surgery.blocks(model) == names
    assert len(surgery.removable_blocks(model)) == removable
    ticket = surgery.remove_blocks(model, remove, min_blocks_per_stage=1)
    assert surgery.blocks(ticket) == [n for n in names if n not in remove]
    assert not tl.graph.is_nested(ticket)
    _kept_weights_are_inherited(model, ticket)
    _removal_equals_silencing(model, ticket, remove, _batch_for(model, batch)[0])


@pytest.mark.parametrize("case", [c for c in CASES if CASES[c][4] is not None])
def test_flops_against_a_hand_count(case):
    build, _, _, remove, expected = CASES[case]
    model = build()
    ticket = surgery.remove_blocks(model, remove, min_blocks_per_stage=1)
    removed = sum(cost.layer_flops(tl.graph.operation(model, n)) for b in surgery.find_blocks(model)
                  if b.name in remove for n in b.branch if isinstance(tl.graph.operation(model, n), keras.layers.Layer))
    if case == "layer_scale":  # a user's layer with weights: traced, an elementwise scale, free
        assert cost.uncounted(model) == [] and cost.uncounted(ticket) == []
    assert cost.flops(model) == expected
    assert removed > 0 and cost.flops(ticket) == expected - removed


@pytest.mark.parametrize("case", list(CASES))
def test_every_at_initialization_criterion_scores_every_block(case, batch):
    model = CASES[case][0]()
    data = _batch_for(model, batch)
    before = [w.copy() for w in model.get_weights()]
    for criterion in AT_INIT:
        scores = tl.criteria.get(criterion)(model, data)
        assert sorted(scores) == sorted(surgery.blocks(model)), criterion
        assert all(np.isfinite(list(scores.values()))), (criterion, scores)
        if criterion != "random":
            assert len(set(scores.values())) > 1, (criterion, scores)  # not all tied
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    result = tl.find_ticket(model, "grasp", num_blocks=1, data=data, min_blocks_per_stage=1)
    assert len(surgery.blocks(result.model)) == len(surgery.blocks(model)) - 1


@pytest.mark.parametrize("kind", ["dense", "layer", "op"])
def test_a_softmax_head_is_scored_on_its_logits(kind, batch):
    """SynFlow on probabilities would score 0 everywhere (each row sums to 1); on the logits it
    equals the scores of the same network built with a logits head."""
    model = softmax_head(kind)
    assert tl.models.outputs_probabilities(model)
    logits_model = keras.Model(model.input, model.get_layer("probs" if kind == "dense" else "head2").output
                               if kind != "dense" else model.get_layer("pool").output)
    if kind == "dense":  # the same weights with a linear head
        head = keras.layers.Dense(3, name="probs")
        logits_model = keras.Model(model.input, head(model.get_layer("pool").output))
        head.set_weights(model.get_layer("probs").get_weights())
    for criterion in ("synflow", "snip", "grasp"):
        expected = tl.criteria.get(criterion)(logits_model, batch)
        got = tl.criteria.get(criterion)(model, batch)
        for block in expected:
            np.testing.assert_allclose(got[block], expected[block], rtol=1e-4)
    assert tl.models.outputs_probabilities(model)  # switched back on
    np.testing.assert_allclose(model(batch[0]).numpy().sum(axis=1), 1.0, rtol=1e-5)


_LOADER = r"""
import json, sys
sys.modules["tf_lottery"] = None
import numpy as np, tensorflow as tf, keras
path, x_path = sys.argv[1], sys.argv[2]
meta = json.load(open(path + "/metadata.json"))
served = tf.saved_model.load(path + "/saved_model").signatures["serving_default"]
out = served(**{meta["input"]["name"]: tf.constant(np.load(x_path))})
np.save(x_path + ".out.npy", out["logits"].numpy())
if meta["keras_safe_mode"]:
    keras.models.load_model(path + "/model.keras", safe_mode=True)
"""


def _export_and_load(model, images, tmp_path):
    path = export.save_model(model, str(tmp_path / model.name))
    np.save(tmp_path / "x.npy", images)
    result = subprocess.run([sys.executable, "-c", _LOADER, path, str(tmp_path / "x.npy")],
                            capture_output=True, text=True, timeout=3600)
    assert result.returncode == 0, result.stderr[-2000:]
    expected = keras.ops.convert_to_numpy(model(images, training=False))
    if tl.models.outputs_probabilities(model):  # a softmax model serves log-probabilities as its logits
        expected = np.log(np.clip(expected, 1e-12, 1.0))
    np.testing.assert_allclose(np.load(str(tmp_path / "x.npy") + ".out.npy"), expected, rtol=1e-5, atol=1e-5)
    return json.loads((tmp_path / model.name / "metadata.json").read_text())


def test_tickets_of_every_idiom_export_and_load_with_tensorflow_only(tmp_path, batch):
    """One TensorFlow-only process per export is slow: the idioms go through one model that has
    them all (+, keras.ops, a Lambda, a nested model, a layer scale, a softmax head)."""
    inputs = keras.Input((16, 16, 3), name="image")
    x = keras.layers.Lambda(lambda t: t - 0.5, name="centre")(inputs)
    x = keras.Sequential([keras.Input((16, 16, 3)), _conv(8, "stem_conv")], name="stem")(x)
    for i in range(3):
        y = keras.layers.BatchNormalization(name=f"b{i}_bn")(_conv(8, f"b{i}_conv")(x))
        x = x + Scale(name=f"b{i}_scale")(y) if i % 2 else keras.ops.add(x, y)
    outputs = keras.layers.Dense(3, activation="softmax", name="probs")(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs, name="idioms")
    result = tl.find_ticket(model, "snip", num_blocks=1, data=batch, min_blocks_per_stage=1)
    meta = _export_and_load(result.model, batch[0], tmp_path)
    assert meta["keras_safe_mode"] is False and meta["lambda_layers"] == ["centre"]


def test_refusals_name_what_to_do():
    vgg_like = keras.Sequential([keras.Input((16, 16, 3)), _conv(4, "c1"), keras.layers.Flatten(),
                                 keras.layers.Dense(3)])
    with pytest.raises(TypeError, match="is a keras.Sequential model: each layer feeds the next"):
        surgery.find_blocks(vgg_like)
    plain = keras.Model(vgg_like.inputs, vgg_like.outputs, name="plain")
    assert surgery.find_blocks(plain) == []
    vgg16 = keras.applications.VGG16(weights=None, input_shape=(32, 32, 3), classes=3)
    with pytest.raises(ValueError, match="'vgg16' has no residual block.*keras.layers.Add, `\\+` or keras.ops.add"):
        tl.find_ticket(vgg16, "random", fraction=0.5)
    with pytest.raises(ValueError, match="'plain' has no residual block"):
        surgery.remove_blocks(plain, ["c1"])
    with pytest.raises(ValueError, match="'plain' has no residual block to score"):
        tl.criteria.get("magnitude")(plain)

    class Subclassed(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(TypeError, match="subclassed model computes in Python code"):
        surgery.find_blocks(Subclassed())
    with pytest.raises(ValueError, match="fraction=0.1 of the 3 removable blocks of plus_merge rounds to 0 blocks"):
        tl.find_ticket(plus_merge(), "random", fraction=0.1, min_blocks_per_stage=1)


def test_a_shared_layer_is_read_call_by_call():
    """Each call of a shared layer is one node of the graph (``shared_relu@1``, ``shared_relu@2``); a shared
    layer without weights makes no block ineligible (tests/surgery/test_shared_layers.py: one with weights)."""
    inputs = keras.Input((8, 8, 4))
    relu = keras.layers.ReLU(name="shared_relu")
    x = relu(inputs)
    y = relu(_conv(4, "c")(x))
    model = keras.Model(inputs, keras.layers.Add()([x, y]))
    found = surgery.find_blocks(model)
    assert [(b.input_layer, b.branch, b.removable) for b in found] == [("shared_relu@1", ("c", "shared_relu@2"), True)]


def test_a_silencing_that_would_not_be_exact_is_refused():
    inputs = keras.Input((8, 8, 4))
    stem = _conv(4, "stem")(inputs)  # a sum on the raw input would be the stem's, not a block
    y = keras.layers.Activation("sigmoid", name="gate")(_conv(4, "c")(stem))
    x = keras.layers.Add(name="r_add")([stem, y])
    model = keras.Model(inputs, _head(keras.layers.Add(name="s_add")([x, _conv(4, "d")(x)])))
    block = [b for b in surgery.find_blocks(model) if b.add_layer == "r_add"][0]
    with pytest.raises(ValueError, match="ends in Activation 'gate', which has no weights to zero"):
        surgery.silencing_variables(model, block)


# --- registered families ---------------------------------------------------------------------

# name -> (build kwargs, blocks, removable, max removable with the paper's floor of 2)
FAMILIES = {
    "imagenet_resnet": (dict(depth=18, stem="cifar"), 8, 4, 0),
    "mobilenetv2": ({}, 10, 10, 1),
    "efficientnetb0": ({}, 9, 9, 1),
    "resnet50": ({}, 16, 12, 8),
    "resnet101": ({}, 33, 29, 25),
    "resnet152": ({}, 50, 46, 42),
    "resnet50v2": ({}, 16, 9, 8),
    "resnet101v2": ({}, 33, 26, 25),
    "resnet152v2": ({}, 50, 43, 42),
    "convnext_tiny": ({}, 18, 18, 10),
}
# The keras.applications families are slow here; mobilenetv2 also appears in fast tests below.
FAST_FAMILIES = ("imagenet_resnet",)


def _family_params():
    return [pytest.param(name, marks=() if name in FAST_FAMILIES else pytest.mark.slow) for name in FAMILIES]


def _build_family(name, seed=0, **extra):
    kwargs = dict(FAMILIES[name][0], **extra)
    return tl.models.get(name)(input_shape=(32, 32, 3), num_classes=3, seed=seed, **kwargs)


def test_every_registered_model_is_in_the_matrix():
    # a pattern is no entry; byte_decoder, a language model, has its own tests (tests/experiments/test_causal_lm.py)
    assert sorted(FAMILIES) == sorted(n for n in tl.models.MODELS if n not in ("cifar_resnet", "byte_decoder"))


@pytest.mark.parametrize("name", _family_params())
def test_a_registered_family_end_to_end(name, tmp_path):
    _, blocks, removable, most = FAMILIES[name]
    model = _build_family(name)
    found = surgery.find_blocks(model)
    assert (len(found), sum(b.removable for b in found), surgery.max_removable(model)) == (blocks, removable, most)
    assert model.inputs[0].name == "image" and not tl.models.outputs_probabilities(model)
    again = _build_family(name)  # θ0 is reproducible from the seed
    for a, b in zip(model.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)

    rng = np.random.default_rng(0)
    data = (rng.random((6, 32, 32, 3)).astype("float32"), np.arange(6) % 3)
    floor = 2 if most else 0
    for criterion in AT_INIT:
        scores = tl.criteria.get(criterion)(model, data)
        assert len(scores) == blocks and all(np.isfinite(list(scores.values()))), criterion
        if criterion == "synflow":  # linearised: no saturated ReLU6, no negative ImageNet mean
            assert min(scores.values()) > 0, scores
    result = tl.find_ticket(model, "snip", num_blocks=1, data=data, min_blocks_per_stage=floor)
    ticket = result.model
    assert ticket.name == f"{name if name != 'imagenet_resnet' else 'imagenet_resnet18'}_minus1"
    _kept_weights_are_inherited(model, ticket)
    rebuilt = tl.models.rebuild(tl.models.lineage_json(ticket))  # θ0 again, from the lineage alone
    for a, b in zip(ticket.get_weights(), rebuilt.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert cost.flops(ticket) < cost.flops(model)
    _export_and_load(ticket, data[0], tmp_path)
    _removal_equals_silencing(model, ticket, result.removed, data[0], contributes=False)


# FLOPs at 224x224x3 (1000 classes) against the figures of the original papers: He et al. 2016
# Table 1 (ResNet-18/34/50/101/152: 1.8, 3.6, 3.8, 7.6, 11.3 x 10^9), Sandler et al. 2018 Table 3
# (MobileNetV2 300M multiply-adds), Tan and Le 2019 Table 2 (EfficientNet-B0 0.39B), Liu et al.
# 2022 Table 1 (ConvNeXt-T 4.5G). ``imagenet_resnet`` puts a bottleneck's stride on its 3x3 conv
# (v1.5), which costs more than the paper's 3.8G: 4.09G, torchvision's figure for the same model.
PAPER_FLOPS = {  # figure; the papers give two significant digits, so 2 % either way
    ("resnet50", ()): 3.8e9, ("resnet101", ()): 7.6e9, ("resnet152", ()): 11.3e9,
    ("mobilenetv2", ()): 300e6, ("efficientnetb0", ()): 0.39e9, ("convnext_tiny", ()): 4.5e9,
    ("imagenet_resnet", (("depth", 18),)): 1.8e9, ("imagenet_resnet", (("depth", 34),)): 3.6e9,
    ("imagenet_resnet", (("depth", 50),)): 4.09e9,
}


@pytest.mark.parametrize("name, kwargs", [pytest.param(
    n, k, marks=() if n in ("mobilenetv2", "efficientnetb0", "resnet50") else pytest.mark.slow)
    for n, k in PAPER_FLOPS])
def test_flops_match_the_original_papers(name, kwargs):
    figure = PAPER_FLOPS[(name, kwargs)]
    model = tl.models.get(name)(input_shape=(224, 224, 3), num_classes=1000, **dict(kwargs))
    assert abs(cost.flops(model) / figure - 1) <= 0.02


def test_a_local_weights_file_is_the_starting_point(tmp_path):
    source = _build_family("mobilenetv2", seed=3)
    path = str(tmp_path / "start.weights.h5")
    keras.applications.MobileNetV2(weights=None, input_shape=(32, 32, 3), classes=3,
                                   classifier_activation=None).save_weights(path)
    model = _build_family("mobilenetv2", seed=0, weights_file=path)
    reference = keras.applications.MobileNetV2(weights=path, input_shape=(32, 32, 3), classes=3,
                                               classifier_activation=None)
    for a, b in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not all(np.array_equal(a, b) for a, b in zip(model.get_weights(), source.get_weights()))
    with pytest.raises(ValueError, match="--weights_file=/nowhere.h5 is not a file"):
        tl.models.get("mobilenetv2").settings(weights_file="/nowhere.h5")


def test_weight_decay_reaches_every_kernel_and_survives_removal():
    model = tl.models.get("mobilenetv2")(input_shape=(32, 32, 3), num_classes=3, weight_decay=1e-4)
    kernels = [layer for layer in model.layers if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense,
                                                                    keras.layers.DepthwiseConv2D))]
    assert len(model.losses) == len(kernels) > 50
    ticket = surgery.remove_blocks(model, ["block_2"], min_blocks_per_stage=0)
    assert len(ticket.losses) == len(kernels) - 3  # block_2's expand, depthwise and project convs went


@pytest.mark.slow
def test_init_ticket_runs_end_to_end_on_a_family_with_resized_inputs(tmp_path):
    """``--model=imagenet_resnet --depth=18 --input_shape=24,24,3`` on 16x16 synthetic images:
    resized, scored, cut, trained, exported; the export serves with TensorFlow only. (The same
    with ``--model=resnet50`` on Fashion-MNIST is a slow test below.)"""
    config = Config.create(model="imagenet_resnet", depth=18, stem="cifar", width_multiplier=0.25,
                           input_shape=(24, 24, 3), dataset="synthetic", train_size=128,
                           val_size=32, test_size=64, criterion="grasp", num_blocks=2, min_blocks_per_stage=1,
                           length="1ep", batch_size=64, lr_drops=(), runs_dir=str(tmp_path), latency_batch_sizes=(1,),
                           memory_batch_size=8)
    result = experiments.get("init_ticket")(config)
    assert result.dense.blocks == 8 and result.ticket.blocks == 6 and len(result.ticket.removed) == 2
    assert result.ticket.flops < result.dense.flops
    model = keras.models.load_model(os.path.join(result.exports["ticket"], "model.keras"))
    assert model.name == "imagenet_resnet18_minus2"
    raw = tl.data.get("synthetic").load(None, False, 0)["test"][0][:4]  # 16x16: resized inside the export
    np.save(tmp_path / "x.npy", raw)
    loaded = subprocess.run([sys.executable, "-c", _LOADER, result.exports["ticket"], str(tmp_path / "x.npy")],
                            capture_output=True, text=True, timeout=3600)
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    inputs = tl.data.prepare(config.data_options()).splits["test"][0][:4]
    np.testing.assert_allclose(np.load(str(tmp_path / "x.npy") + ".out.npy"), model(inputs, training=False),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_the_cli_runs_resnet50_on_resized_fashion_mnist(tmp_path):
    """The issue's command: ``--model=resnet50 --input_shape=64,64,3`` on Fashion-MNIST (28x28x1)."""
    from tf_lottery.data import DatasetUnavailable

    try:
        tl.data.get("fashion_mnist").load(None, False, 0)
    except DatasetUnavailable:
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    command = [sys.executable, "-m", "tf_lottery.cli", "--experiment=init_ticket", "--model=resnet50",
               "--input_shape=64,64,3", "--dataset=fashion_mnist", "--train_size=512", "--val_size=128",
               "--test_size=256", "--length=1ep", "--lr_drops=", "--num_blocks=3", "--batch_size=64",
               f"--runs_dir={tmp_path}", "--latency_batch_sizes=1"]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    assert finished.returncode == 0, finished.stderr[-3000:]
    folder = [f for f in os.listdir(tmp_path) if f.startswith("init_ticket-")][0]
    record = json.load(open(os.path.join(tmp_path, folder, "result.json")))
    assert record["ticket"]["blocks"] == 13 and record["dense"]["blocks"] == 16


def test_a_nested_backbone_of_unknown_size_is_counted_at_the_size_it_is_called_with():
    backbone = keras.applications.MobileNetV2(weights=None, include_top=False, input_shape=(None, None, 3))
    inputs = keras.Input((32, 32, 3), name="image")
    outputs = keras.layers.Dense(3, name="head")(keras.layers.GlobalAveragePooling2D()(backbone(inputs)))
    model = keras.Model(inputs, outputs, name="wrapped")
    alone = tl.models.get("mobilenetv2")(input_shape=(32, 32, 3), num_classes=3)
    assert cost.flops(model) == cost.flops(alone)  # the same convs at the same sizes, the same head
    assert surgery.blocks(model) == surgery.blocks(alone)
    assert len(tl.criteria.get("magnitude")(model)) == 10  # kernels inside the nested model are scored
    with pytest.raises(ValueError, match="its spatial size is unknown"):
        cost.flops(backbone)


@pytest.mark.parametrize("last", ["separable", "depthwise", "dense"])
def test_a_branch_ending_in_any_linear_layer_is_silenced_exactly(last, batch):
    inputs = keras.Input((16, 16, 3), name="image")
    x = _conv(4, "stem")(inputs)
    for i in range(2):
        y = keras.layers.ReLU(name=f"l{i}_relu")(keras.layers.BatchNormalization(name=f"l{i}_bn")(x))
        y = {"separable": lambda: keras.layers.SeparableConv2D(4, 3, padding="same", name=f"l{i}_end"),
             "depthwise": lambda: keras.layers.DepthwiseConv2D(3, padding="same", name=f"l{i}_end"),
             "dense": lambda: keras.layers.Dense(4, name=f"l{i}_end")}[last]()(y)
        x = keras.layers.Add(name=f"l{i}_add")([x, y])
    model = keras.Model(inputs, _head(x), name=f"ends_in_{last}")
    ticket = surgery.remove_blocks(model, ["l1"], min_blocks_per_stage=1)
    _removal_equals_silencing(model, ticket, ["l1"], batch[0])
