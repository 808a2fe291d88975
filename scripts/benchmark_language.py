"""What a depth-pruned language model saves: a GPT-2-style decoder against its ticket of fewer layers.

A keras_hub ``GPT2CausalLM`` on the byte vocabulary (258 ids) of ``tl.data.text``, random weights,
and the ticket of its own class without ``--removed`` of its layers (every other one from the
second, so they spread over the depth). Measured for both, sides interleaved, medians of
``--repeats``:

* layers, parameters and FLOPs per token at ``--length`` (``tl.evals.language.flops_per_token``);
* training tokens/s: ``fit`` steps of batch ``--batch_size`` on next-token windows (of the
  fortunes corpus when it is installed, random tokens otherwise), after one untimed step;
* generation: the seconds of ``generate`` from a ``--prompt``-token prompt to ``--length`` tokens,
  as tokens/s and seconds per generated token (batch 1, greedy, no stop token).

Training speed is a step time, not a convergence claim. Results go to
``benchmarks/results/language_speed.json`` (written atomically) and are printed.

    python scripts/benchmark_language.py --layers=6 --hidden=128 --removed=2
"""

from __future__ import annotations

import os
import platform
import statistics
import time

import keras
import keras_hub
import numpy as np
from absl import app, flags

import tf_lottery as tl
from tf_lottery.core.io import write_json_atomic
from tf_lottery.criteria.language import IGNORED, next_token_batch
from tf_lottery.data import text
from tf_lottery.models.decoder import byte_decoder
from tf_lottery.reports.tables import markdown_table

_LAYERS = flags.DEFINE_integer("layers", 6, "Decoder layers.", lower_bound=2)
_HIDDEN = flags.DEFINE_integer("hidden", 128, "Hidden size.", lower_bound=8)
_HEADS = flags.DEFINE_integer("heads", 4, "Attention heads.", lower_bound=1)
_LENGTH = flags.DEFINE_integer("length", 128, "Sequence length (training, FLOPs, generation).", lower_bound=8)
_REMOVED = flags.DEFINE_integer("removed", 2, "Layers the ticket removes.", lower_bound=1)
_BATCH = flags.DEFINE_integer("batch_size", 16, "Training batch.", lower_bound=1)
_STEPS = flags.DEFINE_integer("steps", 5, "Timed training steps per repeat.", lower_bound=1)
_PROMPT = flags.DEFINE_integer("prompt", 16, "Prompt tokens for generation.", lower_bound=1)
_REPEATS = flags.DEFINE_integer("repeats", 3, "Repeats (medians).", lower_bound=1)
_OUT = flags.DEFINE_string("out", "benchmarks/results", "Output folder.")


def _windows(count: int, length: int):
    tokenizer = text.ByteTokenizer()
    try:
        ids, mask = text.token_windows(text.read_fortunes()[:4000], tokenizer, length + 1)
        source = "fortunes"
    except FileNotFoundError:
        rng = np.random.default_rng(0)
        ids, mask = rng.integers(2, tokenizer.vocabulary_size, size=(count, length + 1)), None
        source = "random tokens"
    inputs, labels = next_token_batch(ids[:count], None if mask is None else mask[:count])
    return inputs, labels, source


def _model(layers: int) -> keras.Model:
    return byte_decoder(layers, _HIDDEN.value, _HEADS.value, _LENGTH.value, seed=0)


def _compile(model):
    model.compile(optimizer=keras.optimizers.AdamW(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def _train_seconds(model, inputs, labels) -> float:
    weights = (labels != IGNORED).astype("float32")
    targets = np.maximum(labels, 0)
    take = _BATCH.value * _STEPS.value
    batch = ({k: v[:take] for k, v in inputs.items()}, targets[:take], weights[:take])
    start = time.perf_counter()
    model.fit(*batch[:2], sample_weight=batch[2], batch_size=_BATCH.value, epochs=1, verbose=0, shuffle=False)
    return time.perf_counter() - start


def _generate_seconds(model, prompt) -> float:
    start = time.perf_counter()
    model.generate(prompt, max_length=_LENGTH.value, stop_token_ids=None)
    return time.perf_counter() - start


def main(argv):
    del argv
    dense = _compile(_model(_LAYERS.value))
    names = tl.surgery.blocks(dense.backbone)
    removed = names[1::2][:_REMOVED.value]
    ticket = _compile(tl.surgery.family_ticket(dense, removed))
    inputs, labels, source = _windows(_BATCH.value * _STEPS.value, _LENGTH.value)
    prompt_ids = np.zeros((1, _LENGTH.value), "int32")
    prompt_ids[0, :_PROMPT.value] = inputs["token_ids"][0, :_PROMPT.value]
    prompt = {"token_ids": prompt_ids, "padding_mask": np.arange(_LENGTH.value)[None] < _PROMPT.value}
    sides = {"dense": dense, "ticket": ticket}
    for model in sides.values():  # untimed: tracing and first-call costs
        _train_seconds(model, inputs, labels)
        _generate_seconds(model, prompt)
    train = {name: [] for name in sides}
    generate = {name: [] for name in sides}
    for _ in range(_REPEATS.value):
        for name, model in sides.items():
            train[name].append(_train_seconds(model, inputs, labels))
            generate[name].append(_generate_seconds(model, prompt))
    tokens = _BATCH.value * _STEPS.value * _LENGTH.value
    new_tokens = _LENGTH.value - _PROMPT.value
    rows, result = [], {}
    for name, model in sides.items():
        train_s, generate_s = statistics.median(train[name]), statistics.median(generate[name])
        result[name] = {
            "layers": model.backbone.num_layers, "params": int(model.count_params()),
            "flops_per_token": tl.evals.language.flops_per_token(model, _LENGTH.value),
            "train_tokens_per_second": tokens / train_s, "train_seconds": train[name],
            "generate_tokens_per_second": new_tokens / generate_s,
            "seconds_per_generated_token": generate_s / new_tokens, "generate_seconds": generate[name],
        }
        r = result[name]
        rows.append([name, r["layers"], f"{r['params']:,}", f"{r['flops_per_token']:,.0f}",
                     f"{r['train_tokens_per_second']:,.0f}", f"{r['generate_tokens_per_second']:,.1f}",
                     f"{1000 * r['seconds_per_generated_token']:.2f}"])
    d, t = result["dense"], result["ticket"]
    result["ratios"] = {"flops_implied_speedup": d["flops_per_token"] / t["flops_per_token"],
                        "train_speedup": t["train_tokens_per_second"] / d["train_tokens_per_second"],
                        "generate_speedup": t["generate_tokens_per_second"] / d["generate_tokens_per_second"]}
    result["setup"] = {"layers": _LAYERS.value, "hidden": _HIDDEN.value, "heads": _HEADS.value,
                       "length": _LENGTH.value, "removed": removed, "batch_size": _BATCH.value,
                       "steps": _STEPS.value, "prompt": _PROMPT.value, "repeats": _REPEATS.value,
                       "data": source, "cpu": platform.processor() or platform.machine(),
                       "cores": os.cpu_count(), "keras_hub": keras_hub.__version__}
    print(markdown_table(["model", "layers", "params", "FLOPs/token", "train tokens/s", "generate tokens/s",
                          "ms/generated token"], rows))
    print({k: round(v, 3) for k, v in result["ratios"].items()})
    write_json_atomic(os.path.join(_OUT.value, "language_speed.json"), result)


if __name__ == "__main__":
    app.run(main)
