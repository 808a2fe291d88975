"""Models written here, as a user would write them from public tutorials, for the tests that
try tf_lottery on models nobody in the package wrote.

* :func:`vit`: a keras.io-style vision transformer ("Image classification with Vision
  Transformer"): patches, a learned position embedding, pre-norm encoder blocks of
  ``LayerNorm -> MultiHeadAttention -> Add`` and ``LayerNorm -> Dense MLP -> Add``.
* :func:`bert_encoder`: a BERT-style post-norm encoder on token ids (token + position
  embeddings, ``MHA -> Add -> LayerNorm`` and ``MLP -> Add -> LayerNorm``).
"""

import keras
import numpy as np


@keras.saving.register_keras_serializable(package="tf_lottery_tests")
class AddPositions(keras.layers.Layer):
    """A learned position embedding added to a sequence of patches."""

    def build(self, input_shape):
        self.positions = self.add_weight(shape=(1, *input_shape[1:]), initializer="random_normal", name="positions")

    def call(self, x):
        return x + self.positions


def vit(image_size=16, channels=3, patch=4, hidden=32, depth=2, heads=2, mlp=64, classes=4, seed=0,
        name="vit"):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((image_size, image_size, channels))
    x = keras.layers.Conv2D(hidden, patch, strides=patch, name="patches")(inputs)
    x = keras.layers.Reshape(((image_size // patch) ** 2, hidden), name="tokens")(x)
    x = AddPositions(name="positions")(x)
    for i in range(1, depth + 1):
        y = keras.layers.LayerNormalization(epsilon=1e-6, name=f"encoder{i}_ln1")(x)
        y = keras.layers.MultiHeadAttention(heads, hidden // heads, name=f"encoder{i}_attention")(y, y)
        x = keras.layers.Add(name=f"encoder{i}_add1")([x, y])
        y = keras.layers.LayerNormalization(epsilon=1e-6, name=f"encoder{i}_ln2")(x)
        y = keras.layers.Dense(mlp, activation="gelu", name=f"encoder{i}_mlp1")(y)
        y = keras.layers.Dense(hidden, name=f"encoder{i}_mlp2")(y)
        x = keras.layers.Add(name=f"encoder{i}_add2")([x, y])
    x = keras.layers.LayerNormalization(epsilon=1e-6, name="final_ln")(x)
    x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    outputs = keras.layers.Dense(classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=name)


def vit_batch(n=16, image_size=16, channels=3, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, image_size, image_size, channels)).astype("float32"),
            np.arange(n) % classes)


@keras.saving.register_keras_serializable(package="tf_lottery_tests")
class PatchEncoder(keras.layers.Layer):
    """keras.io's ViT patch encoder: a projection plus a learned position embedding, its
    sublayers created in ``__init__`` (so they keep the default float32 whatever the outer dtype)."""

    def __init__(self, num_patches, projection_dim, **kwargs):
        super().__init__(**kwargs)
        self.num_patches, self.projection_dim = num_patches, projection_dim
        self.projection = keras.layers.Dense(projection_dim)
        self.position_embedding = keras.layers.Embedding(num_patches, projection_dim)

    def call(self, patch):
        positions = keras.ops.expand_dims(keras.ops.arange(0, self.num_patches, 1), axis=0)
        return self.projection(patch) + self.position_embedding(positions)

    def get_config(self):
        return {**super().get_config(), "num_patches": self.num_patches, "projection_dim": self.projection_dim}


def keras_io_vit(image_size=16, channels=3, patch=4, hidden=32, depth=2, heads=2, classes=4, seed=0):
    """The keras.io tutorial's ViT shape: flattened patches through :class:`PatchEncoder`."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((image_size, image_size, channels))
    count = (image_size // patch) ** 2
    x = keras.layers.Reshape((image_size // patch, patch, image_size // patch, patch, channels))(inputs)
    x = keras.layers.Permute((1, 3, 2, 4, 5))(x)
    x = keras.layers.Reshape((count, patch * patch * channels), name="patches")(x)
    x = PatchEncoder(count, hidden, name="encoded")(x)
    for i in range(1, depth + 1):
        y = keras.layers.LayerNormalization(epsilon=1e-6, name=f"block{i}_ln1")(x)
        y = keras.layers.MultiHeadAttention(heads, hidden // heads, dropout=0.1, name=f"block{i}_attention")(y, y)
        x = keras.layers.Add(name=f"block{i}_add1")([y, x])
        y = keras.layers.LayerNormalization(epsilon=1e-6, name=f"block{i}_ln2")(x)
        y = keras.layers.Dense(2 * hidden, activation="gelu", name=f"block{i}_mlp1")(y)
        y = keras.layers.Dropout(0.1, name=f"block{i}_drop")(y)
        y = keras.layers.Dense(hidden, activation="gelu", name=f"block{i}_mlp2")(y)
        x = keras.layers.Add(name=f"block{i}_add2")([y, x])
    x = keras.layers.LayerNormalization(epsilon=1e-6, name="final_ln")(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="keras_io_vit")


@keras.saving.register_keras_serializable(package="tf_lottery_tests")
class PositionEmbedding(keras.layers.Layer):
    """keras_hub-style: returns a learned embedding per position, shaped like its input."""

    def build(self, input_shape):
        self.embeddings = self.add_weight(shape=tuple(input_shape[1:]), initializer="random_normal",
                                          name="embeddings")

    def call(self, x):
        return keras.ops.broadcast_to(self.embeddings, keras.ops.shape(x))


def bert_encoder(sequence=8, vocabulary=50, hidden=16, heads=2, mlp=32, depth=2, classes=4, seed=0):
    """A BERT-style post-norm encoder on token ids: token + position embeddings summed (not a
    block), then ``MHA -> Add -> LayerNorm`` and ``MLP -> Add -> LayerNorm`` layers."""
    keras.utils.set_random_seed(seed)
    tokens = keras.Input((sequence,), dtype="int32", name="token_ids")
    x = keras.layers.Embedding(vocabulary, hidden, name="token_embedding")(tokens)
    x = keras.layers.Add(name="embeddings_add")([x, PositionEmbedding(name="position_embedding")(x)])
    x = keras.layers.LayerNormalization(name="embeddings_ln")(x)
    for i in range(1, depth + 1):
        y = keras.layers.MultiHeadAttention(heads, hidden // heads, name=f"layer{i}_attention")(x, x)
        x = keras.layers.LayerNormalization(name=f"layer{i}_ln1")(keras.layers.Add(name=f"layer{i}_add1")([x, y]))
        y = keras.layers.Dense(mlp, activation="gelu", name=f"layer{i}_mlp1")(x)
        y = keras.layers.Dense(hidden, name=f"layer{i}_mlp2")(y)
        x = keras.layers.LayerNormalization(name=f"layer{i}_ln2")(keras.layers.Add(name=f"layer{i}_add2")([x, y]))
    x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    return keras.Model(tokens, keras.layers.Dense(classes, name="logits")(x), name="bert_encoder")


def two_heads(classes=4, aux_classes=3, seed=0):
    """A small ResNet with a classifier and an auxiliary head on the last stage's features."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", name="stem")(inputs)
    for i in range(1, 4):
        y = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name=f"block{i}_conv1")(x)
        y = keras.layers.Conv2D(8, 3, padding="same", name=f"block{i}_conv2")(y)
        x = keras.layers.Add(name=f"block{i}_add")([x, y])
    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    logits = keras.layers.Dense(classes, name="logits")(pooled)
    aux = keras.layers.Dense(aux_classes, name="aux")(pooled)
    return keras.Model(inputs, [logits, aux], name="two_heads")


def backbone(seed=0):
    """:func:`two_heads` without a head: its output is the last feature map."""
    model = two_heads(seed=seed)
    return keras.Model(model.inputs, model.get_layer("block3_add").output, name="backbone")


@keras.saving.register_keras_serializable(package="tf_lottery_tests")
class ResidualBlock(keras.layers.Layer):
    """A basic residual block as one subclassed layer (the keras_hub style): conv-BN-ReLU-conv-BN, + x, ReLU."""

    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.conv1 = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)
        self.bn1 = keras.layers.BatchNormalization()
        self.conv2 = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)
        self.bn2 = keras.layers.BatchNormalization()

    def call(self, x, training=None):
        y = keras.ops.relu(self.bn1(self.conv1(x), training=training))
        y = self.bn2(self.conv2(y), training=training)
        return keras.ops.relu(x + y)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters}


