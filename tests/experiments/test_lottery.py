import keras
import numpy as np
import pytest

import tf_lottery as tl
from tf_lottery import experiments
from tf_lottery import training as train
from tf_lottery.config import Config


def test_resumed_recipe_continues_the_schedule():
    recipe = train.Recipe()  # 200ep, 0.01, /10 at 100 and 150
    assert train.Recipe().resumed_at(0) == recipe
    later = recipe.resumed_at(120)
    assert (later.length, later.lr_drops) == ("80ep", ("30ep",))
    assert later.learning_rate == pytest.approx(0.001)
    with pytest.raises(ValueError, match=r"rewind epoch must be in \[0, 199\]"):
        recipe.resumed_at(200)
    with pytest.raises(ValueError, match="needs lengths in epochs"):
        train.Recipe(length="500it", lr_drops=()).resumed_at(1)


class _Snapshot(keras.callbacks.Callback):
    def __init__(self, store):
        super().__init__()
        self.store = store

    def on_epoch_end(self, epoch, logs=None):
        self.store[epoch + 1] = {layer.name: [w.copy() for w in layer.get_weights()] for layer in self.model.layers}


def _spy_on_fit(monkeypatch, dense_callback, ticket_start: dict) -> None:
    """Makes `train.fit` give the dense training `dense_callback` and record the ticket's weights
    (and recipe) before it trains."""
    real_fit = train.fit

    def spying_fit(model, data, recipe, workdir, name, **kwargs):
        if name == "dense":
            kwargs["extra_callbacks"] = list(kwargs.get("extra_callbacks", ())) + [dense_callback]
        else:
            ticket_start.update({l.name: [w.copy() for w in l.get_weights()] for l in model.layers})
            ticket_start["__recipe__"] = recipe
        return real_fit(model, data, recipe, workdir, name, **kwargs)

    monkeypatch.setattr(train, "fit", spying_fit)


def _run(tmp_path, monkeypatch, rewind):
    """Runs `lottery`, snapshotting the dense weights after each epoch and the ticket before training."""
    dense_after, ticket_start = {}, {}
    _spy_on_fit(monkeypatch, _Snapshot(dense_after), ticket_start)
    config = Config.create(experiment="lottery", dataset="synthetic", train_size=None, val_size=64, depth=20,
                    criterion="expectabs", num_blocks=2, rewind=rewind, rewind_epoch=1, length="2ep",
                    batch_size=64, learning_rate=0.05, lr_drops=("1ep",), runs_dir=str(tmp_path),
                    latency_batch_sizes=(1,), memory_batch_size=8, export=False)
    result = experiments.get("lottery")(config)
    return config, result, dense_after, ticket_start


def test_weight_rewinding_gives_the_kept_layers_their_epoch_i_weights_bit_for_bit(tmp_path, monkeypatch):
    config, result, dense_after, ticket_start = _run(tmp_path, monkeypatch, "weights")
    kept = [n for n, w in ticket_start.items() if n != "__recipe__" and w]
    assert len(kept) > 20
    changed = 0
    for name in kept:
        for start, at_epoch_1, final in zip(ticket_start[name], dense_after[1][name], dense_after[2][name]):
            np.testing.assert_array_equal(start, at_epoch_1)
            changed += not np.array_equal(start, final)
    assert changed > 0  # epoch 1 and epoch 2 differ, so the check above can fail
    recipe = ticket_start["__recipe__"]
    assert (recipe.length, recipe.learning_rate, recipe.lr_drops) == ("1ep", pytest.approx(0.005), ())
    assert result.rewind.mode == "weights" and len(result.ticket.removed) == 2
    assert result.comparison.flops_reduction_pct > 0


@pytest.mark.slow
def test_learning_rate_rewinding_keeps_the_trained_weights(tmp_path, monkeypatch):
    _, result, dense_after, ticket_start = _run(tmp_path, monkeypatch, "lr")
    for name, values in ticket_start.items():
        if name != "__recipe__":
            for start, final in zip(values, dense_after[2][name]):
                np.testing.assert_array_equal(start, final)
    assert ticket_start["__recipe__"].length == "1ep"


