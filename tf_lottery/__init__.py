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

from tf_lottery import (  # noqa: E402
    config, core, criteria, data, evals, experiments, export, graph, legacy, models, reports, results, runtime,
    surgery, tickets, training,
)
from tf_lottery.config import Config  # noqa: E402
from tf_lottery.core import registry  # noqa: E402
from tf_lottery.export import serving  # noqa: E402
from tf_lottery.graph import cost  # noqa: E402
from tf_lottery.reports import paper, stats  # noqa: E402
from tf_lottery.results import curves, records  # noqa: E402
from tf_lottery.runtime import carbon, distribute  # noqa: E402
from tf_lottery.surgery import filters  # noqa: E402
from tf_lottery.tickets import TicketResult, find_ticket  # noqa: E402
from tf_lottery.training import resume  # noqa: E402

# The 0.7 names of packages that were renamed (their old import paths are listed in the README's upgrade notes).
methods = tickets
train = training

# Names that 0.7 showed in a package that now stands below the one that defines them. They are
# attached here, at the public face, because the lower package may not import the higher one.
surgery.rebuild = models.rebuild  # tl.surgery.rebuild, where 0.1 had it
filters.filter_scores = criteria.filter_scores  # tl.filters.filter_scores: a criterion's per-filter form
filters.flat_scores = criteria.flat_scores

__version__ = "0.10.0.dev0"
__all__ = [
    "Config", "TicketResult", "carbon", "config", "core", "cost", "criteria", "curves", "data", "distribute", "evals",
    "experiments", "export", "filters", "find_ticket", "graph", "legacy", "methods", "models", "paper", "records",
    "registry", "reports", "results", "resume", "runtime", "serving", "stats", "surgery", "tickets", "train",
    "training", "__version__",
]
