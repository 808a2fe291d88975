"""A language-model ticket exports as a Hugging Face transformers folder, for every family of keras_hub's
exporter table: transformers loads it in a process without Keras, with the ticket's logits, its smaller
layer count and its real per-layer settings; the byte tokenizer loads with AutoTokenizer, and greedy
generation is the Keras ticket's, token for token."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import tf_lottery as tl
from tf_lottery.data.text import ByteTokenizer
from tf_lottery.export import hugging_face

keras_hub = pytest.importorskip("keras_hub")
import keras  # noqa: E402

VOCABULARY = ByteTokenizer.vocabulary_size
_GROUPED = dict(vocabulary_size=VOCABULARY, hidden_dim=32, intermediate_dim=64, num_query_heads=2,
                num_key_value_heads=1)
# A tiny random configuration of each family of keras_hub's exporter, the task around it, and the layer
# the ticket removes. Sliding windows of 4 tokens are shorter than the 12 tokens compared.
CASES = {
    "GPT2Backbone": (dict(vocabulary_size=VOCABULARY, num_layers=3, num_heads=2, hidden_dim=32, intermediate_dim=64,
                          max_sequence_length=32, dropout=0.0), "GPT2CausalLM", 1),
    "GemmaBackbone": (dict(_GROUPED, num_layers=3, head_dim=16), "GemmaCausalLM", 1),
    "Gemma3Backbone": (dict(_GROUPED, num_layers=7, head_dim=16, image_size=None, use_post_ffw_norm=True,
                            use_post_attention_norm=True, use_sliding_window_attention=True, sliding_window_size=4),
                       "Gemma3CausalLM", 6),
    "Gemma4Backbone": (dict(_GROUPED, num_layers=7, head_dim=16, image_size=None, sliding_window_size=4),
                       "Gemma4CausalLM", 6),
    "Llama3Backbone": (dict(_GROUPED, num_layers=3), "Llama3CausalLM", 1),
    "MistralBackbone": (dict(_GROUPED, num_layers=3, sliding_window=4), "MistralCausalLM", 1),
    "QwenBackbone": (dict(_GROUPED, num_layers=3), "QwenCausalLM", 1),
    "Qwen3_5Backbone": (dict(_GROUPED, num_layers=8, head_dim=16, linear_num_key_heads=2, linear_num_value_heads=2,
                             linear_key_head_dim=8, linear_value_head_dim=8), "Qwen3_5CausalLM", 7),
}
FAMILIES = hugging_face.supported_families()
TEXT = "Time flies like an arrow; fruit flies like a banana."
PROMPT, NEW = "Never trust a", 8
IDS = ((np.arange(12, dtype="int32")[None] * 37 + 5) % (VOCABULARY - 2)) + 2  # 12 byte tokens

_LOAD = r"""
import json, sys
sys.modules["tf_lottery"] = None
sys.modules["keras_hub"] = None
import numpy as np, torch, transformers
folder, names = sys.argv[1], sys.argv[2].split(",")
text, prompt, new = json.loads(sys.argv[3])
torch.manual_seed(0)
out = {}
for name in names:
    path = folder + "/" + name
    try:
        model = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
        ids = torch.tensor(np.load(folder + "/ids.npy")).long()
        with torch.no_grad():
            np.save(path + ".logits.npy", model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits.numpy())
        tokenizer = transformers.AutoTokenizer.from_pretrained(path)
        encoded = tokenizer(prompt, return_tensors="pt")
        with torch.no_grad():
            generated = model.generate(**encoded, max_new_tokens=new, do_sample=False)
        out[name] = {"class": type(model).__name__, "layers": model.config.num_hidden_layers,
                     "encoded": tokenizer(text)["input_ids"], "decoded": tokenizer.decode(tokenizer(text)["input_ids"]),
                     "special": tokenizer("<end><pad>")["input_ids"], "end": tokenizer.eos_token_id,
                     "pad": tokenizer.pad_token_id, "generated": generated[0].tolist()}
    except Exception as error:
        out[name] = {"error": f"{type(error).__name__}: {error}"[:2000]}
out["keras imported"] = "keras" in sys.modules
print(json.dumps(out))
"""


def _ticket(name):
    kwargs, task, removed = CASES[name]
    keras.utils.set_random_seed(0)
    backbone = getattr(keras_hub.models, name)(**kwargs)
    lm = getattr(keras_hub.models, task)(backbone=backbone, preprocessor=None)
    return lm, tl.surgery.family_ticket(lm, [backbone.transformer_layers[removed].name])


def _generate(ticket, prompt_ids, new):
    """keras_hub's ``generate()`` of the Keras ticket with its greedy sampler, up to the first end token."""
    ticket.compile(sampler="greedy")
    length = len(prompt_ids) + new
    ids = np.zeros((1, length), "int32")
    ids[0, :len(prompt_ids)] = prompt_ids
    mask = np.zeros((1, length), bool)
    mask[0, :len(prompt_ids)] = True
    out = np.asarray(ticket.generate({"token_ids": ids, "padding_mask": mask}, max_length=length,
                                     stop_token_ids=[ByteTokenizer.END])["token_ids"])[0].tolist()
    return _until_end(out, len(prompt_ids))


