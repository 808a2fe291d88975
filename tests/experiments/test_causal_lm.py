"""--task=causal_lm end to end: a byte decoder's layer ticket through init_ticket, sweep, resume and export,
on a small corpus the test writes in the fortunes format (the real corpus: flags/fortunes_causal_lm.cfg)."""

import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

keras_hub = pytest.importorskip("keras_hub")

from tf_lottery import experiments  # noqa: E402
from tf_lottery import training as train  # noqa: E402
from tf_lottery.config import Config  # noqa: E402
from tf_lottery.data import prepare  # noqa: E402
from tests.corpora import tiny_fortunes  # noqa: E402


def _config(tmp_path, **changes):
    values = dict(task="causal_lm", dataset="fortunes", data_dir=tiny_fortunes(tmp_path / "corpus"),
                  model="byte_decoder", num_layers=3, hidden_dim=16, num_heads=2, sequence_length=16,
                  train_size=None, val_size=32, test_size=32, optimizer="adamw", learning_rate=0.01,
                  batch_size=16, length="2ep", warmup="4it", lr_drops=(), criterion="snip", num_blocks=1,
                  min_blocks_per_stage=1, score_sequences=16, evals=("clean", "cost", "latency", "generation"),
                  latency_batch_sizes=(1, 4), runs_dir=str(tmp_path / "runs"))
    values.update(changes)
    if values["model"] != "byte_decoder":
        for name in ("num_layers", "hidden_dim", "num_heads"):
            values.pop(name)
    return Config.create(**values)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    config = _config(tmp_path_factory.mktemp("lm"))
    return config, experiments.get("init_ticket")(config)


def test_the_ticket_is_a_smaller_decoder_measured_as_a_language_model(finished):
    config, result = finished
    assert result.dense.blocks == 3 and result.ticket.blocks == 2 and len(result.ticket.removed) == 1
    for side in (result.dense, result.ticket):
        clean = side.evals["clean"]
        assert clean["loss"] == pytest.approx(np.log(clean["perplexity"]))
        assert 1 < clean["perplexity"] < 258  # it learned something of a byte vocabulary
        assert side.evals["cost"]["flops"] == pytest.approx(16 * side.evals["cost"]["flops_per_token"], abs=1)
        assert set(side.evals["latency"]) == {"1", "4"}
        generation = side.evals["generation"]
        assert (generation["prompt_tokens"], generation["new_tokens"]) == (8, 8)  # half the sequence each
        assert generation["tokens_per_s"] == pytest.approx(1 / generation["latency_per_token_s"])
    assert result.ticket.evals["cost"]["layers"] == 2 and result.dense.evals["cost"]["layers"] == 3
    assert result.ticket.params < result.dense.params
    with open(os.path.join(result.run_folder, "summary.md")) as handle:
        summary = handle.read()
    assert "held-out perplexity" in summary and "FLOPs per token" in summary and "training tokens/s" in summary
    assert result.dense.energy.status and result.ticket.training.timing.train_seconds > 0


def test_the_run_is_named_by_the_task_and_an_image_run_keeps_its_name(finished):
    config, result = finished
    identity = config.data.identity()
    assert identity["task"] == "causal_lm" and identity["sequence_length"] == 16
    assert config.training.identity()["optimizer"] == "adamw"
    assert config.replace(sequence_length=32).digest("dense") != config.digest("dense")
    image = Config().data.identity()
    assert "task" not in image and "sequence_length" not in image and "optimizer" not in Config().training.identity()


