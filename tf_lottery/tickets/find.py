"""Finding a layer ticket: score the blocks, rank them globally, remove the weakest.

Selection follows the paper (its Appendix A.2: "all scores at once"): the scores of *all* removable blocks are
ranked at once, across stages; blocks are taken in removal order (lowest first, or
highest for criteria such as GraSP), and a block whose removal would leave its stage
below ``min_blocks_per_stage`` is skipped in favour of the next one. Ties break by
graph order, so the result is deterministic.

``schedule="oneshot"`` scores once (the paper's Algorithms 1 and 2).
``schedule="iterative"`` goes beyond the paper, whose stated limitation is one-shot
only: it removes one block at a time and re-scores the rebuilt ticket, which is cheap at
initialization.
"""

from __future__ import annotations

import dataclasses
import numbers
import warnings
from typing import Callable, Dict, List, Optional, Sequence

import keras

from tf_lottery.core import arguments
from tf_lottery import criteria as criteria_lib
from tf_lottery import surgery
from tf_lottery.results.records import TicketRecord

#: How :func:`find_ticket` selects: ``oneshot`` (one scoring) or ``iterative`` (re-score after each removal).
SCHEDULES = ("oneshot", "iterative")


@dataclasses.dataclass(frozen=True, eq=False)
class TicketResult(TicketRecord):
    """What :func:`find_ticket` found: the ticket model and how it was found.

    Attributes:
        removed: Removed blocks, in removal order.
        scores: Block scores of the dense model (first scoring round).
        rounds: Scores of every round (one for one-shot, one per block for iterative).
        criterion: Criterion name.
        prune_first: "low" or "high", as used.
        schedule: "oneshot" or "iterative".
        details: Method-specific facts (None for a layer ticket).
        model: The ticket: a new model with inherited weights.

    Example:
        >>> result = find_ticket(tl.models.cifar_resnet(20, seed=0), "magnitude", num_blocks=1)
        >>> result.removed, result.model.name
        (['stage3_block2'], 'resnet20_minus1')
    """

    model: keras.Model = None

    def record(self) -> TicketRecord:
        """How the ticket was found, without the model (what ``scores.json`` keeps)."""
        return TicketRecord(self.removed, self.scores, self.rounds, self.criterion, self.prune_first, self.schedule,
                            self.details)

    def to_dict(self) -> dict:
        """JSON-ready summary (no model)."""
        return self.record().to_dict()


def resolve_count(model: keras.Model, num_blocks: Optional[int], fraction: Optional[float],
                  min_blocks_per_stage: int = 2) -> int:
    """How many blocks to remove: ``num_blocks``, or ``fraction`` of the removable blocks.

    Args:
        model: The dense network.
        num_blocks: Blocks to remove, or None.
        fraction: Share of the removable blocks to remove (rounded), or None.
        min_blocks_per_stage: Floor per stage.

    Returns:
        The number of blocks to remove.

    Raises:
        TypeError: for a count that is not an integer or a fraction that is not a number.
        ValueError: for neither or both given, a model without residual blocks, a count
            below 1, a fraction outside (0, 1] or one that rounds to no block, or more
            blocks than can be removed (naming the maximum).

    Example:
        >>> resolve_count(tl.models.cifar_resnet(32), None, 0.25)   # a quarter of the 12 removable blocks
        3
    """
    if (num_blocks is None) == (fraction is None):
        raise ValueError(f"give exactly one of num_blocks and fraction; got {num_blocks} and {fraction}")
    if num_blocks is not None and (isinstance(num_blocks, bool) or not isinstance(num_blocks, numbers.Integral)):
        raise TypeError(f"num_blocks must be an integer; got {num_blocks!r}")
    if fraction is not None and (isinstance(fraction, bool) or not isinstance(fraction, numbers.Real)):
        raise TypeError(f"fraction must be a number in [0, 1]; got {fraction!r}")
    removable = surgery.removable_blocks(model)
    if not surgery.find_blocks(model):
        raise ValueError(f"{model.name!r} has no residual block, so a layer ticket cannot be cut from it; "
                         f"{surgery.NO_BLOCKS_HINT}; {surgery.looked_at(model)}")
    if fraction is not None:
        if not 0 < fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1]; got {fraction}")
        num_blocks = round(fraction * len(removable))
        if num_blocks == 0:
            raise ValueError(f"fraction={fraction} of the {len(removable)} removable blocks of {model.name} rounds to "
                             f"0 blocks: the ticket would be the dense model; give a fraction >= "
                             f"{0.5 / max(len(removable), 1):.3g} or num_blocks >= 1")
    if num_blocks < 1:
        raise ValueError(f"num_blocks must be >= 1 (removing no block leaves the dense model); got {num_blocks}")
    most = surgery.max_removable(model, min_blocks_per_stage)
    if num_blocks > most:
        raise ValueError(
            f"cannot remove {num_blocks} blocks: at most {most} can be removed from {model.name}, since "
            f"{surgery.floor_hint(model, min_blocks_per_stage)}"
        )
    return num_blocks


