"""Filter tickets (the paper's Table 3 baseline): prunable channels, physical removal, matching."""

import keras
import numpy as np
import pytest

import tf_lottery as tl
from tf_lottery import criteria, surgery
from tf_lottery.graph import cost
from tf_lottery.surgery import filters
from tf_lottery import tickets as methods
from tf_lottery.config import Config


def _batch(n=40, shape=(16, 16, 3), seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, *shape)).astype("float32"), np.arange(n) % 10


def _bottleneck_model():
    """A residual model nobody here built: bottleneck blocks (1x1, 3x3, 1x1), odd names."""
    inputs = keras.Input((12, 12, 3))
    x = keras.layers.Conv2D(16, 3, padding="same", name="head")(inputs)
    for i in range(2):
        y = keras.layers.Conv2D(4, 1, name=f"b{i}_squeeze")(x)
        y = keras.layers.BatchNormalization(name=f"b{i}_n1")(y)
        y = keras.layers.Activation("relu", name=f"b{i}_a1")(y)
        y = keras.layers.Conv2D(4, 3, padding="same", name=f"b{i}_mid")(y)
        y = keras.layers.ReLU(name=f"b{i}_a2")(y)
        y = keras.layers.Conv2D(16, 1, name=f"b{i}_expand")(y)
        x = keras.layers.ReLU(name=f"b{i}_out")(keras.layers.Add(name=f"b{i}_sum")([x, y]))
    outputs = keras.layers.Dense(3, name="cls")(keras.layers.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, outputs, name="bottlenecks")


def test_prunable_filters_are_the_block_internal_channels():
    model = tl.models.cifar_resnet(32)
    groups = filters.filter_groups(model)
    assert [g.conv for g in groups] == [f"stage{s}_block{b}_conv1" for s in (1, 2, 3) for b in range(1, 6)]
    first = groups[5]  # the strided first conv of a downsampling block is prunable
    assert (first.conv, first.followers, first.consumer) == (
        "stage2_block1_conv1", ("stage2_block1_bn1", "stage2_block1_relu1"), "stage2_block1_conv2")
    assert model.get_layer(first.conv).strides == (2, 2)
    assert filters.count_prunable(model) == 5 * (16 + 32 + 64) == 560
    assert filters.max_removable(model) == 560 - 15
    # Nothing that feeds an Add: conv2 of every block, projections, the stem.
    feeding_add = {n for b in surgery.find_blocks(model) for n in (b.branch[-2], *b.shortcut)}
    assert not feeding_add & {g.conv for g in groups}


def test_a_bottleneck_block_has_two_prunable_convs():
    groups = filters.filter_groups(_bottleneck_model())
    assert [(g.conv, g.followers, g.consumer) for g in groups] == [
        ("b0_squeeze", ("b0_n1", "b0_a1"), "b0_mid"), ("b0_mid", ("b0_a2",), "b0_expand"),
        ("b1_squeeze", ("b1_n1", "b1_a1"), "b1_mid"), ("b1_mid", ("b1_a2",), "b1_expand"),
    ]


def test_kept_weights_are_bit_identical_slices_of_the_source():
    model = tl.models.cifar_resnet(20, input_shape=(16, 16, 3), seed=3)
    names = ["stage1_block2_conv1:0", "stage1_block2_conv1:7", "stage2_block1_conv1:31", "stage3_block3_conv1:5"]
    ticket = filters.remove_filters(model, names)
    keep = {"stage1_block2": np.setdiff1d(np.arange(16), [0, 7]), "stage2_block1": np.arange(31),
            "stage3_block3": np.setdiff1d(np.arange(64), [5])}
    touched = set()
    for block, kept in keep.items():
        conv1, bn1, conv2 = (f"{block}_{s}" for s in ("conv1", "bn1", "conv2"))
        k, b = model.get_layer(conv1).get_weights()
        np.testing.assert_array_equal(ticket.get_layer(conv1).get_weights()[0], k[..., kept])
        np.testing.assert_array_equal(ticket.get_layer(conv1).get_weights()[1], b[kept])
        for got, source in zip(ticket.get_layer(bn1).get_weights(), model.get_layer(bn1).get_weights()):
            np.testing.assert_array_equal(got, source[kept])  # gamma, beta, moving mean and variance
        k2, b2 = model.get_layer(conv2).get_weights()
        np.testing.assert_array_equal(ticket.get_layer(conv2).get_weights()[0], k2[:, :, kept, :])
        np.testing.assert_array_equal(ticket.get_layer(conv2).get_weights()[1], b2)
        touched |= {conv1, bn1, conv2}
    for layer in ticket.layers:
        if layer.weights and layer.name not in touched:
            for got, source in zip(layer.get_weights(), model.get_layer(layer.name).get_weights()):
                np.testing.assert_array_equal(got, source)
    assert ticket.count_params() < model.count_params()
    assert [layer.name for layer in ticket.layers] == [layer.name for layer in model.layers]


