"""tf_keras and tfmot: the only place either is imported.

tfmot (TensorFlow Model Optimization) wraps only tf_keras (Keras 2) models, and importing
it sets ``TF_USE_LEGACY_KERAS=1`` for the whole process, so TensorFlow's own Keras alias becomes tf_keras.
tf_lottery itself always says ``import keras`` (Keras 3), which is unaffected: Keras 3
tickets keep training and exporting after this package was imported (tested in one process).

* :mod:`~tf_lottery.legacy.convert`: the same architecture in tf_keras, weights moved by
  layer name (bit-exact), and back;
* :mod:`~tf_lottery.legacy.masked`: training under *frozen* masks held by tfmot's
  ``prune_low_magnitude`` wrappers, stripped afterwards;
* the methods built on them: ``filter_masks`` (:mod:`tf_lottery.tickets.filter_masks`) and
  ``imp`` (:mod:`tf_lottery.tickets.imp`).

tf_keras and tfmot are imported inside the functions that use them, so ``import tf_lottery``
never imports either. They are the ``baselines`` extra (``pip install 'tf_lottery[baselines]'``):
without it everything else works, and asking for a baseline fails in one line naming the extra
(:func:`require_baselines`).
"""

import importlib.util

#: The packages of the ``baselines`` extra, by their import names.
BASELINE_PACKAGES = ("tf_keras", "tensorflow_model_optimization")


def baselines_installed() -> bool:
    """Whether tf_keras and tfmot are importable (the ``baselines`` extra).

    Returns:
        True when both are installed (neither is imported).

    Example:
        >>> if not baselines_installed():
        ...     print("pip install 'tf_lottery[baselines]'")
    """
    return all(importlib.util.find_spec(name) is not None for name in BASELINE_PACKAGES)


def require_baselines(what: str) -> None:
    """Refuses ``what`` (a method or function that trains under tfmot) without the ``baselines`` extra.

    Args:
        what: What was asked for, as the user wrote it (``"--method=imp"``).

    Raises:
        ImportError: one line naming the extra and how to install it.

    Example:
        >>> require_baselines("--method=imp")
    """
    if not baselines_installed():
        missing = [name for name in BASELINE_PACKAGES if importlib.util.find_spec(name) is None]
        raise ImportError(f"{what} trains under tfmot, which needs the baselines extra ({', '.join(missing)} "
                          "missing): pip install 'tf_lottery[baselines]' (tfmot 0.8.1 requires absl-py 1.x)")
