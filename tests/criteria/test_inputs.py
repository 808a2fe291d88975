"""Scoring data is checked against the model before any TensorFlow op runs; scores must be finite."""

import numpy as np
import pytest

import tf_lottery as tl
from tf_lottery.criteria.inputs import check_scores


@pytest.fixture(scope="module")
def model():
    return tl.models.cifar_resnet(20, input_shape=(16, 16, 3), num_classes=4)


def _batch():
    rng = np.random.default_rng(0)
    return rng.standard_normal((8, 16, 16, 3)).astype("float32"), np.arange(8) % 4


def _nan_pixel():
    images, labels = _batch()
    images[3, 5, 7, 1] = np.nan
    return images, labels


BAD = [
    # after one valid call on the same model, 0 channels killed Python with SIGFPE inside TensorFlow
    ("zero_channels", lambda: (np.zeros((8, 16, 16, 0), "float32"), _batch()[1]),
     "the scoring images have an empty axis: shape (8, 16, 16, 0)"),
    ("smaller_images", lambda: (np.zeros((8, 8, 8, 3), "float32"), _batch()[1]),
     "the scoring images have shape 8x8x3 per image but the model takes 16x16x3"),
    ("rank_3", lambda: (np.zeros((8, 16, 16), "float32"), _batch()[1]),
     "the scoring images have shape 16x16 per image but the model takes 16x16x3"),
    ("strings", lambda: (np.full((8, 16, 16, 3), "a"), _batch()[1]), "must be numbers (an integer or float array)"),
    ("nan_pixel", _nan_pixel, "the scoring images hold NaN or infinite values (1 of 8 images, the first at index 3)"),
    ("label_out_of_range", lambda: (_batch()[0], _batch()[1] + 1),
     "the scoring labels must be class indices from 0 to 3; got 4 (at index 3)"),
    ("float_labels", lambda: (_batch()[0], _batch()[1] + 0.5), "the scoring labels must be whole numbers; got 0.5"),
    ("too_few_labels", lambda: (_batch()[0], _batch()[1][:5]), "5 labels for 8 images"),
    ("one_hot_of_another_width", lambda: (_batch()[0], np.eye(10)[_batch()[1]]),
     "one-hot rows of width 10 but the model has 4 classes"),
    ("images_only", lambda: _batch()[0], "needs a labelled batch: data=(images, labels); got ndarray"),
]


def test_a_valid_batch_scores(model):
    assert len(tl.criteria.get("grasp")(model, _batch())) == 9


@pytest.mark.parametrize("name,make,message", BAD, ids=[case[0] for case in BAD])
def test_bad_scoring_data_is_refused_before_tensorflow_runs(model, name, make, message):
    tl.criteria.get("snip")(model, _batch())  # a valid call first: the SIGFPE came after one
    with pytest.raises(ValueError) as raised:
        tl.find_ticket(model, "grasp", num_blocks=1, data=make())
    assert message in str(raised.value)
    assert "criterion 'grasp'" in str(raised.value)


def test_the_per_filter_form_checks_its_data_too(model):
    with pytest.raises(ValueError, match="the model takes 16x16x3"):
        tl.criteria.filter_scores(model, "snip", (np.zeros((8, 8, 8, 3), "float32"), _batch()[1]))


def test_one_hot_labels_of_the_model_s_width_are_accepted(model):
    images, labels = _batch()
    assert tl.criteria.get("snip")(model, (images, np.eye(4)[labels])) == pytest.approx(
        tl.criteria.get("snip")(model, (images, labels)), rel=1e-4)


def test_non_finite_scores_are_an_error_naming_the_criterion_and_the_first_bad_block():
    with pytest.raises(ValueError) as raised:
        check_scores("grasp", {"stage1_block1": 0.5, "stage1_block2": float("nan"), "stage1_block3": float("inf")})
    assert str(raised.value).startswith("criterion 'grasp' gave a non-finite score (nan) for 'stage1_block2' "
                                        "(2 of 3 scores)")
    with pytest.raises(ValueError, match="for filter 2 of 'conv1'"):
        check_scores("snip", {"conv1": np.array([0.1, 0.2, np.inf])})


def test_a_model_whose_outputs_overflow_gives_no_ticket():
    model = tl.models.cifar_resnet(20, input_shape=(16, 16, 3), num_classes=4)
    head = [layer for layer in model.layers if layer.weights][-1]  # the classifier: logits overflow float32
    head.set_weights([w * 3e38 for w in head.get_weights()])
    with pytest.raises(ValueError, match="criterion 'grasp' gave a non-finite score"):
        tl.find_ticket(model, "grasp", num_blocks=1, data=_batch())
