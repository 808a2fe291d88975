"""``robustness``: the paper's Table 5 on runs that already trained, with nothing retrained.

Which runs:

* ``--from=<folder>[,<folder>...]``: ticket run folders (``init_ticket``, ``lottery``,
  ``imp``), sweep or compare folders (all their points), or dense run folders (the dense
  network alone);
* else the runs the flags name, like the sweep they would start (a Table 4 flagfile with
  ``--experiment=robustness``): every point must have finished; the error lists the
  missing ones and the command that trains them.

Each trained model is rebuilt from its run folder (θ0 of its seed, the ticket's recorded
decision, the final weights) and measured by the robustness evaluations
(:mod:`tf_lottery.evals.robustness`); every result is cached in the model's own run folder
(``evals/dense/`` or ``evals/ticket/``), so a second report, another report over the same
runs, or a sweep asking for the same evaluation later reads it back. The dense network of
a seed is measured once, however many tickets share it.

Evaluations: those of ``--evals`` among ``corruptions``, ``shift_sets``, ``adversarial`` and
``cka``; when ``--evals`` names none, all that apply (``shift_sets`` only for a dataset with
published sets). The report (``runs/robustness-<hash>/report.md``, the hash naming the set
of runs evaluated) has the Table 5 shape (pp vs dense on the corruptions, each shift set and
each attack and epsilon; mean ± std over seeds; the paper's values beside it), the detail
per corruption, per epsilon and per stage, and plots.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from typing import Dict, List, Optional

import keras

from tf_lottery import evals
from tf_lottery import tickets
from tf_lottery import reports
from tf_lottery.reports import robustness as report_robustness
from tf_lottery import training
from tf_lottery.config import Config
from tf_lottery.data import prepare
from tf_lottery.evals.robustness import check_shift_sets, shift_set_names
from tf_lottery.experiments.dense import dense_config
from tf_lottery.experiments.existing import Target, targets, trained_ticket  # noqa: F401  (Target: public here)
from tf_lottery.config.experiments import register
from tf_lottery.experiments.fitting import trained_dense
from tf_lottery.core.io import write_json_atomic
from tf_lottery.core.log import log
from tf_lottery.core.progress import Progress
from tf_lottery.experiments.rows import blocks_removed
from tf_lottery.results.records import folder_name, RunRecord
from tf_lottery.experiments.runs import RunFolder

#: The evaluations this experiment runs (``clean`` is always added for the reference accuracy).
ROBUSTNESS_EVALS = ("corruptions", "shift_sets", "adversarial", "cka")


@dataclasses.dataclass(frozen=True)
class RobustnessRow:
    """What the report reads about one ticket (or one dense run alone): both sides' results."""

    seed: int
    dataset: str
    model: str
    method: Optional[str]
    criterion: Optional[str]
    p: Optional[int]
    run_folder: Optional[str]
    dense_run_folder: str
    dense: Dict[str, dict]
    ticket: Optional[Dict[str, dict]]

    def to_dict(self) -> dict:
        """JSON-ready; the run folders by name (relative to the runs folder)."""
        return {**dataclasses.asdict(self), "run_folder": folder_name(self.run_folder),
                "dense_run_folder": folder_name(self.dense_run_folder)}


@dataclasses.dataclass(frozen=True)
class RobustnessResult:
    """What the experiment returns: its folder, one row per ticket, and the report's text."""

    run_folder: str
    rows: List[RobustnessRow]
    report: str


def resolved_evals(config: Config, datasets) -> tuple:
    """``clean`` plus the robustness evaluations to run on runs of ``datasets`` (see the module docstring)."""
    asked = [name for name in config.evaluation.evals if name in ROBUSTNESS_EVALS]
    if not asked:
        has_sets = any(shift_set_names(config.evaluation, dataset) for dataset in datasets)
        asked = [name for name in ROBUSTNESS_EVALS if name != "shift_sets" or has_sets]
    return ("clean", *asked)


def _measure(config: Config, data, target: Target, dense_cache: dict) -> RobustnessRow:
    own = dense_config(target.config)
    dense_folder = RunFolder(own, "dense")
    if dense_folder.path not in dense_cache:
        dense = trained_dense(own, data, dense_folder)
        training.compile_model(dense, own.training.recipe(), 1)
        with dense_folder.lock(config.runtime.wait_for_lock):
            results = evals.run_cached(dense, data, config.evaluation, dense_folder, "dense", log)
        dense_cache.clear()  # one dense network in memory at a time (targets come seed by seed)
        dense_cache[dense_folder.path] = (dense, results)
    dense, dense_results = dense_cache[dense_folder.path]
    point, method = target.config, target.config.method
    if target.ticket_folder is None:
        return RobustnessRow(point.seed, point.data.dataset, reports.model_label(point), None, None, None, None,
                             dense_folder.path, dense_results, None)
    folder = RunFolder(point, "ticket")
    record = folder.read_json("result.json", RunRecord.from_dict)
    ticket = trained_ticket(point, folder, data)
    with folder.lock(config.runtime.wait_for_lock):
        results = evals.run_cached(ticket, data, config.evaluation, folder, "ticket", log, reference=dense)
    return RobustnessRow(point.seed, point.data.dataset, reports.model_label(point), method.type,
                         method.criterion if "criterion" in tickets.get(method.type).fields else None,
                         blocks_removed(point, record), folder.path, dense_folder.path, dense_results, results)


@register("robustness", scope="sweep", takes_from=True)
def robustness(config: Config) -> RobustnessResult:
    """Measures existing runs' robustness and CKA (see the module docstring) and writes the report.

    Example:
        $ tf-lottery --flagfile=flags/fashion_mnist_table5_resnet32.cfg
        $ tf-lottery --experiment=robustness --from=runs/sweep-04e244843397 --evals=corruptions,cka
    """
    found = targets(config)
    wanted = resolved_evals(config, {t.config.data.dataset for t in found})
    if "shift_sets" in wanted:  # everything that can fail fast does, before any measurement
        for dataset in sorted({t.config.data.dataset for t in found}):
            check_shift_sets(config.evaluation, dataset)
    digest = hashlib.sha1("\n".join(sorted(t.ticket_folder or t.config.digest("dense") for t in found))
                          .encode()).hexdigest()[:12]
    folder = os.path.join(config.runtime.runs_dir, f"robustness-{digest}")
    measuring = dataclasses.replace(config, evaluation=dataclasses.replace(config.evaluation, evals=wanted))
    log(f"robustness: {len(found)} runs ({', '.join(wanted)}), report in {folder}")
    rows, data_cache, dense_cache = [], {}, {}
    in_order = sorted(found, key=lambda t: (repr(t.config.data_options()), t.config.seed))  # load data once each
    progress = Progress(len(in_order))
    for number, target in enumerate(in_order, 1):
        options = target.config.data_options()
        if options not in data_cache:
            data_cache.clear()
            data_cache[options] = prepare(options, config.data_mean_dir())
        log(f"robustness {progress.status(number)}: {target.ticket_folder or 'dense run of seed %d' % target.config.seed}")
        keras.utils.set_random_seed(target.config.seed)
        rows.append(_measure(measuring, data_cache[options], target, dense_cache))
    os.makedirs(folder, exist_ok=True)
    write_json_atomic(os.path.join(folder, "results.json"),
                      {"config": config.to_dict(), "evals": list(wanted), "rows": [r.to_dict() for r in rows]})
    text = report_robustness.write(measuring, rows, folder)
    print(text)
    return RobustnessResult(folder, rows, text)
