"""A layer called more than once (a shared layer): the graph has one node per call, and only the
blocks that share a layer with something outside them are ineligible; the rest of the model is
found, scored, removed and rebuilt as usual."""

import keras
import numpy as np
import pytest

import tf_lottery as tl
from tf_lottery import surgery


def _conv(filters, name):
    return keras.layers.Conv2D(filters, 3, padding="same", name=name)


def _block(x, name, conv1=None):
    y = (conv1 or _conv(8, f"{name}_conv1"))(x)
    y = keras.layers.ReLU(name=f"{name}_relu1")(keras.layers.BatchNormalization(name=f"{name}_bn1")(y))
    y = keras.layers.BatchNormalization(name=f"{name}_bn2")(_conv(8, f"{name}_conv2")(y))
    return keras.layers.ReLU(name=f"{name}_out")(keras.layers.Add(name=f"{name}_add")([x, y]))


def four_blocks_sharing(seed=0):
    """Four residual blocks; blocks b2 and b3 call one Conv2D, ``shared_conv``, as their first conv."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((12, 12, 3), name="image")
    x = keras.layers.ReLU(name="stem_relu")(_conv(8, "stem_conv")(inputs))
    shared = _conv(8, "shared_conv")
    for i in range(1, 5):
        x = _block(x, f"b{i}", conv1=shared if i in (2, 3) else None)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="logits")(x), name="sharing")


def shared_outside_blocks(seed=0):
    """A stem that calls one conv twice and a head that calls one Dense twice, around three plain blocks."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((12, 12, 8), name="image")
    stem = _conv(8, "stem_conv")
    x = stem(keras.layers.ReLU(name="stem_relu")(stem(inputs)))
    for i in range(1, 4):
        x = _block(x, f"b{i}")
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    hidden = keras.layers.Dense(8, activation="relu", name="hidden")
    x = hidden(hidden(x))
    return keras.Model(inputs, keras.layers.Dense(3, name="logits")(x), name="shared_ends")


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((6, 12, 12, 3)).astype("float32"), np.arange(6) % 3


def _assert_kept_weights_bit_identical(dense, ticket):
    dense_layers = {layer.name: layer for layer in tl.graph.leaf_layers(dense)}
    kept = 0
    for layer in tl.graph.leaf_layers(ticket):
        for mine, theirs in zip(layer.weights, dense_layers[layer.name].weights):
            np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
            kept += 1
    assert kept > 0


def test_each_call_of_a_shared_layer_is_its_own_node_of_the_graph():
    model = four_blocks_sharing()
    g = tl.graph.analyse(model)
    assert "shared_conv" not in g.order
    assert [n for n in g.order if n.startswith("shared_conv")] == ["shared_conv@1", "shared_conv@2"]
    assert g.parents["shared_conv@1"] == ["b1_out"] and g.parents["shared_conv@2"] == ["b2_out"]
    assert g.consumers["shared_conv@2"] == ["b3_bn1"]
    assert g.operations["shared_conv@1"] is g.operations["shared_conv@2"] is model.get_layer("shared_conv")
    assert g.calls["shared_conv"] == ("shared_conv@1", "shared_conv@2")
    assert tl.graph.operation(model, "shared_conv") is model.get_layer("shared_conv")  # the layer by its own name
    # each call's own output
    probe = keras.Model(model.inputs[0], [tl.graph.output_of(model, "shared_conv@2"), model.get_layer("b3_bn1").input])
    x = np.random.default_rng(1).standard_normal((2, 12, 12, 3)).astype("float32")
    second, bn_input = probe(x)
    np.testing.assert_array_equal(second.numpy(), bn_input.numpy())
    # a shared layer's FLOPs count once per call
    conv = 12 * 12 * 9 * 8 * 8
    assert tl.cost.operation_flops(g, "shared_conv@1") == tl.cost.operation_flops(g, "shared_conv@2") == conv


def test_only_the_blocks_that_share_a_layer_are_ineligible():
    model = four_blocks_sharing()
    assert surgery.blocks(model) == ["b1", "b2", "b3", "b4"]
    assert surgery.removable_blocks(model) == ["b1", "b4"]
    found = {b.name: b for b in surgery.find_blocks(model)}
    assert found["b2"].shared == ("shared_conv",) and found["b3"].shared == ("shared_conv",)
    assert found["b1"].shared == () and found["b4"].shared == ()
    why = surgery.ineligible(model)
    assert sorted(why) == ["b2", "b3"]
    assert "layer 'shared_conv'" in why["b2"] and "block 'b3'" in why["b2"], why
    assert "layer 'shared_conv'" in why["b3"] and "block 'b2'" in why["b3"], why


