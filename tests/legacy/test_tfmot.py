"""tfmot baselines: the tf_keras twin, frozen masks, IMP levels, filter masks, stripped exports."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import tf_lottery as tl
from tf_lottery import experiments
from tf_lottery import tickets as methods
from tf_lottery.config import Config
from tf_lottery.experiments.dense import dense_config
from tf_lottery.experiments.imp import imp_config
from tf_lottery.experiments.lottery import rewound_ticket
from tf_lottery.experiments.preparing import dense_model

pytestmark = pytest.mark.baselines
from tf_lottery.legacy import convert, masked
from tf_lottery.tickets.imp import magnitude_masks
from tf_lottery.experiments.runs import RunFolder

SHAPE = (16, 16, 3)


def _bottleneck_model():
    inputs = keras.Input(SHAPE, name="pixels")
    x = keras.layers.Conv2D(8, 3, padding="same", name="head")(inputs)
    y = keras.layers.Conv2D(4, 1, name="squeeze")(x)
    y = keras.layers.BatchNormalization(name="norm")(y)
    y = keras.layers.Activation("relu", name="act")(y)
    y = keras.layers.Conv2D(8, 3, padding="same", name="expand")(y)
    x = keras.layers.Add(name="sum")([x, y])
    x = keras.layers.Dropout(0.1, name="drop")(keras.layers.Flatten(name="flat")(x))
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="cls")(x), name="odd")


@pytest.mark.parametrize("build", [
    lambda: tl.models.cifar_resnet(20, input_shape=SHAPE, seed=1),
    lambda: tl.models.cifar_resnet(20, input_shape=SHAPE, seed=1, shortcut="zero_pad"),
    _bottleneck_model,
])
def test_the_tf_keras_twin_has_the_same_graph_and_weights_bit_for_bit(build):
    model = build()
    twin = convert.to_tf_keras(model)
    assert type(twin).__module__.startswith("tf_keras")
    assert [layer.name for layer in twin.layers] == [layer.name for layer in model.layers]
    for layer in model.layers:
        for a, b in zip(layer.get_weights(), twin.get_layer(layer.name).get_weights()):
            np.testing.assert_array_equal(a, b)
    x = np.random.default_rng(0).standard_normal((4, *SHAPE)).astype("float32")
    want = model(x, training=False).numpy()
    np.testing.assert_allclose(twin(x, training=False).numpy(), want, rtol=1e-4, atol=1e-5 * np.abs(want).max())
    assert len(twin.losses) == len(model.losses)  # the L2 weight decay came along
    back = build()
    back.set_weights([w * 0 for w in back.get_weights()])
    convert.copy_weights(twin, back)
    for a, b in zip(back.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


class Twice(keras.layers.Layer):
    def call(self, x):
        return 2 * x


class Dense(keras.layers.Dense):  # a user's subclass that only shares a stock name
    pass


@pytest.mark.parametrize("layer, kind", [(Twice(name="custom"), "Twice"), (Dense(3, name="custom"), "Dense")])
def test_a_layer_that_is_not_stock_keras_is_named(layer, kind):
    inputs = keras.Input((4,))
    model = keras.Model(inputs, layer(inputs))
    with pytest.raises(ValueError, match=f"'custom' is a {kind}, which tf_keras has no layer for"):
        convert.to_tf_keras(model)


def _data(n=64):
    return tl.data.prepare(Config.create(dataset="synthetic", train_size=None, val_size=16).data_options())


def test_masks_stay_frozen_and_masked_weights_stay_zero_through_training():
    data = _data()
    model = tl.models.cifar_resnet(20, input_shape=data.input_shape, seed=0)
    masks = magnitude_masks(model, 0.5)
    ticket = masked.masked_copy(model, masks)
    recipe = tl.train.Recipe(length="3it", batch_size=16, learning_rate=0.1, lr_drops=())
    wrapped = masked.wrap(convert.to_tf_keras(ticket), masks)
    before = masked.current_masks(wrapped)
    assert masked.masks_equal(before, masks)
    fitted = masked.fit_masked(ticket, masks, data, recipe, os.path.join(os.environ.get("TMPDIR", "/tmp"),
                                                                           f"masked-{os.getpid()}"), "ticket",
                               verbose=0)
    assert fitted["steps"] == 3 and fitted["timing"]["train_seconds"] > 0
    moved = 0
    for name, by_weight in masks.items():
        kernel = ticket.get_layer(name).kernel.numpy()
        assert np.all(kernel[by_weight["kernel"] == 0] == 0), name
        moved += int(np.any(kernel[by_weight["kernel"] == 1] != model.get_layer(name).kernel.numpy()[
            by_weight["kernel"] == 1]))
    assert moved > 0  # it did train


def test_a_changed_mask_is_refused(monkeypatch):
    data = _data()
    model = tl.models.cifar_resnet(20, input_shape=data.input_shape, seed=0)
    masks = magnitude_masks(model, 0.3)
    monkeypatch.setattr(masked, "masks_equal", lambda a, b: False)
    with pytest.raises(RuntimeError, match="a tfmot mask changed during training"):
        masked.fit_masked(masked.masked_copy(model, masks), masks, data, tl.train.Recipe(length="1it", batch_size=16,
                                                                                          lr_drops=()),
                          os.path.join(os.environ.get("TMPDIR", "/tmp"), f"refused-{os.getpid()}"), "t", verbose=0)


def test_imp_prunes_exactly_its_rate_of_the_alive_kernel_weights_per_level():
    model = tl.models.cifar_resnet(20, input_shape=SHAPE, seed=2)
    total = sum(layer.kernel.shape.num_elements() if hasattr(layer.kernel.shape, "num_elements")
                else int(np.prod(layer.kernel.shape)) for layer in methods.imp.kernel_layers(model))
    alive = total
    for level in range(1, 4):
        masks = magnitude_masks(model, 0.2)
        alive -= int(round(0.2 * alive))
        assert sum(int(m["kernel"].sum()) for m in masks.values()) == alive, level
        tl.filters.apply_masks(model, masks)  # what a level's masked training leaves: zeros at pruned weights
    # Global: the smallest surviving magnitude is at least the largest pruned one (of level 1).
    fresh = tl.models.cifar_resnet(20, input_shape=SHAPE, seed=2)
    level1 = magnitude_masks(fresh, 0.2)
    kept = np.concatenate([np.abs(fresh.get_layer(n).kernel.numpy())[m["kernel"] == 1] for n, m in level1.items()])
    cut = np.concatenate([np.abs(fresh.get_layer(n).kernel.numpy())[m["kernel"] == 0] for n, m in level1.items()])
    assert kept.min() >= cut.max()
    encoded = json.loads(json.dumps(masked.encode(level1)))
    assert masked.masks_equal(masked.decode(encoded), level1)


def test_filter_masks_compute_what_the_physical_filter_ticket_computes_at_theta0():
    model = tl.models.cifar_resnet(20, input_shape=SHAPE, seed=3)
    x = np.random.default_rng(1).standard_normal((40, *SHAPE)).astype("float32")
    data = (x, np.arange(40) % 10)
    config = Config.create(method="filter_masks", criterion="snip", num_blocks=1)
    result = methods.get("filter_masks")(model, data, config.method)
    physical = methods.get("filters")(model, data, config.replace(method="filters").method)
    assert result.removed == physical.removed and result.details["masked"]
    assert result.model.count_params() == model.count_params()
    want = physical.model(x, training=False).numpy()
    np.testing.assert_allclose(result.model(x, training=False).numpy(), want, rtol=1e-4,
                               atol=1e-5 * np.abs(want).max())
    # In tf_keras under tfmot's wrappers too: the bias and BatchNorm of a masked filter are masked.
    masks = masked.attached(result.model)
    wrapped = masked.wrap(convert.to_tf_keras(result.model, prunable=list(masks)), masks)
    np.testing.assert_allclose(wrapped(x, training=False).numpy(), want, rtol=1e-4, atol=1e-5 * np.abs(want).max())
    assert {"kernel", "bias"} <= set(next(iter(masks.values())))


@pytest.fixture(scope="module")
def imp_run(tmp_path_factory):
    config = Config.create(experiment="imp", dataset="synthetic", train_size=None, val_size=32, depth=20,
                           length="2ep", batch_size=32, learning_rate=0.05, lr_drops=(), imp_levels=2,
                           imp_rate=0.3, rewind_epoch=1, runs_dir=str(tmp_path_factory.mktemp("runs")),
                           latency_batch_sizes=(2,), memory_batch_size=2)
    return config, experiments.get("imp")(config)


def test_imp_levels_rewind_to_theta_k_and_the_ticket_has_the_exact_sparsity(imp_run):
    config, result = imp_run
    folder = result.run_folder
    assert os.path.basename(folder).startswith("imp-")
    assert {"scores_level1.json", "scores_level2.json", "level1_final.weights.h5", "ticket_final.weights.h5"} <= \
        set(os.listdir(folder))
    theta_k = dense_model(config, tl.data.prepare(config.data_options()))
    theta_k.load_weights(os.path.join(result.dense_run_folder, "theta_1.weights.h5"))  # after epoch 1 of 2
    total = sum(int(np.prod(layer.kernel.shape)) for layer in methods.imp.kernel_layers(theta_k))
    alive = total
    for level in (1, 2):
        with open(os.path.join(folder, f"scores_level{level}.json")) as handle:
            details = json.load(handle)["ticket"]["details"]
        alive -= int(round(0.3 * alive))
        assert details["alive_weights"] == alive and details["kernel_weights"] == total
        masks = masked.decode(details["masks"])
        record = tl.records.TicketRecord([], {}, [], "magnitude", "low", "oneshot", details)
        dense_run = RunFolder(dense_config(config), "dense")
        assert dense_run.path == result.dense_run_folder
        start, recipe = rewound_ticket(imp_config(config), dense_run, None, record,
                                       tl.data.prepare(config.data_options()))
        assert recipe.length == "1ep"  # the rest of the schedule after epoch 1
        for name, by_weight in masks.items():  # at the start of retraining: survivors are θ1 bit for bit
            kept = by_weight["kernel"] == 1
            np.testing.assert_array_equal(start.get_layer(name).kernel.numpy()[kept],
                                          theta_k.get_layer(name).kernel.numpy()[kept])
            assert np.all(start.get_layer(name).kernel.numpy()[~kept] == 0)
    assert result.ticket.cost("nonzero_params") <= result.dense.cost("params") - (total - alive)
    assert result.ticket.cost("flops") == result.dense.cost("flops")  # masks remove nothing
    with open(os.path.join(folder, "export", "ticket", "metadata.json")) as handle:
        assert json.load(handle)["method"] == "imp"


def test_imp_rewound_to_a_step_retrains_the_remaining_steps_exactly(tmp_path):
    """The tfmot loop ends a length in steps where it ends, as the Keras 3 loop does: 2 epochs of
    7 steps rewound to step 3 retrain 11 steps, 7 + 4."""
    config = Config.create(experiment="imp", dataset="synthetic", train_size=448, val_size=32, depth=8,
                           length="2ep", batch_size=64, learning_rate=0.05, lr_drops=(), imp_levels=1,
                           rewind_step=3, runs_dir=str(tmp_path), evals=("clean",), export=False)
    result = experiments.get("imp")(config)
    timing = result.ticket.training.timing
    assert timing.epoch_steps == [7, 4] and result.ticket.training.steps == 11
    assert result.dense.training.timing.epoch_steps == [7, 7]
    assert (result.rewind.step, result.rewind.ticket_recipe["length"]) == (3, "11it")
    assert os.path.exists(os.path.join(result.dense_run_folder, "theta_step_3.weights.h5"))


_LOAD_WITHOUT = textwrap.dedent("""
    import sys, json, numpy as np
    import tensorflow as tf
    loaded = tf.saved_model.load(sys.argv[1] + "/saved_model")
    x = np.load(sys.argv[2])
    out = loaded.signatures["preprocessed"](image=tf.constant(x))["logits"].numpy()  # x is already preprocessed
    import keras
    again = keras.models.load_model(sys.argv[1] + "/model.keras")  # safe mode, no custom objects
    zeros = sum(int((w == 0).sum()) for w in again.get_weights())
    foreign = sorted(m for m in sys.modules if m.startswith(("tf_lottery", "tensorflow_model_opt")))
    print(json.dumps({"out": out.tolist(), "zeros": zeros, "foreign": foreign}))
