"""Exporting a language-model ticket to a Hugging Face ``transformers`` folder.

``to_transformers(ticket, path)`` writes, atomically (a temporary folder, then a rename), a folder that
``transformers.AutoModelForCausalLM.from_pretrained(path)`` loads in a process without Keras:

* ``config.json`` and ``model.safetensors``: written by keras_hub's own exporter (the one behind
  ``CausalLM.export_to_transformers``) for the families in its table (keras_hub 0.32: GPT-2, Gemma,
  Gemma 3, Gemma 4, Llama 3, Mistral, Qwen, Qwen 3.5). tf_lottery adds what a ticket needs on top:
  the exporter rebuilds per-layer settings by index from the dense configuration (Gemma 3's
  ``layer_types`` from a period of 6, Gemma 4's and Qwen 3.5's from a list the ticket inherited at the
  dense model's length), so ``layer_types`` is rewritten from the ticket's own layers, one entry per
  kept layer; special token ids the exporter fixes to its presets' (GPT-2's 50256, Qwen 3.5's
  248044) are replaced by the tokenizer's, or left out when they lie outside the vocabulary; and the
  layer count written is checked against the ticket's layers;
* with a tokenizer: tf_lottery's :class:`~tf_lottery.data.text.ByteTokenizer` as ``tokenizer.json``
  (the ``tokenizers`` format: byte-level, no merges, ``<pad>`` 0, ``<end>`` 1, byte ``b`` is ``b + 2``)
  and ``tokenizer_config.json``, which ``transformers.AutoTokenizer`` loads; or a keras_hub
  tokenizer of the exporter's table, written by keras_hub;
* ``metadata.json``, written last: the kept and removed layers under their original names, the
  lineage, the exporter and the tokenizer's id mapping. It marks the folder as tf_lottery's: a
  folder without it is never replaced.

A model the exporter cannot write faithfully is refused in one line before anything is written: a
family outside the exporter's table (the message lists the table), a setting the exporter drops
(Gemma 2's sliding window and soft caps in a ``GemmaBackbone``, a Gemma 3 without its post-norms, a
RoPE scaling factor other than 1, ...), a multimodal backbone, and a Gemma 4 ticket whose last layer
is a sliding-window one (``transformers`` makes Gemma 4's last layer global, so it would compute
something else).

Example:
    >>> ticket = tl.find_ticket(lm, "grasp", data=batch, num_blocks=1, min_blocks_per_stage=0).model
    >>> to_transformers(ticket, "exports/hf_ticket", tokenizer=ByteTokenizer())
    'exports/hf_ticket'
"""

from __future__ import annotations

import json
import os
from typing import Optional

from tf_lottery.core import manifest
from tf_lottery.core.io import atomic_path, ensure_free_space, state_bytes, write_json_atomic
from tf_lottery.data.text import ByteTokenizer
from tf_lottery.export.saved_model import check_export_folder, with_caller_metadata
from tf_lottery.graph.lineage import lineage, recorded_kept

FORMAT = "transformers"
"""``metadata.json``'s ``format``: what marks a folder as a tf_lottery transformers export."""

FILES = {"config.json", "model.safetensors", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
         "special_tokens_map.json", "tokenizer.model", "vocab.json", "merges.txt", "metadata.json"}
"""The files a transformers export may hold; a folder holding anything else is never replaced."""

PAD_TOKEN, END_TOKEN = "<pad>", "<end>"

# Settings of a backbone's config that keras_hub 0.32's exporter does not write (its config functions
# read none of them): a model that departs from the value the written config implies is refused.
_DROPPED = {
    "GemmaBackbone": {"use_sliding_window_attention": False, "use_post_ffw_norm": False,
                      "use_post_attention_norm": False, "attention_logit_soft_cap": None,
                      "final_logit_soft_cap": None, "query_head_dim_normalize": True},
    "Gemma3Backbone": {"use_post_ffw_norm": True, "use_post_attention_norm": True, "use_query_key_norm": True,
                       "attention_logit_soft_cap": None, "final_logit_soft_cap": None, "is_embedding_model": False},
    "Gemma4Backbone": {"is_embedding_model": False},
    "Llama3Backbone": {"rope_position_scaling_factor": 1.0},
    "MistralBackbone": {"rope_scaling_factor": 1.0},
    "QwenBackbone": {"rope_scaling_factor": 1.0, "use_sliding_window_attention": False},
    "Qwen3_5Backbone": {"rope_scaling_factor": 1.0},
}


