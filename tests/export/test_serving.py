"""Exports as TF pipelines consume them: raw images in, TFLite, TF Serving, and the serving page's examples.

Everything a consumer runs happens in a fresh process where importing tf_lottery is
impossible (``sys.modules["tf_lottery"] = None``).
"""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import tf_lottery as tl
from tf_lottery import experiments
from tf_lottery.export import serving
from tf_lottery.config import Config

SERVING_PAGE = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "howto", "serving.md")  # the serving page

_PRELUDE = """
import json, sys
sys.modules["tf_lottery"] = None
import numpy as np
EXPORT, images, labels = sys.argv[1], np.load(sys.argv[2]), np.load(sys.argv[3])
"""


def readme_examples() -> dict:
    """``{name: (language, code)}`` of the serving page's blocks marked ``<!-- example: name -->``."""
    text = open(SERVING_PAGE).read()
    found = re.findall(r"<!-- example: (\w+) -->\n```(\w+)\n(.*?)```", text, flags=re.S)
    return {name: (language, code) for name, language, code in found}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished init_ticket run on synthetic data, exported with both TFLite files."""
    folder = tmp_path_factory.mktemp("runs")
    config = Config.create(dataset="synthetic", train_size=None, val_size=64, depth=14, criterion="snip",
                           num_blocks=1, min_blocks_per_stage=1, length="1ep", batch_size=64, lr_drops=(),
                           runs_dir=str(folder), latency_batch_sizes=(1,), memory_batch_size=8, tflite=True,
                           tflite_dynamic_range=True)
    result = experiments.get("init_ticket")(config)
    images, labels = tl.data.get("synthetic").load(None, False, config.seed)["test"]
    np.save(folder / "images.npy", images)
    np.save(folder / "labels.npy", labels)
    return config, result, folder


def _consume(code: str, export: str, folder, language: str = "python") -> subprocess.CompletedProcess:
    if language == "sh":
        return subprocess.run(["bash", "-c", f"export PATH={os.path.dirname(sys.executable)}:$PATH\n{code}"],
                              env={**os.environ, "EXPORT": export}, capture_output=True, text=True, timeout=3600)
    return subprocess.run([sys.executable, "-c", _PRELUDE + code, export, str(folder / "images.npy"),
                           str(folder / "labels.npy")], capture_output=True, text=True, timeout=3600)


def test_the_readme_has_every_example():
    assert set(readme_examples()) == {"serve", "tfsmlayer", "tfdata", "tflite", "inspect"}


_REFUSALS = """
refused = 0
for bad in (images.astype("float32"), images[:, :8], images[..., :1]):   # dtype, height, channels
    try:
        serve(image=tf.constant(bad))
    except (TypeError, ValueError, tf.errors.InvalidArgumentError):
        refused += 1
"""


@pytest.mark.parametrize("side", ["dense", "ticket"])
def test_raw_images_give_the_recorded_test_accuracy_and_bad_ones_are_refused(run, side):
    """One TensorFlow-only process per side: the serving page's serve and tf.data examples, then
    three bad inputs (a float image, a wrong height, a wrong channel count)."""
    config, result, folder = run
    examples = readme_examples()
    check = (examples["serve"][1] + examples["tfdata"][1] + _REFUSALS +
             "\nprint(json.dumps({'accuracy': accuracy, 'n': len(labels), 'refused': refused, "
             "'tf_data_agrees': bool(np.array_equal(np.array(classes), out['class'].numpy()))}))\n")
    done = _consume(check, result.exports[side], folder)
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    recorded = getattr(result, side).accuracy
    assert abs(got["accuracy"] - recorded) * got["n"] <= 1 + 1e-9  # exact, or one image apart
    assert got["refused"] == 3 and got["tf_data_agrees"]


def test_tflite_agrees_with_the_saved_model(run):
    config, result, folder = run
    language, code = readme_examples()["tflite"]
    check = code + """
import tensorflow as tf
serve = tf.saved_model.load(f"{EXPORT}/saved_model").signatures["serving_default"]
rng = np.random.default_rng(0)
many = rng.integers(0, 256, (2000, *images.shape[1:])).astype("uint8")
reference = serve(image=tf.constant(images))
logits = np.sort(reference["logits"].numpy(), axis=1)
differ = tflite_classes != reference["class"].numpy()
near_ties = bool(np.all(logits[differ, -1] - logits[differ, -2] < 1e-4))
agreement_many = float(np.mean(run(image=many)["class"] == serve(image=tf.constant(many))["class"].numpy()))
quantized = tf.lite.Interpreter(model_path=f"{EXPORT}/model_dynamic_range.tflite")
agreement_quantized = float(np.mean(quantized.get_signature_runner("serving_default")(image=images)["class"]
                                    == reference["class"].numpy()))