""")


def test_the_imp_export_loads_with_neither_tfmot_nor_tf_lottery(imp_run, tmp_path):
    config, result = imp_run
    export = os.path.join(result.run_folder, "export", "ticket")
    x = np.random.default_rng(0).standard_normal((3, *result.data["input_shape"])).astype("float32")
    np.save(tmp_path / "x.npy", x)
    script = tmp_path / "load.py"
    script.write_text(_LOAD_WITHOUT)
    done = subprocess.run([sys.executable, str(script), export, str(tmp_path / "x.npy")], capture_output=True,
                          text=True, cwd=str(tmp_path), timeout=3600)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["foreign"] == []
    ticket = keras.models.load_model(os.path.join(export, "model.keras"))
    np.testing.assert_allclose(report["out"], ticket(x, training=False).numpy(), rtol=1e-5, atol=1e-5)
    assert report["zeros"] >= result.dense.cost("params") - result.ticket.cost("nonzero_params")


_KERAS3_AFTER_TFMOT = textwrap.dedent("""
    import os, sys
    import tensorflow_model_optimization  # flips tf.keras to tf_keras for the whole process
    import tensorflow as tf
    import keras
    import numpy as np
    import tf_lottery as tl
    assert os.environ.get("TF_USE_LEGACY_KERAS") == "1" and tf.keras.__name__.startswith("tf_keras")
    assert keras.__version__.startswith("3.")
    model = tl.models.cifar_resnet(20, input_shape=(16, 16, 3), seed=0)
    ticket = tl.surgery.remove_blocks(model, ["stage1_block2"])
    x = np.random.default_rng(0).standard_normal((32, 16, 16, 3)).astype("float32")
    y = np.arange(32) % 10
    ticket.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    before = ticket.get_layer("stage1_block1_conv1").kernel.numpy().copy()
    ticket.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert not np.array_equal(before, ticket.get_layer("stage1_block1_conv1").kernel.numpy())
    tl.export.save_model(ticket, sys.argv[1])
    loaded = tf.saved_model.load(sys.argv[1] + "/saved_model")
    out = loaded.signatures["serving_default"](image=tf.constant(x[:2]))["logits"].numpy()
    np.testing.assert_allclose(out, ticket(x[:2], training=False).numpy(), rtol=1e-5, atol=1e-5)
    print("ok")
""")


def test_a_keras3_ticket_trains_and_exports_after_tfmot_was_imported(tmp_path):
    script = tmp_path / "after_tfmot.py"
    script.write_text(_KERAS3_AFTER_TFMOT)
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "export")], capture_output=True, text=True,
                          timeout=3600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "ok"
