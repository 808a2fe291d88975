"""Language models: next-token batches and loss (padding left out), and the at-initialization
criteria on a keras_hub causal LM through its backbone, with dropout off, against hand computations."""

import numpy as np
import pytest
import tensorflow as tf

import tf_lottery as tl
from tests import zoo
from tf_lottery.criteria import language

keras_hub = pytest.importorskip("keras_hub")


def _lm(dropout=0.1, seed=0):
    return zoo.gpt2_lm(dropout=dropout, seed=seed)


def _batch():
    ids = np.random.default_rng(0).integers(1, 100, size=(4, 9))
    mask = np.ones_like(ids, bool)
    mask[0, 6:] = False
    return language.next_token_batch(ids, mask)


def test_a_next_token_batch_shifts_and_marks_padding_ignored():
    inputs, labels = language.next_token_batch(np.array([[5, 6, 7, 0]]), np.array([[1, 1, 1, 0]]))
    assert inputs["token_ids"].tolist() == [[5, 6, 7]] and inputs["padding_mask"].tolist() == [[True, True, True]]
    assert labels.tolist() == [[6, 7, language.IGNORED]]
    with pytest.raises(ValueError, match=r"token_ids must be a \(batch, length >= 2\) integer array; got shape \(1, 1\)"):
        language.next_token_batch(np.array([[5]]))
    with pytest.raises(ValueError, match="token ids must be >= 0; got -3"):
        language.next_token_batch(np.array([[5, -3]]))


def test_the_next_token_loss_leaves_ignored_positions_out():
    logits = np.random.default_rng(1).normal(size=(2, 3, 5)).astype("float32")
    labels = np.array([[1, 4, -1], [0, -1, -1]])
    kept = [(0, 0), (0, 1), (1, 0)]
    hand = np.mean([np.log(np.exp(logits[b, t]).sum()) - logits[b, t, labels[b, t]] for b, t in kept])
    assert float(language.next_token_loss(tf.constant(logits), tf.constant(labels))) == pytest.approx(hand, rel=1e-5)


def test_snip_scores_a_causal_lm_on_its_next_token_loss_with_dropout_off():
    lm = _lm(dropout=0.1)
    inputs, labels = _batch()
    scores = tl.criteria.get("snip")(lm, (inputs, labels))
    assert scores == tl.criteria.get("snip")(lm, (inputs, labels))  # no dropout mask: the same scores twice
    twin = _lm(dropout=0.0, seed=1)
    twin.set_weights(lm.get_weights())
    layer = twin.backbone.get_layer("transformer_layer_1")
    weights = [v for _, v in tl.criteria.base.scored_weights(layer)]
    with tf.GradientTape() as tape:  # SNIP by hand: the task's own logits, its next-token loss
        loss = language.next_token_loss(twin(inputs, training=True), labels)
    grads = tape.gradient(loss, weights)
    hand = np.concatenate([np.abs((w * g).numpy()).ravel() for w, g in zip(weights, grads)]).astype("float64").mean()
    assert scores["transformer_layer_1"] == pytest.approx(hand, rel=1e-4)
    assert all(layer.rate == 0.1 for layer in lm._flatten_layers() if type(layer).__name__ == "Dropout")


@pytest.mark.parametrize("criterion", ["grasp", "magnitude"])
def test_other_criteria_score_the_decoder_layers_of_a_causal_lm(criterion):
    scores = tl.criteria.get(criterion)(_lm(), _batch())
    assert sorted(scores) == ["transformer_layer_0", "transformer_layer_1", "transformer_layer_2"]
    assert all(np.isfinite(list(scores.values())))


def test_a_causal_lm_ticket_is_a_causal_lm_with_fewer_layers():
    lm = _lm()
    result = tl.find_ticket(lm, "snip", data=_batch(), num_blocks=1, min_blocks_per_stage=0)
    assert type(result.model).__name__ == "GPT2CausalLM" and result.model.backbone.num_layers == 2
    assert tl.surgery.kept_blocks(result.model) == [b for b in tl.surgery.blocks(lm.backbone) if b not in result.removed]
    prompt = {"token_ids": np.array([[5, 6, 7, 0, 0, 0]]), "padding_mask": np.array([[1, 1, 1, 0, 0, 0]], bool)}
    assert np.asarray(result.model.generate(prompt, max_length=6, stop_token_ids=None)["token_ids"]).shape == (1, 6)


def test_bad_language_model_inputs_are_refused_by_name():
    lm = _lm()
    inputs, labels = _batch()
    with pytest.raises(ValueError, match=r"the scoring inputs must name the inputs of 'gpt2_backbone(_\d+)?', "
                                         r"\['padding_mask', 'token_ids'\]; got \['token_ids'\]"):
        tl.criteria.get("snip")(lm, ({"token_ids": inputs["token_ids"]}, labels))
    with pytest.raises(ValueError, match=r"'token_ids' must be integers"):
        tl.criteria.get("snip")(lm, ({**inputs, "token_ids": inputs["token_ids"].astype("float32")}, labels))
    with pytest.raises(ValueError, match=r"SynFlow feeds 'gpt2_backbone(_\d+)?' an all-ones image, and a model of several "
                                         r"inputs"):
        tl.criteria.get("synflow")(lm)


def test_tokens_a_keras_hub_model_cannot_take_are_refused_before_tensorflow_runs():
    lm = _lm()
    inputs, labels = language.next_token_batch(np.random.default_rng(0).integers(1, 100, size=(2, 20)))
    with pytest.raises(ValueError, match=r"sequences of 19 tokens are longer than 'gpt2_backbone(_\d+)?' takes "
                                         r"\(max_sequence_length=16\)"):
        tl.criteria.get("snip")(lm, (inputs, labels))
    with pytest.raises(ValueError, match=r"token ids run from 5 to 300, but 'gpt2_backbone(_\d+)?' has a vocabulary "
                                         r"of 100: the tokens come from another tokenizer"):
        tl.evals.language.perplexity(lm, np.array([[5, 6, 300, 7]]))


def test_flops_per_token_count_the_decoder_layers_and_the_tied_head_by_hand():
    lm = _lm()  # 3 layers, 16 tokens of 32, 2 heads of 16, MLP 64, a vocabulary of 100
    layer = 4 * 16 * 32 * 32 + 2 * (2 * 16 * 16 * 16) + 2 * 16 * 32 * 64
    assert tl.evals.language.flops_per_token(lm, 16) == 3 * layer / 16 + 32 * 100
    smaller = tl.surgery.family_ticket(lm, ["transformer_layer_0"])
    assert tl.evals.language.flops_per_token(smaller, 16) == 2 * layer / 16 + 32 * 100
