"""Healing a ticket cut from a trained model: distillation from the dense model, and a training-free
linear replacement of a removed span (ReplaceMe).

**Distillation** (:func:`distil`). The ticket (the student) learns the dense model's (the teacher's)
logits: the loss is the Kullback-Leibler divergence ``KL(softmax(t / T) || softmax(s / T))`` times
``T²`` at a temperature ``T``, averaged over positions, with Keras 3's ``keras.distillation``
(``Distiller`` and ``LogitsDistillation``). With ``hidden`` > 0 it also learns the teacher's hidden
states at the kept blocks (``FeatureDistillation`` with :func:`relative_squared_error`, the mean squared
error over the teacher's mean square, averaged over the blocks, weighted ``hidden``): block ``j`` of the ticket is matched to the dense block it was, read from the lineage
(:func:`paired_blocks`; a keras_hub ticket numbers its layers anew, ``transformer_layer_0 ...``, and keeps
their original names in :func:`tf_lottery.surgery.kept_blocks`). The student's loss on labels is left out (Minitron's
choice: the teacher's distribution carries them). A padded position (``padding_mask`` 0) adds nothing:
the teacher's and the student's outputs are zeroed there, so its divergence and gradient are 0 (the
mean still counts it, a constant scale within a batch of fixed length).

Distillation trains the way :func:`tf_lottery.training.language.fit_next_token` does (AdamW on a
warmed-up cosine, batches in a seeded order, the same ``steps`` budget), so a distilled ticket and a
fine-tuned one are compared at equal steps and seed; with ``checkpoint_dir`` it keeps the same
resume and kill guarantees (a state every ``checkpoint_steps`` steps, written atomically; a rerun with
the same arguments continues on the same batches). The command line's ``--heal=distil`` trains a
ticket of the ``lottery`` experiment on the recipe's length through :func:`distil_trainer`, which runs
:func:`tf_lottery.training.fit` and its epoch checkpoints.

**Linear replacement** (:func:`replace_linear`; Shopkhoev et al., "ReplaceMe", 2025). A pre-norm block
``p`` computes ``L = Y + M``: ``Y`` its input plus its attention branch, ``M = f(.) W + b`` its MLP's
output projection. Removing the span of blocks ``p+1 .. q`` after it, a linear map ``T`` fitted by least
squares on calibration tokens, ``min_T ||M T - (L_q - Y)||²`` (``L_q``: the dense model's hidden state
leaving the span), replaces the span by ``L' = Y + M T``, and ``T`` folds *exactly* into the output
projection: ``W' = W T``, ``b' = b T``. The residual path ``Y`` passes unchanged: a map of the whole
stream (``L_p -> L_q``) cannot fold into ``W`` alone (it would need ``Y T``), and in a pre-norm decoder
the next layer's input projection sits behind a norm and cannot take it either. So the fit is the
MLP-branch map (ReplaceMe's own form), which the fold reproduces to float rounding, and the ticket stays
a model of its keras_hub class. Its one approximation is the least-squares fit itself; on the
calibration tokens it is never worse than plain removal (``T = I``), the least-squares optimum's
guarantee. A family whose block adds a norm after the MLP (Gemma 2 and 3's post-feed-forward norm) does
not fold exactly: :func:`replace_linear` checks the fold on the calibration tokens and refuses such a
family, naming it; so does a span that starts at the first block (no block before it to fold into).

Example:
    >>> tl.training.distil(ticket, dense, (inputs, labels), steps=200, temperature=2.0, batch_size=16)
    >>> healed = tl.training.replace_linear(dense_lm, ["transformer_layer_2", "transformer_layer_3"], calibration).model
"""

from __future__ import annotations

import time
import contextlib
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import keras
import numpy as np

from tf_lottery import graph
from tf_lottery.graph import heads
from tf_lottery.core import arguments
from tf_lottery.core.log import log
from tf_lottery.runtime import distribute
from tf_lottery.surgery import families, family_ticket, find_blocks, kept_blocks
from tf_lottery.training import loop
from tf_lottery.training.language import (
    WEIGHT_DECAY, TrainingTime, _restore, _save, batch_order, next_token_schedule,
)

DOWN_PROJECTIONS = ("feedforward_output_dense", "ffw_linear")
"""The names keras_hub gives the MLP's output projection inside a decoder block (GPT-2, Llama, Mistral,
Qwen, Phi-3, ...: ``feedforward_output_dense``; Gemma: ``ffw_linear``)."""

