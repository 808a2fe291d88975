"""The dense run: one trained dense network per seed, shared by every ticket made from it.

A ticket's config decides its dense network only through its ``"dense"`` identity (seed,
model, data, training; see :meth:`tf_lottery.config.Config.identity`); the method, the
sweep lists, what is measured and where output goes do not change it. So the dense run
lives in its own folder, ``runs/dense-<hash>``: the second criterion, the fifth p or a
later sweep of the same seed finds it trained and loads it.

The folder holds θ0 (``theta_0.weights.h5``), the weights after each kept epoch
(``keep_epochs`` plus the rewind epoch of an experiment that rewinds) and each kept step
(``theta_step_<k>.weights.h5``: ``keep_steps`` plus the rewind step), the trained
weights, the history, the measured record (``dense.json``: accuracy, costs, latency,
time, energy; each evaluation also cached under ``evals/dense/``) and the export.
The folder is locked while a process works in it: a second run of the same seed waits
for the dense network and then loads it.
"""

from __future__ import annotations

import dataclasses

import keras

from tf_lottery import export
from tf_lottery import training
from tf_lottery.config import Config, MethodConfig, SweepConfig
from tf_lottery.config.experiments import EXPERIMENTS, register
from tf_lottery.experiments.fitting import train_or_load
from tf_lottery.experiments.measuring import has_evals, measure
from tf_lottery.experiments.preparing import set_up, steps_per_epoch
from tf_lottery.experiments.publishing import dense_metadata, publish, publish_transformers, save_export
from tf_lottery.core.log import log
from tf_lottery.results.records import ModelRecord
from tf_lottery.experiments.runs import RunFolder


def theta_file(epoch: int) -> str:
    """File name of θ_epoch, the dense weights after ``epoch`` epochs."""
    return f"theta_{epoch}.weights.h5"


def theta_step_file(step: int) -> str:
    """File name of θ_k, the dense weights after ``step`` optimizer steps."""
    return f"theta_step_{step}.weights.h5"


def dense_config(config: Config) -> Config:
    """The config of ``config``'s dense run: experiment "dense", method and sweep at their defaults.

    ``keep_epochs`` (``keep_steps``) becomes the sorted union of the config's and, for an
    experiment that rewinds (``lottery``, ``imp``), its rewind epoch (step); 0 is dropped since
    θ0 is always kept.

    Example:
        >>> a = dense_config(Config.create(criterion="snip", num_blocks=3))
        >>> a == dense_config(Config.create(criterion="grasp", num_blocks=1))
        True
    """
    keep, keep_steps = set(config.training.keep_epochs), set(config.training.keep_steps)
    if EXPERIMENTS.get(config.experiment).rewinds:
        keep.add(config.method.rewind_epoch)
        keep_steps.add(config.method.rewind_step)
    keep.discard(0)
    keep_steps.discard(0)
    training = dataclasses.replace(config.training, keep_epochs=tuple(sorted(keep)),
                                   keep_steps=tuple(sorted(keep_steps)))
    return dataclasses.replace(config, experiment="dense", training=training, method=MethodConfig(),
                               sweep=SweepConfig())


def check_kept(config: Config, data) -> None:
    """Checks that every epoch and step ``config``'s dense run keeps lies inside its training
    (before anything is written: a step count needs the data's steps per epoch).

    Raises:
        ValueError: naming the kept epoch or step (the rewind's included) and the range allowed.
    """
    own = dense_config(config)
    recipe = own.training.recipe()
    for epoch in own.training.keep_epochs:
        recipe.resumed_at(epoch)
    per_epoch = steps_per_epoch(config, data)
    for step in own.training.keep_steps:
        recipe.resumed_at_step(step, per_epoch)


def train_dense(config: Config, data, model) -> tuple[ModelRecord, RunFolder]:
    """Trains ``model`` (the dense θ0 of ``config``) in its shared folder, or loads it.

    Args:
        config: The config of the ticket run (or of the dense run itself).
        data: Prepared data.
        model: The dense network at θ0, as :func:`set_up` built it; trained in place.

    Returns:
        ``(record, run)``: the measured record (``dense.json``) and the dense run folder.

    Raises:
        ValueError: if a kept epoch or step is not within the training length.
    """
    check_kept(config, data)
    own = dense_config(config)
    run = RunFolder(own, "dense")
    with run.lock(config.runtime.wait_for_lock):
        run.verify()  # a file that does not match the manifest is set aside here, and remade or retrained below
        run.start()
        if not run.exists(theta_file(0)):
            run.save_weights(model, theta_file(0))
        keras.utils.set_random_seed(config.seed)  # the same data order for every ticket of the seed
        save_at = training.SaveWeightsAt(own.training.keep_epochs, lambda m, i: run.save_weights(m, theta_file(i)),
                                         steps=own.training.keep_steps,
                                         save_step=lambda m, k: run.save_weights(m, theta_step_file(k)))
        trained = train_or_load(own, run, model, data, "dense", callbacks=[save_at])
        record = run.read_json("dense.json", ModelRecord.from_dict, recompute=True)  # remeasured when damaged
        if record is None or not has_evals(record, config, "dense"):
            record = measure(config, run, "dense", model, data, trained)
            run.write_json("dense.json", record.to_dict())
        if config.runtime.export and not export.is_complete(run.file("export/dense")):
            save_export(config, model, run.file("export/dense"), dense_metadata(own, run, record.accuracy), data)
            publish(config, model.name, run.file("export/dense"), run)
            publish_transformers(config, model, run, dense_metadata(own, run, record.accuracy))
        run.seal()
        log(f"dense: {_headline(record)} ({run.path})")
    return record, run


def _headline(record: ModelRecord) -> str:
    """What the log says of a measured dense model: a language model's perplexity, else its accuracy."""
    perplexity = record.evals.get("clean", {}).get("perplexity")
    if perplexity is not None:
        return f"held-out perplexity {perplexity:.3f}"
    return f"{100 * record.accuracy:.2f} % test accuracy" if record.accuracy is not None else "trained"


@register("dense", scope="dense")
def dense(config: Config) -> ModelRecord:
    """Trains (or finds) the dense run of ``config`` alone; returns its measured record.

    Example:
        $ tf-lottery --experiment=dense --depth=32 --keep_epochs=25,50,75
    """
    data, model = set_up(config, check_method=False)
    record, _ = train_dense(config, data, model)
    return record
