"""What is measured on a trained model: one registry of evaluations, each cached.

An evaluation is ``(model, data, evaluation_config) -> JSON-ready dict``, plus the part
of the evaluation config its result depends on (its *settings*). :func:`run_cached`
keeps each result in the run folder (``evals/<model>/<name>.json``, with its settings):
a rerun computes only what is missing or was measured with other settings, and adding
an evaluation to ``--evals`` never retrains anything. The first entries:

* ``clean``: loss and accuracy on the test split;
* ``cost``: params, FLOPs, conv filters and memory (computed from the graph);
* ``latency``: measured inference time per batch size (median after warm-up).

Example:
    >>> tl.evals.get("cost")(model, data, config.evaluation)["flops"]
    31021952
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Dict

from tf_lottery.registry import Registry

EVALS: Registry = Registry("evaluation")


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """A registered evaluation.

    Attributes:
        name: Registry name (a value of ``--evals``).
        fn: ``(model, data, evaluation_config) -> dict``.
        settings: ``(evaluation_config) -> dict``: what the result depends on besides the
            model and the data; a cached result with other settings is measured again.
        summary: One line for listings.
    """

    name: str
    fn: Callable
    settings: Callable
    summary: str

    def __call__(self, model, data, evaluation_config) -> dict:
        return self.fn(model, data, evaluation_config)


def register(name: str, *, settings: Callable = lambda config: {}, summary: str):
    """Decorator registering ``fn`` as an :class:`Evaluation`."""

    return EVALS.entry(name, lambda fn: Evaluation(name, fn, settings, summary))


def get(name: str) -> Evaluation:
    """Returns the evaluation registered as ``name`` (the error lists the valid names)."""
    return EVALS.get(name)


def run_cached(model, data, evaluation_config, run, side: str, log=print) -> Dict[str, dict]:
    """Runs every evaluation of ``evaluation_config.evals`` on ``model``, cached in ``run``.

    Args:
        model: The trained (compiled) model.
        data: Prepared data.
        evaluation_config: A :class:`tf_lottery.config.EvaluationConfig`.
        run: The run folder (:class:`tf_lottery.runs.RunFolder`) the results belong to.
        side: Which model of the run ("dense", "ticket"): names the cache folder.
        log: Called with one line per evaluation actually computed.

    Returns:
        ``{evaluation name: result}``, in the order of ``evals``.
    """
    results = {}
    for name in evaluation_config.evals:
        entry = EVALS.get(name)
        settings = entry.settings(evaluation_config)
        path = f"evals/{side}/{name}.json"
        cached = run.read_json(path)
        if cached is not None and cached.get("settings") == settings:
            results[name] = cached["result"]
            continue
        log(f"{side}: evaluating {name}")
        results[name] = entry(model, data, evaluation_config)
        run.write_json(path, {"settings": settings, "result": results[name]})
    return results


from tf_lottery.evals import standard  # noqa: E402,F401  (importing registers the evaluations)

__all__ = ["EVALS", "Evaluation", "get", "register", "run_cached"]
