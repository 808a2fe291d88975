import dataclasses

import keras
import numpy as np
import pytest

import tf_lottery as tl
from tf_lottery import surgery
from tf_lottery.graph import cost
from tf_lottery.core import options
from tf_lottery.graph.lineage import attach


@pytest.mark.parametrize(
    "depth, params, filters, flops",
    [(32, 470_218, 1_232, 69_124_736), (56, 861_770, 2_128, 125_747_840)],
)
def test_golden_numbers_of_the_paper_template(depth, params, filters, flops):
    model = tl.models.cifar_resnet(depth=depth, num_classes=10, input_shape=(32, 32, 3), seed=0)
    assert model.count_params() == params
    assert cost.count_filters(model) == filters
    assert cost.flops(model) == flops


def test_every_removable_block_costs_the_same_flops_in_every_stage():
    model = tl.models.cifar_resnet(56)
    for block in surgery.find_blocks(model):
        if block.removable:
            assert sum(cost.layer_flops(model.get_layer(n)) for n in block.layers) == 4_718_592


def test_block_params_per_stage():
    model = tl.models.cifar_resnet(32)
    params = {
        b.stage: sum(model.get_layer(n).count_params() for n in b.layers)
        for b in surgery.find_blocks(model) if b.removable
    }
    assert params == {1: 4_768, 2: 18_752, 3: 74_368}


def test_layer_names_follow_the_design():
    model = tl.models.cifar_resnet(20)
    names = {layer.name for layer in model.layers}
    expected = {"image", "stem_conv", "stem_bn", "stem_relu", "pool", "logits", "stage2_block1_proj"}
    for suffix in ("conv1", "bn1", "relu1", "conv2", "bn2", "add", "out"):
        expected.add(f"stage3_block3_{suffix}")
    assert expected <= names
    assert "stage1_block1_proj" not in names


def test_same_seed_bit_identical_and_other_seed_differs():
    a = tl.models.cifar_resnet(20, seed=7).get_weights()
    b = tl.models.cifar_resnet(20, seed=7).get_weights()
    c = tl.models.cifar_resnet(20, seed=8).get_weights()
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])


def test_initializer_is_he_normal_and_biases_zero():
    model = tl.models.cifar_resnet(56, seed=0)
    kernel, bias = model.get_layer("stage3_block5_conv1").get_weights()
    fan_in = 3 * 3 * 64
    # Keras' he_normal is a truncated normal with stddev sqrt(2 / fan_in).
    assert kernel.std() == pytest.approx(np.sqrt(2 / fan_in), rel=0.05)
    assert np.abs(kernel).max() <= 2 * np.sqrt(2 / fan_in) / 0.87962566 + 1e-6
    assert not bias.any()


@pytest.mark.parametrize("depth", [0, 7, 31, 33, -4])
def test_impossible_depth_names_the_valid_form(depth):
    with pytest.raises(ValueError, match=r"6n\+2 .* got " + str(depth)):
        tl.models.cifar_resnet(depth)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(shortcut="option_c"), "shortcut must be one of"),
        (dict(output="probits"), "output must be one of"),
        (dict(blocks_per_stage=(3, 0, 3)), "blocks_per_stage"),
        (dict(num_classes=0), "num_classes"),
        (dict(input_shape=(32, 32)), "input_shape"),
    ],
)
def test_invalid_options_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tl.models.cifar_resnet(20, **kwargs)


def test_fashion_mnist_shape_zero_pad_and_softmax():
    model = tl.models.cifar_resnet(
        20, num_classes=7, input_shape=(28, 28, 1), shortcut="zero_pad", output="softmax"
    )
    x = np.random.default_rng(0).random((3, 28, 28, 1)).astype("float32")
    y = model(x, training=False).numpy()
    assert y.shape == (3, 7)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-5)
    assert not any(layer.name.endswith("_proj") for layer in model.layers)
    # Option A's first block of a stage changes shape, so it is still not removable.
    assert surgery.removable_blocks(model) == [
        f"stage{s}_block{b}" for s in (1, 2, 3) for b in (2, 3)
    ]


def test_logits_by_default():
    model = tl.models.cifar_resnet(20)
    assert model.get_layer("logits").get_config()["activation"] == "linear"