@pytest.mark.parametrize("build", [lambda: tl.models.cifar_resnet(20, input_shape=(16, 16, 3), seed=1),
                                   _bottleneck_model])
def test_the_ticket_computes_what_the_silenced_dense_model_computes(build):
    model = build()
    x = np.random.default_rng(2).standard_normal((8, *model.input_shape[1:])).astype("float32")
    model(x, training=True)  # move the BatchNorm statistics away from 0/1
    for layer in model.layers:  # and give every BatchNorm non-trivial statistics
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(np.random.default_rng(5).standard_normal(layer.moving_mean.shape))
            layer.moving_variance.assign(np.random.default_rng(6).random(layer.moving_variance.shape) + 0.5)
    scores = criteria.filter_scores(model, "random", seed=4)
    names = filters.select_filters(model, scores, filters.max_removable(model) // 2)
    ticket = filters.remove_filters(model, names)
    silenced = keras.models.clone_model(model)
    silenced.set_weights(model.get_weights())
    for layer_name, by_weight in filters.filter_masks(model, names).items():  # kernel, bias, gamma, beta -> 0
        for attr, mask in by_weight.items():
            assert set(np.unique(mask)) == {0.0, 1.0}
            variable = getattr(silenced.get_layer(layer_name), attr)
            variable.assign(np.where(mask == 0, 0.0, variable.numpy()))
    want, got = silenced(x, training=False).numpy(), ticket(x, training=False).numpy()
    # Same sums in another order (fewer channels): float32 rounding only.
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * float(np.abs(want).max()))


def test_the_matched_count_is_exact_and_the_paper_counts_hold():
    model = tl.models.cifar_resnet(32, input_shape=(16, 16, 3), seed=0)
    assert cost.count_filters(model) == 1232
    one = surgery.remove_blocks(model, ["stage1_block2"])
    two = surgery.remove_blocks(model, ["stage1_block2", "stage1_block3"])
    assert (cost.count_filters(one), cost.count_filters(two)) == (1200, 1168)  # the paper's Section 4
    data = _batch()
    for criterion, p in (("snip", 1), ("grasp", 2), ("magnitude", 3)):
        config = Config.create(method="filters", criterion=criterion, num_blocks=p)
        result = methods.get("filters")(model, data, config.method, seed=0)
        layer_ticket = methods.get("blocks")(model, data, config.method, seed=0)
        assert cost.count_filters(result.model) == cost.count_filters(layer_ticket.model) == \
            result.details["target_filters"]
        assert result.details["layer_ticket_removed"] == layer_ticket.removed
        assert len(result.removed) == 1232 - result.details["target_filters"]
        again = methods.get("filters").apply(model, result.record(), config.method)
        assert [w.shape for w in again.weights] == [w.shape for w in result.model.weights]


def test_a_count_that_cannot_be_met_names_the_maximum():
    model = tl.models.cifar_resnet(20, input_shape=(16, 16, 3))
    with pytest.raises(ValueError, match=r"cannot remove 400 filters .* at most 327 of its 336"):
        filters.select_filters(model, criteria.filter_scores(model, "random"), 400)
    config = Config.create(method="filters", match="none", num_filters=400)
    with pytest.raises(ValueError, match="at most 327"):
        methods.get("filters").check(model, config.method)
    with pytest.raises(ValueError, match="--match=none needs --num_filters"):
        methods.get("filters").check(model, Config.create(method="filters", match="none").method)
    with pytest.raises(ValueError, match="every conv keeps at least one"):
        filters.remove_filters(model, [f"stage1_block1_conv1:{i}" for i in range(16)])
    with pytest.raises(ValueError, match="has no prunable filters"):
        filters.remove_filters(model, ["stage1_block1_conv2:0"])
    with pytest.raises(KeyError, match="expectabs, grasp, hrank, magnitude, random, snip"):
        methods.get("filters").check(model, Config.create(method="filters", criterion="kl").method)


def test_every_conv_keeps_a_filter_and_the_ranking_follows_the_scores():
    model = tl.models.cifar_resnet(20, input_shape=(16, 16, 3))
    scores = {g.conv: np.arange(g.filters, dtype=float) + (100 if g.conv.startswith("stage3") else 0)
              for g in filters.filter_groups(model)}
    low = filters.select_filters(model, scores, 3)
    assert low == ["stage1_block1_conv1:0", "stage1_block2_conv1:0", "stage1_block3_conv1:0"]  # ties: graph order
    high = filters.select_filters(model, scores, 70, prune_first="high")
    assert {filters.parse_name(n)[0] for n in high} == {f"stage3_block{b}_conv1" for b in (1, 2, 3)}
    assert sum(n.startswith("stage3_block1_conv1") for n in high) <= 63
    everything = filters.select_filters(model, scores, filters.max_removable(model))
    assert all(sum(n.startswith(g.conv + ":") for n in everything) == g.filters - 1
               for g in filters.filter_groups(model))


