"""``imp``: weight lottery tickets by iterative magnitude pruning (Frankle & Carbin, ICLR 2019).

One *level* prunes ``--imp_rate`` (default 20 %) of the conv and dense kernel weights that
are still alive, globally by magnitude (open_lth's ``sparse_global`` strategy: biases and
BatchNorm are not pruned), from the weights of a trained network. Weights that are exactly
0 in that network count as pruned before (what a previous level's masked training leaves),
so level l leaves ``round``-exact ``(1 - rate)^l`` of the kernel weights. The mask is
recorded (bit-packed, in ``scores.json``), applied to the rewind weights (θ0 or θk), and
frozen while the ticket retrains under tfmot (:mod:`tf_lottery.legacy.masked`).

The level loop (train, prune, rewind, retrain) is the ``imp`` experiment
(:mod:`tf_lottery.experiments.imp`); this method is one step of it.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Dict

import keras
import numpy as np

from tf_lottery.core.options import integer, real
from tf_lottery.legacy.masked import decode, encode, fit_attached, masked_copy
from tf_lottery.tickets.find import TicketResult
from tf_lottery.tickets.registry import register


def kernel_layers(model: keras.Model) -> list:
    """The Conv2D and Dense layers of ``model`` (whose kernels IMP prunes), in layer order."""
    return [layer for layer in model.layers if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))]


def magnitude_masks(model: keras.Model, rate: float) -> Dict[str, Dict[str, np.ndarray]]:
    """Kernel masks pruning ``rate`` of the alive (non-zero) kernel weights of ``model``, globally.

    Exactly ``round(rate * alive)`` more weights are masked; ties in magnitude break by
    layer order and position, so the masks are deterministic.

    Raises:
        ValueError: for a rate outside (0, 1) or a model without conv or dense kernels.
    """
    if not 0 < rate < 1:
        raise ValueError(f"the IMP rate must be in (0, 1); got {rate}")
    layers = kernel_layers(model)
    if not layers:
        raise ValueError(f"model {model.name!r} has no Conv2D or Dense kernel to prune")
    values = [np.abs(layer.kernel.numpy()).ravel() for layer in layers]
    flat = np.concatenate(values).astype("float64")
    alive = flat != 0
    count = int(round(rate * alive.sum()))
    candidates = np.flatnonzero(alive)
    victims = candidates[np.argsort(flat[candidates], kind="stable")[:count]]
    keep = alive.copy()
    keep[victims] = False
    masks, start = {}, 0
    for layer, v in zip(layers, values):
        masks[layer.name] = {"kernel": keep[start:start + v.size].reshape(layer.kernel.shape).astype("float32")}
        start += v.size
    return masks


def sparsity(masks) -> float:
    """Fraction of masked weights among all masked-or-kept ones."""
    total = sum(m.size for by in masks.values() for m in by.values())
    return 1.0 - sum(float(m.sum()) for by in masks.values() for m in by.values()) / total


def check(model, method) -> None:
    """Fails (ValueError) for a model without conv or dense kernels."""
    if not kernel_layers(model):
        raise ValueError(f"model {model.name!r} has no Conv2D or Dense kernel for imp to prune")


def apply(model, ticket, method):
    """A masked copy of ``model`` under the masks recorded in ``ticket.details["masks"]``."""
    return masked_copy(model, decode(ticket.details["masks"]), name=_sparse_name(model.name, ticket.details))


def _sparse_name(name: str, details: dict) -> str:
    """``resnet32`` -> ``resnet32_sparse20``: the percentage of kernel weights pruned."""
    return f"{name.split('_sparse')[0]}_sparse{round(100 * details['sparsity'])}"


@dataclasses.dataclass(frozen=True)
class ImpSettings:
    """The options of ``imp``: the fraction pruned per level, and the levels."""

    imp_rate: float = real(0.2, "imp: fraction of the remaining conv and dense kernel weights pruned per level.")
    imp_levels: int = integer(1, "imp: pruning levels (sparsity 1 - (1 - rate)^levels).", lower_bound=1)

    @classmethod
    def check_values(cls, values: dict) -> None:
        """Refuses a rate outside (0, 1) and levels past the one that leaves a millionth of the weights.

        Raises:
            ValueError: naming the flag, its value and what is allowed.
        """
        rate, levels = values["imp_rate"], values["imp_levels"]
        if not 0 < rate < 1:
            raise ValueError(f"--imp_rate must be in (0, 1); got {rate}")
        # Past the level that leaves one weight in a million, every further level prunes nothing
        # real and retrains the whole recipe again.
        most = max(1, math.floor(math.log(1e-6) / math.log(1 - rate)))
        if levels > most:
            raise ValueError(f"imp_levels must be <= {most} at --imp_rate={rate:g}: {most} levels already "
                             f"leave (1 - {rate:g})^{most} < 1e-6 of the weights, and each level trains the "
                             f"whole recipe again; got {levels}")


@register("imp", check=check, apply=apply, fit=fit_attached, unit="weights", experiment="imp",
          fields=("rewind", "rewind_epoch", "rewind_step"), settings=ImpSettings,
          summary="one level of global magnitude pruning of the kernels (IMP, Frankle & Carbin), masked with tfmot")
def imp(model, data, method, seed: int = 0) -> TicketResult:
    """One IMP level: masks from ``model``'s (trained) kernel magnitudes, ``method.imp_rate`` of the alive ones.

    Args:
        model: The trained network (or the previous level's trained ticket).
        data: Unused (magnitude needs no data).
        method: A :class:`tf_lottery.config.MethodConfig` (``imp_rate``).
        seed: Unused.

    Returns:
        A :class:`~tf_lottery.tickets.TicketResult`: ``model`` masked; ``details`` hold the
        encoded masks, the sparsity and the alive weight count.

    Example:
        >>> level1 = tl.methods.get("imp")(trained, None, Config.create(method="imp").method)
        >>> round(level1.details["sparsity"], 3)
        0.2
    """
    masks = magnitude_masks(model, method.imp_rate)
    alive = int(sum(m.sum() for by in masks.values() for m in by.values()))
    details = {"sparsity": sparsity(masks), "alive_weights": alive,
               "kernel_weights": int(sum(m.size for by in masks.values() for m in by.values())),
               "masks": encode(masks)}
    return TicketResult([], {}, [], "magnitude", "low", "oneshot", details=details,
                        model=masked_copy(model, masks, name=_sparse_name(model.name, details)))