def test_blocks_per_stage_and_width_multiplier():
    model = tl.models.cifar_resnet(blocks_per_stage=(1, 2, 3, 1), width_multiplier=0.5)
    assert [b.stage for b in surgery.find_blocks(model)] == [1, 2, 2, 3, 3, 3, 4]
    assert model.get_layer("stage4_block1_conv2").filters == 64
    assert model.get_layer("stem_conv").filters == 8


def test_spec_round_trip():
    spec = tl.models.CifarResNetSpec(blocks_per_stage=(2, 3, 4), shortcut="zero_pad", seed=3)
    assert tl.models.CifarResNetSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(ValueError, match="unknown spec keys"):
        tl.models.CifarResNetSpec.from_dict({"blocks": (1, 1, 1)})


def test_model_registry_lists_valid_names():
    builder = tl.models.get("cifar_resnet")
    assert builder.fn is tl.models.cifar_resnet and builder(depth=20).count_params() == 274_442
    assert builder.settings is tl.models.CifarResNetSettings
    with pytest.raises(KeyError, match="valid names: byte_decoder, cifar_resnet"):
        tl.models.get("resnet_imagenet")


@dataclasses.dataclass(frozen=True)
class _TinySettings:
    blocks: int = options.integer(3, "Residual blocks.")


def _tiny_dense(spec: dict) -> keras.Model:
    """A small residual network with its own names; no way to leave blocks out by itself."""
    inputs = keras.Input(tuple(spec["input_shape"]), name="image")
    x = keras.layers.Conv2D(4, 3, padding="same", name="stem",
                            kernel_initializer=keras.initializers.HeNormal(spec["seed"]))(inputs)
    for i in range(spec["blocks"]):
        y = keras.layers.Conv2D(4, 3, padding="same", name=f"res{i}_conv",
                                kernel_initializer=keras.initializers.HeNormal(spec["seed"] + i + 1))(x)
        y = keras.layers.BatchNormalization(name=f"res{i}_bn")(y)
        x = keras.layers.ReLU(name=f"res{i}_out")(keras.layers.Add(name=f"res{i}_add")([x, y]))
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    logits = keras.layers.Dense(spec["num_classes"], name="logits",
                                kernel_initializer=keras.initializers.HeNormal(spec["seed"] + 99))(x)
    model = keras.Model(inputs, logits, name="tiny")
    return attach(model, "tiny", spec)


def _tiny_from_settings(settings, input_shape, num_classes, seed, weight_decay):
    return _tiny_dense({"blocks": settings.blocks, "input_shape": list(input_shape), "num_classes": num_classes,
                        "seed": seed})


def _tiny_from_spec(spec, removed):
    return surgery.remove_blocks(_tiny_dense(spec), list(removed), min_blocks_per_stage=1) if removed else _tiny_dense(spec)


def test_lineage_and_rebuild_work_for_any_registered_builder(images):
    @tl.models.register_builder("tiny", settings=_TinySettings, from_settings=_tiny_from_settings,
                                from_spec=_tiny_from_spec)
    def tiny(**kwargs):
        return _tiny_from_settings(_TinySettings(**kwargs), (32, 32, 3), 10, 0, 0.0)

    try:
        config = tl.Config.create(model="tiny", blocks=4, input_shape=(32, 32, 3), num_classes=5)
        dense = tl.models.build(config.model, data=None, seed=7)
        assert [b.name for b in surgery.find_blocks(dense)] == ["res0", "res1", "res2", "res3"]
        ticket = surgery.remove_blocks(dense, ["res2"], min_blocks_per_stage=1)
        ticket = surgery.remove_blocks(ticket, ["res1"], min_blocks_per_stage=1)
        assert ticket.name == "tiny_minus2" and tl.models.lineage(ticket)["removed"] == ["res1", "res2"]
        rebuilt = tl.models.rebuild(tl.models.lineage_json(ticket))  # same seed: θ0 of the kept layers
        np.testing.assert_array_equal(rebuilt(images, training=False), ticket(images, training=False))
    finally:
        tl.models.MODELS._entries.pop("tiny")
