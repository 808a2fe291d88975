"""Learning-rate schedules: the linear warm-up, serializable in Keras 3 and in tf_keras.

``LinearWarmup`` is registered (``tf_lottery>LinearWarmup``) on import, so a model compiled
with a warm-up clones, and saves as ``.keras`` and loads again in a fresh process.

Example:
    >>> schedule = warmup_schedule(0.1, warmup_steps=4, start=0.0)
    >>> round(float(schedule(1)), 3)
    0.05
"""

from __future__ import annotations

import keras


def warmup_factor(step, warmup_steps: int, start: float):
    """The linear warm-up's factor on the learning rate after ``step`` optimizer steps.

    The factor rises linearly from ``start`` (the step before the first) to 1 after
    ``warmup_steps`` steps (Goyal et al. 2017, "gradual warm-up"), so the first step already
    moves at ``start + (1 - start) / warmup_steps``; it is 1 from then on. Works on Python
    numbers and on tensors (the step of a Keras or tf_keras optimizer).

    Args:
        step: Optimizer steps taken (a number or a tensor).
        warmup_steps: Steps of the warm-up (0 or less: none).
        start: The starting factor in [0, 1).

    Returns:
        The factor (a number for a number, a tensor for a tensor).

    Example:
        >>> [round(warmup_factor(s, 4, 0.0), 2) for s in range(6)]
        [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    """
    if warmup_steps <= 0:
        return 1.0
    ramp = start + (1.0 - start) * (step + 1) / warmup_steps
    if isinstance(step, (int, float)):
        return min(1.0, ramp)
    import tensorflow as tf

    return tf.minimum(tf.cast(1.0, ramp.dtype), ramp)


_WARMUP_CLASSES = {}


def warmup_class(library=None):
    """The linear warm-up schedule class of ``library`` (``keras``, the default, or ``tf_keras``).

    A ``LearningRateSchedule`` of that library whose rate at a step is ``after(step)`` times
    :func:`warmup_factor`. It is registered with the library's serialization (package
    ``tf_lottery``) and its config holds the whole schedule, ``after`` included, so a model
    compiled with it can be cloned (``clone_model`` recompiles from the compile config), saved
    as ``.keras`` and loaded again once :mod:`tf_lottery.training` is imported.

    Args:
        library: ``keras`` (default) or ``tf_keras``.

    Returns:
        The class (made once per library), constructed as ``(after, warmup_steps, start=0.0)``.

    Example:
        >>> Warmup = warmup_class()
        >>> schedule = Warmup(after=0.1, warmup_steps=4)
        >>> Warmup.from_config(schedule.get_config()).get_config() == schedule.get_config()
        True
    """
    library = library or keras
    if library.__name__ not in _WARMUP_CLASSES:
        _WARMUP_CLASSES[library.__name__] = _define_warmup_class(library)
    return _WARMUP_CLASSES[library.__name__]


def _define_warmup_class(library):
    import tensorflow as tf

    schedules = library.optimizers.schedules

    @library.saving.register_keras_serializable(package="tf_lottery")
    class LinearWarmup(schedules.LearningRateSchedule):
        """A learning rate ``after(step)`` (or the number ``after``) times the linear warm-up's factor.

        Args:
            after: The learning rate without warm-up: a number or a ``LearningRateSchedule``.
            warmup_steps: Optimizer steps of the warm-up.
            start: The warm-up's starting factor in [0, 1).

        Example:
            >>> schedule = LinearWarmup(after=0.1, warmup_steps=4)
            >>> [round(float(schedule(s)), 3) for s in range(5)]
            [0.025, 0.05, 0.075, 0.1, 0.1]
        """

        def __init__(self, after, warmup_steps: int, start: float = 0.0):
            self.after = after
            self.warmup_steps = int(warmup_steps)
            self.start = float(start)

        def __call__(self, step):
            step = tf.cast(step, "float32")
            rate = self.after(step) if callable(self.after) else tf.constant(self.after, "float32")
            return tf.cast(rate, "float32") * warmup_factor(step, self.warmup_steps, self.start)

        def get_config(self):
            """The whole schedule, ``after`` serialized when it is a schedule."""
            after = schedules.serialize(self.after) if callable(self.after) else float(self.after)
            return {"after": after, "warmup_steps": self.warmup_steps, "start": self.start}

        @classmethod
        def from_config(cls, config):
            """The schedule :meth:`get_config` describes."""
            config = dict(config)
            if isinstance(config["after"], dict):
                config["after"] = schedules.deserialize(config["after"])
            return cls(**config)

    return LinearWarmup


#: Keras 3's warm-up schedule, registered on import so that ``.keras`` files load in a fresh process.
LinearWarmup = warmup_class(keras)


def warmup_schedule(after, warmup_steps: int, start: float, library=None):
    """``after`` (a number or a schedule of ``library``) under a linear warm-up of
    ``warmup_steps`` steps from ``start`` (see :func:`warmup_class`, :func:`warmup_factor`).

    Args:
        after: The learning rate without warm-up: a number or a ``LearningRateSchedule``.
        warmup_steps: Optimizer steps of the warm-up.
        start: The warm-up's starting factor in [0, 1).
        library: ``keras`` (default) or ``tf_keras``.

    Returns:
        A :func:`warmup_class` schedule of ``library``.

    Example:
        >>> schedule = warmup_schedule(0.1, warmup_steps=4, start=0.0)
        >>> round(float(schedule(1)), 3)
        0.05
    """
    return warmup_class(library)(after, warmup_steps, start)