def select(model: keras.Model, scores: Dict[str, float], count: int, prune_first: str = "low",
           min_blocks_per_stage: int = 2, already: tuple = (),
           allowed: Optional[Callable[[set, set], bool]] = None) -> List[str]:
    """Picks ``count`` blocks to remove by global ranking, respecting eligibility and the floor.

    Args:
        model: The network the scores belong to.
        scores: ``{block: score}``; blocks that are not removable are ignored.
        count: How many blocks to pick.
        prune_first: "low" (lowest scores first) or "high".
        min_blocks_per_stage: Floor per stage.
        already: Blocks already picked (counted against the floor).
        allowed: ``(removed, kept) -> bool``: whether the model's family can remove ``count`` blocks
            among which ``removed`` and not ``kept``
            (:func:`tf_lottery.surgery.families.position_rule`); a block it refuses is passed over
            for the next one in the ranking.

    Returns:
        The picked blocks, in removal order.

    Raises:
        ValueError: for a bad ``prune_first``, a removable block without a score, or
            when fewer than ``count`` blocks can be picked.

    Example:
        >>> model = tl.models.cifar_resnet(32)
        >>> scores = {name: float(i) for i, name in enumerate(tl.surgery.blocks(model))}
        >>> select(model, scores, 2), select(model, scores, 2, prune_first="high")
        (['stage1_block2', 'stage1_block3'], ['stage3_block5', 'stage3_block4'])
    """
    arguments.one_of("prune_first", prune_first, ("low", "high"))
    arguments.count("count", count, least=1)
    arguments.count("min_blocks_per_stage", min_blocks_per_stage)
    found = surgery.find_blocks(model)
    order = {b.name: i for i, b in enumerate(found)}
    stage_of = {b.name: b.stage for b in found}
    missing = [b.name for b in found if b.removable and b.name not in scores]
    if missing:
        raise ValueError(f"no score for removable blocks {missing}")
    left = {}
    for b in found:
        left[b.stage] = left.get(b.stage, 0) + 1
    for name in already:
        left[stage_of[name]] -= 1
    sign = 1.0 if prune_first == "low" else -1.0
    ranking = sorted((b.name for b in found if b.removable and b.name not in already),
                     key=lambda n: (sign * scores[n], order[n]))
    # A block around others (an additive U-Net skip) removes them with it: it counts them, and a pick never
    # overlaps another one.
    inside = surgery.contained(model)
    picked, gone = [], set(already) | {inner for name in already for inner in inside[name]}
    passed = set()  # the blocks of the ranking passed over: kept
    for name in ranking:
        if len(gone) - len(already) >= count:
            break
        going = [name, *inside[name]]
        if gone & set(going) or any(name in inside[p] for p in picked) or len(gone) - len(already) + len(
                going) > count:
            continue
        stages = {}
        for each in going:
            stages[stage_of[each]] = stages.get(stage_of[each], 0) + 1
        if allowed is not None and not allowed(gone | set(going), passed):
            passed.add(name)
            continue
        if all(left[stage] - n >= min_blocks_per_stage for stage, n in stages.items()):
            picked.append(name)
            gone |= set(going)
            for stage, n in stages.items():
                left[stage] -= n
    if len(gone) - len(already) < count:
        raise ValueError(f"only {len(gone) - len(already)} of {count} blocks can be removed within the floor")
    _refuse_or_warn_ties(scores, ranking, picked, left, stage_of, min_blocks_per_stage)
    return picked