def test_layerwise_ranking_gives_each_conv_its_share_then_tops_up_exactly():
    model = tl.models.cifar_resnet(20, input_shape=(16, 16, 3))
    scores = criteria.filter_scores(model, "random", seed=2)
    picked = filters.select_filters(model, scores, 101, ranking="layerwise")
    assert len(picked) == len(set(picked)) == 101
    per_conv = {g.conv: sum(n.startswith(g.conv + ":") for n in picked) for g in filters.filter_groups(model)}
    for group in filters.filter_groups(model):
        assert per_conv[group.conv] >= 101 * group.filters // 336
    with pytest.raises(ValueError, match="ranking must be one of"):
        filters.select_filters(model, scores, 1, ranking="by_mood")


def test_a_filter_ticket_rebuilds_from_its_lineage_bit_for_bit():
    model = tl.models.cifar_resnet(20, input_shape=(16, 16, 3), seed=7)
    ticket = filters.remove_filters(model, ["stage2_block2_conv1:3", "stage1_block3_conv1:15"])
    assert ticket.name == "resnet20_minus2f"
    again = filters.remove_filters(ticket, ["stage2_block2_conv1:3"])  # index 3 of the ticket = 4 of the dense
    assert again.name == "resnet20_minus3f"
    assert tl.models.lineage(again)["filters"] == {"stage1_block3_conv1": [15], "stage2_block2_conv1": [3, 4]}
    # From the spec alone (same seed: θ0 is per layer name), without copying any weight.
    rebuilt = tl.models.rebuild(tl.models.lineage_json(again))
    assert rebuilt.name == again.name
    for a, b in zip(rebuilt.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)
    filters_then_layer = surgery.remove_blocks(filters.remove_filters(model, ["stage1_block2_conv1:0",
                                                                            "stage2_block2_conv1:5"]),
                                               ["stage1_block2"])  # the block of a pruned conv goes
    assert tl.models.lineage(filters_then_layer)["filters"] == {"stage2_block2_conv1": [5]}
    for a, b in zip(tl.models.rebuild(tl.models.lineage_json(filters_then_layer)).get_weights(),
                    filters_then_layer.get_weights()):
        np.testing.assert_array_equal(a, b)
    layer_then_filters = filters.remove_filters(surgery.remove_blocks(model, ["stage3_block2"]),
                                                ["stage1_block2_conv1:0"])
    assert layer_then_filters.name == "resnet20_minus1_1f"
    for a, b in zip(tl.models.rebuild(tl.models.lineage_json(layer_then_filters)).get_weights(),
                    layer_then_filters.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_only_the_methods_own_fields_name_its_runs():
    base = Config.create()
    assert base.digest("ticket") == base.replace(match="none", num_filters=3, imp_rate=0.5).digest("ticket")
    filters_run = base.replace(method="filters")
    assert filters_run.digest("ticket") != base.digest("ticket")
    assert filters_run.digest("ticket") != filters_run.replace(filter_ranking="layerwise").digest("ticket")
    assert filters_run.digest("ticket") == filters_run.replace(schedule="iterative").digest("ticket")


@pytest.mark.parametrize("criterion", ["expectabs", "hrank"])
def test_after_training_criteria_have_a_per_filter_form_and_match_the_layer_ticket(criterion):
    model = tl.models.cifar_resnet(20, input_shape=(16, 16, 3), seed=5)
    data = _batch(n=20)
    config = Config.create(method="filters", criterion=criterion, num_blocks=2)
    result = methods.get("filters")(model, data, config.method, seed=0)
    layer_ticket = methods.get("blocks")(model, data, config.method, seed=0)
    assert cost.count_filters(result.model) == cost.count_filters(layer_ticket.model)
    assert result.prune_first == "low" and len(result.scores) == filters.count_prunable(model)


def test_keras_applications_resnet50_bottlenecks_lose_filters_exactly():
    """A model nobody here wrote: keras.applications' ResNet50 (bottleneck blocks, its own names)."""
    model = keras.applications.ResNet50(weights=None, input_shape=(32, 32, 3), classes=10)
    groups = filters.filter_groups(model)
    assert len(groups) == 2 * 16  # the 1x1 and 3x3 convs of each of the 16 bottleneck blocks
    assert (groups[0].conv, groups[0].followers, groups[0].consumer) == (
        "conv2_block1_1_conv", ("conv2_block1_1_bn", "conv2_block1_1_relu"), "conv2_block1_2_conv")
    names = filters.select_filters(model, criteria.filter_scores(model, "magnitude"), 1000)
    ticket = filters.remove_filters(model, names)
    assert cost.count_filters(ticket) == cost.count_filters(model) - 1000
    silenced = keras.models.clone_model(model)
    silenced.set_weights(model.get_weights())
    filters.apply_masks(silenced, filters.filter_masks(model, names))
    x = np.random.default_rng(0).standard_normal((2, 32, 32, 3)).astype("float32")
    want = silenced(x, training=False).numpy()
    np.testing.assert_allclose(ticket(x, training=False).numpy(), want, rtol=1e-4, atol=1e-6)
