"""Training under frozen masks held by tfmot's ``prune_low_magnitude`` wrappers.

A lottery ticket's mask is decided once (from trained weights for IMP, from scores at
initialization for a filter mask) and must not change while the ticket retrains. tfmot's
schedules recompute masks from the current weights whenever they fire, so the wrappers
here get :class:`FrozenMasks`, a schedule that never fires, and the masks are assigned by
hand to the wrappers' mask variables. tfmot then multiplies every wrapped weight by its
mask before each forward pass, so masked weights stay exactly 0. After training the
wrappers are stripped (``strip_pruning``), the masks are checked to be unchanged and the
weights go back into the Keras 3 model, masked.

A masked training is not resumed after a kill (the optimizer state lives in tf_keras): it
restarts from its first epoch; the decision (the masks) is cached in the run folder.

Example:
    >>> masks = tl.filters.filter_masks(dense, removed)
    >>> fitted = fit_masked(ticket, masks, data, recipe, "runs/x", "ticket")
"""

from __future__ import annotations

import base64
import os
import sys
import time
import weakref
from typing import Dict, Mapping, Optional

import keras
import numpy as np

from tf_lottery import training
from tf_lottery.core.io import write_text_atomic
from tf_lottery.graph.heads import outputs_probabilities
from tf_lottery.graph.lineage import LINEAGE_ATTR
from tf_lottery.legacy import require_baselines
from tf_lottery.legacy.convert import copy_weights, to_tf_keras
from tf_lottery.surgery.filters import apply_masks
from tf_lottery.training.resume import history_csv, optimizer_steps, timing_of

Masks = Mapping[str, Mapping[str, np.ndarray]]  # {layer: {"kernel"|"bias"|"gamma"|"beta": 0/1 array}}

_ATTACHED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def attach(model: keras.Model, masks: Masks) -> keras.Model:
    """Records the masks a ticket trains under (read by :func:`fit_attached`); returns ``model``."""
    _ATTACHED[model] = {name: {w: np.asarray(m, "float32") for w, m in by.items()} for name, by in masks.items()}
    return model


def attached(model: keras.Model) -> Optional[Dict[str, Dict[str, np.ndarray]]]:
    """The masks attached to ``model``, or None."""
    return _ATTACHED.get(model)


def encode(masks: Masks) -> dict:
    """Masks as JSON: per weight its shape and its bits packed, base64 (a 470k-weight ResNet32: ~80 kB)."""
    return {name: {w: {"shape": list(np.shape(m)), "bits": base64.b64encode(
        np.packbits(np.asarray(m).ravel() != 0).tobytes()).decode("ascii")} for w, m in by.items()}
        for name, by in masks.items()}


def decode(encoded: dict) -> Dict[str, Dict[str, np.ndarray]]:
    """Inverse of :func:`encode` (float32 0/1 arrays)."""
    result = {}
    for name, by in encoded.items():
        result[name] = {}
        for w, packed in by.items():
            size = int(np.prod(packed["shape"]))
            bits = np.unpackbits(np.frombuffer(base64.b64decode(packed["bits"]), dtype=np.uint8))[:size]
            result[name][w] = bits.astype("float32").reshape(packed["shape"])
    return result


def masked_copy(model: keras.Model, masks: Masks, name: Optional[str] = None) -> keras.Model:
    """A copy of ``model`` (same architecture and layer names), its weights masked, the masks attached.

    Args:
        name: The copy's model name (default ``model``'s).
    """
    copy = keras.models.clone_model(model)
    if name is not None:
        copy = keras.Model(copy.input, copy.output, name=name)
    copy.set_weights(model.get_weights())
    if hasattr(model, LINEAGE_ATTR):
        setattr(copy, LINEAGE_ATTR, getattr(model, LINEAGE_ATTR))
    apply_masks(copy, masks)
    return attach(copy, masks)


def fit_attached(model: keras.Model, data, recipe, workdir: str, name: str, **kwargs) -> dict:
    """:func:`fit_masked` under the masks attached to ``model`` (a masked method's ``fit``).

    Raises:
        ValueError: if ``model`` has no masks attached.
    """
    masks = attached(model)
    if masks is None:
        raise ValueError(f"model {model.name!r} has no masks attached; make it with a masked method's apply")
    return fit_masked(model, masks, data, recipe, workdir, name, **kwargs)


