"""Layer 5, what a run produced, as typed records: :mod:`~tf_lottery.results.records` (run,
model, ticket, comparison and sweep-row records, pure: no file is read inside a record) and
:mod:`~tf_lottery.results.curves` (learning curves from a run's history).

Reached as ``tl.records`` too (the records module's name before 0.8).

Example:
    >>> record = tl.results.RunRecord.from_dict(json.load(open("runs/init_ticket-27cb9d7dd0a7/result.json")))
    >>> record.comparison.accuracy_pp is not None
    True
"""

from tf_lottery.results import curves  # noqa: F401
from tf_lottery.results.records import (
    UNITS, Comparison, Energy, ModelRecord, Rewind, RunRecord, ScoringRecord, SweepRow, TicketRecord, Timing,
    TrainingRecord,
)

__all__ = ["Comparison", "Energy", "ModelRecord", "Rewind", "RunRecord", "ScoringRecord", "SweepRow",
           "TicketRecord", "Timing", "TrainingRecord", "UNITS", "curves"]
