"""The tiny-LM twin: layer tickets of a GPT-2-style decoder at initialization, and depth pruning after training.

A ``GPT2CausalLM`` (byte vocabulary, ``--layers`` layers, hidden ``--hidden``) is trained on a Debian
text corpus (``--corpus``: ``fortunes`` or ``python_docs``, :mod:`tf_lottery.data.text`; 90 % of the
entries for training, split by entry with seed 0 for every seed, so the held-out text is one) by
:mod:`tf_lottery.training.language`'s recipe.
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
  the criteria's agreement (Jaccard index of the removed layers). With ``--heal_methods=finetune,distil,linear``
  each criterion's ticket also heals by distillation from the dense model and by ReplaceMe's linear replacement
  (:mod:`tf_lottery.training.healing`), at the same steps, with their KL divergence to the dense model and the
  paired contrast to fine-tuning (``trained_<criterion>_<method>`` runs).

Each trained model's numbers are written to ``<out>/runs/<seed>_<name>.json`` as it finishes, and a
run started again skips what is there. Within a model, the training state is written to ``--cache``
every ``--checkpoint_steps`` steps (:func:`tf_lottery.training.language.fit_next_token`), so a kill
loses at most one chunk; the layers a ticket removes are kept there too when it is first cut, so a
resumed ticket is the same ticket. ``results.json`` and ``report.md`` are rewritten from the runs
after every seed.

Processes share the work: each model is claimed with a file lock beside its training state, so
two processes started alike (one per core, the same ``--seeds``, ``--out`` and ``--cache``) train
different models, a seed's tickets beside its dense model; a process ends when every model is
finished or held by another. The last to finish (or a run with ``--summarize_only``) writes the
report of them all.

Speed-ups are read from CPU seconds (:class:`tf_lottery.training.language.TrainingTime`): on a
process pinned to one core they are the training's cost whatever else shares the machine; wall
seconds are recorded beside them. Runs trained sessions apart still see the machine's per-core
speed drift between them, so ``--speed`` takes ``scripts/benchmark_language.py``'s measurement of
the same decoder and its tickets trained in turn in one process, and the report gives it beside.

    taskset -c 1 python scripts/lm_twin.py --seeds=0,1,2 --train_steps=1200 &
    taskset -c 0 python scripts/lm_twin.py --seeds=0,1,2 --train_steps=1200 &
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil

import filelock
import numpy as np
from absl import app, flags

import tf_lottery as tl
from tf_lottery.core.io import atomic_path, write_json_atomic, write_text_atomic
from tf_lottery.criteria.language import next_token_batch
from tf_lottery.data import text
from tf_lottery.evals.language import flops_per_token, perplexity
from tf_lottery.models.decoder import byte_decoder
from tf_lottery.reports import stats
from tf_lottery.reports.tables import markdown_table
from tf_lottery.training import healing
from tf_lottery.training.language import fit_next_token

_CORPUS = flags.DEFINE_enum("corpus", "fortunes", ["fortunes", "python_docs"], "The Debian text corpus.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "The corpus folder (default: where the Debian package installs it).")
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
_HEALS = flags.DEFINE_list("heal_methods", ["finetune"], "How the after-training tickets heal, each a row per "
                           "criterion at the same --heal_fraction of steps: finetune (on the labels), distil (on the "
                           "dense model's logits, tl.training.distil), linear (ReplaceMe's least-squares map folded "
                           "into the layer before each removed span, no training, tl.training.replace_linear).")
_HEAL_TEMPERATURE = flags.DEFINE_float("heal_temperature", 2.0, "distil: the softmax temperature.")
_HEAL_HIDDEN = flags.DEFINE_float("heal_hidden", 0.0, "distil: weight of the kept layers' hidden states.")
_LINEAR_CALIBRATION = flags.DEFINE_integer("linear_calibration", 256, "linear: training sequences the map is "
                                           "fitted on.", lower_bound=1)
_CALIBRATION = flags.DEFINE_integer("calibration", 64, "Training sequences the criteria read.", lower_bound=4)
_VAL = flags.DEFINE_integer("val_sequences", 256, "Held-out sequences for perplexity.", lower_bound=1)
_OUT = flags.DEFINE_string("out", "benchmarks/results/lm_twin", "Output folder.")
_CACHE = flags.DEFINE_string("cache", "/tmp/lm_twin_cache", "Where training states, trained dense weights and cut "
                             "tickets are kept between runs.")
_CHECKPOINT = flags.DEFINE_integer("checkpoint_steps", 1000, "Steps between two training states written.",
                                   lower_bound=1)
_REPORT_SEEDS = flags.DEFINE_list("report_seeds", None, "Seeds the report covers (default: --seeds); give every "
                                  "seed when processes train different seeds.")
_SPEED = flags.DEFINE_string("speed", None, "A scripts/benchmark_language.py result of this decoder with tickets "
                              "of the --removed counts (its models interleaved in one process): the "
                              "report gives its CPU-time speed-ups beside the per-run ones.")
_MARGIN = flags.DEFINE_float("margin", 1.0, "The margin ξ of the verdicts, in % of the dense perplexity (a ticket at "
                             "most ξ % worse than its dense model is a winning ticket at ξ).", lower_bound=0)
_SUMMARIZE_ONLY = flags.DEFINE_bool("summarize_only", False, "Only rewrite the report from the finished runs.")

AT_INIT = ("grasp", "snip")
AFTER_TRAINING = ("block_influence", "angular", "cka", "removal_loss", "random")
HEALS = ("finetune", "distil", "linear")


def _row(criterion: str, heal: str) -> str:
    """The run name of an after-training row: ``trained_<criterion>`` fine-tuned (as before healing methods
    were compared), ``trained_<criterion>_<heal>`` otherwise."""
    return f"trained_{criterion}" if heal == "finetune" else f"trained_{criterion}_{heal}"


def _after_rows() -> list:
    """``[(criterion, heal)]`` of the after-training rows, criterion by criterion."""
    return [(criterion, heal) for criterion in AFTER_TRAINING for heal in _HEALS.value]


def _data():
    """``(entries, (train inputs, train labels), (val ids, val mask))``; one split for every seed."""
    entries = tl.data.datasets.get(_CORPUS.value).load(_DATA_DIR.value)["texts"]
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


def _state(seed: int, name: str) -> str:
    return os.path.join(_CACHE.value, f"S{_STEPS.value}_L{_LAYERS.value}_H{_HIDDEN.value}", f"{seed}_{name}")


@contextlib.contextmanager
def _claimed(seed: int, name: str):
    """Yields whether this process holds model ``name`` of ``seed``: False while another process
    trains it. The lock is an OS file lock, so a killed process lets go of it."""
    os.makedirs(os.path.dirname(_state(seed, name)), exist_ok=True)
    lock = filelock.FileLock(_state(seed, name) + ".lock")
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        yield False
        return
    try:
        yield True
    finally:
        lock.release()


def _theta0(seed: int):
    """The seed's dense decoder at initialization (the same weights in every process)."""
    return byte_decoder(_LAYERS.value, _HIDDEN.value, _HEADS.value, _LENGTH.value, seed)


