"""keras_hub backbones (random weights, tiny configurations, nothing downloaded): their transformer
layers are blocks by themselves, their embeddings are not, and removal equals bypassing the layer."""

import keras
import numpy as np
import pytest

import tf_lottery as tl
from tests import zoo

keras_hub = pytest.importorskip("keras_hub")


def _gpt2():
    return keras_hub.models.GPT2Backbone(vocabulary_size=100, num_layers=3, num_heads=2, hidden_dim=32,
                                         intermediate_dim=64, max_sequence_length=16)


def _tokens():
    return {"token_ids": np.array([[5, 2, 7, 9, 0, 0], [3, 3, 1, 4, 8, 0]]),
            "padding_mask": np.array([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 0]])}


def test_gpt2_blocks_are_its_decoder_layers_not_its_embeddings():
    model = _gpt2()
    found = tl.surgery.find_blocks(model)
    assert [(b.name, b.input_layer, b.removable) for b in found] == [
        ("transformer_layer_0", "embeddings_dropout", True), ("transformer_layer_1", "transformer_layer_0", True),
        ("transformer_layer_2", "transformer_layer_1", True)]


def test_removing_a_gpt2_decoder_layer_equals_bypassing_it():
    model = _gpt2()
    ticket = tl.surgery.remove_blocks(model, ["transformer_layer_1"], min_blocks_per_stage=0)
    x = _tokens()
    hidden = model.get_layer("embeddings_dropout").output
    import keras
    embed = keras.Model(model.inputs, hidden)(x)
    layer0, layer2 = model.get_layer("transformer_layer_0"), model.get_layer("transformer_layer_2")
    mask = x["padding_mask"]
    bypassed = model.get_layer("layer_norm")(layer2(layer0(embed, decoder_padding_mask=mask), decoder_padding_mask=mask))
    np.testing.assert_allclose(ticket.predict(x, verbose=0), keras.ops.convert_to_numpy(bypassed), rtol=1e-5,
                               atol=1e-5)
    for layer in ticket.layers:
        for a, b in zip(layer.get_weights(), model.get_layer(layer.name).get_weights()):
            np.testing.assert_array_equal(a, b)


def test_bert_blocks_are_its_encoder_layers():
    model = keras_hub.models.BertBackbone(vocabulary_size=100, num_layers=2, num_heads=2, hidden_dim=32,
                                          intermediate_dim=64, max_sequence_length=16)
    assert [b.name for b in tl.surgery.find_blocks(model)] == ["transformer_layer_0", "transformer_layer_1"]


def test_magnitude_scores_gpt2_layers_from_their_own_weights():
    model = _gpt2()
    scores = tl.criteria.get("magnitude")(model)
    assert sorted(scores) == ["transformer_layer_0", "transformer_layer_1", "transformer_layer_2"]
    layer = model.get_layer("transformer_layer_1")
    keys = [key for key, _ in tl.criteria.base.scored_weights(layer)]
    assert len(keys) == 6  # query, key, value, output kernels and the two MLP kernels
    hand = np.concatenate([np.abs(v.numpy()).ravel() for _, v in tl.criteria.base.scored_weights(layer)]).astype("float64").mean()
    assert scores["transformer_layer_1"] == pytest.approx(hand, rel=1e-12)


def test_a_resnet_backbone_without_head_has_blocks_and_needs_a_loss_to_be_scored():
    model = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[3], stackwise_num_filters=[64, 64],
        stackwise_num_blocks=[2, 2], stackwise_num_strides=[1, 2], block_type="basic_block",
        use_pre_activation=False, image_shape=(32, 32, 3))
    assert tl.surgery.removable_blocks(model) == ["stack0_block0", "stack0_block1", "stack1_block1"]
    x = np.random.default_rng(0).normal(size=(4, 32, 32, 3)).astype("float32")
    with pytest.raises(ValueError, match=r"outputs \(4, 4, 64\) per example, not class scores"):
        tl.criteria.get("snip")(model, (x, np.arange(4)))


def _vit_backbone(layers=3):
    return keras_hub.models.ViTBackbone(image_shape=(32, 32, 3), patch_size=8, num_layers=layers, num_heads=2,
                                        hidden_dim=16, mlp_dim=32)


