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

``metadata.json`` carries the export's manifest (each file's size and SHA-256); :func:`read_metadata` and
:func:`is_complete` verify it, so a file changed after the export is named rather than loaded.

An existing, complete export is never overwritten unless ``overwrite=True``; an empty folder, or an
export whose ``metadata.json`` or files are damaged, is replaced. A folder holding anything but an
export's files, or files without an export's ``metadata.json`` (a ``model.keras`` of your own, say),
is never replaced.
"""

from __future__ import annotations

import json
import math
import os
from typing import List, Optional

import keras
import numpy as np

from tf_lottery import graph
from tf_lottery.export import serving
from tf_lottery.core import manifest
from tf_lottery.core.faults import crash_point
from tf_lottery.core.io import atomic_path, ensure_free_space, state_bytes, write_json_atomic
from tf_lottery.graph.lineage import lineage


#: The names an export folder may hold; a folder with other files is not replaced.
EXPORT_FILES = {"saved_model", "model.keras", "preset", "mean.npy", "model.tflite", "model_dynamic_range.tflite",
                "metadata.json"}


class DamagedExport(ValueError):
    """An export folder whose ``metadata.json`` does not parse or names files that are not there."""


def _metadata_or_none(path: str) -> Optional[dict]:
    """The parsed ``metadata.json`` of ``path``, None when it is missing, unreadable or not an object."""
    try:
        with open(os.path.join(path, "metadata.json"), encoding="utf-8") as handle:
            payload = json.load(handle)
    except (OSError, ValueError):
        return None
    return payload if isinstance(payload, dict) else None


def findings(path: str, payload: dict) -> List[manifest.Finding]:
    """The files of the export ``path`` that do not match the manifest its ``metadata.json`` carries
    (exports from before tf_lottery 0.10 carry none: only the files it names are checked)."""
    files = payload.get("files", ["saved_model", "model.keras"])
    if not isinstance(files, list) or not all(isinstance(name, str) and name in EXPORT_FILES for name in files):
        return [manifest.Finding("metadata.json", "changed", "its 'files' are not an export's files")]
    missing = [manifest.Finding(name, "missing") for name in files if not os.path.exists(os.path.join(path, name))]
    if not os.path.exists(os.path.join(path, "saved_model", "saved_model.pb")):
        missing.append(manifest.Finding("saved_model/saved_model.pb", "missing"))
    if "manifest" not in payload:
        return missing
    try:
        recorded = manifest.validated({"files": payload["manifest"]})
    except ValueError as error:
        return [manifest.Finding("metadata.json", "changed", f"its manifest is not one: {error}")]
    found = [f for f in manifest.check(path, recorded) if f.name != "metadata.json"]
    return missing + [f for f in found if f.name not in {m.name for m in missing}]


def is_complete(path: str) -> bool:
    """Whether ``path`` holds a finished, sound export: its ``metadata.json`` (written last) parses, and
    every file matches the manifest it carries (size and SHA-256); exports from before tf_lottery
    0.10, which carry none, need the files they name (before 0.9: the SavedModel and the ``.keras`` file).

    Args:
        path: An export folder.

    Returns:
        True for a finished, sound export; False otherwise (never raises for a damaged one).

    Example:
        >>> save_model(ticket, "exports/ticket")
        'exports/ticket'
        >>> is_complete("exports/ticket"), is_complete("exports/nothing-here")
        (True, False)
    """
    payload = _metadata_or_none(path)
    return payload is not None and not findings(path, payload)


def check_export_folder(path, overwrite: bool, foreign, complete, what: str = "an export",
                        finished: str = "export", example: str = "exports/ticket") -> str:
    """The absolute folder for an export at ``path``, after refusing what must never be replaced: an empty
    path, the working folder and its parents, a file or a link, and a folder holding files that are not an
    export's (whatever ``overwrite`` says); a finished export only with ``overwrite``. Its parent is created.

    Args:
        path: The export folder.
        overwrite: Whether a finished export there may be replaced.
        foreign: ``folder -> [names]``: the files of an existing folder that are not the export's.
        complete: ``folder -> bool``: whether the folder holds a finished, unchanged export.
        what, finished: How the messages name the export (``"an export"``, ``"export"``).
        example: A folder name the messages suggest.

    Returns:
        The absolute folder.

    Raises:
        TypeError: for a path that is not a string.
        ValueError: for an empty path or the working folder (or a parent of it).
        FileExistsError: for a file or link, a folder of other files, or a finished export without ``overwrite``.
        OSError: when the parent cannot be created or written.

    Example:
        >>> check_export_folder("exports/ticket", False, lambda folder: [], is_complete)
        '/home/me/exports/ticket'
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a folder path (a str); got {path!r}")
    text = os.fspath(path)
    if not str(text).strip():
        raise ValueError(f"path is empty; name the export folder, e.g. {example}")
    target = os.path.abspath(text)
    here = os.path.abspath(os.getcwd())
    if target == here or here.startswith(target.rstrip(os.sep) + os.sep) or target == os.sep:
        raise ValueError(f"path={text!r} is the working folder or one of its parents ({target}); an export "
                         f"replaces its folder whole, so name a folder of its own, e.g. {example}")
    if os.path.lexists(target):
        if not os.path.isdir(target) or os.path.islink(target):
            raise FileExistsError(f"{target} exists and is not an export folder (a file or a link); "
                                  "choose another path")
        others = foreign(target)
        if others:
            raise FileExistsError(f"{target} holds files that are not {what}'s ({', '.join(others[:5])}"
                                  f"{' ...' if len(others) > 5 else ''}); it is never replaced, even with "
                                  "overwrite=True: choose another path")
        if complete(target) and not overwrite:
            raise FileExistsError(f"{target} holds a finished {finished}; pass overwrite=True to replace it")
        # What remains is an export whose metadata.json or files are damaged: it is replaced.
    parent = os.path.dirname(target)
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as error:
        raise OSError(error.errno, f"cannot create the export's folder {parent}: {error.strerror}", parent) from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(f"cannot write the export into {parent}: the folder is not writable")
    return target