def _fit(seed, name, model, inputs, labels, steps, batch_seed):
    timing = fit_next_token(model, inputs, labels, steps=steps, batch_size=_BATCH.value, seed=batch_seed,
                            learning_rate=_RATE.value, checkpoint_dir=_state(seed, name),
                            checkpoint_steps=_CHECKPOINT.value)
    return timing


def _train_and_measure(seed, name, model, train, val, removed, scores=None, keep=None) -> None:
    """Trains and records ``name``; ``keep``, a path, receives the trained weights before the record
    is written (a kill in between finds the finished training state and only records it)."""
    timing = _fit(seed, name, model, *train, _STEPS.value, seed)
    if keep:
        with atomic_path(keep) as temporary:
            model.save_weights(temporary)
    tokens = _STEPS.value * _BATCH.value * _LENGTH.value
    _save_run(seed, name, {
        "perplexity": perplexity(model, *val), "train_seconds": timing.seconds,
        "train_cpu_seconds": timing.cpu_seconds, "sessions": timing.sessions,
        "train_tokens_per_second": tokens / timing.seconds,
        "train_tokens_per_cpu_second": tokens / timing.cpu_seconds,
        "flops_per_token": flops_per_token(model, _LENGTH.value), "params": int(model.count_params()),
        "layers": int(model.backbone.num_layers), "removed": sorted(removed), "scores": scores or {}})
    shutil.rmtree(_state(seed, name), ignore_errors=True)


