"""The robustness evaluations: in-graph corruptions, shift sets, attacks and linear CKA."""

import os

import keras
import numpy as np
import pytest
import tensorflow_datasets as tfds
from scipy.ndimage import gaussian_filter

import tf_lottery as tl
from tf_lottery.config import EvaluationConfig
from tf_lottery.data import DatasetUnavailable
from tf_lottery.data.datasets import synthetic_arrays
from tf_lottery.data.pipeline import DataOptions, PreparedData
from tf_lottery.evals import adversarial, cka, corruptions, robustness, shift_sets


@pytest.fixture(scope="module")
def grey():
    """Fashion-MNIST-sized grayscale uint8 images: smooth random blobs with soft edges."""
    noise = np.random.default_rng(0).uniform(0, 255, (32, 28, 28, 1))
    blobs = gaussian_filter(noise, sigma=(0, 2, 2, 0))
    return np.clip((blobs - blobs.mean()) * 4 + 128, 0, 255).astype("uint8")


@pytest.fixture(scope="module")
def colour():
    return synthetic_arrays(num_train=16, num_test=2, input_shape=(32, 32, 3))["train"][0]


# ---------------------------------------------------------------- corruptions

def test_the_applicable_corruptions_depend_on_colour():
    assert "saturate" not in corruptions.applicable(1) and "saturate" in corruptions.applicable(3)
    assert len(corruptions.applicable(3)) == 13 and len(corruptions.applicable(1)) == 12


@pytest.mark.parametrize("name", corruptions.applicable(1))
def test_same_seed_same_images_and_severity_zero_is_the_identity(grey, name):
    first = tl.evals.corrupt(grey, name, 3, seed=4)
    again = tl.evals.corrupt(grey, name, 3, seed=4)
    np.testing.assert_array_equal(first, again)
    assert first.dtype == np.uint8 and first.shape == grey.shape
    np.testing.assert_array_equal(tl.evals.corrupt(grey, name, 0, seed=4), grey)
    assert not np.array_equal(first, grey)  # severity 3 changes the images


@pytest.mark.parametrize("images_name,channels", [("grey", 1), ("colour", 3)])
def test_damage_grows_with_severity(request, images_name, channels):
    images = request.getfixturevalue(images_name)
    for name in corruptions.applicable(channels):
        distances = [np.abs(tl.evals.corrupt(images, name, s, seed=0).astype(float) - images).mean()
                     for s in range(6)]
        assert distances[0] == 0 and distances[1] > 0, name
        if name in corruptions.NOT_ORDERED:
            continue  # the published parameters do not order the damage (see the module docstring)
        assert distances[5] > distances[1], name
        for lower, higher in zip(distances[1:], distances[2:]):
            assert higher >= lower - 0.05, (name, distances)  # 0.05 grey levels: motion blur 3 and 4 nearly agree


def test_random_corruptions_depend_on_the_seed(grey):
    for name in ("gaussian_noise", "shot_noise", "impulse_noise", "motion_blur", "elastic_transform"):
        assert not np.array_equal(tl.evals.corrupt(grey, name, 5, seed=0), tl.evals.corrupt(grey, name, 5, seed=1))
    # Deterministic corruptions ignore it.
    np.testing.assert_array_equal(tl.evals.corrupt(grey, "contrast", 5, seed=0),
                                  tl.evals.corrupt(grey, "contrast", 5, seed=1))


def test_float_images_keep_their_dtype_and_match_the_uint8_result(grey):
    floats = grey.astype("float32") / 255.0
    out = tl.evals.corrupt(floats, "gaussian_blur", 4)
    assert out.dtype == np.float32 and out.shape == grey.shape and 0 <= out.min() and out.max() <= 1
    np.testing.assert_allclose(out * 255, tl.evals.corrupt(grey, "gaussian_blur", 4), atol=0.51)
    single = tl.evals.corrupt(grey[0], "contrast", 2)
    assert single.shape == grey[0].shape
    np.testing.assert_array_equal(single, tl.evals.corrupt(grey[:1], "contrast", 2)[0])


