"""The byte-vocabulary decoder of the language-model evidence: its shape, its seed, its refusal."""

import numpy as np
import pytest

pytest.importorskip("keras_hub")

from tf_lottery.models.decoder import byte_decoder  # noqa: E402  (needs keras_hub)


def test_the_decoder_takes_bytes_and_is_seeded():
    lm = byte_decoder(layers=2, hidden=16, heads=2, length=8, seed=3)
    backbone = lm.backbone
    assert (backbone.vocabulary_size, backbone.num_layers, backbone.hidden_dim, backbone.intermediate_dim,
            backbone.max_sequence_length) == (258, 2, 16, 64, 8)
    again = byte_decoder(layers=2, hidden=16, heads=2, length=8, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(lm.get_weights(), again.get_weights()))
    ids = np.array([[2, 3, 4, 257]])
    logits = np.asarray(lm({"token_ids": ids, "padding_mask": np.ones_like(ids)}))
    assert logits.shape == (1, 4, 258)
    with pytest.raises(ValueError, match="heads must divide hidden; got hidden=16, heads=3"):
        byte_decoder(hidden=16, heads=3)
