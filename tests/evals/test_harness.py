"""The lm-evaluation-harness backend: its numbers are the Keras model's, and lm-eval runs it on local tasks.

Offline: tiny random keras_hub GPT-2 decoders over the byte tokenizer, and tasks written here (a
multiple-choice task and a generation task over a small JSON file, with their YAML).
"""

import json
import math
import os
import textwrap

import numpy as np
import pytest

from tf_lottery.data.text import ByteTokenizer
from tf_lottery.evals import harness

pytestmark = pytest.mark.harness
keras_hub = pytest.importorskip("keras_hub")

TOKENS = ByteTokenizer()


def _gpt2(layers=2, seed=0, max_sequence_length=64):
    import keras
    keras.utils.set_random_seed(seed)
    backbone = keras_hub.models.GPT2Backbone(vocabulary_size=ByteTokenizer.vocabulary_size, num_layers=layers,
                                             num_heads=2, hidden_dim=16, intermediate_dim=32,
                                             max_sequence_length=max_sequence_length)
    return keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None)


@pytest.fixture(scope="module")
def lm():
    return _gpt2()


class _Request:
    """lm-eval's ``Instance`` as the backend reads it (``args``); the real one is used end to end below."""

    def __init__(self, *args):
        self.args = args


def _hand_loglikelihood(model, context, continuation):
    """The sum of numpy log-softmax of the continuation's tokens, from the model's logits on the whole text."""
    context_ids = list(TOKENS.encode(context)) or [ByteTokenizer.END]
    targets = list(TOKENS.encode(continuation))
    whole = np.array([context_ids + targets], dtype=np.int32)
    logits = np.asarray(model({"token_ids": whole[:, :-1], "padding_mask": np.ones_like(whole[:, :-1], bool)}),
                        dtype=np.float64)[0]
    rows = logits[len(context_ids) - 1:]
    log_softmax = rows - rows.max(-1, keepdims=True)
    log_softmax -= np.log(np.exp(log_softmax).sum(-1, keepdims=True))
    picked = log_softmax[np.arange(len(targets)), targets]
    return picked.sum(), bool(np.all(rows.argmax(-1) == targets))


PAIRS = [("The cat", " sat on the mat"), ("A", "b"), ("", "hello"), ("Question: 2+2?\nAnswer:", " 4"),
         ("x" * 30, " long context, short answer")]


def test_loglikelihoods_are_numpy_log_softmax_sums_of_the_models_logits(lm):
    backend = harness.backend_class()(model=lm, batch_size=1)
    got = backend.loglikelihood([_Request(c, x) for c, x in PAIRS], disable_tqdm=True)
    for (context, continuation), (value, greedy) in zip(PAIRS, got):
        hand, hand_greedy = _hand_loglikelihood(lm, context, continuation)
        assert value == pytest.approx(hand, rel=1e-6, abs=1e-6)
        assert greedy == hand_greedy


def test_batched_with_padding_equals_unbatched(lm):
    requests = [_Request(c, x) for c, x in PAIRS]
    one = harness.backend_class()(model=lm, batch_size=1).loglikelihood(requests, disable_tqdm=True)
    many = harness.backend_class()(model=lm, batch_size=4).loglikelihood(requests, disable_tqdm=True)
    np.testing.assert_allclose([v for v, _ in many], [v for v, _ in one], rtol=1e-5, atol=1e-5)
    assert [g for _, g in many] == [g for _, g in one]


def test_the_greedy_flag_is_true_for_the_models_own_argmax_continuation(lm):
    context = "Once upon"
    ids = list(TOKENS.encode(context))
    for _ in range(3):  # the model's own greedy bytes
        logits = np.asarray(lm({"token_ids": np.array([ids]), "padding_mask": np.ones((1, len(ids)), bool)}))
        ids.append(int(logits[0, -1].argmax()))
    continuation = ids[len(TOKENS.encode(context)):]
    backend = harness.backend_class()(model=lm)
    [(_, greedy)] = backend._loglikelihood_tokens([(None, list(TOKENS.encode(context)), continuation)])
    assert greedy


def test_rolling_loglikelihood_is_tf_lotterys_perplexity(lm):
    from tf_lottery.evals.language import perplexity
    text = "Beautiful is better than ugly. Explicit is better than implicit."
    tokens = list(TOKENS.encode(text))
    backend = harness.backend_class()(model=lm)
    [total] = backend.loglikelihood_rolling([_Request(text)], disable_tqdm=True)
    ids = np.array([[ByteTokenizer.END] + tokens], dtype=np.int32)
    assert math.exp(-total / len(tokens)) == pytest.approx(perplexity(lm, ids), rel=1e-5)


