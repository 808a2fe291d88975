"""The tiny-LM twin: layer tickets of a GPT-2-style decoder at initialization, and depth pruning after training.

A ``GPT2CausalLM`` (byte vocabulary, ``--layers`` layers, hidden ``--hidden``) is trained on Debian's
fortunes corpus (``apt-get install fortunes``; 90 % of the entries for training, split by entry with
seed 0 for every seed, so the held-out text is one) by :mod:`tf_lottery.training.language`'s recipe.
For each seed:

* **At initialization** (the seed paper's setting, its Table 2 twin for language): GraSP and SNIP
  tickets removing each of ``--removed`` layers are cut from the dense model's θ0 (scored on
  ``--calibration`` training sequences, the next-token loss), and the dense model and every ticket
  train alike (the same steps, batches and schedule), one after the other on one core. Reported:
  held-out perplexity, the paired difference to dense over the seeds with its 95 % t interval and
  verdict, and the measured training speed-up beside the FLOPs-implied one.
* **After training:** the trained dense model loses ``--prune_fraction`` of its layers by each
  after-training criterion (Block Influence, angular distance over a window of that many layers,
  CKA, removal loss) and a seeded random choice; reported are the perplexity right after removal
  and after a healing fine-tune of ``--heal_fraction`` of the training steps, the layers removed and
  the criteria's agreement (Jaccard index of the removed layers).

Each trained model's numbers are written to ``<out>/runs/<seed>_<name>.json`` as it finishes, and a
run started again skips what is there (the trained dense weights are kept in ``--cache``), so a kill
loses at most one model. ``results.json`` and ``report.md`` are rewritten from the runs at the end.

    taskset -c 1 python scripts/lm_twin.py --seeds=0,1,2 --train_steps=1200
"""

from __future__ import annotations

import itertools
import json
import os

import numpy as np
from absl import app, flags

import tf_lottery as tl
from tf_lottery.core.io import write_json_atomic, write_text_atomic
from tf_lottery.criteria.language import next_token_batch
from tf_lottery.data import text
from tf_lottery.evals.language import flops_per_token, perplexity
from tf_lottery.models.decoder import byte_decoder
from tf_lottery.reports import stats
from tf_lottery.reports.tables import markdown_table
from tf_lottery.training.language import fit_next_token

_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds (initialization, batch order, random criterion).")
_LAYERS = flags.DEFINE_integer("layers", 8, "Decoder layers.", lower_bound=2)
_HIDDEN = flags.DEFINE_integer("hidden", 128, "Hidden size (MLP: 4x).", lower_bound=8)
_HEADS = flags.DEFINE_integer("heads", 4, "Attention heads.", lower_bound=1)
_LENGTH = flags.DEFINE_integer("length", 128, "Tokens per sequence.", lower_bound=8)
_BATCH = flags.DEFINE_integer("batch_size", 16, "Sequences per step.", lower_bound=1)
_STEPS = flags.DEFINE_integer("train_steps", 1200, "Training steps of the dense model and every ticket.",
                              lower_bound=1)
_RATE = flags.DEFINE_float("learning_rate", 1e-3, "AdamW peak learning rate.")
_REMOVED = flags.DEFINE_list("removed", ["1", "2", "3"], "Layers the at-initialization tickets remove.")
_PRUNE = flags.DEFINE_float("prune_fraction", 0.25, "Share of the layers removed after training.")
_HEAL = flags.DEFINE_float("heal_fraction", 0.1, "Healing steps, as a share of the training steps.")
_CALIBRATION = flags.DEFINE_integer("calibration", 64, "Training sequences the criteria read.", lower_bound=4)
_VAL = flags.DEFINE_integer("val_sequences", 256, "Held-out sequences for perplexity.", lower_bound=1)
_OUT = flags.DEFINE_string("out", "benchmarks/results/lm_twin", "Output folder.")
_CACHE = flags.DEFINE_string("cache", "/tmp/lm_twin_cache", "Where trained dense weights are kept between runs.")

