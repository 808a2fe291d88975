import math

import keras
import pytest

import tf_lottery as tl
from tf_lottery import surgery
from tf_lottery.graph import cost


def _ticket(depth, per_stage):
    """Removes blocks 2.. of each stage, ``per_stage[s]`` of them in stage s+1."""
    model = tl.models.cifar_resnet(depth)
    names = [f"stage{s + 1}_block{b}" for s, k in enumerate(per_stage) for b in range(2, 2 + k)]
    return model, surgery.remove_blocks(model, names)


@pytest.mark.parametrize(
    "depth, per_stage, paper_percent",
    [
        (32, (1, 0, 0), 6.82),
        (32, (1, 1, 1), 20.47),
        (56, (1, 1, 1), 11.25),
        (56, (2, 1, 1), 15.00),
        (56, (2, 2, 1), 18.76),
        (56, (4, 4, 4), 45.00),
    ],
)
def test_table4_flops_column(depth, per_stage, paper_percent):
    """The paper's Table 4 FLOPs reductions, which it prints truncated to two decimals."""
    model, ticket = _ticket(depth, per_stage)
    reduction = cost.reduction(cost.flops(model), cost.flops(ticket))
    assert math.floor(reduction * 100) / 100 == pytest.approx(paper_percent, abs=0.03)


def test_table4_resnet32_p4_anomaly_is_five_blocks():
    """The paper's Table 4: its 34.13 % equals five ResNet32 blocks, not four."""
    model, four = _ticket(32, (2, 1, 1))
    _, five = _ticket(32, (2, 2, 1))
    assert cost.reduction(cost.flops(model), cost.flops(four)) == pytest.approx(27.30, abs=0.01)
    assert cost.reduction(cost.flops(model), cost.flops(five)) == pytest.approx(34.13, abs=0.01)


def test_flops_by_hand_on_a_tiny_model():
    x = keras.Input((8, 8, 3))
    y = keras.layers.Conv2D(4, 3, strides=2, padding="same")(x)  # 4*4 * 3*4 * 9 = 1728
    y = keras.layers.BatchNormalization()(y)
    y = keras.layers.GlobalAveragePooling2D()(y)
    y = keras.layers.Dense(5)(y)  # 4*5 = 20
    model = keras.Model(x, y)
    assert cost.flops(model) == 1_748
    assert cost.count_filters(model) == 4


def test_memory_formula_by_hand():
    x = keras.Input((8, 8, 3))
    y = keras.layers.Conv2D(4, 3, padding="same")(x)
    y = keras.layers.Flatten()(y)
    model = keras.Model(x, y)
    activations = 8 * 8 * 3 + 8 * 8 * 4 + 8 * 8 * 4
    params = 3 * 3 * 3 * 4 + 4
    assert cost.memory(model, batch_size=16) == 4 * (16 * activations + params)
    with pytest.raises(ValueError, match="batch_size must be >= 1; got 0"):
        cost.memory(model, batch_size=0)


def test_memory_shrinks_with_removed_blocks():
    model, ticket = _ticket(32, (1, 0, 0))
    assert cost.memory(ticket, 128) < cost.memory(model, 128)


def test_latency_is_measured_per_batch_size():
    model = tl.models.cifar_resnet(8)
    result = cost.latency(model, batch_sizes=(1, 4), repeats=3, warmup=1)
    assert set(result) == {1, 4}
    for batch, row in result.items():
        assert 0 < row["min_s"] <= row["median_s"] <= row["max_s"]
        assert row["images_per_s"] == pytest.approx(batch / row["median_s"])
        assert row["repeats"] == 3
    with pytest.raises(ValueError, match="repeats and warmup must be >= 1"):
        cost.latency(model, repeats=0)
    with pytest.raises(ValueError, match="batch sizes must be >= 1; got 0"):
        cost.latency(model, batch_sizes=(0,))