def test_known_values_of_the_deterministic_corruptions(grey):
    floats = grey.astype("float64") / 255.0
    contrast = tl.evals.corrupt(grey, "contrast", 5).astype(float) / 255.0
    means = floats.mean(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(contrast, np.clip((floats - means) * 0.15 + means, 0, 1), atol=0.5 / 255 + 1e-6)
    brightness = tl.evals.corrupt(grey, "brightness", 2).astype(float) / 255.0
    np.testing.assert_allclose(brightness, np.clip(floats + 0.1, 0, 1), atol=0.5 / 255 + 1e-6)


@pytest.mark.parametrize("args,message", [
    (("snow", 1), "unknown corruption 'snow'"),
    (("saturate", 1), "needs colour images"),
    (("contrast", 6), "severity must be 0"),
])
def test_bad_corruption_arguments_are_refused(grey, args, message):
    with pytest.raises(ValueError, match=message):
        tl.evals.corrupt(grey, *args)


def test_out_of_range_float_images_are_refused(grey):
    with pytest.raises(ValueError, match=r"float images must be in \[0, 1\]"):
        tl.evals.corrupt(grey.astype("float32"), "contrast", 1)
    with pytest.raises(ValueError, match="must be"):
        tl.evals.corrupt(grey[0, :, :, 0], "contrast", 1)


# ---------------------------------------------------------------- shift sets

def test_shift_sets_load_under_tfds_mock_data():
    with tfds.testing.mock_data(num_examples=6):
        images, labels = shift_sets.get("cifar10_c").load("gaussian_noise/3")
        assert images.shape == (6, 32, 32, 3) and images.dtype == np.uint8 and labels.shape == (6,)
        assert shift_sets.get("cifar10_1").load("test")[0].shape == (6, 32, 32, 3)
        assert shift_sets.get("mnist_c").load("shot_noise")[0].shape == (6, 28, 28, 1)
    assert len(shift_sets.get("cifar10_c").groups) == 19 * 5 and len(shift_sets.get("mnist_c").groups) == 15
    assert shift_sets.for_dataset("cifar10") == ["cifar10_1", "cifar10_2", "cifar10_c"]
    assert shift_sets.for_dataset("fashion_mnist") == []


def test_a_missing_tfds_set_fails_at_once_naming_the_flag(tmp_path, monkeypatch):
    calls, load = [], tfds.load  # with download=True and no internet tfds retries for minutes

    def spy(*args, **kwargs):
        calls.append(kwargs.get("download"))
        return load(*args, **kwargs)

    monkeypatch.setattr(tfds, "load", spy)
    with pytest.raises(DatasetUnavailable, match=r"'cifar10_1/v6' is not available in .*--shift_dir"):
        shift_sets.get("cifar10_1").load("test", data_dir=str(tmp_path))
    assert calls == [False]


def test_cifar10_2_reads_the_authors_npz_and_explains_what_is_missing(tmp_path):
    with pytest.raises(DatasetUnavailable, match="cifar102_test.npz.*--shift_dir"):
        shift_sets.get("cifar10_2").load("test", data_dir=str(tmp_path))
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (5, 32, 32, 3), dtype=np.uint8), np.arange(5) % 10
    np.savez(tmp_path / "cifar102_test.npz", images=images, labels=labels, label_names=np.array(["a"] * 10))
    loaded = shift_sets.get("cifar10_2").load("test", data_dir=str(tmp_path))
    np.testing.assert_array_equal(loaded[0], images)
    np.testing.assert_array_equal(loaded[1], labels)
    np.savez(tmp_path / "cifar102_test.npz", pictures=images)
    with pytest.raises(DatasetUnavailable, match="'images' and 'labels'"):
        shift_sets.get("cifar10_2").load("test", data_dir=str(tmp_path))