def test_the_export_serves_the_perplexity_the_run_measured(finished):
    config, result = finished
    export = os.path.join(result.run_folder, "export", "ticket")
    with open(os.path.join(export, "metadata.json")) as handle:
        metadata = json.load(handle)
    assert {"saved_model", "preset", "metadata.json"} <= set(metadata["files"])
    assert metadata["lineage"]["removed"] == result.ticket.removed and metadata["config_hash"]
    ids, mask = prepare(config.data_options()).token_windows("test")
    np.save(os.path.join(export, "..", "ids.npy"), ids)
    np.save(os.path.join(export, "..", "mask.npy"), mask)
    # A TensorFlow-only process: the SavedModel's logits give the recorded held-out perplexity.
    script = f"""
import numpy as np, tensorflow as tf
serve = tf.saved_model.load({os.path.join(export, 'saved_model')!r}).signatures["serving_default"]
ids, mask = np.load({os.path.join(export, '..', 'ids.npy')!r}), np.load({os.path.join(export, '..', 'mask.npy')!r})
logits = serve(token_ids=tf.constant(ids[:, :-1], tf.int32), padding_mask=tf.constant(mask[:, :-1], tf.int32))
logits = list(logits.values())[0].numpy().astype("float64")
logp = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) - logits.max(-1, keepdims=True)
picked = np.take_along_axis(logp, ids[:, 1:, None].astype(int), -1)[..., 0]
real = mask[:, 1:].astype(bool)
print(float(np.exp(-picked[real].mean())))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    served = float(done.stdout.strip().splitlines()[-1])
    assert served == pytest.approx(result.ticket.evals["clean"]["perplexity"], rel=1e-4)


def test_a_killed_ticket_training_is_trained_again_alone(finished, monkeypatch):
    config, result = finished
    for name in ("result.json", "train_ticket.json", "ticket_final.weights.h5", "summary.md", "evals"):
        path = os.path.join(result.run_folder, name)
        shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
    trained = []
    real_fit = train.fit
    monkeypatch.setattr(train, "fit", lambda model, *a, **k: trained.append(a[3]) or real_fit(model, *a, **k))
    again = experiments.get("init_ticket")(config)
    assert trained == ["ticket"]
    assert again.ticket.removed == result.ticket.removed
    assert again.dense.evals["clean"] == result.dense.evals["clean"]  # the dense run was reused, not retrained


def test_a_sweep_over_criteria_cuts_a_ticket_per_criterion(finished):
    config, _ = finished
    sweep = experiments.get("sweep")(config.replace(experiment="sweep", sweep_criteria=("snip", "grasp"),
                                                    evals=("clean", "cost")))
    assert sorted(row.criterion for row in sweep.rows) == ["grasp", "snip"]
    assert all(row.ticket_flops < row.dense_flops for row in sweep.rows)
    assert all(row.dense_perplexity > 1 and row.ticket_perplexity > 1 for row in sweep.rows)
    with open(os.path.join(sweep.run_folder, "report.md")) as handle:
        report = handle.read()
    table = report.split("## Held-out perplexity")[1].split("\n## ")[0]
    for row in sweep.rows:  # each cell's perplexities, and one seed's difference: no interval
        line = next(line for line in table.splitlines() if line.startswith(f"| {row.criterion} "))
        assert f"{row.dense_perplexity:.3f}" in line and f"{row.ticket_perplexity:.3f}" in line


@pytest.mark.parametrize("flat, message", [
    (dict(task="classify"), "--dataset=fortunes is data for --task=causal_lm; got --task=classify"),
    (dict(model="cifar_resnet"), "--task=causal_lm trains a language model: --model=byte_decoder or "
                                 "package.module:function (yours); got --model=cifar_resnet"),
    (dict(evals=("clean", "corruptions")), "--evals=corruptions measure images; --task=causal_lm takes "
                                           "clean,cost,generation,latency"),
    (dict(method="filters"), "--task=causal_lm makes layer tickets"),
    (dict(task="classify", dataset="fashion_mnist"), "--model=byte_decoder builds a model for --task=causal_lm; "
                                                     "got --task=classify"),
])
def test_what_a_language_run_cannot_do_is_refused_when_the_config_is_built(tmp_path, flat, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _config(tmp_path, **flat)


def test_an_image_dataset_is_refused_for_a_language_task_and_generation_for_images():
    with pytest.raises(ValueError, match=r"--dataset=fashion_mnist is data for --task=classify; got "
                                         r"--task=causal_lm \(text corpora: fortunes, python_docs, tfds_text:<name>\)"):
        Config.create(task="causal_lm")
    with pytest.raises(ValueError, match="--evals=generation measures a language model's generate"):
        Config.create(evals=("clean", "generation"))


def test_the_cli_refuses_an_empty_corpus_and_writes_nothing(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    runs = tmp_path / "runs"
    done = subprocess.run([sys.executable, "-m", "tf_lottery.cli", "--flagfile=flags/fortunes_causal_lm.cfg",
                           f"--data_dir={empty}", f"--runs_dir={runs}"], capture_output=True, text=True,
                          cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert f"the corpus at {empty} is empty" in done.stderr
    assert not runs.exists() or not any(name for name in os.listdir(runs) if not name.startswith("."))


def test_the_export_experiment_exports_a_language_run_again(finished):
    import warnings

    config, result = finished
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        written = experiments.get("export")(config.replace(experiment="export", **{"from": (result.run_folder,)}))
    assert not [w for w in caught if "Skipping variable loading for optimizer" in str(w.message)]
    path = os.path.join(result.run_folder, "export", "ticket")
    with open(os.path.join(path, "metadata.json")) as handle:
        metadata = json.load(handle)
    assert metadata["model_class"] == "GPT2CausalLM" and metadata["model_name"] == "byte_decoder_minus1"
    assert (metadata["tokenizer"]["type"], metadata["tokenizer"]["byte_offset"]) == ("bytes", 2)
    assert any(path in str(item) for item in written)


def test_lottery_scores_the_trained_decoder_and_rewinds_the_ticket_to_theta0(tmp_path):
    config = _config(tmp_path, experiment="lottery", criterion="block_influence", evals=("clean", "cost"),
                     keep_epochs=(0,), export=False)
    result = experiments.get("lottery")(config)
    assert result.rewind.epoch == 0 and len(result.ticket.removed) == 1
    assert result.ticket.blocks == 2 and 1 < result.ticket.evals["clean"]["perplexity"] < 258


@pytest.mark.slow
def test_a_lottery_decoder_heals_by_distillation_from_the_trained_dense_decoder(tmp_path):
    config = _config(tmp_path, experiment="lottery", criterion="block_influence", evals=("clean",), rewind="lr",
                     rewind_epoch=1, warmup="0ep", heal="distil", heal_hidden=0.1, export=False)
    result = experiments.get("lottery")(config)
    history = result.ticket.training.history
    assert history["epoch"] == [0] and history["loss"] == history["distillation_loss"]
    assert result.ticket.blocks == 2 and 1 < result.ticket.evals["clean"]["perplexity"] < 258


def test_describe_lists_the_decoder_layers_with_their_params_by_hand(tmp_path, capsys):
    totals = experiments.get("describe")(_config(tmp_path, experiment="describe"))
    # a GPT-2 layer of hidden h: Q, K, V, O (h x h + h each), the MLP (h x 4h + 4h, 4h x h + h), two LayerNorms (2h)
    h = 16
    per_layer = 4 * (h * h + h) + (h * 4 * h + 4 * h) + (4 * h * h + h) + 2 * 2 * h
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| transformer_layer_")]
    assert len(rows) == 3 and all(line.split("|")[4].strip() == str(per_layer) for line in rows)
    # per token: the projections and the MLP (12 h^2 multiply-adds) and attention over the 16 positions
    # (scores and the weighted values: 2 x 16 x h), the convention of tl.graph.cost
    per_token = 12 * h * h + 2 * 16 * h
    assert all(line.split("|")[5].strip() == f"{per_token:,}" for line in rows)
    assert totals["layer_flops_per_token"] == {f"transformer_layer_{i}": per_token for i in range(3)}
    assert (totals["blocks"], totals["removable"], totals["max_removable"]) == (3, 3, 2)


def test_a_tfds_text_corpus_and_the_python_docs_are_language_data():
    for name in ("tfds_text:tiny_shakespeare", "python_docs"):
        assert Config.create(task="causal_lm", dataset=name, model="byte_decoder").data.dataset == name
    with pytest.raises(ValueError, match=r"--dataset=tfds:mnist is data for --task=classify"):
        Config.create(task="causal_lm", dataset="tfds:mnist", model="byte_decoder")


def llama3_lm(input_shape, num_classes, layers=3):
    """A user's own language model for ``--model=tests.experiments.test_causal_lm:llama3_lm``: a tiny
    keras_hub Llama 3 on the data's vocabulary (not registered anywhere)."""
    backbone = keras_hub.models.Llama3Backbone(vocabulary_size=num_classes, num_layers=layers, hidden_dim=16,
                                               intermediate_dim=32, num_query_heads=2, num_key_value_heads=1)
    return keras_hub.models.Llama3CausalLM(backbone=backbone, preprocessor=None)


