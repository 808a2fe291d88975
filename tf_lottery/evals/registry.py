"""What is measured on a trained model: one registry of evaluations, each cached.

An evaluation is ``(model, data, evaluation_config) -> JSON-ready dict``, plus the part
of the evaluation config its result depends on (its *settings*). :func:`run_cached`
keeps each result in the run folder (``evals/<model>/<name>.json``, with its settings):
a rerun computes only what is missing or was measured with other settings, and adding
an evaluation to ``--evals`` never retrains anything. The first entries:

* ``clean``: loss and accuracy on the test split;
* ``cost``: params, FLOPs, conv filters and memory (computed from the graph);
* ``latency``: measured inference time per batch size (median after warm-up);
* ``corruptions``: accuracy under the in-graph common corruptions, per corruption and
  severity (:mod:`tf_lottery.evals.corruptions`);
* ``shift_sets``: accuracy on the published corruption and shift sets of the dataset
  (CIFAR-10-C, CIFAR-10.1, CIFAR-10.2, MNIST-C; :mod:`tf_lottery.evals.shift_sets`);
* ``adversarial``: accuracy under FGSM and PGD per epsilon (:mod:`tf_lottery.evals.adversarial`);
* ``cka``: linear CKA between the dense network and the ticket (a *pairwise* evaluation:
  it runs on tickets only, with the dense network as reference; :mod:`tf_lottery.evals.cka`).

Public functions for users' own arrays sit beside the entries: :func:`corrupt`,
:func:`attack`, :func:`linear_cka`.

Example:
    >>> tl.evals.get("cost")(model, data, config.evaluation)["flops"]
    31021952
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Dict, Optional

from tf_lottery.core.registry import Registry

#: The evaluation registry (``--evals``): :func:`get` an :class:`Evaluation` by name.
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
        pairwise: Whether it compares the model with a reference (the dense network): then
            ``fn`` takes ``reference`` too, and runs on tickets only.
        tasks: The ``--task`` values it measures ("classify", "causal_lm").
        options: A frozen dataclass declaring the flags it reads (``--severities``), composed into the
            evaluation section of the config, or None. A classmethod ``check_values(values)`` refuses a
            combination the single declarations cannot. (``settings`` is what a cached result depends
            on; ``options`` is what a user sets.)

    Example:
        >>> get("cka").pairwise, get("cost").settings(config.evaluation)
        (True, {'memory_batch_size': 128})
        >>> get("cost")(model, data, config.evaluation)["flops"]
    """

    name: str
    fn: Callable
    settings: Callable
    summary: str
    pairwise: bool = False
    tasks: tuple = ("classify",)
    options: Optional[type] = None

    def __call__(self, model, data, evaluation_config, reference=None) -> dict:
        """Measures ``model`` (against ``reference``, the dense network, when pairwise)."""
        if self.pairwise:
            return self.fn(model, data, evaluation_config, reference)
        return self.fn(model, data, evaluation_config)


def register(name: str, *, settings: Callable = lambda config: {}, summary: str, pairwise: bool = False,
             tasks: tuple = ("classify",), options: Optional[type] = None):
    """Decorator registering ``fn`` as an :class:`Evaluation`.

    Args:
        name: The ``--evals`` value.
        settings: ``(evaluation_config) -> dict``: what the result depends on besides the model and data.
        summary: One line for listings.
        pairwise: Whether it compares a ticket with the trained dense network.
        tasks: The ``--task`` values it measures (default: classify).
        options: The frozen dataclass of the flags it reads (see :class:`Evaluation`).

    Returns:
        The decorator, which registers the function and returns it.

    Raises:
        ValueError: for a name registered already.

    Example:
        >>> @register("size", summary="parameter count", tasks=("classify", "causal_lm"))
        ... def size(model, data, evaluation_config):
        ...     return {"params": model.count_params()}
    """

    return EVALS.entry(name, lambda fn: Evaluation(name, fn, settings, summary, pairwise, tuple(tasks), options))


def options_classes() -> list:
    """The options classes of the registered evaluations, in name order (each once), for the config's
    evaluation section (:func:`tf_lottery.core.options.compose`).

    Returns:
        The classes.

    Example:
        >>> [cls.__name__ for cls in options_classes()][:2]
        ['AttackOptions', 'CkaOptions']
    """
    return EVALS.declared("options")


def wanted(evaluation_config, side: str) -> list:
    """The evaluations of ``--evals`` that apply to one model of a run.

    Args:
        evaluation_config: A :class:`tf_lottery.config.EvaluationConfig`.
        side: "dense" (no pairwise evaluation applies) or "ticket".

    Returns:
        Their names, in the order of ``--evals``.

    Example:
        >>> config = Config.create(evals=("clean", "cost", "cka"))
        >>> wanted(config.evaluation, "dense"), wanted(config.evaluation, "ticket")
        (['clean', 'cost'], ['clean', 'cost', 'cka'])
    """
    return [name for name in evaluation_config.evals if side != "dense" or not EVALS.get(name).pairwise]


def needs_reference(evaluation_config) -> bool:
    """Whether a ticket's evaluations need the trained dense network (a pairwise one is asked for).

    Args:
        evaluation_config: A :class:`tf_lottery.config.EvaluationConfig`.

    Returns:
        True when ``--evals`` names a pairwise evaluation.

    Example:
        >>> needs_reference(Config.create(evals=("clean", "cka")).evaluation)
        True
    """
    return any(EVALS.get(name).pairwise for name in evaluation_config.evals)


def get(name: str) -> Evaluation:
    """Returns the evaluation registered as ``name``.

    Args:
        name: An evaluation's name (``EVALS.names()``).

    Returns:
        Its :class:`Evaluation`.

    Raises:
        UnknownNameError: for a name that is not registered (listing the valid names).

    Example:
        >>> get("corruptions").summary
    """
    return EVALS.get(name)


def _cache_entry(payload: dict) -> dict:
    """An evaluation cache file's ``{"settings", "result"}``, or KeyError when either is missing."""
    return {"settings": payload["settings"], "result": payload["result"]}


def run_cached(model, data, evaluation_config, run, side: str, log=print, reference=None) -> Dict[str, dict]:
    """Runs every evaluation of ``evaluation_config.evals`` on ``model``, cached in ``run``.

    Args:
        model: The trained (compiled) model.
        data: Prepared data.
        evaluation_config: A :class:`tf_lottery.config.EvaluationConfig`.
        run: The run folder (:class:`tf_lottery.experiments.runs.RunFolder`) the results belong to.
        side: Which model of the run ("dense", "ticket"): names the cache folder.
        log: Called with one line per evaluation actually computed.
        reference: The trained dense network, for pairwise evaluations (skipped without it).

    Returns:
        ``{evaluation name: result}``, in the order of ``evals``.

    Example:
        >>> results = run_cached(ticket, data, config.evaluation, run, "ticket", reference=dense)
        >>> results["clean"]["accuracy"]
    """
    results = {}
    for name in wanted(evaluation_config, side):
        entry = EVALS.get(name)
        settings = entry.settings(evaluation_config)
        path = f"evals/{side}/{name}.json"
        cached = run.read_json(path, _cache_entry, recompute=True)  # a damaged cache is measured again
        if cached is not None and cached["settings"] == settings:
            results[name] = cached["result"]
            continue
        if entry.pairwise and reference is None:
            continue
        log(f"{side}: evaluating {name}")
        results[name] = entry(model, data, evaluation_config, reference)
        run.write_json(path, {"settings": settings, "result": results[name]})
    return results
