"""``compare``: layer tickets against the pruning baselines, under one harness (the paper's Table 3).

Every method makes its ticket from the same θ0 of a seed, trains it by the same recipe on
the same data stream, and is compared with the same shared dense run of that seed:

* ``blocks``: the layer ticket (the paper's method);
* ``filters``: the filter ticket with exactly the layer ticket's filter count, removed
  physically (the paper's "standard structured LTH");
* ``filter_masks``: the same filters held as tfmot masks (what tfmot users would do);
* ``imp``: the weight lottery ticket of iterative magnitude pruning with tfmot
  (``--imp_levels`` levels of ``--imp_rate``, rewound to θ_``rewind_epoch``).

Points: seeds x methods x p x criteria (``--sweep_seeds``, ``--sweep_methods``,
``--sweep_num_blocks``, ``--sweep_criteria``; IMP takes neither p nor a criterion and runs
once per seed). Each is an ordinary run folder, shared with any sweep or single run of
the same settings, so a compare after a Table 2 sweep only trains what is new.

The report (``runs/compare-<hash>/report.md``) has the Table 3 shape (rows: filter and
layer tickets; columns: criteria; pp vs dense, mean ± std over seeds) for each p, the IMP
row, and a cost table for every method: params, non-zero weights, conv filters, FLOPs
(a masked model's as it runs: masks remove nothing), measured training time, images/s
and latency.
"""

from __future__ import annotations

from tf_lottery import reports
from tf_lottery.config import Config
from tf_lottery.config.experiments import register
from tf_lottery.experiments.sweep import SweepResult, check, points, run_points

METHODS = ("blocks", "filters", "filter_masks", "imp")


@register("compare", scope="sweep")
def compare(config: Config) -> SweepResult:
    """Runs every method's tickets (see the module docstring) and writes the Table 3 report.

    Example:
        $ tf-lottery --flagfile=flags/fashion_mnist_table3_resnet32.cfg
    """
    runs = points(config, default_methods=METHODS)
    check(config, runs)
    return run_points(config, runs, reports.write_compare)
