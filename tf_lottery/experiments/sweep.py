"""``sweep``: many runs of ``init_ticket`` or ``lottery`` over lists, then the paper's tables.

The axes are seeds x methods x p x criteria (x rewinds x rewind epochs or steps for ``lottery``); an
empty list means the single value of the matching flag. Each point is an ordinary run with its own
folder (``runs/<experiment>-<hash>``), so:

* the dense network of a seed is trained once, in its shared dense run folder, and every
  point of that seed (and of any later sweep or single run with the same setup) reuses it;
* an interrupted sweep resumes run by run: finished points are read back, the point that
  was running resumes from its last finished stage (and epoch), the rest run.

Runs go seed by seed, so a sweep stopped early already holds complete seeds. The sweep's
own folder (``runs/sweep-<hash>``) gets ``results.json`` (one row per point),
``report.md`` (Table 1, 2 and 4 shapes, see :mod:`tf_lottery.reports`) and the plots.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import List, Optional

from tf_lottery import tickets
from tf_lottery import reports
from tf_lottery.tickets import METHODS
from tf_lottery.config import Config, SweepConfig
from tf_lottery.data import prepare
from tf_lottery.config.experiments import EXPERIMENTS, register
from tf_lottery.experiments.lottery import check_rewind, rewind_point
from tf_lottery.experiments.preparing import check_data, check_execution, dense_model
from tf_lottery.core.log import log
from tf_lottery.core.progress import Progress
from tf_lottery.experiments.rows import sweep_row
from tf_lottery.results.records import SweepRow
from tf_lottery.experiments.runs import RunFolder
from tf_lottery.training.recipe import stretch_drops


@dataclasses.dataclass(frozen=True)
class SweepResult:
    """What a sweep returns: its folder, one row per point, and the report's text."""

    run_folder: str
    rows: List[SweepRow]
    report: str


def points(config: Config, default_methods: tuple = ()) -> list[Config]:
    """The configs of the sweep's runs, seed-major, each run once.

    A method that declares its own experiment (``imp``) runs under it; a point that
    differs from an earlier one only in settings its method does not read (IMP takes no
    criterion and no p) is the same run and is listed once.

    Args:
        default_methods: The methods when ``--sweep_methods`` is empty (``compare``: all four);
            else ``--method``.

    Raises:
        ValueError: for a rewind list given to a sweep of an experiment that does not rewind.

    Example:
        >>> len(points(Config.create(experiment="sweep", sweep_num_blocks=(1, 2, 3),
        ...                          sweep_criteria=("snip", "grasp"), sweep_seeds=(0, 1))))
        12
    """
    sweep, method = config.sweep, config.method
    types = sweep.sweep_methods or default_methods or (method.type,)
    experiments = {t: METHODS.get(t).experiment or sweep.sweep_experiment for t in types}
    rewinds = any(EXPERIMENTS.get(e).rewinds for e in experiments.values())
    if not rewinds and (sweep.sweep_rewinds or sweep.sweep_rewind_epochs or sweep.sweep_rewind_steps):
        raise ValueError(f"sweep_rewinds, sweep_rewind_epochs and sweep_rewind_steps need "
                         f"--sweep_experiment=lottery or a method that rewinds (imp); got {sweep.sweep_experiment}")
    seeds = sweep.sweep_seeds or (config.seed,)
    counts = sweep.sweep_num_blocks or (method.num_blocks,)
    names = sweep.sweep_criteria or (method.criterion,)
    modes = sweep.sweep_rewinds or (method.rewind,)
    if sweep.sweep_rewind_steps:  # (epoch, step) of each rewind point
        rewind_points = [(0, step) for step in sweep.sweep_rewind_steps]
    elif sweep.sweep_rewind_epochs:
        rewind_points = [(epoch, 0) for epoch in sweep.sweep_rewind_epochs]
    else:
        rewind_points = [(method.rewind_epoch, method.rewind_step)]
    keep, keep_steps = set(config.training.keep_epochs), set(config.training.keep_steps)  # one dense run for all
    if rewinds:
        keep |= {epoch for epoch, _ in rewind_points}
        keep_steps |= {step for _, step in rewind_points}
    keep.discard(0)
    keep_steps.discard(0)
    fraction = method.fraction if not (sweep.sweep_num_blocks or sweep.sweep_cells) else None
    cells = [(count, name) for name, count in sweep.cells()] or list(itertools.product(counts, names))
    training = config.training
    lengths = [(length, stretch_drops(training.lr_drops, training.length, length))
               for length in sweep.sweep_lengths] or [(training.length, training.lr_drops)]
    base = dataclasses.replace(config, sweep=SweepConfig())
    found, seen = [], set()
    for seed, (length, drops), kind, (count, name), mode, (epoch, step) in itertools.product(
            seeds, lengths, types, cells, modes, rewind_points):
        point = base.replace(experiment=experiments[kind], method=kind, seed=seed, num_blocks=count,
                             fraction=fraction, criterion=name, rewind=mode, rewind_epoch=epoch, rewind_step=step,
                             keep_epochs=tuple(sorted(keep)), keep_steps=tuple(sorted(keep_steps)),
                             length=length, lr_drops=drops)
        key = (point.experiment, point.digest("ticket"))
        if key not in seen:
            seen.add(key)
            found.append(point)
    return found