@pytest.mark.slow
def test_reinit_starts_from_a_fresh_initialization(tmp_path, monkeypatch):
    config, result, dense_after, ticket_start = _run(tmp_path, monkeypatch, "reinit")
    fresh = tl.models.cifar_resnet(20, input_shape=(16, 16, 3), num_classes=4, seed=config.seed + 1)
    dense0 = tl.models.cifar_resnet(20, input_shape=(16, 16, 3), num_classes=4, seed=config.seed)
    kernel = ticket_start["stem_conv"][0]
    np.testing.assert_array_equal(kernel, fresh.get_layer("stem_conv").kernel.numpy())
    assert not np.array_equal(kernel, dense0.get_layer("stem_conv").kernel.numpy())
    assert ticket_start["__recipe__"].length == "2ep"


def test_a_rewind_epoch_outside_training_is_refused_before_writing(tmp_path):
    config = Config.create(experiment="lottery", dataset="synthetic", train_size=None, val_size=64, length="2ep",
                    lr_drops=(), rewind_epoch=2, runs_dir=str(tmp_path))
    with pytest.raises(ValueError, match=r"rewind epoch must be in \[0, 1\] for a 2ep recipe; got 2"):
        experiments.get("lottery")(config)
    assert not list(tmp_path.iterdir())
    with pytest.raises(ValueError, match="rewind must be one of"):
        Config.create(rewind="rewinding")


@pytest.mark.parametrize("step", [1, 57, 101, 150, 299])
def test_a_recipe_resumed_at_a_step_gives_every_later_step_its_learning_rate(step):
    recipe = train.Recipe("3ep", learning_rate=0.1, lr_drops=("2ep",), warmup="1ep", warmup_start=0.1)
    rest = recipe.resumed_at_step(step, steps_per_epoch=100)
    assert rest.length == f"{300 - step}it"
    for s in range(300 - step):
        assert rest.learning_rate_at(s, 100) == pytest.approx(recipe.learning_rate_at(step + s, 100), rel=1e-12)
    assert recipe.resumed_at_step(0, 100) == recipe


def test_a_rewind_to_epoch_i_and_to_step_i_x_steps_per_epoch_train_alike():
    recipe = train.Recipe("4ep", learning_rate=0.1, lr_drops=("2ep", "3ep"))
    by_epoch, by_step = recipe.resumed_at(2), recipe.resumed_at_step(200, 100)
    assert by_step.total_steps(100) == by_epoch.total_steps(100) == 200
    assert [by_step.learning_rate_at(s, 100) for s in range(200)] == pytest.approx(
        [by_epoch.learning_rate_at(s, 100) for s in range(200)])
    with pytest.raises(ValueError, match=r"rewind step must be in \[0, 399\] for a 4ep recipe of 400 steps"):
        recipe.resumed_at_step(400, 100)
    with pytest.raises(TypeError, match="must be an integer"):
        recipe.resumed_at_step(2.5, 100)