@pytest.mark.parametrize("removed", [["b1"], ["b4"], ["b1", "b4"]])
def test_the_other_blocks_are_removed_with_their_weights_bit_for_bit(removed, data):
    model = four_blocks_sharing()
    images = data[0]
    expected = model(images, training=False).numpy()
    ticket = surgery.remove_blocks(model, removed, min_blocks_per_stage=0)
    assert surgery.blocks(ticket) == [n for n in ["b1", "b2", "b3", "b4"] if n not in removed]
    assert surgery.removable_blocks(ticket) == [n for n in ["b1", "b4"] if n not in removed]
    _assert_kept_weights_bit_identical(model, ticket)
    # the ticket still shares its one conv between b2 and b3
    assert tl.graph.analyse(ticket).calls["shared_conv"] == ("shared_conv@1", "shared_conv@2")
    assert [lay.name for lay in tl.graph.leaf_layers(ticket)].count("shared_conv") == 1
    gone = sum(model.get_layer(f"{b}_{part}").count_params() for b in removed for part in ("conv1", "conv2", "bn1", "bn2"))
    assert ticket.count_params() == model.count_params() - gone
    # what removal means: the dense model with the removed branches silenced computes the same
    surgery.silence_blocks(model, removed)
    silenced = model(images, training=False).numpy()
    assert np.abs(silenced - expected).max() > 1e-4
    np.testing.assert_allclose(ticket(images, training=False).numpy(), silenced, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("names", [["b2"], ["b3"], ["b1", "b2"]])
def test_removing_a_block_that_shares_a_layer_is_refused_in_one_line(names):
    model = four_blocks_sharing()
    with pytest.raises(ValueError) as error:
        surgery.remove_blocks(model, names, min_blocks_per_stage=0)
    message = str(error.value)
    assert "\n" not in message
    blocked = [n for n in names if n in ("b2", "b3")][0]
    assert f"blocks [{blocked!r}] are not removable ({blocked!r} calls layer 'shared_conv', which block" in message, \
        message
    assert "removable blocks: ['b1', 'b4']" in message


@pytest.mark.parametrize("criterion", ["magnitude", "grasp", "snip"])
def test_find_ticket_skips_the_blocks_that_share_a_layer(criterion, data):
    model = four_blocks_sharing()
    scores = tl.criteria.get(criterion)(model, data)
    assert sorted(scores) == ["b1", "b2", "b3", "b4"]  # every block is scored; only eligible ones are picked
    result = tl.find_ticket(model, criterion, num_blocks=2, data=data, min_blocks_per_stage=0)
    assert sorted(result.removed) == ["b1", "b4"]
    assert surgery.blocks(result.model) == ["b2", "b3"]
    _assert_kept_weights_bit_identical(model, result.model)
    with pytest.raises(ValueError, match="at most 2 can be removed.*'shared_conv'"):
        tl.find_ticket(model, criterion, num_blocks=3, data=data, min_blocks_per_stage=0)


def test_a_layer_called_twice_inside_one_block_goes_with_it(data):
    """Both calls lie in the block: removing the block removes every call, so it stays eligible."""
    inputs = keras.Input((12, 12, 3), name="image")
    x = _conv(8, "stem_conv")(inputs)
    for i in range(1, 4):
        twice = _conv(8, f"b{i}_twice")
        y = twice(keras.layers.ReLU(name=f"b{i}_relu")(twice(x)))
        x = keras.layers.Add(name=f"b{i}_add")([x, y])
    model = keras.Model(inputs, keras.layers.Dense(3, name="logits")(keras.layers.GlobalAveragePooling2D()(x)))
    assert surgery.removable_blocks(model) == ["b1", "b2", "b3"] and surgery.ineligible(model) == {}
    ticket = surgery.remove_blocks(model, ["b2"], min_blocks_per_stage=0)
    assert "b2_twice" not in [lay.name for lay in tl.graph.leaf_layers(ticket)]
    _assert_kept_weights_bit_identical(model, ticket)


def test_a_shared_layer_without_weights_makes_no_block_ineligible(data):
    """One ReLU and one Add layer object called by every block: nothing is shared but the code."""
    inputs = keras.Input((12, 12, 3), name="image")
    relu, add = keras.layers.ReLU(name="relu"), keras.layers.Add(name="plus")
    x = relu(_conv(8, "stem_conv")(inputs))
    for i in range(1, 4):
        x = relu(add([x, keras.layers.BatchNormalization(name=f"b{i}_bn")(_conv(8, f"b{i}_conv")(x))]))
    model = keras.Model(inputs, keras.layers.Dense(3, name="logits")(keras.layers.GlobalAveragePooling2D()(x)))
    found = surgery.find_blocks(model)
    assert len(found) == 3 and all(b.removable for b in found), found
    victim = found[1].name
    ticket = surgery.remove_blocks(model, [victim], min_blocks_per_stage=0)
    surgery.silence_blocks(model, [victim])
    np.testing.assert_allclose(ticket(data[0], training=False).numpy(), model(data[0], training=False).numpy(),
                               rtol=1e-5, atol=1e-6)


def test_a_layer_shared_by_a_block_and_the_stem_names_the_stem():
    inputs = keras.Input((12, 12, 8), name="image")
    shared = _conv(8, "shared_conv")
    x = shared(inputs)
    for i in range(1, 4):
        x = _block(x, f"b{i}", conv1=shared if i == 2 else None)
    model = keras.Model(inputs, keras.layers.Dense(3, name="logits")(keras.layers.GlobalAveragePooling2D()(x)))
    assert surgery.removable_blocks(model) == ["b1", "b3"]
    assert "'shared_conv'" in surgery.ineligible(model)["b2"] and "outside any block" in surgery.ineligible(model)["b2"]


def test_a_model_sharing_layers_outside_its_blocks_works_fully(data):
    model = shared_outside_blocks()
    images = np.random.default_rng(2).standard_normal((6, 12, 12, 8)).astype("float32")
    assert surgery.blocks(model) == ["b1", "b2", "b3"] and surgery.removable_blocks(model) == ["b1", "b2", "b3"]
    before = [w.copy() for w in model.get_weights()]
    for criterion in [n for n in tl.criteria.names() if tl.criteria.get(n).when in ("init", "any")]:
        scores = tl.criteria.get(criterion)(model, (images, data[1]))
        assert sorted(scores) == ["b1", "b2", "b3"] and all(np.isfinite(list(scores.values()))), criterion
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    result = tl.find_ticket(model, "grasp", num_blocks=1, data=(images, data[1]), min_blocks_per_stage=0)
    ticket = result.model
    assert len(surgery.blocks(ticket)) == 2
    _assert_kept_weights_bit_identical(model, ticket)
    assert tl.graph.analyse(ticket).calls == {"stem_conv": ("stem_conv@1", "stem_conv@2"),
                                              "hidden": ("hidden@1", "hidden@2")}
    conv, block = 12 * 12 * 9 * 8 * 8, 2 * 12 * 12 * 9 * 8 * 8
    assert tl.cost.flops(model) == 2 * conv + 3 * block + 2 * 8 * 8 + 8 * 3
    assert tl.cost.flops(ticket) == tl.cost.flops(model) - block
    surgery.silence_blocks(model, result.removed)
    np.testing.assert_allclose(ticket(images, training=False).numpy(), model(images, training=False).numpy(),
                               rtol=1e-5, atol=1e-6)


def test_a_nested_block_model_called_twice_shares_all_its_layers():
    """A functional block called twice as a layer: weight-tied blocks, each ineligible because of the other."""
    inputs = keras.Input((12, 12, 3), name="image")
    x = _conv(8, "stem_conv")(inputs)
    block_in = keras.Input((12, 12, 8))
    tied = keras.Model(block_in, _block(block_in, "tied"), name="tied")
    x = _block(tied(tied(_block(x, "b1"))), "b4")
    model = keras.Model(inputs, keras.layers.Dense(3, name="logits")(keras.layers.GlobalAveragePooling2D()(x)))
    found = surgery.find_blocks(model)
    assert len(found) == 4 and [b.removable for b in found] == [True, False, False, True], found
    assert found[1].shared == found[2].shared == ("tied_conv1", "tied_bn1", "tied_conv2", "tied_bn2")
    ticket = surgery.remove_blocks(model, ["b1", "b4"], min_blocks_per_stage=0)
    assert len(surgery.find_blocks(ticket)) == 2
    _assert_kept_weights_bit_identical(model, ticket)


def test_a_filter_group_never_holds_a_shared_layer(data):
    model = four_blocks_sharing()
    assert [g.conv for g in surgery.filters.filter_groups(model)] == ["b1_conv1", "b4_conv1"]
    narrow = surgery.filters.remove_filters(model, ["b1_conv1:0", "b4_conv1:7"])
    assert narrow.get_layer("b1_conv1").filters == 7 and narrow.get_layer("shared_conv").filters == 8
    np.testing.assert_array_equal(narrow.get_layer("shared_conv").get_weights()[0],
                                  model.get_layer("shared_conv").get_weights()[0])
    assert narrow(data[0]).shape == (6, 3)


def test_an_operation_named_like_a_call_of_a_shared_layer_is_refused_by_name():
    inputs = keras.Input((12, 12, 8), name="image")
    shared = _conv(8, "conv")
    x = keras.layers.ReLU(name="conv@2")(shared(shared(inputs)))
    with pytest.raises(ValueError, match="has an operation named like a call of a shared layer \\(conv@2\\); rename it"):
        tl.graph.analyse(keras.Model(inputs, x))
