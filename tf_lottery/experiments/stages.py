"""Deprecated alias (0.10, removed in 0.11): the stages of an experiment now live one concern per module.

=====================  ==================================================================
module                 what it holds
=====================  ==================================================================
``preparing``          ``set_up``, ``dense_model``, ``check_data``, ``check_execution``, ``steps_per_epoch``
``scoring``            ``make_ticket``, ``plot_scores``
``fitting``            ``train_or_load``, ``trained_dense``, ``restore_history``
``measuring``          ``measure``, ``has_evals``
``publishing``         ``save_export``, ``export_options``, ``publish``, ``ticket_metadata``, ``dense_metadata``
``recording``          ``record_run``, ``write_summary``, ``theta_zero``, ``dense_input``
``finished``           ``started``, ``already_done``
=====================  ==================================================================

Import from those modules (``from tf_lottery.experiments.fitting import train_or_load``); this module
re-exports their names for one release and warns once when imported.

Example:
    >>> from tf_lottery.experiments.preparing import set_up   # not ...stages
"""

import warnings

from tf_lottery.experiments.finished import already_done, started
from tf_lottery.experiments.fitting import restore_history, trained_dense, train_or_load
from tf_lottery.experiments.measuring import has_evals, measure
from tf_lottery.experiments.preparing import check_data, check_execution, dense_model, set_up, steps_per_epoch
from tf_lottery.experiments.publishing import dense_metadata, export_options, publish, save_export, ticket_metadata
from tf_lottery.experiments.recording import dense_input, record_run, theta_zero, write_summary
from tf_lottery.experiments.scoring import make_ticket, plot_scores

warnings.warn("tf_lottery.experiments.stages is deprecated and will be removed in 0.11: import from "
              "tf_lottery.experiments.preparing, scoring, fitting, measuring, publishing, recording or finished "
              "(the module docstring says which holds what)", DeprecationWarning, stacklevel=2)

__all__ = ["already_done", "check_data", "check_execution", "dense_input", "dense_metadata", "dense_model",
           "export_options", "has_evals", "make_ticket", "measure", "plot_scores", "publish", "record_run",
           "restore_history", "save_export", "set_up", "started", "steps_per_epoch", "theta_zero", "ticket_metadata",
           "train_or_load", "trained_dense", "write_summary"]