def test_a_vit_backbone_encoder_is_opened_and_its_blocks_removed_bit_exactly():
    model = _vit_backbone()
    assert tl.surgery.blocks(model) == ["transformer_block_1", "transformer_block_2", "transformer_block_3"]
    ticket = tl.surgery.remove_blocks(model, ["transformer_block_2"], min_blocks_per_stage=0)
    encoder = model.get_layer("vit_encoder")
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
    h = encoder.dropout(model.get_layer("vit_patching_and_embedding")(x))
    bypassed = encoder.layer_norm(encoder.encoder_layers[2](encoder.encoder_layers[0](h)))
    assert np.array_equal(np.asarray(ticket(x)), np.asarray(bypassed))
    kept = ticket.get_layer("transformer_block_3").get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(kept, encoder.encoder_layers[2].get_weights()))


def test_a_vit_classifier_ticket_of_its_own_family_is_found_saved_and_loaded(tmp_path):
    model = keras_hub.models.ViTImageClassifier(backbone=_vit_backbone(4), num_classes=3)
    x = np.random.default_rng(1).normal(size=(6, 32, 32, 3)).astype("float32")
    result = tl.find_ticket(model, "snip", data=(x, np.arange(6) % 3), num_blocks=2, min_blocks_per_stage=0)
    smaller = tl.surgery.family_ticket(model, result.removed)
    assert type(smaller) is type(model) and smaller.backbone.num_layers == 2
    originals = [b for b in tl.surgery.blocks(model) if b not in result.removed]
    assert tl.surgery.kept_blocks(smaller) == originals
    assert np.array_equal(np.asarray(smaller(x)), np.asarray(result.model(x)))  # the flat ticket's outputs
    old = model.backbone.get_layer("vit_encoder").encoder_layers[int(originals[1].rsplit("_", 1)[1]) - 1]
    new = smaller.backbone.get_layer("vit_encoder").encoder_layers[1]
    assert all(np.array_equal(a, b) for a, b in zip(new.get_weights(), old.get_weights()))
    path = tmp_path / "ticket.keras"
    smaller.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is type(model) and np.array_equal(np.asarray(loaded(x)), np.asarray(smaller(x)))


def test_a_gpt2_causal_lm_ticket_of_its_own_family_still_generates():
    lm = keras_hub.models.GPT2CausalLM(backbone=_gpt2(), preprocessor=None)
    smaller = tl.surgery.family_ticket(lm, ["transformer_layer_1"])
    assert type(smaller) is type(lm) and smaller.backbone.num_layers == 2
    assert tl.surgery.kept_blocks(smaller) == ["transformer_layer_0", "transformer_layer_2"]
    inputs = {"token_ids": np.array([[5, 6, 7, 8, 9, 10, 11, 12]]), "padding_mask": np.ones((1, 8), bool)}
    flat = tl.surgery.remove_blocks(lm.backbone, ["transformer_layer_1"], min_blocks_per_stage=0)
    assert np.array_equal(np.asarray(smaller.backbone(inputs)), np.asarray(flat(inputs)))
    prompt = {"token_ids": np.array([[5, 6, 7, 0, 0, 0, 0, 0]]), "padding_mask": np.array([[1, 1, 1, 0, 0, 0, 0, 0]], bool)}
    generated = smaller.generate(prompt, max_length=8, stop_token_ids=None)
    assert np.asarray(generated["token_ids"]).shape == (1, 8)
    assert np.array_equal(np.asarray(generated["token_ids"])[0, :3], [5, 6, 7])


def test_a_model_of_no_registered_family_is_refused_by_name():
    with pytest.raises(ValueError, match=r"Functional 'layer_resnet' is not a registered model family"):
        tl.surgery.family_ticket(zoo.layer_resnet(), ["res1"])