_MASK = "padding_mask"


# --- which hidden states match -------------------------------------------------------------------


def _family_blocks(model) -> Optional[list]:
    """The block layers of a keras_hub family model (a task's backbone's), or None for another model."""
    if not families.has_family(model):
        return None
    inner = families.block_model(model)
    return list(families.family_of(inner).blocks(inner))


def paired_blocks(student: keras.Model, teacher: keras.Model) -> List[Tuple[str, str]]:
    """``[(student block, teacher block)]``: each block of the ticket ``student`` with the block of
    ``teacher`` it was cut from, in order.

    A keras_hub ticket (:func:`tf_lottery.surgery.family_ticket`) numbers its layers anew; its lineage
    keeps the original name of each (:func:`tf_lottery.surgery.kept_blocks`), matched against the
    teacher's. A flat ticket (:func:`tf_lottery.surgery.remove_blocks`) keeps its blocks' names.

    Args:
        student: A ticket cut from ``teacher`` (or from a model ``teacher`` was cut from).
        teacher: The dense model.

    Returns:
        The pairs, by the layers' own names in each model.

    Raises:
        ValueError: when a block of ``student`` is not in ``teacher`` (another model's ticket), or when
            one of the two has blocks and the other does not.

    Example:
        >>> paired_blocks(ticket, dense)   # transformer_layer_1 of the ticket was the dense model's 2
        [('transformer_layer_0', 'transformer_layer_0'), ('transformer_layer_1', 'transformer_layer_2')]
    """
    s_blocks, t_blocks = _family_blocks(student), _family_blocks(teacher)
    if (s_blocks is None) != (t_blocks is None):
        raise ValueError(f"{student.name!r} and {teacher.name!r} are not of one kind: one is a keras_hub family "
                         "model and the other is not; distil a ticket from the model it was cut from")
    if s_blocks is not None:
        s_original, t_original = kept_blocks(student), kept_blocks(teacher)
        s_names = [b.name for b in s_blocks]
        t_by_original = dict(zip(t_original, (b.name for b in t_blocks)))
    else:
        s_original = s_names = [b.name for b in find_blocks(student)]
        t_by_original = {b.name: b.name for b in find_blocks(teacher)}
    missing = [name for name in s_original if name not in t_by_original]
    if missing:
        raise ValueError(f"blocks {missing} of {student.name!r} are not blocks of {teacher.name!r} (it has "
                         f"{sorted(t_by_original)}): the student is not a ticket of this teacher")
    return [(own, t_by_original[original]) for own, original in zip(s_names, s_original)]


def _graph_view(model: keras.Model, blocks: Sequence[str]) -> Tuple[object, list, list]:
    """``(inputs, [output], [hidden state of each block])``, symbolic tensors of one graph of ``model``.

    A family model's blocks are read in its backbone's graph (a causal LM task calls its tied embedding
    twice, which the graph reader refuses; the task is built on its backbone's inputs); another model's
    in its flat graph (:func:`tf_lottery.graph.flat`), never by ``layer.output``, which reads a layer's
    first call, not necessarily in this model's graph.
    """
    family = _family_blocks(model)
    if family is not None:
        backbone = families.block_model(model)
        return model.input, list(model.outputs), [graph.output_of(backbone, name) for name in blocks]
    view = graph.flat(model)
    outputs = {b.name: b.output_layer for b in find_blocks(view)}
    return view.input, list(view.outputs), [graph.output_of(view, outputs[name]) for name in blocks]


def _view(model: keras.Model, blocks: Sequence[str]) -> keras.Model:
    """``model``'s inputs -> ``{"logits", "hidden_<i>"}``, sharing its layers; zero where padded."""
    inputs, logits, hidden = _graph_view(model, blocks)
    if len(logits) != 1:
        raise ValueError(f"{model.name!r} has {len(logits)} outputs; distillation learns one (the logits)")
    if _family_blocks(model) is None and heads.outputs_probabilities(model):
        raise ValueError(f"{model.name!r} ends in a softmax; distillation divides logits by the temperature: build "
                         "it with logits out (tl.models.cifar_resnet(..., output='logits'))")
    outputs = {"logits": logits[0], **{f"hidden_{i}": t for i, t in enumerate(hidden)}}
    if isinstance(inputs, dict) and _MASK in inputs:
        kept = keras.ops.expand_dims(keras.ops.cast(inputs[_MASK], "float32"), -1)
        outputs = {name: keras.ops.multiply(keras.ops.cast(value, "float32"), kept) for name, value in outputs.items()}
    return keras.Model(inputs, outputs, name=f"{model.name}_distilled_view")


