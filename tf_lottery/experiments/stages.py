"""The stages experiments are made of: each reads and leaves files in a run folder.

``init_ticket``, ``lottery``, ``dense`` and ``sweep`` compose these: set up data and θ0,
score the blocks, train (or load) a model, measure it, compare ticket with dense, and
write the run record. Every stage leaves a file when done, so a rerun skips it.
"""

from __future__ import annotations

import time

import keras

from tf_lottery import carbon, cost, criteria, export, models, plots, surgery, train
from tf_lottery.config import Config
from tf_lottery.data import prepare
from tf_lottery.runs import RunFolder
from tf_lottery.tables import markdown_table
from tf_lottery.tickets import find_ticket, resolve_count


def log(message: str) -> None:
    print(f"[tf-lottery {time.strftime('%H:%M:%S')}] {message}", flush=True)


def score_blocks(config: Config, run: RunFolder, dense, data) -> dict:
    """Scores the dense model (θ0 here, trained weights for ``lottery``) and picks the blocks.

    Cached in scores.json, so a resumed run removes the same blocks.
    """
    cached = run.read_json("scores.json")
    if cached is not None:
        log(f"scores found in {run.file('scores.json')}: removing {cached['ticket']['removed']}")
        return cached
    x, y = criteria.class_balanced_batch(*data.splits["train"], per_class=config.score_per_class, seed=config.seed)
    log(f"scoring {len(surgery.blocks(dense))} blocks with {config.criterion} on {len(y)} examples")
    with carbon.track("scoring", run.path, config.carbon_country) as energy:
        start = time.perf_counter()
        result = find_ticket(dense, config.criterion, config.num_blocks, config.fraction, (x, y),
                             config.schedule, config.min_blocks_per_stage, config.prune_first,
                             **config.criterion_options())
        seconds = time.perf_counter() - start
    payload = {"ticket": result.to_dict(), "scoring_seconds": seconds, "scoring_examples": int(len(y)),
               "energy": energy}
    run.write_json("scores.json", payload)
    return payload


def train_or_load(config: Config, run: RunFolder, model, data, name: str, recipe=None, callbacks=()) -> dict:
    """Trains one model (or loads it when a previous run finished it); returns its record.

    Args:
        config: The run's config.
        run: The run folder.
        model: The model to train.
        data: Prepared data.
        name: "dense" or "ticket": names the files.
        recipe: The recipe (default: the config's).
        callbacks: Extra Keras callbacks.
    """
    recipe = recipe or config.recipe()
    record = run.read_json(f"train_{name}.json")
    if record is not None and run.exists(f"{name}_final.weights.h5"):
        log(f"{name}: already trained, loading {run.file(f'{name}_final.weights.h5')}")
        model.load_weights(run.file(f"{name}_final.weights.h5"))
        train.compile_model(model, recipe, 1)
        return record
    log(f"{name}: training {model.name} ({model.count_params():,} params) for {recipe.length}")
    with carbon.track(name, run.path, config.carbon_country) as energy:
        fitted = train.fit(model, data, recipe, run.path, name, tensorboard=config.tensorboard,
                           extra_callbacks=callbacks)
    record = {"train": {k: fitted[k] for k in ("timing", "steps", "epochs")}, "energy": energy}
    run.save_weights(model, f"{name}_final.weights.h5")
    run.write_json(f"train_{name}.json", record)
    return record


def measure(config: Config, model, data, trained: dict) -> dict:
    """Accuracy and every cost of one trained model."""
    return {
        "model_name": model.name,
        "blocks": len(surgery.blocks(model)),
        "test": train.evaluate(model, data),
        **cost.summary(model, config.memory_batch_size),
        "latency": {str(k): v for k, v in cost.latency(model, config.latency_batch_sizes).items()},
        **trained,
    }


def _percent_less(dense, ticket):
    if dense is None or ticket is None:
        return None
    return cost.reduction(dense, ticket)


