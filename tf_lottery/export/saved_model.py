"""Exporting tickets: a SavedModel for TF pipelines, a ``.keras`` file, TFLite, and metadata.

``save_model(model, path, preprocessing=...)`` writes, atomically (a temporary folder, then a rename):

* ``saved_model/``: two signatures (:mod:`tf_lottery.export.serving`): ``serving_default`` takes raw
  images as the dataset stores them (uint8, native size, any batch) with the run's
  preprocessing in the graph, ``preprocessed`` takes the model's own input; both return
  ``logits``, ``probabilities``, ``class`` and ``features``. It loads with
  ``tf.saved_model.load`` (or ``keras.layers.TFSMLayer``) in a process that has TensorFlow and
  not tf_lottery;
* ``model.keras``: the Keras model (preprocessed inputs in, the model's outputs out); loads
  with ``keras.models.load_model`` in safe mode, no custom objects (physical removal leaves
  no masks), for models of stock Keras layers and ``keras.ops``; a model with ``Lambda``
  layers (Python code) needs ``safe_mode=False``, which ``metadata.json`` says under
  ``keras_safe_mode``;
* ``mean.npy``: the per-pixel mean the preprocessing subtracts;
* with ``tflite=True``: ``model.tflite`` (float32) and, with ``tflite_dynamic_range=True``,
  ``model_dynamic_range.tflite`` (int8 weights), both converted from ``serving_default``;
* ``metadata.json``: lineage (architecture spec and removed blocks), criterion, scores, the
  signatures, the preprocessing and class names, the sizes of the SavedModel and of each
  ``.tflite`` file, and whatever the caller adds (seed, config hash, metrics).

An existing, complete export is never overwritten unless ``overwrite=True``; an empty or
partial one (only export files, no ``metadata.json``, which is written last) is replaced.
"""

from __future__ import annotations

import json
import os
from typing import Optional

import keras
import numpy as np

from tf_lottery import graph
from tf_lottery.export import serving
from tf_lottery.core.faults import crash_point
from tf_lottery.core.io import atomic_path, ensure_free_space, state_bytes, write_json_atomic
from tf_lottery.graph.lineage import lineage


def is_complete(path: str) -> bool:
    """Whether ``path`` holds a finished export: ``metadata.json`` is written last, and the folder
    only takes its name once everything in it is written."""
    return os.path.exists(os.path.join(path, "metadata.json")) and os.path.exists(
        os.path.join(path, "saved_model", "saved_model.pb"))


EXPORT_FILES = {"saved_model", "model.keras", "mean.npy", "model.tflite", "model_dynamic_range.tflite",
                "metadata.json"}


def save_model(model: keras.Model, path: str, metadata: Optional[dict] = None, overwrite: bool = False,
               preprocessing: Optional[serving.Preprocessing] = None, tflite: bool = False,
               tflite_dynamic_range: bool = False) -> str:
    """Exports ``model`` to ``path`` (see the module docstring).

    Args:
        model: Any functional model from tf_lottery (dense or ticket).
        path: Export folder; must not exist (or be an empty or partial export) unless ``overwrite``.
        metadata: Extra JSON-ready fields for ``metadata.json``.
        overwrite: Replace an existing export.
        preprocessing: How raw images become the model's input
            (``tl.serving.Preprocessing.from_data(data)``); None: the raw signature takes the
            model's own input.
        tflite: Also write ``model.tflite``.
        tflite_dynamic_range: Also write ``model_dynamic_range.tflite`` (implies ``tflite``).

    Returns:
        ``path``.

    Raises:
        FileExistsError: if ``path`` exists and ``overwrite`` is False.

    Example:
        >>> save_model(ticket, "exports/ticket", preprocessing=tl.serving.Preprocessing.from_data(data))
    """
    path = os.path.abspath(path)
    if os.path.exists(path) and not overwrite:
        ours = os.path.isdir(path) and set(os.listdir(path)) <= EXPORT_FILES
        if is_complete(path) or not ours:  # a finished export, or something that is not an export
            raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    preprocessing = preprocessing or serving.Preprocessing.none(model)
    ensure_free_space(os.path.dirname(path), 6 * state_bytes(model) + 8 * 2**20)  # SavedModel, .keras, TFLite
    lambdas = [layer.name for layer in graph.leaf_layers(model) if isinstance(layer, keras.layers.Lambda)]
    with atomic_path(path, folder=True) as staging:
        os.makedirs(staging)
        serving.write_saved_model(model, preprocessing, os.path.join(staging, "saved_model"))
        model.save(os.path.join(staging, "model.keras"))
        np.save(os.path.join(staging, "mean.npy"), preprocessing.mean)
        crash_point("export")
        sizes = {"saved_model_bytes": serving.folder_bytes(os.path.join(staging, "saved_model"))}
        if tflite or tflite_dynamic_range:
            converted = [serving.convert_tflite(os.path.join(staging, "saved_model"),
                                                os.path.join(staging, "model.tflite"))]
            if tflite_dynamic_range:
                converted.append(serving.convert_tflite(os.path.join(staging, "saved_model"),
                                                        os.path.join(staging, "model_dynamic_range.tflite"),
                                                        dynamic_range=True))
            sizes["tflite"] = converted
        payload = {
            "model_name": model.name,
            "lineage": lineage(model),
            "input": {"name": "image", "dtype": preprocessing.raw_dtype, "shape": list(preprocessing.raw_shape)},
            "serving_signature": "serving_default",
            "signatures": {
                "serving_default": {"input": "image: raw images", "outputs": list(serving.OUTPUTS)},
                "preprocessed": {"input": "image: the model's input", "outputs": list(serving.OUTPUTS)},
            },
            "preprocessing": preprocessing.to_dict(),
            "class_names": list(preprocessing.class_names),
            "params": int(model.count_params()),
            "sizes": sizes,
            "keras_safe_mode": not lambdas,
            **({"lambda_layers": lambdas} if lambdas else {}),
            **(metadata or {}),
        }
        write_json_atomic(os.path.join(staging, "metadata.json"), payload)
    return path


def read_metadata(path: str) -> dict:
    """The ``metadata.json`` of an export folder.

    Raises:
        FileNotFoundError: naming the folder when it holds no finished export.
    """
    file = os.path.join(path, "metadata.json")
    if not os.path.exists(file):
        raise FileNotFoundError(f"{path} holds no finished export (no metadata.json)")
    with open(file) as handle:
        return json.load(handle)


def save_ticket(result, path: str, metadata: Optional[dict] = None, overwrite: bool = False, **options) -> str:
    """Exports a :class:`~tf_lottery.tickets.TicketResult` (or a model) with its provenance.

    ``options`` are :func:`save_model`'s (``preprocessing``, ``tflite``, ``tflite_dynamic_range``).

    Example:
        >>> result = tl.find_ticket(model, "grasp", num_blocks=3, data=(x, y))
        >>> tl.export.save_ticket(result, "exports/ticket", preprocessing=tl.serving.Preprocessing.from_data(data))
    """
    if isinstance(result, keras.Model):
        return save_model(result, path, metadata, overwrite, **options)
    extra = {"ticket": result.to_dict(), **(metadata or {})}
    return save_model(result.model, path, extra, overwrite, **options)
