"""``lottery``: the paper's Algorithm 1, layer tickets of a *trained* network with rewinding.

1. Train the dense network for n epochs from θ0, keeping θ_i, its weights after
   ``rewind_epoch`` = i epochs (θ0 itself when i = 0), in the dense run folder shared by
   every run of the seed (:mod:`tf_lottery.experiments.dense`; ``keep_epochs`` keeps more).
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
4. Compare with the dense network, record and export as ``init_ticket`` does.

The paper does not state the density p of its Table 1 (paper.md §1.3): ``num_blocks``
is a flag, default 2 like the quick demo, and the Table 1 flagfiles will state theirs.
"""

from __future__ import annotations

import keras

from tf_lottery import models, surgery
from tf_lottery.config import Config
from tf_lottery.experiments.dense import theta_file, train_dense
from tf_lottery.experiments.registry import EXPERIMENTS
from tf_lottery.experiments.stages import (
    already_done, log, plot_scores, record_run, score_blocks, set_up, train_or_load,
)
from tf_lottery.runs import RunFolder


def rewound_ticket(config: Config, dense_run: RunFolder, trained_dense, removed, input_shape, num_classes):
    """The ticket with its starting weights for ``config.rewind`` (see the module docstring).

    Returns:
        ``(ticket, recipe)``: the untrained ticket and the recipe it trains with.
    """
    builder = models.get(config.model)
    if config.rewind == "reinit":
        fresh = builder(**{**config.model_kwargs(input_shape, num_classes), "seed": config.seed + 1})
        return surgery.remove_blocks(fresh, removed, config.min_blocks_per_stage), config.recipe()
    recipe = config.recipe().resumed_at(config.rewind_epoch)
    if config.rewind == "lr":
        return surgery.remove_blocks(trained_dense, removed, config.min_blocks_per_stage), recipe
    rewound = builder(**config.model_kwargs(input_shape, num_classes))
    rewound.load_weights(dense_run.file(theta_file(config.rewind_epoch)))
    return surgery.remove_blocks(rewound, removed, config.min_blocks_per_stage), recipe


@EXPERIMENTS.register("lottery")
def lottery(config: Config) -> dict:
    """Runs Algorithm 1 (see the module docstring) and returns result.json's content.

    Raises:
        ValueError: for a rewind epoch outside the training length or lengths in steps.

    Example:
        $ tf-lottery --experiment=lottery --criterion=kl --rewind=weights --rewind_epoch=1
    """
    config.recipe().resumed_at(config.rewind_epoch)  # fail before anything is written
    run = RunFolder(config)
    done = already_done(run)
    if done is not None:
        return done
    data, dense = set_up(config, run)
    dense_record, dense_run = train_dense(config, data, dense)  # keeps θ_i in the dense run folder
    scored = score_blocks(config, run, dense, data)
    plot_scores(config, run, dense, scored)

    ticket, recipe = rewound_ticket(config, dense_run, dense, scored["ticket"]["removed"], data.input_shape,
                                    data.num_classes)
    log(f"ticket: rewind={config.rewind}, epoch {config.rewind_epoch}, trains {recipe.length} "
        f"from learning rate {recipe.learning_rate:g}")
    keras.utils.set_random_seed(config.seed)
    trained = train_or_load(config, run, ticket, data, "ticket", recipe=recipe)
    rewind = {"rewind": {"mode": config.rewind, "epoch": config.rewind_epoch, "ticket_recipe": {
        "length": recipe.length, "learning_rate": recipe.learning_rate, "lr_drops": list(recipe.lr_drops)}}}
    return record_run(config, run, data, ticket, trained, scored, dense_record, dense_run, rewind)
