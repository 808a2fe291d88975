"""The stages experiments are made of; each reads and leaves files in a run folder.

``init_ticket``, ``lottery``, ``dense`` and ``sweep`` compose these: set up data and θ0,
make the ticket (a registered method), train (or load) a model, measure it (registered
evaluations, each cached), and write the run record. Every stage leaves a file when
done, so a rerun skips it. This module only orchestrates: comparing lives in
:mod:`tf_lottery.results.records`, tables in :mod:`tf_lottery.reports`, plots in
:mod:`tf_lottery.reports.plots`, measuring in :mod:`tf_lottery.evals`, logging in :mod:`tf_lottery.core.log`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import os
import time
from typing import Optional

import keras

from tf_lottery import criteria, evals, export, legacy, models, reports, surgery, tickets, training
from tf_lottery.export import serving
from tf_lottery.evals.robustness import check_shift_sets
from tf_lottery.reports import plots
from tf_lottery.results import curves
from tf_lottery.runtime import carbon, distribute
from tf_lottery.training import resume
from tf_lottery.config import Config
from tf_lottery.config.sections import SCORE_SEQUENCES
from tf_lottery.data import TextData, prepare
from tf_lottery.core.faults import crash_point
from tf_lottery.experiments.one_run import spread_note
from tf_lottery.core.log import log
from tf_lottery.results.records import (
    Comparison, Energy, ModelRecord, Rewind, RunRecord, ScoringRecord, Timing, TrainingRecord,
)
from tf_lottery.core import manifest
from tf_lottery.experiments import integrity
from tf_lottery.experiments.runs import RunFolder, folder_lock


def dense_model(config: Config, data, seed: Optional[int] = None) -> keras.Model:
    """The dense network of ``config`` at initialization (θ0 of ``seed``, default the config's),
    with ``--residual_layers`` declared on it.

    Raises:
        ValueError: for a model of several outputs (a dataset gives one label per image), a
            language run's model that does not take token ids and a padding mask, or a declared
            residual layer the model does not have or that changes shape.
    """
    # A language model's weight decay is AdamW's, decoupled (GPT-2's, nanoGPT's): no L2 on top of it.
    l2 = 0.0 if config.data.task == "causal_lm" else config.training.weight_decay
    model = models.build(config.model, data, seed=config.seed if seed is None else seed, weight_decay=l2)
    takes = export.language.input_names(model)
    if config.data.task == "causal_lm" and takes != sorted(export.language.INPUTS):
        raise ValueError(f"--model={config.model.type} builds {model.name!r}, which takes {takes}; --task=causal_lm "
                         f"trains a language model that takes {list(export.language.INPUTS)} and returns next-token "
                         "logits (a keras_hub *CausalLM with preprocessor=None, say)")
    if len(model.outputs) != 1:
        names = ", ".join(t._keras_history.operation.name for t in model.outputs)
        raise ValueError(
            f"--model={config.model.type} builds a model of {len(model.outputs)} outputs ({names}); the command line "
            "trains, scores and evaluates a model of one output against the dataset's labels: return one output "
            "from the function (a --model_args switch, say), or use the Python API, whose criteria score a named "
            "output (output=) or labels for every output, and whose exports keep every head")
    if config.method.residual_layers:
        surgery.find_blocks(model, residual_layers=config.method.residual_layers)
    return model


def set_up(config: Config, check_method: bool = True):
    """Loads the data, builds the dense θ0 and checks everything that can be checked before a
    run writes its first file.

    Args:
        check_method: Whether to check the ticket method against the model (not for a dense run).

    Returns:
        ``(data, dense)``.

    Raises:
        ValueError: for a value the data or the model refuses (too many blocks, a batch larger
            than the training split, an input shape or class count the data does not have).
    """
    keras.utils.set_random_seed(config.seed)
    log(f"loading {config.data.dataset}")
    data = prepare(config.data_options(), config.data_mean_dir())
    check_data(config, data)
    dense = dense_model(config, data)
    if check_method:
        tickets.get(config.method.type).check(dense, config.method)
        check_execution(config.method.type)
    return data, dense


def check_execution(method_name: str) -> None:
    """Refuses a method the current execution cannot train (before anything is written).

    Raises:
        ImportError: for a tfmot method without the baselines extra (one line naming it).
        ValueError: for a tfmot method (its own training loop, in tf_keras) under several
            replicas or mixed precision.
    """
    method, execution = tickets.get(method_name), distribute.current()
    if method.fit is not None:
        legacy.require_baselines(f"--method={method.name}")
    if method.fit is not None and (execution.replicas > 1 or execution.precision != "float32"):
        raise ValueError(f"--method={method.name} trains its tickets with tfmot (tf_keras), which tf_lottery runs "
                         f"on one device in float32; got {execution.describe()}: drop --strategy and "
                         "--precision (or --mixed_precision) for it")


def steps_per_epoch(config: Config, data) -> int:
    """Optimizer steps in one epoch of ``config``'s training on ``data`` (the global batch under
    several replicas).

    Raises:
        ValueError: if the training split is smaller than one batch.
    """
    return training.check_fits(distribute.current().global_recipe(config.training.recipe()), data.size("train"))


def check_data(config: Config, data) -> None:
    """Checks the config against the prepared data (before anything is written).

    Raises:
        ValueError: naming the flag, its value and what the data allows.
    """
    training.check_lengths(distribute.current().global_recipe(config.training.recipe()), steps_per_epoch(config, data))
    if config.runtime.serving_dir:
        serving.check_serving_dir(config.runtime.serving_dir)
    if config.runtime.tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise ValueError("--tensorboard writes logs through the tensorboard package, which is not installed: "
                         "pip install 'tf_lottery[tensorboard]' (or drop --tensorboard)")
    if "shift_sets" in config.evaluation.evals:  # a set of another dataset, or one not on this machine
        check_shift_sets(config.evaluation, config.data.dataset)
    classes = config.model.num_classes
    if classes is not None and classes < data.num_classes:
        raise ValueError(f"--num_classes={classes} but {config.data.dataset} has labels up to "
                         f"{data.num_classes - 1}; it needs at least {data.num_classes}")


def ticket_metadata(config: Config, run: RunFolder, scoring: ScoringRecord, accuracy: Optional[float],
                    rewind: Optional[Rewind] = None) -> dict:
    """What a ticket's export records about its run (``metadata.json``, beside the export's own fields)."""
    return {"config_hash": run.digest, "method": config.method.type, "criterion": config.method.criterion,
            "seed": config.seed, "ticket": scoring.ticket.to_dict(), "metrics": {"test_accuracy": accuracy},
            **({"rewind": rewind.to_dict()} if rewind else {})}


def dense_metadata(config: Config, run: RunFolder, accuracy: Optional[float]) -> dict:
    """What a dense network's export records about its run."""
    return {"config_hash": run.digest, "seed": config.seed, "metrics": {"test_accuracy": accuracy}}


