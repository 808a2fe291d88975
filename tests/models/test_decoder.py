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


def test_the_registered_builder_takes_the_datas_length_and_refuses_another_vocabulary_or_images():
    import tf_lottery as tl
    from tf_lottery.config import ModelConfig
    from tf_lottery.models.decoder import ByteDecoderSettings

    settings = ByteDecoderSettings(num_layers=2, hidden_dim=16, num_heads=2)
    text = type("Text", (), {"input_shape": (12,), "num_classes": 258})()
    lm = tl.models.build(ModelConfig("byte_decoder", settings=settings), text, seed=1)
    assert (type(lm).__name__, lm.backbone.max_sequence_length, lm.backbone.num_layers) == ("GPT2CausalLM", 12, 2)
    assert tl.models.lineage(lm)["builder"] == "byte_decoder"
    with pytest.raises(ValueError, match="predicts the 258 byte tokens; the data has a vocabulary of 500"):
        tl.models.build(ModelConfig("byte_decoder", settings=settings),
                        type("Text", (), {"input_shape": (12,), "num_classes": 500})())
    with pytest.raises(ValueError, match=r"takes token sequences \(--task=causal_lm with a text corpus\); got "
                                         r"inputs of shape \(28, 28, 1\)"):
        tl.models.build(ModelConfig("byte_decoder", settings=settings),
                        type("Images", (), {"input_shape": (28, 28, 1), "num_classes": 258})())
    with pytest.raises(ValueError, match="num_heads must divide hidden_dim; got hidden_dim=16, num_heads=3"):
        ByteDecoderSettings(hidden_dim=16, num_heads=3)
