import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import tf_lottery as tl
from tf_lottery import data
from tf_lottery import training as train


@pytest.fixture(scope="module")
def small_data():
    return data.prepare(data.DataOptions("synthetic", train_size=256, val_size=64, test_size=64, seed=0))


@pytest.mark.parametrize("text, expected", [("160ep", (160, "ep")), ("500it", (500, "it")), (" 3 ep", (3, "ep"))])
def test_parse_length(text, expected):
    assert train.parse_length(text) == expected


@pytest.mark.parametrize("text", ["160", "0ep", "3epochs", "-2it", "ep"])
def test_bad_length_names_the_forms(text):
    with pytest.raises(ValueError, match="e.g. 160ep or 500it"):
        train.parse_length(text)


def test_paper_recipe_defaults_and_schedule():
    recipe = train.Recipe()
    assert (recipe.length, recipe.batch_size, recipe.learning_rate, recipe.momentum, recipe.nesterov) == (
        "200ep", 128, 0.01, 0.9, True)
    schedule = recipe.schedule(steps_per_epoch=390)
    for step, lr in [(0, 0.01), (100 * 390 - 1, 0.01), (100 * 390, 0.001), (150 * 390, 0.0001)]:
        assert float(schedule(step)) == pytest.approx(lr)
    assert train.Recipe(length="500it").plan(390) == (2, 390)
    assert train.Recipe(length="100it").plan(390) == (1, 100)
    assert train.Recipe(length="3ep").plan(390) == (3, 390)


def test_fit_trains_logs_and_times(tmp_path, small_data):
    keras.utils.set_random_seed(0)
    model = tl.models.cifar_resnet(8, input_shape=(16, 16, 3), num_classes=4)
    result = train.fit(model, small_data, train.Recipe(length="3ep", batch_size=32, learning_rate=0.05,
                                                       lr_drops=("2ep",)), str(tmp_path), "dense", verbose=0)
    history = result["history"]
    assert history["epoch"] == [0, 1, 2] and len(history["val_accuracy"]) == 3
    assert history["loss"][-1] < history["loss"][0]
    timing = result["timing"]
    assert len(timing["epoch_seconds"]) == 3 and timing["train_seconds"] >= sum(timing["epoch_seconds"])
    assert timing["images_per_second"] == pytest.approx(32 * 8 * 2 / sum(timing["epoch_seconds"][1:]))
    assert timing["sessions"] == 1 and result["steps"] == 24
    # The resume state stays until the caller has saved the final weights.
    assert sorted(os.listdir(tmp_path / "resume_dense")) == ["epoch-2.weights.h5", "epoch-3.weights.h5",
                                                             "progress.json"]
    evaluation = train.evaluate(model, small_data)
    assert 0 <= evaluation["accuracy"] <= 1 and evaluation["examples"] == 64