def test_keras_hub_layers_are_costed_from_their_traced_calls_by_hand():
    # patches: 4 x 4 positions x 8 x 8 x 3 x 16; per block, T = 17 tokens (the class token) of 16, 2 heads of 8:
    # Q, K, V, O projections 4 x 17 x 16 x 16, QK^T and the sum over V 2 x (2 x 17 x 17 x 8), the MLP 2 x 17 x 16 x 32
    block = 4 * 17 * 16 * 16 + 2 * (2 * 17 * 17 * 8) + 2 * 17 * 16 * 32
    model = _vit_backbone(3)
    assert tl.cost.flops(model) == 16 * 8 * 8 * 3 * 16 + 3 * block
    ticket = tl.surgery.remove_blocks(model, ["transformer_block_2"], min_blocks_per_stage=0)
    assert tl.cost.flops(model) - tl.cost.flops(ticket) == block


def test_a_decoder_without_a_fixed_sequence_length_is_refused_and_costed_once_it_has_one():
    model = _gpt2()
    with pytest.raises(ValueError, match=r"the FLOPs of 'gpt2_backbone\w*' depend on its sequence length, and it "
                                         r"takes sequences of any length: give one"):
        tl.cost.flops(model)
    inputs = {name: keras.Input((16,), dtype="int32", name=name) for name in ("token_ids", "padding_mask")}
    fixed = keras.Model(inputs, model(inputs))
    layer = 4 * 16 * 32 * 32 + 2 * (2 * 16 * 16 * 16) + 2 * 16 * 32 * 64  # 16 tokens of 32, 2 heads of 16, MLP 64
    assert tl.cost.flops(fixed) == tl.cost.flops(model, sequence_length=16) == 3 * layer
    with pytest.raises(ValueError, match=r"takes sequences of \[16\] tokens only; got sequence_length=8"):
        tl.cost.flops(fixed, sequence_length=8)


def _llama():
    return keras_hub.models.LlamaBackbone(vocabulary_size=100, num_layers=4, num_query_heads=4, num_key_value_heads=2,
                                          hidden_dim=32, intermediate_dim=64)


def test_a_llama_ticket_is_of_its_own_family_and_equals_bypassing_the_layer():
    model = _llama()
    assert tl.surgery.blocks(model) == [f"transformer_layer_{i}" for i in range(4)]
    inputs = {"token_ids": np.array([[1, 2, 3, 4, 5, 6, 0, 0]]), "padding_mask": np.array([[1, 1, 1, 1, 1, 1, 0, 0]])}
    smaller = tl.surgery.family_ticket(model, ["transformer_layer_2"])
    x = model.token_embedding(inputs["token_ids"])
    for i in (0, 1, 3):  # LlamaBackbone's own call, the removed layer bypassed
        x = model.transformer_layers[i](x, decoder_padding_mask=inputs["padding_mask"])
    assert np.array_equal(np.asarray(smaller(inputs)), np.asarray(model.layer_norm(x)))


def test_find_ticket_cuts_a_keras_hub_model_in_its_own_class_and_names_blocks_as_the_dense_model_does():
    model = keras_hub.models.ViTImageClassifier(backbone=_vit_backbone(4), num_classes=3)
    x = np.random.default_rng(2).normal(size=(6, 32, 32, 3)).astype("float32")
    data = (x, np.arange(6) % 3)
    oneshot = tl.find_ticket(model, "magnitude", num_blocks=2, min_blocks_per_stage=0)
    iterative = tl.find_ticket(model, "magnitude", num_blocks=2, min_blocks_per_stage=0, schedule="iterative")
    assert type(oneshot.model) is type(model) and type(iterative.model) is type(model)
    assert iterative.removed == oneshot.removed  # magnitude does not change as blocks go: the same two, same names
    assert set(iterative.rounds[1]) == set(tl.surgery.blocks(model)) - {iterative.removed[0]}
    assert tl.surgery.kept_blocks(iterative.model) == [b for b in tl.surgery.blocks(model) if b not in oneshot.removed]
    flat = tl.find_ticket(model, "snip", data=data, num_blocks=1, min_blocks_per_stage=0, same_family=False)
    assert not isinstance(flat.model, type(model)) and tl.surgery.blocks(flat.model) == [
        b for b in tl.surgery.blocks(model) if b not in flat.removed]  # a flat ticket keeps the names


