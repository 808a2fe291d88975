import json
import os
import subprocess
import sys

import numpy as np
import pytest

import tf_lottery as tl
from tf_lottery import export  # Runs in a fresh interpreter where importing tf_lottery is impossible.
_LOADER = r"""
import sys
sys.modules["tf_lottery"] = None
import numpy as np, tensorflow as tf, keras
path, x_path = sys.argv[1], sys.argv[2]
x = np.load(x_path)
served = tf.saved_model.load(path + "/saved_model").signatures["serving_default"]
out = served(image=tf.constant(x))
np.save(x_path + ".saved_model.npy", out["logits"].numpy())
model = keras.models.load_model(path + "/model.keras", safe_mode=True)
np.save(x_path + ".keras.npy", model(x, training=False).numpy())
"""


@pytest.fixture(scope="module")
def ticket_result():
    model = tl.models.cifar_resnet(20, seed=0)
    batch = (np.random.default_rng(0).standard_normal((20, 32, 32, 3)).astype("float32"), np.arange(20) % 10)
    return tl.find_ticket(model, "snip", num_blocks=2, data=batch)


def test_exported_ticket_loads_without_tf_lottery_and_gives_the_same_outputs(tmp_path, ticket_result):
    path = export.save_ticket(ticket_result, str(tmp_path / "ticket"), {"seed": 0})
    x = np.random.default_rng(1).standard_normal((3, 32, 32, 3)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    result = subprocess.run([sys.executable, "-c", _LOADER, path, str(tmp_path / "x.npy")],
                            capture_output=True, text=True, timeout=3600)
    assert result.returncode == 0, result.stderr[-2000:]
    expected = ticket_result.model(x, training=False).numpy()
    np.testing.assert_allclose(np.load(str(tmp_path / "x.npy") + ".saved_model.npy"), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.load(str(tmp_path / "x.npy") + ".keras.npy"), expected, rtol=1e-5, atol=1e-6)
    meta = json.loads((tmp_path / "ticket" / "metadata.json").read_text())
    assert set(meta["lineage"]["removed"]) == set(ticket_result.removed)
    assert meta["ticket"]["criterion"] == "snip" and meta["seed"] == 0
    assert meta["input"]["name"] == "image"
    # The metadata is enough to rebuild the ticket and move the weights into it.
    rebuilt = tl.surgery.rebuild(meta["lineage"], weights_from=ticket_result.model)
    np.testing.assert_array_equal(rebuilt(x, training=False), expected)


def test_an_export_is_not_overwritten_unless_asked(tmp_path, ticket_result):
    path = str(tmp_path / "ticket")
    export.save_ticket(ticket_result, path)
    with pytest.raises(FileExistsError, match="overwrite"):
        export.save_ticket(ticket_result, path)
    export.save_ticket(ticket_result, path, {"again": True}, overwrite=True)
    assert json.loads(open(os.path.join(path, "metadata.json")).read())["again"] is True
    assert sorted(os.listdir(tmp_path)) == ["ticket"]  # no staging or .old folders left


def test_what_a_killed_export_left_is_removed_and_a_partial_one_replaced(tmp_path, ticket_result):
    (tmp_path / ".tmp-1234abcd-ticket" / "saved_model").mkdir(parents=True)  # a staging folder, killed
    (tmp_path / "ticket").mkdir()  # an empty folder: not a finished export
    export.save_ticket(ticket_result, str(tmp_path / "ticket"))
    assert sorted(os.listdir(tmp_path)) == ["ticket"] and export.is_complete(str(tmp_path / "ticket"))
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("not an export")
    with pytest.raises(FileExistsError, match="overwrite"):
        export.save_ticket(ticket_result, str(tmp_path / "mine"))  # never replaces what is not an export


def test_only_an_export_is_ever_replaced_even_with_overwrite(tmp_path, ticket_result, monkeypatch):
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "notes.txt").write_text("the user's file")
    monkeypatch.chdir(tmp_path / "work")
    model = ticket_result.model
    with pytest.raises(ValueError, match="path is empty"):
        export.save_model(model, "", overwrite=True)
    for path in (".", str(tmp_path), "/"):  # the working folder and its parents
        with pytest.raises(ValueError, match="is the working folder or one of its parents"):
            export.save_model(model, path, overwrite=True)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("not an export")
    with pytest.raises(FileExistsError, match=r"holds files that are not an export's \(notes.txt\); it is never "
                                              r"replaced, even with overwrite=True"):
        export.save_model(model, str(tmp_path / "mine"), overwrite=True)
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(FileExistsError, match="is not an export folder"):
        export.save_model(model, str(tmp_path / "a_file"), overwrite=True)
    assert (tmp_path / "work" / "notes.txt").read_text() == "the user's file"
    assert (tmp_path / "mine" / "notes.txt").read_text() == "not an export"


def test_a_folder_that_cannot_be_made_is_named_not_called_a_full_disk(tmp_path, ticket_result):
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(OSError, match=r"cannot create the export's folder .*a_file"):
        export.save_model(ticket_result.model, str(tmp_path / "a_file" / "e"))
    with pytest.raises(OSError, match="cannot create the export's folder /proc/x"):
        export.save_model(ticket_result.model, "/proc/x/e")


