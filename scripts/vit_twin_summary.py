"""The ViT twin's evidence: its sweep report, its rows, and which kind of half-block each criterion removes.

Reads a finished (or partly finished) sweep of ``flags/fashion_mnist_vit_twin.cfg`` and writes to
``--out`` (default ``benchmarks/results/fashion_mnist_vit_twin``):

* ``report.md`` and ``results.json``: the sweep's own report (Table 2 and Table 4 shapes, paired
  statistics and verdicts) and rows, copied;
* ``kinds.md`` and ``kinds.json``: per criterion and p, how many of the removed half-blocks are
  attention and how many MLP (summed over seeds), and the kind each criterion removes first (its
  p = 1 ticket); the FLOPs saved per kind follow from :mod:`tf_lottery.graph.cost`.

    python scripts/vit_twin_summary.py --sweep=runs/sweep-<hash>
"""

from __future__ import annotations

import collections
import json
import os
import shutil

from absl import app, flags

from tf_lottery.core.io import write_json_atomic, write_text_atomic
from tf_lottery.reports.tables import markdown_table

_SWEEP = flags.DEFINE_string("sweep", None, "The sweep's run folder.", required=True)
_OUT = flags.DEFINE_string("out", "benchmarks/results/fashion_mnist_vit_twin", "Output folder.")


def kind(block: str) -> str:
    """``attention`` or ``mlp``: the half-block kind of a ``tf_lottery.models.vit`` block name."""
    return "attention" if block.endswith("_attention") else "mlp"


def main(argv):
    del argv
    with open(os.path.join(_SWEEP.value, "results.json")) as handle:
        rows = json.load(handle)["rows"]
    os.makedirs(_OUT.value, exist_ok=True)
    for name in ("report.md", "results.json"):
        shutil.copyfile(os.path.join(_SWEEP.value, name), os.path.join(_OUT.value, name))
    counts = collections.defaultdict(collections.Counter)
    first = collections.defaultdict(collections.Counter)
    runs = os.path.dirname(os.path.abspath(_SWEEP.value))
    for row in rows:
        with open(os.path.join(runs, os.path.basename(row["run_folder"]), "result.json")) as handle:
            removed = json.load(handle)["ticket"]["removed"]
        counts[(row["criterion"], row["p"])].update(kind(b) for b in removed)
        if row["p"] == 1:
            first[row["criterion"]].update(kind(b) for b in removed)
    table = [[criterion, p, c["attention"], c["mlp"]] for (criterion, p), c in sorted(counts.items())]
    text = "\n".join([
        "# ViT twin: which half-blocks each criterion removes", "",
        f"From {len(rows)} tickets of `{os.path.basename(_SWEEP.value)}` (counts summed over seeds).", "",
        markdown_table(["criterion", "p", "attention removed", "MLP removed"], table, align="lrrr"), "",
        "First removed (the p = 1 ticket of each seed): "
        + "; ".join(f"{criterion}: {dict(c)}" for criterion, c in sorted(first.items())), ""])
    write_text_atomic(os.path.join(_OUT.value, "kinds.md"), text)
    write_json_atomic(os.path.join(_OUT.value, "kinds.json"), {
        "removed": {f"{criterion} p={p}": dict(c) for (criterion, p), c in sorted(counts.items())},
        "first": {criterion: dict(c) for criterion, c in sorted(first.items())}})
    print(text)


if __name__ == "__main__":
    app.run(main)
