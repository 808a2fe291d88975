"""A GPT-2-style decoder on the byte vocabulary: the tiny language model of the depth-pruning evidence.

keras_hub's ``GPT2CausalLM`` (the ``hub`` extra; this module imports keras_hub, the rest of
tf_lottery does not) with :class:`tf_lottery.data.text.ByteTokenizer`'s 258 ids, an MLP four times
the hidden size, no dropout and no preprocessor: token ids and a padding mask in, logits out.

Example:
    >>> lm = byte_decoder(layers=8, hidden=128, heads=4, length=128, seed=0)
    >>> lm.backbone.num_layers, lm.count_params()
    (8, 1635840)
"""

from __future__ import annotations

import keras
import keras_hub

from tf_lottery.data.text import ByteTokenizer


def byte_decoder(layers: int = 8, hidden: int = 128, heads: int = 4, length: int = 128,
                 seed: int = 0) -> keras.Model:
    """A seeded ``GPT2CausalLM`` on the byte vocabulary (see the module docstring).

    Args:
        layers: Decoder layers.
        hidden: Hidden size (the MLP is 4x).
        heads: Attention heads (must divide ``hidden``).
        length: The longest sequence it takes (its position table).
        seed: Seed of its initial weights.

    Returns:
        The untrained model.

    Raises:
        ValueError: for ``heads`` that do not divide ``hidden``.
    """
    if hidden % heads:
        raise ValueError(f"heads must divide hidden; got hidden={hidden}, heads={heads}")
    keras.utils.set_random_seed(seed)
    backbone = keras_hub.models.GPT2Backbone(vocabulary_size=ByteTokenizer.vocabulary_size, num_layers=layers,
                                             num_heads=heads, hidden_dim=hidden, intermediate_dim=4 * hidden,
                                             max_sequence_length=length, dropout=0.0)
    return keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None)
