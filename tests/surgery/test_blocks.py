import random

import keras
import numpy as np
import pytest

import tf_lottery as tl
from tf_lottery import surgery
from tf_lottery.graph import cost


def _weights_by_layer(model):
    return {layer.name: layer.get_weights() for layer in model.layers if layer.weights}


@pytest.mark.parametrize("depth, total, removable, most", [(20, 9, 6, 3), (32, 15, 12, 9), (56, 27, 24, 21)])
def test_block_counts(depth, total, removable, most):
    model = tl.models.cifar_resnet(depth)
    assert len(surgery.blocks(model)) == total
    assert len(surgery.removable_blocks(model)) == removable
    assert surgery.max_removable(model) == most
    fixed = set(surgery.blocks(model)) - set(surgery.removable_blocks(model))
    assert fixed == {"stage1_block1", "stage2_block1", "stage3_block1"}


def test_blocks_are_found_from_the_graph():
    block = {b.name: b for b in surgery.find_blocks(tl.models.cifar_resnet(20))}
    first = block["stage2_block1"]
    assert first.input_layer == "stage1_block3_out"
    assert first.output_layer == "stage2_block1_out"
    assert first.identity_input is None and not first.removable
    assert set(first.layers) == {
        f"stage2_block1_{s}" for s in ("conv1", "bn1", "relu1", "conv2", "bn2", "proj", "add", "out")
    }
    second = block["stage2_block2"]
    assert second.identity_input == 0 and second.removable


def test_removing_nothing_reproduces_the_model(images):
    model = tl.models.cifar_resnet(20, seed=1)
    copy = surgery.remove_blocks(model, [])
    assert [layer.name for layer in copy.layers] == [layer.name for layer in model.layers]
    np.testing.assert_array_equal(copy(images, training=False), model(images, training=False))


def test_kept_weights_are_bit_identical_and_source_untouched():
    model = tl.models.cifar_resnet(32, seed=4)
    before = _weights_by_layer(model)
    ticket = surgery.remove_blocks(model, ["stage1_block2", "stage3_block5"])
    after = _weights_by_layer(ticket)
    assert not any(name.startswith(("stage1_block2_", "stage3_block5_")) for name in after)
    assert len(after) == len(before) - 2 * 4  # conv1, bn1, conv2 and bn2 of each removed block
    for name, values in after.items():
        assert all(np.array_equal(a, b) for a, b in zip(values, before[name])), name
    # The dense model is left as it was.
    for name, values in _weights_by_layer(model).items():
        assert all(np.array_equal(a, b) for a, b in zip(values, before[name]))
    assert len(surgery.blocks(model)) == 15


def test_trained_weights_are_inherited_too():
    model = tl.models.cifar_resnet(20, seed=0)
    for layer in model.layers:
        if layer.weights:  # stand-in for training: every weight and BN statistic changes
            layer.set_weights([w + np.float32(0.25) for w in layer.get_weights()])
    ticket = surgery.remove_blocks(model, ["stage2_block3"])
    for layer in ticket.layers:
        for a, b in zip(layer.get_weights(), model.get_layer(layer.name).get_weights()):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("depth, shortcut, trials", [(20, "projection", 3), (32, "projection", 3), (56, "projection", 2), (32, "zero_pad", 2)])
def test_ticket_equals_dense_with_silenced_blocks(depth, shortcut, trials, images):
    rng = random.Random(depth)
    for trial in range(trials):
        model = tl.models.cifar_resnet(depth, shortcut=shortcut, seed=trial)
        # Non-trivial BN statistics, so inference mode is not an identity normalisation.
        for layer in model.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                n = layer.moving_mean.shape[0]
                layer.moving_mean.assign(np.linspace(-0.2, 0.2, n).astype("float32"))
                layer.moving_variance.assign(np.linspace(0.5, 1.5, n).astype("float32"))
        candidates = surgery.removable_blocks(model)
        names = []
        for name in rng.sample(candidates, len(candidates)):
            try:
                surgery.check_removal(model, names + [name])
                names.append(name)
            except ValueError:
                pass
            if len(names) == rng.randint(1, surgery.max_removable(model)):
                break
        ticket = surgery.remove_blocks(model, names)
        surgery.silence_blocks(model, names)
        dense_out = model(images, training=False).numpy()
        ticket_out = ticket(images, training=False).numpy()
        np.testing.assert_allclose(ticket_out, dense_out, rtol=1e-5, atol=1e-5)
        assert np.abs(dense_out).max() > 1e-2  # the comparison is not between zeros