def frozen_schedule():
    """A tfmot pruning schedule that never updates a mask (instantiated lazily: tfmot is imported here)."""
    import tensorflow as tf
    from tensorflow_model_optimization.sparsity.keras import PruningSchedule

    class FrozenMasks(PruningSchedule):
        """Never prune: the masks stay what they were set to."""

        def __call__(self, step):
            return tf.constant(False), tf.constant(0.0)

        def get_config(self):
            return {"class_name": "FrozenMasks", "config": {}}

    return FrozenMasks()


def _weight_attr(layer, variable) -> str:
    for attr in ("kernel", "bias", "gamma", "beta"):
        if getattr(layer, attr, None) is variable:
            return attr
    raise ValueError(f"layer {layer.name!r}: tfmot prunes a weight tf_lottery does not mask ({variable.name})")


def wrap(legacy, masks: Masks):
    """Wraps the layers of a tf_keras model named in ``masks`` with frozen, hand-set masks.

    Returns:
        The wrapped tf_keras model (sharing the weights of ``legacy``).

    Raises:
        ValueError: when a wrapped layer's prunable weights are not exactly those masked.
    """
    import tf_keras
    from tensorflow_model_optimization.sparsity.keras import prune_low_magnitude

    def clone(layer):
        if layer.name in masks:
            return prune_low_magnitude(layer, pruning_schedule=frozen_schedule())
        return layer.__class__.from_config(layer.get_config())

    wrapped = tf_keras.models.clone_model(legacy, clone_function=clone)
    copy_weights(legacy, wrapped)
    for layer in wrapped.layers:
        if layer.name not in masks and getattr(layer, "layer", layer).name not in masks:
            continue
        inner = layer.layer
        wanted = dict(masks[inner.name])
        for weight, mask, _ in layer.pruning_vars:
            attr = _weight_attr(inner, weight)
            if attr not in wanted:
                raise ValueError(f"layer {inner.name!r}: no mask given for its prunable {attr}")
            mask.assign(np.asarray(wanted.pop(attr), dtype=mask.dtype.as_numpy_dtype).reshape(mask.shape))
            weight.assign(weight.numpy() * mask.numpy())
        if wanted:
            raise ValueError(f"layer {inner.name!r}: tfmot cannot mask its {sorted(wanted)}")
    return wrapped


def current_masks(wrapped) -> Dict[str, Dict[str, np.ndarray]]:
    """The masks the wrappers of ``wrapped`` hold now."""
    found: Dict[str, Dict[str, np.ndarray]] = {}
    for layer in wrapped.layers:
        if hasattr(layer, "pruning_vars"):
            found[layer.layer.name] = {_weight_attr(layer.layer, w): m.numpy() for w, m, _ in layer.pruning_vars}
    return found


def masks_equal(a: Masks, b: Masks) -> bool:
    """Whether two mask sets are identical, layer by layer and weight by weight."""
    return set(a) == set(b) and all(
        set(a[n]) == set(b[n]) and all(np.array_equal(np.asarray(a[n][w]), np.asarray(b[n][w])) for w in a[n])
        for n in a)


def _needs_prunable_class(masks: Masks) -> list:
    """Layers with a masked weight tfmot does not prune by default (not just a kernel)."""
    return [name for name, by_weight in masks.items() if set(by_weight) - {"kernel"}]


