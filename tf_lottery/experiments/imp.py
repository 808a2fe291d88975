"""``imp``: weight lottery tickets by iterative magnitude pruning, with tfmot (Frankle & Carbin 2019).

The baseline the paper's Appendix A.2 sets aside for layers ("IMP-style magnitude"), run at
weight level as open_lth's ``lottery`` branch does:

1. Train the dense network (the shared dense run of the seed; it keeps θk when
   ``--rewind_epoch`` = k > 0, or the weights after k optimizer steps for ``--rewind_step`` = k,
   Frankle et al. 2020's rewinding to an iteration).
2. For each level l = 1..``--imp_levels``: prune ``--imp_rate`` of the alive conv and dense
   kernel weights of the previous level's trained network (level 1: the dense one),
   globally by magnitude; rewind the survivors (``--rewind=weights``: θk, θ0 by default;
   ``lr``: keep the previous level's trained weights and replay the schedule from epoch k;
   ``reinit``: a fresh initialization); retrain them under the frozen mask.
3. The last level is the ticket: measured, compared with the dense network and exported
   (stripped of tfmot: a plain Keras model whose pruned weights are 0).

Every level's decision (``scores_level<l>.json``, the mask bit-packed) and trained weights
(``level<l>_final.weights.h5``) stay in the run folder, so a rerun skips finished levels.
This experiment always uses ``--method=imp``.
"""

from __future__ import annotations

import keras

from tf_lottery import tickets
from tf_lottery.config import Config
from tf_lottery.experiments.dense import train_dense
from tf_lottery.experiments.lottery import check_rewind, rewind_record, rewinding_run, rewound_ticket
from tf_lottery.config.experiments import register
from tf_lottery.experiments.finished import started
from tf_lottery.experiments.fitting import train_or_load
from tf_lottery.experiments.preparing import set_up
from tf_lottery.experiments.recording import record_run
from tf_lottery.experiments.scoring import make_ticket
from tf_lottery.core.log import log
from tf_lottery.results.records import RunRecord


def imp_config(config: Config) -> Config:
    """``config`` with ``--method=imp`` (what an ``imp`` run always uses)."""
    return config if config.method.type == "imp" else config.replace(method="imp")


@register("imp", scope="ticket", sweepable=True, rewinds=True)
def imp(config: Config) -> RunRecord:
    """Runs iterative magnitude pruning (see the module docstring); returns the last level's run record.

    Raises:
        ValueError: for a rewind epoch outside the training or lengths in steps.

    Example:
        $ tf-lottery --experiment=imp --imp_levels=3 --rewind_epoch=0
    """
    config = imp_config(config)
    method = config.method
    run, done = rewinding_run(config)
    if done is not None:
        return done
    data, dense = set_up(config)  # every check, before the first file is written
    check_rewind(config, data)
    fit = tickets.get("imp").trainer()
    with started(config, run) as finished:
        if finished is not None:
            return finished
        dense_record, dense_run = train_dense(config, data, dense)
        source = dense
        for level in range(1, method.imp_levels + 1):
            scoring = make_ticket(config, run, source, data, file=f"scores_level{level}.json")
            log(f"imp level {level}/{method.imp_levels}: {100 * scoring.ticket.details['sparsity']:.2f} % of the "
                f"kernel weights pruned")
            ticket, recipe = rewound_ticket(config, dense_run, source, scoring.ticket, data)
            name = "ticket" if level == method.imp_levels else f"level{level}"
            keras.utils.set_random_seed(config.seed)  # the dense run's data order and augmentation
            training = train_or_load(config, run, ticket, data, name, recipe=recipe, fit=fit)
            source = ticket
        return record_run(config, run, data, ticket, training, scoring, dense_record, dense_run,
                          rewind_record(method, recipe))