def test_your_own_keras_hub_language_model_runs_on_the_command_line_and_exports_in_its_class(tmp_path, capsys):
    config = _config(tmp_path, model="tests.experiments.test_causal_lm:llama3_lm", model_args="layers=3",
                     evals=("clean", "generation"))
    result = experiments.get("init_ticket")(config)
    perplexity = result.dense.evals["clean"]["perplexity"]
    assert f"dense: held-out perplexity {perplexity:.3f} (" in capsys.readouterr().out  # not an accuracy
    assert (result.dense.blocks, result.ticket.blocks, result.dense.model_name) == (3, 2, "llama3_lm")
    assert 1 < result.ticket.evals["clean"]["perplexity"] < 258
    with open(os.path.join(result.run_folder, "export", "ticket", "metadata.json")) as handle:
        metadata = json.load(handle)
    assert metadata["model_class"] == "Llama3CausalLM" and metadata["blocks"]["removed"] == result.ticket.removed
    reloaded = keras_hub.models.CausalLM.from_preset(os.path.join(result.run_folder, "export", "ticket", "preset"))
    assert type(reloaded).__name__ == "Llama3CausalLM" and reloaded.backbone.num_layers == 2


@pytest.mark.parametrize("function, message", [
    ("small_resnet", r"--model=tests.user_models:small_resnet refused \(input_shape=\(16,\), num_classes=258, "
                     r"--model_args \{\}\): .*expected min_ndim=4"),
    ("per_token_mlp", r"--model=tests.user_models:per_token_mlp builds 'per_token_mlp', which takes \['input_layer'\]; "
                      r"--task=causal_lm trains a language model that takes \['token_ids', 'padding_mask'\]"),
])
def test_your_own_model_that_is_not_a_language_model_is_refused_before_anything_is_written(tmp_path, function, message):
    config = _config(tmp_path, model=f"tests.user_models:{function}", batch_size=8)
    with pytest.raises(ValueError, match=message):
        experiments.get("init_ticket")(config)
    assert not (tmp_path / "runs").exists() or not os.listdir(tmp_path / "runs")


