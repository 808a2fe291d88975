"""A preview of the tiny-LM twin: depth-prune a decoder after training (``--mode=trained``) or at initialization
(``--mode=init``).

A GPT-2-style ``GPT2CausalLM`` (byte vocabulary, ``--layers`` layers) is trained on Debian's fortunes
corpus (``apt-get install fortunes``; 90 % of the entries, split by entry, seeded) for
``--train_steps`` steps of AdamW. Then, for each after-training criterion (Block Influence, angular
distance over a window of ``--removed`` layers, CKA, removal loss) and a seeded random choice,
``--removed`` layers are removed (a ticket of the model's own class) and reported:

* held-out perplexity right after removal and after a short healing fine-tune of
  ``--heal_fraction`` of the training steps (a fresh AdamW at the same rate);
* the layers each criterion removed, and how far the criteria agree (the Jaccard index of every
  pair's removed layers).

``--mode=init`` is the seed paper's setting instead: GraSP and SNIP tickets removing ``--removed``
layers are cut from the untrained θ0 (scored on ``--calibration`` training sequences), and the dense
model and each ticket are trained alike (the same steps, batches and schedule); reported are the
held-out perplexities, the training times and the measured speed-up beside the FLOPs-implied one.

One seed and a short training: a preview of what the twin measures, not the twin.
Results go to ``benchmarks/results/lm_depth_preview/`` (``--mode=trained``) or
``benchmarks/results/lm_init_preview/`` (``--mode=init``): ``results.json``, ``report.md``.

    taskset -c 0 python scripts/lm_depth_preview.py --layers=8 --train_steps=2500
    taskset -c 0 python scripts/lm_depth_preview.py --mode=init --layers=8 --train_steps=2500
"""

from __future__ import annotations

import itertools
import os
import time

import keras
import numpy as np
from absl import app, flags

import tf_lottery as tl
from tf_lottery.core.io import write_json_atomic, write_text_atomic
from tf_lottery.criteria.language import IGNORED, next_token_batch
from tf_lottery.data import text
from tf_lottery.evals.language import perplexity
from tf_lottery.models.decoder import byte_decoder
from tf_lottery.reports.tables import markdown_table

_LAYERS = flags.DEFINE_integer("layers", 8, "Decoder layers.", lower_bound=2)
_HIDDEN = flags.DEFINE_integer("hidden", 128, "Hidden size (MLP: 4x).", lower_bound=8)
_HEADS = flags.DEFINE_integer("heads", 4, "Attention heads.", lower_bound=1)
_LENGTH = flags.DEFINE_integer("length", 128, "Tokens per sequence.", lower_bound=8)
_BATCH = flags.DEFINE_integer("batch_size", 16, "Sequences per step.", lower_bound=1)
_STEPS = flags.DEFINE_integer("train_steps", 2500, "Dense training steps.", lower_bound=1)
_RATE = flags.DEFINE_float("learning_rate", 1e-3, "AdamW learning rate (cosine decay after 5 % warm-up).")
_REMOVED = flags.DEFINE_integer("removed", 2, "Layers removed (25 % of 8).", lower_bound=1)
_HEAL = flags.DEFINE_float("heal_fraction", 0.1, "Healing steps, as a fraction of the training steps.")
_CALIBRATION = flags.DEFINE_integer("calibration", 64, "Training sequences the criteria read.", lower_bound=4)
_VAL = flags.DEFINE_integer("val_sequences", 256, "Held-out sequences for perplexity.", lower_bound=1)
_SEED = flags.DEFINE_integer("seed", 0, "Seed (split, initialization, random criterion).")
_MODE = flags.DEFINE_enum("mode", "trained", ["trained", "init"], "Prune after training, or at initialization.")
_OUT = flags.DEFINE_string("out", None, "Output folder (default: benchmarks/results/lm_<mode>_preview).")

CRITERIA = ("block_influence", "angular", "cka", "removal_loss", "random")
AT_INIT = ("snip", "grasp")