def test_silencing_is_what_removal_means_not_a_tautology(images):
    model = tl.models.cifar_resnet(20, seed=0)
    ticket = surgery.remove_blocks(model, ["stage1_block2"])
    # Without silencing, the dense model and the ticket disagree.
    assert not np.allclose(model(images, training=False), ticket(images, training=False), atol=1e-4)


def test_paper_filter_counts_after_removal():
    model = tl.models.cifar_resnet(32)
    assert cost.count_filters(surgery.remove_blocks(model, ["stage1_block2"])) == 1_200
    assert cost.count_filters(surgery.remove_blocks(model, ["stage1_block2", "stage1_block3"])) == 1_168


def test_removal_can_be_repeated_and_keeps_identity():
    model = tl.models.cifar_resnet(32, seed=2)
    once = surgery.remove_blocks(model, ["stage2_block4"])
    twice = surgery.remove_blocks(once, ["stage1_block3"])
    assert surgery.lineage(twice)["removed"] == ["stage1_block3", "stage2_block4"]
    assert twice.name == "resnet32_minus2"
    np.testing.assert_array_equal(
        twice.get_layer("stage3_block5_conv2").kernel.numpy(), model.get_layer("stage3_block5_conv2").kernel.numpy()
    )


def test_ticket_rebuilt_from_lineage_json_equals_the_cut_ticket(images):
    model = tl.models.cifar_resnet(32, seed=5)
    ticket = surgery.remove_blocks(model, ["stage3_block2", "stage1_block4", "stage2_block5"])
    text = surgery.lineage_json(ticket)
    # Same seed: the rebuilt ticket already has θ0 of the kept layers, with no copying.
    rebuilt = surgery.rebuild(text)
    assert [layer.name for layer in rebuilt.layers] == [layer.name for layer in ticket.layers]
    for a, b in zip(rebuilt.get_weights(), ticket.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(rebuilt(images, training=False), ticket(images, training=False))
    # And weights can be delivered by name into a rebuilt skeleton.
    other = tl.models.cifar_resnet(32, seed=99)
    moved = surgery.rebuild({**surgery.lineage(ticket), "spec": {**surgery.lineage(ticket)["spec"], "seed": 99}},
                            weights_from=ticket)
    np.testing.assert_array_equal(moved(images, training=False), ticket(images, training=False))
    assert not np.array_equal(other.get_weights()[0], ticket.get_weights()[0])


@pytest.mark.parametrize(
    "names, message",
    [
        (["stage9_block2"], r"unknown blocks \['stage9_block2'\]"),
        (["stage1_block1"], r"not removable .*removable blocks: \['stage1_block2'"),
        (["stage2_block1"], r"blocks \['stage2_block1'\] are not removable"),
        (["stage1_block2", "stage1_block2"], "named twice"),
        (["stage1_block2", "stage1_block3"], "leaves stage 1 with 1 blocks, below the floor: every stage keeps min_blocks_per_stage=2 blocks"),
    ],
)
def test_refusals(names, message):
    model = tl.models.cifar_resnet(20)
    with pytest.raises(ValueError, match=message):
        surgery.remove_blocks(model, names)


def test_floor_is_a_parameter():
    model = tl.models.cifar_resnet(20)
    ticket = surgery.remove_blocks(model, ["stage1_block2", "stage1_block3"], min_blocks_per_stage=1)
    assert [b for b in surgery.blocks(ticket) if b.startswith("stage1")] == ["stage1_block1"]
    with pytest.raises(ValueError, match="min_blocks_per_stage must be >= 0"):
        surgery.remove_blocks(model, [], min_blocks_per_stage=-1)


def test_not_a_functional_model_is_refused():
    with pytest.raises(TypeError, match="functional"):
        surgery.blocks(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]))