def test_rewinding_to_a_step_starts_the_ticket_from_the_weights_after_that_step(tmp_path, monkeypatch):
    """open_lth's rewinding_steps: the kept layers take the dense weights after k optimizer steps,
    bit for bit, and train the recipe's remaining steps, exactly."""
    after_step, ticket_start = {}, {}

    class AtStep(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            step = int(self.model.optimizer.iterations)
            after_step[step] = {layer.name: [w.copy() for w in layer.get_weights()] for layer in self.model.layers}

    _spy_on_fit(monkeypatch, AtStep(), ticket_start)
    config = Config.create(experiment="lottery", dataset="synthetic", train_size=None, val_size=64, depth=14,
                           criterion="expectabs", num_blocks=1, min_blocks_per_stage=1, rewind_step=3,
                           length="2ep", batch_size=64, learning_rate=0.05, lr_drops=("1ep",),
                           runs_dir=str(tmp_path), latency_batch_sizes=(1,), memory_batch_size=8, export=False,
                           evals=("clean",))
    result = experiments.get("lottery")(config)
    per_epoch = max(after_step) // 2
    assert per_epoch > 3  # step 3 lies inside the first epoch
    kept = [n for n, w in ticket_start.items() if n != "__recipe__" and w]
    assert len(kept) > 5
    for name in kept:
        for start, at_step in zip(ticket_start[name], after_step[3][name]):
            np.testing.assert_array_equal(start, at_step)
    assert not all(np.array_equal(a, b) for a, b in zip(after_step[3]["stem_conv"], after_step[4]["stem_conv"]))
    recipe = ticket_start["__recipe__"]
    assert (recipe.length, recipe.lr_drops) == (f"{2 * per_epoch - 3}it", (f"{per_epoch - 3}it",))
    assert result.ticket.training.steps == 2 * per_epoch - 3
    assert (result.rewind.step, result.rewind.epoch) == (3, 0)
    dense_folder = tmp_path / result.dense_run_folder.split("/")[-1]
    assert (dense_folder / "theta_step_3.weights.h5").exists()


def test_a_rewind_step_outside_training_is_refused_before_writing(tmp_path):
    config = Config.create(experiment="lottery", dataset="synthetic", train_size=None, val_size=64, length="2ep",
                           batch_size=64, lr_drops=(), rewind_step=10**6, runs_dir=str(tmp_path))
    with pytest.raises(ValueError, match=r"rewind step must be in \[0, \d+\] for a 2ep recipe"):
        experiments.get("lottery")(config)
    assert not list(tmp_path.iterdir())
    with pytest.raises(ValueError, match="--rewind_epoch or --rewind_step, not both"):
        Config.create(rewind_epoch=1, rewind_step=5)


def test_heal_names_the_run_only_when_it_is_not_fine_tuning_and_is_refused_where_it_cannot_run(tmp_path):
    plain = Config.create(experiment="lottery", dataset="synthetic", runs_dir=str(tmp_path))
    assert plain.digest("ticket") == Config.create(experiment="lottery", dataset="synthetic", heal="finetune",
                                                   heal_temperature=4.0, runs_dir=str(tmp_path)).digest("ticket")
    distilled = plain.replace(heal="distil")
    assert distilled.digest("ticket") != plain.digest("ticket") and distilled.digest("dense") == plain.digest("dense")
    assert distilled.method.identity()["heal"] == "distil" and "heal_temperature" in distilled.method.identity()
    with pytest.raises(ValueError, match="--heal=distil heals the ticket of a trained network: --experiment=lottery"):
        Config.create(experiment="init_ticket", dataset="synthetic", heal="distil")
    with pytest.raises(ValueError, match="--method=imp trains its tickets its own way"):
        Config.create(experiment="lottery", dataset="synthetic", method="imp", heal="distil")
    with pytest.raises(ValueError, match="--heal_hidden=0.5 matches the kept blocks' hidden states, which "
                                         "--method=filters narrows"):
        Config.create(experiment="lottery", dataset="synthetic", method="filters", heal="distil", heal_hidden=0.5)
    with pytest.raises(ValueError, match="--heal_temperature must be > 0"):
        Config.create(experiment="lottery", dataset="synthetic", heal="distil", heal_temperature=0.0)


@pytest.mark.slow
def test_a_lottery_ticket_heals_by_distillation_from_the_trained_dense_network(tmp_path):
    config = Config.create(experiment="lottery", dataset="synthetic", train_size=None, val_size=64, depth=14,
                           criterion="expectabs", num_blocks=1, rewind="lr", rewind_epoch=1, length="2ep",
                           batch_size=64, learning_rate=0.05, lr_drops=(), runs_dir=str(tmp_path), heal="distil",
                           heal_hidden=0.1, min_blocks_per_stage=1, evals=("clean",), export=False)
    result = experiments.get("lottery")(config)
    run = tmp_path / f"lottery-{config.digest('ticket')}"
    history = train.read_history(str(run / "history_ticket.csv"))
    assert history["epoch"] == [0] and "distillation_loss" in history and "accuracy" not in history
    assert len(result.ticket.removed) == 1 and result.ticket.evals["clean"]["accuracy"] > 0
    assert result.ticket.training.history["loss"] == history["distillation_loss"]