@keras.saving.register_keras_serializable(package="tf_lottery_tests")
class GatedBlock(keras.layers.Layer):
    """A residual layer whose shortcut the trace does not see as one: ``x * 1.0 + f(x)`` (declare it)."""

    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.conv = keras.layers.Conv2D(filters, 3, padding="same")

    def call(self, x):
        return x * 1.0 + self.conv(x)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters}


def layer_resnet(blocks=3, filters=8, classes=4, block=ResidualBlock, seed=0):
    """A ResNet whose blocks are each one subclassed layer."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(filters, 3, padding="same", name="stem")(inputs)
    for i in range(1, blocks + 1):
        x = block(filters, name=f"res{i}")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, keras.layers.Dense(classes, name="logits")(x), name="layer_resnet")


@keras.saving.register_keras_serializable(package="tf_lottery_tests")
class Stack(keras.layers.Layer):
    """A container: ``depth`` residual blocks and a final BatchNorm inside one layer (the keras_hub
    ``ViTEncoder`` style); :mod:`tf_lottery.graph.containers` opens it once registered."""

    def __init__(self, filters, depth, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.depth = filters, depth
        self.blocks = [ResidualBlock(filters, name=f"unit{i + 1}") for i in range(depth)]
        self.norm = keras.layers.BatchNormalization(name="stack_norm")

    def call(self, x, training=None):
        for block in self.blocks:
            x = block(x, training=training)
        return self.norm(x, training=training)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "depth": self.depth}


class MisreadStack(Stack):
    """A :class:`Stack` registered with an unroll that forgets its norm (for the check of unrolls)."""


def stack_resnet(depth=3, filters=8, classes=4, container=Stack, seed=0):
    """A ResNet whose blocks all sit inside one container layer."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(filters, 3, padding="same", name="stem")(inputs)
    x = container(filters, depth, name="stack")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, keras.layers.Dense(classes, name="logits")(x), name="stack_resnet")