def test_rolling_windows_score_every_token_once_when_the_text_is_longer_than_the_model():
    short = _gpt2(max_sequence_length=16)
    text = "a text of forty bytes, longer than sixteen"
    backend = harness.backend_class()(model=short, batch_size=3)
    [total] = backend.loglikelihood_rolling([_Request(text)], disable_tqdm=True)
    tokens = [ByteTokenizer.END] + list(TOKENS.encode(text))
    hand, start = 0.0, 1  # every token scored once, each with as much context as fits (lm-eval's windows)
    while start < len(tokens):
        end = min(start + 16, len(tokens))
        first = max(0, end - 17)
        window = np.array([tokens[first:end - 1]], dtype=np.int32)
        logits = np.asarray(short({"token_ids": window, "padding_mask": np.ones_like(window, bool)}),
                            dtype=np.float64)[0]
        rows = logits - logits.max(-1, keepdims=True)
        rows -= np.log(np.exp(rows).sum(-1, keepdims=True))
        for position in range(start, end):
            hand += rows[position - 1 - first, tokens[position]]
        start = end
    assert total == pytest.approx(hand, rel=1e-5)


def _greedy_by_hand(model, context, steps):
    ids = list(TOKENS.encode(context))
    made = []
    for _ in range(steps):
        logits = np.asarray(model({"token_ids": np.array([ids]), "padding_mask": np.ones((1, len(ids)), bool)}))
        token = int(logits[0, -1].argmax())
        if token == ByteTokenizer.END:
            break
        ids.append(token)
        made.append(token)
    return made


def test_generation_is_greedy_cut_at_until_and_batched_equals_unbatched(lm):
    contexts = ["The cat", "Q: what?\nA:", "z"]
    made = [_greedy_by_hand(lm, c, 6) for c in contexts]
    settings = {"until": [], "max_gen_toks": 6}
    one = harness.backend_class()(model=lm, batch_size=1).generate_until(
        [_Request(c, settings) for c in contexts])
    many = harness.backend_class()(model=lm, batch_size=3).generate_until(
        [_Request(c, settings) for c in contexts])
    assert one == [TOKENS.decode(m) for m in made]
    assert many == one
    stop = TOKENS.decode(made[0][2:3])  # the third greedy byte of the first context ends its text
    [cut] = harness.backend_class()(model=lm).generate_until([_Request(contexts[0], {"until": [stop],
                                                                                     "max_gen_toks": 6})])
    assert cut == TOKENS.decode(made[0]).split(stop)[0]
    with pytest.raises(ValueError, match="greedily"):
        harness.backend_class()(model=lm).generate_until([_Request("a", {"do_sample": True})])


def test_bad_settings_are_refused_in_one_line(lm):
    cls = harness.backend_class()
    with pytest.raises(ValueError, match="one model"):
        cls()
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1; got '0'"):
        cls(model=lm, batch_size="0")
    with pytest.raises(TypeError, match="ByteTokenizer or a keras_hub tokenizer"):
        cls(model=lm, tokenizer=object())
    with pytest.raises(ValueError, match="tokenizer must be \"bytes\".*got 'gpt2'"):
        cls(model=lm, tokenizer="gpt2")


def test_the_command_line_names_the_backend_and_the_export():
    assert harness.lm_eval_arguments(["--model_path=exports/lm", "--tasks", "t"]) == [
        "run", "--tasks", "t", "--model", "tf_lottery", "--model_args", "path=exports/lm"]
    assert harness.lm_eval_arguments(["run", "--model_args", "batch_size=2", "--model_path", "e", "--tasks=t"]) == [
        "run", "--tasks=t", "--model", "tf_lottery", "--model_args", "batch_size=2,path=e"]
    assert harness.lm_eval_arguments(["ls", "tasks"]) == ["ls", "tasks"]
    with pytest.raises(ValueError, match="--model_path needs a value"):
        harness.lm_eval_arguments(["--model_path="])


# --- end to end: lm-eval's own evaluator on local tasks ---

DOCS = [{"question": "1 + 1 =", "choices": ["2", "3", "11"], "answer": 0},
        {"question": "The sky is", "choices": ["blue", "loud"], "answer": 0},
        {"question": "Cats say", "choices": ["woof", "meow"], "answer": 1}]


