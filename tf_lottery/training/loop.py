"""Training a model by a recipe (:mod:`tf_lottery.training.recipe`), and its callbacks.

Callbacks: a progress bar (``verbose=1`` at a terminal, one line per epoch in logs),
optional TensorBoard, ``TerminateOnNaN`` turned into :class:`TrainingDiverged`, and the
crash-safe epoch checkpoint of :mod:`tf_lottery.training.resume`, which also times every epoch and
writes the history CSV (a run killed midway resumes where it stopped when started again).
"""

from __future__ import annotations

import csv
import os
import sys
import time
from typing import Optional

import keras
import numpy as np

from tf_lottery.core import arguments
from tf_lottery.runtime import distribute, keras_patches
from tf_lottery.graph.heads import outputs_probabilities
from tf_lottery.training.recipe import Recipe, to_steps
from tf_lottery.training.resume import EpochCheckpoint, optimizer_steps


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


class SaveWeightsAt(keras.callbacks.Callback):
    """Saves the weights after the given epochs (θ_i: the weights after i epochs) and after the
    given optimizer steps (θ_k of a rewind to step k).

    Steps are counted by the optimizer's ``iterations``, so a run resumed after a kill counts on
    from where it stood; a step inside an epoch the kill interrupted is saved again on the rerun,
    with the same weights.

    Args:
        epochs: Epoch counts i >= 1 (θ0 is saved before training by the caller).
        save: ``save(model, i)``, e.g. writing ``theta_{i}.weights.h5`` atomically.
        steps: Optimizer step counts k >= 1.
        save_step: ``save_step(model, k)`` (needed when ``steps`` is not empty).

    Raises:
        TypeError: for ``steps`` without ``save_step``.

    Example:
        >>> SaveWeightsAt([25, 50], save=lambda m, i: m.save_weights(f"theta_{i}.weights.h5"))
    """

    def __init__(self, epochs, save, steps=(), save_step=None):
        super().__init__()
        if steps and save_step is None:
            raise TypeError("SaveWeightsAt needs save_step to save at steps")
        self.epochs, self.save = set(epochs), save
        self.steps, self.save_step = set(steps), save_step

    def on_train_batch_end(self, batch, logs=None):
        """Saves θ_k when the optimizer has just taken step k."""
        if self.steps:  # reads one scalar a step, only when a step is wanted
            done = optimizer_steps(self.model)
            if done in self.steps:
                self.save_step(self.model, done)

    def on_epoch_end(self, epoch, logs=None):
        """Saves θ_i after epoch i."""
        if epoch + 1 in self.epochs:
            self.save(self.model, epoch + 1)


class StopAtStep(keras.callbacks.Callback):
    """Ends training after ``total`` optimizer steps: a length in steps that is not whole epochs
    trains its last epoch short (``fit`` runs whole epochs of ``steps_per_epoch``).

    Example:
        >>> stop = StopAtStep(Recipe("500it", lr_drops=()).total_steps(390))   # epochs of 390 and 110 steps
    """

    def __init__(self, total: int):
        super().__init__()
        self.total = total

    def on_train_batch_end(self, batch, logs=None):
        if optimizer_steps(self.model) >= self.total:
            self.model.stop_training = True


def make_deterministic() -> None:
    """Same command, same weights: TensorFlow op determinism and one thread per op and between ops.

    Call it before TensorFlow runs its first op (the command line does, for ``--deterministic``).
    Seeds are set per run (``keras.utils.set_random_seed``) as always.

    Raises:
        RuntimeError: if TensorFlow has already started and its threads cannot change.

    Example:
        >>> import tf_lottery as tl
        >>> tl.train.make_deterministic()   # first thing in the process
    """
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()
    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError as error:
        raise RuntimeError(f"--deterministic must be set before TensorFlow starts: {error}") from None