def relative_squared_error(teacher, student):
    """The mean squared difference of two hidden states over the teacher's mean square: a hidden-state
    loss of one scale in every block and model (a trained network's raw activations can be large enough
    for a plain mean squared error to drown the logits' divergence and diverge). Zeroed (padded) positions
    add nothing to either mean.

    Args:
        teacher: The dense model's hidden state.
        student: The ticket's hidden state at the matching block, of the same shape.

    Returns:
        A scalar tensor: 0 when they agree, 1 when the student's state is all zeros.

    Example:
        >>> float(relative_squared_error(keras.ops.ones((2, 3)), keras.ops.zeros((2, 3))))
        1.0
    """
    difference = keras.ops.mean(keras.ops.square(keras.ops.subtract(student, teacher)))
    return difference / (keras.ops.mean(keras.ops.square(teacher)) + 1e-12)


@contextlib.contextmanager
def _teacher_kept(teacher: keras.Model):
    """Gives ``teacher``'s layers back its ``trainable`` flag after a distiller froze them (``Distiller``
    freezes its teacher, here a view sharing the layers, not the model's own flag). The flag is set on the
    whole model, as Keras sets it: a layer frozen by itself inside a trainable teacher comes back trainable."""
    before = teacher.trainable
    try:
        yield
    finally:
        teacher.trainable = not before  # setting the value it already has would not reach the layers
        teacher.trainable = before


def distiller(student: keras.Model, teacher: keras.Model, temperature: float = 2.0,
              hidden: float = 0.0) -> keras.distillation.Distiller:
    """A ``keras.distillation.Distiller`` training ``student`` on ``teacher``'s logits (and hidden states).

    Its teacher and student are views of the two models (their inputs to the logits and, with ``hidden``,
    to the kept blocks' outputs), sharing their layers: training it trains ``student``. It is not compiled.

    Args:
        student: The ticket.
        teacher: The dense model it was cut from. ``Distiller`` freezes it (its layers are set not
            trainable, and stay so; :func:`distil` and :func:`distil_trainer` set them back).
        temperature: The softmax temperature T, > 0.
        hidden: Weight of the hidden states' relative squared error (:func:`relative_squared_error`,
            averaged over the kept blocks) beside the logits' divergence, >= 0 (0: logits only).

    Returns:
        The distiller (see the module docstring for its loss).

    Raises:
        TypeError, ValueError: for a bad temperature or weight, models of several outputs, or a student
            that is not a ticket of ``teacher`` (with ``hidden``).

    Example:
        >>> d = distiller(ticket, dense, temperature=2.0, hidden=0.1)
        >>> d.compile(optimizer="adam", loss="mse"); d.fit(images, epochs=1)
    """
    arguments.instance("student", student, keras.Model, "a keras.Model (the ticket)")
    arguments.instance("teacher", teacher, keras.Model, "a keras.Model (the dense model)")
    temperature = arguments.number("temperature", temperature, above=0)
    hidden = arguments.number("hidden", hidden, least=0)
    pairs = paired_blocks(student, teacher) if hidden > 0 else []
    if hidden > 0 and not pairs:
        raise ValueError(f"hidden={hidden}, but {student.name!r} has no blocks whose hidden states match")
    s_view = _view(student, [s for s, _ in pairs])
    t_view = _view(teacher, [t for _, t in pairs])
    names = ["logits"] + [f"hidden_{i}" for i in range(len(pairs))]
    # A KLDivergence *instance*: LogitsDistillation takes softmaxes only for that class (the string
    # "kl_divergence" resolves to a function, which it would apply to the scaled logits themselves).
    losses = [keras.distillation.LogitsDistillation(
        temperature=temperature, loss={n: keras.losses.KLDivergence() if n == "logits" else None for n in names})]
    weights = [1.0]
    if pairs:
        losses.append(keras.distillation.FeatureDistillation(
            loss={n: None if n == "logits" else relative_squared_error for n in names}))
        weights.append(hidden / len(pairs))
    model = keras.distillation.Distiller(teacher=t_view, student=s_view, distillation_losses=losses,
                                         distillation_loss_weights=weights, student_loss_weight=0.0)
    model.built = True  # its two views are built and it has no weights of its own: a saved state loads before a step
    return model


