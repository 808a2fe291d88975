"""Your own model on the command line: ``--model=package.module:function``.

The function builds a Keras 3 functional model from ``(input_shape, num_classes)`` and any
keyword arguments given with ``--model_args`` (a JSON object, ``{"width": 32}``, or
``key=value`` pairs, ``width=32,depth=4``; values are read as JSON where they parse, else as
text). Every experiment then runs on it as on a registered builder:

* θ0 is made reproducible by seeding Keras' generators right before the call (as for
  keras.applications), and ``--weight_decay`` puts L2 on every conv and dense kernel;
* the layers Keras named itself (``conv2d_7``, ``add_3``: numbered by a counter shared by
  everything the process built before) are renamed from the model's own graph, in graph order
  (``conv2d``, ``conv2d_1`` ...), so block names do not depend on what was built first
  (:func:`canonical_names`);
* the run identity holds the function's path, its arguments and a digest of the built model's
  architecture (its ``get_config``, names made canonical), so editing the function makes a new
  run while rerunning the same one finds it;
* the lineage records the path and the arguments, so a ticket is rebuilt from its export's
  ``metadata.json`` by importing the same function (it must be importable where it is rebuilt).

The module is imported when the flag is read, from the working folder or ``PYTHONPATH``: a
``--model`` given on the command line (or in a flagfile) runs that module, as a script would.

**Safe by default.** A name read from an artifact (a lineage in an export's ``metadata.json``,
another run's ``config.json``) is never imported: importing a module runs its code, so an export
shared by someone else could run anything. Only names the user gave are (:func:`trust`): the
``--model`` flag, :meth:`~tf_lottery.config.Config.create`, :func:`tf_lottery.models.get`, or
``safe_mode=False`` (Keras' word for the same opt-in) on :func:`tf_lottery.models.rebuild`.

Example:
    $ tf-lottery --model=my_models:vit --model_args=depth=6,hidden=64 --dataset=fashion_mnist
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib
import json
import os
import re
import sys
from typing import Callable, Dict

import keras

from tf_lottery import surgery
from tf_lottery.core import options
from tf_lottery.core.naming import snake_case
from tf_lottery.graph import reader as graph
from tf_lottery.graph.lineage import attach as attach_lineage
from tf_lottery.models.applications import with_weight_decay
from tf_lottery.models.registry import ModelBuilder, register_pattern

PATTERN = r"[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*"
"""``package.module:function``: what ``--model`` takes for a user's function."""


@dataclasses.dataclass(frozen=True)
class FunctionSettings:
    """The settings of a ``--model=package.module:function`` model.

    Example:
        >>> FunctionSettings(model_args="depth=6,hidden=64").arguments()
        {'depth': 6, 'hidden': 64}
    """

    model_args: str = options.text("", "--model=package.module:function: the function's keyword arguments, a "
                                       "JSON object ({\"depth\": 6}) or key=value pairs (depth=6,hidden=64).")

    def __post_init__(self):
        options.normalise(self)
        parse_model_args(self.model_args)  # refused here, before anything runs

    def arguments(self) -> dict:
        """The keyword arguments, parsed (:func:`parse_model_args`)."""
        return parse_model_args(self.model_args)


def parse_model_args(text: str) -> dict:
    """``--model_args`` as keyword arguments: a JSON object, or ``key=value`` pairs whose values
    are read as JSON where they parse (``6``, ``true``, ``[1, 2]``) and as text otherwise.

    Args:
        text: The ``--model_args`` value ('' for none).

    Returns:
        ``{keyword: value}``.

    Raises:
        ValueError: for text that is neither, naming what was expected.

    Example:
        >>> parse_model_args('depth=6,act=gelu,dropout=0.1')
        {'depth': 6, 'act': 'gelu', 'dropout': 0.1}
    """
    text = (text or "").strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            values = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"--model_args is not a JSON object ({error.msg} at character {error.pos}): {text!r}")
        if not isinstance(values, dict):
            raise ValueError(f"--model_args must be a JSON object or key=value pairs; got {text!r}")
        return values
    values = {}
    for pair in _split_pairs(text):
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise ValueError(f"--model_args takes key=value pairs separated by commas (depth=6,hidden=64) or a JSON "
                             f"object; {pair!r} is not one")
        if key in values:
            raise ValueError(f"--model_args gives {key!r} twice: {text!r}")
        try:
            values[key] = json.loads(raw)
        except json.JSONDecodeError:
            values[key] = raw.strip()
    return values


