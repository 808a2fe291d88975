"""Criteria, one module each, registered in :data:`CRITERIA` (:mod:`tf_lottery.criteria.registry`).

At initialization: ``snip``, ``grasp`` (labelled batch); ``synflow``, ``magnitude``,
``magnitude_stage``, ``random`` (no data). After training: ``hrank``, ``expectabs``,
``kl``, ``block_influence``, ``angular``, ``cka`` (images, or inputs by name), ``pls``,
``removal_loss`` (labelled). A keras_hub causal LM is scored on its next-token loss
(:mod:`~tf_lottery.criteria.language`). Each is a :class:`Criterion`:
``tl.criteria.get("grasp")(model, (images, labels)) -> {block: score}``, with
``.prune_first`` saying which end of the ranking goes first. ``snip``, ``grasp``,
``magnitude``, ``random``, ``expectabs`` and ``hrank`` also score filters
(:func:`filter_scores`), for the filter-ticket baseline.
"""

from tf_lottery.criteria import (  # noqa: F401  (importing registers each criterion)
    angular, block_influence, cka, expectabs, grasp, hrank, kl, language, magnitude, pls, random_blocks, removal_loss,
    similarity, snip, synflow,
)
from tf_lottery.criteria.base import aggregate, as_batch, class_balanced_batch
from tf_lottery.criteria.registry import (
    AGGREGATIONS, CRITERIA, Criterion, FilterCriterion, filter_criterion, filter_names, filter_scores, flat_scores,
    get, names, register, settings_classes,
)

__all__ = [
    "AGGREGATIONS", "CRITERIA", "Criterion", "FilterCriterion", "aggregate", "as_batch", "class_balanced_batch",
    "filter_criterion", "filter_names", "filter_scores", "flat_scores", "get", "names", "register",
    "settings_classes",
]
