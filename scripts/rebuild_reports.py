"""Rewrites the committed sweep, compare and robustness reports from their committed ``results.json``.

A report is a function of its rows: when the reports change (0.10: verdicts against a declared
margin with their power, the declared family, the plateau check), the committed ones are written again
from the same rows, retraining nothing. Sweeps made before 0.10 declared no margin: they are read with
the default declarations (ξ = 1 pp, α = 0.05, power 80 %), which each report states.

    .venv/bin/python scripts/rebuild_reports.py [folder ...]     # default: every committed one
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from tf_lottery import reports  # noqa: E402
from tf_lottery.config import Config  # noqa: E402
from tf_lottery.core.io import write_json_atomic, write_text_atomic  # noqa: E402
from tf_lottery.experiments.robustness import RobustnessRow  # noqa: E402
from tf_lottery.reports import robustness as robustness_report  # noqa: E402
from tf_lottery.results.records import SweepRow  # noqa: E402

PREDATES = ("> Rebuilt by `scripts/rebuild_reports.py` from this folder's `results.json`. These runs were made "
            "before sweeps declared their margin: the verdicts read the defaults (ξ = 1 pp, α = 0.05, 80 % power), "
            "chosen after the runs, not before them.")
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "benchmarks", "results")


def rebuild(folder: str) -> str:
    """Writes report.md (and plots) of one committed folder again; returns what it was."""
    with open(os.path.join(folder, "results.json"), encoding="utf-8") as handle:
        payload = json.load(handle)
    if not isinstance(payload, dict) or not isinstance(payload.get("config"), dict):
        return "skipped (not a sweep, compare or robustness folder)"
    config = Config.from_dict(payload["config"])
    kind = config.experiment
    if kind == "sweep":
        rows = [SweepRow.from_dict(r) for r in payload["rows"]]
        reports.write(config, rows, folder)
    elif kind == "compare":
        rows = [SweepRow.from_dict(r) for r in payload["rows"]]
        reports.write_compare(config, rows, folder)
    elif kind == "robustness":
        rows = [RobustnessRow(**r) for r in payload["rows"]]
        robustness_report.write(config, rows, folder)
    else:
        return "skipped"
    write_json_atomic(os.path.join(folder, "results.json"), {**payload, "rows": [r.to_dict() for r in rows]})
    if "sweep_margin" not in (payload["config"].get("sweep") or {}):
        path = os.path.join(folder, "report.md")
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        title, _, rest = text.partition("\n")
        write_text_atomic(path, f"{title}\n\n{PREDATES}\n{rest}")
    return kind


def main(argv) -> int:
    folders = argv or sorted(os.path.join(ROOT, name) for name in os.listdir(ROOT)
                             if os.path.exists(os.path.join(ROOT, name, "results.json")))
    for folder in folders:
        print(f"{os.path.basename(folder)}: {rebuild(folder)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