# --- distillation by steps -----------------------------------------------------------------------


def _inputs_of(data):
    """The inputs of ``data``: an array, a dict of arrays, or an ``(inputs, labels)`` pair (labels unused)."""
    if isinstance(data, tuple) and len(data) in (2, 3):
        data = data[0]
    if isinstance(data, dict):
        arrays = {name: np.asarray(value) for name, value in data.items()}
        lengths = {len(value) for value in arrays.values()}
        if len(lengths) != 1:
            raise ValueError(f"the inputs differ in length: {({n: len(v) for n, v in arrays.items()})}")
        return arrays, lengths.pop()
    if isinstance(data, np.ndarray) or hasattr(data, "__array__"):
        array = np.asarray(data)
        return array, len(array)
    raise TypeError(f"data must be an array, a dict of arrays, or an (inputs, labels) pair of them; got "
                    f"{type(data).__name__}")


def _rows(inputs, index):
    return {name: value[index] for name, value in inputs.items()} if isinstance(inputs, dict) else inputs[index]


def distil(student: keras.Model, teacher: keras.Model, data, steps: int, temperature: float = 2.0,
           hidden: float = 0.0, batch_size: int = 16, seed: int = 0, learning_rate: float = 1e-3,
           checkpoint_dir: Optional[str] = None, checkpoint_steps: int = 1000) -> TrainingTime:
    """Trains ``student`` ``steps`` steps to match ``teacher`` (see the module docstring).

    Args:
        student: The ticket (trained in place).
        teacher: The dense model it was cut from (not changed).
        data: The training inputs: an array (images), a dict of arrays (``{"token_ids", "padding_mask"}``),
            or an ``(inputs, labels)`` pair of them (the labels are not used).
        steps: Optimizer steps, >= 1 (a budget in tokens is ``steps * batch_size * length``).
        temperature: The softmax temperature T, > 0.
        hidden: Weight of the kept blocks' hidden states (0: logits only).
        batch_size: Examples per step.
        seed: Seed of the batch order (the one :func:`~tf_lottery.training.language.fit_next_token` draws).
        learning_rate: Peak learning rate of AdamW's warmed-up cosine.
        checkpoint_dir: A folder for the training state (resumed by a rerun with the same arguments); ``None``
            keeps none.
        checkpoint_steps: Steps between two states written, >= 1.

    Returns:
        A :class:`~tf_lottery.training.language.TrainingTime`.

    Raises:
        TypeError, ValueError: for bad arguments (named), a student that is not a ticket of ``teacher``
            (with ``hidden``), or a state in ``checkpoint_dir`` of another training.

    Example:
        >>> distil(ticket, dense, (inputs, labels), steps=500, temperature=2.0, batch_size=16, seed=0)
    """
    steps = arguments.count("steps", steps, least=1)
    batch_size = arguments.count("batch_size", batch_size, least=1)
    checkpoint_steps = arguments.count("checkpoint_steps", checkpoint_steps, least=1)
    learning_rate = arguments.number("learning_rate", learning_rate, above=0)
    inputs, examples = _inputs_of(data)
    with _teacher_kept(teacher):
        return _distil(distiller(student, teacher, temperature, hidden), inputs, examples, steps, batch_size, seed,
                       learning_rate, checkpoint_dir, checkpoint_steps,
                       {"heal": "distil", "steps": steps, "batch_size": batch_size, "seed": seed,
                        "learning_rate": learning_rate, "examples": examples, "temperature": temperature,
                        "hidden": hidden, "teacher_parameters": teacher.count_params()})


