"""Layer 3, where and how training runs: the tf.distribute strategy and precision
(:mod:`~tf_lottery.runtime.distribute`), the one module that patches Keras internals
(:mod:`~tf_lottery.runtime.keras_patches`), and energy and CO2 tracking (:mod:`~tf_lottery.runtime.carbon`)."""

from tf_lottery.runtime import carbon, distribute, keras_patches  # noqa: F401

__all__ = ["carbon", "distribute", "keras_patches"]