def compare(dense: dict, ticket: dict) -> dict:
    """Ticket versus dense: accuracy in percentage points, reductions in %, speed-up in x.

    Energy figures are None ("unavailable") when either tracker failed.
    """
    def energy(side, key):
        record = side["energy"]
        return record.get(key) if record.get("status") == "ok" else None

    accuracy_pp = 100.0 * (ticket["test"]["accuracy"] - dense["test"]["accuracy"])
    dense_time = dense["train"]["timing"]["train_seconds"]
    ticket_time = ticket["train"]["timing"]["train_seconds"]
    dense_ips = dense["train"]["timing"]["images_per_second"]
    ticket_ips = ticket["train"]["timing"]["images_per_second"]
    biggest = str(max(int(k) for k in dense["latency"]))
    return {
        "accuracy_pp": accuracy_pp,
        "winning_ticket": accuracy_pp >= 0.0,
        "params_reduction_pct": _percent_less(dense["params"], ticket["params"]),
        "flops_reduction_pct": _percent_less(dense["flops"], ticket["flops"]),
        "memory_reduction_pct": _percent_less(dense["memory_bytes"], ticket["memory_bytes"]),
        "training_speedup_x": dense_time / ticket_time if ticket_time else None,
        "images_per_second_ratio_x": ticket_ips / dense_ips if dense_ips and ticket_ips else None,
        "flops_implied_speedup_x": dense["flops"] / ticket["flops"],
        f"latency_speedup_x_batch{biggest}": dense["latency"][biggest]["median_s"] / ticket["latency"][biggest]["median_s"],
        "energy_reduction_pct": _percent_less(energy(dense, "energy_kwh"), energy(ticket, "energy_kwh")),
        "co2_reduction_pct": _percent_less(energy(dense, "co2_kg"), energy(ticket, "co2_kg")),
    }


def _fmt(value, spec="{:,.2f}"):
    return "unavailable" if value is None else spec.format(value)


def _change(reduction_pct):
    """A reduction in % as a signed change: 28.6 -> "-28.60 %", -3.2 -> "+3.20 %"."""
    return "unavailable" if reduction_pct is None else f"{-reduction_pct:+.2f} %"


def summary_table(result: dict) -> str:
    """The comparison as a Markdown table (printed at the end of the run and saved)."""
    dense, ticket, diff = result["dense"], result["ticket"], result["comparison"]
    biggest = str(max(int(k) for k in dense["latency"]))

    def energy(side, key, scale):
        record = side["energy"]
        return _fmt(record[key] * scale, "{:,.3f}") if record.get("status") == "ok" else "unavailable"

    rows = [
        ["test accuracy (%)", f"{100 * dense['test']['accuracy']:.2f}", f"{100 * ticket['test']['accuracy']:.2f}",
         f"{diff['accuracy_pp']:+.2f} pp ({'winning ticket' if diff['winning_ticket'] else 'not a winning ticket'})"],
        ["blocks", dense["blocks"], ticket["blocks"], f"-{dense['blocks'] - ticket['blocks']}"],
        ["params", f"{dense['params']:,}", f"{ticket['params']:,}", _change(diff['params_reduction_pct'])],
        ["FLOPs", f"{dense['flops']:,}", f"{ticket['flops']:,}", _change(diff['flops_reduction_pct'])],
        [f"memory, batch {dense['memory_batch_size']} (MiB)", f"{dense['memory_bytes'] / 2**20:,.1f}",
         f"{ticket['memory_bytes'] / 2**20:,.1f}", _change(diff['memory_reduction_pct'])],
        [f"latency, batch {biggest} (ms, measured)", f"{1000 * dense['latency'][biggest]['median_s']:.1f}",
         f"{1000 * ticket['latency'][biggest]['median_s']:.1f}", f"{diff[f'latency_speedup_x_batch{biggest}']:.2f}x"],
        ["training time (s, measured)", f"{dense['train']['timing']['train_seconds']:.1f}",
         f"{ticket['train']['timing']['train_seconds']:.1f}", f"{_fmt(diff['training_speedup_x'])}x speed-up"],
        ["training images/s (measured)", _fmt(dense["train"]["timing"]["images_per_second"], "{:,.0f}"),
         _fmt(ticket["train"]["timing"]["images_per_second"], "{:,.0f}"), f"{_fmt(diff['images_per_second_ratio_x'])}x"],
        ["training energy (Wh, estimated)" if "estimated" in dense["energy"].get("mode", "") else "training energy (Wh)",
         energy(dense, "energy_kwh", 1000), energy(ticket, "energy_kwh", 1000), _change(diff['energy_reduction_pct'])],
        [f"training CO2 (g, {dense['energy'].get('country', '?')} grid)", energy(dense, "co2_kg", 1000),
         energy(ticket, "co2_kg", 1000), _change(diff['co2_reduction_pct'])],
    ]
    return markdown_table(["", "dense", "ticket", "change"], rows, align="lrrl")


