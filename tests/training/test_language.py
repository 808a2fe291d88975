"""The language-model recipe: its batch order, its schedule, and that it learns what the labels say."""

import numpy as np
import pytest

from tf_lottery.training.language import batch_order, compile_next_token, fit_next_token, next_token_schedule


def test_the_batch_order_is_seeded_rounds_of_permutations():
    order = batch_order(5, steps=6, batch_size=2, seed=4)
    assert order.shape == (12,)
    assert sorted(order[:5]) == list(range(5)) and sorted(order[5:10]) == list(range(5))
    assert np.array_equal(order, batch_order(5, steps=6, batch_size=2, seed=4))
    assert not np.array_equal(order, batch_order(5, steps=6, batch_size=2, seed=5))
    with pytest.raises(ValueError, match="no training examples"):
        batch_order(0, steps=1, batch_size=1, seed=0)


def test_the_schedule_warms_up_then_decays_to_zero():
    import keras

    schedule = next_token_schedule(100, learning_rate=0.5)
    rate = [float(schedule(step)) for step in (0, 5, 100)]
    assert rate[0] == 0.0 and rate[1] == pytest.approx(0.5) and rate[2] == pytest.approx(0.0, abs=1e-7)
    model = compile_next_token(keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]), steps=100)
    assert isinstance(model.optimizer, keras.optimizers.AdamW) and model.optimizer.weight_decay == pytest.approx(0.01)
    with pytest.raises(ValueError, match="steps must be >= 1 and learning_rate > 0; got steps=0"):
        next_token_schedule(0)


def test_a_decoder_learns_the_labels_and_ignores_the_padded_ones():
    pytest.importorskip("keras_hub")
    from tf_lottery.evals.language import perplexity
    from tf_lottery.models.decoder import byte_decoder

    ids = np.tile(np.arange(2, 10), (8, 1))  # one sentence, eight times
    mask = np.ones_like(ids)
    mask[:, -2:] = 0
    inputs = {"token_ids": ids[:, :-1], "padding_mask": mask[:, :-1]}
    labels = np.where(mask[:, 1:], ids[:, 1:], -1)
    lm = byte_decoder(layers=1, hidden=16, heads=2, length=7, seed=0)
    before = perplexity(lm, ids, mask)
    fit_next_token(lm, inputs, labels, steps=40, batch_size=4, seed=0, learning_rate=1e-2)
    assert before > 100 and perplexity(lm, ids, mask) < 3  # near-uniform over 258 ids, then memorized
    with pytest.raises(ValueError, match="inputs and labels differ in length"):
        fit_next_token(lm, inputs, labels[:3], steps=1, batch_size=2)
