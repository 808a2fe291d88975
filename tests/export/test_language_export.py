"""A language-model ticket exports as a SavedModel of token ids to logits that loads with TensorFlow
alone, and as a keras_hub preset that keras_hub loads without tf_lottery, generate() included."""

import json
import subprocess
import sys

import numpy as np
import pytest

import tf_lottery as tl
from tests import zoo
from tf_lottery.export.language import save_language_model

keras_hub = pytest.importorskip("keras_hub")

_TF_ONLY = r"""
import sys
sys.modules["tf_lottery"] = None
sys.modules["keras_hub"] = None
import numpy as np, tensorflow as tf
path, ids_path = sys.argv[1], sys.argv[2]
ids = np.load(ids_path)
served = tf.saved_model.load(path + "/saved_model").signatures["serving_default"]
out = served(token_ids=tf.constant(ids, tf.int32), padding_mask=tf.constant(np.ones_like(ids), tf.int32))
np.save(ids_path + ".saved_model.npy", out["logits"].numpy())
"""

_PRESET = r"""
import sys
sys.modules["tf_lottery"] = None
import numpy as np, keras_hub
path, ids_path = sys.argv[1], sys.argv[2]
ids = np.load(ids_path)
lm = keras_hub.models.CausalLM.from_preset(path + "/preset")
np.save(ids_path + ".preset.npy", np.asarray(lm({"token_ids": ids, "padding_mask": np.ones_like(ids)})))
prompt = {"token_ids": ids[:1, :6], "padding_mask": np.array([[1, 1, 1, 0, 0, 0]], bool)}
print(type(lm).__name__, lm.backbone.num_layers, np.asarray(lm.generate(prompt, max_length=6, stop_token_ids=None)["token_ids"]).shape)
"""


def _run(script, *args):
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=3600)
    assert done.returncode == 0, done.stderr[-3000:]
    return (done.stdout.strip().splitlines() or [""])[-1]


def test_a_causal_lm_ticket_exports_for_tensorflow_and_keras_hub(tmp_path):
    lm = zoo.gpt2_lm(dropout=0.0)
    ticket = tl.surgery.family_ticket(lm, ["transformer_layer_1"])
    path = save_language_model(ticket, str(tmp_path / "lm"), metadata={"seed": 0})
    metadata = json.loads((tmp_path / "lm" / "metadata.json").read_text())
    assert metadata["blocks"] == {"kept": ["transformer_layer_0", "transformer_layer_2"],
                                  "removed": ["transformer_layer_1"]}
    assert metadata["vocabulary_size"] == 100 and metadata["model_class"] == "GPT2CausalLM"
    assert metadata["files"] == ["metadata.json", "preset", "saved_model"] and metadata["seed"] == 0
    ids = np.random.default_rng(0).integers(1, 100, size=(2, 8)).astype("int32")
    np.save(tmp_path / "ids.npy", ids)
    expected = np.asarray(ticket({"token_ids": ids, "padding_mask": np.ones_like(ids)}, training=False))
    _run(_TF_ONLY, path, str(tmp_path / "ids.npy"))
    np.testing.assert_allclose(np.load(str(tmp_path / "ids.npy") + ".saved_model.npy"), expected, rtol=1e-5, atol=1e-5)
    assert _run(_PRESET, path, str(tmp_path / "ids.npy")) == "GPT2CausalLM 2 (1, 6)"
    np.testing.assert_array_equal(np.load(str(tmp_path / "ids.npy") + ".preset.npy"), expected)
    with pytest.raises(FileExistsError):
        save_language_model(ticket, path)


def test_a_model_that_does_not_take_token_ids_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"a language model export takes \['token_ids', 'padding_mask'\]"):
        save_language_model(tl.models.cifar_resnet(8), str(tmp_path / "x"))


