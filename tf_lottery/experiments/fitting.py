"""Training stage: train a model of a run (or load it when a previous session finished it), with its
energy and timing; the trained dense network of a dense run; a training history written again from its record.

Example:
    >>> trained = train_or_load(config, run, ticket, data, "ticket")
"""

from __future__ import annotations

import dataclasses
import os

import keras

from tf_lottery import training
from tf_lottery.config import Config
from tf_lottery.core.faults import crash_point
from tf_lottery.core.log import log
from tf_lottery.experiments import integrity
from tf_lottery.experiments.preparing import dense_model
from tf_lottery.experiments.runs import RunFolder
from tf_lottery.results.records import Energy, Timing, TrainingRecord
from tf_lottery.runtime import carbon
from tf_lottery.training import resume


def train_or_load(config: Config, run: RunFolder, model, data, name: str, recipe=None,
                  callbacks=(), fit=None) -> TrainingRecord:
    """Trains one model (or loads it when a previous run finished it); returns its record.

    Args:
        config: The run's config.
        run: The run folder.
        model: The model to train.
        data: Prepared data.
        name: "dense" or "ticket": names the files.
        recipe: The recipe (default: the config's).
        callbacks: Extra Keras callbacks.
        fit: The training function (default :func:`tf_lottery.training.fit`; a method's
            ``trainer()`` for tickets that train differently, e.g. under tfmot masks).
    """
    recipe = recipe or config.training.recipe()
    if f"{name}_final.weights.h5" in integrity.not_kept(run.path):
        raise ValueError(f"{run.file(f'{name}_final.weights.h5')} was not kept (manifest.json says so: the run's "
                         "small files were kept without its weights); it is not trained again here: run it in "
                         "another --runs_dir")
    record = run.read_json(f"train_{name}.json", TrainingRecord.from_dict) if run.exists(
        f"{name}_final.weights.h5") else None
    if record is not None:
        log(f"{name}: already trained, loading {run.file(f'{name}_final.weights.h5')}")
        run.load_weights(model, f"{name}_final.weights.h5",
                         retrains=f"{run.file(f'{name}_final.weights.h5')} {run.file(f'train_{name}.json')}")
        training.compile_model(model, recipe, 1)
        resume.discard(run.path, name)  # left by a kill after the record was written
        return record
    log(f"{name}: training {model.name} ({model.count_params():,} params) for {recipe.length}")
    # A training state left by a killed session: this session continues it (maybe with no epoch left,
    # a kill between the last epoch and the final weights), so its tracker sees only part of the training.
    resumed = os.path.isdir(resume.state_folder(run.path, name))
    with carbon.track(name, run.path, config.runtime.carbon_country) as energy:
        fitted = (fit or training.fit)(model, data, recipe, run.path, name, tensorboard=config.runtime.tensorboard,
                                    extra_callbacks=callbacks)
    crash_point("trained")
    timing = Timing(**fitted["timing"])
    energy = Energy.from_dict(energy)
    if resumed or timing.sessions > 1:  # the killed sessions' energy was never reported: no complete sum
        energy = dataclasses.replace(energy, status="unavailable", duration_s=None, energy_kwh=None, co2_kg=None,
                                     cpu_power_w=None, ram_power_w=None, reason=(
            f"training was interrupted and resumed ({timing.sessions} session{'s' if timing.sessions > 1 else ''} "
            "with epochs, and the one that finished it); codecarbon reports a session only when it ends, so the "
            "interrupted sessions' energy is missing"))
    record = TrainingRecord(timing, fitted["steps"], fitted["epochs"], energy, fitted["history"])
    run.save_weights(model, f"{name}_final.weights.h5")
    run.write_json(f"train_{name}.json", record.to_dict())
    resume.discard(run.path, name)  # only now: a kill before this point resumes from the state
    run.seal()  # the history CSV and codecarbon's log, written during training
    return record


def trained_dense(config: Config, data, dense_run: RunFolder) -> keras.Model:
    """The trained dense network of ``dense_run`` (its θ0 rebuilt, its final weights loaded).

    Raises:
        ValueError: when the dense run has not finished training.
    """
    weights = dense_run.file("dense_final.weights.h5")
    if not os.path.exists(weights):
        raise ValueError(f"{weights} is missing: the dense run did not finish training")
    model = dense_model(config, data)
    dense_run.load_weights(model, "dense_final.weights.h5",
                           retrains=f"{weights} {dense_run.file('train_dense.json')} {dense_run.file('dense.json')}")
    return model


def restore_history(run: RunFolder, name: str, trained: TrainingRecord) -> None:
    """Writes ``history_<name>.csv`` again from the training record when it is missing or damaged and
    the record holds the history (records from tf_lottery 0.9 on); otherwise a damaged CSV is named
    by :func:`tf_lottery.training.read_history`."""
    path = run.file(f"history_{name}.csv")
    try:
        if training.read_history(path):
            return
    except ValueError:
        if trained.history is None:
            raise
    if trained.history:
        logs = {key: values for key, values in trained.history.items() if key != "epoch"}
        epochs = [{"epoch": int(epoch), "logs": {key: values[i] for key, values in logs.items()}}
                  for i, epoch in enumerate(trained.history["epoch"])]
        log(f"{name}: {path} was missing or damaged; written again from train_{name}.json")
        run.write_text(f"history_{name}.csv", resume.history_csv(epochs))  # the writer training uses