def compile_model(model: keras.Model, recipe: Recipe, steps_per_epoch: int) -> None:
    """Compiles with the recipe's optimizer, cross-entropy on logits (or probabilities) and accuracy.

    The accuracy is a weighted metric: where the data gives sample weights (a language model's
    batches weigh padding 0) it counts the weighted positions only; without weights it is the
    plain accuracy. It also replaces the metrics a keras_hub task would add by itself. A
    ``keras.distillation.Distiller`` (:mod:`tf_lottery.training.healing`) gets the recipe's optimizer only:
    its loss is its distillation losses', and it has no accuracy on labels.

    Args:
        model: A ``keras.Model``.
        recipe: The :class:`~tf_lottery.training.Recipe` (its optimizer and schedule).
        steps_per_epoch: Optimizer steps per epoch (the schedule's lengths in epochs become steps).

    Raises:
        TypeError: for a model or recipe of another type.
        ValueError: for ``steps_per_epoch`` below 1.

    Example:
        >>> compile_model(ticket, Recipe(length="3ep", batch_size=64), steps_per_epoch=100)
        >>> ticket.optimizer.__class__.__name__
        'SGD'
    """
    arguments.instance("model", model, keras.Model, "a keras.Model")
    arguments.instance("recipe", recipe, Recipe, "a tl.train.Recipe, e.g. Recipe(length='3ep')")
    arguments.count("steps_per_epoch", steps_per_epoch, least=1)
    if isinstance(model, keras.distillation.Distiller):  # learns its teacher's outputs: no labels, no accuracy
        model.compile(optimizer=recipe.make_optimizer(steps_per_epoch), loss="mse",  # (unused: no student loss)
                      jit_compile=distribute.current().jit_compile)
        return
    model.compile(
        optimizer=recipe.make_optimizer(steps_per_epoch),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=not outputs_probabilities(model)),
        weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        jit_compile=distribute.current().jit_compile,
    )
    distribute.prepare_fit(model)


def read_history(path: str) -> dict:
    """The CSV history as ``{column: [values]}`` (epochs in order, resumed runs included).

    Args:
        path: A history CSV (``history_<name>.csv`` in a run folder).

    Returns:
        ``{column: [one float per epoch]}``; ``{}`` when the file does not exist.

    Raises:
        ValueError: naming the file when it does not hold one row of numbers per epoch.

    Example:
        >>> read_history("runs/mine/history_ticket.csv")["val_accuracy"]
    """
    if not os.path.exists(path):
        return {}
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        history = {key: [float(r[key]) for r in rows] for key in (rows[0] if rows else {})}
        if rows and "epoch" not in history:
            raise ValueError("no epoch column")
    except (OSError, UnicodeDecodeError, ValueError, TypeError, KeyError) as error:
        raise ValueError(f"{path} is damaged ({error}): it should hold one row of numbers per finished epoch "
                         "(epoch, loss, accuracy, ...); it cannot be remade without training: delete it with the "
                         "model's final weights and training record, and rerun the run's command") from None
    return history


def check_fits(recipe: Recipe, train_size: int) -> int:
    """Steps per epoch of ``recipe`` on a training split of ``train_size`` examples (give the
    global recipe, :meth:`tf_lottery.runtime.distribute.Execution.global_recipe`, under several replicas).

    Args:
        recipe: The recipe (its batch size).
        train_size: Examples in the training split.

    Returns:
        Whole batches per epoch.

    Raises:
        ValueError: if the training split is smaller than one batch.

    Example:
        >>> check_fits(Recipe(batch_size=128), 50000)
        390
    """
    steps_per_epoch = train_size // recipe.batch_size
    if steps_per_epoch < 1:
        replicas = distribute.current().replicas
        batch = (f"--batch_size={recipe.batch_size}" if replicas == 1 else
                 f"{recipe.batch_size} = --batch_size={recipe.batch_size // replicas} x {replicas} replicas")
        raise ValueError(f"the training split ({train_size} examples) is smaller than one batch ({batch}); "
                         "lower --batch_size or raise --train_size")
    return steps_per_epoch


