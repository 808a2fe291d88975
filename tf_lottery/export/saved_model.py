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


EXPORT_FILES = {"saved_model", "model.keras", "preset", "mean.npy", "model.tflite", "model_dynamic_range.tflite",
                "metadata.json"}


class DamagedExport(ValueError):
    """An export folder whose ``metadata.json`` does not parse or names files that are not there."""


def _metadata_or_none(path: str) -> Optional[dict]:
    """The parsed ``metadata.json`` of ``path``, None when it is missing, unreadable or not an object."""
    try:
        with open(os.path.join(path, "metadata.json")) as handle:
            payload = json.load(handle)
    except (OSError, ValueError):
        return None
    return payload if isinstance(payload, dict) else None


def is_complete(path: str) -> bool:
    """Whether ``path`` holds a finished export: its ``metadata.json`` (written last) parses, and the
    files it names are there (exports from before tf_lottery 0.9, which name none: the SavedModel
    and the ``.keras`` file)."""
    payload = _metadata_or_none(path)
    if payload is None:
        return False
    files = payload.get("files", ["saved_model", "model.keras"])
    if not isinstance(files, list) or not all(isinstance(name, str) and name in EXPORT_FILES for name in files):
        return False
    return all(os.path.exists(os.path.join(path, name)) for name in files) and os.path.exists(
        os.path.join(path, "saved_model", "saved_model.pb"))


def _check_target(path, overwrite: bool) -> str:
    """The absolute export folder for ``path``, after refusing what must never be replaced.

    Only a folder that is an export (export files and nothing else) is ever replaced: an empty
    path, the working folder and its parents, a file, and a folder holding anything else are
    refused whatever ``overwrite`` says.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a folder path (a str); got {path!r}")
    text = os.fspath(path)
    if not str(text).strip():
        raise ValueError("path is empty; name the export folder, e.g. exports/ticket")
    target = os.path.abspath(text)
    here = os.path.abspath(os.getcwd())
    if target == here or here.startswith(target.rstrip(os.sep) + os.sep) or target == os.sep:
        raise ValueError(f"path={text!r} is the working folder or one of its parents ({target}); an export "
                         "replaces its folder whole, so name a folder of its own, e.g. exports/ticket")
    if os.path.lexists(target):
        if not os.path.isdir(target) or os.path.islink(target):
            raise FileExistsError(f"{target} exists and is not an export folder (a file or a link); "
                                  "choose another path")
        others = sorted(set(os.listdir(target)) - EXPORT_FILES)
        if others:
            raise FileExistsError(f"{target} holds files that are not an export's ({', '.join(others[:5])}"
                                  f"{' ...' if len(others) > 5 else ''}); it is never replaced, even with "
                                  "overwrite=True: choose another path")
        if is_complete(target) and not overwrite:
            raise FileExistsError(f"{target} holds a finished export; pass overwrite=True to replace it")
    parent = os.path.dirname(target)
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as error:
        raise OSError(error.errno, f"cannot create the export's folder {parent}: {error.strerror}", parent) from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(f"cannot write the export into {parent}: the folder is not writable")
    return target


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
        TypeError: for a ``model`` that is not a Keras model or a ``path`` that is not a path.
        ValueError: for an empty path, the working folder or one of its parents, or a model
            without a graph (a subclassed model: export a functional one).
        FileExistsError: if ``path`` is a finished export and ``overwrite`` is False, or is
            anything but an export folder (then even with ``overwrite``: nothing else is replaced).
        OSError: naming the folder when it cannot be created or written, or the disk is full.

    Example:
        >>> save_model(ticket, "exports/ticket", preprocessing=tl.serving.Preprocessing.from_data(data))
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras.Model; got {type(model).__name__} ({model!r:.60})")
    if not getattr(model, "inputs", None):  # subclassed: no graph to read the lineage or serve from
        raise ValueError(f"model {model.name!r} is a subclassed model ({type(model).__name__}) with no graph; "
                         "save_model exports functional or Sequential models (build it with keras.Input)")
    path = _check_target(path, overwrite)
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
            "files": sorted([*os.listdir(staging), "metadata.json"]),  # what a finished export holds
            "model_name": model.name,
            "lineage": lineage(model),
            "input": {"name": "image", "dtype": preprocessing.raw_dtype, "shape": list(preprocessing.raw_shape)},
            "serving_signature": "serving_default",
            "signatures": {
                "serving_default": {"input": "image: raw images",
                                    "outputs": list(serving.OUTPUTS) + serving.head_names(model)},
                "preprocessed": {"input": "image: the model's input",
                                 "outputs": list(serving.OUTPUTS) + serving.head_names(model)},
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
        DamagedExport: naming the file when it does not parse as a JSON object.
    """
    file = os.path.join(path, "metadata.json")
    if not os.path.exists(file):
        raise FileNotFoundError(f"{path} holds no finished export (no metadata.json)")
    payload = _metadata_or_none(path)
    if payload is None:
        raise DamagedExport(f"{file} is damaged (not a JSON object): it should hold the export's lineage, "
                            "signatures and sizes; export the model again (delete the folder, or pass overwrite=True)")
    return payload


def save_ticket(result, path: str, metadata: Optional[dict] = None, overwrite: bool = False, **options) -> str:
    """Exports a :class:`~tf_lottery.tickets.TicketResult` (or a model) with its provenance.

    ``options`` are :func:`save_model`'s (``preprocessing``, ``tflite``, ``tflite_dynamic_range``).

    Example:
        >>> result = tl.find_ticket(model, "grasp", num_blocks=3, data=(x, y))
        >>> tl.export.save_ticket(result, "exports/ticket", preprocessing=tl.serving.Preprocessing.from_data(data))
    """
    if isinstance(result, keras.Model):
        return save_model(result, path, metadata, overwrite, **options)
    if not isinstance(getattr(result, "model", None), keras.Model) or not hasattr(result, "to_dict"):
        raise TypeError(f"result must be a TicketResult (from tl.find_ticket) or a keras.Model; got "
                        f"{type(result).__name__}")
    extra = {"ticket": result.to_dict(), **(metadata or {})}
    return save_model(result.model, path, extra, overwrite, **options)