def _ticket(seed, name, dense, criterion, count, pair):
    """The ticket ``name`` of ``dense`` at θ0: cut once, then rebuilt from the layers it removed, so
    a resumed training continues the same ticket (a close score could tip another way on a rerun)."""
    cut = os.path.join(_state(seed, name), "ticket.json")
    if os.path.exists(cut):
        with open(cut) as handle:
            kept = json.load(handle)
        model = tl.surgery.family_ticket(dense, kept["removed"], min_blocks_per_stage=0)
        return model, kept["removed"], kept["scores"]
    result = tl.find_ticket(dense, criterion, num_blocks=count, data=pair, min_blocks_per_stage=0)
    os.makedirs(os.path.dirname(cut), exist_ok=True)
    write_json_atomic(cut, {"removed": sorted(result.removed), "scores": result.scores})
    return result.model, sorted(result.removed), result.scores


def _cut(seed, criterion, dense, train):
    """The layers ``criterion`` removes from the trained ``dense`` model (and its scores): found once per seed
    and kept in the cache, so every healing row of the criterion heals the same ticket."""
    path = _state(seed, f"cut_{criterion}") + ".json"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with filelock.FileLock(path + ".lock"):  # another process cutting it: wait, then read its cut
        if os.path.exists(path):
            with open(path) as handle:
                kept = json.load(handle)
            return kept["removed"], kept["scores"]
        return _cut_now(seed, criterion, dense, train, path)


def _cut_now(seed, criterion, dense, train, path):
    """Scores ``dense`` by ``criterion`` on the calibration sequences and writes the cut to ``path``."""
    inputs, labels = train
    calibration = {name: value[:_CALIBRATION.value] for name, value in inputs.items()}
    count = max(1, round(_PRUNE.value * _LAYERS.value))
    options, data = {}, calibration
    if criterion == "angular":
        options = {"window": count}
    elif criterion == "removal_loss":
        data = (calibration, labels[:_CALIBRATION.value])
    elif criterion == "random":
        options, data = {"seed": seed}, None
    result = tl.find_ticket(dense, criterion, num_blocks=count, data=data, min_blocks_per_stage=0, **options)
    write_json_atomic(path, {"removed": sorted(result.removed), "scores": result.scores})
    return sorted(result.removed), result.scores


def _after_training(seed, criterion, heal, dense, train, val) -> None:
    """Removes ``--prune_fraction`` of the trained ``dense`` model's layers by ``criterion``, heals the ticket by
    ``heal`` and records it."""
    inputs, labels = train
    name = _row(criterion, heal)
    heal_steps = max(1, round(_HEAL.value * _STEPS.value))
    removed, scores = _cut(seed, criterion, dense, train)
    ticket = tl.surgery.family_ticket(dense, removed, min_blocks_per_stage=0)
    removed_ppl = perplexity(ticket, *val)
    found = {"removed": removed, "perplexity_after_removal": removed_ppl, "heal": heal, "scores": scores,
             "kl_after_removal": healing.kl_to_teacher(ticket, dense, val_inputs(val))}
    if heal == "finetune":
        _fit(seed, name, ticket, inputs, labels, heal_steps, seed + 1)
        found["heal_steps"] = heal_steps
    elif heal == "distil":
        healing.distil(ticket, dense, (inputs, labels), steps=heal_steps, temperature=_HEAL_TEMPERATURE.value,
                       hidden=_HEAL_HIDDEN.value, batch_size=_BATCH.value, seed=seed + 1, learning_rate=_RATE.value,
                       checkpoint_dir=_state(seed, name), checkpoint_steps=_CHECKPOINT.value)
        found.update(heal_steps=heal_steps, temperature=_HEAL_TEMPERATURE.value, hidden=_HEAL_HIDDEN.value)
    else:
        calibration = {key: value[:_LINEAR_CALIBRATION.value] for key, value in inputs.items()}
        found.update(heal_steps=0, calibration_tokens=healing.tokens_in(calibration))
        try:
            ticket = healing.replace_linear(dense, removed, calibration).model
        except ValueError as error:  # a span at the first layer: nothing before it to fold into
            found.update(perplexity_after_healing=None, kl_after_healing=None, refused=str(error))
            _save_run(seed, name, found)
            _forget_cut(seed, criterion)
            return
    found.update(perplexity_after_healing=perplexity(ticket, *val),
                 kl_after_healing=healing.kl_to_teacher(ticket, dense, val_inputs(val)))
    _save_run(seed, name, found)
    shutil.rmtree(_state(seed, name), ignore_errors=True)
    _forget_cut(seed, criterion)