def _greedy(ticket, prompt_ids, new):
    """Greedy decoding of the Keras ticket by its forward pass: the most likely next token, ``new`` times
    or until the end token (keras_hub 0.32's Gemma3CausalLM cannot ``generate()`` without a preprocessor,
    and compiling ``generate()`` takes up to a minute for Qwen 3.5)."""
    tokens = [int(t) for t in prompt_ids]
    for _ in range(new):
        logits = _forward(ticket, np.array([tokens], "int32"))
        tokens.append(int(np.argmax(logits[0, -1])))
        if tokens[-1] == ByteTokenizer.END:
            break
    return tokens


def _forward(ticket, ids):
    """The Keras ticket's logits for ``ids`` (positions given where the family takes them: Gemma 4)."""
    inputs = {"token_ids": ids, "padding_mask": np.ones_like(ids)}
    if isinstance(ticket.backbone.input, dict) and "position_ids" in ticket.backbone.input:
        inputs["position_ids"] = np.arange(ids.shape[1], dtype="int32")[None]
    return np.asarray(ticket(inputs, training=False))


def _until_end(tokens, start):
    ends = [i for i in range(start, len(tokens)) if tokens[i] == ByteTokenizer.END]
    return tokens[:ends[0] + 1] if ends else tokens


def _export_and_load(folder, names):
    """Each family's ticket exported with the byte tokenizer, then loaded by transformers in one process
    without Keras: ``({family: (dense, ticket, expected logits, greedy tokens)}, what transformers gave)``."""
    np.save(folder / "ids.npy", IDS)
    made = {}
    for name in names:
        dense, ticket = _ticket(name)
        hugging_face.to_transformers(ticket, str(folder / name), tokenizer=ByteTokenizer())
        logits = _forward(ticket, IDS)
        made[name] = (dense, ticket, logits, _greedy(ticket, ByteTokenizer().encode(PROMPT), NEW))
    done = subprocess.run([sys.executable, "-c", _LOAD, str(folder), ",".join(made), json.dumps([TEXT, PROMPT, NEW])],
                          capture_output=True, text=True, timeout=3600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0, done.stderr[-3000:]
    return made, json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Every family of the exporter's table, exported and loaded: ``(folder, made, loaded)``."""
    folder = tmp_path_factory.mktemp("hf")
    return (folder, *_export_and_load(folder, [name for name in FAMILIES if name in CASES]))


def _check_family(folder, made, loaded, name):
    """The folder of ``name``'s ticket is the ticket, in transformers: layers, per-layer settings, logits,
    tokenizer, greedy generation, metadata. Returns the largest logit difference."""
    assert loaded["keras imported"] is False
    dense, ticket, expected, keras_greedy = made[name]
    got = loaded[name]
    assert "error" not in got, got.get("error")
    config = json.loads((folder / name / "config.json").read_text())
    text = config.get("text_config", config)
    layers = len(ticket.backbone.transformer_layers)
    assert layers == len(dense.backbone.transformer_layers) - 1 == got["layers"]
    assert text.get("num_hidden_layers", text.get("n_layer")) == layers
    assert config["architectures"] == [got["class"]]
    if "layer_types" in text:  # the ticket's real per-layer settings, one per kept layer
        real = [getattr(layer, "layer_type", None) or ("sliding_attention" if layer.use_sliding_window_attention
                                                       else "full_attention")
                for layer in ticket.backbone.transformer_layers]
        assert text["layer_types"] == real and len(real) == layers
    logits = np.load(str(folder / name) + ".logits.npy")
    difference = float(np.abs(logits - expected).max())
    print(f"{name}: max |logit difference| {difference:.3g}")
    np.testing.assert_allclose(logits, expected, rtol=0, atol=1e-4)
    byte = ByteTokenizer()
    assert got["encoded"] == byte.encode(TEXT).tolist() and got["decoded"] == TEXT
    assert got["special"] == byte.encode("<end><pad>").tolist()  # written text stays bytes
    assert (got["end"], got["pad"]) == (byte.END, byte.PAD)
    assert _until_end(got["generated"], len(byte.encode(PROMPT))) == keras_greedy
    metadata = json.loads((folder / name / "metadata.json").read_text())
    removed = dense.backbone.transformer_layers[CASES[name][2]].name
    assert metadata["blocks"]["removed"] == [removed] and metadata["num_layers"] == layers
    assert metadata["tokenizer"]["tokens"] == {"<pad>": 0, "<end>": 1} and metadata["format"] == "transformers"
    return difference


@pytest.mark.transformers
def test_a_gpt2_ticket_loads_in_transformers_without_keras_with_its_logits_tokenizer_and_greedy_tokens(tmp_path):
    made, loaded = _export_and_load(tmp_path, ["GPT2Backbone"])
    _check_family(tmp_path, made, loaded, "GPT2Backbone")


@pytest.mark.transformers
@pytest.mark.slow
def test_the_exporter_table_is_read_and_every_family_has_a_tiny_case():
    assert {"GPT2Backbone", "GemmaBackbone", "Llama3Backbone", "MistralBackbone", "QwenBackbone"} <= set(FAMILIES)
    assert sorted(set(FAMILIES) - set(CASES)) == [], "a family of keras_hub's exporter without a tiny case here"


@pytest.mark.transformers
@pytest.mark.slow
@pytest.mark.parametrize("name", FAMILIES)
def test_a_ticket_loads_in_transformers_without_keras_with_its_logits_layers_and_tokenizer(exported, name):
    _check_family(*exported, name)


@pytest.mark.transformers
@pytest.mark.slow
@pytest.mark.parametrize("name", ["GPT2Backbone", "Llama3Backbone"])
def test_keras_hubs_own_greedy_generate_gives_the_tokens_transformers_generates(exported, name):
    _, made, loaded = exported
    prompt = ByteTokenizer().encode(PROMPT)
    assert _generate(made[name][1], prompt, NEW) == made[name][3] == _until_end(loaded[name]["generated"], len(prompt))


@pytest.mark.transformers
@pytest.mark.slow
def test_gemma3_and_qwen3_5_tickets_carry_their_own_layer_types_not_the_dense_models(exported):
    folder, made, _ = exported
    qwen = json.loads((folder / "Qwen3_5Backbone" / "config.json").read_text())["text_config"]["layer_types"]
    assert len(made["Qwen3_5Backbone"][1].backbone.layer_types) == 8  # what the ticket inherited and keras_hub writes
    assert qwen == ["linear_attention"] * 3 + ["full_attention"] + ["linear_attention"] * 3
    gemma3 = json.loads((folder / "Gemma3Backbone" / "config.json").read_text())["layer_types"]
    assert gemma3 == ["sliding_attention"] * 5 + ["full_attention"]


def _gpt2_lm(**kwargs):
    return _ticket("GPT2Backbone")[1] if not kwargs else keras_hub.models.GPT2CausalLM(
        backbone=keras_hub.models.GPT2Backbone(**{**CASES["GPT2Backbone"][0], **kwargs}), preprocessor=None)


def test_a_family_outside_the_exporters_table_is_refused_naming_the_table(tmp_path):
    backbone = keras_hub.models.OPTBackbone(vocabulary_size=64, num_layers=2, num_heads=2, hidden_dim=32,
                                            intermediate_dim=64)
    lm = keras_hub.models.OPTCausalLM(backbone=backbone, preprocessor=None)
    table = ", ".join(hugging_face.supported_families())
    with pytest.raises(ValueError, match=rf"OPTCausalLM cannot be exported to transformers: keras_hub [\d.]+ .* writes "
                                         rf"{table}; not OPTBackbone$"):
        hugging_face.to_transformers(lm, str(tmp_path / "hf"))
    assert not (tmp_path / "hf").exists()


def test_what_is_not_a_keras_hub_causal_lm_or_what_the_exporter_would_drop_is_refused_in_one_line(tmp_path):
    gemma2 = keras_hub.models.GemmaCausalLM(backbone=keras_hub.models.GemmaBackbone(
        **CASES["GemmaBackbone"][0], use_sliding_window_attention=True), preprocessor=None)
    cases = [
        (tl.models.cifar_resnet(8), ValueError, r"to_transformers exports a keras_hub CausalLM; got Functional"),
        (gemma2.backbone, ValueError, r"got GemmaBackbone 'gemma_backbone\w*' \(a backbone: export its task, e.g. "
                                      r"GemmaCausalLM\(backbone=\.\.\., preprocessor=None\)\)"),
        (gemma2, ValueError, r"GemmaBackbone with use_sliding_window_attention=True: keras_hub .* does not write "
                             r"use_sliding_window_attention \(its transformers config implies False\)"),
        (keras_hub.models.Gemma4CausalLM(backbone=keras_hub.models.Gemma4Backbone(
            **dict(CASES["Gemma4Backbone"][0], num_layers=3)), preprocessor=None), ValueError,
         r"Gemma4Backbone whose last layer \('decoder_block_2'\) attends through a sliding window: transformers "
         r"makes Gemma 4's last layer global"),
    ]
    for model, error, message in cases:
        with pytest.raises(error, match=message) as raised:
            hugging_face.to_transformers(model, str(tmp_path / "hf"))
        assert "\n" not in str(raised.value)
    lm = _gpt2_lm(num_layers=2)
    with pytest.raises(ValueError, match=r"tokenizer must be a tf_lottery.data.text.ByteTokenizer, a keras_hub "
                                         r"tokenizer of .*GPT2Tokenizer.*, or None; got str"):
        hugging_face.to_transformers(lm, str(tmp_path / "hf"), tokenizer="bytes")
    small = keras_hub.models.GPT2CausalLM(backbone=keras_hub.models.GPT2Backbone(
        **{**CASES["GPT2Backbone"][0], "vocabulary_size": 100}), preprocessor=None)
    with pytest.raises(ValueError, match=r"the byte tokenizer has 258 ids and GPT2Backbone predicts 100"):
        hugging_face.to_transformers(small, str(tmp_path / "hf"), tokenizer=ByteTokenizer())
    with pytest.raises(ValueError, match=r"metadata=\{'layer_types': \.\.\.\}: this key is the export's own"):
        hugging_face.to_transformers(lm, str(tmp_path / "hf"), metadata={"layer_types": []})
    assert not (tmp_path / "hf").exists()


@pytest.mark.transformers
def test_the_folder_is_written_whole_and_a_folder_that_is_not_ours_is_never_replaced(tmp_path):
    lm = _gpt2_lm(num_layers=2)
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "config.json").write_text("{}")  # someone's Hugging Face folder: the same file names
    (theirs / "model.safetensors").write_bytes(b"weights")
    with pytest.raises(FileExistsError, match=r"holds files that are not a tf_lottery transformers export's "
                                              r"\(config.json, model.safetensors\); it is never replaced"):
        hugging_face.to_transformers(lm, str(theirs), overwrite=True)
    assert (theirs / "model.safetensors").read_bytes() == b"weights"
    path = hugging_face.to_transformers(lm, str(tmp_path / "ours"), metadata={"seed": 3})
    files = sorted(os.listdir(path))
    assert files == ["config.json", "metadata.json", "model.safetensors"] and hugging_face.is_complete(path)
    metadata = json.loads((tmp_path / "ours" / "metadata.json").read_text())
    assert metadata["files"] == files and metadata["seed"] == 3 and metadata["tokenizer"] is None
    config = json.loads((tmp_path / "ours" / "config.json").read_text())
    assert config["n_layer"] == 2 and config["bos_token_id"] is None and config["eos_token_id"] is None  # not 50256
    with pytest.raises(FileExistsError, match=r"holds a finished transformers export; pass overwrite=True"):
        hugging_face.to_transformers(lm, path)
    hugging_face.to_transformers(lm, path, tokenizer=ByteTokenizer(), overwrite=True)
    assert sorted(os.listdir(path)) == ["config.json", "metadata.json", "model.safetensors", "tokenizer.json",
                                        "tokenizer_config.json"]
    assert [n for n in os.listdir(tmp_path) if n.startswith(".")] == []  # no staging folder left