def _compile(model, steps: int):
    schedule = keras.optimizers.schedules.CosineDecay(0.0, decay_steps=max(1, steps - steps // 20),
                                                      warmup_target=_RATE.value, warmup_steps=max(1, steps // 20))
    model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def _train(model, inputs, labels, steps: int, seed: int) -> float:
    """Trains ``steps`` steps on batches drawn in a seeded order; returns the seconds taken."""
    order = np.random.default_rng(seed).permutation(len(labels))
    picks = np.resize(order, steps * _BATCH.value)
    x = {name: value[picks] for name, value in inputs.items()}
    y = labels[picks]
    start = time.perf_counter()
    _compile(model, steps).fit(x, np.maximum(y, 0), sample_weight=(y != IGNORED).astype("float32"),
                               batch_size=_BATCH.value, epochs=1, shuffle=False, verbose=0)
    return time.perf_counter() - start


def _data():
    """``(entries, tokenizer, (train inputs, train labels), (val ids, val mask))``."""
    entries = text.read_fortunes()
    train_texts, val_texts = text.split_texts(entries, 0.1, seed=_SEED.value)
    tokenizer = text.ByteTokenizer()
    train_ids, train_mask = text.token_windows(train_texts, tokenizer, _LENGTH.value + 1)
    val_ids, val_mask = text.token_windows(val_texts, tokenizer, _LENGTH.value + 1)
    return entries, tokenizer, next_token_batch(train_ids, train_mask), (val_ids[:_VAL.value], val_mask[:_VAL.value])


def _decoder():
    return byte_decoder(_LAYERS.value, _HIDDEN.value, _HEADS.value, _LENGTH.value, _SEED.value)


def _write(out: str, results: dict, report: str) -> None:
    os.makedirs(out, exist_ok=True)
    write_json_atomic(os.path.join(out, "results.json"), results)
    write_text_atomic(os.path.join(out, "report.md"), report + "\n")
    print(report)


def at_initialization() -> None:
    """``--mode=init``: GraSP and SNIP tickets from θ0, trained like the dense model (module docstring)."""
    entries, tokenizer, (inputs, labels), (val_ids, val_mask) = _data()
    dense = _decoder()
    pair = ({name: value[:_CALIBRATION.value] for name, value in inputs.items()}, labels[:_CALIBRATION.value])
    tickets = {c: tl.find_ticket(dense, c, num_blocks=_REMOVED.value, data=pair, min_blocks_per_stage=0)
               for c in AT_INIT}  # all cut from θ0 before the dense model trains
    flops = {"dense": tl.evals.language.flops_per_token(dense, _LENGTH.value)}
    models = {"dense": dense, **{c: r.model for c, r in tickets.items()}}
    found = {}
    for name, model in models.items():
        flops.setdefault(name, tl.evals.language.flops_per_token(model, _LENGTH.value))
        seconds = _train(model, inputs, labels, _STEPS.value, _SEED.value)
        found[name] = {"perplexity": perplexity(model, val_ids, val_mask), "train_seconds": seconds,
                       "flops_per_token": flops[name], "params": int(model.count_params()),
                       "removed": sorted(tickets[name].removed) if name in tickets else []}
        print(name, found[name])
    rows = [[name, ", ".join(r["removed"]) or "-", f"{r['perplexity']:.2f}",
             f"{r['perplexity'] - found['dense']['perplexity']:+.2f}", f"{r['train_seconds']:.0f}",
             f"{found['dense']['train_seconds'] / r['train_seconds']:.2f}x",
             f"{found['dense']['flops_per_token'] / r['flops_per_token']:.2f}x"] for name, r in found.items()]
    tokens = _STEPS.value * _BATCH.value * _LENGTH.value
    report = "\n\n".join([
        "# Layer tickets of a tiny decoder at initialization (a preview of the tiny-LM twin's at-init half)",
        f"GPT2CausalLM, {_LAYERS.value} layers, hidden {_HIDDEN.value}, byte vocabulary; GraSP and SNIP tickets "
        f"removing {_REMOVED.value} layers cut from θ0 (scored on {_CALIBRATION.value} training sequences, the "
        f"next-token loss); the dense model and every ticket trained {_STEPS.value} steps ({tokens:,} tokens) on the "
        "fortunes corpus with the same batches and schedule, one after the other on one core. One seed.",
        markdown_table(["model", "removed layers", "held-out perplexity", "vs dense", "training (s)",
                        "measured speed-up", "FLOPs-implied"], rows),
        f"Command: `python scripts/lm_depth_preview.py --mode=init --layers={_LAYERS.value} --hidden={_HIDDEN.value} "
        f"--train_steps={_STEPS.value} --removed={_REMOVED.value} --seed={_SEED.value}`",
    ])
    _write(_OUT.value or "benchmarks/results/lm_init_preview", {"setup": {
        "layers": _LAYERS.value, "hidden": _HIDDEN.value, "heads": _HEADS.value, "length": _LENGTH.value,
        "batch_size": _BATCH.value, "train_steps": _STEPS.value, "train_tokens": tokens, "removed": _REMOVED.value,
        "calibration_sequences": _CALIBRATION.value, "seed": _SEED.value, "corpus_entries": len(entries)},
        "models": found, "scores": {c: r.scores for c, r in tickets.items()}}, report)


def main(argv):
    del argv
    if _MODE.value == "init":
        at_initialization()
        return
    entries, tokenizer, (inputs, labels), (val_ids, val_mask) = _data()
    dense = _decoder()
    untrained = perplexity(dense, val_ids, val_mask)
    seconds = _train(dense, inputs, labels, _STEPS.value, _SEED.value)
    dense_ppl = perplexity(dense, val_ids, val_mask)
    tokens = _STEPS.value * _BATCH.value * _LENGTH.value
    print(f"dense: perplexity {untrained:.1f} -> {dense_ppl:.2f} after {tokens:,} tokens in {seconds:.0f} s")

    calibration = {name: value[:_CALIBRATION.value] for name, value in inputs.items()}
    pair = (calibration, labels[:_CALIBRATION.value])
    heal_steps = max(1, round(_HEAL.value * _STEPS.value))
    rows, found = [], {}
    for criterion in CRITERIA:
        options = {"window": _REMOVED.value} if criterion == "angular" else {}
        data = pair if criterion == "removal_loss" else calibration
        if criterion == "random":
            options, data = {"seed": _SEED.value}, None
        result = tl.find_ticket(dense, criterion, num_blocks=_REMOVED.value, data=data, min_blocks_per_stage=0,
                                **options)
        ticket = result.model
        removed_ppl = perplexity(ticket, val_ids, val_mask)
        _train(ticket, inputs, labels, heal_steps, _SEED.value + 1)
        healed_ppl = perplexity(ticket, val_ids, val_mask)
        found[criterion] = {"removed": sorted(result.removed), "perplexity_after_removal": removed_ppl,
                            "perplexity_after_healing": healed_ppl, "scores": result.scores}
        rows.append([criterion, ", ".join(sorted(result.removed)), f"{removed_ppl:.2f}", f"{healed_ppl:.2f}"])
        print(rows[-1])
    agreement = {f"{a} / {b}": len(set(found[a]["removed"]) & set(found[b]["removed"])) /
                 len(set(found[a]["removed"]) | set(found[b]["removed"]))
                 for a, b in itertools.combinations(CRITERIA, 2)}
    results = {"setup": {"layers": _LAYERS.value, "hidden": _HIDDEN.value, "heads": _HEADS.value,
                         "length": _LENGTH.value, "batch_size": _BATCH.value, "train_steps": _STEPS.value,
                         "train_tokens": tokens, "learning_rate": _RATE.value, "removed": _REMOVED.value,
                         "heal_steps": heal_steps, "calibration_sequences": _CALIBRATION.value,
                         "val_sequences": int(len(val_ids)), "seed": _SEED.value,
                         "params": int(dense.count_params()), "corpus_entries": len(entries)},
               "dense": {"perplexity_untrained": untrained, "perplexity": dense_ppl, "train_seconds": seconds},
               "criteria": found, "agreement_jaccard": agreement}
    report = "\n\n".join([
        "# Depth pruning a trained tiny decoder (a preview of the tiny-LM twin's after-training half)",
        f"GPT2CausalLM, {_LAYERS.value} layers, hidden {_HIDDEN.value}, {dense.count_params():,} parameters, byte "
        f"vocabulary; trained {_STEPS.value} steps ({tokens:,} tokens, {seconds:.0f} s) on the fortunes corpus; held-out "
        f"perplexity {untrained:.1f} untrained, **{dense_ppl:.2f}** trained. Each criterion removes {_REMOVED.value} "
        f"layers (scored on {_CALIBRATION.value} training sequences); healing: {heal_steps} steps of AdamW. One seed.",
        markdown_table(["criterion", "removed layers", "perplexity after removal", "after healing"], rows),
        "Agreement (Jaccard index of the removed layers):\n\n" + markdown_table(
            ["pair", "Jaccard"], [[pair_name, f"{value:.2f}"] for pair_name, value in agreement.items()]),
        "Command: `python scripts/lm_depth_preview.py " + " ".join(
            f"--{name}={flags.FLAGS[name].value}" for name in ("layers", "hidden", "train_steps", "removed", "seed")) + "`",
    ])
    _write(_OUT.value or "benchmarks/results/lm_depth_preview", results, report)


if __name__ == "__main__":
    app.run(main)
