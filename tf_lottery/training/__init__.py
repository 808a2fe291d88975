"""Layer 4, training by one recipe: :mod:`~tf_lottery.training.recipe` (the frozen recipe and
lengths), :mod:`~tf_lottery.training.schedules` (the serializable warm-up),
:mod:`~tf_lottery.training.loop` (``fit``, ``evaluate``, callbacks),
:mod:`~tf_lottery.training.resume` (the crash-safe epoch checkpoint) and
:mod:`~tf_lottery.training.language` (the causal-LM recipe: AdamW, warmed-up cosine, next-token loss) and
:mod:`~tf_lottery.training.healing` (healing a ticket: distillation from the dense model, ReplaceMe's linear
replacement of a removed span).

Reached as ``tl.train`` too (its name before 0.8).

Example:
    >>> recipe = tl.train.Recipe(length="3ep", batch_size=64)
    >>> tl.train.compile_model(ticket, recipe, steps_per_epoch=100)
    >>> outcome = tl.train.fit(ticket, data, recipe, workdir="runs/mine", name="ticket")
"""

from tf_lottery.training import healing, language, resume  # noqa: F401
from tf_lottery.training.healing import LinearReplacement, distil, kl_to_teacher, replace_linear
from tf_lottery.training.loop import (
    SaveWeightsAt, TrainingDiverged, check_fits, check_lengths, compile_model, evaluate, fit, make_deterministic, read_history,
)
from tf_lottery.training.recipe import NO_WARMUP, Recipe, parse_length, to_steps
from tf_lottery.training.schedules import LinearWarmup, warmup_class, warmup_factor, warmup_schedule

__all__ = [
    "LinearReplacement", "LinearWarmup", "NO_WARMUP", "Recipe", "SaveWeightsAt", "TrainingDiverged", "check_fits", "check_lengths", "compile_model",
    "distil", "evaluate", "fit", "healing", "kl_to_teacher", "language", "replace_linear", "make_deterministic", "parse_length", "read_history", "resume", "to_steps",
    "warmup_class", "warmup_factor", "warmup_schedule",
]
