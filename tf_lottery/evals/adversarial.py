"""L-infinity adversarial attacks on a trained model: FGSM and PGD (beyond the paper).

The paper's Table 5 measures robustness to natural corruptions only; its authors' earlier
study of pruning and robustness (Jordao & Pedrini, ICCV Workshops 2021) adds FGSM at
8/255. Both attacks here are the standard white-box, untargeted L-infinity ones:

* FGSM (Goodfellow et al., ICLR 2015): one step of size epsilon along the sign of the
  loss gradient;
* PGD (Madry et al., ICLR 2018): ``steps`` signed-gradient steps of ``step_size``, each
  projected back into the epsilon ball and the valid pixel range, from a uniform random
  start in the ball (``random_start``); the step size defaults to 2.5 epsilon / steps,
  Madry et al.'s choice, so the iterate can cross the ball.

The threat model is in *pixels*: epsilon is a fraction of the [0, 1] pixel range (8/255
means eight grey levels of a uint8 image). The models here read ``pixels - mean`` (the
per-pixel training mean, :mod:`tf_lottery.data.pipeline`); a shift changes no distance,
so an epsilon ball in pixels is the same ball in the model's input, and the valid range
is ``[0 - mean, 1 - mean]``, passed as ``bounds``. For a model whose preprocessing also
divides by a standard deviation, pass epsilon / std and the matching bounds.
"""

from __future__ import annotations

import weakref
from typing import Optional, Tuple, Union

import keras
import numpy as np
import tensorflow as tf

from tf_lottery.graph.heads import outputs_probabilities

#: The attacks :func:`attack` runs: ``fgsm`` (one step) and ``pgd`` (projected gradient descent).
ATTACKS = ("fgsm", "pgd")

Bounds = Tuple[Union[float, np.ndarray], Union[float, np.ndarray]]


def _loss_gradient(model: keras.Model, images: tf.Tensor, labels: tf.Tensor, from_logits: bool) -> tf.Tensor:
    with tf.GradientTape() as tape:
        tape.watch(images)
        outputs = model(images, training=False)
        loss = keras.losses.sparse_categorical_crossentropy(labels, outputs, from_logits=from_logits)
    return tape.gradient(loss, images)


def attack(model: keras.Model, images, labels, method: str, epsilon: float, *, steps: int = 10,
           step_size: Optional[float] = None, random_start: bool = True, bounds: Bounds = (0.0, 1.0),
           seed: int = 0, batch_size: int = 250) -> np.ndarray:
    """Adversarial images of ``images`` for ``model`` within an L-infinity ball.

    Args:
        model: A trained classifier (logits or softmax outputs; detected from the graph).
        images: ``(N, H, W, C)`` float images in the model's input scale.
        labels: ``(N,)`` integer labels.
        method: "fgsm" or "pgd".
        epsilon: The ball's radius in the input scale (8/255 for pixels in [0, 1]).
        steps: PGD iterations.
        step_size: PGD step (default 2.5 * epsilon / steps).
        random_start: PGD starts from a uniform random point of the ball.
        bounds: ``(low, high)`` valid input values, scalars or arrays broadcastable to one
            image (for mean-subtracted inputs: ``(-mean, 1 - mean)``).
        seed: Seed of PGD's random start.
        batch_size: Images per gradient computation.

    Returns:
        The adversarial images (float32, the input's shape); ``epsilon = 0`` returns them unchanged.

    Raises:
        ValueError: for an unknown method, a negative epsilon, or fewer than one step.

    Example:
        >>> adversarial = tl.evals.attack(model, x_test, y_test, "pgd", epsilon=8 / 255, bounds=(0, 1))
        >>> model.evaluate(adversarial, y_test)
    """
    if method not in ATTACKS:
        raise ValueError(f"unknown attack {method!r}; valid names: {', '.join(ATTACKS)}")
    if not np.isfinite(epsilon) or epsilon < 0:
        raise ValueError(f"epsilon must be a number >= 0; got {epsilon!r}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1; got {steps!r}")
    images = np.asarray(images, dtype="float32")
    labels = np.asarray(labels).astype("int64")
    if epsilon == 0:
        return images.copy()
    from_logits = not outputs_probabilities(model)  # cross-entropy from logits unless the head is a softmax
    low = tf.constant(np.broadcast_to(np.asarray(bounds[0], "float32"), images.shape[1:]))
    high = tf.constant(np.broadcast_to(np.asarray(bounds[1], "float32"), images.shape[1:]))
    size = step_size if step_size is not None else 2.5 * epsilon / steps
    generator = tf.random.Generator.from_seed(seed)
    out = []
    for start in range(0, len(images), batch_size):
        clean = tf.constant(images[start:start + batch_size])
        truth = tf.constant(labels[start:start + batch_size])
        floor, ceiling = tf.maximum(clean - epsilon, low), tf.minimum(clean + epsilon, high)
        if method == "fgsm":
            adversarial = clean + epsilon * tf.sign(_loss_gradient(model, clean, truth, from_logits))
        else:
            adversarial = clean
            if random_start:
                adversarial = clean + generator.uniform(tf.shape(clean), -epsilon, epsilon)
            adversarial = tf.clip_by_value(adversarial, floor, ceiling)
            for _ in range(steps):
                gradient = _loss_gradient(model, adversarial, truth, from_logits)
                adversarial = tf.clip_by_value(adversarial + size * tf.sign(gradient), floor, ceiling)
        out.append(tf.clip_by_value(adversarial, floor, ceiling).numpy())
    return np.concatenate(out)


_FORWARD: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _forward(model: keras.Model):
    """One traced inference function per model (``predict`` re-traces and sets up a dataset per call,
    which dominates when a robustness evaluation calls it a hundred times)."""
    if model not in _FORWARD:
        signature = [tf.TensorSpec([None, *model.input_shape[1:]], tf.float32)]
        _FORWARD[model] = tf.function(lambda images: model(images, training=False), input_signature=signature)
    return _FORWARD[model]


def accuracy(model: keras.Model, images: np.ndarray, labels: np.ndarray, batch_size: int = 250) -> float:
    """Top-1 accuracy of ``model`` on arrays (no compile needed).

    Example:
        >>> accuracy(model, x_test, y_test)
        0.9132
    """
    forward, labels = _forward(model), np.asarray(labels)
    correct = 0
    for start in range(0, len(labels), batch_size):
        outputs = forward(tf.constant(images[start:start + batch_size], tf.float32)).numpy()
        correct += int(np.sum(np.argmax(outputs, axis=-1) == labels[start:start + batch_size]))
    return correct / max(1, len(labels))
