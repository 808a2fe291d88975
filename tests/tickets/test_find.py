import numpy as np
import pytest

import tf_lottery as tl
from tf_lottery import surgery, tickets


@pytest.fixture(scope="module")
def resnet20():
    return tl.models.cifar_resnet(20, seed=0)


def test_global_ranking_skips_ineligible_blocks_and_respects_the_floor(resnet20):
    # stage1_block1 (not removable) has the lowest score, then all of stage 1: the floor
    # of 2 per stage lets only one stage-1 block go, then the ranking moves on.
    scores = {name: float(i) for i, name in enumerate(surgery.blocks(resnet20))}
    scores["stage3_block3"] = 1.5
    picked = tickets.select(resnet20, scores, 3)
    assert picked == ["stage1_block2", "stage3_block3", "stage2_block2"]
    assert tickets.select(resnet20, scores, 2, prune_first="high") == ["stage3_block2", "stage2_block3"]
    assert tickets.select(resnet20, scores, 3, min_blocks_per_stage=1)[:2] == ["stage1_block2", "stage3_block3"]


def test_ties_break_by_graph_order_and_are_named(resnet20):
    from tf_lottery.tickets.find import TiedScores
    scores = dict.fromkeys(surgery.blocks(resnet20), 1.0)
    with pytest.raises(ValueError, match="every removable block scored 1.0, so the scores cannot choose 3 of 6"):
        tickets.select(resnet20, scores, 3)
    scores["stage3_block3"] = 2.0
    with pytest.warns(TiedScores, match=r"stage2_block2 \(removed\) and stage2_block3, stage3_block2 \(kept\)"):
        assert tickets.select(resnet20, scores, 3, min_blocks_per_stage=1) == [
            "stage1_block2", "stage1_block3", "stage2_block2"]
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # under the floor of 2 no tied block could have gone instead: no warning
        assert tickets.select(resnet20, scores, 3) == ["stage1_block2", "stage2_block2", "stage3_block2"]


@pytest.mark.parametrize("schedule", ["oneshot", "iterative"])
@pytest.mark.parametrize("criterion", ["random", "magnitude", "synflow"])
def test_find_ticket_respects_eligibility_and_floor(schedule, criterion):
    model = tl.models.cifar_resnet(32, seed=1)
    result = tl.find_ticket(model, criterion, num_blocks=9, schedule=schedule)
    assert len(result.removed) == len(set(result.removed)) == 9
    assert set(result.removed) <= set(surgery.removable_blocks(model))
    kept = surgery.blocks(result.model)
    for stage in (1, 2, 3):
        assert sum(b.startswith(f"stage{stage}_") for b in kept) == 2
    assert len(result.rounds) == (9 if schedule == "iterative" else 1)
    assert surgery.lineage(result.model)["removed"] == sorted(result.removed, key=surgery.blocks(model).index)


def test_iterative_rescoring_sees_the_rebuilt_ticket():
    model = tl.models.cifar_resnet(32, seed=2)
    batch = (np.random.default_rng(0).standard_normal((20, 32, 32, 3)).astype("float32"), np.arange(20) % 10)
    result = tl.find_ticket(model, "snip", num_blocks=3, data=batch, schedule="iterative")
    assert [len(r) for r in result.rounds] == [15, 14, 13]
    for round_scores, victim in zip(result.rounds, result.removed):
        assert victim in round_scores
    assert result.removed[0] not in result.rounds[1]
    oneshot = tl.find_ticket(model, "snip", num_blocks=1, data=batch)
    assert oneshot.removed == result.removed[:1]


