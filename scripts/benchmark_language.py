"""What a depth-pruned language model saves: a GPT-2-style decoder against its tickets of fewer layers.

A keras_hub ``GPT2CausalLM`` on the byte vocabulary (258 ids) of ``tl.data.text``, random weights,
and, for each count in ``--removed``, the ticket of its own class without that many layers (every
other one from the second, then the rest, so they spread over the depth; the layers are alike, so
which ones does not change the cost). Measured for every model, the models interleaved in each of
``--repeats`` rounds, medians:

* layers, parameters and FLOPs per token at ``--length`` (``tl.evals.language.flops_per_token``);
* training: ``--steps`` steps of batch ``--batch_size`` on next-token windows (of the fortunes
  corpus when it is installed, random tokens otherwise) by the recipe of
  :mod:`tf_lottery.training.language` (the tiny-LM twin's), after one untimed round; tokens per
  wall second and per CPU second of this process. On a process pinned to one core the CPU seconds
  are the training's cost even when another process shares the core, which the wall seconds are not;
* generation: the seconds of ``generate`` from a ``--prompt``-token prompt to ``--length`` tokens,
  as tokens/s and seconds per generated token (batch 1, greedy, no stop token), wall and CPU.

Interleaving the models within one process is what makes the speed-ups comparable: a machine whose
per-core speed drifts between sessions (as this one's does) moves every model's time alike. The
tiny-LM twin's per-run speed-ups, measured hours or sessions apart, are not protected so.

Training speed is a step time, not a convergence claim. Results go to
``<--out>/<--name>.json`` (written atomically) and are printed.

    taskset -c 0 python scripts/benchmark_language.py --layers=6 --hidden=128 --removed=2
    taskset -c 0 python scripts/benchmark_language.py --layers=8 --removed=1,2,3 --steps=50 \
        --name=language_speed_twin          # the tiny-LM twin's decoder and its tickets
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from typing import Tuple

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
from tf_lottery.training.language import compile_next_token

_LAYERS = flags.DEFINE_integer("layers", 6, "Decoder layers.", lower_bound=2)
_HIDDEN = flags.DEFINE_integer("hidden", 128, "Hidden size.", lower_bound=8)
_HEADS = flags.DEFINE_integer("heads", 4, "Attention heads.", lower_bound=1)
_LENGTH = flags.DEFINE_integer("length", 128, "Sequence length (training, FLOPs, generation).", lower_bound=8)
_REMOVED = flags.DEFINE_list("removed", ["2"], "Layers each ticket removes (one ticket per count).")
flags.register_validator("removed", lambda counts: all(c.isdigit() and int(c) >= 1 for c in counts) and counts,
                         "--removed must list counts of layers >= 1, as in --removed=1,2,3")
_BATCH = flags.DEFINE_integer("batch_size", 16, "Training batch.", lower_bound=1)
_STEPS = flags.DEFINE_integer("steps", 5, "Timed training steps per repeat.", lower_bound=1)
_PROMPT = flags.DEFINE_integer("prompt", 16, "Prompt tokens for generation.", lower_bound=1)
_REPEATS = flags.DEFINE_integer("repeats", 3, "Repeats (medians).", lower_bound=1)
_OUT = flags.DEFINE_string("out", "benchmarks/results", "Output folder.")
_NAME = flags.DEFINE_string("name", "language_speed", "Output file name (without .json).")


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


def _train_seconds(model, inputs, labels) -> Tuple[float, float]:
    """``(wall, CPU)`` seconds of ``--steps`` training steps of ``model`` (compiled by the twin's recipe)."""
    weights = (labels != IGNORED).astype("float32")
    targets = np.maximum(labels, 0)
    take = _BATCH.value * _STEPS.value
    batch = ({k: v[:take] for k, v in inputs.items()}, targets[:take], weights[:take])
    wall, cpu = time.perf_counter(), time.process_time()
    model.fit(*batch[:2], sample_weight=batch[2], batch_size=_BATCH.value, epochs=1, verbose=0, shuffle=False)
    return time.perf_counter() - wall, time.process_time() - cpu


def _generate_seconds(model, prompt) -> Tuple[float, float]:
    """``(wall, CPU)`` seconds of generating up to ``--length`` tokens from ``prompt``."""
    wall, cpu = time.perf_counter(), time.process_time()
    model.generate(prompt, max_length=_LENGTH.value, stop_token_ids=None)
    return time.perf_counter() - wall, time.process_time() - cpu


def _spread(names, count):
    """``count`` of ``names``: every other one from the second, then the rest in order."""
    order = names[1::2] + names[0::2]
    return order[:count]


def main(argv):
    del argv
    counts = sorted({int(count) for count in _REMOVED.value})
    if counts[-1] >= _LAYERS.value:
        raise app.UsageError(f"--removed={counts[-1]} leaves no layer of --layers={_LAYERS.value}; give fewer")
    dense = _model(_LAYERS.value)
    names = tl.surgery.blocks(dense.backbone)
    sides = {"dense": (dense, [])}
    for count in counts:
        removed = _spread(names, count)
        sides[f"-{count}"] = (tl.surgery.family_ticket(dense, removed), removed)
    for model, _ in sides.values():
        compile_next_token(model, _STEPS.value)
    inputs, labels, source = _windows(_BATCH.value * _STEPS.value, _LENGTH.value)
    prompt_ids = np.zeros((1, _LENGTH.value), "int32")
    prompt_ids[0, :_PROMPT.value] = inputs["token_ids"][0, :_PROMPT.value]
    prompt = {"token_ids": prompt_ids, "padding_mask": np.arange(_LENGTH.value)[None] < _PROMPT.value}
    for model, _ in sides.values():  # untimed: tracing and first-call costs
        _train_seconds(model, inputs, labels)
        _generate_seconds(model, prompt)
    wall = {name: [] for name in sides}
    cpu = {name: [] for name in sides}
    generate = {name: [] for name in sides}
    generate_cpu = {name: [] for name in sides}
    for _ in range(_REPEATS.value):
        for name, (model, _) in sides.items():
            seconds, cpu_seconds = _train_seconds(model, inputs, labels)
            wall[name].append(seconds)
            cpu[name].append(cpu_seconds)
            seconds, cpu_seconds = _generate_seconds(model, prompt)
            generate[name].append(seconds)
            generate_cpu[name].append(cpu_seconds)
    tokens = _BATCH.value * _STEPS.value * _LENGTH.value
    new_tokens = _LENGTH.value - _PROMPT.value
    rows, models = [], {}
    for name, (model, removed) in sides.items():
        generate_s = statistics.median(generate[name])
        models[name] = {
            "layers": model.backbone.num_layers, "removed": removed, "params": int(model.count_params()),
            "flops_per_token": tl.evals.language.flops_per_token(model, _LENGTH.value),
            "train_tokens_per_second": tokens / statistics.median(wall[name]), "train_seconds": wall[name],
            "train_tokens_per_cpu_second": tokens / statistics.median(cpu[name]), "train_cpu_seconds": cpu[name],
            "generate_tokens_per_second": new_tokens / generate_s,
            "seconds_per_generated_token": generate_s / new_tokens, "generate_seconds": generate[name],
            "generate_tokens_per_cpu_second": new_tokens / statistics.median(generate_cpu[name]),
            "generate_cpu_seconds": generate_cpu[name],
        }
    d = models["dense"]
    for name, m in models.items():
        m["speedups"] = {"flops_implied": d["flops_per_token"] / m["flops_per_token"],
                         "train_cpu": m["train_tokens_per_cpu_second"] / d["train_tokens_per_cpu_second"],
                         "train_wall": m["train_tokens_per_second"] / d["train_tokens_per_second"],
                         "generate": m["generate_tokens_per_second"] / d["generate_tokens_per_second"],
                         "generate_cpu": m["generate_tokens_per_cpu_second"] / d["generate_tokens_per_cpu_second"]}
        rows.append([name, m["layers"], f"{m['params']:,}", f"{m['flops_per_token']:,.0f}",
                     f"{m['train_tokens_per_cpu_second']:,.0f}", f"{m['train_tokens_per_second']:,.0f}",
                     f"{m['speedups']['train_cpu']:.2f}x", f"{m['speedups']['flops_implied']:.2f}x",
                     f"{m['generate_tokens_per_second']:,.1f}", f"{1000 * m['seconds_per_generated_token']:.2f}",
                     f"{m['speedups']['generate_cpu']:.2f}x"])
    setup = {"layers": _LAYERS.value, "hidden": _HIDDEN.value, "heads": _HEADS.value, "length": _LENGTH.value,
             "removed": counts, "batch_size": _BATCH.value, "steps": _STEPS.value, "prompt": _PROMPT.value,
             "repeats": _REPEATS.value, "data": source, "cpu": platform.processor() or platform.machine(),
             "cores": os.cpu_count(), "affinity": sorted(os.sched_getaffinity(0)),
             "keras_hub": keras_hub.__version__}
    print(markdown_table(["model", "layers", "params", "FLOPs/token", "train tokens/CPU s", "train tokens/s",
                          "train speed-up (CPU)", "FLOPs-implied", "generate tokens/s", "ms/generated token",
                          "generate speed-up (CPU)"], rows))
    write_json_atomic(os.path.join(_OUT.value, f"{_NAME.value}.json"), {"models": models, "setup": setup})


if __name__ == "__main__":
    app.run(main)