@pytest.mark.transformers
def test_the_export_experiment_writes_transformers_folders_with_hf_dir(finished, tmp_path, capsys):
    config, result = finished
    hf_dir = tmp_path / "hf"
    again = config.replace(experiment="export", hf_dir=str(hf_dir), **{"from": (result.run_folder,)})
    written = experiments.get("export")(again)
    folders = {e.side: e.transformers for e in written}
    assert sorted(os.listdir(hf_dir)) == sorted(os.path.basename(f) for f in folders.values())
    assert os.path.basename(folders["ticket"]) == os.path.basename(result.run_folder)
    for side, layers in (("dense", 3), ("ticket", 2)):
        with open(os.path.join(folders[side], "config.json")) as handle:
            assert json.load(handle)["n_layer"] == layers
        with open(os.path.join(folders[side], "metadata.json")) as handle:
            metadata = json.load(handle)
        assert metadata["config_hash"] and metadata["tokenizer"]["kind"] == "bytes"
        assert {"tokenizer.json", "tokenizer_config.json", "model.safetensors"} <= set(metadata["files"])
    assert metadata["blocks"]["removed"] == result.ticket.removed
    assert re.search(r"\| TF Serving +\| transformers +\|", capsys.readouterr().out)
    experiments.get("export")(again)  # a rerun replaces the run's own folders
    assert sorted(os.listdir(hf_dir)) == sorted(os.path.basename(f) for f in folders.values())


def opt_lm(input_shape, num_classes, layers=2):
    """A keras_hub causal LM outside keras_hub's transformers exporter (OPT)."""
    backbone = keras_hub.models.OPTBackbone(vocabulary_size=num_classes, num_layers=layers, num_heads=2,
                                            hidden_dim=16, intermediate_dim=32, max_sequence_length=32)
    return keras_hub.models.OPTCausalLM(backbone=backbone, preprocessor=None)


def test_hf_dir_refuses_a_family_outside_the_exporter_and_an_image_run_before_anything_is_written(tmp_path):
    config = _config(tmp_path, model="tests.experiments.test_causal_lm:opt_lm", hf_dir=str(tmp_path / "hf"),
                     evals=("clean",))
    with pytest.raises(ValueError, match=r"^--hf_dir: OPTCausalLM cannot be exported to transformers: keras_hub "
                                         r"[\d.]+ .* writes GPT2Backbone, .*; not OPTBackbone$"):
        experiments.get("init_ticket")(config)
    assert not (tmp_path / "runs").exists() or not os.listdir(tmp_path / "runs")
    assert not (tmp_path / "hf").exists()
    from tf_lottery.experiments import publishing
    with pytest.raises(ValueError, match=r"--hf_dir=hf writes Hugging Face transformers folders of language models "
                                         r"\(--task=causal_lm\); --dataset=fashion_mnist is an image dataset"):
        publishing.check_hf_dir(Config.create(hf_dir="hf"), language=False)
