"""Block criteria, one module each, registered in :data:`CRITERIA`.

At initialization: ``snip``, ``grasp`` (labelled batch); ``synflow``, ``magnitude``,
``magnitude_stage``, ``random`` (no data). After training: ``hrank``, ``expectabs``,
``kl`` (images), ``pls`` (labelled). Each is a :class:`Criterion`:
``tl.criteria.get("grasp")(model, (images, labels)) -> {block: score}``, with
``.prune_first`` saying which end of the ranking goes first.
"""

from tf_lottery.criteria import (  # noqa: F401  (importing registers each criterion)
    expectabs, grasp, hrank, kl, magnitude, pls, random_blocks, snip, synflow,
)
from tf_lottery.criteria.base import (
    AGGREGATIONS, CRITERIA, Criterion, aggregate, as_batch, class_balanced_batch, per_filter,
)
from tf_lottery.criteria.grasp import grasp_weight_scores
from tf_lottery.criteria.magnitude import magnitude_weight_scores
from tf_lottery.criteria.snip import snip_weight_scores
from tf_lottery.criteria.synflow import synflow_weight_scores

_WEIGHT_SCORES = {
    "snip": snip_weight_scores,
    "grasp": grasp_weight_scores,
    "synflow": synflow_weight_scores,
    "magnitude": magnitude_weight_scores,
}


def get(name: str) -> Criterion:
    """Returns the criterion registered as ``name`` (the error lists the valid names).

    Example:
        >>> scores = tl.criteria.get("grasp")(model, (images, labels))
    """
    return CRITERIA.get(name)


def names() -> list:
    """Registered criterion names."""
    return CRITERIA.names()


def weight_scores(name: str, model, data=None, **options):
    """Per-weight scores ``{layer: array}`` of a saliency criterion (snip, grasp, synflow, magnitude).

    Raises:
        ValueError: for a criterion that has no per-weight scores.
    """
    if name not in _WEIGHT_SCORES:
        raise ValueError(f"criterion {name!r} has no per-weight scores; valid: {sorted(_WEIGHT_SCORES)}")
    return _WEIGHT_SCORES[name](model, data, **options)


def filter_scores(name: str, model, data=None, **options):
    """Per-filter scores ``{conv layer: vector over output channels}`` (for filter pruning)."""
    return per_filter(weight_scores(name, model, data, **options))


__all__ = [
    "AGGREGATIONS", "CRITERIA", "Criterion", "aggregate", "as_batch", "class_balanced_batch",
    "filter_scores", "get", "names", "per_filter", "weight_scores",
]