gap = float(np.abs(run(image=images)["logits"] - reference["logits"].numpy()).max())
print(json.dumps({"near_ties": near_ties, "many": agreement_many, "quantized": agreement_quantized, "gap": gap}))
"""
    done = _consume(check, result.exports["ticket"], folder)
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["near_ties"] and got["many"] >= 0.999
    assert got["gap"] < 1e-3 and got["quantized"] >= 0.9
    meta = json.load(open(os.path.join(result.exports["ticket"], "metadata.json")))
    sizes = {t["path"]: t["bytes"] for t in meta["sizes"]["tflite"]}
    assert sizes["model_dynamic_range.tflite"] < sizes["model.tflite"] < meta["sizes"]["saved_model_bytes"]
    assert sizes["model.tflite"] == os.path.getsize(os.path.join(result.exports["ticket"], "model.tflite"))


def test_the_export_is_a_frozen_layer_of_a_new_model(run):
    config, result, folder = run
    language, code = readme_examples()["tfsmlayer"]
    check = code + """
before = [w.copy() for w in ticket.get_weights()]
print(json.dumps({"outputs": list(model.predict(images[:3], verbose=0).shape),
                  "trainable": [w.name for w in model.trainable_weights],
                  "frozen": all(np.array_equal(a, b) for a, b in zip(before, ticket.get_weights()))}))
"""
    done = _consume(check, result.exports["ticket"], folder)
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["outputs"] == [3, 2] and got["trainable"] == ["kernel", "bias"] and got["frozen"]


def test_saved_model_cli_shows_both_signatures(run):
    config, result, folder = run
    language, code = readme_examples()["inspect"]
    done = _consume(code, result.exports["ticket"], folder, language)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "signature_def['serving_default']" in done.stdout and "signature_def['preprocessed']" in done.stdout
    assert "DT_UINT8" in done.stdout and "(-1, 16, 16, 3)" in done.stdout


def test_the_metadata_says_what_the_signatures_do(run):
    config, result, folder = run
    meta = json.load(open(os.path.join(result.exports["ticket"], "metadata.json")))
    assert meta["input"] == {"name": "image", "dtype": "uint8", "shape": [16, 16, 3]}
    assert meta["class_names"] == ["0", "1", "2", "3"]
    assert meta["preprocessing"]["steps"] == ["cast to float32", "divide by 255",
                                              "subtract the per-pixel training mean (mean.npy)"]
    mean = np.load(os.path.join(result.exports["ticket"], "mean.npy"))
    data = tl.data.prepare(config.data_options())
    np.testing.assert_array_equal(mean, data.mean)
    assert meta["metrics"]["test_accuracy"] == result.ticket.accuracy


def test_the_export_experiment_exports_again_and_lays_out_tf_serving_versions(run, tmp_path):
    config, result, folder = run
    before = json.load(open(os.path.join(result.exports["ticket"], "metadata.json")))
    again = Config.create(experiment="export", serving_dir=str(tmp_path / "serving"), **{"from": (result.run_folder,)})
    first = experiments.get("export")(again)
    assert [e.side for e in first] == ["dense", "ticket"]
    assert [e.path for e in first] == [result.exports["dense"], result.exports["ticket"]]
    after = json.load(open(os.path.join(result.exports["ticket"], "metadata.json")))
    assert after["metrics"] == before["metrics"] and after["ticket"] == before["ticket"]
    dense_meta = tl.export.read_metadata(result.exports["dense"])
    assert dense_meta["metrics"]["test_accuracy"] == result.dense.accuracy
    assert after["lineage"] == before["lineage"]
    # No --tflite this time: the earlier export's TFLite files are of the same weights, written again, never lost.
    assert [t["path"] for t in after["sizes"]["tflite"]] == [t["path"] for t in before["sizes"]["tflite"]]
    assert {"model.tflite", "model_dynamic_range.tflite"} <= set(os.listdir(result.exports["ticket"]))
    second = experiments.get("export")(again)
    name = f"{result.ticket.model_name}-{os.path.basename(result.run_folder).split('-')[-1]}"
    assert first[1].serving_version == str(tmp_path / "serving" / name / "1")
    assert second[1].serving_version == str(tmp_path / "serving" / name / "2")
    assert sorted(os.listdir(tmp_path / "serving" / name)) == ["1", "2"]
    assert os.path.exists(tmp_path / "serving" / name / "2" / "saved_model.pb")
    # What TF Serving loads: the version folder is the SavedModel itself.
    check = """