def check_lengths(recipe: Recipe, steps_per_epoch: int) -> None:
    """Refuses drops and a warm-up that do not fall inside the training, whatever their units: lengths in
    epochs and in steps compare only once an epoch's steps are known (a config's check, before its run).

    Args:
        recipe: The recipe.
        steps_per_epoch: Optimizer steps per epoch.

    Raises:
        ValueError: naming the flag, its value and the training's length in steps.

    Example:
        >>> check_lengths(Recipe(length="500it", lr_drops=("2ep",)), 390)
        Traceback (most recent call last):
        ValueError: --lr_drops=2ep is at or past the end of the training (--length=500it = 500 steps of 390 per epoch); ...
    """
    total = to_steps(recipe.length, steps_per_epoch)
    for drop in recipe.lr_drops:
        if to_steps(drop, steps_per_epoch) >= total:
            raise ValueError(f"--lr_drops={drop} is at or past the end of the training (--length={recipe.length} = "
                             f"{total} steps of {steps_per_epoch} per epoch); drops must fall within it")
    if to_steps(recipe.warmup, steps_per_epoch, allow_zero=True) >= total:
        raise ValueError(f"--warmup={recipe.warmup} is not shorter than the training (--length={recipe.length} = "
                         f"{total} steps of {steps_per_epoch} per epoch)")


def check_classes(model: keras.Model, data) -> None:
    """Refuses a classifier with fewer outputs than the data's classes (a label would index past the logits).

    Raises:
        ValueError: naming both counts.
    """
    classes, outputs = getattr(data, "num_classes", None), getattr(model, "outputs", None)
    if getattr(data, "task", "classify") != "classify" or not classes or outputs is None or len(outputs) != 1:
        return
    units = model.outputs[0].shape[-1]
    if units is not None and units < classes:
        raise ValueError(f"the data has {classes} classes (labels 0 to {classes - 1}) but {model.name!r} outputs "
                         f"{units}: build the model with num_classes={classes}")


