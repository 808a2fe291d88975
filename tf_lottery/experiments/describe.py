"""``describe``: a table of a model's residual blocks with their cost, and totals (a language model: its layers)."""

from __future__ import annotations

import keras

from tf_lottery import data, graph, surgery
from tf_lottery.graph import cost
from tf_lottery.evals.language import flops_per_token
from tf_lottery.config import Config
from tf_lottery.config.experiments import register
from tf_lottery.experiments.preparing import dense_model
from tf_lottery.reports.tables import markdown_table


def block_table(model) -> tuple[list, list]:
    """Rows (name, stage, removable, params, FLOPs, % of FLOPs) for each block of ``model``.

    Returns:
        ``(headers, rows)`` for :func:`tf_lottery.reports.tables.markdown_table`.
    """
    total = cost.flops(model)
    g = graph.analyse(model)
    rows = []
    for block in surgery.find_blocks(model):
        layers = [n for n in block.layers if isinstance(g.operations[n], keras.layers.Layer)]
        block_flops = sum(cost.operation_flops(g, n) for n in layers)
        rows.append([
            block.name,
            block.stage,
            "yes" if block.removable else "no",
            sum(g.operations[n].count_params() for n in layers),
            block_flops,
            f"{100 * block_flops / total:.3f}",
        ])
    return ["block", "stage", "removable", "params", "FLOPs", "% FLOPs"], rows


@register("describe", scope=None)
def describe(config: Config) -> dict:
    """Prints the block table and totals of the configured model; returns the totals.

    Example:
        $ tf-lottery --experiment=describe --depth=56 --dataset=cifar10
    """
    info = data.get(config.data.dataset)  # only its shapes: nothing is loaded
    model = dense_model(config, info)
    if config.data.task == "causal_lm":
        return describe_language_model(config, model)
    headers, rows = block_table(model)
    memory_batch = config.evaluation.memory_batch_size
    totals = cost.summary(model, memory_batch)
    totals.update(
        blocks=len(rows),
        removable=sum(r[2] == "yes" for r in rows),
        max_removable=surgery.max_removable(model, config.method.min_blocks_per_stage),
    )
    print(f"{model.name}: {model.output.shape[-1]} classes, input {tuple(model.input.shape[1:])}, "
          f"shortcut {getattr(config.model.settings, 'shortcut', 'n/a')}")
    print(markdown_table(headers, rows, align="lrlrrr"))
    print(markdown_table(
        ["total", "value"],
        [
            ["params", f"{totals['params']:,}"],
            ["FLOPs", f"{totals['flops']:,}"],
            ["conv filters", f"{totals['filters']:,}"],
            [f"memory (batch {memory_batch})", f"{totals['memory_bytes'] / 2**20:,.1f} MiB"],
            ["blocks", totals["blocks"]],
            ["removable blocks", totals["removable"]],
            [f"most removable ({config.method.min_blocks_per_stage} per stage kept)", totals["max_removable"]],
        ],
        align="lr",
    ))
    return totals


def describe_language_model(config: Config, model) -> dict:
    """``describe`` of a ``--task=causal_lm`` model: its layers (the blocks) with their params and
    FLOPs per token, and the model's params and FLOPs per token, at ``--sequence_length`` (a layer's
    FLOPs include its attention over the whole sequence, divided by the length; the share is of the
    whole model's, the embedding and the tied head included)."""
    length = config.data.sequence_length
    body = surgery.families.block_model(model)
    fixed = {name: keras.Input((length,), dtype="int32", name=name) for name in ("token_ids", "padding_mask")}
    _, rows = block_table(graph.flat(keras.Model(fixed, body(fixed))))
    totals = {"params": int(model.count_params()), "flops_per_token": flops_per_token(model, length),
              "blocks": len(rows), "removable": sum(r[2] == "yes" for r in rows),
              "max_removable": surgery.max_removable(body, config.method.min_blocks_per_stage)}
    totals["layer_flops_per_token"] = {r[0]: r[4] / length for r in rows}
    print(f"{model.name} ({type(model).__name__}): vocabulary {model.output.shape[-1]}, sequences of {length} tokens")
    print(markdown_table(["layer", "stage", "removable", "params", "FLOPs per token", "% FLOPs"],
                         [r[:4] + [f"{r[4] / length:,.0f}", f"{100 * r[4] / length / totals['flops_per_token']:.1f}"]
                          for r in rows], align="lrlrrr"))
    print(markdown_table(["total", "value"], [
        ["params", f"{totals['params']:,}"], [f"FLOPs per token (sequences of {length})", f"{totals['flops_per_token']:,.0f}"],
        ["layers", totals["blocks"]], ["removable layers", totals["removable"]],
        [f"most removable ({config.method.min_blocks_per_stage} per stage kept)", totals["max_removable"]],
    ], align="lr"))
    return totals
