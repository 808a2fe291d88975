"""Scoring stage: the dense network scored by the method's criterion, the decision of what to remove cached in
``scores.json`` (so a resumed run removes the same blocks), and its plot.

Example:
    >>> scoring = make_ticket(config, run, dense, data)
    >>> scoring.ticket.removed
    ['stage1_block2', ...]
"""

from __future__ import annotations

import time

from tf_lottery import criteria, surgery, tickets
from tf_lottery.config import Config
from tf_lottery.config.sections import SCORE_SEQUENCES
from tf_lottery.core.faults import crash_point
from tf_lottery.core.log import log
from tf_lottery.data import TextData
from tf_lottery.experiments.runs import RunFolder
from tf_lottery.reports import plots
from tf_lottery.results.records import Energy, ScoringRecord
from tf_lottery.runtime import carbon


def make_ticket(config: Config, run: RunFolder, dense, data, file: str = "scores.json") -> ScoringRecord:
    """Scores the dense model (θ0 here, trained weights for ``lottery``) and picks what to remove.

    Cached in ``file`` (scores.json), so a resumed run removes the same blocks.
    """
    trained = [name for name in ("train_ticket.json", "ticket_final.weights.h5", "resume_ticket") if run.exists(name)]
    # The decision is remade only while no ticket was trained from it.
    files = " ".join(run.file(name) for name in (file, *trained))
    remedy = (f"the ticket was trained from this decision: delete {files} and rerun {config.command_line()}, "
              "which scores and trains the ticket again")
    scoring = run.read_json(file, ScoringRecord.from_dict, recompute=not trained, remedy=remedy)
    if scoring is not None:
        log(f"decision found in {run.file(file)}: removing {_shown(scoring.ticket.removed)}")
        return scoring
    method = config.method
    if isinstance(data, TextData):  # the first sequences of the seeded shuffle
        x, y = data.arrays("train", method.score_sequences or SCORE_SEQUENCES)
    else:
        x, y = criteria.class_balanced_batch(*data.arrays("train", data.scoring_pool),
                                             per_class=method.score_per_class, seed=config.seed)
    scored_by = f" ({method.criterion} on {len(y)} examples)" if "criterion" in tickets.get(method.type).fields else ""
    article = "an" if method.type[:1] in "aeiou" else "a"
    log(f"making {article} {method.type} ticket of {dense.name}{scored_by}")
    with carbon.track("scoring", run.path, config.runtime.carbon_country) as energy:
        start = time.perf_counter()
        result = tickets.get(method.type)(dense, (x, y), method, config.seed)
        seconds = time.perf_counter() - start
    crash_point("scoring")
    scoring = ScoringRecord(result.record(), seconds, int(len(y)), Energy.from_dict(energy))
    run.write_json(file, scoring.to_dict())
    log(f"removing {_shown(scoring.ticket.removed)}")
    return scoring


def _shown(removed, most: int = 8) -> str:
    """A removal list for a log line (a filter ticket's can be hundreds long)."""
    return str(removed) if len(removed) <= most else f"{len(removed)} ({', '.join(removed[:most])}, ...)"


def plot_scores(config: Config, run: RunFolder, dense, scoring: ScoringRecord) -> None:
    """Writes scores.png: every block's score by stage, the removed ones marked (block scores only:
    the scores of a filter or weight ticket have no such plot)."""
    found = {b.name: b for b in surgery.find_blocks(surgery.families.block_model(dense))}
    if not set(scoring.ticket.scores) <= set(found):
        return
    plots.block_scores(scoring.ticket.scores, {n: b.stage for n, b in found.items()},
                       [n for n, b in found.items() if b.removable], scoring.ticket.removed,
                       config.method.criterion, scoring.ticket.prune_first, run.file("scores.png"))