import tensorflow as tf
loaded = tf.saved_model.load(EXPORT)
classes = loaded.signatures["serving_default"](image=tf.constant(images))["class"].numpy()
print(json.dumps(float(np.mean(classes == labels))))
"""
    done = _consume(check, str(tmp_path / "serving" / name / "2"), folder)
    assert done.returncode == 0, done.stderr[-3000:]
    images_count = len(np.load(folder / "labels.npy"))
    assert abs(json.loads(done.stdout.strip().splitlines()[-1]) - result.ticket.accuracy) * images_count <= 1 + 1e-9


def test_a_resized_run_serves_its_native_images(tmp_path):
    """With --input_shape the raw signature takes the dataset's own size and resizes inside."""
    data = tl.data.prepare(tl.data.DataOptions("synthetic", image_shape=(24, 24, 3)))
    model = tl.models.cifar_resnet(8, num_classes=4, input_shape=(24, 24, 3))
    prep = serving.Preprocessing.from_data(data)
    path = tl.export.save_model(model, str(tmp_path / "resized"), preprocessing=prep, tflite=True)
    raw = tl.data.get("synthetic").load(None, False, 0)["test"][0]
    import tensorflow as tf

    served = tf.saved_model.load(os.path.join(path, "saved_model")).signatures["serving_default"]
    expected = model.predict(data.splits["test"][0], verbose=0)
    np.testing.assert_allclose(served(image=tf.constant(raw))["logits"], expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(prep.apply(tf.constant(raw)).numpy(), data.splits["test"][0])  # bit for bit
    assert tl.export.read_metadata(path)["preprocessing"]["steps"][2] == "resize to 24x24 (bilinear; antialiased " \
                                                                        "when shrinking)"


def test_tflite_refuses_an_antialiased_resize_with_the_reason(tmp_path):
    data = tl.data.prepare(tl.data.DataOptions("synthetic", image_shape=(8, 8, 3)))
    model = tl.models.cifar_resnet(8, num_classes=4, input_shape=(8, 8, 3))
    with pytest.raises(ValueError, match="antialiased resize .* has no TFLite kernel"):
        tl.export.save_model(model, str(tmp_path / "small"), preprocessing=serving.Preprocessing.from_data(data),
                             tflite=True)
    assert not os.path.exists(tmp_path / "small")  # nothing half-written


def test_the_examples_serve_an_export_made_from_python_as_the_api_tour_makes_it(tmp_path):
    """The Python API tour's export (``save_ticket`` with the data's preprocessing and TFLite), served by
    the serving page's examples in a TensorFlow-only process."""
    data = tl.data.prepare(tl.data.DataOptions("synthetic", train_size=256, val_size=64, test_size=128))
    model = tl.models.cifar_resnet(20, input_shape=data.input_shape, num_classes=data.num_classes)
    x, y = tl.criteria.class_balanced_batch(*data.splits["train"], per_class=10)
    result = tl.find_ticket(model, "grasp", num_blocks=2, data=(x, y))
    preprocessing = tl.serving.Preprocessing.from_data(data)
    export = tl.export.save_ticket(result, str(tmp_path / "ticket"), preprocessing=preprocessing, tflite=True)
    images, labels = tl.data.get("synthetic").load(None, False, 0)["test"]
    np.save(tmp_path / "images.npy", images)
    np.save(tmp_path / "labels.npy", labels)
    examples = readme_examples()
    check = (examples["serve"][1] + examples["tfdata"][1] + examples["tflite"][1] +
             "\nprint(json.dumps({'n': len(labels), 'tf_data_agrees': bool(np.array_equal(np.array(classes), "
             "out['class'].numpy())), 'tflite_agreement': float(np.mean(tflite_classes == out['class'].numpy()))}))\n")
    done = _consume(check, export, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["n"] == len(labels) and got["tf_data_agrees"] and got["tflite_agreement"] >= 0.99
