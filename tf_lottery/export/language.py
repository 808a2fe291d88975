"""Exporting a language-model ticket: a SavedModel of token ids to logits, a keras_hub preset, metadata.

``save_language_model(model, path)`` writes, atomically (a temporary folder, then a rename):

* ``saved_model/``: the signature ``serving_default(token_ids, padding_mask) -> {"logits"}``, both
  inputs ``int32 (batch, length)`` of any batch and length, the logits ``float32 (batch, length,
  vocabulary)``. It loads with ``tf.saved_model.load`` in a process that has TensorFlow and not
  tf_lottery or keras_hub;
* ``preset/``: for a keras_hub model (a ``*CausalLM`` task or a backbone), its preset
  (``save_to_preset``): ``keras_hub.models.CausalLM.from_preset(path + "/preset")`` loads it
  without tf_lottery, ``generate()`` included;
* ``metadata.json``: the lineage (for a model built by a registered builder), ``blocks``: the
  original name of each kept block of a ticket of its own class and of the removed ones
  (:func:`tf_lottery.surgery.kept_blocks`; null for a dense model), the vocabulary size and the
  signature, the tokenizer's id mapping when one is given (``tokenizer``: the byte tokenizer's
  :meth:`~tf_lottery.data.text.ByteTokenizer.describe`, which a ``--task=causal_lm`` export records), plus
  whatever the caller adds. It is written last: a folder without it is partial
  and is replaced.

Example:
    >>> save_language_model(ticket, "exports/lm_ticket", metadata={"perplexity": 41.2}, tokenizer=ByteTokenizer())
"""

from __future__ import annotations

import os
from typing import Optional

import keras
import tensorflow as tf

from tf_lottery.core import keras_internals
from tf_lottery.core.io import atomic_path, ensure_free_space, state_bytes, write_json_atomic
from tf_lottery.core import manifest
from tf_lottery.export.saved_model import _check_target, with_caller_metadata
from tf_lottery.export.serving import folder_bytes
from tf_lottery.graph.lineage import lineage, recorded_kept

#: The inputs of an exported language model, in the order its serving signature takes them.
INPUTS = ("token_ids", "padding_mask")


def input_names(model: keras.Model) -> list:
    """The names of ``model``'s inputs, sorted: ``sorted(INPUTS)`` for a language model this module exports.

    Args:
        model: A functional model.

    Returns:
        Its input names, sorted.

    Example:
        >>> input_names(lm)
        ['padding_mask', 'token_ids']
    """
    return sorted(keras_internals.producer_name(t) for t in keras.tree.flatten(model.input))


def _is_keras_hub(model) -> bool:
    return type(model).__module__.startswith("keras_hub") and hasattr(model, "save_to_preset")


def write_token_saved_model(model: keras.Model, path: str) -> None:
    """Writes the SavedModel of ``model``: ``serving_default(token_ids, padding_mask) -> {"logits"}``.

    Args:
        model: Takes ``{"token_ids", "padding_mask"}`` and gives logits ``(batch, length, vocabulary)``.
        path: The SavedModel folder (must not exist).

    Example:
        >>> write_token_saved_model(lm, "exports/lm/saved_model")
        >>> served = tf.saved_model.load("exports/lm/saved_model").signatures["serving_default"]
        >>> served(token_ids=ids, padding_mask=mask)["logits"].shape   # (batch, length, vocabulary)
    """
    def serve(token_ids, padding_mask):
        logits = model({"token_ids": token_ids, "padding_mask": padding_mask}, training=False)
        return {"logits": tf.cast(logits, tf.float32)}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", serve, input_signature=[
        tf.TensorSpec((None, None), tf.int32, name=name) for name in INPUTS])
    archive.write_out(path, verbose=False)


def save_language_model(model: keras.Model, path: str, metadata: Optional[dict] = None,
                        overwrite: bool = False, tokenizer=None) -> str:
    """Exports a language model (dense or ticket) to ``path`` (see the module docstring).

    Args:
        model: A keras_hub ``*CausalLM`` (or any model of token ids and a padding mask to logits).
        path: Export folder; must not exist (or be a partial export) unless ``overwrite``.
        metadata: Extra JSON-ready fields for ``metadata.json``.
        overwrite: Replace an existing export.
        tokenizer: The tokenizer of the model's ids (a :class:`~tf_lottery.data.text.ByteTokenizer`, or
            any object with ``describe() -> dict`` and ``vocabulary_size``): its id mapping is recorded
            as ``metadata.json``'s ``tokenizer``.

    Returns:
        ``path``.

    Raises:
        ValueError: for a model whose inputs are not ``token_ids`` and ``padding_mask``, or a tokenizer
            of more ids than the model predicts.
        FileExistsError: if ``path`` is a finished export and ``overwrite`` is False, or is not an
            export folder.
        OSError: naming the folder when it cannot be written, or the disk is full.

    Example:
        >>> save_language_model(ticket_lm, "exports/lm")
        >>> sorted(os.listdir("exports/lm"))   # preset/: a keras_hub model's
        ['metadata.json', 'preset', 'saved_model']
    """
    names = input_names(model)
    if names != sorted(INPUTS):
        raise ValueError(f"a language model export takes {list(INPUTS)}; {model.name!r} takes {names}")
    vocabulary = int(model.outputs[0].shape[-1])
    if tokenizer is not None and int(tokenizer.vocabulary_size) > vocabulary:
        raise ValueError(f"the tokenizer has {tokenizer.vocabulary_size} ids and {model.name!r} predicts "
                         f"{vocabulary}: it is not the model's tokenizer")
    path = _check_target(path, overwrite)
    ensure_free_space(os.path.dirname(path), 4 * state_bytes(model) + 8 * 2**20)
    with atomic_path(path, folder=True) as staging:
        os.makedirs(staging)
        write_token_saved_model(model, os.path.join(staging, "saved_model"))
        if _is_keras_hub(model):
            model.save_to_preset(os.path.join(staging, "preset"))
        payload = {
            "files": sorted([*os.listdir(staging), "metadata.json"]),
            "manifest": manifest.describe(staging),
            "model_name": model.name,
            "model_class": type(model).__name__,
            "lineage": lineage(model),
            "blocks": recorded_kept(model),
            "vocabulary_size": vocabulary,
            **({"tokenizer": tokenizer.describe()} if tokenizer is not None else {}),
            "params": int(model.count_params()),
            "sizes": {"saved_model_bytes": folder_bytes(os.path.join(staging, "saved_model")),
                      **({"preset_bytes": folder_bytes(os.path.join(staging, "preset"))} if _is_keras_hub(model)
                         else {})},
            "serving_signature": "serving_default",
            "signatures": {"serving_default": {"inputs": {name: "int32 (batch, length)" for name in INPUTS},
                                               "outputs": {"logits": "float32 (batch, length, vocabulary)"}}},
        }
        write_json_atomic(os.path.join(staging, "metadata.json"), with_caller_metadata(payload, metadata))
    return path