def publish(config: Config, model_name: str, path: str, run: RunFolder) -> Optional[str]:
    """With ``--serving_dir``: copies the export's SavedModel to TF Serving's layout
    (``<serving_dir>/<model name>-<run hash>/<n>/``); returns the version folder (else None)."""
    if not config.runtime.serving_dir:
        return None
    version = serving.serving_version(os.path.join(path, "saved_model"), config.runtime.serving_dir,
                                      f"{model_name}-{run.digest}")
    log(f"  TF Serving: {version}")
    return version


def save_export(config: Config, model, path: str, metadata: dict, data, overwrite: bool = False) -> None:
    """Exports a trained model of a run: :func:`tf_lottery.export.save_model` for images (with the
    run's preprocessing and TFLite flags), :func:`tf_lottery.export.save_language_model` for a
    language model (its token SavedModel and keras_hub preset)."""
    if isinstance(data, TextData):
        export.save_language_model(model, path, metadata, overwrite=overwrite, tokenizer=data.tokenizer)
    else:
        export.save_model(model, path, metadata, overwrite=overwrite, **export_options(config, data))


def export_options(config: Config, data) -> dict:
    """:func:`tf_lottery.export.save_model`'s options for a run: its preprocessing and the TFLite flags."""
    return {"preprocessing": serving.Preprocessing.from_data(data), "tflite": config.runtime.tflite,
            "tflite_dynamic_range": config.runtime.tflite_dynamic_range}


