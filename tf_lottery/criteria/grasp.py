"""GraSP: gradient signal preservation, ``-θ ⊙ (H g)`` at initialization.

Wang, Zhang and Grosse, "Picking Winning Tickets Before Training by Preserving Gradient
Flow", ICLR 2020. ``g`` is the gradient of the loss on logits divided by a temperature
(T = 200 in the original), ``H g`` the Hessian-gradient product, computed exactly with
nested gradient tapes: ``H g = ∇_θ (∇_θ L · stop_gradient(g))``.

To first order, removing weights θ_S changes the squared gradient norm by
``-2 θ_S · (H g)_S = 2 Σ_S score``: a *high* score means that removing the weights
*raises* the gradient norm, so GraSP removes the highest scores first
(``prune_first="high"``).

The block score is the **mean** over the block's scored weights by default (conv and dense
kernels, attention projections, embeddings: :func:`tf_lottery.criteria.base.scored_weights`). The sum is the
first-order prediction, but removing a whole block is far beyond first order, and
``scripts/criteria_agreement.py`` measured (untrained ResNet-32, Fashion-MNIST, 10
examples per class, 5 seeds) that the mean ranks blocks in the order of the real change
of the gradient norm when each block is removed (Spearman +0.47 ± 0.09, positive for
every seed) while the sum does not (-0.32 ± 0.29).

Differences to the original code: one batch instead of two halves (identical in
expectation; BN statistics are then those of the whole batch) and the classifier is not
re-initialised with Xavier before scoring.
"""

from __future__ import annotations

import contextlib
import dataclasses
import weakref
from typing import ClassVar, Dict

import numpy as np
import tensorflow as tf

from tf_lottery.core import quiet
from tf_lottery.core.options import real
from tf_lottery.criteria import base
from tf_lottery.criteria.registry import register


def grasp_weight_scores(model, data, temperature: float = 200.0) -> Dict[str, np.ndarray]:
    """Per-weight GraSP score ``-θ ⊙ (H g)`` of every scored weight (:func:`base.scored_weights`).

    Args:
        model: The network (unchanged by this call).
        data: ``(images, labels)``.
        temperature: Logits are divided by it (original: 200).

    Returns:
        ``{layer name: array shaped like its kernel}`` (signed).

    Raises:
        ValueError: for a temperature <= 0.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0; got {temperature}")
    images, labels = base.as_batch(data)
    kernels = base.prunable_kernels(model)
    params = [tf.convert_to_tensor(v.value) for v in model.trainable_variables]
    hessian_gradient = _hessian_gradient(model, tuple(kernels.values()))
    # Unoptimised, the graph's int32 shape arithmetic reaches oneDNN, which says at ERROR level that it
    # falls back to Eigen on CPUs without AVX-512: a notice, not an error, so it is not shown.
    with _unoptimised(), quiet.dropping(ONEDNN_INT32_NOTICE):
        hg = hessian_gradient(images, labels, params, tf.constant(temperature))
    return {name: (-params[i] * h).numpy() for (name, i), h in zip(kernels.items(), hg)}


_COMPILED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
ONEDNN_INT32_NOTICE = "oneDNN supports DT_INT32 only on platforms with AVX-512"


@contextlib.contextmanager
def _unoptimised():
    """Grappler's graph optimisations off while the Hessian-gradient graph runs: on ResNet-56
    they cost 2.3 s when the graph first runs and gain nothing after (1.68 s against 1.64 s a
    call, measured). The option is part of how TensorFlow instantiates a function, so it is
    off at every call, not only the first."""
    before = tf.config.optimizer.get_experimental_options().get("disable_meta_optimizer", False)
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    try:
        yield
    finally:
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": before})


def _hessian_gradient(model, indices: tuple):
    """``(images, labels, params, temperature) -> H g`` of the kernels at ``indices``, compiled once
    per model: on ResNet-56 with 100 CIFAR-sized images (2 CPU cores), 1.75 s a call instead of
    7.1 s eagerly, and 9.9 s instead of 11.8 s for the first call, tracing included.

    One forward and backward pass gives ``g``; ``H g`` is the gradient of ``g · stop_gradient(g)``,
    so the same pass serves both (the original computes ``g`` in a pass of its own; the values
    are the same).
    """
    compiled = _COMPILED.setdefault(model, {})
    if indices not in compiled:
        owner = weakref.ref(model)  # the cache holds the model weakly: the function must not keep it alive

        @tf.function(reduce_retracing=True, autograph=False)
        def hessian_gradient(images, labels, params, temperature):
            network = owner()
            weights = [params[i] for i in indices]
            with tf.GradientTape() as outer:
                outer.watch(params)
                with tf.GradientTape() as inner:
                    inner.watch(params)
                    loss = base.cross_entropy(network, base.forward(network, images, params), labels, temperature)
                grads = base.dense_gradients(inner.gradient(loss, weights), weights)
                z = tf.add_n([tf.reduce_sum(g * tf.stop_gradient(g)) for g in grads])
            return base.dense_gradients(outer.gradient(z, weights), weights)

        compiled[indices] = hessian_gradient
    return compiled[indices]


def grasp_filters(model, groups, data, aggregation: str = "mean", temperature: float = 200.0) -> Dict[str, np.ndarray]:
    """mean -w * Hg over the filter's kernel; the highest go first"""
    return base.per_filter(grasp_weight_scores(model, data, temperature), groups, aggregation)


@dataclasses.dataclass(frozen=True)
class GraspSettings:
    """The option of ``grasp`` a run chooses (``--grasp_temperature``)."""

    grasp_temperature: float = real(200.0, "grasp: the temperature T that divides the logits before the loss "
                                    "whose Hessian-gradient product is scored (the original code: 200; 1 scores "
                                    "the plain cross-entropy).", lower_bound=0)
    ARGUMENTS: ClassVar[dict] = {"grasp_temperature": "temperature"}
    IDENTITY_DEFAULTS: ClassVar[dict] = {"grasp_temperature": 200.0}  # runs before the flag existed used 200

    @classmethod
    def check_values(cls, values: dict) -> None:
        """Refuses a temperature of 0 (the logits would be divided by it).

        Raises:
            ValueError: naming the flag and its value.
        """
        if not values["grasp_temperature"] > 0:
            raise ValueError(f"--grasp_temperature must be > 0; got {values['grasp_temperature']!r}")


@register("grasp", prune_first="high", needs="labelled_batch", when="init", settings=GraspSettings,
          summary="-theta * (H g), T=200 (Wang et al. 2020)", filters=grasp_filters)
def grasp(model, data, aggregation: str = "mean", temperature: float = 200.0) -> Dict[str, float]:
    """Block scores from GraSP (see module docstring); the highest go first."""
    return base.aggregate(model, grasp_weight_scores(model, data, temperature), aggregation)