def _distil(model, inputs, examples, steps, batch_size, seed, learning_rate, checkpoint_dir, checkpoint_steps,
            identity) -> TrainingTime:
    """:func:`distil`'s loop: ``fit_next_token``'s chunks, batches and state, on the distiller ``model``."""
    picks = batch_order(examples, steps, batch_size, seed)
    model.compile(optimizer=keras.optimizers.AdamW(next_token_schedule(steps, learning_rate),
                                                   weight_decay=WEIGHT_DECAY), loss="mse")
    progress = (_restore(model, checkpoint_dir, identity) if checkpoint_dir
                else {"steps_done": 0, "seconds": 0.0, "cpu_seconds": 0.0, "sessions": 0})
    progress["sessions"] += 1
    chunk = checkpoint_steps if checkpoint_dir else steps
    while progress["steps_done"] < steps:
        first, last = progress["steps_done"], min(steps, progress["steps_done"] + chunk)
        wall, cpu = time.perf_counter(), time.process_time()
        model.fit(_rows(inputs, picks[first * batch_size:last * batch_size]), batch_size=batch_size, epochs=1,
                  shuffle=False, verbose=0)
        progress["seconds"] += time.perf_counter() - wall
        progress["cpu_seconds"] += time.process_time() - cpu
        progress["steps_done"] = last
        if checkpoint_dir:
            _save(model, checkpoint_dir, progress)
    return TrainingTime(progress["seconds"], progress["cpu_seconds"], progress["sessions"])


def distil_trainer(teacher: keras.Model, temperature: float = 2.0, hidden: float = 0.0):
    """A ``fit`` for :func:`tf_lottery.experiments.stages.train_or_load` (the command line's
    ``--heal=distil``): trains a ticket by distillation from ``teacher`` with :func:`tf_lottery.training.fit`,
    on the recipe's length, optimizer and data pipeline, with its epoch checkpoints (resume and kill
    guarantees) and history. The history's ``loss`` is the distillation loss; ``accuracy`` is the
    ticket's on the labels.

    Args:
        teacher: The trained dense model.
        temperature: The softmax temperature, > 0.
        hidden: Weight of the kept blocks' hidden states, >= 0.

    Returns:
        ``fit(model, data, recipe, workdir, name, **options) -> dict``, as :func:`tf_lottery.training.fit`;
        the ticket is compiled by the recipe afterwards (to be evaluated).

    Example:
        >>> train_or_load(config, run, ticket, data, "ticket", fit=distil_trainer(dense, temperature=2.0))
    """
    temperature = arguments.number("temperature", temperature, above=0)
    hidden = arguments.number("hidden", hidden, least=0)

    def fit(model, data, recipe, workdir, name, **options) -> dict:
        if distribute.current().replicas > 1:
            raise ValueError(f"distillation trains on one replica (it is not built for a tf.distribute strategy); "
                             f"this run has {distribute.current().replicas}: drop --strategy")
        loop.check_classes(model, data)
        with _teacher_kept(teacher):
            trained = loop.fit(distiller(model, teacher, temperature, hidden), data, recipe, workdir, name, **options)
        loop.compile_model(model, recipe, 1)
        return trained

    return fit


# --- measuring -----------------------------------------------------------------------------------


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def kl_to_teacher(student: keras.Model, teacher: keras.Model, data, temperature: float = 1.0,
                  batch_size: int = 32) -> float:
    """The mean ``KL(teacher || student)`` of the two models' next-token (or class) distributions at
    ``temperature``, over every position that is not padded, in float64 (inference mode).

    Args:
        student, teacher: Models of the same inputs giving logits over the same classes.
        data: Inputs as :func:`distil` takes them.
        temperature: The softmax temperature, > 0 (1: the models' own distributions).
        batch_size: Examples per forward pass.

    Returns:
        The divergence in nats, >= 0.

    Raises:
        ValueError: for a temperature of 0 or less, or inputs whose every position is padding.

    Example:
        >>> kl_to_teacher(ticket, dense, held_out_inputs)
        0.0123
    """
    temperature = arguments.number("temperature", temperature, above=0)
    inputs, examples = _inputs_of(data)
    total, count = 0.0, 0.0
    for start in range(0, examples, batch_size):
        piece = _rows(inputs, slice(start, start + batch_size))
        t = _log_softmax(np.asarray(teacher(piece, training=False), "float64") / temperature)
        s = _log_softmax(np.asarray(student(piece, training=False), "float64") / temperature)
        divergence = (np.exp(t) * (t - s)).sum(axis=-1)
        kept = (np.asarray(piece[_MASK], "float64") if isinstance(piece, dict) and _MASK in piece
                else np.ones(divergence.shape))
        total += float((divergence * kept).sum())
        count += float(kept.sum())
    if count == 0:
        raise ValueError("no position to compare: every position is padding")
    return total / count


# --- linear replacement (ReplaceMe) --------------------------------------------------------------


