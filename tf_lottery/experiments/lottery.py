"""``lottery``: the paper's Algorithm 1, layer tickets of a *trained* network with rewinding.

1. Train the dense network for n epochs from θ0, keeping θ_i, its weights after
   ``rewind_epoch`` = i epochs (θ0 itself when i = 0), in the dense run folder shared by
   every run of the seed (:mod:`tf_lottery.experiments.dense`; ``keep_epochs`` keeps more).
   With ``rewind_step`` = k instead, it keeps θ_k, the weights after k optimizer steps
   (Frankle et al. 2020 rewind to an iteration; open_lth's ``rewinding_steps``), and the
   ticket trains the recipe's remaining steps with the schedule resumed at step k.
2. Score the trained network's blocks with ``criterion`` (the paper's Table 1 uses the
   after-training criteria hrank, expectabs, pls, kl, and random) and remove p blocks.
3. Give the ticket its starting weights, by ``rewind``:
   * ``weights`` (default; Algorithm 1 as written, Renda et al.'s *weight rewinding*):
     the kept layers take their θ_i values, bit for bit, and train n - i epochs with the
     learning-rate schedule resumed at epoch i;
   * ``lr`` (Renda et al.'s *learning-rate rewinding*, the paper's other reading): the
     kept layers keep their trained θ_n values and train n - i epochs with the schedule
     replayed from epoch i;
   * ``reinit`` (Liu et al. 2019): a fresh random initialization (seed + 1) trained for
     the full n epochs.
4. Train the ticket for the recipe's remaining length, by ``heal``: on the labels (``finetune``,
   the default), or on the trained dense network's logits and, with ``heal_hidden``, its kept blocks'
   hidden states (``distil``; :mod:`tf_lottery.training.healing`).
5. Compare with the dense network, record and export as ``init_ticket`` does.

The paper does not state the density p of its Table 1: ``num_blocks`` is a flag, default
2 like the quick demo, and the Table 1 flagfiles choose p = 3.
"""

from __future__ import annotations

import keras

from tf_lottery import tickets
from tf_lottery.config import Config
from tf_lottery.experiments.dense import check_kept, theta_file, theta_step_file, train_dense
from tf_lottery.config.experiments import register
from tf_lottery.experiments.finished import already_done, started
from tf_lottery.experiments.fitting import train_or_load
from tf_lottery.experiments.preparing import dense_model, set_up, steps_per_epoch
from tf_lottery.experiments.recording import record_run
from tf_lottery.experiments.scoring import make_ticket, plot_scores
from tf_lottery.core.log import log
from tf_lottery.results.records import Rewind, RunRecord
from tf_lottery.experiments.runs import RunFolder
from tf_lottery.training import NO_WARMUP, healing


def rewound_ticket(config: Config, dense_run: RunFolder, trained_dense, decision, data):
    """The ticket with its starting weights for ``config.method.rewind`` (see the module docstring).

    Args:
        decision: What the method chose on the trained network (a ``TicketRecord``); it is
            applied to the weights the rewind mode starts from.

    Returns:
        ``(ticket, recipe)``: the untrained ticket and the recipe it trains with.
    """
    method = config.method
    apply = tickets.get(method.type).apply
    if method.rewind == "reinit":
        fresh = dense_model(config, data, seed=config.seed + 1)
        return apply(fresh, decision, method), config.training.recipe()
    recipe = rewound_recipe(config, data)
    if method.rewind == "lr":
        return apply(trained_dense, decision, method), recipe
    rewound = dense_model(config, data)
    rewound.load_weights(dense_run.file(theta_step_file(method.rewind_step) if method.rewind_step
                                        else theta_file(method.rewind_epoch)))
    return apply(rewound, decision, method), recipe


def rewound_recipe(config: Config, data):
    """The recipe a rewound ticket trains with: ``config``'s, resumed at the rewind epoch or step.

    Raises:
        ValueError: for a rewind point outside the training (or an epoch with lengths in steps).
    """
    recipe, method = config.training.recipe(), config.method
    if method.rewind_step:
        return recipe.resumed_at_step(method.rewind_step, steps_per_epoch(config, data))
    return recipe.resumed_at(method.rewind_epoch)


def rewind_point(method) -> str:
    """``"epoch i"`` or ``"step k"``: where ``method`` rewinds to, for logs."""
    return f"step {method.rewind_step}" if method.rewind_step else f"epoch {method.rewind_epoch}"


def rewinding_run(config: Config) -> tuple:
    """``(run folder, its record if it already finished, else None)`` of an experiment that rewinds.

    Raises:
        ValueError: before anything is written, for a rewind epoch outside the training or
            lengths in steps (a rewind step is checked on the data, by :func:`check_rewind`).
    """
    config.training.recipe().resumed_at(config.method.rewind_epoch)
    run = RunFolder(config, "ticket")
    return run, already_done(config, run)


def check_rewind(config: Config, data) -> None:
    """Checks the rewind point and every kept epoch and step against the data (before anything
    is written).

    Raises:
        ValueError: naming the rewind step (or kept one) and the steps the training has.
    """
    rewound_recipe(config, data)
    check_kept(config, data)


def rewind_record(method, recipe) -> Rewind:
    """How a rewound ticket started: the rewind mode, epoch or step, and the recipe it trained with."""
    return Rewind(method.rewind, method.rewind_epoch, {
        "length": recipe.length, "learning_rate": recipe.learning_rate, "lr_drops": list(recipe.lr_drops),
        **({"warmup": recipe.warmup, "warmup_start": recipe.warmup_start} if recipe.warmup != NO_WARMUP else {})},
        step=method.rewind_step)


def ticket_trainer(config: Config, trained_dense):
    """How the ticket trains its recipe, by ``--heal``: the method's own training on the labels
    (``finetune``), or distillation from ``trained_dense`` (``distil``,
    :func:`tf_lottery.training.healing.distil_trainer`: the same length, optimizer, data and epoch
    checkpoints)."""
    method = config.method
    if method.heal == "distil":
        return healing.distil_trainer(trained_dense, method.heal_temperature, method.heal_hidden)
    return tickets.get(method.type).trainer()


@register("lottery", scope="ticket", sweepable=True, rewinds=True)
def lottery(config: Config) -> RunRecord:
    """Runs Algorithm 1 (see the module docstring) and returns the run record (result.json).

    Raises:
        ValueError: for a rewind epoch outside the training length or lengths in steps.

    Example:
        $ tf-lottery --experiment=lottery --criterion=kl --rewind=weights --rewind_epoch=1
    """
    method = config.method
    run, done = rewinding_run(config)
    if done is not None:
        return done
    data, dense = set_up(config)  # every check, before the first file is written
    check_rewind(config, data)
    with started(config, run) as finished:
        if finished is not None:  # another process finished it while this one waited
            return finished
        dense_record, dense_run = train_dense(config, data, dense)  # keeps θ_i (θ_k) in the dense run folder
        scoring = make_ticket(config, run, dense, data)
        plot_scores(config, run, dense, scoring)

        ticket, recipe = rewound_ticket(config, dense_run, dense, scoring.ticket, data)
        log(f"ticket: rewind={method.rewind}, {rewind_point(method)}, trains {recipe.length} "
            f"from learning rate {recipe.learning_rate:g}")
        keras.utils.set_random_seed(config.seed)
        training = train_or_load(config, run, ticket, data, "ticket", recipe=recipe, fit=ticket_trainer(config, dense))
        return record_run(config, run, data, ticket, training, scoring, dense_record, dense_run,
                          rewind_record(method, recipe))
