"""Export stage: a trained model's export (SavedModel, TFLite, keras_hub preset) with what it records of
its run, its copy into TF Serving's layout (``--serving_dir``), and a language model's Hugging Face
transformers folder (``--hf_dir``).

Example:
    >>> save_export(config, ticket, run.file("export/ticket"), ticket_metadata(config, run, scoring, 0.91), data)
"""

from __future__ import annotations

import os
from typing import Optional

from tf_lottery import export
from tf_lottery.config import Config
from tf_lottery.core.io import nearest_existing
from tf_lottery.core.log import log
from tf_lottery.data import TextData
from tf_lottery.data.text import ByteTokenizer
from tf_lottery.experiments.runs import RunFolder
from tf_lottery.export import hugging_face, serving
from tf_lottery.results.records import Rewind, ScoringRecord


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


def check_hf_dir(config: Config, language: bool) -> None:
    """Fails before anything is written when ``--hf_dir`` cannot be honoured: an image run (only language
    models have a transformers folder), or a folder that cannot be written.

    Args:
        config: The run's config.
        language: Whether the run's data is a text corpus (a language model).

    Raises:
        ValueError: naming the flag and what it needs.

    Example:
        >>> check_hf_dir(Config.create(hf_dir="hf"), language=False)
        Traceback (most recent call last):
        ValueError: --hf_dir=hf writes Hugging Face transformers folders of language models ...
    """
    hf_dir = config.runtime.hf_dir
    if not language:
        raise ValueError(f"--hf_dir={hf_dir} writes Hugging Face transformers folders of language models "
                         f"(--task=causal_lm); --dataset={config.data.dataset} is an image dataset: drop --hf_dir")
    existing = nearest_existing(hf_dir)
    if not os.path.isdir(existing) or not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"--hf_dir={hf_dir}: {existing} is {'not writable' if os.path.isdir(existing) else 'a file'}")


def check_hf_model(model) -> None:
    """Fails before anything is written when ``--hf_dir`` cannot export ``model`` (its family, a setting
    keras_hub's exporter drops, a missing extra), in one line naming the flag.

    Args:
        model: The run's dense language model.

    Raises:
        ValueError: naming the flag and why the model cannot be exported.

    Example:
        >>> check_hf_model(dense)   # a keras_hub GPT-2 CausalLM passes
    """
    try:
        hugging_face.check_exportable(model)
    except (ValueError, ImportError) as error:
        raise ValueError(f"--hf_dir: {error}") from None


def publish_transformers(config: Config, model, run: RunFolder, metadata: dict) -> Optional[str]:
    """With ``--hf_dir``: writes ``model`` (a language model of a run) as a Hugging Face transformers
    folder named as its run folder, ``<hf_dir>/<run folder name>/`` (``dense-<hash>``,
    ``init_ticket-<hash>``: a model's Keras name changes from process to process), with the byte tokenizer,
    replacing that run's earlier one.

    Args:
        config: The run's config.
        model: The trained language model.
        run: Its run folder.
        metadata: What the folder's ``metadata.json`` records of the run.

    Returns:
        The folder, or None without ``--hf_dir``.

    Example:
        >>> publish_transformers(config, ticket, run, meta)
        'hf/init_ticket-6b7b7f746cfd'
    """
    if not config.runtime.hf_dir:
        return None
    path = os.path.join(config.runtime.hf_dir, os.path.basename(os.path.normpath(run.path)))
    hugging_face.to_transformers(model, path, tokenizer=ByteTokenizer(), metadata=metadata, overwrite=True)
    log(f"  transformers: {path}")
    return path


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