def fit_masked(model: keras.Model, masks: Masks, data, recipe, workdir: str, name: str, verbose=None,
               tensorboard: bool = False, extra_callbacks=()) -> dict:
    """Trains a Keras 3 ``model`` under frozen ``masks`` with tfmot, like :func:`tf_lottery.training.fit`.

    The model is rebuilt in tf_keras (weights bit-exact), wrapped (:func:`wrap`), trained by
    ``recipe`` on the same data stream as ``train.fit`` (same seeded batches and
    augmentation), stripped, and its weights, masked, copied back into ``model``.

    Args:
        model: The Keras 3 ticket (its weights are the starting point; changed in place).
        masks: ``{layer: {weight: 0/1 array}}``.
        data, recipe, workdir, name, verbose: As for :func:`tf_lottery.training.fit`.
        tensorboard: Also write TensorBoard logs.
        extra_callbacks: Keras 3 callbacks are not accepted here (tf_keras trains).

    Returns:
        ``{"history", "timing", "steps", "epochs"}`` as :func:`tf_lottery.training.fit` returns.

    Raises:
        TrainingDiverged: if the loss became NaN or infinite.
        RuntimeError: if a mask changed during training (it must not).
        ValueError: for extra callbacks, or a training split smaller than one batch.
    """
    require_baselines("tl.legacy.masked.fit_masked")
    import tf_keras
    from tensorflow_model_optimization.sparsity.keras import UpdatePruningStep, strip_pruning

    if extra_callbacks:
        raise ValueError("a masked (tfmot) training takes no extra Keras 3 callbacks")
    steps_per_epoch = training.check_fits(recipe, data.size("train"))
    epochs, per_epoch = recipe.plan(steps_per_epoch)
    os.makedirs(workdir, exist_ok=True)
    wrapped = wrap(to_tf_keras(model, prunable=_needs_prunable_class(masks)), masks)
    rate = recipe.schedule(steps_per_epoch, library=tf_keras)
    wrapped.compile(
        optimizer=tf_keras.optimizers.SGD(rate, momentum=recipe.momentum, nesterov=recipe.nesterov),
        loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=not outputs_probabilities(model)),
        metrics=[tf_keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    history_path = os.path.join(workdir, f"history_{name}.csv")
    total = recipe.total_steps(steps_per_epoch)
    timer = _EpochTimer(history_path, total)
    callbacks = [UpdatePruningStep(), tf_keras.callbacks.TerminateOnNaN(), timer]
    if tensorboard:
        callbacks.append(tf_keras.callbacks.TensorBoard(os.path.join(workdir, "tensorboard", name)))
    has_val = data.size("val") > 0
    call_start = time.perf_counter()
    wrapped.fit(data.train_pipeline(recipe.batch_size), epochs=epochs, steps_per_epoch=per_epoch,
                validation_data=data.eval_pipeline("val", 256) if has_val else None, callbacks=callbacks,
                shuffle=False, verbose=(1 if sys.stdout.isatty() else 2) if verbose is None else verbose)
    fit_call_seconds = time.perf_counter() - call_start
    losses = [e["logs"].get("loss", float("nan")) for e in timer.epochs]
    if not losses or not np.all(np.isfinite(losses)):
        raise training.TrainingDiverged(f"{name}: the training loss became NaN or infinite (history: {losses[-3:]}); "
                                     "lower the learning rate or check the data")
    if not masks_equal(current_masks(wrapped), {n: masks[n] for n in masks}):
        raise RuntimeError(f"{name}: a tfmot mask changed during training; the ticket is not the one decided")
    copy_weights(strip_pruning(wrapped), model)
    apply_masks(model, masks)  # the last optimizer step moved masked weights; the next forward would re-mask
    training.compile_model(model, recipe, steps_per_epoch)
    model.optimizer.build(model.trainable_variables)  # a saved .keras then loads without an optimizer mismatch
    timing = {**timing_of(timer.epochs, recipe.batch_size, per_epoch), "fit_call_seconds": fit_call_seconds}
    return {"history": training.read_history(history_path), "timing": timing, "steps": total, "epochs": epochs}


def _EpochTimer(history_path: str, total_steps: int):
    """A tf_keras callback timing every epoch, writing the history CSV and ending training after
    ``total_steps`` optimizer steps (as ``train.fit`` does)."""
    import tf_keras

    class EpochTimer(tf_keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.epochs = []

        def on_train_begin(self, logs=None):
            self._train_begin, self._first = time.perf_counter(), True

        def on_epoch_begin(self, epoch, logs=None):
            self._epoch_begin = time.perf_counter()
            self._steps_before = optimizer_steps(self.model)

        def on_train_batch_end(self, batch, logs=None):
            if optimizer_steps(self.model) >= total_steps:
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            setup = self._epoch_begin - self._train_begin if self._first else 0.0
            self._first = False
            self.epochs.append({"epoch": epoch, "seconds": time.perf_counter() - self._epoch_begin,
                                "setup_seconds": setup, "session": 0,
                                "steps": optimizer_steps(self.model) - self._steps_before,
                                "logs": {k: float(v) for k, v in (logs or {}).items()}})
            write_text_atomic(history_path, history_csv(self.epochs))

    return EpochTimer()