def _exporter():
    """keras_hub's transformers exporter module (``keras_hub.src``: keras_hub publishes only
    ``CausalLM.export_to_transformers``, not its family table): the one place tf_lottery reads it."""
    try:
        from keras_hub.src.utils.transformers.export import hf_exporter
    except ImportError as error:
        raise ImportError(f"exporting to transformers needs keras_hub's exporter and safetensors ({error}): "
                          "pip install 'tf_lottery[hub,transformers]'") from None
    return hf_exporter


def supported_families() -> list:
    """The backbone classes keras_hub's installed exporter writes (its own table), sorted.

    Returns:
        The class names.

    Raises:
        ImportError: when keras_hub (the hub extra) is not installed.

    Example:
        >>> supported_families()[:3]
        ['GPT2Backbone', 'Gemma3Backbone', 'Gemma4Backbone']
    """
    table = _exporter()
    return sorted(set(table.MODEL_CONFIGS) & set(table.MODEL_EXPORTERS))


def _exporter_name() -> str:
    import keras_hub
    return f"keras_hub {keras_hub.__version__} (CausalLM.export_to_transformers' exporter)"


def byte_tokenizer_files(tokenizer: ByteTokenizer, max_length: Optional[int] = None) -> dict:
    """``{file name: JSON}`` of ``tokenizer`` for ``transformers.AutoTokenizer``: ``tokenizer.json``
    and ``tokenizer_config.json``.

    The ``tokenizers`` model is byte-level BPE without merges, so every UTF-8 byte is one token:
    byte ``b`` is the character the byte-level table gives it, with id ``b + 2``; ``<pad>`` is 0 and
    ``<end>`` 1, both special. ``<pad>`` and ``<end>`` written in a text are read as bytes, as
    :meth:`ByteTokenizer.encode` does (``split_special_tokens``).

    Args:
        tokenizer: The byte tokenizer.
        max_length: The model's longest sequence, written as ``model_max_length`` (None: unbounded).

    Returns:
        ``{"tokenizer.json": ..., "tokenizer_config.json": ...}``, each a JSON-ready dict.

    Example:
        >>> sorted(byte_tokenizer_files(ByteTokenizer()))
        ['tokenizer.json', 'tokenizer_config.json']
    """
    vocabulary = {PAD_TOKEN: tokenizer.PAD, END_TOKEN: tokenizer.END}
    vocabulary.update({char: byte + tokenizer.OFFSET for byte, char in enumerate(_byte_characters())})
    special = [{"id": i, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
                "normalized": False, "special": True} for content, i in ((PAD_TOKEN, tokenizer.PAD),
                                                                           (END_TOKEN, tokenizer.END))]
    tokenizer_json = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": special, "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                          "use_regex": False},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocabulary, "merges": []},
    }
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "pad_token": PAD_TOKEN, "eos_token": END_TOKEN,
              "bos_token": None, "unk_token": None, "add_bos_token": False, "add_eos_token": False,
              "split_special_tokens": True, "clean_up_tokenization_spaces": False,
              "model_max_length": max_length if max_length else int(1e30)}
    return {"tokenizer.json": tokenizer_json, "tokenizer_config.json": config}


def _byte_characters() -> list:
    """The byte-level table of ``tokenizers``' ``ByteLevel``: byte ``b`` -> a printable character.

    Bytes that print as themselves (``!`` to ``~``, ``¡`` to ``¬``, ``®`` to ``ÿ``) keep their code
    point; the others take the code points from 256 on, in byte order.
    """
    printable = set(range(ord("!"), ord("~") + 1)) | set(range(ord("¡"), ord("¬") + 1)) | set(
        range(ord("®"), ord("ÿ") + 1))
    characters, moved = [], 0
    for byte in range(256):
        if byte in printable:
            characters.append(chr(byte))
        else:
            characters.append(chr(256 + moved))
            moved += 1
    return characters