def _prepared(name, test, mean=None):
    mean = np.zeros(test[0].shape[1:], "float32") if mean is None else mean
    x = test[0].astype("float32") / 255.0 - mean
    return PreparedData({"train": (x, test[1]), "val": (x[:0], test[1][:0]), "test": (x, test[1])}, mean,
                        DataOptions(name))


def _small_classifier(input_shape, classes=10, seed=0, softmax=False):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(4, 3, strides=2, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(classes, activation="softmax" if softmax else None)(x)
    return keras.Model(inputs, outputs)


def test_the_shift_sets_evaluation_measures_each_group(tmp_path):
    rng = np.random.default_rng(1)
    images, labels = rng.integers(0, 256, (7, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, 7)
    np.savez(tmp_path / "cifar102_test.npz", images=images, labels=labels)
    mean = rng.uniform(0, 0.5, (32, 32, 3)).astype("float32")
    data = _prepared("cifar10", (images, labels), mean)
    model = _small_classifier((32, 32, 3))
    config = EvaluationConfig(shift_sets=("cifar10_2", "cifar10_1"), shift_dir=str(tmp_path))
    with tfds.testing.mock_data(num_examples=5):
        result = robustness.shift_set_accuracy(model, data, config)
        cifar10_1 = shift_sets.get("cifar10_1").load("test")
    expected = adversarial.accuracy(model, images / 255.0 - mean, labels)
    assert result["cifar10_2"] == {"examples": 7, "accuracy": expected, "groups": {"test": expected}}
    assert result["cifar10_1"]["accuracy"] == adversarial.accuracy(model, cifar10_1[0] / 255.0 - mean, cifar10_1[1])
    with pytest.raises(ValueError, match="shift set 'mnist_c' tests mnist models"):
        robustness.check_shift_sets(EvaluationConfig(shift_sets=("mnist_c",)), "cifar10")
    with pytest.raises(ValueError, match="no published shift set tests fashion_mnist"):
        robustness.check_shift_sets(EvaluationConfig(), "fashion_mnist")


# ---------------------------------------------------------------- attacks

@pytest.fixture(scope="module")
def linear():
    """A two-class linear model: FGSM is the optimal L-infinity attack, so every relation is exact."""
    rng = np.random.default_rng(3)
    inputs = keras.Input((4, 4, 1))
    logits = keras.layers.Dense(2)(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, logits)
    weights = rng.normal(size=(16, 1))
    model.layers[-1].set_weights([np.concatenate([-weights, weights], axis=1).astype("float32"),
                                  np.zeros(2, "float32")])
    images = rng.uniform(0.2, 0.8, (400, 4, 4, 1)).astype("float32")
    margin = images.reshape(400, 16) @ weights[:, 0]
    labels = (margin > 0).astype("int64")  # every clean image is classified right
    return model, images, labels, 2 * np.abs(weights).sum()  # logit gap falls by eps * this under the attack


def test_epsilon_zero_gives_the_clean_images_and_accuracy(linear):
    model, images, labels, _ = linear
    for method in tl.evals.ATTACKS:
        np.testing.assert_array_equal(tl.evals.attack(model, images, labels, method, 0.0), images)
    assert adversarial.accuracy(model, images, labels) == 1.0


def test_accuracy_falls_with_epsilon_as_the_linear_margin_predicts(linear):
    model, images, labels, slope = linear
    gaps = np.abs(images.reshape(400, 16) @ model.layers[-1].get_weights()[0] @ np.array([-1.0, 1.0]))
    bounds = (-10.0, 10.0)  # never binding: the attack is the exact L-infinity optimum here
    previous = 1.0
    for epsilon in (0.005, 0.01, 0.02, 0.04, 0.08):
        fgsm = adversarial.accuracy(model, tl.evals.attack(model, images, labels, "fgsm", epsilon, bounds=bounds),
                                    labels)
        pgd = adversarial.accuracy(model, tl.evals.attack(model, images, labels, "pgd", epsilon, bounds=bounds),
                                   labels)
        assert fgsm <= previous and pgd <= fgsm + 1e-12  # does not rise; PGD at least as strong
        clear = np.mean(gaps > slope * epsilon * 1.0001)
        unclear = np.mean(np.abs(gaps - slope * epsilon) <= slope * epsilon * 1e-4)
        assert clear <= fgsm <= clear + unclear  # the exact prediction, up to ties at the margin
        previous = fgsm


def test_attacks_stay_in_the_ball_and_the_bounds_and_never_change_weights(linear):
    model, images, labels, _ = linear
    before = [w.copy() for w in model.get_weights()]
    low, high = np.full((4, 4, 1), 0.1, "float32"), np.full((4, 4, 1), 0.85, "float32")
    for method in tl.evals.ATTACKS:
        out = tl.evals.attack(model, images, labels, method, 0.1, bounds=(low, high), steps=3)
        assert out.shape == images.shape and out.dtype == np.float32
        assert np.all(np.abs(out - images) <= 0.1 + 1e-6)
        assert out.min() >= 0.1 - 1e-7 and out.max() <= 0.85 + 1e-7
    for kept, now in zip(before, model.get_weights()):
        np.testing.assert_array_equal(kept, now)


def test_pgd_is_at_least_as_strong_as_fgsm_on_a_trained_network():
    arrays = synthetic_arrays(num_train=256, num_test=200, input_shape=(12, 12, 3), num_classes=4, seed=0)
    (x, y), (x_test, y_test) = (arrays["train"][0] / 255.0, arrays["train"][1]), (arrays["test"][0] / 255.0,
                                                                                     arrays["test"][1])
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((12, 12, 3)), keras.layers.Flatten(),
                              keras.layers.Dense(32, activation="relu"), keras.layers.Dense(4, activation="softmax")])
    model.compile(keras.optimizers.Adam(0.003), "sparse_categorical_crossentropy")
    model.fit(x.astype("float32"), y, epochs=40, batch_size=64, verbose=0)
    assert adversarial.accuracy(model, x_test, y_test) > 0.9
    fgsm = adversarial.accuracy(model, tl.evals.attack(model, x_test, y_test, "fgsm", 0.05), y_test)
    pgd = adversarial.accuracy(model, tl.evals.attack(model, x_test, y_test, "pgd", 0.05, steps=20), y_test)
    assert pgd <= fgsm < 0.9  # both bite; iterating is at least as strong (measured: 3 to 11 images stronger)


