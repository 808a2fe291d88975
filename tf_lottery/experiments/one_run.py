"""What one run can say: its difference beside the run-to-run spread of its recipe, never a verdict.

A single ticket against its dense network is one draw: with three epochs the quick demo's
difference has moved by points from seed to seed. So a run prints no verdict. When the run is one of
a recipe whose repeats are shipped (:data:`REPEATS`: the quick demo's recipe over eight seeds, made by
``tf-lottery --flagfile=flags/quickstart_seeds.cfg`` and committed under
``benchmarks/results/quickstart_seeds/``), it prints its difference beside their spread; otherwise it
names the command that gives a verdict: the same flags as a sweep over seeds.

Example:
    >>> print(spread_note(config, -0.24))
    ticket − dense: -0.24 pp from one run; eight seeds of this recipe gave ...
"""

from __future__ import annotations

import json
import os
import statistics
from typing import Optional

from tf_lottery.config import EXPERIMENTS, Config

REPEATS = os.path.join(os.path.dirname(__file__), "quickstart_seeds.json")
"""The quick demo's repeats: ``{"recipe": <identity without the seed>, "seeds": [...], "differences_pp": [...],
"source": ..., "command": ...}``."""


def recipe_identity(config: Config) -> dict:
    """What a ticket run is, less its seed: runs of one recipe share it."""
    found = json.loads(json.dumps(config.identity("ticket")))
    found.pop("seed", None)
    found.pop("execution", None)  # bfloat16 or several replicas train other weights, but the spread is close
    return found


def read_repeats(path: str = REPEATS) -> Optional[dict]:
    """The repeats file, or None when it is absent or unreadable (the note then names the command)."""
    try:
        with open(path, encoding="utf-8") as handle:
            found = json.load(handle)
        values = [float(v) for v in found["differences_pp"]]
        return {**found, "differences_pp": values} if len(values) > 1 else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def spread_note(config: Config, accuracy_pp: Optional[float], path: str = REPEATS) -> str:
    """One run's difference beside its recipe's measured spread, and the command that gives a verdict.

    Args:
        config: The run's config.
        accuracy_pp: Ticket minus dense test accuracy (pp) of this run (None: unavailable).
        path: The repeats file.

    Returns:
        Two or three lines of text.
    """
    seeds = "0,1,2,3,4,5,6,7"
    # the sweep repeats this run's experiment (a lottery run's ticket is healed and rewound as it was)
    repeated = config.experiment if EXPERIMENTS.get(config.experiment).sweepable else None
    command = config.replace(experiment="sweep", sweep_seeds=tuple(range(8)),
                             **({"sweep_experiment": repeated} if repeated else {})).command_line()
    if accuracy_pp is None:
        return ""
    lines = [f"ticket − dense: {accuracy_pp:+.2f} pp from one run (seed {config.seed}): one run gives no verdict."]
    repeats = read_repeats(path)
    if repeats is not None and repeats.get("recipe") == recipe_identity(config):
        values = repeats["differences_pp"]
        lines.append(f"{len(values)} seeds of this recipe gave {min(values):+.2f} to {max(values):+.2f} pp "
                     f"(mean {statistics.fmean(values):+.2f}, std {statistics.stdev(values):.2f}; "
                     f"{repeats.get('source', path)}): a difference this size is "
                     f"{'inside' if min(values) <= accuracy_pp <= max(values) else 'outside'} what seeds alone give.")
        lines.append(f"A verdict with its margin and power: {repeats.get('command', command)}")
    else:
        lines.append(f"A verdict with its margin and power needs seeds: the same flags with --experiment=sweep "
                     f"--sweep_seeds={seeds}, e.g. {command}")
    return "\n".join(lines)