AT_INIT = ("grasp", "snip")
AFTER_TRAINING = ("block_influence", "angular", "cka", "removal_loss", "random")


def _data():
    """``(entries, (train inputs, train labels), (val ids, val mask))``; one split for every seed."""
    entries = text.read_fortunes()
    train_texts, val_texts = text.split_texts(entries, 0.1, seed=0)
    tokenizer = text.ByteTokenizer()
    train = next_token_batch(*text.token_windows(train_texts, tokenizer, _LENGTH.value + 1))
    val_ids, val_mask = text.token_windows(val_texts, tokenizer, _LENGTH.value + 1)
    return entries, train, (val_ids[:_VAL.value], val_mask[:_VAL.value])


def _run_path(seed: int, name: str) -> str:
    return os.path.join(_OUT.value, "runs", f"{seed}_{name}.json")


def _done(seed: int, name: str) -> bool:
    return os.path.exists(_run_path(seed, name))


def _save_run(seed: int, name: str, found: dict) -> None:
    os.makedirs(os.path.dirname(_run_path(seed, name)), exist_ok=True)
    write_json_atomic(_run_path(seed, name), found)
    print(seed, name, {k: v for k, v in found.items() if k != "scores"}, flush=True)


def _train_and_measure(seed, name, model, train, val, removed, scores=None) -> None:
    seconds = fit_next_token(model, *train, steps=_STEPS.value, batch_size=_BATCH.value, seed=seed,
                             learning_rate=_RATE.value)
    _save_run(seed, name, {
        "perplexity": perplexity(model, *val), "train_seconds": seconds,
        "train_tokens_per_second": _STEPS.value * _BATCH.value * _LENGTH.value / seconds,
        "flops_per_token": flops_per_token(model, _LENGTH.value), "params": int(model.count_params()),
        "layers": int(model.backbone.num_layers), "removed": sorted(removed), "scores": scores or {}})


def _after_training(seed, dense, train, val) -> None:
    inputs, labels = train
    calibration = {name: value[:_CALIBRATION.value] for name, value in inputs.items()}
    pair = (calibration, labels[:_CALIBRATION.value])
    count = max(1, round(_PRUNE.value * _LAYERS.value))
    heal_steps = max(1, round(_HEAL.value * _STEPS.value))
    for criterion in AFTER_TRAINING:
        if _done(seed, f"trained_{criterion}"):
            continue
        options, data = {}, calibration
        if criterion == "angular":
            options = {"window": count}
        elif criterion == "removal_loss":
            data = pair
        elif criterion == "random":
            options, data = {"seed": seed}, None
        result = tl.find_ticket(dense, criterion, num_blocks=count, data=data, min_blocks_per_stage=0, **options)
        removed_ppl = perplexity(result.model, *val)
        fit_next_token(result.model, inputs, labels, steps=heal_steps, batch_size=_BATCH.value, seed=seed + 1,
                       learning_rate=_RATE.value)
        _save_run(seed, f"trained_{criterion}", {
            "removed": sorted(result.removed), "perplexity_after_removal": removed_ppl,
            "perplexity_after_healing": perplexity(result.model, *val), "heal_steps": heal_steps,
            "scores": result.scores})


def run_seed(seed: int, train, val) -> None:
    """Trains what ``<out>/runs`` lacks of one seed (the module docstring)."""
    inputs, labels = train
    dense = byte_decoder(_LAYERS.value, _HIDDEN.value, _HEADS.value, _LENGTH.value, seed)
    pair = ({name: value[:_CALIBRATION.value] for name, value in inputs.items()}, labels[:_CALIBRATION.value])
    tickets = {}
    for criterion, count in itertools.product(AT_INIT, [int(p) for p in _REMOVED.value]):
        name = f"{criterion}_{count}"
        if not _done(seed, name):  # cut from θ0, before the dense model trains
            tickets[name] = tl.find_ticket(dense, criterion, num_blocks=count, data=pair, min_blocks_per_stage=0)
    weights = os.path.join(_CACHE.value, f"seed{seed}_L{_LAYERS.value}_H{_HIDDEN.value}_S{_STEPS.value}"
                                         ".weights.h5")
    if _done(seed, "dense") and os.path.exists(weights):
        dense.load_weights(weights)
    else:
        _train_and_measure(seed, "dense", dense, train, val, [])
        os.makedirs(_CACHE.value, exist_ok=True)
        dense.save_weights(weights + ".tmp.weights.h5")
        os.replace(weights + ".tmp.weights.h5", weights)
    _after_training(seed, dense, train, val)
    for name, result in tickets.items():
        _train_and_measure(seed, name, result.model, train, val, result.removed, result.scores)


