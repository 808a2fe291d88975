"""A GPT-2-style decoder on the byte vocabulary: the tiny language model of the depth-pruning evidence,
and ``--model=byte_decoder`` of ``--task=causal_lm``.

keras_hub's ``GPT2CausalLM`` (the ``hub`` extra; this module is the one place tf_lottery imports
keras_hub, and it loads without it: building then says what to install) with
:class:`tf_lottery.data.text.ByteTokenizer`'s 258 ids, an MLP four times the hidden size, no dropout
and no preprocessor: token ids and a padding mask in, logits out. Its blocks are the transformer
layers; a ticket is a ``GPT2CausalLM`` with fewer of them.

Example:
    >>> lm = byte_decoder(layers=8, hidden=128, heads=4, length=128, seed=0)
    >>> lm.backbone.num_layers, lm.count_params()
    (8, 1635840)
"""

from __future__ import annotations

import dataclasses

import keras

from tf_lottery.core import options
from tf_lottery.data.text import ByteTokenizer
from tf_lottery.graph.lineage import attach as attach_lineage
from tf_lottery.models.registry import register_builder
from tf_lottery.surgery import family_ticket

try:
    import keras_hub
except ImportError:  # the hub extra is not installed: byte_decoder says so when called
    keras_hub = None


@dataclasses.dataclass(frozen=True)
class ByteDecoderSettings:
    """The ``byte_decoder`` builder's own settings (each one a flag); its sequence length is the
    data's ``--sequence_length`` and its vocabulary the tokenizer's."""

    num_layers: int = options.integer(8, "byte_decoder: transformer layers (the blocks).", lower_bound=1)
    hidden_dim: int = options.integer(128, "byte_decoder: hidden size (the MLP is 4x).", lower_bound=1)
    num_heads: int = options.integer(4, "byte_decoder: attention heads (must divide --hidden_dim).", lower_bound=1)

    def __post_init__(self):
        options.normalise(self)
        options.check_options(self)
        if self.hidden_dim % self.num_heads:
            raise ValueError(f"num_heads must divide hidden_dim; got hidden_dim={self.hidden_dim}, "
                             f"num_heads={self.num_heads}")


def _from_settings(settings: ByteDecoderSettings, input_shape, num_classes, seed, weight_decay) -> keras.Model:
    if len(input_shape) != 1:
        raise ValueError(f"--model=byte_decoder takes token sequences (--task=causal_lm with a text corpus); got "
                         f"inputs of shape {tuple(input_shape)}")
    if num_classes != ByteTokenizer.vocabulary_size:
        raise ValueError(f"--model=byte_decoder predicts the {ByteTokenizer.vocabulary_size} byte tokens; the data "
                         f"has a vocabulary of {num_classes} (another tokenizer's)")
    return byte_decoder(settings.num_layers, settings.hidden_dim, settings.num_heads, int(input_shape[0]), seed)


def _from_spec(spec: dict, removed) -> keras.Model:
    dense = byte_decoder(**spec)
    return family_ticket(dense, sorted(removed)) if removed else dense


@register_builder("byte_decoder", settings=ByteDecoderSettings, from_settings=_from_settings, from_spec=_from_spec,
                  tasks=("causal_lm",))
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
    if keras_hub is None:
        raise ImportError("byte_decoder builds keras_hub's GPT2CausalLM: pip install 'tf_lottery[hub]' "
                          "(keras-hub==0.32.0)")
    keras.utils.set_random_seed(seed)
    backbone = keras_hub.models.GPT2Backbone(vocabulary_size=ByteTokenizer.vocabulary_size, num_layers=layers,
                                             num_heads=heads, hidden_dim=hidden, intermediate_dim=4 * hidden,
                                             max_sequence_length=length, dropout=0.0, name="byte_decoder_backbone")
    model = keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None, name="byte_decoder")
    spec = {"layers": layers, "hidden": hidden, "heads": heads, "length": length, "seed": seed}
    return attach_lineage(model, "byte_decoder", spec)
