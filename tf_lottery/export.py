"""Exporting tickets: a SavedModel for TF pipelines, a ``.keras`` file, and metadata.

``save_ticket(result, path)`` writes, atomically (a temporary folder, then a rename):

* ``saved_model/``: ``model.export`` with a ``serving_default`` signature whose input is
  named ``image`` (output ``output_0``); loads with ``tf.saved_model.load`` in a process
  that has TensorFlow and not tf_lottery, and gives the same outputs;
* ``model.keras``: loads with ``keras.models.load_model`` in safe mode, no custom objects
  (physical removal leaves no masks), for models of stock Keras layers and ``keras.ops``;
  a model with ``Lambda`` layers (Python code) needs ``safe_mode=False``, which
  ``metadata.json`` says under ``keras_safe_mode`` (the SavedModel needs nothing);
* ``metadata.json``: lineage (architecture spec and removed blocks), criterion, scores,
  and whatever the caller adds (seed, config hash, metrics).

An existing, complete export is never overwritten unless ``overwrite=True``; an empty or
partial one (only export files, no ``metadata.json``, which is written last) is replaced.
"""

from __future__ import annotations

import os
from typing import Optional

import keras

from tf_lottery import graph
from tf_lottery.faults import crash_point
from tf_lottery.io import atomic_path, ensure_free_space, state_bytes, write_json_atomic
from tf_lottery.models.lineage import lineage


def is_complete(path: str) -> bool:
    """Whether ``path`` holds a finished export: ``metadata.json`` is written last, and the folder
    only takes its name once everything in it is written."""
    return os.path.exists(os.path.join(path, "metadata.json")) and os.path.exists(
        os.path.join(path, "saved_model", "saved_model.pb"))


def save_model(model: keras.Model, path: str, metadata: Optional[dict] = None, overwrite: bool = False) -> str:
    """Exports ``model`` to ``path`` (see the module docstring).

    Args:
        model: Any functional model from tf_lottery (dense or ticket).
        path: Export folder; must not exist (or be an empty or partial export) unless ``overwrite``.
        metadata: Extra JSON-ready fields for ``metadata.json``.
        overwrite: Replace an existing export.

    Returns:
        ``path``.

    Raises:
        FileExistsError: if ``path`` exists and ``overwrite`` is False.

    Example:
        >>> save_model(ticket, "exports/ticket")
    """
    path = os.path.abspath(path)
    if os.path.exists(path) and not overwrite:
        ours = os.path.isdir(path) and set(os.listdir(path)) <= {"saved_model", "model.keras", "metadata.json"}
        if is_complete(path) or not ours:  # a finished export, or something that is not an export
            raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    ensure_free_space(os.path.dirname(path), 4 * state_bytes(model) + 8 * 2**20)  # SavedModel + .keras + graph
    lambdas = [layer.name for layer in graph.leaf_layers(model) if isinstance(layer, keras.layers.Lambda)]
    with atomic_path(path, folder=True) as staging:
        model.export(os.path.join(staging, "saved_model"), format="tf_saved_model", verbose=False)
        model.save(os.path.join(staging, "model.keras"))
        crash_point("export")
        payload = {
            "model_name": model.name,
            "lineage": lineage(model),
            "input": {"name": model.inputs[0].name, "shape": list(model.inputs[0].shape[1:])},
            "serving_signature": "serving_default",
            "params": int(model.count_params()),
            "keras_safe_mode": not lambdas,
            **({"lambda_layers": lambdas} if lambdas else {}),
            **(metadata or {}),
        }
        write_json_atomic(os.path.join(staging, "metadata.json"), payload)
    return path


def save_ticket(result, path: str, metadata: Optional[dict] = None, overwrite: bool = False) -> str:
    """Exports a :class:`~tf_lottery.tickets.TicketResult` (or a model) with its provenance.

    Example:
        >>> result = tl.find_ticket(model, "grasp", num_blocks=3, data=(x, y))
        >>> tl.export.save_ticket(result, "exports/ticket")
    """
    if isinstance(result, keras.Model):
        return save_model(result, path, metadata, overwrite)
    extra = {"ticket": result.to_dict(), **(metadata or {})}
    return save_model(result.model, path, extra, overwrite)
