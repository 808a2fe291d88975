"""Model functions as a user writes them for ``--model=tests.user_models:<function>``:
``(input_shape, num_classes, **model_args) -> keras.Model``, layers left to Keras' own names."""

import keras

from tests import zoo


def small_resnet(input_shape, num_classes, width=8, blocks=3):
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(width, 3, padding="same")(inputs)
    for _ in range(blocks):
        y = keras.layers.Conv2D(width, 3, padding="same", activation="relu")(x)
        y = keras.layers.Conv2D(width, 3, padding="same")(y)
        x = keras.layers.Add()([x, y])
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(num_classes)(x))


def not_a_model(input_shape, num_classes):
    return "a string"


def gated_resnet(input_shape, num_classes, blocks=3):
    """Residual layers whose sum the trace does not see (``--residual_layers`` declares them)."""
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(8, 3, padding="same", name="stem")(inputs)
    for i in range(1, blocks + 1):
        x = zoo.GatedBlock(8, name=f"res{i}")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, keras.layers.Dense(num_classes, name="logits")(x))


def two_heads(input_shape, num_classes):
    """A classifier with an auxiliary head: two outputs, which the command line refuses."""
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(8, 3, padding="same")(inputs)
    for _ in range(2):
        x = x + keras.layers.Conv2D(8, 3, padding="same")(x)
    pooled = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, [keras.layers.Dense(num_classes, name="logits")(pooled),
                                keras.layers.Dense(2, name="aux")(pooled)])


def per_token_mlp(input_shape, num_classes):
    """Builds on token sequences but takes one unnamed input: not a language model of the command line."""
    inputs = keras.Input(input_shape)
    return keras.Model(inputs, keras.layers.Dense(num_classes)(keras.layers.Dense(8)(inputs)))


def raises_memory_error(input_shape, num_classes):
    """A builder that runs out of memory: named in one line, never a traceback."""
    raise MemoryError("a 10 GB embedding")


def exits(input_shape, num_classes):
    """A builder written as a script: it never returns, and nothing may pass as done."""
    import sys
    sys.exit(0)


def llama3(input_shape, num_classes, layers=4, hidden=16):
    """A tiny keras_hub Llama 3 causal LM, as the docs' my_lms.py writes it (--task=causal_lm)."""
    import keras_hub
    backbone = keras_hub.models.Llama3Backbone(vocabulary_size=num_classes, num_layers=layers, hidden_dim=hidden,
                                               intermediate_dim=2 * hidden, num_query_heads=2, num_key_value_heads=1)
    return keras_hub.models.Llama3CausalLM(backbone=backbone, preprocessor=None)