class SkippedBlocks(UserWarning):
    """The best-scored blocks cannot go in the model's own class (a family that sets its layers by position,
    Gemma 2's alternating attention): the best-scored removal it allows was taken instead."""


def _cut(model, cut, scores, count, direction, floor, blocks_of, skipped: list):
    """``(removed, ticket)``: the ``count`` best-scored blocks of ``model`` cut with ``cut``; when the family
    refuses them (:class:`tf_lottery.surgery.families.PositionRefusal`), the best-scored removal it allows,
    with a :class:`SkippedBlocks` warning naming the blocks passed over (added to ``skipped``)."""
    removed = select(blocks_of(model), scores, count, direction, floor)
    try:
        return removed, cut(model, removed, floor)
    except surgery.families.PositionRefusal as refusal:
        allowed = surgery.families.position_rule(model, refusal)
        instead = select(blocks_of(model), scores, count, direction, floor, allowed=allowed)
        sign = 1.0 if direction == "low" else -1.0
        passed = [name for name in sorted(scores, key=lambda n: sign * scores[n])
                  if name in set(removed) - set(instead)]
        reason = str(refusal).split(". ")[0]
        warnings.warn(SkippedBlocks(f"{', '.join(passed)} scored to go first but cannot go alone in "
                                    f"{type(model).__name__}'s own class ({reason}); removed {', '.join(instead)}, "
                                    "the best-scored blocks it allows, instead"), stacklevel=3)
        skipped.extend(passed)
        return instead, cut(model, instead, floor)


class TiedScores(UserWarning):
    """The last block picked and the first one left scored the same: graph order chose between them."""


def _refuse_or_warn_ties(scores, ranking, picked, left, stage_of, floor) -> None:
    """Refuses scores that say nothing (every eligible block the same, as all-zero or saturated inputs
    give GraSP and SNIP), and warns when the last picked score ties the first one left, naming the blocks.

    Raises:
        ValueError: when every eligible block has the same score.
    """
    values = {scores[name] for name in ranking}
    if len(ranking) > len(picked) and len(values) == 1:
        raise ValueError(f"every removable block scored {next(iter(values))!r}, so the scores cannot choose "
                         f"{len(picked)} of {len(ranking)}: the scoring data gave the criterion nothing to measure "
                         "(all-zero or saturated inputs, say: check their scale and content)")
    last = picked[-1]
    eligible_left = [name for name in ranking if name not in picked and left[stage_of[name]] - 1 >= floor]
    tied = [name for name in eligible_left if scores[name] == scores[last]]
    if tied:
        warnings.warn(TiedScores(f"{last} (removed) and {', '.join(tied)} (kept) have the same score "
                                 f"{scores[last]!r}: graph order chose which goes; the ticket is one of several "
                                 "equally scored ones"), stacklevel=3)