def test_a_llama3_ticket_found_by_snip_is_a_llama3_causal_lm_whose_preset_generates_without_tf_lottery(tmp_path):
    backbone = keras_hub.models.Llama3Backbone(vocabulary_size=64, num_layers=4, hidden_dim=32, intermediate_dim=64,
                                               num_query_heads=2, num_key_value_heads=1)
    lm = keras_hub.models.Llama3CausalLM(backbone=backbone, preprocessor=None)  # not registered: by convention
    ids = np.random.default_rng(1).integers(1, 64, size=(4, 9)).astype("int32")
    batch = ({"token_ids": ids[:, :-1], "padding_mask": np.ones_like(ids[:, :-1])}, ids[:, 1:])
    result = tl.find_ticket(lm, "snip", data=batch, num_blocks=1, min_blocks_per_stage=0)
    assert type(result.model) is type(lm) and result.model.backbone.num_layers == 3
    path = save_language_model(result.model, str(tmp_path / "lm"))
    np.save(tmp_path / "ids.npy", ids[:, :-1])
    assert _run(_PRESET, path, str(tmp_path / "ids.npy")) == "Llama3CausalLM 3 (1, 6)"
    np.testing.assert_array_equal(np.load(str(tmp_path / "ids.npy") + ".preset.npy"),
                                  np.asarray(result.model(batch[0], training=False)))


def test_an_export_records_the_byte_tokenizers_id_mapping_and_the_tickets_own_name(tmp_path):
    from tf_lottery.data.text import ByteTokenizer

    tokenizer = ByteTokenizer()
    lm = tl.models.byte_decoder(layers=3, hidden=16, heads=2, length=8)
    ticket = tl.surgery.family_ticket(lm, ["transformer_layer_1"])
    path = save_language_model(ticket, str(tmp_path / "lm"), tokenizer=tokenizer)
    metadata = json.loads((tmp_path / "lm" / "metadata.json").read_text())
    assert metadata["model_name"] == "byte_decoder_minus1"
    mapping = metadata["tokenizer"]
    assert mapping == {"type": "bytes", "class": "tf_lottery.data.text.ByteTokenizer", "vocabulary_size": 258,
                       "pad_id": 0, "end_id": 1, "byte_offset": 2, "encoding": "utf-8",
                       "ids": "byte b (0-255) of a text's UTF-8 encoding is id b + 2; id 0 pads, id 1 ends a text"}
    text = "hé, %"  # encoded from the metadata alone, as a reader without tf_lottery would
    by_hand = [b + mapping["byte_offset"] for b in text.encode(mapping["encoding"])]
    assert by_hand == tokenizer.encode(text).tolist() and path.endswith("lm")
    with pytest.raises(ValueError, match=r"the tokenizer has 258 ids and 'gpt2_causal_lm\w*' predicts 100: it is not "
                                         r"the model's tokenizer"):
        save_language_model(zoo.gpt2_lm(), str(tmp_path / "other"), tokenizer=tokenizer)
    assert not (tmp_path / "other").exists()


def test_loading_a_trained_language_models_weights_from_a_run_silences_only_keras_optimizer_warning(tmp_path):
    import os
    import warnings

    import keras
    from tf_lottery.config import Config
    from tf_lottery.experiments.runs import RunFolder

    trained = zoo.gpt2_lm(dropout=0.0)
    trained.compile(optimizer=keras.optimizers.AdamW(1e-3),
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    ids = np.ones((2, 8), "int32")
    trained.fit({"token_ids": ids, "padding_mask": ids}, ids, epochs=1, verbose=0)  # builds AdamW's state
    run = RunFolder(Config.create(dataset="synthetic", runs_dir=str(tmp_path)), "dense")
    path = run.file("dense_final.weights.h5")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    trained.save_weights(path)
    fresh = zoo.gpt2_lm(dropout=0.0)  # a keras_hub task compiles itself: an optimizer without state
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fresh.load_weights(path)
    assert any("Skipping variable loading for optimizer" in str(w.message) for w in caught)  # Keras' own load
    fresh = zoo.gpt2_lm(dropout=0.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.warn("another warning")
        run.load_weights(fresh, "dense_final.weights.h5", retrains="nothing")
    assert [str(w.message) for w in caught] == ["another warning"]
    for a, b in zip(fresh.get_weights(), trained.get_weights()):
        np.testing.assert_array_equal(a, b)
