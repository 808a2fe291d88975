"""A tf_lottery language model (dense or ticket) as a model of lm-evaluation-harness (``lm-eval`` 0.4.13).

The backend, :class:`TfLotteryLM` (class name ``tf_lottery`` in lm-eval's model registry), scores
a Keras causal LM of ``{"token_ids", "padding_mask"} -> logits`` (a keras_hub ``*CausalLM`` with
``preprocessor=None``, dense or ticket, or any model of those inputs), or the SavedModel of an
export folder, through a tokenizer: tf_lottery's byte tokenizer by default
(:class:`tf_lottery.data.text.ByteTokenizer`), or a keras_hub tokenizer. It implements lm-eval's
three requests:

* ``loglikelihood(context, continuation)``: the sum of the continuation tokens' log-softmax
  (float64, from the model's float32 logits) and whether each is the arg max. An empty context is
  the end token (the byte tokenizer's ``1``), as lm-eval conditions on EOS;
* ``loglikelihood_rolling(text)``: the whole text's log-likelihood after the end token, in
  lm-eval's rolling windows of the model's length (one window when the text fits, so that
  ``exp(-rolling / tokens)`` is :func:`tf_lottery.evals.language.perplexity` of ``[end] + tokens``);
* ``generate_until(context, {"until", "max_gen_toks"})``: greedy, cut at the first ``until``
  string, stopped at the end token or after ``max_gen_toks`` tokens (default 256).

Requests are batched (``batch_size``, longest first) and right-padded, the padding masked: a
causal model's real positions do not see it, so batched numbers equal unbatched ones up to float
rounding.

lm-eval 0.4.13 has no plug-in discovery for models: ``python -m tf_lottery.evals.harness`` (or the
console script ``tf-lottery-eval``) registers the backend, then runs lm-eval's own command line
with the rest of its arguments. In Python, ``lm_eval.simple_evaluate(model=TfLotteryLM(...))``
takes the object. lm_eval is imported when the backend is first used, never by ``import
tf_lottery``: install it with ``pip install 'tf_lottery[lm_eval]'``.

**Safe by default.** :func:`load_export` reads an export folder of
:func:`tf_lottery.export.language.save_language_model` after verifying every file against its
manifest (:func:`tf_lottery.export.saved_model.read_metadata`), then loads its keras_hub preset (a
config and weights, no code) or, without keras_hub or a preset, its SavedModel (a graph, no Python).

Example:
    >>> lm = TfLotteryLM(model=ticket)                       # byte tokenizer, batch 8
    >>> lm_eval.simple_evaluate(model=lm, tasks=["my_task"], task_manager=TaskManager(include_path="tasks"))

    .. code-block:: text

        python -m tf_lottery.evals.harness --model_path=exports/lm_ticket --tasks=lambada_openai --batch_size=8
"""

from __future__ import annotations

import os
import sys
from typing import List, Optional, Sequence

import numpy as np

from tf_lottery.data.text import ByteTokenizer

#: The name of the backend in lm-eval's model registry (``--model tf_lottery``).
MODEL_NAME = "tf_lottery"

#: Tokens generated when a request does not say ``max_gen_toks`` (lm-eval's own default).
DEFAULT_MAX_GEN_TOKS = 256

#: The model's context when it does not say (a keras_hub backbone's ``max_sequence_length`` does).
DEFAULT_MAX_LENGTH = 2048

#: lm-eval's commands other than ``run``, passed to its command line unchanged.
OTHER_COMMANDS = ("ls", "validate")

_CLASS = None


def lm_eval_installed() -> bool:
    """Whether lm-evaluation-harness can be imported (the ``lm_eval`` extra).

    Returns:
        True when ``import lm_eval`` would succeed.

    Example:
        >>> lm_eval_installed()
        True
    """
    import importlib.util
    return importlib.util.find_spec("lm_eval") is not None


def _require_lm_eval():
    if not lm_eval_installed():
        raise ImportError("the lm-evaluation-harness backend needs lm_eval: pip install 'tf_lottery[lm_eval]'")


