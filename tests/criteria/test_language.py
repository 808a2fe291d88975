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


def _hand_synflow_r(backbone, weights):
    """SynFlow's R of a GPT-2 backbone written out by hand: every token's embedding (the sum of the absolute
    table's rows) plus the absolute positions, then each pre-LayerNorm decoder layer with absolute weights,
    its normalisations affine, its GELU the identity and its causal softmax attention kept, then the final
    normalisation's affine part; R is the sum of the output. ``weights``: ``{variable path: tf.Variable}``."""
    length, heads = backbone.max_sequence_length, backbone.num_heads
    w = {path: tf.abs(tf.cast(value, tf.float64)) for path, value in weights.items()}
    x = tf.reduce_sum(w["token_embedding/embeddings"], 0)[None, :] + w["position_embedding/embeddings"][:length]
    causal = np.tril(np.ones((length, length), bool))
    for i in range(backbone.num_layers):
        p = f"transformer_layer_{i}/"
        h = x * w[p + "self_attention_layer_norm/gamma"] + w[p + "self_attention_layer_norm/beta"]
        q, k, v = (tf.einsum("lh,hnd->lnd", h, w[p + f"self_attention/{n}/kernel"]) + w[p + f"self_attention/{n}/bias"]
                   for n in ("query", "key", "value"))
        logits = tf.einsum("lnd,mnd->nlm", q / np.sqrt(int(q.shape[-1])), k)
        attention = tf.nn.softmax(tf.where(causal[None], logits, tf.constant(-1e30, tf.float64)), axis=-1)
        x = x + tf.einsum("nlm,mnd,ndh->lh", attention, v, w[p + "self_attention/attention_output/kernel"]) \
            + w[p + "self_attention/attention_output/bias"]
        h = x * w[p + "feedforward_layer_norm/gamma"] + w[p + "feedforward_layer_norm/beta"]
        hidden = h @ w[p + "feedforward_intermediate_dense/kernel"] + w[p + "feedforward_intermediate_dense/bias"]
        x = x + hidden @ w[p + "feedforward_output_dense/kernel"] + w[p + "feedforward_output_dense/bias"]
    assert heads == int(q.shape[1])
    return tf.reduce_sum(x * w["layer_norm/gamma"] + w["layer_norm/beta"])


def test_synflow_scores_a_causal_lm_by_its_linearised_path_flow_against_a_hand_computation():
    lm = _lm(dropout=0.1)
    backbone = lm.backbone
    twin, inputs = tl.criteria.synflow.token_twin(backbone)
    weights = {v.path: tf.Variable(tf.cast(v, tf.float64)) for v in backbone.weights}
    with tf.GradientTape() as tape:
        hand_r = _hand_synflow_r(backbone, weights)
    assert float(tf.reduce_sum(twin(inputs, training=False))) == pytest.approx(float(hand_r), rel=1e-9)
    grads = tape.gradient(hand_r, weights)
    scores = tl.criteria.get("synflow")(lm)  # the task is scored through its backbone
    assert sorted(scores) == ["transformer_layer_0", "transformer_layer_1", "transformer_layer_2"]
    for block in scores:
        kernels = [path for path in weights if path.startswith(block + "/") and len(weights[path].shape) >= 2
                   and not path.endswith("/bias")]  # the scored matrices: kernels, not attention biases
        # d R(|w|) / dw = sign(w) dR/d|w|, and dR/d|w| >= 0 in a positive network: |w| dR/d|w| = |w * dR/dw|
        hand = np.concatenate([np.abs((weights[p] * grads[p]).numpy()).ravel() for p in kernels]).mean()
        assert scores[block] == pytest.approx(hand, rel=1e-6)
    ticket = tl.find_ticket(lm, "synflow", num_blocks=1, min_blocks_per_stage=0)
    assert type(ticket.model).__name__ == "GPT2CausalLM" and ticket.model.backbone.num_layers == 2


def test_synflow_refuses_a_model_of_several_inputs_that_are_not_tokens_by_name():
    import keras

    a, b = keras.Input((4,), name="a"), keras.Input((4,), name="b")
    model = keras.Model([a, b], keras.layers.Dense(2)(keras.layers.Concatenate()([a, b])))
    with pytest.raises(ValueError, match=r"SynFlow feeds '.*' an all-ones image \(a language model: every token\), "
                                         r"and a model of the inputs \['a', 'b'\] has neither"):
        tl.criteria.synflow.synflow_weight_scores(model)


@pytest.mark.parametrize("criterion, needs", [("grasp", "pair"), ("snip", "pair"), ("synflow", None),
                                              ("block_influence", "inputs"), ("angular", "inputs"),
                                              ("cka", "inputs"), ("removal_loss", "pair")])
