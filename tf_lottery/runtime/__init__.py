"""Layer 3, where and how training runs: the tf.distribute strategy and precision
(:mod:`~tf_lottery.runtime.distribute`, the entry point over :mod:`~tf_lottery.runtime.strategies`,
:mod:`~tf_lottery.runtime.precision`, :mod:`~tf_lottery.runtime.execution` and :mod:`~tf_lottery.runtime.workers`),
the runtime patches of Keras' trainer and batch norm (:mod:`~tf_lottery.runtime.keras_patches`), and energy and
CO2 tracking (:mod:`~tf_lottery.runtime.carbon`)."""

from tf_lottery.runtime import (  # noqa: F401
    carbon, distribute, execution, keras_patches, precision, strategies, workers,
)

__all__ = ["carbon", "distribute", "execution", "keras_patches", "precision", "strategies", "workers"]
