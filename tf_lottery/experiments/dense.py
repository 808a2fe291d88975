"""The dense run: one trained dense network per seed, shared by every ticket made from it.

A ticket's config decides its dense network only through the model, data, training and
output fields; criterion, p, rewinding and sweep lists do not change it. So the dense run
lives in its own folder, ``runs/dense-<hash>``, keyed by :func:`dense_config`: the second
criterion, the fifth p or a later sweep of the same seed finds it trained and loads it.

The folder holds θ0 (``theta_0.weights.h5``), the weights after each kept epoch
(``keep_epochs`` plus a ``lottery`` run's rewind epoch), the trained weights, the history,
the measured record (``dense.json``: accuracy, costs, latency, time, energy) and the export.
Two processes must not train the same dense run at once (nothing locks the folder).
"""

from __future__ import annotations

import dataclasses

import keras

from tf_lottery import export, train
from tf_lottery.config import SWEEP_FIELDS, TICKET_FIELDS, Config
from tf_lottery.experiments.stages import log, measure, set_up, train_or_load
from tf_lottery.experiments.registry import EXPERIMENTS
from tf_lottery.runs import RunFolder


def theta_file(epoch: int) -> str:
    """File name of θ_epoch, the dense weights after ``epoch`` epochs."""
    return f"theta_{epoch}.weights.h5"


def dense_config(config: Config) -> Config:
    """The config of ``config``'s dense run: ticket and sweep fields reset to their defaults.

    ``keep_epochs`` becomes the sorted union of the config's and, for ``lottery``, its
    rewind epoch; 0 is dropped since θ0 is always kept. ``export`` is reset too: whether
    to export is the caller's choice, not part of what the dense run is.

    Example:
        >>> a = dense_config(Config(criterion="snip", num_blocks=3))
        >>> a == dense_config(Config(criterion="grasp", num_blocks=1))
        True
    """
    defaults = Config()
    keep = set(config.keep_epochs)
    if config.experiment == "lottery":
        keep.add(config.rewind_epoch)
    keep.discard(0)
    reset = {name: getattr(defaults, name) for name in TICKET_FIELDS + SWEEP_FIELDS + ("export",)}
    return dataclasses.replace(config, experiment="dense", keep_epochs=tuple(sorted(keep)), **reset)


def train_dense(config: Config, data, model) -> tuple[dict, RunFolder]:
    """Trains ``model`` (the dense θ0 of ``config``) in its shared folder, or loads it.

    Args:
        config: The config of the ticket run (or of the dense run itself).
        data: Prepared data.
        model: The dense network at θ0, as :func:`set_up` built it; trained in place.

    Returns:
        ``(record, run)``: the measured record (``dense.json``) and the dense run folder.

    Raises:
        ValueError: if a kept epoch is not within the training length.
    """
    own = dense_config(config)
    recipe = own.recipe()
    for epoch in own.keep_epochs:
        recipe.resumed_at(epoch)  # names a kept epoch past the end
    run = RunFolder(own)
    run.start()
    if not run.exists(theta_file(0)):
        run.save_weights(model, theta_file(0))
    keras.utils.set_random_seed(config.seed)  # the same data order for every ticket of the seed
    save_at = train.SaveWeightsAt(own.keep_epochs, lambda m, i: run.save_weights(m, theta_file(i)))
    trained = train_or_load(own, run, model, data, "dense", callbacks=[save_at])
    record = run.read_json("dense.json")
    if record is None:
        record = measure(own, model, data, trained)
        run.write_json("dense.json", record)
    if config.export and not run.exists("export/dense"):
        export.save_model(model, run.file("export/dense"), {
            "config_hash": own.digest(), "seed": own.seed,
            "metrics": {"test_accuracy": record["test"]["accuracy"]}})
    log(f"dense: {100 * record['test']['accuracy']:.2f} % test accuracy ({run.path})")
    return record, run


@EXPERIMENTS.register("dense")
def dense(config: Config) -> dict:
    """Trains (or finds) the dense run of ``config`` alone; returns its measured record.

    Example:
        $ tf-lottery --experiment=dense --depth=32 --keep_epochs=25,50,75
    """
    data, model = set_up(config, RunFolder(dense_config(config)), check_removal=False)
    record, _ = train_dense(config, data, model)
    return record
