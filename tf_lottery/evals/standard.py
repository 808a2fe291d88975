"""The standard evaluations: clean test accuracy, cost from the graph, measured latency.

For text data (``--task=causal_lm``) each measures what it means for a language model
(:mod:`tf_lottery.evals.language`): held-out perplexity, FLOPs per token, tokens/s.
"""

from __future__ import annotations

import dataclasses

from tf_lottery.core.options import integer, integers
from tf_lottery.graph import cost
from tf_lottery import training
from tf_lottery.data import TextData
from tf_lottery.evals import language
from tf_lottery.evals.registry import register


@register("clean", summary="loss and accuracy on the test split", tasks=("classify", "causal_lm"))
def clean(model, data, evaluation_config) -> dict:
    """``{"loss", "accuracy", "examples"}`` of the compiled model on the test split (text: and perplexity)."""
    if isinstance(data, TextData):
        return language.text_clean(model, data)
    return training.evaluate(model, data, "test")


@dataclasses.dataclass(frozen=True)
class CostOptions:
    """The flag of ``--evals=cost``."""

    memory_batch_size: int = integer(128, "Batch size of the memory estimate.", lower_bound=1, upper_bound=2**31 - 1,
                                     why="the estimate is an int64 count of bytes")


@dataclasses.dataclass(frozen=True)
class LatencyOptions:
    """The flag of ``--evals=latency``."""

    latency_batch_sizes: tuple = integers((1, 128), "Batch sizes of the latency measurement.", lower_bound=1,
                                          upper_bound=65536, why="each batch is built in memory")


@register("cost", settings=lambda config: {"memory_batch_size": config.memory_batch_size}, options=CostOptions,
          summary="params, FLOPs, conv filters and memory, computed from the graph", tasks=("classify", "causal_lm"))
def cost_summary(model, data, evaluation_config) -> dict:
    """``{"params", "flops", "filters", "memory_bytes", "memory_batch_size"}`` (see :mod:`tf_lottery.graph.cost`);
    text: :func:`tf_lottery.evals.language.text_cost`."""
    if isinstance(data, TextData):
        return language.text_cost(model, data)
    return cost.summary(model, evaluation_config.memory_batch_size)


@register("latency", settings=lambda config: {"batch_sizes": list(config.latency_batch_sizes)}, options=LatencyOptions,
          summary="measured inference seconds per batch (median after warm-up), per batch size",
          tasks=("classify", "causal_lm"))
def latency(model, data, evaluation_config) -> dict:
    """``{batch size (str): {"median_s", "min_s", "max_s", "images_per_s", "repeats"}}`` (text: tokens_per_s)."""
    if isinstance(data, TextData):
        return language.text_latency(model, data, evaluation_config.latency_batch_sizes)
    return {str(k): v for k, v in cost.latency(model, evaluation_config.latency_batch_sizes).items()}
