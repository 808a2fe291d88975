"""One registry for block and filter criteria: each criterion's per-filter form sits on its entry."""

import numpy as np
import pytest

import tf_lottery as tl
from tf_lottery import criteria
from tf_lottery.core.registry import UnknownNameError
from tf_lottery.criteria.snip import snip_weight_scores


def _batch(n=40, shape=(16, 16, 3), seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, *shape)).astype("float32"), np.arange(n) % 10


def test_the_criteria_with_a_per_filter_form():
    assert criteria.filter_names() == ["expectabs", "grasp", "hrank", "magnitude", "random", "snip"]
    snip = criteria.get("snip")
    assert snip.filters.name == "snip" and snip.filters.summary == "mean |w * dL/dw| over the filter's kernel"
    assert criteria.get("synflow").filters is None


def test_a_criterion_without_a_per_filter_form_is_refused_by_name():
    model = tl.models.cifar_resnet(20, input_shape=(16, 16, 3), seed=0)
    with pytest.raises(UnknownNameError, match=r"unknown filter criterion 'synflow'; valid names: expectabs, grasp"):
        criteria.filter_scores(model, "synflow")
    with pytest.raises(UnknownNameError, match="unknown filter criterion 'nope'"):
        criteria.filter_criterion("nope")


def test_magnitude_per_filter_is_the_mean_absolute_kernel_slice_by_hand():
    model = tl.models.cifar_resnet(20, input_shape=(16, 16, 3), seed=0)
    kernel = model.get_layer("stage1_block1_conv1").kernel.numpy().astype("float64")
    scores = criteria.filter_scores(model, "magnitude", aggregation="sum")
    np.testing.assert_allclose(scores["stage1_block1_conv1"], np.abs(kernel).sum(axis=(0, 1, 2)), rtol=1e-12)
    flat = criteria.flat_scores(scores)
    assert flat["stage1_block1_conv1:3"] == pytest.approx(np.abs(kernel[..., 3]).sum(), rel=1e-12)


def test_per_filter_scores_reduce_the_per_weight_scores():
    model = tl.models.cifar_resnet(20, input_shape=(16, 16, 3), seed=0)
    data = _batch()
    per_weight = snip_weight_scores(model, data)
    for aggregation, reduce in (("mean", np.mean), ("sum", np.sum)):
        scores = criteria.filter_scores(model, "snip", data, aggregation=aggregation)
        want = reduce(per_weight["stage2_block2_conv1"].reshape(-1, 32).astype("float64"), axis=0)
        np.testing.assert_allclose(scores["stage2_block2_conv1"], want, rtol=1e-12)
    activations = criteria.filter_scores(model, "expectabs", data)
    assert activations["stage1_block1_conv1"].shape == (16,) and (activations["stage1_block1_conv1"] >= 0).all()
    ranks = criteria.filter_scores(model, "hrank", data)
    assert ((ranks["stage3_block1_conv1"] >= 0) & (ranks["stage3_block1_conv1"] <= 1)).all()