def _down_projection(block) -> keras.layers.Layer:
    """The MLP output projection inside a keras_hub decoder block (found by its name, :data:`DOWN_PROJECTIONS`).

    Raises:
        ValueError: when the block has none of them, naming its class.
    """
    found = [value for value in vars(block).values()
             if isinstance(value, keras.layers.Layer) and value.name in DOWN_PROJECTIONS]
    if len(found) != 1 or getattr(found[0], "kernel", None) is None:
        raise ValueError(f"{type(block).__name__} {block.name!r} has no MLP output projection named one of "
                         f"{list(DOWN_PROJECTIONS)}: its family cannot take a linear replacement")
    return found[0]


def _spans(order: Sequence[str], names: Sequence[str]) -> List[Tuple[int, int]]:
    """The removed blocks as maximal runs ``(first, last)`` of positions in ``order``."""
    positions = sorted(order.index(name) for name in names)
    spans: List[Tuple[int, int]] = []
    for position in positions:
        if spans and spans[-1][1] == position - 1:
            spans[-1] = (spans[-1][0], position)
        else:
            spans.append((position, position))
    return spans


def _hidden(model: keras.Model, block: str, inputs: dict, batch_size: int) -> np.ndarray:
    """The hidden state ``block`` of ``model`` leaves, ``(examples, length, width)``, in float64."""
    inputs_, _, hidden = _graph_view(model, [block])
    reader = keras.Model(inputs_, hidden[0])
    examples = len(next(iter(inputs.values())))
    return np.concatenate([np.asarray(reader(_rows(inputs, slice(i, i + batch_size)), training=False), "float64")
                           for i in range(0, examples, batch_size)])


class LinearReplacement(NamedTuple):
    """What :func:`replace_linear` made.

    Attributes:
        model: The ticket, of the dense model's class, with the maps folded in.
        maps: ``{ticket block: T}``, the ``(width, width)`` map folded into each block's MLP output projection.
        errors: ``{ticket block: (plain, replaced)}``: the squared error to the dense model's hidden state
            leaving the span, summed over the calibration tokens, with the span removed and with it replaced.

    Example:
        >>> replaced = replace_linear(trained_lm, ["transformer_layer_2"], calibration)
        >>> plain, folded = replaced.errors["transformer_layer_1"]
        >>> folded <= plain
        True
    """

    model: keras.Model
    maps: Dict[str, np.ndarray]
    errors: Dict[str, Tuple[float, float]]


