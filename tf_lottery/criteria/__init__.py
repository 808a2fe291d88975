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
    AGGREGATIONS, CRITERIA, Criterion, aggregate, as_batch, class_balanced_batch,
)


def get(name: str) -> Criterion:
    """Returns the criterion registered as ``name`` (the error lists the valid names).

    Example:
        >>> scores = tl.criteria.get("grasp")(model, (images, labels))
    """
    return CRITERIA.get(name)


def names() -> list:
    """Registered criterion names."""
    return CRITERIA.names()


__all__ = ["AGGREGATIONS", "CRITERIA", "Criterion", "aggregate", "as_batch", "class_balanced_batch", "get", "names"]