class _Kill(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            raise KeyboardInterrupt("killed")


def test_a_killed_training_resumes_where_it_stopped(tmp_path, small_data):
    recipe = train.Recipe(length="4ep", batch_size=32, learning_rate=0.05, lr_drops=())
    model = tl.models.cifar_resnet(8, input_shape=(16, 16, 3), num_classes=4)
    with pytest.raises(KeyboardInterrupt):
        train.fit(model, small_data, recipe, str(tmp_path), "dense", verbose=0, extra_callbacks=[_Kill()])
    assert (tmp_path / "resume_dense" / "epoch-1.weights.h5").exists()  # epoch 1 (0-based) did not finish
    fresh = tl.models.cifar_resnet(8, input_shape=(16, 16, 3), num_classes=4)
    result = train.fit(fresh, small_data, recipe, str(tmp_path), "dense", verbose=0)
    assert result["history"]["epoch"] == [0, 1, 2, 3]  # each epoch once; epoch 0 not trained again
    timing = result["timing"]
    assert len(timing["epoch_seconds"]) == 4 and timing["sessions"] == 2  # every epoch timed, across sessions
    assert int(fresh.optimizer.iterations.numpy()) == 4 * 8


def test_a_checkpoint_that_does_not_load_falls_back_to_the_one_before(tmp_path, small_data):
    recipe = train.Recipe(length="3ep", batch_size=32, learning_rate=0.05, lr_drops=())
    model = tl.models.cifar_resnet(8, input_shape=(16, 16, 3), num_classes=4)
    train.fit(model, small_data, recipe, str(tmp_path), "dense", verbose=0)
    (tmp_path / "resume_dense" / "epoch-3.weights.h5").write_bytes(b"\x89HDF\r\n" + b"\0" * 90)  # truncated
    fresh = tl.models.cifar_resnet(8, input_shape=(16, 16, 3), num_classes=4)
    result = train.fit(fresh, small_data, recipe, str(tmp_path), "dense", verbose=0)
    assert result["history"]["epoch"] == [0, 1, 2] and result["timing"]["sessions"] == 2  # only epoch 2 again
    (tmp_path / "resume_dense" / "progress.json").write_text("{not json")
    again = train.fit(tl.models.cifar_resnet(8, input_shape=(16, 16, 3), num_classes=4), small_data, recipe,
                      str(tmp_path), "dense", verbose=0)
    assert again["history"]["epoch"] == [0, 1, 2] and again["timing"]["sessions"] == 1  # from the start


def test_divergence_is_a_clear_error(tmp_path, small_data):
    model = tl.models.cifar_resnet(8, input_shape=(16, 16, 3), num_classes=4)
    with pytest.raises(train.TrainingDiverged, match="NaN or infinite"):
        train.fit(model, small_data, train.Recipe(length="2ep", batch_size=32, learning_rate=1e12, lr_drops=()),
                  str(tmp_path), "dense", verbose=0)


def test_training_split_smaller_than_a_batch(tmp_path, small_data):
    with pytest.raises(ValueError, match=r"smaller than one batch \(--batch_size=1024\)"):
        train.fit(tl.models.cifar_resnet(8, input_shape=(16, 16, 3), num_classes=4), small_data,
                  train.Recipe(length="1ep", batch_size=1024), str(tmp_path), "dense", verbose=0)


def test_workers_resume_from_the_newest_epoch_every_one_of_them_saved(tmp_path, small_data):
    """A kill can stop one worker of a multi-worker run an epoch before another: all restore the
    oldest of their newest epochs (``gather`` gives every worker's epoch), or start over."""
    recipe = train.Recipe(length="3ep", batch_size=32, learning_rate=0.05, lr_drops=())
    model = tl.models.cifar_resnet(8, input_shape=(16, 16, 3), num_classes=4)
    train.compile_model(model, recipe, 8)
    train.fit(model, small_data, recipe, str(tmp_path), "dense", verbose=0)  # keeps epoch-2 and epoch-3
    asked = []

    def other_worker_saved(epochs_of_the_other):
        def gather(epoch):
            asked.append(epoch)
            return [epoch, min(epoch, epochs_of_the_other)]
        return gather

    def restored(gather):
        fresh = tl.models.cifar_resnet(8, input_shape=(16, 16, 3), num_classes=4)
        train.compile_model(fresh, recipe, 8)
        checkpoint = tl.resume.EpochCheckpoint(str(tmp_path), "dense", str(tmp_path / "history.csv"))
        return checkpoint.restore(fresh, gather=gather), fresh, checkpoint

    start, fresh, checkpoint = restored(other_worker_saved(3))
    assert start == 3 and asked == [3]
    asked.clear()
    start, fresh, checkpoint = restored(other_worker_saved(2))
    assert start == 2 and asked == [3, 2]  # one more round, agreed
    reference = tl.models.cifar_resnet(8, input_shape=(16, 16, 3), num_classes=4)
    train.compile_model(reference, recipe, 8)
    reference.optimizer.build(reference.trainable_variables)
    reference.load_weights(str(tmp_path / "resume_dense" / "epoch-2.weights.h5"))
    for a, b in zip(fresh.weights, reference.weights):
        assert (a.numpy() == b.numpy()).all()
    assert [e["epoch"] for e in checkpoint.epochs] == [0, 1]
    asked.clear()
    start, _, checkpoint = restored(other_worker_saved(0))  # the other worker has nothing: all start over
    assert start == 0 and asked == [3, 0] and checkpoint.epochs == []


def test_warmup_rises_linearly_then_the_drops_apply():
    recipe = train.Recipe(length="10ep", learning_rate=0.1, lr_drops=("6ep",), warmup="2ep")
    expected = {0: 0.0125, 1: 0.025, 6: 0.0875, 7: 0.1, 8: 0.1, 23: 0.1, 24: 0.01, 39: 0.01}  # 4 steps an epoch
    schedule = recipe.schedule(steps_per_epoch=4)
    for step, rate in expected.items():
        assert recipe.learning_rate_at(step, 4) == pytest.approx(rate)
        assert float(schedule(step)) == pytest.approx(rate)
    assert train.Recipe(warmup="300it").warmup_steps(390) == 300 and train.Recipe().warmup_steps(390) == 0
    assert float(train.Recipe(length="3ep", learning_rate=0.05, warmup="1ep").schedule(10)(0)) == pytest.approx(0.005)


def test_tf_keras_gets_the_same_warmup_schedule():
    import tf_keras

    recipe = train.Recipe(length="10ep", learning_rate=0.1, lr_drops=("6ep", "8ep"), warmup="3ep")
    legacy, current = recipe.schedule(5, library=tf_keras), recipe.schedule(5)
    assert isinstance(legacy, tf_keras.optimizers.schedules.LearningRateSchedule)
    for step in range(50):
        assert float(legacy(step)) == pytest.approx(float(current(step)), rel=1e-6)


def _compiled_with_warmup(recipe):
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(3, name="head")(inputs), name="tiny")
    model.compile(optimizer=recipe.make_optimizer(steps_per_epoch=5), loss="mse")
    return model