def _forget_cut(seed, criterion) -> None:
    """Removes the kept cut of ``criterion`` once every healing row of it is recorded."""
    if all(_done(seed, _row(criterion, heal)) for heal in _HEALS.value):
        with contextlib.suppress(FileNotFoundError):
            os.remove(_state(seed, f"cut_{criterion}") + ".json")


def val_inputs(val) -> dict:
    """The held-out windows as model inputs (every token but the last), for the KL divergence to the dense model."""
    return next_token_batch(*val)[0]


def run_seed(seed: int, train, val) -> None:
    """Trains what ``<out>/runs`` lacks of one seed and no other process holds (the module docstring):
    the dense model, then the after-training rows (which need its trained weights), then the
    tickets, cheapest first, so a session that ends mid-seed loses the shortest training."""
    inputs, labels = train
    weights = os.path.join(_CACHE.value, f"seed{seed}_L{_LAYERS.value}_H{_HIDDEN.value}_S{_STEPS.value}"
                                         ".weights.h5")
    pending = [(criterion, heal) for criterion, heal in _after_rows() if not _done(seed, _row(criterion, heal))]
    dense = None
    # A finished dense model trains again only for after-training rows whose weights are gone
    # (a new machine); a finished seed goes straight on to its tickets.
    if not _done(seed, "dense") or (pending and not os.path.exists(weights)):
        with _claimed(seed, "dense") as mine:
            if mine and (not _done(seed, "dense") or (pending and not os.path.exists(weights))):
                dense = _theta0(seed)
                _train_and_measure(seed, "dense", dense, train, val, [], keep=weights)
    for criterion, heal in pending:
        if not (_done(seed, "dense") and os.path.exists(weights)):
            break  # another process trains the dense model and goes on to these rows
        with _claimed(seed, _row(criterion, heal)) as mine:
            if mine and not _done(seed, _row(criterion, heal)):
                if dense is None:
                    dense = _theta0(seed)
                    dense.load_weights(weights)
                _after_training(seed, criterion, heal, dense, train, val)
    pair = ({name: value[:_CALIBRATION.value] for name, value in inputs.items()}, labels[:_CALIBRATION.value])
    counts = sorted((int(p) for p in _REMOVED.value), reverse=True)
    for count, criterion in itertools.product(counts, AT_INIT):
        name = f"{criterion}_{count}"
        if _done(seed, name):
            continue
        with _claimed(seed, name) as mine:
            if mine and not _done(seed, name):
                model, removed, scores = _ticket(seed, name, _theta0(seed), criterion, count, pair)
                _train_and_measure(seed, name, model, train, val, removed, scores)


def _load_runs(seeds) -> dict:
    found = {}
    for seed in seeds:
        folder = os.path.join(_OUT.value, "runs")
        for file in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
            if file.startswith(f"{seed}_") and file.endswith(".json"):
                with open(os.path.join(folder, file)) as handle:
                    found.setdefault(file[len(f"{seed}_"):-5], {})[seed] = json.load(handle)
    return found