def _split_pairs(text: str) -> list:
    """Splits on commas outside brackets, so ``sizes=[1,2],depth=3`` is two pairs."""
    pairs, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += char in "[{("
        depth -= char in "]})"
        if char == "," and depth == 0:
            pairs.append(text[start:i])
            start = i + 1
    pairs.append(text[start:])
    return [p for p in pairs if p.strip()]


class UnsafeModelError(ValueError):
    """A model would be built by importing code the user did not name."""


_TRUSTED: set = set()


def trust(path: str) -> None:
    """Lets ``package.module:function`` be imported in this process: the user named it.

    Example:
        >>> trust("my_models:vit")
    """
    _TRUSTED.add(path)


def is_trusted(path: str) -> bool:
    """Whether :func:`trust` was called with ``path`` in this process."""
    return path in _TRUSTED


def refusal(path: str, where: str = "this artifact") -> UnsafeModelError:
    """The error for a user function named by an artifact, saying how to opt in."""
    return UnsafeModelError(
        f"{where} builds its model with {path}, code from outside tf_lottery: importing it would run it. "
        f"Refused (safe mode). If you trust it, opt in: pass safe_mode=False, or give --model={path} on the "
        "command line")


def import_function(path: str) -> Callable:
    """The function ``package.module:function`` names (the working folder importable first).

    Raises:
        UnsafeModelError: for a path nobody trusted (:func:`trust`): it is not imported.
        ValueError: for a module that does not import or a name that is not a function in it.
    """
    if path not in _TRUSTED:
        raise refusal(path, "a config or lineage")
    module_name, _, name = path.partition(":")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(f"--model={path}: module {module_name!r} does not import ({error}); put it in the working "
                         "folder or on PYTHONPATH") from None
    found = getattr(module, name, None)
    if not callable(found):
        raise ValueError(f"--model={path}: {module_name!r} has no function {name!r}")
    return found


def _auto_named(operation) -> bool:
    """Whether Keras named ``operation`` itself: its class name in snake case, maybe numbered."""
    base = snake_case(type(operation).__name__)
    return re.fullmatch(rf"{re.escape(base)}(_\d+)?", operation.name) is not None


def canonical_names(model: keras.Model) -> keras.Model:
    """Renames, in place, the layers and operations Keras named itself, numbering them in the
    model's graph order (``conv2d``, ``conv2d_1`` ...), so their names (and block names) are the
    same whatever the process built before; returns ``model``.

    Names the model's author gave are kept. Call it on a freshly built model, before it is
    compiled, trained or saved; layers shared with another model are renamed there too.

    Args:
        model: A Keras 3 functional model.

    Returns:
        ``model``, renamed in place.

    Raises:
        TypeError: for a model that is not functional (:func:`tf_lottery.graph.check_model`).

    Example:
        >>> [layer.name for layer in canonical_names(model).layers][:3]
        ['input_layer', 'conv2d', 'conv2d_1']
    """
    graph.check_model(model)
    taken = {op.name for op in model.operations if not _auto_named(op)}
    counts: Dict[str, int] = {}
    for operation in model.operations:
        if not _auto_named(operation):
            continue
        base = snake_case(type(operation).__name__)
        while True:
            index = counts.get(base, 0)
            counts[base] = index + 1
            name = base if index == 0 else f"{base}_{index}"
            if name not in taken:
                break
        operation.name = name
        taken.add(name)
    return model


