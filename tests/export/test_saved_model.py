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
                            capture_output=True, text=True, timeout=300)
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
