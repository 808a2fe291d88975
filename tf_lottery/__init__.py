"""tf_lottery: layer lottery tickets at initialization, in Keras 3.

The packages stand in layers, each importing only from the layers below it (checked by
import-linter in the test command; see the README's architecture section):

    cli
    experiments                       experiments, stages, run folders
    reports                           run table, sweep/compare/robustness reports, plots, stats
    config                            sections and flags; the experiment registry
    tickets                           find_ticket and the method registry
    evals | legacy | results          evaluations; tf_keras/tfmot; typed records
    models | training | criteria      builders; recipe, fit, resume; scorers
    runtime | surgery | export        strategy, precision, carbon; blocks, filters; SavedModel
    graph | data                      graph reader, heads, lineage, rewire, cost; datasets
    core                              registry, options, io, log, faults

This module is the public face over them: ``tl.models``, ``tl.surgery``, ``tl.criteria``,
``tl.find_ticket`` and the rest, plus the module names of 0.7 that moved (``tl.train`` is
:mod:`tf_lottery.training`, ``tl.methods`` is :mod:`tf_lottery.tickets`, ``tl.cost`` is
:mod:`tf_lottery.graph.cost`, ...).

Example:
    >>> import tf_lottery as tl
    >>> model = tl.models.cifar_resnet(depth=32, num_classes=10, seed=0)
    >>> ticket = tl.surgery.remove_blocks(model, ["stage1_block2"])
"""

from tf_lottery.core.quiet import quiet_tensorflow_startup

quiet_tensorflow_startup()  # before any import of TensorFlow: its C++ start-up lines stay off the terminal

import importlib  # noqa: E402

# Keras classes a saved model may name (the warm-up schedule): registered on import, so that
# keras.models.load_model finds them after a bare ``import tf_lottery``.
from tf_lottery.training import schedules as _schedules  # noqa: E402,F401

# The public face resolves lazily (PEP 562): ``import tf_lottery`` loads no package until one is used, so a
# user who needs ``tl.surgery`` never pays for matplotlib (reports), scikit-learn (criteria) or keras_hub.
_MODULES = {
    "config": "tf_lottery.config", "core": "tf_lottery.core", "criteria": "tf_lottery.criteria",
    "data": "tf_lottery.data", "evals": "tf_lottery.evals", "experiments": "tf_lottery.experiments",
    "export": "tf_lottery.export", "graph": "tf_lottery.graph", "legacy": "tf_lottery.legacy",
    "models": "tf_lottery.models", "reports": "tf_lottery.reports", "results": "tf_lottery.results",
    "runtime": "tf_lottery.runtime", "surgery": "tf_lottery.surgery", "tickets": "tf_lottery.tickets",
    "training": "tf_lottery.training", "registry": "tf_lottery.core.registry", "serving": "tf_lottery.export.serving",
    "cost": "tf_lottery.graph.cost", "paper": "tf_lottery.reports.paper", "stats": "tf_lottery.reports.stats",
    "curves": "tf_lottery.results.curves", "records": "tf_lottery.results.records",
    "carbon": "tf_lottery.runtime.carbon", "distribute": "tf_lottery.runtime.distribute",
    "filters": "tf_lottery.surgery.filters", "resume": "tf_lottery.training.resume",
    # The 0.7 names of packages that were renamed (their old import paths are in the README's upgrade notes).
    "methods": "tf_lottery.tickets", "train": "tf_lottery.training",
}
_OBJECTS = {"Config": ("tf_lottery.config", "Config"), "TicketResult": ("tf_lottery.tickets", "TicketResult"),
            "find_ticket": ("tf_lottery.tickets", "find_ticket")}


def __getattr__(name: str):
    if name in _MODULES:
        value = importlib.import_module(_MODULES[name])  # tl.surgery.rebuild and the like resolve in their modules
    elif name in _OBJECTS:
        module, attribute = _OBJECTS[name]
        value = getattr(importlib.import_module(module), attribute)
    else:
        raise AttributeError(f"module 'tf_lottery' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))


#: The version of tf_lottery (PEP 440).
__version__ = "0.10.0.dev0"
__all__ = [
    "Config", "TicketResult", "carbon", "config", "core", "cost", "criteria", "curves", "data", "distribute", "evals",
    "experiments", "export", "filters", "find_ticket", "graph", "legacy", "methods", "models", "paper", "records",
    "registry", "reports", "results", "resume", "runtime", "serving", "stats", "surgery", "tickets", "train",
    "training", "__version__",
]
