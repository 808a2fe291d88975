"""Transformers as residual networks: a ViT's and a BERT-style encoder's half-blocks are found,
scored by every weight-level criterion, costed with their attention, silenced and removed."""

import numpy as np
import pytest

import tf_lottery as tl
from tests import zoo

HALF_BLOCKS = ["encoder1_add1", "encoder1_add2", "encoder2_add1", "encoder2_add2"]


@pytest.fixture(scope="module")
def vit():
    return zoo.vit()


def test_the_half_blocks_of_a_vit_are_its_blocks(vit):
    assert tl.surgery.blocks(vit) == HALF_BLOCKS
    assert tl.surgery.removable_blocks(vit) == HALF_BLOCKS
    attention, mlp = tl.surgery.find_blocks(vit)[:2]
    assert attention.branch == ("encoder1_ln1", "encoder1_attention")
    assert mlp.branch == ("encoder1_ln2", "encoder1_mlp1", "encoder1_mlp2")


@pytest.mark.parametrize("criterion", ["snip", "grasp", "magnitude", "synflow"])
def test_weight_level_criteria_score_attention_and_mlp_blocks(vit, criterion):
    scores = tl.criteria.get(criterion)(vit, zoo.vit_batch())
    assert sorted(scores) == sorted(HALF_BLOCKS)
    assert all(np.isfinite(v) for v in scores.values())
    assert len({round(v, 12) for v in scores.values()}) == 4  # each block its own score


def test_an_attention_block_is_scored_by_its_four_projection_kernels(vit):
    keys = tl.criteria.base.block_weights(vit)
    assert keys["encoder1_add1"] == ["encoder1_attention/query/kernel", "encoder1_attention/key/kernel",
                                     "encoder1_attention/value/kernel", "encoder1_attention/attention_output/kernel"]
    assert keys["encoder1_add2"] == ["encoder1_mlp1", "encoder1_mlp2"]
    magnitude = tl.criteria.get("magnitude")(vit)
    layer = vit.get_layer("encoder1_attention")
    kernels = [layer.query_dense.kernel, layer.key_dense.kernel, layer.value_dense.kernel, layer.output_dense.kernel]
    hand = np.concatenate([np.abs(k.numpy()).ravel() for k in kernels]).astype("float64").mean()
    assert magnitude["encoder1_add1"] == pytest.approx(hand, rel=1e-12)


def test_snip_reads_the_gradient_of_each_projection_kernel(vit):
    x, y = zoo.vit_batch()
    layer = vit.get_layer("encoder2_attention")
    import tensorflow as tf
    with tf.GradientTape() as tape:
        logits = vit(x, training=True)
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
    kernels = [layer.query_dense.kernel, layer.key_dense.kernel, layer.value_dense.kernel, layer.output_dense.kernel]
    grads = tape.gradient(loss, kernels)
    hand = np.concatenate([np.abs((k * g).numpy()).ravel() for k, g in zip(kernels, grads)]).mean()
    assert tl.criteria.get("snip")(vit, (x, y))["encoder2_add1"] == pytest.approx(hand, rel=1e-4)


def test_vit_flops_count_attention_by_hand(vit):
    # patches: 16 positions x 4*4*3*32; per encoder, T = 16 tokens of 32, 2 heads of 16:
    # Q, K, V, O projections 4 x 16 x 1024, QK^T and the sum over V 2 x (2 x 16 x 16 x 16),
    # the MLP 2 x 16 x 32 x 64; the head 32 x 4.
    patches = 16 * 4 * 4 * 3 * 32
    encoder = 4 * 16 * 1024 + 2 * (2 * 16 * 16 * 16) + 2 * 16 * 32 * 64
    assert tl.cost.flops(vit) == patches + 2 * encoder + 32 * 4
    assert tl.cost.uncounted(vit) == []  # the learned position embedding: traced, an elementwise add, free


def test_bert_style_encoder_flops_by_hand():
    model = zoo.bert_encoder()  # 8 tokens of 16, 2 heads of 8, MLP 32, 2 layers, 4 classes
    encoder = 4 * 8 * (16 * 2 * 8) + 2 * (2 * 8 * 8 * 8) + 2 * 8 * 16 * 32
    assert tl.cost.flops(model) == 2 * encoder + 16 * 4  # embeddings are look-ups: free
    assert tl.cost.uncounted(model) == []  # a PositionEmbedding (keras_hub's name) is elementwise: free


def test_memory_holds_each_attention_map(vit):
    without = zoo.vit(depth=2)
    maps = 2 * (2 * 16 * 16)  # two layers, heads x Tq x Tk
    graph = tl.graph.analyse(without)
    outputs = sum(int(np.prod([d for d in shape])) if shape else 1 for shape in graph.shapes.values())
    assert tl.cost.memory(without, batch_size=3) == 4 * (3 * (outputs + maps) + without.count_params())


def test_removing_an_attention_block_saves_its_attention_flops(vit):
    ticket = tl.surgery.remove_blocks(vit, ["encoder2_add1"], min_blocks_per_stage=0)
    assert tl.cost.flops(vit) - tl.cost.flops(ticket) == 4 * 16 * 1024 + 2 * (2 * 16 * 16 * 16)
    for layer in ticket.layers:  # the kept layers are the dense network's, bit for bit
        for a, b in zip(layer.get_weights(), vit.get_layer(layer.name).get_weights()):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("block", HALF_BLOCKS)
def test_a_silenced_half_block_computes_what_its_removal_does(block):
    dense = zoo.vit(seed=3)
    x, _ = zoo.vit_batch(n=4)
    ticket = tl.surgery.remove_blocks(dense, [block], min_blocks_per_stage=0)
    tl.surgery.silence_blocks(dense, [block])
    np.testing.assert_allclose(dense.predict(x, verbose=0), ticket.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_the_token_plus_position_embedding_sum_is_not_a_block():
    model = zoo.bert_encoder()
    assert tl.surgery.blocks(model) == ["layer1_add1", "layer1", "layer2_add1", "layer2"]
    assert "embeddings_add" not in {b.add_layer for b in tl.surgery.find_blocks(model)}
    ticket = tl.surgery.remove_blocks(model, ["layer2_add1"], min_blocks_per_stage=0)
    assert "layer2_attention" not in [layer.name for layer in ticket.layers]
    assert "position_embedding" in [layer.name for layer in ticket.layers]
