"""SynFlow: synaptic flow, data-free, ``θ ⊙ ∂R/∂θ`` with ``R = Σ f(1; |θ|)``.

Tanaka, Kunin, Yamins and Ganguli, "Pruning neural networks without any data by
iteratively conserving synaptic flow", NeurIPS 2020. Every weight is replaced by its
absolute value, an all-ones image goes through the network (BatchNorm in inference mode,
as in the original), and R is the sum of the outputs. The product of many positive
layers overflows float32 in deep ResNets, so the pass runs in float64 (the original does
the same). The block score is the mean over its scored weights (or the sum). Low = unimportant.

R is taken over the logits: on a softmax head every output row sums to 1 and every score
would be 0, so the criterion runs with the softmax switched off (see
:func:`tf_lottery.graph.heads.logits_output`), and refuses a model whose scores are all 0.

SynFlow's R is the l1 path norm of the *linearised* network. In a ReLU network at
initialization, with positive weights and a positive input, every ReLU is already the
identity, so the original keeps its ReLUs (and so does this module). Other families are
linearised explicitly, so that they get the same path norm instead of a meaningless number
(ReLU6 saturates at 6, swish and GELU bend below 0): every other rectifier (ReLU6, swish,
GELU, ELU ...; as a layer or as a layer's own activation) becomes the identity, gates (the
sigmoid of a squeeze-excite block) stay, and a LayerNormalization or GroupNormalization
(ConvNeXt), which has no inference-mode affine form, becomes its affine part
``|gamma| x + |beta|``. Built-in input
preprocessing (``Rescaling``, ``Normalization``: keras.applications' ImageNet mean, which
would make the all-ones image negative) is skipped, so the ones reach the first layer as
in the original. A ReLU ResNet's scores are unchanged by all this.

**Language models** (a model of ``token_ids`` and ``padding_mask``: a keras_hub backbone, which the
criteria registry hands a ``*CausalLM`` task's scoring to). Token ids have no all-ones value, so
this module takes the all-ones input of the embedding's linear map: a one-hot input of ones in
every vocabulary entry, whose embedding is the sum of the table's absolute rows at every
position (the position embedding is added as usual, its weights made absolute too); every
position is real. The sequence holds ``sequence_length`` tokens (the criterion's option; default
:data:`SEQUENCE_LENGTH`, or the model's ``max_sequence_length`` when shorter, or its fixed input
length), at least 2: over one token the causal softmax attends to one key with weight 1 and every
query and key kernel would score exactly 0, which is refused rather than ranked. The network is the model rebuilt from its config in float64 with absolute
weights, linearised inside its subclassed layers as above: each ``LayerNormalization`` becomes
``|gamma| x + |beta|`` and each rectifier activation of a dense layer (GPT-2's GELU) the
identity; the attention softmax stays, a gate. R is the sum of the backbone's output (the tied
head, the reversed embedding, lies outside every block). This is tf_lottery's extension: Tanaka
et al. define SynFlow for convolutional and fully connected networks only.

A layer that creates sublayers or tensors of its own dtype in ``__init__`` (keras.io's ViT
patch encoder) keeps computing in float32 inside the float64 pass (Keras casts at its
boundary); a layer that cannot take the float64 tensors at all is refused by name. The
scores SynFlow reads are the matrices of :func:`tf_lottery.criteria.base.scored_weights`:
conv and dense kernels, attention projections, embeddings.
"""

from __future__ import annotations

import dataclasses
import inspect

from typing import ClassVar, Dict, Optional

import keras
import numpy as np
import tensorflow as tf

from tf_lottery.core import keras_internals
from tf_lottery.graph import reader as graph
from tf_lottery.graph.rewire import RewireError, rewire
from tf_lottery.core.options import integer
from tf_lottery.criteria import base
from tf_lottery.criteria.registry import register
from tf_lottery.graph.heads import softmax_end

_RECTIFIERS = ("relu6", "leaky_relu", "elu", "selu", "gelu", "silu", "swish", "hard_silu", "hard_swish", "mish",
               "celu")
"""Activations other than the plain ReLU that are (close to) the identity on positive inputs:
linearised to it. Gates such as the sigmoid of a squeeze-excite block stay (linearised they
would square the flow); plain ReLUs stay, as in the original."""


def _rectifier(layer) -> bool:
    if isinstance(layer, keras.layers.ReLU):  # ReLU6 (MobileNetV2) and leaky variants, not the plain ReLU
        config = layer.get_config()
        return config.get("max_value") is not None or bool(config.get("negative_slope"))
    if isinstance(layer, (keras.layers.LeakyReLU, keras.layers.ELU, keras.layers.PReLU)):
        return True
    return isinstance(layer, keras.layers.Activation) and layer.get_config().get("activation") in _RECTIFIERS