class _Tokenizer:
    """One face for the byte tokenizer and keras_hub tokenizers: ``encode``, ``decode``, ``end_id``."""

    def __init__(self, tokenizer):
        self.inner = tokenizer
        if isinstance(tokenizer, ByteTokenizer):
            self.end_id = ByteTokenizer.END
            self.vocabulary_size = ByteTokenizer.vocabulary_size
            self.name = "tf_lottery-bytes"
        elif hasattr(tokenizer, "tokenize") and hasattr(tokenizer, "detokenize"):
            end = getattr(tokenizer, "end_token_id", None)
            if end is None:
                raise ValueError(f"the tokenizer {type(tokenizer).__name__} has no end_token_id: lm-eval conditions "
                                 "an empty context on the end token")
            self.end_id = int(end)
            self.vocabulary_size = int(tokenizer.vocabulary_size())
            self.name = type(tokenizer).__name__
        else:
            raise TypeError(f"tokenizer must be a tf_lottery ByteTokenizer or a keras_hub tokenizer (tokenize, "
                            f"detokenize); got {type(tokenizer).__name__}")

    def encode(self, text: str) -> List[int]:
        if isinstance(self.inner, ByteTokenizer):
            return self.inner.encode(text).tolist()
        return np.asarray(self.inner.tokenize(text)).astype(np.int64).ravel().tolist()

    def decode(self, ids: Sequence[int]) -> str:
        ids = [int(i) for i in ids if int(i) != self.end_id]
        if isinstance(self.inner, ByteTokenizer):
            return self.inner.decode(ids)
        if not ids:
            return ""
        text = self.inner.detokenize(np.asarray(ids, dtype=np.int32))
        text = np.asarray(text).item() if not isinstance(text, str) else text
        return text.decode("utf-8", errors="replace") if isinstance(text, bytes) else str(text)


def _keras_forward(model):
    """``forward(ids, mask) -> float32 logits`` of a Keras model of ``{"token_ids", "padding_mask"}``."""
    def forward(ids, mask):
        logits = model({"token_ids": ids, "padding_mask": mask}, training=False)
        return np.asarray(logits, dtype=np.float32)
    return forward


def _saved_model_forward(folder: str):
    """``forward`` of an export's SavedModel signature (token ids and padding mask, int32, to logits)."""
    import tensorflow as tf
    served = tf.saved_model.load(folder).signatures["serving_default"]

    def forward(ids, mask):
        out = served(token_ids=tf.constant(ids, tf.int32), padding_mask=tf.constant(mask.astype(np.int32)))
        return np.asarray(out["logits"], dtype=np.float32)
    return forward


def load_export(path: str, verify: bool = True):
    """The model of a language-model export folder, loaded without running any code the folder brings.

    Args:
        path: A folder written by :func:`tf_lottery.export.language.save_language_model`.
        verify: Check every file against the export's manifest first (default; a folder may come
            from anyone).

    Returns:
        ``(model, metadata)``: the keras_hub model of ``preset/`` when keras_hub is installed and the
        export has a preset, else the SavedModel's ``serving_default`` signature wrapped as a function
        ``forward(token_ids, padding_mask) -> logits``; and the export's metadata.

    Raises:
        FileNotFoundError: naming the folder when it holds no finished export.
        tf_lottery.export.saved_model.DamagedExport: when a file does not match the manifest.

    Example:
        >>> model, metadata = load_export("exports/lm_ticket")
        >>> metadata["blocks"]["removed"]
    """
    from tf_lottery.export.saved_model import read_metadata
    metadata = read_metadata(path, verify=verify)
    preset = os.path.join(path, "preset")
    import importlib.util
    if os.path.isdir(preset) and importlib.util.find_spec("keras_hub") is not None:
        import keras_hub
        return keras_hub.models.CausalLM.from_preset(preset), metadata
    return _saved_model_forward(os.path.join(path, "saved_model")), metadata


def _model_max_length(model) -> Optional[int]:
    backbone = getattr(model, "backbone", model)
    value = getattr(backbone, "max_sequence_length", None)
    return int(value) if isinstance(value, (int, np.integer)) and value > 0 else None