def replace_linear(model: keras.Model, names: Sequence[str], calibration: dict, batch_size: int = 32,
                   tolerance: float = 1e-4) -> LinearReplacement:
    """``model`` without the blocks ``names``, each removed span replaced by a linear map folded into the
    MLP output projection of the block before it (ReplaceMe; see the module docstring). No training.

    Spans are fitted from the first to the last: a later span's map sees the earlier ones replaced.

    Args:
        model: A trained keras_hub decoder of a registered family (a ``*CausalLM`` task or its backbone)
            taking ``{"token_ids", "padding_mask"}``.
        names: Blocks to remove, as :func:`tf_lottery.surgery.blocks` names them; a run of consecutive
            blocks is one span, and the first block cannot be removed (nothing before it to fold into).
        calibration: ``{"token_ids", "padding_mask"}`` arrays ``(sequences, length)``; the fit needs at
            least as many real tokens as the hidden width.
        batch_size: Sequences per forward pass.
        tolerance: The largest relative difference allowed between the folded block's output and
            ``Y + M T`` on the calibration tokens (the fold's check).

    Returns:
        A :class:`LinearReplacement`: the model of ``model``'s class (:func:`tf_lottery.surgery.family_ticket`)
        with the maps folded in, the maps, and the errors they leave.

    Raises:
        ValueError: for a model that is not a keras_hub family, a span starting at the first block, too
            few calibration tokens, a block without an MLP output projection, or a family where the fold
            is not exact (a norm after the MLP), each in one line.

    Example:
        >>> healed = replace_linear(lm, ["transformer_layer_3", "transformer_layer_4"], {"token_ids": ids,
        ...                         "padding_mask": mask}).model
    """
    arguments.instance("model", model, keras.Model, "a keras_hub decoder (a *CausalLM or its backbone)")
    blocks = _family_blocks(model)
    if blocks is None:
        raise ValueError(f"{type(model).__name__} {model.name!r} is not a keras_hub model family: a linear "
                         "replacement folds into a decoder block's MLP, as in GPT-2, Llama, Mistral, Qwen, Gemma")
    if not isinstance(calibration, dict) or "token_ids" not in calibration:
        raise TypeError(f"calibration must be a dict of token_ids and padding_mask arrays; got "
                        f"{type(calibration).__name__}")
    inputs = {name: np.asarray(value) for name, value in calibration.items()}
    mask = inputs.get(_MASK, np.ones_like(inputs["token_ids"])).astype(bool)
    order = [b.name for b in blocks]
    unknown = [n for n in names if n not in order]
    if unknown or not names:
        raise ValueError(f"names must be blocks of {model.name!r} ({order}); got {list(names)}")
    spans = _spans(order, names)
    if spans[0][0] == 0:
        raise ValueError(f"{order[0]!r} is the first block: a span that starts there has no block before it to "
                         "fold a linear map into; keep it")
    width = int(blocks[0].output.shape[-1])
    if mask.sum() < width:
        raise ValueError(f"the calibration has {int(mask.sum())} real tokens; fitting a {width}x{width} map needs "
                         f"at least {width} (the hidden width)")
    ticket = family_ticket(model, list(names))
    ticket_blocks = [b.name for b in _family_blocks(ticket)]
    kept = [i for i in range(len(order)) if order[i] not in set(names)]
    maps, errors = {}, {}
    for first, last in spans:
        before = ticket_blocks[kept.index(first - 1)]
        target = _hidden(model, order[last], inputs, batch_size)[mask]
        projection = _down_projection(_family_blocks(ticket)[kept.index(first - 1)])
        output = _hidden(ticket, before, inputs, batch_size)[mask]
        original = [v.numpy() for v in projection.weights]
        for variable in projection.weights:
            variable.assign(np.zeros(variable.shape, variable.dtype))
        residual = _hidden(ticket, before, inputs, batch_size)[mask]  # Y: the block without its MLP output
        for variable, value in zip(projection.weights, original):
            variable.assign(value)
        branch = output - residual  # M
        fitted, *_ = np.linalg.lstsq(branch, target - residual, rcond=None)
        _fold(projection, fitted)
        folded = _hidden(ticket, before, inputs, batch_size)[mask]
        expected = residual + branch @ fitted
        error = float(np.abs(folded - expected).max() / max(np.abs(expected).max(), 1e-12))
        if error > tolerance:
            for variable, value in zip(projection.weights, original):
                variable.assign(value)
            raise ValueError(f"{type(_family_blocks(model)[0]).__name__} does not fold a linear map into its MLP "
                             f"output projection exactly (relative error {error:.2e} > {tolerance:g}: a norm after "
                             "the MLP?); its family cannot take a linear replacement")
        maps[before] = fitted
        errors[before] = (float(np.square(target - output).sum()), float(np.square(target - folded).sum()))
        log(f"linear replacement of {order[first:last + 1]} into {order[first - 1]}: squared error to the dense "
            f"model's hidden state {errors[before][0]:.4g} -> {errors[before][1]:.4g} on {len(target)} "
            "calibration tokens")
    return LinearReplacement(ticket, maps, errors)


def _fold(projection, fitted: np.ndarray) -> None:
    """``W <- W T`` and ``b <- b T`` on ``projection``'s kernel (output width last) and bias."""
    kernel = projection.kernel
    value = np.asarray(kernel.numpy(), "float64")
    if value.shape[-1] != fitted.shape[0]:
        raise ValueError(f"{projection.name!r}'s kernel {value.shape} does not end in the hidden width "
                         f"{fitted.shape[0]}; it cannot take a linear map")
    kernel.assign(np.tensordot(value, fitted, axes=([-1], [0])).astype(kernel.dtype))
    bias = getattr(projection, "bias", None)
    if bias is not None:
        bias.assign((np.asarray(bias.numpy(), "float64") @ fitted).astype(bias.dtype))


def tokens_in(inputs: Dict[str, np.ndarray]) -> int:
    """The real tokens of ``{"token_ids", "padding_mask"}`` (all of them without a mask): a budget's unit.

    Args:
        inputs: A batch of token ids and, optionally, their padding mask.

    Returns:
        The count of real (unpadded) tokens.

    Example:
        >>> tokens_in({"token_ids": np.ones((2, 4)), "padding_mask": np.array([[1, 1, 0, 0], [1, 1, 1, 1]])})
        6
    """
    ids = np.asarray(inputs["token_ids"])
    return int(np.asarray(inputs[_MASK]).astype(bool).sum()) if _MASK in inputs else int(ids.size)