def test_bert_and_gemma_tickets_of_their_own_family_equal_their_flat_tickets():
    bert = keras_hub.models.BertBackbone(vocabulary_size=100, num_layers=3, num_heads=2, hidden_dim=32,
                                         intermediate_dim=64, max_sequence_length=16)
    gemma = keras_hub.models.GemmaBackbone(vocabulary_size=100, num_layers=3, num_query_heads=2, num_key_value_heads=1,
                                           hidden_dim=32, intermediate_dim=64, head_dim=16)
    ids = np.array([[1, 2, 3, 4, 5, 6, 0, 0]])
    mask = np.array([[1, 1, 1, 1, 1, 1, 0, 0]])
    cases = [(bert, {"token_ids": ids, "segment_ids": np.zeros_like(ids), "padding_mask": mask}),
             (gemma, {"token_ids": ids, "padding_mask": mask})]
    for model, inputs in cases:
        middle = tl.surgery.blocks(model)[1]
        smaller = tl.surgery.family_ticket(model, [middle])
        assert type(smaller) is type(model) and smaller.num_layers == 2
        flat = tl.surgery.remove_blocks(model, [middle], min_blocks_per_stage=0)
        for got, expected in zip(keras.tree.flatten(smaller(inputs)), keras.tree.flatten(flat(inputs))):
            np.testing.assert_array_equal(np.asarray(got), np.asarray(expected))


def _bypassed(model, layer, inputs):
    """``model(inputs)`` with ``layer`` replaced by the identity, in the model's own call."""
    layer.call = lambda *args, **kwargs: args[0] if args else kwargs["inputs"]  # Falcon passes inputs= by keyword
    return [np.asarray(t) for t in keras.tree.flatten(model(inputs))]


_TINY = dict(vocabulary_size=64, num_layers=4, hidden_dim=32, intermediate_dim=64)
_GROUPED = dict(_TINY, num_query_heads=2, num_key_value_heads=1)
CONVENTION_CASES = {  # none of these classes is registered: keras_hub's transformer_layers convention finds them
    "Llama3Backbone": _GROUPED,  # a LlamaBackbone subclass
    "MistralBackbone": _GROUPED,
    "MixtralBackbone": dict(_GROUPED, num_experts=2, top_k=1),
    "Qwen3Backbone": dict(_GROUPED, head_dim=16),
    "Phi3Backbone": _GROUPED,
    "OPTBackbone": dict(_TINY, num_heads=2),
    "XLMRobertaBackbone": dict(_TINY, num_heads=2),
    "DistilBertBackbone": dict(_TINY, num_heads=2),
    "FalconBackbone": dict(_TINY, num_attention_heads=2),  # calls its layers with keyword arguments only
}