@contextlib.contextmanager
def started(config: Config, run: RunFolder):
    """Holds ``run``'s lock and creates the folder: the part of a run that writes.

    Yields the run's record when another process finished it while this one waited, else None.
    """
    with run.lock(config.runtime.wait_for_lock):
        finished = already_done(config, run, quiet=True, locked=True)
        if finished is None:
            run.start()
            log(f"run folder {run.path}")
        yield finished


def make_ticket(config: Config, run: RunFolder, dense, data, file: str = "scores.json") -> ScoringRecord:
    """Scores the dense model (θ0 here, trained weights for ``lottery``) and picks what to remove.

    Cached in ``file`` (scores.json), so a resumed run removes the same blocks.
    """
    trained = [name for name in ("train_ticket.json", "ticket_final.weights.h5", "resume_ticket") if run.exists(name)]
    # The decision is remade only while no ticket was trained from it.
    files = " ".join(run.file(name) for name in (file, *trained))
    remedy = (f"the ticket was trained from this decision: delete {files} and rerun {config.command_line()}, "
              "which scores and trains the ticket again")
    scoring = run.read_json(file, ScoringRecord.from_dict, recompute=not trained, remedy=remedy)
    if scoring is not None:
        log(f"decision found in {run.file(file)}: removing {_shown(scoring.ticket.removed)}")
        return scoring
    method = config.method
    if isinstance(data, TextData):  # the first sequences of the seeded shuffle
        x, y = data.arrays("train", method.score_sequences or SCORE_SEQUENCES)
    else:
        x, y = criteria.class_balanced_batch(*data.arrays("train", data.scoring_pool),
                                             per_class=method.score_per_class, seed=config.seed)
    scored_by = f" ({method.criterion} on {len(y)} examples)" if "criterion" in tickets.get(method.type).fields else ""
    article = "an" if method.type[:1] in "aeiou" else "a"
    log(f"making {article} {method.type} ticket of {dense.name}{scored_by}")
    with carbon.track("scoring", run.path, config.runtime.carbon_country) as energy:
        start = time.perf_counter()
        result = tickets.get(method.type)(dense, (x, y), method, config.seed)
        seconds = time.perf_counter() - start
    crash_point("scoring")
    scoring = ScoringRecord(result.record(), seconds, int(len(y)), Energy.from_dict(energy))
    run.write_json(file, scoring.to_dict())
    log(f"removing {_shown(scoring.ticket.removed)}")
    return scoring


def _shown(removed, most: int = 8) -> str:
    """A removal list for a log line (a filter ticket's can be hundreds long)."""
    return str(removed) if len(removed) <= most else f"{len(removed)} ({', '.join(removed[:most])}, ...)"


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


def measure(config: Config, run: RunFolder, name: str, model, data, training: TrainingRecord,
            removed=None, reference=None) -> ModelRecord:
    """Runs the configured evaluations on a trained model (each cached in ``run``) into its record.

    Args:
        reference: The trained dense network, for pairwise evaluations of a ticket (``cka``).
    """
    results = evals.run_cached(model, data, config.evaluation, run, name, log, reference=reference)
    return ModelRecord(model.name, len(surgery.blocks(surgery.families.block_model(model))), training, results,
                       removed)


def has_evals(record: ModelRecord, config: Config, side: str) -> bool:
    """Whether ``record`` (of ``side``: "dense" or "ticket") holds every evaluation ``config`` asks for."""
    return set(evals.wanted(config.evaluation, side)) <= set(record.evals)


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