def _cost(run: dict) -> float:
    """A run's training CPU seconds (wall seconds for runs recorded before they were kept)."""
    return run["train_cpu_seconds"] if run.get("train_cpu_seconds") is not None else run["train_seconds"]


def _jaccard(a, b) -> float:
    return len(set(a) & set(b)) / len(set(a) | set(b))


def _layers_per_seed(removed_per_seed) -> str:
    """The report's "removed layers" cell: ``0, 1; 0, 2`` for keras_hub's ``transformer_layer_<i>``
    names (one group per seed), the names themselves for any other."""
    prefix = "transformer_layer_"

    def short(name):
        index = name[len(prefix):]
        return index if name.startswith(prefix) and index.isdigit() else name

    return "; ".join(", ".join(short(name) for name in removed) for removed in removed_per_seed)


def interleaved_speedups(kind: str = "train_cpu") -> dict:
    """``{layers removed: training speed-up}`` from ``--speed`` (empty without it): ``kind`` ``train_cpu``
    (the ratio of training CPU seconds) or ``train_wall`` (of wall seconds).

    Raises:
        ValueError: when the file measured another decoder or batch than this twin's, naming both.
    """
    if not _SPEED.value:
        return {}
    with open(_SPEED.value) as handle:
        measured = json.load(handle)
    ours = {"layers": _LAYERS.value, "hidden": _HIDDEN.value, "heads": _HEADS.value, "length": _LENGTH.value,
            "batch_size": _BATCH.value}
    theirs = {name: measured["setup"].get(name) for name in ours}
    if theirs != ours:
        raise ValueError(f"it measured {theirs}, not this twin's {ours}")
    return {-int(name): model["speedups"][kind] for name, model in measured["models"].items()
            if name != "dense"}


def _relative(dense_ppl: float, other_ppl: float) -> float:
    """Dense minus another model's perplexity in % of the dense one (positive: the other predicts better)."""
    return 100.0 * (dense_ppl - other_ppl) / dense_ppl


def _paired(values, seeds, kind: str = "ticket"):
    return stats.paired(values, seeds=seeds, xi=_MARGIN.value, kind=kind)


def _verdict(summary) -> str:
    return stats.verdict_text(summary.verdict, _MARGIN.value, "%")


def _flag_text(value) -> str:
    """A flag's value as the command line writes it (a list comma-separated)."""
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def _healing_rows(runs, dense, seeds):
    """The healing methods' table rows and results (empty when only fine-tuning heals): per criterion and method,
    the healed perplexity and KL divergence to the dense model, dense − healed, and the method − finetune contrast."""
    if set(_HEALS.value) == {"finetune"}:
        return [], {}
    rows, results = [], {}
    for criterion, heal in _after_rows():
        runs_of = runs.get(_row(criterion, heal), {})
        done = [s for s in seeds if s in runs_of and runs_of[s].get("perplexity_after_healing") is not None]
        refused = [s for s in seeds if s in runs_of and runs_of[s].get("perplexity_after_healing") is None]
        if not done and not refused:
            continue
        entry = {"seeds": done, "refused_seeds": refused,
                 "perplexity": [runs_of[s]["perplexity_after_healing"] for s in done],
                 "kl": [runs_of[s]["kl_after_healing"] for s in done]}
        cells = ["—"] * 6
        paired = [s for s in done if s in dense]
        if paired:
            healed = _paired([_relative(dense[s]["perplexity"], runs_of[s]["perplexity_after_healing"])
                              for s in paired], paired)
            entry["dense_minus_healed_pct"] = healed.to_dict()
            cells[:3] = [f"{healed.mean:+.2f}", stats.interval_text(healed), _verdict(healed)]
        tuned = runs.get(_row(criterion, "finetune"), {})
        both = [s for s in paired if s in tuned and heal != "finetune"]
        if len(both) >= 2:
            contrast = _paired([_relative(dense[s]["perplexity"], runs_of[s]["perplexity_after_healing"])
                                - _relative(dense[s]["perplexity"], tuned[s]["perplexity_after_healing"])
                                for s in both], both, "contrast")
            entry["minus_finetune_pct"] = contrast.to_dict()
            cells[3:] = [f"{contrast.mean:+.2f}", stats.interval_text(contrast), _verdict(contrast)]
        results[_row(criterion, heal)] = entry
        rows.append([criterion, heal, f"{np.mean(entry['perplexity']):.3f}" if done else "refused",
                     f"{np.mean(entry['kl']):.4f}" if done else "—", *cells,
                     f"{len(done)}" + (f" ({len(refused)} refused)" if refused else "")])
    return rows, results