def _float64_layer(layer):
    """``layer`` rebuilt in float64 and linearised (see the module docstring).

    A Lambda keeps its function; a weightless layer that cannot be rebuilt from its config
    is reused (it computes in its own dtype).
    """
    if _rectifier(layer) or isinstance(layer, (keras.layers.Rescaling, keras.layers.Normalization)):
        return keras.layers.Identity(dtype="float64", name=layer.name)
    if isinstance(layer, (keras.layers.LayerNormalization, keras.layers.GroupNormalization)):
        scale = np.abs(layer.gamma.numpy()).astype("float64") if layer.scale else 1.0
        shift = np.abs(layer.beta.numpy()).astype("float64") if layer.center else 0.0
        return keras.layers.Lambda(lambda x: x * scale + shift, dtype="float64", name=layer.name)
    if isinstance(layer, keras.layers.Lambda):
        return keras.layers.Lambda(layer.function, dtype="float64", name=layer.name)
    config = layer.get_config()
    config["dtype"] = "float64"
    if config.get("activation") in _RECTIFIERS:
        config["activation"] = "linear"
    try:
        twin = _from_config(layer.__class__, config)
        if not layer.__class__.__module__.startswith("keras."):
            _runs_in_float64(twin, layer)  # a user's layer may make float32 sublayers of its own
        return twin
    except Exception:
        if not layer.weights:
            return layer
        if layer.__class__.__module__.startswith("keras."):
            raise
        # A user's residual layer whose sublayers keep float32 (created without dtype=self.dtype_policy):
        # it computes in its own dtype, and Keras casts at its boundary, as for a ViT's patch encoder. Its
        # weights are absolute and its input all positive, so its ReLUs are already the identity.
        return _from_config(layer.__class__, layer.get_config())


def _from_config(cls, config: dict):
    """``cls.from_config(config)``; for a class whose ``get_config`` writes keys its constructor refuses
    (keras_hub 0.32's ``ViTPatchingAndEmbedding`` writes ``num_patches`` and ``num_positions``), again
    with only the keys the constructor and ``keras.layers.Layer`` take."""
    try:
        return cls.from_config(config)
    except TypeError:
        taken = set(inspect.signature(cls.__init__).parameters) | {"name", "trainable", "dtype"}
        return cls.from_config({key: value for key, value in config.items() if key in taken})


def _runs_in_float64(twin, layer) -> None:
    """Raises when ``twin`` (``layer`` rebuilt in float64) cannot compute on a float64 input of
    ``layer``'s input shape (traced symbolically: no node is added to either layer)."""
    shape = getattr(layer, "input", None)
    if shape is None or isinstance(shape, (list, tuple, dict)):
        return
    twin.compute_output_spec(keras.KerasTensor(layer.input.shape, dtype="float64"))


def _float64_twin(model: keras.Model) -> keras.Model:
    """``model`` rebuilt in float64 without a final softmax layer or operation (weights not copied)."""
    end = softmax_end(model)
    skip = {}
    own_activation = end is not None and hasattr(end, "activation") and not isinstance(end, keras.layers.Activation)
    if end is not None and not own_activation:  # a softmax layer or operation: left out of the twin
        g = graph.analyse(model)  # the softmax produces the output: its call (a shared layer's too) is the output's
        skip = {g.outputs[0]: g.parents[g.outputs[0]][0]}
    return rewire(model, skip, clone=_float64_layer, input_dtype="float64", clone_weightless=True)


TOKEN_INPUTS = ("padding_mask", "token_ids")


def _input_names(model) -> list:
    return sorted(keras_internals.producer_name(t) for t in model.inputs)


def _linear_rectifier(activation) -> bool:
    name = getattr(activation, "__name__", "")
    return any(name == r or name.startswith(f"{r}_") for r in _RECTIFIERS)


def _affine(layer):
    """A ``LayerNormalization``'s inference-free affine part, ``gamma x + beta`` (weights already absolute)."""
    def call(inputs, *args, **kwargs):
        outputs = inputs * layer.gamma if layer.scale else inputs
        return outputs + layer.beta if layer.center else outputs
    return call


def _every_token(embedding):
    """The token embedding's forward call on the all-ones one-hot input: the sum of its (absolute)
    rows at every position; its reversed call (a tied head) is kept."""
    forward = embedding.call

    def call(inputs, reverse=False):
        if reverse:
            return forward(inputs, reverse=True)
        total = tf.reduce_sum(embedding.embeddings, axis=0)
        return tf.broadcast_to(total, tf.concat([tf.shape(inputs), tf.shape(total)], axis=0))
    return call


SEQUENCE_LENGTH = 128
"""The tokens SynFlow scores a language model on by default (fewer when the model takes fewer)."""