@pytest.mark.parametrize("name", sorted(CONVENTION_CASES))
def test_a_backbone_of_keras_hubs_convention_is_cut_in_its_own_class_and_equals_bypassing_the_layer(name):
    model = getattr(keras_hub.models, name)(**CONVENTION_CASES[name])
    assert tl.surgery.families.has_family(model)
    removed = model.transformer_layers[1]
    smaller = tl.surgery.family_ticket(model, [removed.name])
    assert type(smaller) is type(model) and smaller.num_layers == 3
    for new, old in zip(smaller.transformer_layers, [model.transformer_layers[i] for i in (0, 2, 3)]):
        assert all(np.array_equal(a, b) for a, b in zip(new.get_weights(), old.get_weights()))
    inputs = {"token_ids": np.array([[5, 2, 7, 9, 4, 1, 0, 0], [3, 3, 1, 4, 8, 6, 2, 0]]),
              "padding_mask": np.array([[1] * 6 + [0] * 2, [1] * 7 + [0]])}
    got = [np.asarray(t) for t in keras.tree.flatten(smaller(inputs))]
    for a, b in zip(got, _bypassed(model, removed, inputs)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def _gemma2(layers=4):
    return keras_hub.models.GemmaBackbone(vocabulary_size=64, num_layers=layers, num_query_heads=2,
                                          num_key_value_heads=1, hidden_dim=32, intermediate_dim=64, head_dim=16,
                                          use_sliding_window_attention=True, sliding_window_size=2)


def test_a_gemma2_ticket_that_would_shift_its_alternating_attention_is_refused_and_a_whole_period_is_cut():
    model = _gemma2()  # layers 0 and 2 attend through a sliding window, 1 and 3 globally
    with pytest.raises(ValueError, match=r"GemmaBackbone sets its layers by position: 'decoder_block_2' would be the "
                                         r"ticket's layer 1 with use_sliding_window_attention=False \(it has True\)"):
        tl.surgery.family_ticket(model, ["decoder_block_1"])
    inputs = {"token_ids": np.array([[5, 2, 7, 9, 4, 1, 3, 8]]), "padding_mask": np.ones((1, 8), "int32")}
    flat = tl.surgery.remove_blocks(model, ["decoder_block_1"], min_blocks_per_stage=0)  # keeps each layer as it is
    pair = tl.surgery.family_ticket(model, ["decoder_block_1", "decoder_block_2"])  # one period of the pattern
    assert [layer.use_sliding_window_attention for layer in pair.transformer_layers] == [True, False]
    np.testing.assert_allclose(np.asarray(flat(inputs)), _bypassed(model, model.transformer_layers[1], inputs)[0],
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(pair(inputs)), _bypassed(model, model.transformer_layers[2], inputs)[0],
                               rtol=1e-5, atol=1e-6)  # layers 1 and 2 both bypassed now


def test_a_gemma2_causal_lm_refusal_points_to_its_flat_ticket_which_equals_bypassing():
    lm = keras_hub.models.GemmaCausalLM(backbone=_gemma2(), preprocessor=None)
    with pytest.raises(ValueError, match=r"cut a flat ticket, which keeps each layer as it is: "
                                         r"tl.surgery.remove_blocks\(model, names\)"):
        tl.surgery.family_ticket(lm, ["decoder_block_1"])
    inputs = {"token_ids": np.array([[5, 2, 7, 9, 4, 1, 3, 8]]), "padding_mask": np.ones((1, 8), "int32")}
    flat = tl.surgery.remove_blocks(lm, ["decoder_block_1"], min_blocks_per_stage=0)  # the advice, followed
    np.testing.assert_allclose(np.asarray(flat(inputs)), _bypassed(lm, lm.backbone.transformer_layers[1], inputs)[0],
                               rtol=1e-5, atol=1e-6)


def test_a_causal_lm_whose_head_calls_the_tied_embedding_again_is_cut_flat():
    """The head calls the backbone's token embedding a second time (tied weights): a layer shared outside
    every block, so every block stays removable and the ticket shares the embedding too."""
    lm = keras_hub.models.GPT2CausalLM(backbone=_gpt2(), preprocessor=None)
    assert tl.surgery.families.flat_refusal(lm) is None and tl.surgery.families.flat_refusal(lm.backbone) is None
    assert tl.graph.analyse(lm).calls == {"token_embedding": ("token_embedding@1", "token_embedding@2")}
    assert tl.surgery.removable_blocks(lm) == tl.surgery.blocks(lm.backbone)
    result = tl.find_ticket(lm, "magnitude", num_blocks=1, min_blocks_per_stage=0, same_family=False)
    assert tl.surgery.blocks(result.model) == [b for b in tl.surgery.blocks(lm) if b not in result.removed]
    assert tl.graph.analyse(result.model).calls == {"token_embedding": ("token_embedding@1", "token_embedding@2")}
    for layer in tl.graph.leaf_layers(result.model):
        for mine, theirs in zip(layer.weights, tl.graph.operation(lm, layer.name).weights):
            np.testing.assert_array_equal(np.asarray(mine), np.asarray(theirs))
    removed = lm.backbone.get_layer(result.removed[0])
    np.testing.assert_allclose(np.asarray(result.model(_tokens())), _bypassed(lm, removed, _tokens())[0],
                               rtol=1e-5, atol=1e-6)
    flat = tl.find_ticket(lm.backbone, "magnitude", num_blocks=1, min_blocks_per_stage=0, same_family=False)
    assert tl.surgery.blocks(flat.model) == [b for b in tl.surgery.blocks(lm.backbone) if b not in flat.removed]
