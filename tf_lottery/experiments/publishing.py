"""Export stage: a trained model's export (SavedModel, TFLite, keras_hub preset) with what it records of
its run, and its copy into TF Serving's layout (``--serving_dir``).

Example:
    >>> save_export(config, ticket, run.file("export/ticket"), ticket_metadata(config, run, scoring, 0.91), data)
"""

from __future__ import annotations

import os
from typing import Optional

from tf_lottery import export
from tf_lottery.config import Config
from tf_lottery.core.log import log
from tf_lottery.data import TextData
from tf_lottery.experiments.runs import RunFolder
from tf_lottery.export import serving
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


def save_export(config: Config, model, path: str, metadata: dict, data, overwrite: bool = False) -> None:
    """Exports a trained model of a run: :func:`tf_lottery.export.save_model` for images (with the
    run's preprocessing and TFLite flags), :func:`tf_lottery.export.save_language_model` for a
    language model (its token SavedModel and keras_hub preset)."""
    if isinstance(data, TextData):
        export.save_language_model(model, path, metadata, overwrite=overwrite)
    else:
        export.save_model(model, path, metadata, overwrite=overwrite, **export_options(config, data))


def export_options(config: Config, data) -> dict:
    """:func:`tf_lottery.export.save_model`'s options for a run: its preprocessing and the TFLite flags."""
    return {"preprocessing": serving.Preprocessing.from_data(data), "tflite": config.runtime.tflite,
            "tflite_dynamic_range": config.runtime.tflite_dynamic_range}