def token_length(model, sequence_length: Optional[int] = None) -> int:
    """The number of tokens SynFlow scores the language model ``model`` on: ``sequence_length``, else
    its fixed input length, else :data:`SEQUENCE_LENGTH` or its ``max_sequence_length`` when shorter.

    The all-ones sequence must hold at least 2 tokens: over 1, the causal softmax attends to one key
    with weight 1 whatever the query and key, and every query and key kernel would score exactly 0.
    The cost grows with the square of the length (attention) in float64, so the default does not
    follow a long context (Phi-3's 4,096 positions).

    Args:
        model: A model of ``token_ids`` and ``padding_mask`` (a keras_hub backbone).
        sequence_length: The tokens to score on (>= 2), or None for the default.

    Raises:
        ValueError: for a length below 2, longer than the model's ``max_sequence_length``, or other
            than its fixed input length.

    Example:
        >>> token_length(llama_backbone), token_length(gpt2_backbone_of_16_positions)
        (128, 16)
    """
    fixed = model.inputs[0].shape[1]
    longest = getattr(model, "max_sequence_length", None)
    if sequence_length is None:
        length = int(fixed) if fixed else min(SEQUENCE_LENGTH, int(longest or SEQUENCE_LENGTH))
        if length < 2:
            raise ValueError(f"SynFlow scores a language model on at least 2 tokens, and {model.name!r} takes "
                             f"{length}: over 1 token attention's query and key kernels score exactly 0")
        return length
    if isinstance(sequence_length, bool) or not isinstance(sequence_length, int) or sequence_length < 2:
        raise ValueError(f"sequence_length must be an integer >= 2 (over 1 token attention's query and key kernels "
                         f"score exactly 0); got {sequence_length!r}")
    if fixed and sequence_length != fixed:
        raise ValueError(f"{model.name!r} takes sequences of {fixed} tokens only; got sequence_length={sequence_length}")
    if longest and sequence_length > longest:
        raise ValueError(f"{model.name!r} takes at most {longest} tokens (max_sequence_length); got "
                         f"sequence_length={sequence_length}")
    return sequence_length


def token_twin(model, sequence_length: Optional[int] = None):
    """``(twin, inputs)``: the float64, absolute, linearised twin of a language model and its all-ones input
    of :func:`token_length` tokens, whose output sums to SynFlow's R (the module docstring's language models).

    Raises:
        ValueError: for a model that cannot be rebuilt from its config, has no token embedding, or cannot
            take the length (:func:`token_length`).
    """
    length = token_length(model, sequence_length)
    config = model.get_config()
    config["dtype"] = "float64"
    try:
        twin = model.__class__.from_config(config)
    except Exception as error:  # a user's model without a config to rebuild it from
        raise ValueError(f"SynFlow rebuilds a language model from its config in float64, and {model.name!r} "
                         f"({type(model).__name__}) cannot be: {error}; score it with snip, grasp or magnitude") \
            from error
    twin.set_weights([np.abs(w).astype("float64") for w in model.get_weights()])
    embedding = getattr(twin, "token_embedding", None)
    if embedding is None or not hasattr(embedding, "embeddings"):
        raise ValueError(f"SynFlow of a language model feeds every token to its token embedding; "
                         f"{model.name!r} has no token_embedding attribute (a keras_hub backbone has one)")
    embedding.call = _every_token(embedding)
    for layer in keras_internals.child_layers(twin, recursive=True):
        if isinstance(layer, keras.layers.LayerNormalization):
            layer.call = _affine(layer)
        elif _linear_rectifier(getattr(layer, "activation", None)):
            layer.activation = keras.activations.linear
    inputs = {"token_ids": tf.zeros((1, length), tf.int32), "padding_mask": tf.ones((1, length), tf.int32)}
    return twin, inputs


def _token_weight_scores(model, sequence_length: Optional[int] = None) -> Dict[str, np.ndarray]:
    """SynFlow of a model of token ids and a padding mask (the module docstring's language models).

    Raises:
        ValueError: see :func:`token_twin`; also when a block's scored weight that is not 0 scores exactly 0
            everywhere (R does not depend on it: the criterion would rank its block silently wrong).
    """
    twin, inputs = token_twin(model, sequence_length)
    kernels = base.prunable_kernels(twin)
    variables = twin.trainable_variables
    with tf.GradientTape() as tape:
        r = tf.reduce_sum(twin(inputs, training=False))
    grads = base.dense_gradients(tape.gradient(r, variables), variables)
    scores = {name: (variables[i].numpy() * grads[i].numpy()) for name, i in kernels.items()}
    in_blocks = {key for keys in base.block_weights(model).values() for key in keys}
    dead = [name for name, i in kernels.items()
            if name in in_blocks and np.any(variables[i].numpy()) and not np.any(scores[name])]
    if dead:
        raise ValueError(f"SynFlow cannot score {model.name!r} on {inputs['token_ids'].shape[1]} tokens: R does not "
                         f"depend on {', '.join(dead[:4])}{' ...' if len(dead) > 4 else ''} (every score exactly 0); "
                         "score it on a longer sequence (sequence_length=) or with snip, grasp or magnitude")
    return scores