def test_oneshot_ticket_equals_remove_blocks_of_its_choice():
    model = tl.models.cifar_resnet(20, seed=4)
    result = tl.find_ticket(model, "random", num_blocks=2, seed=7)
    direct = surgery.remove_blocks(model, result.removed)
    for a, b in zip(result.model.get_weights(), direct.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_prune_first_override():
    model = tl.models.cifar_resnet(20, seed=0)
    low = tl.find_ticket(model, "random", num_blocks=1, seed=3)
    high = tl.find_ticket(model, "random", num_blocks=1, seed=3, prune_first="high")
    scores = low.scores
    removable = surgery.removable_blocks(model)
    assert low.removed == [min(removable, key=scores.get)]
    assert high.removed == [max(removable, key=scores.get)]


def test_fraction_of_removable_blocks():
    model = tl.models.cifar_resnet(56)
    assert tickets.resolve_count(model, None, 0.5) == 12
    assert tickets.resolve_count(model, None, 0.03) == 1  # 0.03 * 24 = 0.72 rounds to 1
    with pytest.raises(ValueError, match=r"fraction=0.02 of the 24 removable blocks of resnet56 rounds to 0 blocks"):
        tickets.resolve_count(model, None, 0.02)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(num_blocks=10), "cannot remove 10 blocks: at most 9 can be removed from resnet32, since every stage keeps min_blocks_per_stage=2 blocks .blocks per stage: stage 1: 5, stage 2: 5, stage 3: 5."),
        (dict(num_blocks=None), "give exactly one of num_blocks and fraction"),
        (dict(num_blocks=2, fraction=0.5), "give exactly one of num_blocks and fraction"),
        (dict(fraction=1.5), r"fraction must be in \(0, 1\]; got 1.5"),
        (dict(fraction=0.0), r"fraction must be in \(0, 1\]; got 0.0"),
        (dict(num_blocks=-1), "num_blocks must be >= 1 .removing no block leaves the dense model.; got -1"),
        (dict(num_blocks=0), "num_blocks must be >= 1"),
        (dict(num_blocks=1, schedule="greedy"), "schedule must be one of"),
        (dict(num_blocks=1, prune_first="middle"), "prune_first must be one of 'low', 'high' or None; got 'middle'"),
    ],
)
def test_refusals(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tl.find_ticket(tl.models.cifar_resnet(32), "random", **kwargs)


def test_the_blocks_method_makes_the_ticket_and_applies_a_recorded_decision_again():
    """How a resumed run or a rewound lottery ticket gets its ticket without scoring again."""
    dense = tl.models.cifar_resnet(20, seed=1)
    method = tl.methods.get("blocks")
    settings = tl.Config.create(criterion="magnitude", num_blocks=2).method
    method.check(dense, settings)
    result = method(dense, None, settings, seed=0)
    again = method.apply(dense, result.record(), settings)
    assert [layer.name for layer in again.layers] == [layer.name for layer in result.model.layers]
    for a, b in zip(again.get_weights(), result.model.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="cannot remove 4 blocks: at most 3"):
        method.check(dense, tl.Config.create(num_blocks=4).method)


def _unet():
    """An additive U-Net skip (pool -> two blocks -> upsample, added back) holding two blocks, then one more."""
    import keras
    inputs = keras.Input((16, 16, 8))
    x = keras.layers.Conv2D(8, 3, padding="same", name="stem")(inputs)
    p = keras.layers.MaxPooling2D(name="pool")(x)
    for i in range(2):
        p = keras.layers.Add(name=f"mid{i}_add")([p, keras.layers.Conv2D(8, 3, padding="same", name=f"mid{i}_conv")(p)])
    x = keras.layers.Add(name="skip_add")([x, keras.layers.UpSampling2D(name="up")(p)])
    x = keras.layers.Add(name="tail_add")([x, keras.layers.Conv2D(8, 3, padding="same", name="tail_conv")(x)])
    return keras.Model(inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x)))


def test_an_outer_block_removes_what_it_contains_and_a_selection_may_not_overlap():
    model = _unet()
    assert tl.surgery.contained(model) == {"mid0": [], "mid1": [], "skip": ["mid0", "mid1"], "tail": []}
    with pytest.raises(ValueError, match=r"\['mid1'\] lie inside 'skip', which is named with them"):
        tl.surgery.remove_blocks(model, ["skip", "mid1"], min_blocks_per_stage=0)
    ticket = tl.surgery.remove_blocks(model, ["skip"], min_blocks_per_stage=0)
    assert tl.surgery.blocks(ticket) == ["tail"]
    assert tl.surgery.removed_with(model, ["skip"]) == ["mid0", "mid1", "skip"]


def test_p_counts_the_blocks_an_outer_block_holds():
    model = _unet()
    scores = {"mid0": 0.5, "mid1": 0.6, "skip": 0.1, "tail": 0.9}  # the outer block scores lowest
    assert tl.tickets.select(model, scores, 3, min_blocks_per_stage=0) == ["skip"]  # it counts 3
    assert tl.tickets.select(model, scores, 2, min_blocks_per_stage=0) == ["mid0", "mid1"]  # 3 would be too many
    assert tl.tickets.select(model, scores, 4, min_blocks_per_stage=0) == ["skip", "tail"]