def fit(model: keras.Model, data, recipe: Recipe, workdir: str, name: str,
        verbose: Optional[int] = None, tensorboard: bool = False, extra_callbacks=()) -> dict:
    """Trains ``model`` by ``recipe`` on ``data`` (a :class:`~tf_lottery.data.PreparedData`).

    Files in ``workdir``: ``history_{name}.csv`` (each finished epoch once) and
    ``resume_{name}/``, the crash-safe training state (:mod:`tf_lottery.training.resume`): a rerun
    after a kill resumes at the last finished epoch. The state is left in place; the
    caller discards it (:func:`tf_lottery.training.resume.discard`) once the final weights are saved.

    Under several replicas (:mod:`tf_lottery.runtime.distribute`) the recipe's batch is per replica:
    the run trains on the global batch with the learning rate scaled by ``--lr_scaling``.

    Args:
        model: An uncompiled model.
        data: Prepared data; its "val" split, when not empty, is evaluated every epoch.
        recipe: The recipe.
        workdir: Run folder.
        name: "dense" or "ticket": names the files.
        verbose: Keras verbosity (default: progress bar at a terminal, else a line per epoch).
        tensorboard: Also write TensorBoard logs to ``workdir/tensorboard/{name}``.
        extra_callbacks: More Keras callbacks; they run before the epoch's checkpoint, so
            what they save at the end of an epoch is there whenever the epoch counts as done.

    Returns:
        ``{"history": {...}, "timing": {...}, "steps": int, "epochs": int}``; the timing
        covers every finished epoch, those of earlier sessions of a resumed run included.

    Raises:
        TrainingDiverged: if the loss became NaN or infinite.
        TypeError: for a model, data, recipe, folder or name of the wrong type.
        ValueError: if the training split is smaller than one batch, or the model has fewer outputs
            than the data's classes.

    Example:
        >>> data = tl.data.prepare(tl.data.DataOptions("synthetic", train_size=256, val_size=64, test_size=64))
        >>> model = tl.models.cifar_resnet(20, input_shape=data.input_shape, num_classes=data.num_classes)
        >>> outcome = fit(model, data, Recipe(length="1ep", batch_size=64, lr_drops=()), "runs/mine", "dense")
        >>> outcome["epochs"], outcome["steps"]
        (1, 4)
    """
    arguments.instance("model", model, keras.Model, "a keras.Model")
    arguments.instance("recipe", recipe, Recipe, "a tl.train.Recipe, e.g. Recipe(length='3ep')")
    if not callable(getattr(data, "size", None)) or not callable(getattr(data, "train_pipeline", None)):
        raise TypeError(f"data must be prepared data (tl.data.prepare(...), a PreparedData or TextData); got "
                        f"{type(data).__name__}")
    arguments.instance("workdir", workdir, (str, os.PathLike), "a folder path")
    arguments.instance("name", name, str, "the model's name in the run folder, e.g. 'dense'")
    check_classes(model, data)
    recipe = distribute.current().global_recipe(recipe)
    steps_per_epoch = check_fits(recipe, data.size("train"))
    epochs, per_epoch = recipe.plan(steps_per_epoch)
    os.makedirs(workdir, exist_ok=True)
    compile_model(model, recipe, steps_per_epoch)
    history_path = os.path.join(workdir, f"history_{name}.csv")
    checkpoint = EpochCheckpoint(workdir, name, history_path)
    several_workers = distribute.current().workers > 1
    start = checkpoint.restore(model, gather=distribute.gather_from_workers if several_workers else None)
    total = recipe.total_steps(steps_per_epoch)
    callbacks = [keras.callbacks.TerminateOnNaN(), *extra_callbacks]
    if total < epochs * per_epoch:
        callbacks.insert(0, StopAtStep(total))
    if tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(os.path.join(workdir, "tensorboard", name)))
    callbacks.append(checkpoint)
    has_val = data.size("val") > 0
    batches = data.train_pipeline(recipe.batch_size, start_step=start * per_epoch)  # those an unbroken run gets
    call_start = time.perf_counter()
    with keras_patches.fused_batch_norm(model):  # the same step, batch norm in TensorFlow's fused kernel
        model.fit(
            batches,
            epochs=epochs,
            initial_epoch=start,
            steps_per_epoch=per_epoch,
            validation_data=data.eval_pipeline("val", 256) if has_val else None,
            callbacks=callbacks,
            shuffle=False,  # the pipeline shuffles, seeded
            verbose=(1 if sys.stdout.isatty() else 2) if verbose is None else verbose,
        )
    fit_call_seconds = time.perf_counter() - call_start
    history = read_history(history_path)
    losses = history.get("loss", [])
    if not losses or not np.all(np.isfinite(losses)):
        raise TrainingDiverged(f"{name}: the training loss became NaN or infinite (history: {losses[-3:]}); "
                               "lower the learning rate or check the data")
    timing = {**checkpoint.timing(recipe.batch_size, per_epoch), "fit_call_seconds": fit_call_seconds}
    return {"history": history, "timing": timing, "steps": total, "epochs": epochs}


def evaluate(model: keras.Model, data, split: str = "test", batch_size: int = 256) -> dict:
    """Loss and accuracy of a compiled model on a split.

    Args:
        model: A compiled Keras model (:func:`compile_model`).
        data: Prepared data (:func:`tf_lottery.data.prepare`).
        split: "train", "val" or "test".
        batch_size: Images per batch.

    Returns:
        ``{"loss", "accuracy", "examples"}``.

    Raises:
        TypeError: for a model that is not a compiled Keras model, or data that is not prepared data.
        ValueError: for an unknown split.

    Example:
        >>> evaluate(ticket, data)["accuracy"]
    """
    if not isinstance(model, keras.Model) or getattr(model, "optimizer", None) is None:
        raise TypeError(f"model must be a compiled keras.Model (tl.train.compile_model); got {type(model).__name__}")
    if not hasattr(data, "eval_pipeline") or not hasattr(data, "size"):
        raise TypeError(f"data must be prepared data (tl.data.prepare(...)); got {type(data).__name__}")
    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be one of train, val, test; got {split!r}")
    loss, accuracy = model.evaluate(data.eval_pipeline(split, batch_size), verbose=0)
    return {"loss": float(loss), "accuracy": float(accuracy), "examples": data.size(split)}