def test_bad_attack_arguments_are_refused(linear):
    model, images, labels, _ = linear
    with pytest.raises(ValueError, match="unknown attack 'cw'; valid names: fgsm, pgd"):
        tl.evals.attack(model, images, labels, "cw", 0.1)
    with pytest.raises(ValueError, match="epsilon must be a number >= 0"):
        tl.evals.attack(model, images, labels, "fgsm", -0.1)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        tl.evals.attack(model, images, labels, "pgd", 0.1, steps=0)


# ---------------------------------------------------------------- CKA

def test_cka_matches_the_reference_implementations_published_example():
    # The case of the CKA authors' demo (google-research/representation_similarity, Demo.ipynb):
    # numpy seed 1337, X = randn(100, 10), Y = randn(100, 10) + X; it prints 0.55761 and 0.51346.
    rng = np.random.RandomState(1337)
    x = rng.randn(100, 10)
    y = rng.randn(100, 10) + x
    assert round(tl.evals.linear_cka(x, y), 5) == 0.55761
    assert round(tl.evals.linear_cka(x, y, debiased=True), 5) == 0.51346


@pytest.mark.parametrize("debiased", [False, True])
def test_cka_is_one_on_itself_and_invariant_to_rotation_and_scale(debiased):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(60, 12)), rng.normal(size=(60, 7))
    y[:, 0] += x[:, 0]
    rotation, _ = np.linalg.qr(rng.normal(size=(12, 12)))
    assert tl.evals.linear_cka(x, x, debiased) == pytest.approx(1.0, abs=1e-12)
    base = tl.evals.linear_cka(x, y, debiased)
    assert tl.evals.linear_cka(x @ rotation, y, debiased) == pytest.approx(base, abs=1e-12)
    assert tl.evals.linear_cka(7.5 * x, 0.01 * y, debiased) == pytest.approx(base, abs=1e-12)
    # Not invariant to an arbitrary invertible map (Kornblith et al.'s point).
    stretch = np.diag(np.linspace(0.1, 10, 12))
    assert abs(tl.evals.linear_cka(x @ stretch, y, debiased) - base) > 1e-3