def summarize(seeds, entries) -> None:
    """Writes ``results.json`` and ``report.md`` from the finished runs."""
    runs = _load_runs(seeds)
    dense = runs.get("dense", {})
    interleaved, interleaved_wall = interleaved_speedups(), interleaved_speedups("train_wall")
    at_init_rows, at_init = [], {}
    dense_ppl = [dense[s]["perplexity"] for s in seeds if s in dense]
    if dense_ppl:
        at_init_rows.append(["dense", "-", f"{np.mean(dense_ppl):.3f}", "—", "—", "—", "—", "1.00x", "1.00x",
                             "1.00x", "1.00x", f"{len(dense_ppl)}"])
    for criterion, count in itertools.product(AT_INIT, [int(p) for p in _REMOVED.value]):
        name = f"{criterion}_{count}"
        ticket = runs.get(name, {})
        both = [s for s in seeds if s in ticket and s in dense]
        if not both:
            continue
        # dense minus ticket in % of dense: positive when the ticket predicts held-out text better
        summary = _paired([_relative(dense[s]["perplexity"], ticket[s]["perplexity"]) for s in both], both)
        speed = [_cost(dense[s]) / _cost(ticket[s]) for s in both]
        implied = [dense[s]["flops_per_token"] / ticket[s]["flops_per_token"] for s in both]
        at_init[name] = {"seeds": both, "perplexity": [ticket[s]["perplexity"] for s in both],
                         "dense_minus_ticket_pct": summary.to_dict(),
                         "measured_speedup_cpu": speed,
                         "flops_implied_speedup": implied,
                         "interleaved_speedup_cpu": interleaved.get(count),
                         "interleaved_speedup_wall": interleaved_wall.get(count),
                         "removed": {str(s): ticket[s]["removed"] for s in both}}
        at_init_rows.append([f"{criterion.upper() if criterion == 'snip' else 'GraSP'} −{count}",
                             _layers_per_seed(ticket[s]["removed"] for s in both),
                             f"{np.mean(at_init[name]['perplexity']):.3f}", f"{summary.mean:+.2f}",
                             stats.interval_text(summary), stats.detectable_text(summary), _verdict(summary),
                             f"{np.mean(speed):.2f}x",
                             f"{interleaved[count]:.2f}x" if count in interleaved else "—",
                             f"{interleaved_wall[count]:.2f}x" if count in interleaved_wall else "—",
                             f"{np.mean(implied):.2f}x", f"{len(both)}"])
    contrast_rows, contrasts = [], {}
    for count in [int(p) for p in _REMOVED.value]:
        grasp, snip = runs.get(f"grasp_{count}", {}), runs.get(f"snip_{count}", {})
        both = [s for s in seeds if s in grasp and s in snip and s in dense]
        if len(both) < 2:
            continue
        # SNIP's ticket minus GraSP's, each against the same dense model: positive when SNIP's predicts better
        summary = _paired([_relative(dense[s]["perplexity"], snip[s]["perplexity"])
                           - _relative(dense[s]["perplexity"], grasp[s]["perplexity"]) for s in both], both, "contrast")
        contrasts[f"snip_{count} - grasp_{count}"] = summary.to_dict()
        contrast_rows.append([f"SNIP −{count} − GraSP −{count}", f"{summary.mean:+.2f}", stats.interval_text(summary),
                              stats.detectable_text(summary), _verdict(summary).replace("better", "SNIP better").replace(
                                  "worse", "GraSP better"), f"{len(both)}"])
    trained_rows, trained, healed_gap = [], {}, {}
    for criterion in AFTER_TRAINING:
        runs_of = runs.get(f"trained_{criterion}", {})
        done = [s for s in seeds if s in runs_of]
        if not done:
            continue
        trained[criterion] = {str(s): runs_of[s] for s in done}
        gap_cells = ["—", "—", "—"]
        paired = [s for s in done if s in dense]
        if paired:  # does the healed model reach its own dense model?
            healed = _paired([_relative(dense[s]["perplexity"], runs_of[s]["perplexity_after_healing"])
                              for s in paired], paired)
            healed_gap[criterion] = healed.to_dict()
            gap_cells = [f"{healed.mean:+.2f}", stats.interval_text(healed), _verdict(healed)]
        trained_rows.append([criterion, _layers_per_seed(runs_of[s]["removed"] for s in done),
                             f"{np.mean([runs_of[s]['perplexity_after_removal'] for s in done]):.3f}",
                             f"{np.mean([runs_of[s]['perplexity_after_healing'] for s in done]):.3f}",
                             *gap_cells, f"{len(done)}"])
    heal_rows, healing_results = _healing_rows(runs, dense, seeds)
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
             "val_sequences": _VAL.value, "seeds": seeds, "params": params, "corpus_entries": len(entries),
             "interleaved_speed": _SPEED.value}
    command = ("taskset -c 1 python scripts/lm_twin.py --seeds=" + ",".join(map(str, seeds)) + " " + " ".join(
        f"--{name}={_flag_text(flags.FLAGS[name].value)}" for name in ("corpus", "layers", "hidden", "heads", "length",
                                                           "batch_size", "train_steps", "learning_rate",
                                                           "prune_fraction", "heal_fraction", "calibration",
                                                           "heal_methods", "heal_temperature", "heal_hidden",
                                                           "linear_calibration")))
    report = "\n\n".join([
        "# The tiny-LM twin: layer tickets of a decoder at initialization, and depth pruning after training",
        f"GPT2CausalLM (keras_hub), {_LAYERS.value} layers, hidden {_HIDDEN.value}, {_HEADS.value} heads, "
        f"{params:,} parameters, byte vocabulary (258 ids), sequences of {_LENGTH.value} tokens; the "
        f"{_CORPUS.value} corpus ({len(entries):,} entries, 10 % held out by entry, {_VAL.value} held-out "
        f"sequences). Every model trains {_STEPS.value} steps of {_BATCH.value} sequences ({tokens:,} tokens) of AdamW on a warmed-up "
        "cosine, with the same batches per seed, each process on one core. Seeds: "
        f"{', '.join(map(str, seeds))}.",
        "## At initialization: GraSP and SNIP tickets against the dense model from the same θ0",
        "The difference is dense minus ticket held-out perplexity per seed in % of the dense perplexity (positive: "
        "the ticket is better), with its 95 % t interval over the seeds and the minimum detectable difference (MDD) "
        f"at 80 % power. The verdict reads the interval against the margin ξ = {_MARGIN.value:g} % (the paper's "
        "Eq. 1): wins above 0, winning ticket at ξ above −ξ, loses below −ξ, undetermined across −ξ. Speed-ups: "
        "dense training CPU seconds over the ticket's (measured per run, one core per process); the same ratio, and "
        "the ratio of wall seconds, for the decoders trained in turn within one process (interleaved: "
        + (f"`{_SPEED.value}`, scripts/benchmark_language.py" if interleaved else "not given, --speed") +
        "); dense FLOPs per token over the ticket's (implied). CPU seconds count the process's own computation; wall "
        "seconds also count the time it waited for a shared machine, so where the two differ the machine was busy. "
        "The per-run ratio compares runs trained hours or sessions apart, so it moves with the machine's per-core "
        "speed between them; the interleaved ones do not.",
        markdown_table(["model", "removed layers (index; per seed)", "perplexity", "dense − ticket (%)",
                        "95 % interval", "MDD (%)", "verdict", "per-run speed-up (CPU s)",
                        "interleaved speed-up (CPU s)", "interleaved speed-up (wall s)", "FLOPs-implied", "seeds"],
                       at_init_rows),
        "Two criteria are compared by their paired difference, not by their separate verdicts: SNIP's ticket minus "
        "GraSP's at the same number of layers, each against the dense model of its seed (% of the dense "
        "perplexity; positive: SNIP's predicts better).",
        markdown_table(["contrast", "mean (%)", "95 % interval", "MDD (%)", "verdict", "seeds"], contrast_rows),
        f"## After training: {count} of {_LAYERS.value} layers removed from the trained dense model",
        f"Each criterion scores the trained model on {_CALIBRATION.value} training sequences; healing is "
        f"{heal_steps} steps of AdamW ({_HEAL.value:.0%} of training) from a fresh optimizer. Dense held-out "
        f"perplexity: {np.mean(dense_ppl):.3f} (mean over the seeds); dense − healed (% of the dense perplexity) "
        "is paired by seed, read as above." if dense_ppl else "",
        markdown_table(["criterion", "removed layers (index; per seed)", "perplexity after removal", "after healing",
                        "dense − healed (%)", "95 % interval", "verdict", "seeds"], trained_rows),
        *(["## Healing methods after training, at one budget",
           f"Each criterion's ticket (the layers above) heals by each method: `finetune` trains {heal_steps} steps "
           "on the labels, `distil` as many steps on the dense model's logits (KL divergence at temperature "
           f"{_HEAL_TEMPERATURE.value:g}, hidden-state weight {_HEAL_HIDDEN.value:g}; tl.training.distil), both "
           f"{heal_steps * _BATCH.value * _LENGTH.value:,} tokens; `linear` fits ReplaceMe's least-squares map on "
           f"{_LINEAR_CALIBRATION.value} training sequences and trains nothing (tl.training.replace_linear; refused "
           "when a removed span starts at the first layer). KL: the mean divergence from the dense model's next-token "
           "distribution on the held-out sequences (nats). Method − finetune: the two healed perplexities' paired "
           "difference in % of the dense perplexity (positive: the method is better), read against ξ as above.",
           markdown_table(["criterion", "healing", "perplexity", "KL to dense", "dense − healed (%)", "95 % interval",
                           "verdict", "method − finetune (%)", "95 % interval", "verdict", "seeds"], heal_rows)]
          if heal_rows else []),
        "Agreement (Jaccard index of the removed layers, mean over the seeds):\n\n" + markdown_table(
            ["pair", "Jaccard"], [[name, f"{value:.2f}"] for name, value in agreement.items()]),
        f"Command: `{command}`",
    ])
    write_json_atomic(os.path.join(_OUT.value, "results.json"), {
        "setup": setup, "dense": {str(s): dense[s] for s in seeds if s in dense}, "at_initialization": at_init,
        "after_training": trained, "dense_minus_healed_pct": healed_gap, "contrasts_pct": contrasts,
        "margin_pct": _MARGIN.value, "agreement_jaccard": agreement, "healing": healing_results,
        "command": command})
    write_text_atomic(os.path.join(_OUT.value, "report.md"), report + "\n")
    print(report)


def main(argv):
    del argv
    seeds = [int(seed) for seed in _SEEDS.value]
    report_seeds = [int(seed) for seed in (_REPORT_SEEDS.value or _SEEDS.value)]
    unknown = [name for name in _HEALS.value if name not in HEALS]
    if unknown or not _HEALS.value:
        raise app.UsageError(f"--heal_methods must name some of {', '.join(HEALS)}; got {','.join(_HEALS.value)}")
    try:  # a --speed of another decoder is refused before anything trains
        interleaved_speedups()
    except (OSError, ValueError, KeyError) as error:
        raise app.UsageError(f"--speed={_SPEED.value}: {error}") from None
    entries, train, val = _data()
    for seed in [] if _SUMMARIZE_ONLY.value else seeds:
        run_seed(seed, train, val)
        summarize(report_seeds, entries)
    summarize(report_seeds, entries)


if __name__ == "__main__":
    app.run(main)
