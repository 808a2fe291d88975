"""Perplexity: exp of the mean next-token loss over real tokens, whatever the batch size."""

import keras
import numpy as np
import pytest

from tf_lottery.criteria import language
from tf_lottery.evals.language import perplexity


def _lm(vocabulary=7, zero=False):
    """A functional language model: an embedding and a dense head over the vocabulary."""
    keras.utils.set_random_seed(0)
    ids = keras.Input((None,), dtype="int32", name="token_ids")
    mask = keras.Input((None,), dtype="bool", name="padding_mask")
    head = keras.layers.Dense(vocabulary, kernel_initializer="zeros" if zero else "glorot_uniform")
    return keras.Model({"token_ids": ids, "padding_mask": mask}, head(keras.layers.Embedding(vocabulary, 4)(ids)))


def test_a_model_without_a_preference_has_the_vocabulary_as_perplexity():
    ids = np.random.default_rng(0).integers(0, 7, size=(5, 6))
    assert perplexity(_lm(zero=True), ids) == pytest.approx(7.0, rel=1e-6)


def test_perplexity_is_the_exp_of_the_mean_loss_over_real_tokens_at_any_batch_size():
    model = _lm()
    ids = np.random.default_rng(1).integers(0, 7, size=(5, 6))
    mask = np.ones_like(ids, bool)
    mask[1, 3:] = False
    inputs, labels = language.next_token_batch(ids, mask)
    hand = np.exp(float(language.next_token_loss(model(inputs), labels)))
    assert perplexity(model, ids, mask, batch_size=2) == pytest.approx(hand, rel=1e-5)
    assert perplexity(model, ids, mask, batch_size=5) == pytest.approx(hand, rel=1e-5)
    first_only = np.zeros_like(ids, bool)
    first_only[:, 0] = True
    with pytest.raises(ValueError, match="no real next token"):
        perplexity(model, ids, first_only)