def already_done(config: Config, run: RunFolder, quiet: bool = False, locked: bool = False) -> Optional[RunRecord]:
    """The record of a finished run, verified: its folder and its dense run's match their manifests, and it
    holds every requested evaluation (printing its table and writing summary.md again when it differs);
    else None, after setting aside what the run's stages must remake or retrain
    (:mod:`tf_lottery.experiments.integrity`).

    Args:
        quiet: Say nothing when the run lacks evaluations.
        locked: Whether the caller holds the run's lock (else it is taken here).

    Raises:
        ValueError: when the run lacks an evaluation and its weights were not kept (committed evidence):
            it is never trained again for that.
    """
    if not os.path.isdir(run.path):
        return None
    if not locked:
        with run.lock(config.runtime.wait_for_lock):
            return already_done(config, run, quiet, locked=True)
    damaged = run.verify()
    record = run.read_json("result.json", RunRecord.from_dict, recompute=True)  # remade from the stages' files
    if record is None or damaged:
        return None
    # The record names runs relative to the runs folder: in memory they are paths under this one.
    record = record.anchored(run.path, config.runtime.runs_dir)
    dense_folder = record.dense_run_folder
    if dense_folder and os.path.isdir(dense_folder):
        with folder_lock(dense_folder, config.runtime.wait_for_lock):
            if integrity.verify(dense_folder, "dense"):
                return None  # the dense run remakes (or retrains) its part, then this run's record is made again
            if integrity.read_manifest(dense_folder) is None:
                integrity.adopt(dense_folder, ["dense_final.weights.h5", theta_zero()])
    if not _same_dense(run, dense_folder):
        return None
    if not (has_evals(record.dense, config, "dense") and has_evals(record.ticket, config, "ticket")):
        absent = integrity.not_kept(run.path) + (integrity.not_kept(dense_folder) if dense_folder else [])
        if absent:
            wanted = sorted(set(evals.wanted(config.evaluation, "ticket")) - set(record.ticket.evals))
            raise ValueError(f"{run.path} lacks --evals={','.join(wanted) or 'its dense evaluations'}, and its "
                             f"weights were not kept ({', '.join(absent)}, named in manifest.json): it is not "
                             "trained again for that; run it in another --runs_dir to train and measure it")
        if not quiet:
            log(f"{run.path} ran before; measuring the evaluations it lacks")
        return None
    if integrity.read_manifest(run.path) is None:
        integrity.adopt(run.path, ["ticket_final.weights.h5"])
    log(f"this config already ran: {run.path} (delete the folder to run it again)")
    absent = integrity.not_kept(run.path) + (integrity.not_kept(dense_folder) if dense_folder else [])
    if absent:
        log(f"  verified from its small files; weights not kept: {', '.join(absent)}")
    # summary.md follows from the record: remade when missing or damaged (the same bytes, atomically,
    # so two processes doing it at once cannot clash).
    print(write_summary(config, run, record))
    return record


def theta_zero() -> str:
    """The file of a dense run's θ0 weights."""
    return "theta_0.weights.h5"


def _dense_input(dense_folder: Optional[str]) -> dict:
    """What a ticket's record was made from in its dense run: ``dense.json``'s digest (sealed in the ticket's manifest)."""
    file = os.path.join(dense_folder, "dense.json") if dense_folder else None
    return {"dense_json_sha256": manifest.file_digest(file)} if file and os.path.exists(file) else {}


def _same_dense(run: RunFolder, dense_folder: Optional[str]) -> bool:
    """Whether the dense run's ``dense.json`` is the one the ticket's record was made from; if not,
    the record and the summary are set aside (named) so that they are made again from the current one."""
    recorded = (integrity.read_manifest(run.path) or {}).get("made_from", {})
    if not recorded or _dense_input(dense_folder) == recorded:
        return True
    for name in ("result.json", "summary.md"):
        if run.exists(name):
            os.replace(run.file(name), run.file(name + ".damaged"))
    log(f"warning: {run.file('result.json')} was made from another {dense_folder}/dense.json; it is made "
        "again from the current one")
    return False


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


