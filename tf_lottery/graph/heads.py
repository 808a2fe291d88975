"""What a model's last operation outputs: probabilities (a softmax) or logits.

Training picks its loss from it (``from_logits``) and the criteria need the logits
(SynFlow sums the network's outputs, which is 1 for every softmax output; GraSP's
temperature divides logits). The softmax is found from the graph, not from the layer
list: a ``Dense``/conv layer with ``activation="softmax"`` (keras.applications' default
head), a ``Softmax`` layer, an ``Activation("softmax")`` layer or a ``keras.ops.softmax``
node producing the model's output. :func:`logits_output` makes the model compute its
pre-softmax output for the duration of a ``with`` block.

Example:
    >>> outputs_probabilities(keras.applications.ResNet50(weights=None))
    True
    >>> with logits_output(model):
    ...     logits = model(images)
"""

from __future__ import annotations

import contextlib
import weakref
from typing import Optional

import keras

from tf_lottery.core import keras_internals
from tf_lottery.graph.reader import analyse, carry_tags, output_of

_SWAPPED: "weakref.WeakSet" = weakref.WeakSet()
_VIEWS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def output_names(model: keras.Model) -> list:
    """The names of ``model``'s outputs: the operations producing them.

    Args:
        model: A functional model.

    Returns:
        One name per output, in output order.

    Example:
        >>> output_names(tl.models.cifar_resnet(20))
        ['logits']
    """
    return [keras_internals.producer_name(t) for t in model.outputs]


def scored_output(model: keras.Model, output: Optional[str] = None) -> keras.Model:
    """``model`` with the one output a criterion scores: itself when it has one output, else a
    view ending at ``output`` (sharing every layer and variable, so scoring it scores the model).

    Args:
        model: A functional model.
        output: The name of the output to score (an operation producing one of the outputs);
            needed when the model has several.

    Returns:
        ``model`` itself, or a cached view of it with that one output.

    Raises:
        ValueError: for a model of several outputs without ``output``, or an unknown name,
            listing the outputs.

    Example:
        >>> scored_output(two_heads, "logits").outputs[0].shape
        (None, 10)
    """
    names = output_names(model)
    if output is None:
        if len(names) == 1:
            return model
        raise ValueError(f"{model.name!r} has {len(names)} outputs ({', '.join(names)}); a criterion scores one: "
                         f"pass output=<name>, one of {names}, or labels for every output "
                         "(images, {output name: labels})")
    if output not in names:
        raise ValueError(f"{model.name!r} has no output {output!r}; its outputs: {names}")
    if len(names) == 1:
        return model
    views = _VIEWS.setdefault(model, {})
    if output not in views:
        view = keras.Model(model.inputs, model.outputs[names.index(output)], name=model.name)
        carry_tags(model, view)
        views[output] = view
    return views[output]


def joint_view(model: keras.Model) -> keras.Model:
    """``model`` with one output, every output's class scores side by side (``(batch, sum of classes)``),
    sharing every layer and variable: what a criterion scores against labels for every output.

    Args:
        model: A functional model whose outputs are batches of class scores.

    Returns:
        A cached view with one output: the outputs concatenated on the last axis.

    Raises:
        ValueError: naming an output that is not a batch of class scores (rank 2).

    Example:
        >>> joint_view(two_heads).outputs[0].shape        # 10 + 3 classes
        (None, 13)
    """
    names = output_names(model)
    flat_ones = [n for n, t in zip(names, model.outputs) if len(t.shape) != 2]
    if flat_ones:
        raise ValueError(f"labels for every output need class scores (batch, classes) from each; output "
                         f"{flat_ones[0]!r} of {model.name!r} is not: score one output with output=<name>")
    views = _VIEWS.setdefault(model, {})
    if None not in views:
        view = keras.Model(model.inputs, keras.ops.concatenate(list(model.outputs), axis=-1), name=model.name)
        carry_tags(model, view)
        views[None] = view
    return views[None]


def head_views(model: keras.Model) -> list:
    """One view per output of ``model`` (:func:`scored_output`), in output order.

    Args:
        model: A functional model.

    Returns:
        A list of models, each with one of ``model``'s outputs.

    Example:
        >>> [view.outputs[0].shape for view in head_views(two_heads)]
        [(None, 10), (None, 3)]
    """
    return [scored_output(model, name) for name in output_names(model)]


def is_classifier(model: keras.Model) -> bool:
    """Whether ``model``'s (one) output is a batch of class scores: rank 2, (batch, classes).

    Args:
        model: A Keras model.

    Returns:
        True for one output of rank 2.

    Example:
        >>> is_classifier(tl.models.cifar_resnet(20))
        True
    """
    return len(model.outputs) == 1 and len(model.outputs[0].shape) == 2