def _positive_int(value, name: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = None
    if number is None or isinstance(value, bool) or number < 1 or str(number) != str(value).strip():
        raise ValueError(f"{name} must be an integer >= 1; got {value!r}")
    return number


def _log_softmax_rows(rows: np.ndarray) -> np.ndarray:
    rows = rows.astype(np.float64)
    top = rows.max(axis=-1, keepdims=True)
    return rows - top - np.log(np.exp(rows - top).sum(axis=-1, keepdims=True))


def _build_class():
    from lm_eval.api.model import TemplateLM
    from lm_eval.utils import get_rolling_token_windows, make_disjoint_window

    class TfLotteryLM(TemplateLM):
        """lm-eval's model over a tf_lottery language model (see :mod:`tf_lottery.evals.harness`).

        Args:
            model: A Keras model of ``{"token_ids", "padding_mask"}`` to logits (a keras_hub
                ``*CausalLM``, dense or ticket), or None with ``path``.
            path: An export folder (:func:`load_export`), instead of ``model``.
            tokenizer: ``"bytes"`` (tf_lottery's byte tokenizer, default), a ByteTokenizer or a keras_hub
                tokenizer.
            batch_size: Sequences per forward pass (lm-eval's ``--batch_size``; an integer).
            max_length: The longest context the model reads (default: the backbone's
                ``max_sequence_length``, else 2048).
            verify: Check an export folder against its manifest before loading it.
            **unused: lm-eval's other settings (``device``, ``max_batch_size``), ignored.

        Raises:
            ValueError: for neither or both of ``model`` and ``path``, a bad batch size or length.

        Example:
            >>> lm = TfLotteryLM(model=ticket, batch_size=4)
            >>> lm.logits([[72, 105]]).shape      # (1, 2, 258)
        """

        def __init__(self, model=None, path: Optional[str] = None, tokenizer="bytes", batch_size=8,
                     max_length=None, verify=True, **unused):
            super().__init__()
            if (model is None) == (path is None):
                raise ValueError("give the backend one model: model=<a Keras causal LM> or path=<an export folder>; "
                                 f"got model={type(model).__name__ if model is not None else None}, path={path!r}")
            if path is not None:
                verify = verify not in (False, "False", "false", "0", 0)
                model, _ = load_export(str(path), verify=verify)
            self.model = model
            self._forward = model if callable(model) and not hasattr(model, "layers") else _keras_forward(model)
            if isinstance(tokenizer, str) and tokenizer != "bytes":
                raise ValueError(f"tokenizer must be \"bytes\" (tf_lottery's byte tokenizer) or a tokenizer object; "
                                 f"got {tokenizer!r}")
            self.tok = _Tokenizer(ByteTokenizer() if tokenizer == "bytes" else tokenizer)
            self.batch_size = _positive_int(1 if batch_size in (None, "auto") else batch_size, "batch_size")
            self.max_length = _positive_int(max_length, "max_length") if max_length is not None else (
                _model_max_length(model) or DEFAULT_MAX_LENGTH)

        # --- what TemplateLM asks of a causal model ---

        @property
        def eot_token_id(self) -> int:
            return self.tok.end_id

        @property
        def tokenizer_name(self) -> str:
            return self.tok.name

        def tok_encode(self, string: str, add_special_tokens=None, **kwargs) -> List[int]:
            """The token ids of ``string`` (no end token)."""
            return self.tok.encode(string)

        def tok_decode(self, tokens) -> str:
            """The text of ``tokens`` (end tokens left out)."""
            return self.tok.decode(tokens)

        def logits(self, sequences: Sequence[Sequence[int]]) -> np.ndarray:
            """The model's float32 logits ``(len(sequences), longest, vocabulary)``, right-padded and masked."""
            longest = max(len(s) for s in sequences)
            ids = np.zeros((len(sequences), longest), dtype=np.int32)
            mask = np.zeros((len(sequences), longest), dtype=bool)
            for row, sequence in enumerate(sequences):
                ids[row, :len(sequence)] = sequence
                mask[row, :len(sequence)] = True
            return self._forward(ids, mask)

        def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, **kwargs):
            """``(log-likelihood, greedy)`` of each ``(key, context ids, continuation ids)``, batched longest first."""
            windows = []
            for key, context, continuation in requests:
                if not continuation:
                    raise ValueError(f"nothing to score: the continuation of {key!r} has no token")
                if len(continuation) > self.max_length:
                    raise ValueError(f"a continuation of {len(continuation)} tokens does not fit the model's "
                                     f"{self.max_length}: raise max_length or shorten the task's answers")
                context = list(context) or [self.prefix_token_id]  # the first token is predicted after EOS
                whole = (context + list(continuation))[-(self.max_length + 1):]
                windows.append((whole[:-1], list(continuation)))
            order = sorted(range(len(windows)), key=lambda i: -len(windows[i][0]))
            results = [None] * len(windows)
            for start in range(0, len(order), self.batch_size):
                picks = order[start:start + self.batch_size]
                logits = self.logits([windows[i][0] for i in picks])
                for row, index in enumerate(picks):
                    inputs, targets = windows[index]
                    end = len(inputs)
                    scores = _log_softmax_rows(logits[row, end - len(targets):end])
                    picked = scores[np.arange(len(targets)), targets]
                    greedy = bool(np.all(scores.argmax(axis=-1) == np.asarray(targets)))
                    results[index] = (float(picked.sum()), greedy)
                    key = requests[index][0]
                    if key is not None:
                        self.cache_hook.add_partial("loglikelihood", key, results[index])
            return results

        def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> List[float]:
            """Each text's log-likelihood after the end token, over lm-eval's rolling windows."""
            pieces, owners = [], []
            for number, request in enumerate(requests):
                (text,) = request.args
                for window in get_rolling_token_windows(self.tok_encode(text), self.prefix_token_id,
                                                        self.max_length, 1):
                    context, continuation = make_disjoint_window(window)
                    pieces.append((None, context, continuation))
                    owners.append(number)
            totals = [0.0] * len(requests)
            for owner, (value, _) in zip(owners, self._loglikelihood_tokens(pieces) if pieces else []):
                totals[owner] += value
            for request, total in zip(requests, totals):
                self.cache_hook.add_partial("loglikelihood_rolling", (request.args[0],), total)
            return totals

        def generate_until(self, requests, disable_tqdm: bool = False) -> List[str]:
            """Greedy continuations, cut at the first ``until`` string (see the module docstring)."""
            jobs = []
            for request in requests:
                context, settings = request.args
                settings = dict(settings or {})
                if settings.get("do_sample"):
                    raise ValueError("the tf_lottery backend generates greedily: do_sample=True is not supported")
                until = settings.get("until") or []
                until = [until] if isinstance(until, str) else list(until)
                budget = _positive_int(settings.get("max_gen_toks", DEFAULT_MAX_GEN_TOKS), "max_gen_toks")
                budget = min(budget, self.max_length - 1)
                tokens = self.tok_encode(context)[-(self.max_length - budget):] or [self.prefix_token_id]
                jobs.append((tokens, [u for u in until if u], budget))
            order = sorted(range(len(jobs)), key=lambda i: -len(jobs[i][0]))
            texts = [None] * len(jobs)
            for start in range(0, len(order), self.batch_size):
                picks = order[start:start + self.batch_size]
                for index, text in zip(picks, self._greedy([jobs[i] for i in picks])):
                    texts[index] = text
                    self.cache_hook.add_partial("generate_until", requests[index].args, text)
            return texts

        def _greedy(self, jobs) -> List[str]:
            length = min(self.max_length, max(len(tokens) + budget for tokens, _, budget in jobs))
            ids = np.zeros((len(jobs), length), dtype=np.int32)
            sizes = np.array([len(tokens) for tokens, _, _ in jobs])
            for row, (tokens, _, _) in enumerate(jobs):
                ids[row, :len(tokens)] = tokens
            made = [[] for _ in jobs]
            active = [True] * len(jobs)
            while any(active):
                logits = self._forward(ids, np.arange(length)[None, :] < sizes[:, None])
                for row, (_, until, budget) in enumerate(jobs):
                    if not active[row]:
                        continue
                    token = int(np.argmax(logits[row, sizes[row] - 1]))
                    if token == self.eot_token_id:
                        active[row] = False
                        continue
                    made[row].append(token)
                    ids[row, sizes[row]] = token
                    sizes[row] += 1
                    if (len(made[row]) >= budget or sizes[row] >= length
                            or any(u in self.tok_decode(made[row]) for u in until)):
                        active[row] = False
            texts = []
            for (_, until, _), tokens in zip(jobs, made):
                text = self.tok_decode(tokens)
                for stop in until:
                    text = text.split(stop)[0]
                texts.append(text)
            return texts

    TfLotteryLM.__module__ = __name__
    return TfLotteryLM


