"""The experiment config: :class:`Config`, in sections that declare their own flags.

Example:
    >>> from tf_lottery.config import Config
    >>> config = Config.create(depth=32, criterion="snip", num_blocks=3)
    >>> config.training.recipe().length
    '3ep'
"""

from tf_lottery.config.core import SCOPES, Config
from tf_lottery.config.experiments import EXPERIMENTS, Experiment
from tf_lottery.config.sections import (
    REWINDS, SCHEDULES, SECTIONS, DataConfig, EvaluationConfig, MethodConfig, ModelConfig, RuntimeConfig,
    SweepConfig, TrainingConfig,
)

__all__ = [
    "EXPERIMENTS", "Experiment", "REWINDS", "SCHEDULES", "SCOPES", "SECTIONS", "Config", "DataConfig", "EvaluationConfig", "MethodConfig",
    "ModelConfig", "RuntimeConfig", "SweepConfig", "TrainingConfig",
]
