"""keras_hub causal LM tasks as a new user calls them (tiny random configurations, nothing downloaded):
their blocks and FLOPs are their backbone's with the head counted, their tickets are named after the dense
model, and a family that sets its layers by position or by per-layer lists is cut where it can be."""

import warnings

import keras
import numpy as np
import pytest

import tf_lottery as tl
from tests import zoo

keras_hub = pytest.importorskip("keras_hub")


@pytest.mark.parametrize("family", sorted(zoo.CAUSAL_LMS))
def test_a_causal_lms_blocks_and_flops_are_its_backbones_with_the_head_counted(family):
    lm = zoo.causal_lm(family)
    layers = [layer.name for layer in lm.backbone.transformer_layers]
    assert tl.surgery.blocks(lm) == tl.surgery.blocks(lm.backbone) == layers
    assert tl.surgery.removable_blocks(lm) == layers
    table = lm.backbone.token_embedding.embeddings  # the head: 8 positions x hidden 16 x vocabulary 64
    assert tl.cost.flops(lm, sequence_length=8) == tl.cost.flops(lm.backbone, sequence_length=8) + 8 * 16 * 64
    assert tuple(table.shape) == (64, 16)
    smaller = tl.surgery.family_ticket(lm, [layers[1]])
    per_layer = (tl.cost.flops(lm, sequence_length=8) - tl.cost.flops(smaller, sequence_length=8))
    assert per_layer == tl.cost.flops(lm.backbone, sequence_length=8) // 3  # three identical layers


def test_gpt2_flops_by_hand_and_what_cannot_be_costed_is_refused_in_one_line():
    lm = zoo.causal_lm("gpt2")  # 8 tokens of 16, 2 heads of 8, MLP 32, vocabulary 64
    layer = 4 * 8 * 16 * 16 + 2 * (2 * 8 * 8 * 8) + 2 * 8 * 16 * 32
    assert tl.cost.flops(lm, sequence_length=8) == 3 * layer + 8 * 16 * 64
    assert tl.evals.language.flops_per_token(lm, 8) == tl.cost.flops(lm, sequence_length=8) / 8
    with pytest.raises(ValueError, match=r"the FLOPs of 'gpt2_backbone\w*' depend on its sequence length, and it takes "
                                         r"sequences of any length: give one, tl.cost.flops\(model, "
                                         r"sequence_length=128\)"):
        tl.cost.flops(lm)
    with pytest.raises(ValueError, match=r"sequence_length=8 is for a model of token sequences; 'resnet8' takes"):
        tl.cost.flops(tl.models.cifar_resnet(8), sequence_length=8)
    with pytest.raises(ValueError, match=r"sequence_length must be an integer >= 1; got 0"):
        tl.cost.flops(lm, sequence_length=0)


def test_a_causal_lm_is_cut_flat_through_its_shared_token_embedding():
    # The head calls the backbone's token embedding again: a shared layer outside every block, read call by
    # call, so the flat cut works on the task and equals the task over the backbone's own flat cut.
    lm = zoo.causal_lm("gpt2")
    flat = tl.surgery.remove_blocks(lm, ["transformer_layer_1"], min_blocks_per_stage=0)
    backbone = tl.surgery.remove_blocks(lm.backbone, ["transformer_layer_1"], min_blocks_per_stage=0)
    inputs = {"token_ids": np.array([[3, 5, 7, 9]]), "padding_mask": np.ones((1, 4), bool)}
    hidden = np.asarray(backbone(inputs))
    table = np.asarray(lm.backbone.token_embedding.embeddings)
    np.testing.assert_allclose(np.asarray(flat(inputs)), hidden @ table.T, rtol=1e-5, atol=1e-5)
    assert "transformer_layer_1" not in tl.surgery.blocks(flat)


def test_a_causal_lm_ticket_is_named_after_its_dense_model_and_p_whatever_keras_counted():
    first, second = zoo.causal_lm("llama3"), zoo.causal_lm("llama3")  # Keras counts: llama3_causal_lm_<n>
    assert first.name != second.name
    for lm in (first, second):
        ticket = tl.find_ticket(lm, "magnitude", num_blocks=1, min_blocks_per_stage=0).model
        assert (ticket.name, ticket.backbone.name) == ("llama3_causal_lm_minus1", "llama3_backbone_minus1")
    again = tl.find_ticket(first, "magnitude", num_blocks=2, min_blocks_per_stage=0, schedule="iterative").model
    assert (again.name, again.backbone.name) == ("llama3_causal_lm_minus2", "llama3_backbone_minus2")
    named = keras_hub.models.GPT2CausalLM(backbone=zoo.causal_lm("gpt2").backbone, preprocessor=None, name="tiny")
    assert tl.surgery.family_ticket(named, ["transformer_layer_0"]).name == "tiny_minus1"  # a user's name stays
    assert tl.surgery.families.stable_name(named.backbone) == "gpt2_backbone"
    assert tl.models.byte_decoder(layers=2, hidden=16, heads=2, length=8).name == "byte_decoder"


def _gemma2(layers=4):
    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.GemmaBackbone(vocabulary_size=64, num_layers=layers, num_query_heads=2,
                                              num_key_value_heads=1, hidden_dim=32, intermediate_dim=64, head_dim=16,
                                              use_sliding_window_attention=True, sliding_window_size=2)
    return keras_hub.models.GemmaCausalLM(backbone=backbone, preprocessor=None)