def test_a_subclassed_model_is_refused_with_what_to_do():
    import keras

    class Tiny(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(2)

        def call(self, x):
            return self.dense(x)

    model = Tiny()
    model(np.zeros((1, 3), "float32"))
    with pytest.raises(ValueError, match="is a subclassed model .* with no graph; save_model exports functional"):
        export.save_model(model, "exports/never")


def test_a_truncated_metadata_file_is_not_a_finished_export_and_is_replaced(tmp_path, ticket_result):
    path = export.save_ticket(ticket_result, str(tmp_path / "ticket"))
    meta = json.loads((tmp_path / "ticket" / "metadata.json").read_text())
    assert "metadata.json" in meta["files"] and "saved_model" in meta["files"]
    text = (tmp_path / "ticket" / "metadata.json").read_text()
    (tmp_path / "ticket" / "metadata.json").write_text(text[: len(text) // 2])
    assert not export.is_complete(path)
    with pytest.raises(export.DamagedExport, match=r"metadata.json is damaged \(not a JSON object\)"):
        export.read_metadata(path)
    export.save_ticket(ticket_result, path)  # a damaged export is replaced without overwrite=True
    assert export.is_complete(path) and export.read_metadata(path)["files"] == meta["files"]
    os.remove(os.path.join(path, "model.keras"))  # metadata names a file that is gone
    assert not export.is_complete(path)


def test_an_export_carries_its_manifest_and_reading_it_verifies_every_file(tmp_path, ticket_result):
    path = export.save_ticket(ticket_result, str(tmp_path / "ticket"))
    meta = export.read_metadata(path)
    assert "model.keras" in meta["manifest"] and "saved_model/saved_model.pb" in meta["manifest"]
    assert "metadata.json" not in meta["manifest"]
    keras_file = tmp_path / "ticket" / "model.keras"
    data = bytearray(keras_file.read_bytes())
    data[len(data) // 2] ^= 1  # a flipped byte: same size, other content
    keras_file.write_bytes(bytes(data))
    assert not export.is_complete(path)
    with pytest.raises(export.DamagedExport, match=r"does not match its manifest \(model.keras: changed \(same size, "
                                                   r"other content\)\): do not load it"):
        export.read_metadata(path)
    (tmp_path / "ticket" / "extra.py").write_text("import os")
    with pytest.raises(export.DamagedExport, match=r"extra.py: unrecorded"):
        export.read_metadata(path)
    assert export.read_metadata(path, verify=False)["model_name"] == meta["model_name"]


@pytest.mark.parametrize("metadata,error,message", [
    ({"files": ["model.keras"]}, ValueError, r"metadata=\{'files': ...\}: this key is the export's own"),
    ({"lineage": None, "manifest": {}}, ValueError, r"'lineage': ..., 'manifest': ...\}: these keys are"),
    ({"metrics": {"accuracy": float("nan")}}, ValueError, r"metadata\['metrics'\]\['accuracy'\] is nan: JSON has no"),
    ({"seed": object()}, TypeError, r"metadata\['seed'\] is a object, not a JSON value"),
    (["a"], TypeError, "metadata must be a dict of JSON values; got list"),
])
def test_caller_metadata_never_replaces_the_export_s_own_fields(tmp_path, ticket_result, metadata, error, message):
    with pytest.raises(error, match=message):
        export.save_ticket(ticket_result, str(tmp_path / "ticket"), metadata)
    assert not (tmp_path / "ticket").exists()  # checked before anything is written


@pytest.mark.parametrize("own", ["model.keras", "saved_model"])
def test_a_folder_of_your_own_model_is_never_replaced(tmp_path, ticket_result, own):
    (tmp_path / "best").mkdir()
    mine = tmp_path / "best" / own
    mine.mkdir() if own == "saved_model" else mine.write_bytes(b"my model")
    for overwrite in (False, True):
        with pytest.raises(FileExistsError, match="is never replaced"):
            export.save_ticket(ticket_result, str(tmp_path / "best"), overwrite=overwrite)
    assert os.listdir(tmp_path / "best") == [own]


_HEADS_LOADER = r"""
import sys, json
sys.modules["tf_lottery"] = None
import numpy as np, tensorflow as tf
path, x_path = sys.argv[1], sys.argv[2]
out = tf.saved_model.load(path + "/saved_model").signatures["serving_default"](image=tf.constant(np.load(x_path)))
print(json.dumps({key: value.numpy().tolist() for key, value in out.items()}))
"""


def test_a_two_headed_ticket_exports_every_head_by_name(tmp_path):
    from tests import zoo

    model = zoo.two_heads(seed=2)
    x = np.random.default_rng(1).standard_normal((3, 16, 16, 3)).astype("float32")
    result = tl.find_ticket(model, "snip", num_blocks=1, data=(x, np.arange(3) % 4), output="logits",
                            min_blocks_per_stage=0)
    path = export.save_ticket(result, str(tmp_path / "ticket"))
    np.save(tmp_path / "x.npy", x)
    done = subprocess.run([sys.executable, "-c", _HEADS_LOADER, path, str(tmp_path / "x.npy")], capture_output=True,
                          text=True, timeout=3600)
    assert done.returncode == 0, done.stderr[-2000:]
    served = json.loads(done.stdout.strip().splitlines()[-1])
    logits, aux = result.model(x, training=False)
    assert set(served) == {"logits", "probabilities", "class", "features", "logits_output", "aux"}
    np.testing.assert_allclose(served["logits_output"], logits.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(served["logits"], logits.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(served["aux"], aux.numpy(), rtol=1e-5, atol=1e-6)
    meta = json.loads((tmp_path / "ticket" / "metadata.json").read_text())
    assert meta["signatures"]["serving_default"]["outputs"][-2:] == ["logits_output", "aux"]
