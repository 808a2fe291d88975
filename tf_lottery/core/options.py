"""Declared options: one dataclass field is one command-line flag.

Config sections (:mod:`tf_lottery.config`) and model builders' settings
(:mod:`tf_lottery.models`) declare their fields with the helpers below. Each helper
returns a ``dataclasses.field`` whose metadata is an :class:`Option`: the flag's help,
its kind, its allowed values and bounds. The command line (:mod:`tf_lottery.cli`) is
generated from these declarations, so a new field is a new flag with no list to keep
in sync by hand.

Example:
    >>> @dataclasses.dataclass(frozen=True)
    ... class Data:
    ...     dataset: str = text("fashion_mnist", "Dataset.")
    ...     val_size: int = integer(1000, "Validation examples.", lower_bound=0)
    >>> [o.name for o in options_of(Data)]
    ['dataset', 'val_size']
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Iterable, Optional, Sequence, Union

from tf_lottery.core.registry import Registry

KINDS = ("text", "integer", "real", "boolean", "choice", "integers", "names")

Choices = Union[Sequence[str], Registry, Callable[[], Union[Sequence[str], Registry]], None]


@dataclasses.dataclass(frozen=True)
class Option:
    """How one config field appears on the command line.

    Attributes:
        name: The flag name (also the field's name in flat layouts, such as legacy configs).
        field: The dataclass field's name (the flag name unless declared otherwise).
        kind: One of :data:`KINDS`: a string, an int, a float, a bool, one string of
            ``choices``, a comma-separated list of ints, or of strings.
        help: One line for ``--helpfull``.
        default: The field's default.
        choices: Allowed values: a sequence, a :class:`~tf_lottery.core.registry.Registry`
            (its error lists the valid names), or a callable returning either, for a
            registry that cannot be imported where the option is declared; None: any.
        lower_bound: Smallest allowed number (integers) or list element.
        zero_means_none: On the command line, 0 stands for None ("all").
        distinct: A list option refuses a value given twice (``--evals=clean,clean``); off for
            lists whose entries may repeat (a shape, blocks per stage).
        upper_bound: Largest allowed number or list element, with ``why`` (said in the error).
    """

    name: str
    field: str
    kind: str
    help: str
    default: object = None
    choices: Choices = None
    lower_bound: Optional[float] = None
    zero_means_none: bool = False
    distinct: bool = True
    upper_bound: Optional[float] = None
    why: str = ""

    def allowed(self):
        """The allowed values, resolved: a list, a registry, or None (any)."""
        choices = self.choices() if callable(self.choices) and not isinstance(self.choices, Registry) else self.choices
        return choices if choices is None or isinstance(choices, Registry) else list(choices)

    def names(self) -> Optional[list]:
        """The allowed values as a list (a registry's names), or None (any)."""
        allowed = self.allowed()
        return allowed if allowed is None or isinstance(allowed, list) else allowed.names()

    def check(self, value) -> None:
        """Checks ``value`` against the allowed values and the lower bound.

        Raises:
            ValueError: naming the option, the value and what is allowed.
        """
        if value is None:
            return
        if self.kind == "real" and not (isinstance(value, (int, float)) and math.isfinite(value)):
            raise ValueError(f"{self.name} must be a finite number; got {value!r}")
        if self.kind == "integer" and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"{self.name} must be an integer; got {value!r}")
        values = value if self.kind in ("integers", "names") else (value,)
        if self.kind in ("integers", "names") and self.distinct:
            twice = next((item for i, item in enumerate(values) if item in values[:i]), None)
            if twice is not None:
                raise ValueError(f"{self.name} lists {twice} twice; got {','.join(map(str, values))}: give each "
                                 "value once")
        allowed = self.allowed()
        for item in values:
            if isinstance(allowed, Registry):
                allowed.get(item)  # UnknownNameError: "unknown criterion 'x'; valid names: ..."
            elif allowed is not None and item not in allowed:
                raise ValueError(f"{self.name} must be {'among' if self.kind == 'names' else 'one of'} "
                                 f"{', '.join(map(str, allowed))}; got {value!r}")
            if self.lower_bound is not None and item < self.lower_bound:
                raise ValueError(f"{self.name} must be >= {self.lower_bound:g}; got {item!r}"
                                 + (f" in {','.join(map(str, values))}" if len(values) > 1 else ""))
            if self.upper_bound is not None and item > self.upper_bound:
                shown = f"{self.upper_bound:g}" if isinstance(self.upper_bound, float) else str(self.upper_bound)
                raise ValueError(f"{self.name} must be <= {shown} ({self.why}); got {item!r}")


def _field(kind: str, default, help: str, flag: Optional[str] = None, **details):
    metadata = {"option": lambda field: Option(flag or field, field, kind, help, default, **details)}
    if isinstance(default, (list, tuple)):
        return dataclasses.field(default=tuple(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def text(default: Optional[str], help: str):
    """A free string option (``DEFINE_string``)."""
    return _field("text", default, help)


def integer(default: Optional[int], help: str, lower_bound: Optional[int] = None, zero_means_none: bool = False,
            upper_bound: Optional[int] = None, why: str = ""):
    """An int option (``DEFINE_integer``); ``upper_bound`` comes with ``why``, said in its error."""
    return _field("integer", default, help, lower_bound=lower_bound, zero_means_none=zero_means_none,
                  upper_bound=upper_bound, why=why)


def real(default: Optional[float], help: str, lower_bound: Optional[float] = None):
    """A float option (``DEFINE_float``)."""
    return _field("real", default, help, lower_bound=lower_bound)


def boolean(default: bool, help: str):
    """A bool option (``DEFINE_bool``: ``--name`` / ``--noname``)."""
    return _field("boolean", default, help)


def choice(default: Optional[str], choices: Choices, help: str, flag: Optional[str] = None):
    """One of ``choices`` (``DEFINE_enum`` for a fixed list; checked at build time for a registry).

    ``flag`` names the flag when it differs from the field (``--model`` sets ``model.type``).
    """
    return _field("choice", default, help, flag=flag, choices=choices)


def integers(default: Iterable[int], help: str, lower_bound: Optional[int] = None, distinct: bool = True,
             upper_bound: Optional[int] = None, why: str = ""):
    """A comma-separated list of ints, a tuple in the config (``DEFINE_list``); None stays None.
    ``distinct=False`` lets a value repeat (a shape)."""
    return _field("integers", None if default is None else tuple(default), help, lower_bound=lower_bound,
                  distinct=distinct, upper_bound=upper_bound, why=why)


def names(default: Iterable[str], help: str, choices: Choices = None, flag: Optional[str] = None):
    """A comma-separated list of strings, a tuple in the config (``DEFINE_list``); ``flag`` names the
    flag when it differs from the field (``--from`` sets ``evaluation.runs_from``)."""
    return _field("names", tuple(default), help, flag=flag, choices=choices)


def options_of(cls) -> list[Option]:
    """The declared options of a dataclass, in field order (fields without one are skipped)."""
    return [f.metadata["option"](f.name) for f in dataclasses.fields(cls) if "option" in f.metadata]


def check_options(instance) -> None:
    """Checks every declared option of a dataclass instance (choices and lower bounds).

    Raises:
        ValueError: for the first value that is not allowed.
    """
    for option in options_of(type(instance)):
        option.check(getattr(instance, option.field))


def normalise(instance) -> None:
    """Turns list values of a frozen dataclass's list options into tuples, in place."""
    for option in options_of(type(instance)):
        value = getattr(instance, option.field)
        if option.kind in ("integers", "names") and value is not None:
            object.__setattr__(instance, option.field, tuple(value))


#: The metadata key naming the plug-in settings class a composed field came from (:func:`compose`).
PLUGIN = "plugin"


def compose(provider: Callable[[], Iterable[type]]):
    """Class decorator, placed under ``@dataclasses.dataclass``: adds to a config section the declared
    fields of every plug-in settings class ``provider()`` returns, so that a plug-in (a criterion, say)
    declares its options beside its code and they become flags, reference rows, validated values and
    identity like the section's own.

    Each added field keeps its declaration and records its settings class under :data:`PLUGIN`
    (:func:`plugin_of`). Two plug-ins may declare the same flag only with the same declaration (then
    it is one flag, shared); a plug-in may not redeclare a field of the section.

    Args:
        provider: Returns the settings classes (frozen dataclasses of declared options), called once
            when the decorated class is made.

    Returns:
        The decorator.

    Raises:
        ValueError: for a flag two plug-ins declare differently, or one the section declares itself.

    Example:
        >>> @dataclasses.dataclass(frozen=True)
        ... class GraspSettings:
        ...     grasp_temperature: float = real(200.0, "grasp: logits are divided by it.", lower_bound=0)
        >>> @dataclasses.dataclass(frozen=True)
        ... @compose(lambda: [GraspSettings])
        ... class Method:
        ...     criterion: str = text("grasp", "Block criterion.")
        >>> [o.name for o in options_of(Method)], plugin_of(Method, "grasp_temperature") is GraspSettings
        (['criterion', 'grasp_temperature'], True)
    """
    def add_fields(cls):
        annotations = dict(cls.__dict__.get("__annotations__", {}))
        own = set(annotations)
        added: dict = {}
        for settings in provider():
            for field in dataclasses.fields(settings):
                if "option" not in field.metadata:
                    raise ValueError(f"{settings.__name__}.{field.name} is not a declared option (declare it with "
                                     "tf_lottery.core.options: integer, real, choice, ...)")
                declared = field.metadata["option"](field.name)
                if field.name in own:
                    raise ValueError(f"{settings.__name__} declares --{field.name}, which {cls.__name__} declares "
                                     "itself: name the plug-in's option after the plug-in (e.g. --grasp_temperature)")
                if field.name in added:
                    first, first_settings = added[field.name]
                    if first != declared:
                        raise ValueError(f"{settings.__name__} and {first_settings.__name__} both declare --{field.name}"
                                         ", differently: name each plug-in's option after the plug-in")
                    continue
                added[field.name] = (declared, settings)
                annotations[field.name] = field.type
                setattr(cls, field.name, dataclasses.field(
                    default=field.default, metadata={**field.metadata, PLUGIN: settings}))
        cls.__annotations__ = annotations
        return cls

    return add_fields


def plugin_of(cls, name: str) -> Optional[type]:
    """The plug-in settings class a field of ``cls`` was composed from (:func:`compose`), or None for the
    section's own field.

    Args:
        cls: A dataclass (or instance) made with :func:`compose`.
        name: A field's name.

    Returns:
        The settings class, or None.

    Raises:
        KeyError: when ``cls`` has no such field.

    Example:
        >>> plugin_of(MethodConfig, "angular_window").__name__, plugin_of(MethodConfig, "criterion")
        ('AngularSettings', None)
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}
    return fields[name].metadata.get(PLUGIN)


def check_composed(instance) -> None:
    """Runs ``check_values`` of every plug-in settings class composed into ``instance``'s class
    (:func:`compose`), with that class's fields' values: what a plug-in's single declarations cannot
    refuse alone (a rate that must be below 1, radii given twice).

    Args:
        instance: An instance of a dataclass (composed or not).

    Raises:
        ValueError: as the plug-in's ``check_values`` raises it.

    Example:
        >>> check_composed(MethodConfig())   # the defaults pass
    """
    composed = []
    for field in dataclasses.fields(instance):
        settings = field.metadata.get(PLUGIN)
        if settings is not None and settings not in composed:
            composed.append(settings)
    for settings in composed:
        if hasattr(settings, "check_values"):
            settings.check_values({f.name: getattr(instance, f.name) for f in dataclasses.fields(settings)})