def test_cka_from_gram_matrices_equals_the_definition_when_features_outnumber_examples():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(20, 300)), rng.normal(size=(20, 40))
    xc, yc = x - x.mean(0), y - y.mean(0)
    expected = np.sum((yc.T @ xc) ** 2) / (np.linalg.norm(xc.T @ xc) * np.linalg.norm(yc.T @ yc))
    assert tl.evals.linear_cka(x, y) == pytest.approx(expected, rel=1e-10)
    assert tl.evals.linear_cka(x.reshape(20, 10, 30), y) == pytest.approx(expected, rel=1e-10)  # flattened


def test_bad_cka_inputs_are_refused():
    with pytest.raises(ValueError, match="same examples; got 5 and 4 rows"):
        tl.evals.linear_cka(np.ones((5, 2)), np.ones((4, 2)))
    with pytest.raises(ValueError, match="constant representation"):
        tl.evals.linear_cka(np.ones((5, 2)), np.random.default_rng(0).normal(size=(5, 2)))
    with pytest.raises(ValueError, match="at least 4 examples"):
        tl.evals.linear_cka(np.eye(3), np.eye(3), debiased=True)


def test_cka_between_a_resnet_and_its_ticket_covers_every_stage():
    dense = tl.models.cifar_resnet(depth=20, input_shape=(16, 16, 3), num_classes=4, seed=0)
    ticket = tl.surgery.remove_blocks(dense, ["stage2_block2"])
    images = np.random.default_rng(0).normal(size=(40, 16, 16, 3)).astype("float32")
    same = cka.compare(dense, dense, images)
    assert list(same) == ["stage1", "stage2", "stage3", "penultimate"]
    assert all(v["linear"] == pytest.approx(1.0, abs=1e-9) for v in same.values())
    views = cka.compare(dense, ticket, images)
    assert views["stage1"]["linear"] == pytest.approx(1.0, abs=1e-9)  # stage 1 is untouched: identical features
    assert views["stage2"]["linear"] < 1.0 - 1e-6


def test_every_robustness_evaluation_is_registered_and_cka_is_pairwise():
    for name in ("corruptions", "shift_sets", "adversarial", "cka"):
        assert name in tl.evals.EVALS
    assert tl.evals.get("cka").pairwise and not tl.evals.get("corruptions").pairwise
    assert tl.evals.wanted(EvaluationConfig(evals=("clean", "cka")), "dense") == ["clean"]
    assert os.path.basename(shift_sets.CIFAR102_FILE) == "cifar102_test.npz"


def test_the_corruptions_run_inside_a_tf_data_map(grey):
    import tensorflow as tf

    seed = tf.constant([0, 7], tf.int64)
    batch = tf.constant(grey[:8].astype("float32") / 255.0)
    for name in ("gaussian_noise", "motion_blur", "elastic_transform", "jpeg_compression"):
        eager = corruptions.CORRUPTIONS[name](batch, 2, seed)
        mapped = tf.data.Dataset.from_tensors(batch).map(lambda x: corruptions.CORRUPTIONS[name](x, 2, seed))
        np.testing.assert_allclose(next(iter(mapped)).numpy(), eager.numpy(), atol=1e-5)  # graph vs eager kernels