def check(config: Config, runs: list[Config]) -> None:
    """Fails before anything runs when a point is impossible (too large a p, a rewind epoch past
    the end, a missing dataset: it is loaded once here for that reason)."""
    for run in runs:
        run.training.recipe().resumed_at(run.method.rewind_epoch if EXPERIMENTS.get(run.experiment).rewinds else 0)
    data = prepare(config.data_options(), config.data_mean_dir())
    check_data(config, data)
    for run in runs:
        if EXPERIMENTS.get(run.experiment).rewinds:
            check_rewind(run, data)
    model = dense_model(config, data)
    for method in {run.method for run in runs}:
        tickets.get(method.type).check(model, method)
        check_execution(method.type)


def share(runs: list[Config], shard: Optional[tuple]) -> list[Config]:
    """The runs of shard ``(i, n)``: the points are grouped by their dense network (seed and
    training length) and the groups dealt out in order, group k to shard k mod n + 1, so that no
    two shards train the same dense network. ``None``: every run.

    Example:
        >>> [p.seed for p in share(points(config), (2, 2))]  # seeds 0, 1, 2, 3 with two cells each
        [1, 1, 3, 3]
    """
    if shard is None:
        return list(runs)
    index, count = shard
    groups = list(dict.fromkeys(point.digest("dense") for point in runs))
    mine = {group for number, group in enumerate(groups) if number % count == index - 1}
    return [point for point in runs if point.digest("dense") in mine]


def unfinished(runs: list[Config]) -> list[Config]:
    """The runs whose folder holds no result.json yet."""
    return [point for point in runs
            if not RunFolder(point, EXPERIMENTS.get(point.experiment).scope).exists("result.json")]


def _run_point(config: Config, point: Config, number: int, progress: Progress) -> SweepRow:
    experiment = EXPERIMENTS.get(point.experiment)
    method = point.method
    log(f"{config.experiment} run {progress.status(number)}: seed {point.seed}, {method.type}"
        + (f", p={method.num_blocks}, {method.criterion}" if "criterion" in METHODS.get(method.type).fields else "")
        + (f", {point.training.length}" if config.sweep.sweep_lengths else "")
        + (f", rewind={method.rewind} to {rewind_point(method)}" if experiment.rewinds else ""))
    return sweep_row(point, experiment(point), experiment.rewinds)


def run_points(config: Config, runs: list[Config], write_report) -> SweepResult:
    """Runs ``runs`` in order in the folder of ``config`` (scope "sweep"), then its report.

    With ``--sweep_shard=i/n`` only shard i's runs are run (:func:`share`), without holding the
    sweep's folder (each run's own lock guards it); the report is then written when no run of the
    sweep is left unfinished, by whichever shard finishes last.

    Args:
        config: The sweep's (or compare's) config: names its folder.
        runs: The points (from :func:`points`), checked with :func:`check`.
        write_report: ``(config, rows, folder) -> text``: writes report.md and plots.

    Returns:
        The :class:`SweepResult`; a shard that leaves other shards' runs unfinished returns no rows
        and no report.
    """
    folder = RunFolder(config, "sweep")
    shard = config.sweep.shard()
    if shard is not None:
        mine = share(runs, shard)
        log(f"{config.experiment} shard {shard[0]}/{shard[1]}: {len(mine)} of {len(runs)} runs, folder {folder.path}")
        progress = Progress(len(mine))
        for number, point in enumerate(mine, 1):
            _run_point(config, point, number, progress)
        left = unfinished(runs)
        if left:
            log(f"shard {shard[0]}/{shard[1]} done; {len(left)} runs of other shards unfinished: the shard that "
                "finishes last writes the report (or rerun the sweep without --sweep_shard)")
            return SweepResult(folder.path, [], "")
    with folder.lock(config.runtime.wait_for_lock):
        folder.start()
        log(f"{config.experiment}: {len(runs)} runs, folder {folder.path}")
        progress = Progress(len(runs))
        rows = [_run_point(config, point, number, progress) for number, point in enumerate(runs, 1)]
        folder.write_json("results.json", {"config": config.to_dict(), "rows": [r.to_dict() for r in rows]})
        text = write_report(config, rows, folder.path)
    print(text)
    return SweepResult(folder.path, rows, text)


@register("sweep", scope="sweep")
def sweep(config: Config) -> SweepResult:
    """Runs every point of the sweep (see the module docstring) and writes the report.

    Example:
        $ tf-lottery --flagfile=flags/fashion_mnist_table2_resnet32.cfg
    """
    runs = points(config)
    check(config, runs)
    return run_points(config, runs, reports.write)