def already_done(run: RunFolder):
    """result.json of a finished run (printing its summary), or None."""
    done = run.read_json("result.json")
    if done is not None:
        log(f"this config already ran: {run.path} (delete the folder to run it again)")
        print(summary_table(done))
    return done


def set_up(config: Config, run: RunFolder, check_removal: bool = True):
    """Loads the data, builds the dense θ0, checks p, creates the run folder.

    Args:
        check_removal: Whether to check that p blocks can be removed (not for a dense run).

    Returns:
        ``(data, dense)``.
    """
    keras.utils.set_random_seed(config.seed)
    log(f"loading {config.dataset}")
    data = prepare(config.data_options())
    dense = models.get(config.model)(**config.model_kwargs(data.input_shape, data.num_classes))
    if check_removal:  # fail before anything is written
        resolve_count(dense, config.num_blocks, config.fraction, config.min_blocks_per_stage)
    run.start()
    log(f"run folder {run.path}")
    return data, dense


def plot_scores(config: Config, run: RunFolder, dense, scored: dict) -> None:
    """Writes scores.png: every block's score by stage, the removed ones marked."""
    found = {b.name: b for b in surgery.find_blocks(dense)}
    plots.block_scores(scored["ticket"]["scores"], {n: b.stage for n, b in found.items()},
                       [n for n, b in found.items() if b.removable], scored["ticket"]["removed"],
                       config.criterion, scored["ticket"]["prune_first"], run.file("scores.png"))


def record_run(config: Config, run: RunFolder, data, ticket, trained: dict, scored: dict,
               dense: dict, dense_run: RunFolder, extra: dict = None) -> dict:
    """Measures the trained ticket, compares it with the dense record and writes the run record.

    Writes curves.png, result.json, summary.md and (``config.export``) the ticket's export.

    Args:
        ticket: The trained ticket.
        trained: Its training record (from :func:`train_or_load`).
        scored: The scoring record (from :func:`score_blocks`).
        dense: The measured dense record (``dense.json`` of the dense run).
        dense_run: The dense run's folder.
        extra: More fields for result.json.

    Returns:
        result.json's content.
    """
    sides = {"dense": dense, "ticket": {**measure(config, ticket, data, trained), "removed": scored["ticket"]["removed"]}}
    plots.learning_curves({"dense": train.read_history(dense_run.file("history_dense.csv")),
                           "ticket": train.read_history(run.file("history_ticket.csv"))}, run.file("curves.png"))
    result = {
        "config_hash": config.digest(),
        "run_folder": run.path,
        "dense_run_folder": dense_run.path,
        "data": {"train": len(data.splits["train"][1]), "val": len(data.splits["val"][1]),
                 "test": len(data.splits["test"][1]), "input_shape": list(data.input_shape)},
        "scoring": {k: scored[k] for k in ("scoring_seconds", "scoring_examples", "energy")},
        "dense": sides["dense"],
        "ticket": sides["ticket"],
        "comparison": compare(sides["dense"], sides["ticket"]),
        "units": {"accuracy": "fraction", "accuracy_pp": "percentage points", "memory_bytes": "bytes",
                  "latency": "seconds per batch (median)", "train_seconds": "seconds (wall, measured)",
                  "energy_kwh": "kWh", "co2_kg": "kg CO2eq", "*_pct": "% less than dense", "*_x": "ratio"},
        "measured_vs_estimated": {
            "accuracy, latency, training time, images/s": "measured on this machine",
            "params, FLOPs, memory": "computed from the graph (memory: the formula in tf_lottery.cost.memory)",
            "energy, CO2": sides["dense"]["energy"].get("mode", "unavailable"),
        },
        **(extra or {}),
    }
    if config.export:
        if not run.exists("export/ticket"):
            meta = {"config_hash": config.digest(), "criterion": config.criterion, "seed": config.seed,
                    "ticket": scored["ticket"], "metrics": {"test_accuracy": sides["ticket"]["test"]["accuracy"]},
                    **(extra or {})}
            export.save_model(ticket, run.file("export/ticket"), meta)
        result["exports"] = {"dense": dense_run.file("export/dense"), "ticket": run.file("export/ticket")}
    table = summary_table(result)
    run.write_text("summary.md", f"# {config.experiment} {config.digest()}\n\n{table}")
    run.write_json("result.json", result)
    log(f"done: {run.path}")
    print(table)
    return result