def _backbone_of(model):
    """``(task, backbone)`` after refusing what is not a keras_hub causal LM of the exporter's table."""
    if hasattr(model, "model") and hasattr(model, "removed") and not hasattr(model, "backbone"):
        model = model.model  # a find_ticket result
    import keras_hub

    backbone = getattr(model, "backbone", None)
    is_task = isinstance(model, keras_hub.models.CausalLM) and backbone is not None
    families = supported_families()
    if not is_task:
        hint = (f" (a backbone: export its task, e.g. {type(model).__name__.replace('Backbone', 'CausalLM')}"
                "(backbone=..., preprocessor=None))" if type(model).__name__ in families else "")
        raise ValueError(f"to_transformers exports a keras_hub CausalLM; got {type(model).__name__} "
                         f"{getattr(model, 'name', '')!r}{hint}")
    name = type(backbone).__name__
    if name not in families:
        raise ValueError(f"{type(model).__name__} cannot be exported to transformers: {_exporter_name()} writes "
                         f"{', '.join(families)}; not {name}")
    return model, backbone


def check_exportable(model) -> None:
    """Refuses, in one line, a model :func:`to_transformers` would refuse for what it is (its class, its
    family, a setting the exporter drops), before a run that will export it trains.

    Args:
        model: A keras_hub CausalLM (dense or ticket).

    Raises:
        ValueError: naming what cannot be exported and, for a family, the exporter's table.

    Example:
        >>> check_exportable(keras_hub.models.OPTCausalLM(backbone=opt, preprocessor=None))
        ValueError: OPTCausalLM cannot be exported to transformers: ... writes GPT2Backbone, ...; not OPTBackbone
    """
    _exporter()
    _check_faithful(_backbone_of(model)[1])


