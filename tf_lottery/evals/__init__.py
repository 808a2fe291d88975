"""What is measured on a trained model: evaluations in one registry (:mod:`tf_lottery.evals.registry`).

``clean``, ``cost`` and ``latency`` (:mod:`tf_lottery.evals.standard`); ``corruptions``,
``shift_sets``, ``adversarial`` and ``cka`` (:mod:`tf_lottery.evals.robustness`). Public
functions for users' own arrays sit beside them: :func:`corrupt`, :func:`attack`,
:func:`linear_cka`.

Example:
    >>> tl.evals.get("cost")(model, data, config.evaluation)["flops"]
    31021952
"""

from tf_lottery.evals import language, robustness, standard  # noqa: F401  (importing registers the evaluations)
from tf_lottery.evals.adversarial import ATTACKS, attack
from tf_lottery.evals.cka import linear_cka
from tf_lottery.evals.corruptions import CORRUPTIONS, corrupt
from tf_lottery.evals.registry import (
    EVALS, Evaluation, get, needs_reference, options_classes, register, run_cached, wanted,
)

__all__ = ["ATTACKS", "CORRUPTIONS", "EVALS", "Evaluation", "attack", "corrupt", "get", "linear_cka",
           "needs_reference", "options_classes", "register", "run_cached", "wanted"]