def _tasks(folder):
    """A multiple-choice and a generation task over one JSON file in ``folder``, with their YAML."""
    data = os.path.join(folder, "docs.json")
    with open(data, "w") as handle:
        json.dump(DOCS, handle)
    common = f"""
        dataset_path: json
        dataset_kwargs:
          data_files:
            test: {data}
        test_split: test
        doc_to_text: "{{{{question}}}}"
        """
    with open(os.path.join(folder, "tiny_choice.yaml"), "w") as handle:
        handle.write(textwrap.dedent(f"""
            task: tiny_choice
            output_type: multiple_choice
            doc_to_choice: "{{{{choices}}}}"
            doc_to_target: answer
            metric_list:
              - metric: acc
            """) + textwrap.dedent(common))
    with open(os.path.join(folder, "tiny_generation.yaml"), "w") as handle:
        handle.write(textwrap.dedent("""
            task: tiny_generation
            output_type: generate_until
            doc_to_target: "{{choices[answer]}}"
            generation_kwargs:
              until: ["\\n"]
              max_gen_toks: 4
            metric_list:
              - metric: exact_match
            """) + textwrap.dedent(common))


@pytest.mark.slow
def test_simple_evaluate_runs_local_tasks_end_to_end(lm, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    import lm_eval
    from lm_eval.tasks import TaskManager
    _tasks(str(tmp_path))
    backend = harness.backend_class()(model=lm, batch_size=4)
    results = lm_eval.simple_evaluate(model=backend, tasks=["tiny_choice", "tiny_generation"],
                                      task_manager=TaskManager(include_path=str(tmp_path)), bootstrap_iters=0,
                                      log_samples=True)
    choice = results["results"]["tiny_choice"]
    # the share of documents whose answer (after lm-eval's " " delimiter) has the highest log-likelihood, by hand
    hand = np.mean([int(np.argmax([_hand_loglikelihood(lm, d["question"], " " + c)[0] for c in d["choices"]]))
                    == d["answer"] for d in DOCS])
    assert choice["acc,none"] == pytest.approx(hand)
    generated = [s["resps"][0][0] for s in results["samples"]["tiny_generation"]]
    assert generated == [TOKENS.decode(_greedy_by_hand(lm, d["question"], 4)).split("\n")[0] for d in DOCS]
    assert "exact_match,none" in results["results"]["tiny_generation"]


# --- an export folder: loaded safely (manifest verified, no code), and lm-eval's command line on it ---

@pytest.fixture(scope="module")
def ticket():
    """A ticket of a 3-layer decoder: its middle layer removed, a GPT2CausalLM of 2 layers."""
    import tf_lottery as tl
    return tl.surgery.family_ticket(_gpt2(layers=3, seed=1), ["transformer_layer_1"])


@pytest.fixture(scope="module")
def export(ticket, tmp_path_factory):
    from tf_lottery.export.language import save_language_model
    return save_language_model(ticket, str(tmp_path_factory.mktemp("harness") / "lm"))


def test_a_ticket_scores_as_its_own_logits(ticket):
    assert type(ticket).__name__ == "GPT2CausalLM" and ticket.backbone.num_layers == 2
    got = harness.backend_class()(model=ticket, batch_size=3).loglikelihood([_Request(c, x) for c, x in PAIRS],
                                                                           disable_tqdm=True)
    for (context, continuation), (value, greedy) in zip(PAIRS, got):
        hand, hand_greedy = _hand_loglikelihood(ticket, context, continuation)
        assert value == pytest.approx(hand, rel=1e-5, abs=1e-5)
        assert greedy == hand_greedy


def test_an_export_scores_as_the_model_through_its_preset_and_its_saved_model(ticket, export):
    requests = [_Request(c, x) for c, x in PAIRS]
    expected = [v for v, _ in harness.backend_class()(model=ticket).loglikelihood(requests, disable_tqdm=True)]
    from_preset = harness.backend_class()(path=export)
    assert type(from_preset.model).__name__ == "GPT2CausalLM" and from_preset.model.backbone.num_layers == 2
    assert from_preset.max_length == 64
    from_graph = harness.backend_class()(model=harness._saved_model_forward(os.path.join(export, "saved_model")),
                                         max_length=64)
    for backend in (from_preset, from_graph):
        got = [v for v, _ in backend.loglikelihood(requests, disable_tqdm=True)]
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_a_tampered_export_is_refused_before_loading(lm, tmp_path):
    import shutil
    from tf_lottery.export.language import save_language_model
    from tf_lottery.export.saved_model import DamagedExport
    folder = save_language_model(lm, str(tmp_path / "lm"))
    with open(os.path.join(folder, "preset", "config.json"), "a") as handle:
        handle.write(" ")
    with pytest.raises(DamagedExport, match="does not match its manifest"):
        harness.backend_class()(path=folder)
    shutil.rmtree(folder)


@pytest.mark.slow
def test_lm_evals_command_line_runs_an_export_on_a_local_task(ticket, export, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    _tasks(str(tmp_path))
    out = tmp_path / "out"
    harness.main([f"--model_path={export}", "--tasks", "tiny_choice", "--include_path", str(tmp_path),
                  "--batch_size", "2", "--output_path", str(out)])
    [written] = [os.path.join(root, name) for root, _, names in os.walk(out) for name in names
                 if name.startswith("results") and name.endswith(".json")]
    with open(written) as handle:
        results = json.load(handle)
    hand = np.mean([int(np.argmax([_hand_loglikelihood(ticket, d["question"], " " + c)[0] for c in d["choices"]]))
                    == d["answer"] for d in DOCS])
    assert results["results"]["tiny_choice"]["acc,none"] == pytest.approx(hand)
    assert results["config"]["model"] == "tf_lottery"


def test_without_lm_eval_the_backend_names_the_extra(monkeypatch):
    monkeypatch.setattr(harness, "_CLASS", None)
    monkeypatch.setattr(harness, "lm_eval_installed", lambda: False)
    with pytest.raises(ImportError, match=r"pip install 'tf_lottery\[lm_eval\]'"):
        harness.backend_class()


@pytest.mark.slow
def test_the_language_models_page_runs_its_lm_eval_example(tmp_path):
    """The docs' ``<!-- example: lm_eval -->`` block (tests/test_docs.py leaves it to this extra's tests)."""
    import re
    import subprocess
    import sys
    page = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "howto", "language-models.md")
    [code] = re.findall(r"<!-- example: lm_eval -->\n```python\n(.*?)```", open(page).read(), flags=re.S)
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": "",
           "HF_DATASETS_CACHE": str(tmp_path / "cache"), "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env,
                          timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    assert float(done.stdout.strip().splitlines()[-1].split()[0]) in (0.0, 0.5, 1.0)


def test_a_keras_hub_tokenizer_scores_its_own_tokens():
    import keras
    vocabulary = {"<|endoftext|>": 0, "a": 1, "b": 2, "Ġ": 3, "ab": 4, "Ġa": 5, "Ġb": 6}
    tokenizer = keras_hub.models.GPT2Tokenizer(vocabulary=vocabulary, merges=["a b", "Ġ a", "Ġ b"])
    keras.utils.set_random_seed(2)
    model = keras_hub.models.GPT2CausalLM(backbone=keras_hub.models.GPT2Backbone(
        vocabulary_size=7, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16, max_sequence_length=16),
        preprocessor=None)
    backend = harness.backend_class()(model=model, tokenizer=tokenizer)
    assert backend.eot_token_id == 0 and backend.tok_encode("ab a b") == [4, 5, 6]
    [(value, _)] = backend.loglikelihood([_Request("ab", " a b")], disable_tqdm=True)
    logits = np.asarray(model({"token_ids": np.array([[4, 5]]), "padding_mask": np.ones((1, 2), bool)}),
                        dtype=np.float64)[0]
    rows = logits - logits.max(-1, keepdims=True)
    rows -= np.log(np.exp(rows).sum(-1, keepdims=True))
    assert value == pytest.approx(rows[0, 5] + rows[1, 6], rel=1e-6)
    ids, made = [4], []
    for _ in range(3):  # greedy by hand, stopped at the end token
        step = np.asarray(model({"token_ids": np.array([ids]), "padding_mask": np.ones((1, len(ids)), bool)}))
        token = int(step[0, -1].argmax())
        if token == 0:
            break
        ids.append(token)
        made.append(token)
    expected = np.asarray(tokenizer.detokenize(np.array(made, np.int32))).item() if made else ""
    expected = expected.decode() if isinstance(expected, bytes) else expected
    assert backend.generate_until([_Request("ab", {"until": [], "max_gen_toks": 3})]) == [expected]