def test_gemma2_passes_over_the_best_scored_layer_it_cannot_remove_and_says_so():
    lm = _gemma2()  # layers 0 and 2 attend through a sliding window, 1 and 3 globally
    for variable in lm.backbone.transformer_layers[1].trainable_variables:
        variable.assign(variable * 0.01)  # decoder_block_1: the lowest magnitude by far
    with pytest.warns(tl.tickets.find.SkippedBlocks,
                      match=r"decoder_block_1 scored to go first but cannot go alone in GemmaCausalLM's own class "
                            r"\(GemmaBackbone sets its layers by position: 'decoder_block_2' would be the ticket's "
                            r"layer 1 with use_sliding_window_attention=False \(it has True\)\); removed "
                            r"decoder_block_3, the best-scored blocks it allows, instead"):
        result = tl.find_ticket(lm, "magnitude", num_blocks=1, min_blocks_per_stage=0)
    assert min(result.scores, key=result.scores.get) == "decoder_block_1"
    assert result.removed == ["decoder_block_3"] and result.details == {"skipped": ["decoder_block_1"]}
    assert [layer.use_sliding_window_attention for layer in result.model.backbone.transformer_layers] == [
        True, False, True]
    with warnings.catch_warnings():
        warnings.simplefilter("error", tl.tickets.find.SkippedBlocks)  # a whole period: nothing passed over
        pair = tl.find_ticket(lm, "magnitude", num_blocks=2, min_blocks_per_stage=0)
    assert sorted(pair.removed) in (["decoder_block_0", "decoder_block_1"], ["decoder_block_1", "decoder_block_2"])
    iterative = tl.find_ticket(lm, "magnitude", num_blocks=1, min_blocks_per_stage=0, schedule="iterative")
    assert iterative.removed == ["decoder_block_3"] and iterative.details == {"skipped": ["decoder_block_1"]}


def test_the_position_rule_allows_exactly_the_removals_that_keep_every_layers_settings():
    lm = _gemma2()
    with pytest.raises(tl.surgery.families.PositionRefusal) as refused:
        tl.surgery.family_ticket(lm, ["decoder_block_0", "decoder_block_2"])
    allowed = tl.surgery.families.position_rule(lm, refused.value)  # two of four layers removed
    names = [f"decoder_block_{i}" for i in range(4)]
    pairs = {(a, b) for a in range(4) for b in range(a + 1, 4) if allowed({names[a], names[b]}, set())}
    assert pairs == {(0, 1), (1, 2), (2, 3)}  # two consecutive layers: one period of the alternation
    assert allowed({names[1]}, {names[0]}) and not allowed({names[1]}, {names[0], names[2]})


def _smollm3(layers=4, rope=(True, False, True, False)):
    return dict(vocabulary_size=64, hidden_dim=16, intermediate_dim=32, num_layers=layers, num_attention_heads=2,
                num_key_value_heads=1, attention_bias=False, attention_dropout=0.0,
                rope_layer_enabled_list=list(rope), layer_types=["attention"] * layers, mlp_bias=False,
                layer_norm_epsilon=1e-5, max_position_embeddings=32, rope_theta=10000.0, partial_rotary_factor=1.0)


def test_a_smollm3_ticket_drops_the_removed_layers_entries_and_equals_a_hand_built_smaller_model():
    keras.utils.set_random_seed(0)
    lm = keras_hub.models.SmolLM3CausalLM(backbone=keras_hub.models.SmolLM3Backbone(**_smollm3()),
                                          preprocessor=None)
    ticket = tl.surgery.family_ticket(lm, ["transformer_layer_1"])  # layer 1 is the one without RoPE
    assert ticket.backbone.rope_layer_enabled_list == [True, True, False]
    assert [layer.self_attn.use_rope for layer in ticket.backbone.transformer_layers] == [True, True, False]
    hand = keras_hub.models.SmolLM3Backbone(**_smollm3(3, (True, True, False)))
    hand.token_embedding.set_weights(lm.backbone.token_embedding.get_weights())
    for j, i in enumerate((0, 2, 3)):
        hand.transformer_layers[j].set_weights(lm.backbone.transformer_layers[i].get_weights())
    hand.norm.set_weights(lm.backbone.norm.get_weights())
    hand_lm = keras_hub.models.SmolLM3CausalLM(backbone=hand, preprocessor=None)
    inputs = {"token_ids": np.array([[5, 2, 7, 9, 4, 1, 3, 8]]), "padding_mask": np.ones((1, 8), "int32")}
    np.testing.assert_array_equal(np.asarray(ticket(inputs)), np.asarray(hand_lm(inputs)))
    # a layer in the middle can go now, through find_ticket too, and twice over
    result = tl.find_ticket(lm, "magnitude", num_blocks=2, min_blocks_per_stage=0, schedule="iterative")
    assert result.model.backbone.num_layers == 2 and result.model.name == "smol_lm3_causal_lm_minus2"
    kept = [i for i in range(4) if f"transformer_layer_{i}" not in result.removed]
    assert result.model.backbone.rope_layer_enabled_list == [[True, False, True, False][i] for i in kept]
