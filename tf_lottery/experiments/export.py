"""``export``: export runs that already trained again, with nothing retrained.

Which runs: ``--from=<folder>[,<folder>...]`` (ticket, dense, sweep or compare folders; a
sweep or compare gives every point and the dense run of each seed), else the runs the
flags name (see :mod:`tf_lottery.experiments.existing`). Each model is rebuilt from its run
folder (θ0, the recorded decision, the final weights) and exported again in place
(``export/dense`` or ``export/ticket``, replaced atomically) with the current export format:
the raw-image and preprocessed signatures, ``model.keras``, ``mean.npy``, ``--tflite`` files
and metadata. With ``--serving_dir`` (which every run also honours for its new exports),
each SavedModel is also copied to ``<serving_dir>/<model name>-<run hash>/<n>/``, TF
Serving's layout, ``n`` one above the highest version already there. With ``--hf_dir`` (language
models; every run honours it too), each model is also written as a Hugging Face transformers folder,
``<hf_dir>/<run folder name>/`` (:func:`tf_lottery.export.to_transformers`, the byte tokenizer
included), replacing that run's earlier one.

Example:
    $ tf-lottery --experiment=export --from=runs/sweep-04e244843397 --tflite --serving_dir=serving
    $ tf-lottery --experiment=export --from=runs/init_ticket-6b7b7f746cfd --hf_dir=hf
"""

from __future__ import annotations

import dataclasses
from typing import List, Optional

from tf_lottery import export
from tf_lottery.config import Config
from tf_lottery.data import TextData, prepare
from tf_lottery.experiments.dense import dense_config
from tf_lottery.experiments.existing import targets, trained_ticket
from tf_lottery.config.experiments import register
from tf_lottery.experiments.fitting import trained_dense
from tf_lottery.experiments.publishing import (
    check_hf_dir, check_hf_model, dense_metadata, publish, publish_transformers, save_export, ticket_metadata,
)
from tf_lottery.core.log import log
from tf_lottery.results.records import ModelRecord, RunRecord
from tf_lottery.experiments.runs import RunFolder
from tf_lottery.reports.tables import markdown_table


@dataclasses.dataclass(frozen=True)
class Exported:
    """One export written by the ``export`` experiment.

    Attributes:
        run_folder: The run the model comes from.
        side: "dense" or "ticket".
        model: The model's name.
        path: The export folder.
        serving_version: The TF Serving version folder, or None without ``--serving_dir``.
        sizes: Bytes of the SavedModel and of each ``.tflite`` file (from ``metadata.json``).
        transformers: The Hugging Face transformers folder, or None without ``--hf_dir``.
    """

    run_folder: str
    side: str
    model: str
    path: str
    serving_version: Optional[str]
    sizes: dict
    transformers: Optional[str] = None


def _export(config: Config, run: RunFolder, side: str, model, data, metadata: dict) -> Exported:
    path = run.file(f"export/{side}")
    with run.lock(config.runtime.wait_for_lock):
        # An earlier export's TFLite files are of the same weights: they are written again, never lost.
        had = set(export.read_metadata(path, verify=False).get("files", [])) if export.is_complete(path) else set()
        config = config.replace(tflite=config.runtime.tflite or bool(had & {"model.tflite"}),
                                tflite_dynamic_range=config.runtime.tflite_dynamic_range or bool(
                                    had & {"model_dynamic_range.tflite"}))
        save_export(config, model, path, metadata, data, overwrite=True)
        run.seal()
    log(f"{side}: exported {model.name} to {path}")
    sizes = export.read_metadata(path)["sizes"]
    version = publish(config, model.name, path, run)
    return Exported(run.path, side, model.name, path, version, sizes, publish_transformers(config, model, run, metadata))


@register("export", scope=None, takes_from=True)
def export_runs(config: Config) -> List[Exported]:
    """Exports finished runs again (see the module docstring); returns what it wrote.

    Raises:
        ValueError: for a folder that is not a run folder or a run that has not finished.

    Example:
        $ tf-lottery --experiment=export --from=runs/init_ticket-6b7b7f746cfd --tflite
    """
    found = targets(config)
    exported, done_dense, data_of = [], set(), {}
    for target in found:
        point = target.config.replace(tflite=config.runtime.tflite,
                                      tflite_dynamic_range=config.runtime.tflite_dynamic_range,
                                      serving_dir=config.runtime.serving_dir, hf_dir=config.runtime.hf_dir,
                                      wait_for_lock=config.runtime.wait_for_lock)
        own = dense_config(point)
        key = own.digest("dense")
        if key not in data_of:
            data_of.clear()  # one dataset in memory at a time (targets come seed by seed)
            data_of[key] = prepare(own.data_options(), config.data_mean_dir())
        data = data_of[key]
        if point.runtime.hf_dir:
            check_hf_dir(point, isinstance(data, TextData))
        dense_run = RunFolder(own, "dense")
        if dense_run.path not in done_dense:
            dense = trained_dense(own, data, dense_run)
            if point.runtime.hf_dir:
                check_hf_model(dense)
            saved = dense_run.read_json("dense.json", ModelRecord.from_dict)
            accuracy = saved.accuracy if saved is not None else None
            exported.append(_export(point, dense_run, "dense", dense, data, dense_metadata(own, dense_run, accuracy)))
            done_dense.add(dense_run.path)
        if target.ticket_folder is None:
            continue
        run = RunFolder(point, "ticket")
        result = run.read_json("result.json", RunRecord.from_dict)
        ticket = trained_ticket(point, run, data)
        exported.append(_export(point, run, "ticket", ticket, data,
                                ticket_metadata(point, run, result.scoring, result.ticket.accuracy, result.rewind)))
    rows = [[e.side, e.model, e.path, f"{e.sizes['saved_model_bytes'] / 2**20:.2f}",
             ", ".join(f"{t['path']} {t['bytes'] / 2**20:.2f}" for t in e.sizes.get("tflite", [])) or "-",
             e.serving_version or "-"] + ([e.transformers or "-"] if config.runtime.hf_dir else []) for e in exported]
    print(markdown_table(["side", "model", "export", "SavedModel (MiB)", "TFLite (MiB)", "TF Serving"]
                         + (["transformers"] if config.runtime.hf_dir else []), rows,
                         align="llllll" + ("l" if config.runtime.hf_dir else "")))
    return exported