def gpt2_lm(layers=3, dropout=0.1, seed=0):
    """A tiny keras_hub GPT2CausalLM (random weights, vocabulary 100, 16 positions, hidden 32, 2 heads,
    MLP 64, no preprocessor); the caller has checked that keras_hub installs."""
    import keras_hub
    keras.utils.set_random_seed(seed)
    backbone = keras_hub.models.GPT2Backbone(vocabulary_size=100, num_layers=layers, num_heads=2, hidden_dim=32,
                                             intermediate_dim=64, max_sequence_length=16, dropout=dropout)
    return keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None)


_TINY_LM = dict(vocabulary_size=64, num_layers=3, hidden_dim=16, intermediate_dim=32)
_GROUPED_LM = dict(_TINY_LM, num_query_heads=2, num_key_value_heads=1)
CAUSAL_LMS = {  # keras_hub 0.32's tasks: (task, backbone, backbone arguments)
    "gpt2": ("GPT2CausalLM", "GPT2Backbone", dict(_TINY_LM, num_heads=2, max_sequence_length=16)),
    "llama3": ("Llama3CausalLM", "Llama3Backbone", _GROUPED_LM),
    "gemma": ("GemmaCausalLM", "GemmaBackbone", dict(_GROUPED_LM, head_dim=8)),
    "mistral": ("MistralCausalLM", "MistralBackbone", _GROUPED_LM),
    "qwen": ("QwenCausalLM", "QwenBackbone", _GROUPED_LM),
}
"""Tiny random configurations of keras_hub's causal LMs (vocabulary 64, 3 layers, hidden 16, MLP 32)."""


def causal_lm(family: str, seed=0, **overrides):
    """A tiny keras_hub causal LM of :data:`CAUSAL_LMS` (no preprocessor); the caller has checked that
    keras_hub installs."""
    import keras_hub
    keras.utils.set_random_seed(seed)
    task, backbone, arguments = CAUSAL_LMS[family]
    return getattr(keras_hub.models, task)(backbone=getattr(keras_hub.models, backbone)(**{**arguments, **overrides}),
                                           preprocessor=None)