def write_summary(config: Config, run: RunFolder, record: RunRecord) -> str:
    """Writes ``summary.md`` (the run table under a title) unless it already holds just that; returns the table."""
    table = reports.run_table(record, config.runtime.runs_dir)
    removed = record.ticket.removed or []
    what = (f"Removed: {', '.join(removed)}.\n\n" if removed and len(removed) <= 32 else
            f"Removed: {len(removed)} ({', '.join(removed[:8])}, ...; all in scores.json).\n\n" if removed else "")
    text = f"# {config.experiment} {run.digest}\n\nPrecision: {config.precision}.\n\n{what}{table}"
    try:
        with open(run.file("summary.md"), encoding="utf-8") as handle:
            current = handle.read()
    except (OSError, UnicodeDecodeError):
        current = None
    if current != text:
        run.write_text("summary.md", text)
    return table


def plot_scores(config: Config, run: RunFolder, dense, scoring: ScoringRecord) -> None:
    """Writes scores.png: every block's score by stage, the removed ones marked (block scores only:
    the scores of a filter or weight ticket have no such plot)."""
    found = {b.name: b for b in surgery.find_blocks(surgery.families.block_model(dense))}
    if not set(scoring.ticket.scores) <= set(found):
        return
    plots.block_scores(scoring.ticket.scores, {n: b.stage for n, b in found.items()},
                       [n for n, b in found.items() if b.removable], scoring.ticket.removed,
                       config.method.criterion, scoring.ticket.prune_first, run.file("scores.png"))


def record_run(config: Config, run: RunFolder, data, ticket, trained: TrainingRecord, scoring: ScoringRecord,
               dense: ModelRecord, dense_run: RunFolder, rewind: Optional[Rewind] = None) -> RunRecord:
    """Measures the trained ticket, compares it with the dense record and writes the run record.

    Writes curves.png, result.json, summary.md and (``--export``) the ticket's export.

    Args:
        ticket: The trained ticket.
        trained: Its training record (from :func:`train_or_load`).
        scoring: The scoring record (from :func:`make_ticket`).
        dense: The measured dense record (``dense.json`` of the dense run).
        dense_run: The dense run's folder.
        rewind: For ``lottery``: how the ticket started.

    Returns:
        The :class:`~tf_lottery.results.records.RunRecord` written to result.json.
    """
    reference = trained_dense(config, data, dense_run) if evals.needs_reference(config.evaluation) else None
    measured = measure(config, run, "ticket", ticket, data, trained, scoring.ticket.removed, reference)
    restore_history(dense_run, "dense", dense.training)
    restore_history(run, "ticket", measured.training)
    timed = {"dense": curves.read_curve(dense_run.path, "dense", dense.training.timing),
             "ticket": curves.read_curve(run.path, "ticket", measured.training.timing)}
    plots.learning_curves({"dense": training.read_history(dense_run.file("history_dense.csv")),
                           "ticket": training.read_history(run.file("history_ticket.csv"))}, run.file("curves.png"),
                          timed=timed)
    exports = None
    if config.runtime.export:
        if not export.is_complete(run.file("export/ticket")):
            meta = ticket_metadata(config, run, scoring, measured.accuracy, rewind)
            save_export(config, ticket, run.file("export/ticket"), meta, data)
            publish(config, ticket.name, run.file("export/ticket"), run)
        exports = {"dense": dense_run.file("export/dense"), "ticket": run.file("export/ticket")}
    result = RunRecord(
        config_hash=run.digest, run_folder=run.path, dense_run_folder=dense_run.path,
        data={"train": data.size("train"), "val": data.size("val"), "test": data.size("test"),
              "input_shape": list(data.input_shape)},
        scoring=scoring, dense=dense, ticket=measured, comparison=Comparison.between(dense, measured),
        rewind=rewind, exports=exports,
    )
    table = write_summary(config, run, result)
    run.write_json("result.json", result.to_dict())
    run.seal(extra={"made_from": _dense_input(dense_run.path)})
    log(f"done: {run.path}")
    print(table)
    if config.data.task == "classify":
        print(spread_note(config, result.comparison.accuracy_pp))
    return result