def _build(path: str, arguments: dict, input_shape, num_classes: int, seed: int, weight_decay: float):
    """The user's model, seeded, checked, canonically named and given the run's weight decay."""
    function = import_function(path)
    keras.utils.set_random_seed(seed)
    try:
        model = function(tuple(input_shape), num_classes, **arguments)
    except (TypeError, ValueError) as error:  # arguments it does not take, or a shape it cannot build on
        raise ValueError(f"--model={path} refused (input_shape={tuple(input_shape)}, num_classes={num_classes}, "
                         f"--model_args {arguments}): {error}") from error
    except MemoryError as error:
        raise ValueError(f"--model={path} ran out of memory building the model (input_shape={tuple(input_shape)}, "
                         f"--model_args {arguments}){f': {error}' if str(error) else ''}; build a smaller one") from None
    except SystemExit as error:  # a function written as a script: nothing was built, so nothing may pass as done
        raise RuntimeError(f"--model={path} called sys.exit({error.code!r}) instead of returning a keras.Model; "
                           "a model function builds and returns the model") from None
    except KeyboardInterrupt:
        raise
    except Exception as error:  # noqa: BLE001  (the user's code: any failure is named, never a traceback)
        raise RuntimeError(f"--model={path} failed while building the model: {type(error).__name__}: "
                           f"{str(error).splitlines()[0] if str(error) else ''}") from error
    if not isinstance(model, keras.Model):
        raise TypeError(f"--model={path} must return a keras.Model; got {type(model).__name__}")
    body = surgery.families.block_model(model)  # a keras_hub task's graph calls its tied embedding twice
    graph.check_model(body)
    canonical_names(body)
    if _auto_named(model):  # Keras' numbered default (functional_3, llama3_causal_lm_1): named after the function
        model.name = path.rpartition(":")[2]
    if weight_decay:
        decayed = surgery.rewire(model, {}, clone=with_weight_decay(weight_decay), name=model.name)
        surgery.transfer_weights(model, decayed)
        model = decayed
    return model


def architecture_digest(model: keras.Model) -> str:
    """A short hash of ``model``'s ``get_config`` (its layers, their settings and wiring)."""
    return hashlib.sha256(json.dumps(model.get_config(), sort_keys=True, default=str).encode()).hexdigest()[:12]


def function_builder(path: str) -> ModelBuilder:
    """The builder of ``--model=path``: for a trusted path (:func:`trust`) the module is imported
    here (a bad one is refused at once); for another, nothing is imported and building refuses.

    Raises:
        ValueError: for a trusted module or function that cannot be imported.
    """
    return _function_builder(path, path in _TRUSTED)


@functools.lru_cache(maxsize=None)
def _function_builder(path: str, trusted: bool) -> ModelBuilder:
    if trusted:
        import_function(path)

    def from_settings(settings: FunctionSettings, input_shape, num_classes, seed, weight_decay):
        model = _build(path, settings.arguments(), input_shape, num_classes, seed, weight_decay)
        spec = {"function": path, "model_args": settings.arguments(), "input_shape": list(input_shape),
                "num_classes": num_classes, "seed": seed, "weight_decay": weight_decay}
        return attach_lineage(model, path, spec)

    def from_spec(spec: dict, removed) -> keras.Model:
        model = _build(path, spec["model_args"], spec["input_shape"], spec["num_classes"], spec["seed"],
                       spec["weight_decay"])
        attach_lineage(model, path, spec)
        if not removed:
            return model
        cut = surgery.family_ticket if surgery.families.has_family(model) else surgery.remove_blocks  # find_ticket's
        return cut(model, list(removed), min_blocks_per_stage=0)

    def architecture(settings: FunctionSettings, input_shape, num_classes) -> str:
        return _digest(path, settings.model_args, tuple(input_shape), num_classes)

    def builder(input_shape, num_classes, seed=0, **arguments) -> keras.Model:
        return _build(path, arguments, input_shape, num_classes, seed, 0.0)

    builder.__name__ = path.replace(".", "_").replace(":", "__")
    # A user's function may build either kind of model: the run checks what it built (stages.preparing).
    return ModelBuilder(path, builder, FunctionSettings, from_settings, from_spec, architecture,
                        tasks=("classify", "causal_lm"))


@functools.lru_cache(maxsize=None)
def _digest(path: str, model_args: str, input_shape: tuple, num_classes: int) -> str:
    return architecture_digest(_build(path, parse_model_args(model_args), input_shape, num_classes, 0, 0.0))


register_pattern(PATTERN, function_builder, "<package.module>:<function>", FunctionSettings)