def softmax_end(model: keras.Model) -> Optional[object]:
    """The layer or operation whose softmax produces ``model``'s (first) output, or None.

    Args:
        model: A functional model.

    Returns:
        A softmax layer, a layer with a softmax activation or a ``keras.ops.softmax`` operation;
        None for a model that outputs logits.

    Example:
        >>> softmax_end(tl.models.cifar_resnet(20)) is None
        True
        >>> softmax_end(tl.models.cifar_resnet(20, output="softmax")).name
        'logits'
    """
    last = keras_internals.producer(model.outputs[0])
    if isinstance(last, keras.Model):  # a nested model producing the output: look inside it
        return softmax_end(last)
    if isinstance(last, keras.layers.Softmax):
        return last
    if isinstance(last, keras.layers.Layer):
        activation = getattr(last, "activation", None)
        return last if activation is not None and getattr(activation, "__name__", "") == "softmax" else None
    if type(last).__name__ == "Softmax":  # keras.ops.softmax
        return last
    return None


def outputs_probabilities(model: keras.Model) -> bool:
    """Whether ``model`` ends in a softmax (else its outputs are logits).

    Inside :func:`logits_output` the model computes logits, and this returns False.

    Args:
        model: A functional model.

    Returns:
        True when its (first) output is a softmax.

    Example:
        >>> outputs_probabilities(tl.models.cifar_resnet(20, output="softmax"))
        True
    """
    end = softmax_end(model)
    return end is not None and end not in _SWAPPED


def _identity(inputs, *args, **kwargs):
    return inputs


@contextlib.contextmanager
def logits_output(model: keras.Model):
    """Within the block, ``model`` outputs its pre-softmax values (a no-op for a logits model).

    The final softmax is switched off in place (a layer's activation becomes linear, a
    softmax layer or operation passes its input through) and switched back on at exit,
    even after an error. Nothing else changes: same variables, same graph.

    Args:
        model: A functional model.

    Yields:
        ``model``, computing logits until the block ends.

    Example:
        >>> model = tl.models.cifar_resnet(20, output="softmax")
        >>> with logits_output(model):
        ...     outputs_probabilities(model)
        False
    """
    end = softmax_end(model)
    if end is None or end in _SWAPPED:
        yield model
        return
    _SWAPPED.add(end)
    if isinstance(end, keras.layers.Softmax) or not isinstance(end, keras.layers.Layer) or \
            isinstance(end, keras.layers.Activation):
        end.call = _identity
        try:
            yield model
        finally:
            del end.call
            _SWAPPED.discard(end)
    else:
        activation = end.activation
        end.activation = keras.activations.linear
        try:
            yield model
        finally:
            end.activation = activation
            _SWAPPED.discard(end)


def float32_head(model: keras.Model) -> keras.Model:
    """Makes the end of ``model`` compute in float32 under a mixed-precision policy: the layers
    from the output back to (and including) the last layer with weights, so that the logits,
    the probabilities and the loss are float32 (Keras' mixed-precision guide). Variables are
    float32 under any policy, so nothing is copied.

    Args:
        model: A functional model (built under a mixed-precision policy).

    Returns:
        ``model``, changed in place.

    Example:
        >>> keras.mixed_precision.set_global_policy("mixed_bfloat16")
        >>> float32_head(tl.models.cifar_resnet(20)).outputs[0].dtype   # the layer now computes in float32
    """
    graph = analyse(model)
    stack = [graph.outputs[0]]
    seen = set()
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        operation = graph.operations[name]
        if isinstance(operation, keras.layers.InputLayer):
            continue
        if isinstance(operation, keras.layers.Layer):
            operation.dtype_policy = "float32"
            if operation.weights:
                continue
        stack.extend(graph.parents[name])
    return model


def penultimate(model: keras.Model) -> keras.KerasTensor:
    """The classifier's input: the input of the last Dense layer on the way to the output.

    Args:
        model: A functional model.

    Returns:
        The symbolic tensor of its penultimate features.

    Raises:
        ValueError: when the model has no Dense layer.

    Example:
        >>> penultimate(tl.models.cifar_resnet(20)).shape
        (None, 64)
    """
    g = analyse(model)
    dense = [name for name in g.order if isinstance(g.operations[name], keras.layers.Dense)]
    if not dense:
        raise ValueError(f"{model.name} has no Dense layer: its penultimate features cannot be found")
    return output_of(model, g.parents[dense[-1]][0])


def tied_head_backbone(model) -> Optional[keras.Model]:
    """The backbone of a keras_hub ``*CausalLM`` task, whose head is its backbone's token embedding
    called again in reverse (tied to the table, or its own reverse table), or None for any other model.

    The task's graph calls one layer twice, which surgery cannot read as one graph; its blocks are
    its backbone's, and its head (``hidden x vocabulary`` products per position) lies outside every
    block. :func:`tf_lottery.surgery.blocks` and :func:`tf_lottery.graph.cost.flops` read such a
    task through its backbone, and the criteria score it there.

    Args:
        model: Any Keras model.

    Returns:
        The task's backbone, or None.

    Example:
        >>> tied_head_backbone(gpt2_lm) is gpt2_lm.backbone
        True
        >>> tied_head_backbone(gpt2_lm.backbone) is None
        True
    """
    backbone = getattr(model, "backbone", None)
    if not (type(model).__name__.endswith("CausalLM") and type(model).__module__.startswith("keras_hub")
            and isinstance(backbone, keras.Model) and backbone is not model
            and getattr(backbone, "token_embedding", None) is not None):
        return None
    return backbone