def _check_faithful(backbone) -> None:
    """Refuses a backbone whose transformers folder would compute something else than it does."""
    name = type(backbone).__name__
    config = backbone.get_config()
    for key in ("vision_encoder", "audio_encoder"):
        if config.get(key) is not None:
            raise ValueError(f"{name} with a {key.replace('_', ' ')}: to_transformers exports text-only causal "
                             "LMs (AutoModelForCausalLM)")
    for key, assumed in _DROPPED.get(name, {}).items():
        if key in config and config[key] != assumed:
            raise ValueError(f"{name} with {key}={config[key]!r}: {_exporter_name()} does not write {key} (its "
                             f"transformers config implies {assumed!r}), so the folder would compute something else")
    last = list(backbone.transformer_layers)[-1]
    if name == "Gemma4Backbone" and _layer_type(last) != "full_attention":
        raise ValueError(f"Gemma4Backbone whose last layer ({last.name!r}) attends through a sliding window: "
                         "transformers makes Gemma 4's last layer global, so the folder would compute something "
                         "else; remove layers that leave a global layer last")
    if name == "MistralBackbone" and config.get("head_dim") not in (None, backbone.hidden_dim // backbone.num_query_heads):
        raise ValueError(f"MistralBackbone with head_dim={config['head_dim']}: {_exporter_name()} writes "
                         "hidden_dim // num_query_heads")


def _layer_type(layer) -> Optional[str]:
    """A decoder layer's attention kind as transformers' ``layer_types`` names it, from the layer itself."""
    kind = getattr(layer, "layer_type", None)
    if isinstance(kind, str):
        return kind
    sliding = getattr(layer, "use_sliding_window_attention", None)
    if isinstance(sliding, bool):
        return "sliding_attention" if sliding else "full_attention"
    return None


def _text_config(config: dict) -> dict:
    return config["text_config"] if isinstance(config.get("text_config"), dict) else config


_LAYER_COUNTS = ("num_hidden_layers", "n_layer")

CAUSAL_LM_CLASSES = {"gpt2": "GPT2LMHeadModel", "gemma": "GemmaForCausalLM", "gemma3_text": "Gemma3ForCausalLM",
                     "gemma4_text": "Gemma4ForCausalLM", "llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM",
                     "qwen2": "Qwen2ForCausalLM", "qwen3_5": "Qwen3_5ForCausalLM"}
"""The class ``transformers.AutoModelForCausalLM`` builds for each ``model_type`` the exporter writes,
written as the config's ``architectures`` (the exporter leaves it out for Gemma and Qwen and names a
base model for Gemma 4 and a multimodal one for Qwen 3.5); the tests check it against transformers."""


def _fix_config(config: dict, backbone, token_ids: Optional[dict]) -> dict:
    """The exporter's config with the ticket's own per-layer settings and the tokenizer's ids.

    Raises:
        ValueError: when the written layer count is not the ticket's, or a layer's kind cannot be read.
    """
    layers = list(backbone.transformer_layers)
    text = _text_config(config)
    counts = {key: text[key] for key in _LAYER_COUNTS if key in text}
    if any(count != len(layers) for count in counts.values()):
        raise ValueError(f"{type(backbone).__name__}: the exporter wrote {counts} but the ticket has "
                         f"{len(layers)} layers; not exported")
    if "layer_types" in text:
        kinds = [_layer_type(layer) for layer in layers]
        if None in kinds:
            raise ValueError(f"{type(backbone).__name__}: the exporter writes layer_types, and "
                             f"{layers[kinds.index(None)].name!r} does not say its attention kind; not exported")
        text["layer_types"] = kinds
    if config.get("model_type") in CAUSAL_LM_CLASSES:
        config["architectures"] = [CAUSAL_LM_CLASSES[config["model_type"]]]
    vocabulary = backbone.vocabulary_size
    for where in {id(config): config, id(text): text}.values():
        for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
            if token_ids is not None:
                where[key] = token_ids[key]
            elif isinstance(where.get(key), int) and not 0 <= where[key] < vocabulary:
                where[key] = None  # a preset's id (GPT-2's 50256) outside this model's vocabulary
    return config


def _tokenizer_kind(tokenizer, families_tokenizers) -> str:
    if tokenizer is None:
        return "none"
    if isinstance(tokenizer, ByteTokenizer):
        return "bytes"
    if type(tokenizer).__module__.startswith("keras_hub") and type(tokenizer).__name__ in families_tokenizers:
        return "keras_hub"
    raise ValueError(f"tokenizer must be a tf_lottery.data.text.ByteTokenizer, a keras_hub tokenizer of "
                     f"{', '.join(sorted(families_tokenizers))}, or None; got {type(tokenizer).__name__}")


def _present_tokenizer(model):
    preprocessor = getattr(model, "preprocessor", None)
    return getattr(preprocessor, "tokenizer", None) if preprocessor is not None else None


def _metadata_or_none(path: str) -> Optional[dict]:
    try:
        with open(os.path.join(path, "metadata.json"), encoding="utf-8") as handle:
            payload = json.load(handle)
    except (OSError, ValueError):
        return None
    return payload if isinstance(payload, dict) else None


def is_complete(path: str) -> bool:
    """Whether ``path`` is a finished transformers export of tf_lottery: its ``metadata.json`` (written
    last) says so and every file matches the manifest it carries.

    Args:
        path: A folder.

    Returns:
        True for a complete, unchanged export; False for anything else (a missing, damaged or foreign folder).

    Example:
        >>> is_complete("hf/init_ticket-6b7b7f746cfd")
        True
    """
    payload = _metadata_or_none(path)
    if payload is None or payload.get("format") != FORMAT or not isinstance(payload.get("manifest"), dict):
        return False
    try:
        recorded = manifest.validated({"files": payload["manifest"]})
    except ValueError:
        return False
    return not [f for f in manifest.check(path, recorded) if f.name != "metadata.json"]


def _foreign_files(target: str) -> list:
    """The files of ``target`` that are not a tf_lottery transformers export's: all of them unless our
    ``metadata.json`` says the folder is ours (a Hugging Face folder of someone else has the same file names)."""
    payload = _metadata_or_none(target)
    ours = payload is not None and payload.get("format") == FORMAT
    present = os.listdir(target)
    return sorted(set(present) - FILES) if ours else sorted(present)


def _check_target(path, overwrite: bool) -> str:
    """The absolute folder for ``path`` (:func:`tf_lottery.export.saved_model.check_export_folder`, for a
    transformers export)."""
    return check_export_folder(path, overwrite, _foreign_files, is_complete, what="a tf_lottery transformers export",
                               finished="transformers export", example="exports/hf_ticket")


_OWN_FIELDS = ("format", "files", "manifest", "exporter", "model_name", "model_class", "backbone_class",
               "architectures", "num_layers", "layer_types", "lineage", "blocks", "vocabulary_size", "params",
               "tokenizer")


def to_transformers(model, path: str, tokenizer=None, metadata: Optional[dict] = None,
                    overwrite: bool = False) -> str:
    """Exports a keras_hub causal LM (dense or ticket) as a Hugging Face ``transformers`` folder.

    See the module docstring for what is written and refused.

    Args:
        model: A keras_hub ``*CausalLM`` whose backbone is in keras_hub's exporter table (or a
            :func:`tf_lottery.find_ticket` result holding one).
        path: The folder; must not exist, be empty, or be a tf_lottery transformers export (replaced only
            with ``overwrite``).
        tokenizer: A :class:`~tf_lottery.data.text.ByteTokenizer`, a keras_hub tokenizer of the
            exporter's table, or None (the model's preprocessor's tokenizer when it has one, else no
            tokenizer files).
        metadata: Extra JSON-ready fields for ``metadata.json``.
        overwrite: Replace an existing transformers export of tf_lottery.

    Returns:
        ``path``.

    Raises:
        ValueError: for a model that is not a keras_hub causal LM, a family outside the exporter's table
            (naming the table), a setting the exporter drops, a tokenizer of another kind, or metadata
            that clashes with the export's own fields.
        FileExistsError: if ``path`` is a finished export and ``overwrite`` is False, or is not ours.
        ImportError: without keras_hub or safetensors (the ``hub`` and ``transformers`` extras).

    Example:
        >>> to_transformers(ticket, "exports/hf_ticket", tokenizer=ByteTokenizer())
        >>> # elsewhere, without Keras:
        >>> transformers.AutoModelForCausalLM.from_pretrained("exports/hf_ticket")
    """
    exporter = _exporter()
    model, backbone = _backbone_of(model)
    _check_faithful(backbone)
    tokenizer = tokenizer if tokenizer is not None else _present_tokenizer(model)
    kind = _tokenizer_kind(tokenizer, set(exporter.MODEL_TOKENIZER_CONFIGS))
    if kind == "bytes" and backbone.vocabulary_size != tokenizer.vocabulary_size:
        raise ValueError(f"tokenizer: the byte tokenizer has {tokenizer.vocabulary_size} ids and "
                         f"{type(backbone).__name__} predicts {backbone.vocabulary_size}; pass the model's own")
    with_caller_metadata(dict.fromkeys(_OWN_FIELDS), metadata)  # bad metadata fails before anything is written
    try:
        import safetensors  # noqa: F401  (keras_hub's exporter writes through it)
    except ImportError:
        raise ImportError("exporting to transformers writes safetensors files: pip install "
                          "'tf_lottery[transformers]'") from None
    path = _check_target(path, overwrite)
    ensure_free_space(os.path.dirname(path), 3 * state_bytes(model) + 8 * 2**20)
    token_ids = None
    if kind == "bytes":
        token_ids = {"bos_token_id": None, "eos_token_id": tokenizer.END, "pad_token_id": tokenizer.PAD}
    with atomic_path(path, folder=True) as staging:
        exporter.export_backbone(backbone, staging, include_lm_head=True,
                                 tokenizer=tokenizer if kind == "keras_hub" else None)
        config_path = os.path.join(staging, "config.json")
        with open(config_path, encoding="utf-8") as handle:
            config = _fix_config(json.load(handle), backbone, token_ids)
        write_json_atomic(config_path, config)
        if kind == "bytes":
            limit = getattr(backbone, "max_sequence_length", None)
            for name, payload in byte_tokenizer_files(tokenizer, limit).items():
                write_json_atomic(os.path.join(staging, name), payload)
        elif kind == "keras_hub":
            exporter.export_tokenizer(tokenizer, staging)
        text = _text_config(config)
        payload = {
            "format": FORMAT,
            "files": sorted([*os.listdir(staging), "metadata.json"]),
            "manifest": manifest.describe(staging),
            "exporter": _exporter_name(),
            "model_name": model.name,
            "model_class": type(model).__name__,
            "backbone_class": type(backbone).__name__,
            "architectures": config.get("architectures"),
            "num_layers": len(backbone.transformer_layers),
            "layer_types": text.get("layer_types"),
            "lineage": lineage(model),
            "blocks": recorded_kept(model),
            "vocabulary_size": int(backbone.vocabulary_size),
            "params": int(model.count_params()),
            "tokenizer": ({"kind": "bytes", "pad": tokenizer.PAD, "end": tokenizer.END,
                           "byte_offset": tokenizer.OFFSET, "tokens": {PAD_TOKEN: tokenizer.PAD,
                                                                       END_TOKEN: tokenizer.END}}
                          if kind == "bytes" else {"kind": "keras_hub", "class": type(tokenizer).__name__}
                          if kind == "keras_hub" else None),
        }
        write_json_atomic(os.path.join(staging, "metadata.json"), with_caller_metadata(payload, metadata))
    return path