def _foreign_files(target: str) -> list:
    """The files of ``target`` that are not a SavedModel export's (all of them without its metadata.json:
    exports are written whole)."""
    present = os.listdir(target)
    others = sorted(set(present) - EXPORT_FILES)
    if present and not os.path.exists(os.path.join(target, "metadata.json")):
        others = others or sorted(present)
    return others


def _check_target(path, overwrite: bool) -> str:
    """:func:`check_export_folder` for a SavedModel export (also a language model's)."""
    return check_export_folder(path, overwrite, _foreign_files, is_complete)


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
            "manifest": manifest.describe(staging),  # each file's size and SHA-256: loading verifies them
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
        }
        write_json_atomic(os.path.join(staging, "metadata.json"), with_caller_metadata(payload, metadata))
    return path


def with_caller_metadata(own: dict, metadata: Optional[dict]) -> dict:
    """The export's own fields with the caller's beside them, checked before anything is written.

    Raises:
        TypeError: for ``metadata`` that is not a dict of JSON values (str keys; lists, numbers, text, None).
        ValueError: for a key the export writes itself (``files``, ``manifest``, ``lineage``, ...: the caller's
            value would be believed in their place), or a NaN or infinite number (JSON has none), naming it.
    """
    if metadata is None:
        return own
    if not isinstance(metadata, dict):
        raise TypeError(f"metadata must be a dict of JSON values; got {type(metadata).__name__}")
    clashes = sorted(set(metadata) & set(own))
    if clashes:
        raise ValueError(f"metadata={{{', '.join(repr(k) + ': ...' for k in clashes)}}}: "
                         f"{'these keys are' if len(clashes) > 1 else 'this key is'} the export's own "
                         f"({', '.join(sorted(own))}); name your fields otherwise")
    _check_json(metadata, "metadata")
    return {**own, **metadata}


def _check_json(value, where: str) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where} has the key {key!r}: JSON keys are text")
            _check_json(item, f"{where}[{key!r}]")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_json(item, f"{where}[{index}]")
    elif isinstance(value, float) or (isinstance(value, np.floating)):
        if not math.isfinite(value):
            raise ValueError(f"{where} is {value}: JSON has no NaN or infinity; write None (null) instead")
    elif not (value is None or isinstance(value, (str, bool, int, np.integer))):
        raise TypeError(f"{where} is a {type(value).__name__}, not a JSON value (text, a number, a list, a dict, None)")


def read_metadata(path: str, verify: bool = True) -> dict:
    """The ``metadata.json`` of an export folder, after verifying the export against the manifest it carries.

    Args:
        path: The export folder.
        verify: Check every file's size and SHA-256 (an export is where a shared, possibly hostile,
            artifact arrives); False reads the metadata alone.

    Returns:
        The metadata: the export's lineage, signatures, sizes, manifest and the caller's fields.

    Raises:
        FileNotFoundError: naming the folder when it holds no finished export.
        DamagedExport: naming the file when it does not parse as a JSON object, or the files that do not
            match the manifest.

    Example:
        >>> read_metadata("exports/ticket")["lineage"]["removed"]
        ['stage1_block2']
    """
    file = os.path.join(path, "metadata.json")
    if not os.path.exists(file):
        raise FileNotFoundError(f"{path} holds no finished export (no metadata.json)")
    payload = _metadata_or_none(path)
    if payload is None:
        raise DamagedExport(f"{file} is damaged (not a JSON object): it should hold the export's lineage, "
                            "signatures and sizes; export the model again (delete the folder, or pass overwrite=True)")
    bad = findings(path, payload) if verify else []
    if bad:
        raise DamagedExport(f"{path} does not match its manifest ({'; '.join(f.describe() for f in bad[:4])}"
                            f"{' ...' if len(bad) > 4 else ''}): do not load it; export the model again")
    return payload


def save_ticket(result, path: str, metadata: Optional[dict] = None, overwrite: bool = False, **options) -> str:
    """Exports a :class:`~tf_lottery.tickets.TicketResult` (or a model) with its provenance.

    Args:
        result: A :class:`~tf_lottery.tickets.TicketResult` (its ``to_dict`` goes into the metadata
            under ``ticket``), or a ``keras.Model``.
        path: Export folder (see :func:`save_model`).
        metadata: Extra JSON-ready fields for ``metadata.json``.
        overwrite: Replace an existing export.
        **options: :func:`save_model`'s (``preprocessing``, ``tflite``, ``tflite_dynamic_range``).

    Returns:
        ``path``.

    Raises:
        TypeError: for a ``result`` that is neither; see :func:`save_model` for the rest.

    Example:
        >>> result = tl.find_ticket(model, "grasp", num_blocks=3, data=(x, y))
        >>> tl.export.save_ticket(result, "exports/ticket", preprocessing=tl.serving.Preprocessing.from_data(data))
    """
    if isinstance(result, keras.Model):
        return save_model(result, path, metadata, overwrite, **options)
    if not isinstance(getattr(result, "model", None), keras.Model) or not hasattr(result, "to_dict"):
        raise TypeError(f"result must be a TicketResult (from tl.find_ticket) or a keras.Model; got "
                        f"{type(result).__name__}")
    extra = with_caller_metadata({"ticket": result.to_dict()}, metadata)
    return save_model(result.model, path, extra, overwrite, **options)