def test_every_language_criterion_cuts_a_mistral_causal_lm_into_a_smaller_one(criterion, needs):
    # MistralCausalLM is registered nowhere: keras_hub's transformer_layers convention makes it a family
    backbone = keras_hub.models.MistralBackbone(vocabulary_size=100, num_layers=4, hidden_dim=32, intermediate_dim=64,
                                                num_query_heads=2, num_key_value_heads=1)
    lm = keras_hub.models.MistralCausalLM(backbone=backbone, preprocessor=None)
    inputs, labels = _batch()
    data = {"pair": (inputs, labels), "inputs": inputs, None: None}[needs]
    result = tl.find_ticket(lm, criterion, num_blocks=2, data=data, min_blocks_per_stage=0,
                            **({"window": 2} if criterion == "angular" else {}))
    assert sorted(result.scores) == [f"transformer_layer_{i}" for i in range(4)]
    assert all(np.isfinite(v) for v in result.scores.values())
    assert type(result.model) is type(lm) and result.model.backbone.num_layers == 2
    assert tl.surgery.kept_blocks(result.model) == [b for b in sorted(result.scores) if b not in result.removed]


@pytest.mark.parametrize("family", ["llama3", "gemma", "mistral", "qwen"])
def test_synflow_scores_every_query_and_key_kernel_of_a_decoder_without_a_position_table(family):
    from tests.zoo import causal_lm
    backbone = causal_lm(family).backbone  # no max_sequence_length: it used to score a 1-token sequence
    assert tl.criteria.synflow.token_length(backbone) == tl.criteria.synflow.SEQUENCE_LENGTH == 128
    scores = tl.criteria.synflow.synflow_weight_scores(backbone, sequence_length=8)
    attention = [name for name in scores if name.endswith(("query/kernel", "key/kernel"))]
    assert len(attention) == 6 and all(np.any(scores[name] != 0) for name in attention)  # R depends on each


def test_synflow_takes_its_sequence_length_as_an_option_and_refuses_what_it_cannot_score(monkeypatch):
    lm = _lm(dropout=0.0)  # GPT-2 of 16 positions
    assert tl.criteria.synflow.token_length(lm.backbone) == 16
    phi3 = keras_hub.models.Phi3Backbone(vocabulary_size=64, num_layers=2, hidden_dim=16, intermediate_dim=32,
                                         num_query_heads=2, num_key_value_heads=1)
    assert phi3.max_sequence_length == 4096 and tl.criteria.synflow.token_length(phi3) == 128
    twin, inputs = tl.criteria.synflow.token_twin(lm.backbone, sequence_length=4)
    assert inputs["token_ids"].shape == (1, 4)
    assert tl.criteria.get("synflow").options() == {"aggregation": "mean", "sequence_length": None}
    assert tl.criteria.get("synflow")(lm, sequence_length=4) != tl.criteria.get("synflow")(lm, sequence_length=8)
    assert tl.find_ticket(lm, "synflow", num_blocks=1, min_blocks_per_stage=0, sequence_length=8).model.backbone.\
        num_layers == 2
    with pytest.raises(ValueError, match=r"sequence_length must be an integer >= 2 \(over 1 token attention's query "
                                         r"and key kernels score exactly 0\); got 1"):
        tl.criteria.get("synflow")(lm, sequence_length=1)
    with pytest.raises(ValueError, match=r"'gpt2_backbone\w*' takes at most 16 tokens \(max_sequence_length\); got "
                                         r"sequence_length=17"):
        tl.criteria.get("synflow")(lm, sequence_length=17)
    with pytest.raises(ValueError, match=r"sequence_length is SynFlow's option for a language model"):
        tl.criteria.get("synflow")(tl.models.cifar_resnet(8), sequence_length=8)
    monkeypatch.setattr(tl.criteria.synflow, "token_length", lambda model, length=None: 1)  # the old default
    with pytest.raises(ValueError, match=r"SynFlow cannot score 'gpt2_backbone\w*' on 1 tokens: R does not depend on "
                                         r"transformer_layer_0/self_attention/query/kernel, "
                                         r"transformer_layer_0/self_attention/key/kernel"):
        tl.criteria.get("synflow")(lm)


def test_synflows_sequence_length_is_a_flag_that_names_the_run_only_when_set():
    from tf_lottery.config import Config
    config = Config.create(criterion="synflow", synflow_sequence_length=32)
    assert config.method.criterion_options(seed=0) == {"sequence_length": 32}
    assert Config.create(criterion="synflow").method.criterion_options(seed=0) == {}
    assert "synflow_sequence_length" not in Config.create(criterion="synflow").method.identity()
    assert config.method.identity()["synflow_sequence_length"] == 32
    with pytest.raises(ValueError, match=r"--synflow_sequence_length is an option of --criterion=synflow; "
                                         r"--criterion=grasp does not take it"):
        Config.create(criterion="grasp", synflow_sequence_length=32)
    with pytest.raises(ValueError, match=r"synflow_sequence_length"):
        Config.create(criterion="synflow", synflow_sequence_length=1)