def find_ticket(
    model: keras.Model,
    criterion: str = "grasp",
    num_blocks: Optional[int] = None,
    fraction: Optional[float] = None,
    data=None,
    schedule: str = "oneshot",
    min_blocks_per_stage: int = 2,
    prune_first: Optional[str] = None,
    residual_layers: Optional[Sequence[str]] = None,
    same_family: Optional[bool] = None,
    **criterion_options,
) -> TicketResult:
    """Scores the blocks of ``model`` and removes the weakest ones.

    Args:
        model: The dense network (at initialization for Algorithm 2, trained for Algorithm 1).
        criterion: A registered criterion name (``tl.criteria.names()``).
        num_blocks: Blocks to remove (the paper's p).
        fraction: Or a fraction of the removable blocks (rounded).
        data: What the criterion needs, e.g. ``(images, labels)``.
        schedule: "oneshot" or "iterative" (re-score after each removal).
        min_blocks_per_stage: Floor per stage (paper authors' framework: 2).
        prune_first: Overrides the criterion's convention ("low" or "high").
        residual_layers: Layers that are blocks by themselves although the trace does not see
            their residual sum (:mod:`tf_lottery.graph.inside`); recorded on ``model``.
        same_family: Whether the ticket is a model of ``model``'s own class
            (:func:`tf_lottery.surgery.family_ticket`; its blocks are renamed by position, and
            ``removed`` keeps ``model``'s names) rather than a flat functional model. Default:
            when the class (a keras_hub backbone or task) is a registered family.
        **criterion_options: Passed to the criterion (e.g. ``aggregation="mean"``; ``output=``
            for a model of several outputs, ``loss=`` for one that is not a classifier).

    Returns:
        A :class:`TicketResult`. When the best-scored blocks cannot go in ``model``'s own class (a family
        that sets its layers by position, Gemma 2's alternating attention), the best-scored removal it
        allows is taken, a :class:`SkippedBlocks` warning names the blocks passed over, and so does
        ``details["skipped"]``.

    Raises:
        ValueError: for an unknown schedule, a bad count (naming the maximum), data the
            criterion needs but did not get, or ``same_family=False`` for a keras_hub task.
        KeyError: for an unknown criterion, listing the valid ones.

    Example:
        >>> result = tl.find_ticket(model, criterion="grasp", num_blocks=3, data=(x, y))
        >>> result.removed
        ['stage1_block4', 'stage2_block2', 'stage1_block2']
    """
    arguments.one_of("schedule", schedule, SCHEDULES)
    arguments.count("min_blocks_per_stage", min_blocks_per_stage)
    arguments.one_of("prune_first", prune_first, ("low", "high"), optional=True)
    if residual_layers is not None and (isinstance(residual_layers, str) or not all(
            isinstance(n, str) for n in residual_layers)):
        raise TypeError(f"residual_layers must be a list of layer names; got {residual_layers!r}")
    if residual_layers:
        surgery.find_blocks(model, residual_layers=residual_layers)
    scorer = criteria_lib.get(criterion)
    scorer.check_options({k: v for k, v in criterion_options.items() if k not in ("output", "loss")})
    direction = prune_first or scorer.prune_first
    if same_family is None:
        same_family = surgery.families.has_family(model)
    refusal = None if same_family else surgery.families.flat_refusal(model)
    if refusal:
        raise ValueError(f"{type(model).__name__} {model.name!r} is cut in its own class only, not flat "
                         f"(same_family=False): {refusal}. Keep same_family, or find a flat ticket of its "
                         "backbone, model.backbone")
    cut = surgery.family_ticket if same_family else surgery.remove_blocks
    blocks_of = surgery.families.block_model if same_family else (lambda m: m)
    count = resolve_count(blocks_of(model), num_blocks, fraction, min_blocks_per_stage)

    rounds = [scorer(model, data, **criterion_options)]
    skipped: List[str] = []
    if schedule == "oneshot" and same_family:
        removed, ticket = _cut(model, cut, rounds[0], count, direction, min_blocks_per_stage, blocks_of, skipped)
    elif schedule == "oneshot":
        removed = select(blocks_of(model), rounds[0], count, direction, min_blocks_per_stage)
        ticket = cut(model, removed, min_blocks_per_stage)
    else:
        removed, ticket = [], surgery.remove_blocks(model, [], min_blocks_per_stage) if not same_family else model
        for step in range(count):
            scores = scorer(ticket, data, **criterion_options) if step else rounds[0]
            if step:  # a family ticket's scores are kept under model's names
                rounds.append({_original_name(model, ticket, name): value for name, value in scores.items()}
                              if same_family else scores)
            if same_family:
                passed: List[str] = []
                (victim,), smaller = _cut(ticket, cut, scores, 1, direction, min_blocks_per_stage, blocks_of, passed)
                skipped.extend(_original_name(model, ticket, name) for name in passed)
                removed.append(_original_name(model, ticket, victim))
                ticket = smaller
            else:
                victim = select(blocks_of(ticket), scores, 1, direction, min_blocks_per_stage)[0]
                removed.append(victim)
                ticket = cut(ticket, [victim], min_blocks_per_stage)
    return TicketResult(removed, rounds[0], rounds, criterion, direction, schedule,
                        details={"skipped": skipped} if skipped else None, model=ticket)


def _original_name(model: keras.Model, ticket: keras.Model, name: str) -> str:
    """``model``'s name of block ``name`` of a family ticket cut from it (its blocks are named by position)."""
    if ticket is model:
        return name
    return surgery.kept_blocks(ticket)[surgery.blocks(surgery.families.block_model(ticket)).index(name)]
