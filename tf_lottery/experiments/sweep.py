"""``sweep``: many runs of ``init_ticket`` or ``lottery`` over lists, then the paper's tables.

The axes are seeds x p x criteria (x rewinds x rewind epochs for ``lottery``); an empty list
means the single value of the matching flag. Each point is an ordinary run with its own
folder (``runs/<experiment>-<hash>``), so:

* the dense network of a seed is trained once, in its shared dense run folder, and every
  point of that seed (and of any later sweep or single run with the same setup) reuses it;
* an interrupted sweep resumes run by run: finished points are read back, the point that
  was running resumes from its last finished stage (and epoch), the rest run.

Runs go seed by seed, so a sweep stopped early already holds complete seeds. The sweep's
own folder (``runs/sweep-<hash>``) gets ``results.json`` (one row per point),
``report.md`` (Table 1, 2 and 4 shapes, see :mod:`tf_lottery.report`) and the plots.
"""

from __future__ import annotations

import dataclasses
import itertools

from tf_lottery import criteria, models, report
from tf_lottery.config import SWEEP_FIELDS, Config
from tf_lottery.data import prepare
from tf_lottery.experiments.registry import EXPERIMENTS
from tf_lottery.experiments.stages import log
from tf_lottery.runs import RunFolder
from tf_lottery.tickets import resolve_count


def points(config: Config) -> list[Config]:
    """The configs of the sweep's runs, seed-major.

    Raises:
        ValueError: for a rewind list given to an ``init_ticket`` sweep.

    Example:
        >>> len(points(Config(experiment="sweep", sweep_num_blocks=(1, 2, 3),
        ...                   sweep_criteria=("snip", "grasp"), sweep_seeds=(0, 1))))
        12
    """
    lottery = config.sweep_experiment == "lottery"
    if not lottery and (config.sweep_rewinds or config.sweep_rewind_epochs):
        raise ValueError("sweep_rewinds and sweep_rewind_epochs need --sweep_experiment=lottery")
    seeds = config.sweep_seeds or (config.seed,)
    counts = config.sweep_num_blocks or (config.num_blocks,)
    names = config.sweep_criteria or (config.criterion,)
    rewinds = config.sweep_rewinds or (config.rewind,)
    epochs = config.sweep_rewind_epochs or (config.rewind_epoch,)
    keep = set(config.keep_epochs) | (set(epochs) if lottery else set())
    keep.discard(0)
    reset = {name: getattr(Config(), name) for name in SWEEP_FIELDS}
    fraction = config.fraction if not config.sweep_num_blocks else None
    return [
        dataclasses.replace(config, **reset, experiment=config.sweep_experiment, seed=seed, num_blocks=count,
                            fraction=fraction, criterion=name, rewind=rewind, rewind_epoch=epoch,
                            keep_epochs=tuple(sorted(keep)))
        for seed, count, name, rewind, epoch in itertools.product(seeds, counts, names, rewinds, epochs)
    ]


def check(config: Config, runs: list[Config]) -> None:
    """Fails before anything runs when a point is impossible (an unknown criterion, too large a p,
    a rewind epoch past the end, a missing dataset: it is loaded once here for that reason)."""
    for run in runs:
        criteria.get(run.criterion)
        run.recipe().resumed_at(run.rewind_epoch if run.experiment == "lottery" else 0)
    data = prepare(config.data_options())
    model = models.get(config.model)(**config.model_kwargs(data.input_shape, data.num_classes))
    for count, fraction in sorted({(r.num_blocks, r.fraction) for r in runs}, key=str):
        resolve_count(model, count, fraction, config.min_blocks_per_stage)


@EXPERIMENTS.register("sweep")
def sweep(config: Config) -> dict:
    """Runs every point of the sweep (see the module docstring) and writes the report.

    Returns:
        ``{"run_folder": ..., "rows": [...], "report": markdown}``.

    Example:
        $ tf-lottery --flagfile=flags/fashion_mnist_table2_resnet32.cfg
    """
    runs = points(config)
    check(config, runs)
    folder = RunFolder(config)
    folder.start()
    log(f"sweep: {len(runs)} runs, folder {folder.path}")
    rows = []
    for number, point in enumerate(runs, 1):
        log(f"sweep run {number}/{len(runs)}: seed {point.seed}, p={point.num_blocks}, {point.criterion}"
            + (f", rewind={point.rewind} to epoch {point.rewind_epoch}" if point.experiment == "lottery" else ""))
        result = EXPERIMENTS.get(point.experiment)(point)
        rows.append(report.row(point, result))
    folder.write_json("results.json", {"config": config.to_dict(), "rows": rows})
    text = report.write(config, rows, folder.path)
    print(text)
    return {"run_folder": folder.path, "rows": rows, "report": text}