def _load_runs(seeds) -> dict:
    found = {}
    for seed in seeds:
        folder = os.path.join(_OUT.value, "runs")
        for file in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
            if file.startswith(f"{seed}_") and file.endswith(".json"):
                with open(os.path.join(folder, file)) as handle:
                    found.setdefault(file[len(f"{seed}_"):-5], {})[seed] = json.load(handle)
    return found


def _jaccard(a, b) -> float:
    return len(set(a) & set(b)) / len(set(a) | set(b))


def summarize(seeds, entries) -> None:
    """Writes ``results.json`` and ``report.md`` from the finished runs."""
    runs = _load_runs(seeds)
    dense = runs.get("dense", {})
    at_init_rows, at_init = [], {}
    dense_ppl = [dense[s]["perplexity"] for s in seeds if s in dense]
    if dense_ppl:
        at_init_rows.append(["dense", "-", f"{np.mean(dense_ppl):.2f}", "—", "—", "—", "1.00x", "1.00x",
                             f"{len(dense_ppl)}"])
    for criterion, count in itertools.product(AT_INIT, [int(p) for p in _REMOVED.value]):
        name = f"{criterion}_{count}"
        ticket = runs.get(name, {})
        both = [s for s in seeds if s in ticket and s in dense]
        if not both:
            continue
        # dense minus ticket: positive when the ticket predicts held-out text better
        summary = stats.paired([dense[s]["perplexity"] - ticket[s]["perplexity"] for s in both], seeds=both)
        speed = [dense[s]["train_seconds"] / ticket[s]["train_seconds"] for s in both]
        implied = [dense[s]["flops_per_token"] / ticket[s]["flops_per_token"] for s in both]
        at_init[name] = {"seeds": both, "perplexity": [ticket[s]["perplexity"] for s in both],
                         "dense_minus_ticket": summary.to_dict(),
                         "measured_speedup": speed,
                         "flops_implied_speedup": implied,
                         "removed": {str(s): ticket[s]["removed"] for s in both}}
        at_init_rows.append([f"{criterion.upper() if criterion == 'snip' else 'GraSP'} −{count}",
                             "; ".join(", ".join(ticket[s]["removed"]) for s in both),
                             f"{np.mean(at_init[name]['perplexity']):.2f}", f"{summary.mean:+.2f}",
                             stats.interval_text(summary), summary.verdict or "—", f"{np.mean(speed):.2f}x",
                             f"{np.mean(implied):.2f}x", f"{len(both)}"])
    trained_rows, trained = [], {}
    for criterion in AFTER_TRAINING:
        runs_of = runs.get(f"trained_{criterion}", {})
        done = [s for s in seeds if s in runs_of]
        if not done:
            continue
        trained[criterion] = {str(s): runs_of[s] for s in done}
        trained_rows.append([criterion, "; ".join(", ".join(runs_of[s]["removed"]) for s in done),
                             f"{np.mean([runs_of[s]['perplexity_after_removal'] for s in done]):.2f}",
                             f"{np.mean([runs_of[s]['perplexity_after_healing'] for s in done]):.2f}",
                             f"{len(done)}"])
    agreement = {}
    for a, b in itertools.combinations(trained, 2):
        shared = sorted(set(trained[a]) & set(trained[b]))
        agreement[f"{a} / {b}"] = float(np.mean([_jaccard(trained[a][s]["removed"], trained[b][s]["removed"])
                                                 for s in shared]))
    count = max(1, round(_PRUNE.value * _LAYERS.value))
    heal_steps = max(1, round(_HEAL.value * _STEPS.value))
    tokens = _STEPS.value * _BATCH.value * _LENGTH.value
    params = next(iter(dense.values()))["params"] if dense else None
    setup = {"layers": _LAYERS.value, "hidden": _HIDDEN.value, "heads": _HEADS.value, "length": _LENGTH.value,
             "batch_size": _BATCH.value, "train_steps": _STEPS.value, "train_tokens": tokens,
             "learning_rate": _RATE.value, "removed_at_init": [int(p) for p in _REMOVED.value],
             "removed_after_training": count, "heal_steps": heal_steps, "calibration_sequences": _CALIBRATION.value,
             "val_sequences": _VAL.value, "seeds": seeds, "params": params, "corpus_entries": len(entries)}
    command = ("taskset -c 1 python scripts/lm_twin.py --seeds=" + ",".join(map(str, seeds)) + " " + " ".join(
        f"--{name}={flags.FLAGS[name].value}" for name in ("layers", "hidden", "heads", "length", "batch_size",
                                                           "train_steps", "learning_rate", "prune_fraction",
                                                           "heal_fraction", "calibration")))
    report = "\n\n".join([
        "# The tiny-LM twin: layer tickets of a decoder at initialization, and depth pruning after training",
        f"GPT2CausalLM (keras_hub), {_LAYERS.value} layers, hidden {_HIDDEN.value}, {_HEADS.value} heads, "
        f"{params:,} parameters, byte vocabulary (258 ids), sequences of {_LENGTH.value} tokens; the fortunes "
        f"corpus ({len(entries):,} entries, 10 % held out by entry, {_VAL.value} held-out sequences). Every model "
        f"trains {_STEPS.value} steps of {_BATCH.value} sequences ({tokens:,} tokens) of AdamW on a warmed-up "
        "cosine, with the same batches per seed, one after the other on one core. Seeds: "
        f"{', '.join(map(str, seeds))}.",
        "## At initialization: GraSP and SNIP tickets against the dense model from the same θ0",
        "The difference is dense minus ticket held-out perplexity per seed (positive: the ticket is better), with "
        "its 95 % t interval over the seeds; the verdict reads the interval (wins above 0, loses below, ties "
        "across). Speed-ups are dense training seconds over the ticket's (measured) and dense FLOPs per token "
        "over the ticket's (implied).",
        markdown_table(["model", "removed layers (per seed)", "perplexity", "dense − ticket", "95 % interval",
                        "verdict", "measured speed-up", "FLOPs-implied", "seeds"], at_init_rows),
        f"## After training: {count} of {_LAYERS.value} layers removed from the trained dense model",
        f"Each criterion scores the trained model on {_CALIBRATION.value} training sequences; healing is "
        f"{heal_steps} steps of AdamW ({_HEAL.value:.0%} of training) from a fresh optimizer. Dense held-out "
        f"perplexity: {np.mean(dense_ppl):.2f} (mean over the seeds)." if dense_ppl else "",
        markdown_table(["criterion", "removed layers (per seed)", "perplexity after removal", "after healing",
                        "seeds"], trained_rows),
        "Agreement (Jaccard index of the removed layers, mean over the seeds):\n\n" + markdown_table(
            ["pair", "Jaccard"], [[name, f"{value:.2f}"] for name, value in agreement.items()]),
        f"Command: `{command}`",
    ])
    write_json_atomic(os.path.join(_OUT.value, "results.json"), {
        "setup": setup, "dense": {str(s): dense[s] for s in seeds if s in dense}, "at_initialization": at_init,
        "after_training": trained, "agreement_jaccard": agreement, "command": command})
    write_text_atomic(os.path.join(_OUT.value, "report.md"), report + "\n")
    print(report)


def main(argv):
    del argv
    seeds = [int(seed) for seed in _SEEDS.value]
    entries, train, val = _data()
    for seed in seeds:
        run_seed(seed, train, val)
        summarize(seeds, entries)


if __name__ == "__main__":
    app.run(main)