def synflow_weight_scores(model, data=None, sequence_length: Optional[int] = None) -> Dict[str, np.ndarray]:
    """Per-weight SynFlow score of every scored weight (``data`` is ignored).

    Args:
        model: A functional model of one input, or a language model (``token_ids`` and ``padding_mask``).
        data: Ignored (SynFlow reads no data).
        sequence_length: A language model's all-ones sequence length (:func:`token_length`).

    Returns:
        ``{layer name: array shaped like its kernel}`` (non-negative).

    Raises:
        ValueError: for a model SynFlow cannot run (see the module docstring), or a ``sequence_length``
            for a model that does not take tokens.
    """
    if _input_names(model) == sorted(TOKEN_INPUTS):
        return _token_weight_scores(model, sequence_length)
    if sequence_length is not None:
        raise ValueError(f"sequence_length is SynFlow's option for a language model (inputs {list(TOKEN_INPUTS)}); "
                         f"{model.name!r} takes {_input_names(model)}")
    if len(model.inputs) != 1:
        names = [keras_internals.producer_name(t) for t in model.inputs]
        raise ValueError(f"SynFlow feeds {model.name!r} an all-ones image (a language model: every token), and a "
                         f"model of the inputs {names} has neither; score it with snip, grasp or magnitude")
    try:
        twin = _float64_twin(model)
    except RewireError as error:
        raise ValueError(f"SynFlow runs {model.name!r} in float64 and layer {error.operation!r} does not: "
                         f"{str(error).rstrip('.')}. "
                         "Make the layer compute in its own dtype (create its sublayers and tensors with "
                         "dtype=self.dtype_policy), or score with another criterion") from error
    for layer in graph.leaf_layers(twin):
        source = graph.operation(model, layer.name).get_weights()
        if source and layer.weights:  # a linearised normalisation holds its values itself
            layer.set_weights([np.abs(w).astype("float64") for w in source])
    kernels = base.prunable_kernels(twin)
    params = [tf.convert_to_tensor(v.value) for v in twin.trainable_variables]
    ones = tf.ones((1, *twin.inputs[0].shape[1:]), dtype="float64")
    non_trainable = [v.value for v in twin.non_trainable_variables]
    with tf.GradientTape() as tape:
        tape.watch(params)
        outputs, _ = twin.stateless_call(params, non_trainable, ones, training=False)
        r = tf.reduce_sum(outputs)
    grads = base.dense_gradients(tape.gradient(r, params), params)
    # The twin's kernels in the model's names: a user's layer rebuilt from its config names its sublayers
    # anew (res0/conv2d_7/kernel for res0/conv2d/kernel), in the same order.
    names = dict(zip(kernels, base.prunable_kernels(model)))
    scores = {names.get(name, name): (params[i] * grads[i]).numpy() for name, i in kernels.items()}
    if not any(np.any(s) for s in scores.values()):
        raise ValueError(
            f"SynFlow scores of {model.name!r} are all 0: R = sum of the outputs does not depend on the weights. "
            "Does the model end in a normalisation (a softmax after a reshape, say) that tf_lottery did not find? "
            "Give it a model whose output is the logits")
    return scores


@dataclasses.dataclass(frozen=True)
class SynflowSettings:
    """The option of ``synflow`` a run chooses (``--synflow_sequence_length``)."""

    synflow_sequence_length: Optional[int] = integer(
        None, "synflow on a language model: tokens of the all-ones sequence it scores (default 128, or the model's "
        "max_sequence_length when shorter; at least 2).", lower_bound=2)
    ARGUMENTS: ClassVar[dict] = {"synflow_sequence_length": "sequence_length"}
    IDENTITY_DEFAULTS: ClassVar[dict] = {"synflow_sequence_length": None}  # earlier runs keep their folders


@register("synflow", prune_first="low", needs="nothing", when="init", settings=SynflowSettings,
          summary="theta * dR/dtheta, all-ones input, |theta| (Tanaka et al. 2020)")
def synflow(model, data=None, aggregation: str = "mean", sequence_length: Optional[int] = None) -> Dict[str, float]:
    """Block scores from SynFlow (see module docstring); ``sequence_length``: a language model's tokens
    (:func:`token_length`: default 128, or the model's ``max_sequence_length`` when shorter)."""
    return base.aggregate(model, synflow_weight_scores(model, sequence_length=sequence_length), aggregation)