def test_the_byte_table_is_a_bijection_of_printable_characters():
    characters = hugging_face._byte_characters()
    assert len(set(characters)) == 256 and all(c.isprintable() and not c.isspace() for c in characters)
    assert characters[ord("A")] == "A" and characters[ord(" ")] == "Ġ" and characters[ord("\n")] == "Ċ"


@pytest.mark.transformers
def test_a_keras_hub_tokenizer_of_the_preprocessor_is_written_by_keras_hub_with_its_end_id(tmp_path):
    vocabulary = {"<|endoftext|>": 0, "a": 1, "b": 2, "Ġ": 3, "ab": 4, "Ġa": 5, "c": 6}
    tokenizer = keras_hub.models.GPT2Tokenizer(vocabulary=vocabulary, merges=["a b", "Ġ a"])
    backbone = keras_hub.models.GPT2Backbone(vocabulary_size=7, num_layers=2, num_heads=2, hidden_dim=16,
                                             intermediate_dim=32, max_sequence_length=16)
    lm = keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=keras_hub.models.GPT2CausalLMPreprocessor(
        tokenizer=tokenizer, sequence_length=8))
    path = hugging_face.to_transformers(lm, str(tmp_path / "hf"))
    assert sorted(os.listdir(path)) == ["config.json", "merges.txt", "metadata.json", "model.safetensors",
                                        "tokenizer_config.json", "vocab.json"]
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert config["eos_token_id"] == config["bos_token_id"] == 0  # the tokenizer's <|endoftext|>, not 50256
    assert json.loads((tmp_path / "hf" / "vocab.json").read_text()) == vocabulary
    metadata = json.loads((tmp_path / "hf" / "metadata.json").read_text())
    assert metadata["tokenizer"] == {"kind": "keras_hub", "class": "GPT2Tokenizer"} and metadata["blocks"] is None
