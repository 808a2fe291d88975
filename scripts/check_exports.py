"""Checks exports the way a TF pipeline uses them, on the run's real raw test images, and saves the numbers.

For every export under the given run folders (``export/dense`` and ``export/ticket``; a
sweep or compare folder gives all its points): the ``serving_default`` signature on the
dataset's raw uint8 test images against the test accuracy recorded in the run, the size of
the SavedModel and of each ``.tflite`` file, and each ``.tflite`` file's top-1 agreement
with the SavedModel (and its accuracy). Results go to ``<out>/results.json`` and
``<out>/report.md`` (written atomically) and are printed.

    python scripts/check_exports.py --runs=runs/sweep-3ea754374ec1 --out=benchmarks/results/serving_fashion_mnist
"""

from __future__ import annotations

import os
import platform

import numpy as np
import tensorflow as tf
from absl import app, flags

import tf_lottery as tl
from tf_lottery.config import Config
from tf_lottery.experiments.existing import targets
from tf_lottery.experiments.dense import dense_config
from tf_lottery.core.io import write_json_atomic, write_text_atomic
from tf_lottery.experiments.runs import RunFolder
from tf_lottery.reports.tables import markdown_table

_RUNS = flags.DEFINE_list("runs", None, "Run folders (ticket, dense, sweep or compare).", required=True)
_OUT = flags.DEFINE_string("out", "benchmarks/results/serving", "Output folder.")


def _raw_test(config: Config):
    images, labels = tl.data.get(config.data.dataset).load(config.data.data_dir, False, config.seed)["test"]
    count = config.data.test_size or len(labels)
    return np.asarray(images[:count]), np.asarray(labels[:count])


def _check(path: str, images: np.ndarray, labels: np.ndarray) -> dict:
    meta = tl.export.read_metadata(path)
    loaded = tf.saved_model.load(os.path.join(path, "saved_model"))
    serve = loaded.signatures["serving_default"]
    classes = np.concatenate([serve(image=tf.constant(images[i:i + 500]))["class"].numpy()
                              for i in range(0, len(images), 500)])
    row = {"export": path, "model": meta["model_name"], "recorded_accuracy": meta["metrics"]["test_accuracy"],
           "raw_accuracy": float(np.mean(classes == labels)), "images": int(len(labels)),
           "saved_model_bytes": meta["sizes"]["saved_model_bytes"], "tflite": []}
    for item in meta["sizes"].get("tflite", []):
        lite = tl.serving.tflite_outputs(os.path.join(path, item["path"]), images, batch=500)["class"]
        row["tflite"].append({"file": item["path"], "bytes": item["bytes"],
                              "agreement": float(np.mean(lite == classes)),
                              "accuracy": float(np.mean(lite == labels))})
    return row


def main(argv):
    del argv
    found = [t for folder in _RUNS.value for t in targets(Config.create(experiment="export", **{"from": (folder,)}))]
    rows, seen = [], set()
    for target in found:
        images, labels = _raw_test(target.config)
        dense = RunFolder(dense_config(target.config), "dense").file("export/dense")
        tickets = [os.path.join(target.ticket_folder, "export", "ticket")] if target.ticket_folder else []
        for path in [dense] + tickets:
            if path not in seen:
                seen.add(path)
                rows.append(_check(path, images, labels))
                print(f"{rows[-1]['model']}: raw {100 * rows[-1]['raw_accuracy']:.2f} % vs recorded "
                      f"{100 * rows[-1]['recorded_accuracy']:.2f} %")
    table = [[r["model"], os.path.basename(os.path.dirname(os.path.dirname(r["export"]))),
              f"{100 * r['recorded_accuracy']:.2f}", f"{100 * r['raw_accuracy']:.2f}",
              f"{r['saved_model_bytes'] / 2**20:.2f}",
              *[f"{t['bytes'] / 2**20:.2f} ({100 * t['agreement']:.2f} %, {100 * t['accuracy']:.2f} %)"
                for t in r["tflite"]]] for r in rows]
    headers = ["model", "run", "recorded acc. (%)", "raw-image signature acc. (%)", "SavedModel (MiB)",
               "model.tflite (MiB; agreement, acc.)", "model_dynamic_range.tflite (MiB; agreement, acc.)"]
    width = max(len(t) for t in table)
    text = markdown_table(headers[:width], [t + [""] * (width - len(t)) for t in table], align="ll" + "r" * (width - 2))
    os.makedirs(_OUT.value, exist_ok=True)
    write_json_atomic(os.path.join(_OUT.value, "results.json"),
                      {"runs": _RUNS.value, "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
                       "rows": rows})
    write_text_atomic(os.path.join(_OUT.value, "report.md"),
                      "# Exports checked as a TF pipeline uses them\n\n"
                      f"`python scripts/check_exports.py --runs={','.join(_RUNS.value)}`\n\n{text}\n")
    print(text)


if __name__ == "__main__":
    app.run(main)