def backend_class():
    """The backend class (built on lm-eval's ``TemplateLM`` at first use), registered as ``tf_lottery``.

    Returns:
        :class:`TfLotteryLM`.

    Raises:
        ImportError: when lm_eval is not installed, naming the extra.

    Example:
        >>> lm = backend_class()(model=ticket)
    """
    global _CLASS
    if _CLASS is None:
        _require_lm_eval()
        import lm_eval.models  # noqa: F401  (lm-eval's own models first: its registry fills lazily when empty)
        from lm_eval.api.registry import model_registry
        cls = _build_class()
        if MODEL_NAME not in model_registry:
            model_registry.register(MODEL_NAME)(cls)
        _CLASS = cls
    return _CLASS


def __getattr__(name):
    if name == "TfLotteryLM":
        return backend_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def lm_eval_arguments(argv: Sequence[str]) -> List[str]:
    """lm-eval's command line for ``argv``: ``--model_path=P`` becomes ``--model tf_lottery --model_args path=P``.

    Args:
        argv: The arguments after the program's name: lm-eval's own, and optionally
            ``--model_path=<export folder>`` (added to any ``--model_args``).

    Returns:
        The arguments for lm-eval's ``run``; ``--model tf_lottery`` is added unless ``--model`` is given.
        lm-eval's other commands (``ls``, ``validate``) are passed as they are.

    Raises:
        ValueError: for ``--model_path`` without a value.

    Example:
        >>> lm_eval_arguments(["--model_path=exports/lm", "--tasks", "hellaswag"])
        ['run', '--tasks', 'hellaswag', '--model', 'tf_lottery', '--model_args', 'path=exports/lm']
    """
    if argv and argv[0] in OTHER_COMMANDS:
        return list(argv)
    rest, path, model_args = [], None, None
    items = list(argv)
    index = 0
    while index < len(items):
        item = items[index]
        name, has_value, value = item.partition("=")
        if name in ("--model_path", "--model_args") and not has_value:
            if index + 1 >= len(items):
                raise ValueError(f"{name} needs a value: {name}=<...>")
            value, index = items[index + 1], index + 1
        if name == "--model_path":
            if not value:
                raise ValueError("--model_path needs a value: --model_path=<export folder>")
            path = value
        elif name == "--model_args":
            model_args = value
        else:
            rest.append(item)
        index += 1
    if rest and rest[0] == "run":
        rest = rest[1:]
    if not any(a == "--model" or a.startswith("--model=") for a in rest):
        rest += ["--model", MODEL_NAME]
    pieces = [p for p in (model_args, f"path={path}" if path else None) if p]
    if pieces:
        rest += ["--model_args", ",".join(pieces)]
    return ["run", *rest]


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Registers the backend, then runs lm-eval's command line (``tf-lottery-eval``, ``python -m ...``).

    Args:
        argv: The arguments (default: ``sys.argv[1:]``); see :func:`lm_eval_arguments`.

    Raises:
        ImportError: when lm_eval is not installed, naming the extra.

    Example:
        .. code-block:: text

            tf-lottery-eval --model_path=exports/lm_ticket --tasks=my_task --include_path=tasks --batch_size=8
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    backend_class()
    from lm_eval._cli import HarnessCLI
    from lm_eval.utils import setup_logging
    setup_logging()
    parser = HarnessCLI()
    saved = sys.argv
    sys.argv = ["lm-eval", *lm_eval_arguments(argv)]
    try:
        args = parser.parse_args()
    finally:
        sys.argv = saved
    parser.execute(args)


if __name__ == "__main__":
    main()
