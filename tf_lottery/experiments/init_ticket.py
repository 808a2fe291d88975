"""``init_ticket``: the paper's Algorithm 2, winning tickets at initialization, end to end.

1. Build the dense network with a seed (θ0) and load the data.
2. Score its blocks at initialization on a class-balanced labelled batch
   (``score_per_class`` examples of each class; GraSP's default is 10) and remove
   p blocks (``num_blocks`` or ``fraction``): the ticket inherits θ0.
3. Train dense and ticket with the same recipe from the same θ0, each inside its own
   timer and codecarbon tracker; evaluate both (``--evals``). The dense network is
   trained once per seed in its shared run folder (:mod:`tf_lottery.experiments.dense`).
4. Compare accuracy (percentage points; a winning ticket has ξ = 0, the paper's Eq. 1),
   params, FLOPs, memory, measured latency, training time and images/s, energy and CO2.
5. Write the run record (config.json, scores.json, history CSVs, result.json,
   emissions.csv, plots, summary.md) and export the ticket (the dense export is in the
   dense run folder).

Every stage leaves a file; a rerun of the same config skips what is done, and
the crash-safe epoch checkpoints of :mod:`tf_lottery.training.resume` resume a training that was
killed midway. The run folder is locked while the run works in it.
"""

from __future__ import annotations

import keras

from tf_lottery import tickets
from tf_lottery.config import Config
from tf_lottery.experiments.dense import train_dense
from tf_lottery.config.experiments import register
from tf_lottery.experiments.finished import already_done, started
from tf_lottery.experiments.fitting import train_or_load
from tf_lottery.experiments.preparing import set_up
from tf_lottery.experiments.recording import record_run
from tf_lottery.experiments.scoring import make_ticket, plot_scores
from tf_lottery.results.records import RunRecord
from tf_lottery.experiments.runs import RunFolder


@register("init_ticket", scope="ticket", sweepable=True)
def init_ticket(config: Config) -> RunRecord:
    """Runs Algorithm 2 (see the module docstring) and returns the run record (result.json).

    Example:
        $ tf-lottery                                   # the quick demo
        $ tf-lottery --flagfile=flags/cifar10_resnet56_grasp.cfg --num_blocks=12
    """
    run = RunFolder(config, "ticket")
    done = already_done(config, run)
    if done is not None:
        return done
    data, dense = set_up(config)  # every check, before the first file is written
    with started(config, run) as finished:
        if finished is not None:  # another process finished it while this one waited
            return finished
        scoring = make_ticket(config, run, dense, data)
        ticket = tickets.get(config.method.type).apply(dense, scoring.ticket, config.method)
        plot_scores(config, run, dense, scoring)
        dense_record, dense_run = train_dense(config, data, dense)
        keras.utils.set_random_seed(config.seed)  # the dense run's data order and augmentation
        training = train_or_load(config, run, ticket, data, "ticket",
                                 fit=tickets.get(config.method.type).trainer())
        return record_run(config, run, data, ticket, training, scoring, dense_record, dense_run)