def test_a_model_compiled_with_a_warmup_clones_saves_and_loads(tmp_path):
    """clone_model recompiles from the compile config: the schedule must deserialize whole."""
    recipe = train.Recipe(length="10ep", learning_rate=0.1, lr_drops=("6ep", "8ep"), warmup="3ep")
    model = _compiled_with_warmup(recipe)
    clone = keras.models.clone_model(model)
    path = str(tmp_path / "tiny.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    for copy in (clone, loaded):
        schedule = keras.optimizers.schedules.deserialize(copy.optimizer.get_config()["learning_rate"])
        assert [float(schedule(step)) for step in range(50)] == pytest.approx(
            [recipe.learning_rate_at(step, 5) for step in range(50)], rel=1e-6)
    script = ("import sys, keras, tf_lottery; model = keras.models.load_model(sys.argv[1]); "
              "schedule = keras.optimizers.schedules.deserialize(model.optimizer.get_config()['learning_rate']); "
              "print(type(schedule).__name__, float(schedule(7)))")
    fresh = subprocess.run([sys.executable, "-c", script, path], capture_output=True, text=True, check=True)
    name, rate = fresh.stdout.split()[-2:]
    assert name == "LinearWarmup" and float(rate) == pytest.approx(recipe.learning_rate_at(7, 5), rel=1e-6)


@pytest.mark.parametrize("library_name", ["keras", "tf_keras"])
@pytest.mark.parametrize("drops", [(), ("6ep",)])
def test_the_warmup_schedule_round_trips_through_its_config(library_name, drops):
    import importlib

    library = importlib.import_module(library_name)
    recipe = train.Recipe(length="10ep", learning_rate=0.1, lr_drops=drops, warmup="2ep")
    schedule = recipe.schedule(4, library=library)
    config = library.optimizers.schedules.serialize(schedule)
    again = library.optimizers.schedules.deserialize(config)
    assert type(again) is type(schedule) and again.get_config() == schedule.get_config()
    assert [float(again(step)) for step in range(40)] == pytest.approx(
        [recipe.learning_rate_at(step, 4) for step in range(40)], rel=1e-6)


@pytest.mark.parametrize("epoch", range(10))
def test_a_recipe_resumed_at_any_epoch_continues_the_same_schedule(epoch):
    recipe = train.Recipe(length="10ep", learning_rate=0.1, lr_drops=("6ep", "8ep"), warmup="3ep")
    rest = recipe.resumed_at(epoch)
    spe = 7
    for step in range(epoch * spe, 10 * spe):
        assert rest.learning_rate_at(step - epoch * spe, spe) == pytest.approx(recipe.learning_rate_at(step, spe))
    assert rest.warmup == f"{max(3 - epoch, 0)}ep"


@pytest.mark.parametrize("kwargs, message", [
    ({"length": "3ep", "warmup": "3ep"}, "must be shorter than the training"),
    ({"warmup": "2"}, "e.g. 160ep or 500it"),
    ({"warmup": "-1ep"}, "count >= 0"),
    ({"warmup_start": 1.0}, "warmup_start must be in"),
])
def test_bad_warmups_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        train.Recipe(**kwargs)


def test_fit_follows_the_warmup(tmp_path, small_data):
    keras.utils.set_random_seed(0)
    model = tl.models.cifar_resnet(8, input_shape=(16, 16, 3), num_classes=4)
    recipe = train.Recipe(length="2ep", batch_size=32, learning_rate=0.05, lr_drops=(), warmup="16it")
    train.fit(model, small_data, recipe, str(tmp_path), "dense", verbose=0)  # 8 steps an epoch: 16 steps
    steps = int(model.optimizer.iterations.numpy())
    assert steps == 16
    # After step 16 the warm-up has ended; after 8 steps it stood half way (checked on the schedule).
    assert float(model.optimizer.learning_rate) == pytest.approx(0.05)
    assert float(model.optimizer._learning_rate(7)) == pytest.approx(0.05 * 8 / 16)


def test_no_warmup_keeps_earlier_run_folders():
    from tf_lottery.config import Config

    assert Config().digest("ticket") == "27cb9d7dd0a7"  # the quick demo's folder since 0.4
    assert Config.create(warmup="0ep").digest("dense") == Config().digest("dense")
    assert Config.create(warmup="1ep").digest("dense") != Config().digest("dense")
    assert Config.create(bn_momentum=0.99).digest("dense") == Config().digest("dense")
    assert Config.create(bn_momentum=0.9).digest("dense") != Config().digest("dense")


def test_a_length_in_steps_trains_exactly_that_many_steps(tmp_path, small_data):
    """20it at 8 steps an epoch: epochs of 8, 8 and 4 steps (it used to train 24), and the short
    epoch counts its own images in the pace."""
    recipe = train.Recipe(length="20it", batch_size=32, learning_rate=0.05, lr_drops=())
    model = tl.models.cifar_resnet(8, input_shape=(16, 16, 3), num_classes=4)
    result = train.fit(model, small_data, recipe, str(tmp_path), "dense", verbose=0)
    assert int(model.optimizer.iterations.numpy()) == 20 and result["steps"] == 20
    assert result["history"]["epoch"] == [0, 1, 2]
    seconds = result["timing"]["epoch_seconds"]
    assert result["timing"]["images_per_second"] == pytest.approx(32 * (8 + 4) / (seconds[1] + seconds[2]))


def test_a_run_killed_in_its_short_last_epoch_resumes_to_the_same_step_count(tmp_path, small_data):
    recipe = train.Recipe(length="20it", batch_size=32, learning_rate=0.05, lr_drops=())

    class KillInLastEpoch(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if int(self.model.optimizer.iterations) == 18:
                raise KeyboardInterrupt("killed")

    with pytest.raises(KeyboardInterrupt):
        train.fit(tl.models.cifar_resnet(8, input_shape=(16, 16, 3), num_classes=4), small_data, recipe,
                  str(tmp_path), "dense", verbose=0, extra_callbacks=[KillInLastEpoch()])
    fresh = tl.models.cifar_resnet(8, input_shape=(16, 16, 3), num_classes=4)
    result = train.fit(fresh, small_data, recipe, str(tmp_path), "dense", verbose=0)
    assert int(fresh.optimizer.iterations.numpy()) == 20 and result["history"]["epoch"] == [0, 1, 2]


def test_weights_are_saved_after_the_given_steps(tmp_path, small_data):
    saved = {}

    class AtStep(keras.callbacks.Callback):  # the weights after each step, for comparison
        def on_train_batch_end(self, batch, logs=None):
            saved.setdefault("all", {})[int(self.model.optimizer.iterations)] = [w.numpy().copy() for w in
                                                                                  self.model.weights]

    keep = train.SaveWeightsAt((), None, steps=(3, 13),
                               save_step=lambda m, k: saved.__setitem__(k, [w.numpy().copy() for w in m.weights]))
    model = tl.models.cifar_resnet(8, input_shape=(16, 16, 3), num_classes=4)
    train.fit(model, small_data, train.Recipe(length="2ep", batch_size=32, learning_rate=0.05, lr_drops=()),
              str(tmp_path), "dense", verbose=0, extra_callbacks=[keep, AtStep()])
    assert sorted(k for k in saved if k != "all") == [3, 13]
    for step in (3, 13):
        for a, b in zip(saved[step], saved["all"][step]):
            np.testing.assert_array_equal(a, b)
    assert not all(np.array_equal(a, b) for a, b in zip(saved[3], saved[13]))
    with pytest.raises(TypeError, match="needs save_step"):
        train.SaveWeightsAt((), None, steps=(3,))


@pytest.mark.parametrize("progress,named", [
    ({"epochs": [{"epoch": 0, "seconds": 1.0, "logs": {}}], "checkpoints": [1]}, "epochs[0]['session'] is None"),
    ({"epochs": [{"epoch": 0, "session": 0, "seconds": -98.2, "logs": {}}], "checkpoints": [1]},
     "epochs[0]['seconds'] is -98.2, not a count or seconds >= 0"),
    ({"epochs": "x", "checkpoints": [1]}, "'epochs' and 'checkpoints' must be lists"),
    ({"epochs": ["x"], "checkpoints": [1]}, "epochs[0] is not an object"),
    ({"epochs": [], "checkpoints": ["<"]}, "'checkpoints' must hold epoch counts >= 1"),
    ([1, 2], "a JSON list, not an object"),
])
def test_a_damaged_progress_file_is_named_with_what_is_wrong_and_training_starts_over(tmp_path, small_data, capfd,
                                                                                      progress, named):
    import json
    recipe = train.Recipe(length="2ep", batch_size=32, learning_rate=0.05, lr_drops=())
    (tmp_path / "resume_dense").mkdir()
    (tmp_path / "resume_dense" / "progress.json").write_text(json.dumps(progress))
    result = train.fit(tl.models.cifar_resnet(8, input_shape=(16, 16, 3), num_classes=4), small_data, recipe,
                       str(tmp_path), "dense", verbose=0)
    said = capfd.readouterr().out
    assert f"resume state {tmp_path / 'resume_dense' / 'progress.json'} is unreadable ({named}" in said
    assert result["history"]["epoch"] == [0, 1] and result["timing"]["sessions"] == 1


def test_a_training_record_with_negative_seconds_is_damage():
    from tf_lottery.results.records import Timing
    with pytest.raises(ValueError, match="a training time is negative or not a number"):
        Timing(train_seconds=-98.2, epoch_seconds=[1.0], epochs_timed=1, images_per_second=None,
               images_per_second_note="")
    with pytest.raises(ValueError, match="sessions=0"):
        Timing(train_seconds=1.0, epoch_seconds=[1.0], epochs_timed=1, images_per_second=None,
               images_per_second_note="", sessions=0)