def test_a_users_own_resnet_without_stage_names(images):
    """Blocks come from the graph: any names, any residual layout with Add layers."""
    x_in = keras.Input((32, 32, 3), name="pixels")
    x = keras.layers.Conv2D(8, 3, padding="same", name="c0")(x_in)
    outs = []
    for i in range(3):
        y = keras.layers.Conv2D(8, 3, padding="same", name=f"r{i}_a")(x)
        y = keras.layers.BatchNormalization(name=f"r{i}_bn")(y)
        x = keras.layers.Add(name=f"res{i}")([x, y])
        outs.append(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(x_in, keras.layers.Dense(3, name="head")(x))
    assert surgery.blocks(model) == ["res0", "res1", "res2"]
    # Not a paper template: the shape rule, so res0 (fed by the stem, not a block) is removable too.
    assert surgery.eligibility_rule(model) == "shape"
    assert surgery.removable_blocks(model) == ["res0", "res1", "res2"]
    ticket = surgery.remove_blocks(model, ["res1"], min_blocks_per_stage=1)
    assert ticket.name == f"{model.name}_ticket"
    assert surgery.lineage(ticket) is None
    surgery.silence_blocks(model, ["res1"])
    np.testing.assert_allclose(ticket(images, training=False), model(images, training=False), rtol=1e-5, atol=1e-6)


def test_transfer_weights_refuses_mismatches():
    small = tl.models.cifar_resnet(20)
    wide = tl.models.cifar_resnet(20, width_multiplier=2)
    with pytest.raises(ValueError, match="shapes"):
        surgery.transfer_weights(small, wide)
    deeper = tl.models.cifar_resnet(32)
    with pytest.raises(ValueError, match="has no namesake"):
        surgery.transfer_weights(small, deeper)
    assert "stage1_block4_conv1" not in surgery.transfer_weights(small, deeper, strict=False)


def _preactivation_resnet(last="conv"):
    """BN-ReLU-conv blocks whose branch ends in a biased conv (or in the activation ``last`` after it)."""
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", name="stem")(inputs)
    for i in range(3):
        y = keras.layers.BatchNormalization(name=f"b{i}_bn")(x)
        y = keras.layers.ReLU(name=f"b{i}_relu")(y)
        y = keras.layers.Conv2D(8, 3, padding="same", name=f"b{i}_conv")(y)
        if last != "conv":
            y = keras.layers.Activation(last, name=f"b{i}_last")(y)
        x = keras.layers.Add(name=f"b{i}_add")([x, y])
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="head")(x))


def test_a_preactivation_branch_is_silenced_by_its_last_conv(images):
    model = _preactivation_resnet()
    block = {b.name: b for b in surgery.find_blocks(model)}["b1"]
    assert block.branch == ("b1_bn", "b1_relu", "b1_conv") and block.output_layer == "b1_add"
    ticket = surgery.remove_blocks(model, ["b1"], min_blocks_per_stage=1)
    surgery.silence_blocks(model, ["b1"])
    assert not model.get_layer("b1_conv").bias.numpy().any() and not model.get_layer("b1_conv").kernel.numpy().any()
    np.testing.assert_allclose(ticket(images, training=False), model(images, training=False), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("last", ["relu", "gelu", "swish"])
def test_an_activation_that_keeps_zero_is_walked_over_to_the_conv_before_it(images, last):
    model = _preactivation_resnet(last=last)
    block = {b.name: b for b in surgery.find_blocks(model)}["b1"]
    assert [v.path for v in surgery.silencing_variables(model, block)] == ["b1_conv/kernel", "b1_conv/bias"]
    ticket = surgery.remove_blocks(model, ["b1"], min_blocks_per_stage=1)
    surgery.silence_blocks(model, ["b1"])
    np.testing.assert_array_equal(ticket(images, training=False), model(images, training=False))


def test_a_branch_that_cannot_be_silenced_is_refused_by_name():
    # sigmoid(0) = 0.5: zeroing the conv before it leaves the branch adding 0.5 everywhere.
    with pytest.raises(ValueError, match="cannot silence block 'b1': its branch ends in Activation 'b1_last'"):
        surgery.silence_blocks(_preactivation_resnet(last="sigmoid"), ["b1"])
