"""Preparing a run: the data, the dense network at θ0, and every check that can be made before a run
writes its first file (the data against the config, the method against the model and the execution).

Example:
    >>> data, dense = set_up(config)   # raises ValueError naming the flag before anything is written
"""

from __future__ import annotations

import importlib.util
from typing import Optional

import keras

from tf_lottery import export, legacy, models, surgery, tickets, training
from tf_lottery.config import Config
from tf_lottery.core import keras_internals
from tf_lottery.core.log import log
from tf_lottery.data import TextData, prepare
from tf_lottery.evals.robustness import check_shift_sets
from tf_lottery.export import serving
from tf_lottery.experiments.publishing import check_hf_dir, check_hf_model
from tf_lottery.runtime import distribute


def dense_model(config: Config, data, seed: Optional[int] = None) -> keras.Model:
    """The dense network of ``config`` at initialization (θ0 of ``seed``, default the config's),
    with ``--residual_layers`` declared on it.

    Raises:
        ValueError: for a model of several outputs (a dataset gives one label per image), a
            language run's model that does not take token ids and a padding mask, or a declared
            residual layer the model does not have or that changes shape.
    """
    # A language model's weight decay is AdamW's, decoupled (GPT-2's, nanoGPT's): no L2 on top of it.
    l2 = 0.0 if config.data.task == "causal_lm" else config.training.weight_decay
    model = models.build(config.model, data, seed=config.seed if seed is None else seed, weight_decay=l2)
    takes = export.language.input_names(model)
    if config.data.task == "causal_lm" and takes != sorted(export.language.INPUTS):
        raise ValueError(f"--model={config.model.type} builds {model.name!r}, which takes {takes}; --task=causal_lm "
                         f"trains a language model that takes {list(export.language.INPUTS)} and returns next-token "
                         "logits (a keras_hub *CausalLM with preprocessor=None, say)")
    if len(model.outputs) != 1:
        names = ", ".join(keras_internals.producer_name(t) for t in model.outputs)
        raise ValueError(
            f"--model={config.model.type} builds a model of {len(model.outputs)} outputs ({names}); the command line "
            "trains, scores and evaluates a model of one output against the dataset's labels: return one output "
            "from the function (a --model_args switch, say), or use the Python API, whose criteria score a named "
            "output (output=) or labels for every output, and whose exports keep every head")
    if config.method.residual_layers:
        surgery.find_blocks(model, residual_layers=config.method.residual_layers)
    return model


def set_up(config: Config, check_method: bool = True):
    """Loads the data, builds the dense θ0 and checks everything that can be checked before a
    run writes its first file.

    Args:
        check_method: Whether to check the ticket method against the model (not for a dense run).

    Returns:
        ``(data, dense)``.

    Raises:
        ValueError: for a value the data or the model refuses (too many blocks, a batch larger
            than the training split, an input shape or class count the data does not have).
    """
    keras.utils.set_random_seed(config.seed)
    log(f"loading {config.data.dataset}")
    data = prepare(config.data_options(), config.data_mean_dir())
    check_data(config, data)
    dense = dense_model(config, data)
    if config.runtime.hf_dir:
        check_hf_model(dense)
    if check_method:
        tickets.get(config.method.type).check(dense, config.method)
        check_execution(config.method.type)
    return data, dense


def check_execution(method_name: str) -> None:
    """Refuses a method the current execution cannot train (before anything is written).

    Raises:
        ImportError: for a tfmot method without the baselines extra (one line naming it).
        ValueError: for a tfmot method (its own training loop, in tf_keras) under several
            replicas or mixed precision.
    """
    method, execution = tickets.get(method_name), distribute.current()
    if method.fit is not None:
        legacy.require_baselines(f"--method={method.name}")
    if method.fit is not None and (execution.replicas > 1 or execution.precision != "float32"):
        raise ValueError(f"--method={method.name} trains its tickets with tfmot (tf_keras), which tf_lottery runs "
                         f"on one device in float32; got {execution.describe()}: drop --strategy and "
                         "--precision (or --mixed_precision) for it")


def steps_per_epoch(config: Config, data) -> int:
    """Optimizer steps in one epoch of ``config``'s training on ``data`` (the global batch under
    several replicas).

    Raises:
        ValueError: if the training split is smaller than one batch.
    """
    return training.check_fits(distribute.current().global_recipe(config.training.recipe()), data.size("train"))


def check_data(config: Config, data) -> None:
    """Checks the config against the prepared data (before anything is written).

    Raises:
        ValueError: naming the flag, its value and what the data allows.
    """
    training.check_lengths(distribute.current().global_recipe(config.training.recipe()), steps_per_epoch(config, data))
    if config.runtime.serving_dir:
        serving.check_serving_dir(config.runtime.serving_dir)
    if config.runtime.hf_dir:
        check_hf_dir(config, isinstance(data, TextData))
    if config.runtime.tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise ValueError("--tensorboard writes logs through the tensorboard package, which is not installed: "
                         "pip install 'tf_lottery[tensorboard]' (or drop --tensorboard)")
    if "shift_sets" in config.evaluation.evals:  # a set of another dataset, or one not on this machine
        check_shift_sets(config.evaluation, config.data.dataset)
    classes = config.model.num_classes
    if classes is not None and classes < data.num_classes:
        raise ValueError(f"--num_classes={classes} but {config.data.dataset} has labels up to "
                         f"{data.num_classes - 1}; it needs at least {data.num_classes}")
