"""A small vision transformer (Dosovitskiy et al. 2021), written the way the keras.io tutorial
writes one, for ``--model=tf_lottery.models.vit:vit`` and the ViT twin.

Patches of ``patch_size`` pixels are embedded by a strided conv, a learned position embedding
is added, then ``depth`` pre-norm encoder layers follow, each two residual *half-blocks*:
``LayerNorm -> MultiHeadAttention -> Add`` and ``LayerNorm -> Dense (GELU) -> Dense -> Add``.
Tokens are averaged (no class token) before the classifier. Every half-block is a block to
tf_lottery: the criteria score attention blocks by their four projection kernels and MLP
blocks by their two dense kernels, and removing one rewires its consumers to its input.

Example:
    >>> model = vit((28, 28, 1), 10, depth=6, hidden=64)
    >>> len(tl.surgery.removable_blocks(model))
    12
"""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="tf_lottery")
class PositionEmbedding(keras.layers.Layer):
    """A learned embedding per token position, added to the tokens."""

    def build(self, input_shape):
        self.positions = self.add_weight(shape=(1, *input_shape[1:]), initializer=keras.initializers.RandomNormal(
            stddev=0.02), name="positions")

    def call(self, tokens):
        return tokens + self.positions


def vit(input_shape, num_classes, patch_size: int = 4, hidden: int = 64, depth: int = 6, heads: int = 4,
        mlp: int = 128, dropout: float = 0.0) -> keras.Model:
    """A ViT classifier of ``depth`` encoder layers (``2 * depth`` blocks) that outputs logits.

    Args:
        input_shape: (height, width, channels); height and width multiples of ``patch_size``.
        num_classes: Classifier outputs.
        patch_size: Pixels per side of a patch.
        hidden: Token width.
        depth: Encoder layers.
        heads: Attention heads (``hidden`` must be a multiple).
        mlp: Width of the MLP's hidden layer.
        dropout: Dropout after attention and in the MLP.

    Raises:
        ValueError: for an image size that is not a multiple of the patch, or a width the heads
            do not divide.
    """
    height, width = int(input_shape[0]), int(input_shape[1])
    if height % patch_size or width % patch_size:
        raise ValueError(f"the image ({height}x{width}) must be a multiple of patch_size={patch_size}")
    if hidden % heads:
        raise ValueError(f"hidden={hidden} must be a multiple of heads={heads}")
    inputs = keras.Input(tuple(input_shape), name="image")
    x = keras.layers.Conv2D(hidden, patch_size, strides=patch_size, name="patch_embedding")(inputs)
    x = keras.layers.Reshape(((height // patch_size) * (width // patch_size), hidden), name="tokens")(x)
    x = PositionEmbedding(name="position_embedding")(x)
    for i in range(1, depth + 1):
        y = keras.layers.LayerNormalization(epsilon=1e-6, name=f"encoder{i}_attention_norm")(x)
        y = keras.layers.MultiHeadAttention(heads, hidden // heads, dropout=dropout, name=f"encoder{i}_attention")(y, y)
        x = keras.layers.Add(name=f"encoder{i}_attention_add")([x, y])
        y = keras.layers.LayerNormalization(epsilon=1e-6, name=f"encoder{i}_mlp_norm")(x)
        y = keras.layers.Dense(mlp, activation="gelu", name=f"encoder{i}_mlp_dense1")(y)
        if dropout:
            y = keras.layers.Dropout(dropout, name=f"encoder{i}_mlp_dropout")(y)
        y = keras.layers.Dense(hidden, name=f"encoder{i}_mlp_dense2")(y)
        x = keras.layers.Add(name=f"encoder{i}_mlp_add")([x, y])
    x = keras.layers.LayerNormalization(epsilon=1e-6, name="final_norm")(x)
    x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    outputs = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="vit")
