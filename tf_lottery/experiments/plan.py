"""``plan``: how many seeds a campaign needs, from a pilot sweep's spread (no training).

Reads the rows of each ``--from`` sweep (its folder, or a copy of its ``results.json``),
pools the spread of the paired differences over the pilot's cells and over its contrasts of two
criteria, and says how many seeds reach the minimum detectable difference ``--sweep_detectable``
at power ``--sweep_power`` (:mod:`tf_lottery.reports.plan`). Writes ``plan.md`` and ``plan.json``
beside the first ``results.json`` and prints the plan.

Example:
    $ tf-lottery --experiment=plan --from=runs/sweep-0833594ee028 --sweep_detectable=0.5
"""

from __future__ import annotations

import os

from tf_lottery.config import Config
from tf_lottery.config.experiments import register
from tf_lottery.core.io import write_json_atomic, write_text_atomic
from tf_lottery.experiments.runs import read_json_object
from tf_lottery.reports.plan import plan as make_plan, plan_text
from tf_lottery.reports.statistics import Declared
from tf_lottery.results.records import SweepRow


def pilot_rows(source: str) -> list:
    """The rows of a sweep folder or of a ``results.json`` file.

    Raises:
        ValueError: naming a path that is neither, or a file without a list of rows.
    """
    path = os.path.join(source, "results.json") if os.path.isdir(source) else source
    if not os.path.isfile(path):
        raise ValueError(f"--from={source}: no results.json there; give a finished sweep's folder or its "
                         "results.json")
    remedy = "rerun the sweep's command, which rewrites it from its runs"
    payload = read_json_object(path, remedy=remedy)
    rows = payload.get("rows") if isinstance(payload, dict) else None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ValueError(f"{path} holds no list of sweep rows; {remedy}")
    return [SweepRow.from_dict(r) for r in rows]


@register("plan", scope=None, takes_from=True)
def plan(config: Config) -> dict:
    """Prints and writes the plan of the ``--from`` pilot sweeps; returns it.

    Raises:
        ValueError: without ``--from``, or for a folder that holds no sweep rows.
    """
    sources = config.evaluation.runs_from
    if not sources:
        raise ValueError("--experiment=plan reads a pilot sweep: give --from=<sweep folder or its results.json>")
    rows = [row for source in sources for row in pilot_rows(source)]
    found = make_plan(rows, Declared.of(config))
    text = f"# Seed plan from {', '.join(sources)}\n\n{plan_text(found)}\n"
    first = sources[0] if os.path.isdir(sources[0]) else os.path.dirname(sources[0]) or "."
    write_json_atomic(os.path.join(first, "plan.json"), {"runs_from": list(sources), **found})
    write_text_atomic(os.path.join(first, "plan.md"), text)
    print(text)
    return found
