"""The one registry idiom of tf_lottery: a dict, a ``register`` decorator and ``get``.

Models, datasets, criteria, baselines and experiments each keep a :class:`Registry`.
An unknown name is an error that lists every valid name, so a typo in a flag or a
flagfile tells the user what they could have written.
"""

from __future__ import annotations

import importlib
import re
from typing import Callable, Dict, Generic, Iterator, Optional, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError, ValueError):
    """An unknown registry name; the message lists the valid names.

    It is a ``KeyError`` (a failed look-up) and a ``ValueError`` (a bad value from a
    flag), and prints its message without the quotes ``KeyError`` adds.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class Registry(Generic[T]):
    """A named collection of entries filled with a decorator.

    Args:
        kind: What the entries are ("model", "criterion", ...); used in errors.
        filled_by: The module whose import fills the registry, when it stands above the registry's
            package (imported on the first read).

    Example:
        >>> criteria = Registry("criterion")
        >>> @criteria.register("random")
        ... def random_scores(model, data=None):
        ...     ...
        >>> criteria.get("random") is random_scores
        True
    """

    def __init__(self, kind: str, filled_by: Optional[str] = None):
        self.kind = kind
        self._entries: Dict[str, T] = {}
        self._families: Dict[str, Callable[[str], T]] = {}
        self._patterns: list = []  # (compiled regex, make, how names() shows it)
        # A registry that a package above it fills (the experiments fill the config's registry of
        # experiments): that package is imported on the first read, so a lazy ``import tf_lottery`` and a
        # direct ``from tf_lottery.config import Config`` see every entry.
        self._filled_by = filled_by

    def _fill(self) -> None:
        if self._filled_by is not None:
            module, self._filled_by = self._filled_by, None
            importlib.import_module(module)

    def register(self, name: str) -> Callable[[T], T]:
        """Returns a decorator that stores its argument under ``name``.

        Raises:
            ValueError: if ``name`` is already registered.
        """

        def decorator(entry: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = entry
            return entry

        return decorator

    def entry(self, name: str, make_entry: Callable[[Callable], T]) -> Callable[[Callable], Callable]:
        """Returns a decorator that stores ``make_entry(fn)`` under ``name`` and gives ``fn`` back.

        How registries whose entries wrap a function with what it declares (a criterion's
        direction, a method's check) fill themselves.

        Raises:
            ValueError: if ``name`` is already registered.

        Example:
            >>> @METHODS.entry("blocks", lambda make: Method("blocks", make, check, apply, "layer tickets"))
            ... def blocks(model, data, method, seed=0):
            ...     ...
        """

        def decorator(fn: Callable) -> Callable:
            self.register(name)(make_entry(fn))
            return fn

        return decorator

    def register_family(self, prefix: str, make: Callable[[str], T]) -> None:
        """Makes every name ``prefix + rest`` valid: its entry is ``make(rest)``, made on first
        use (``tfds:imagenette/160px`` for any tfds dataset). ``make`` must not do I/O: configs
        check names with :meth:`get`.

        Raises:
            ValueError: if ``prefix`` is already a family.
        """
        if prefix in self._families:
            raise ValueError(f"{self.kind} family {prefix!r} is already registered")
        self._families[prefix] = make

    def register_pattern(self, pattern: str, make: Callable[[str], T], shown: str) -> None:
        """Makes every name that fully matches the regular expression ``pattern`` valid: its
        entry is ``make(name)``, made on first use (``package.module:function`` for a model
        function). ``names()`` lists it as ``shown``.
        """
        self._patterns.append((re.compile(pattern), make, shown))

    def get(self, name: str) -> T:
        """Returns the entry registered as ``name`` (or made by the family its prefix names).

        Raises:
            UnknownNameError: naming the unknown value and every valid name (also for a value that is
                not a string, such as a list).
        """
        self._fill()
        if not isinstance(name, str):
            valid = ", ".join(self.names()) or "(none registered)"
            raise UnknownNameError(f"a {self.kind} is named by one string; got {type(name).__name__} {name!r}; "
                                   f"valid names: {valid}")
        if name in self._entries:
            return self._entries[name]
        for prefix, make in self._families.items():
            if isinstance(name, str) and name.startswith(prefix) and len(name) > len(prefix):
                return make(name[len(prefix):])
        for pattern, make, _ in self._patterns:
            if isinstance(name, str) and pattern.fullmatch(name):
                return make(name)
        valid = ", ".join(self.names()) or "(none registered)"
        raise UnknownNameError(f"unknown {self.kind} {name!r}; valid names: {valid}") from None

    def declared(self, attribute: str) -> list:
        """The distinct values of ``attribute`` over the registered entries, in name order, None left out:
        the settings classes that plug-ins declare (composed into the config by
        :func:`tf_lottery.core.options.compose`).

        Args:
            attribute: An attribute every entry has (``"settings"``, ``"options"``).

        Returns:
            The values, each once.

        Example:
            >>> [cls.__name__ for cls in CRITERIA.declared("settings")][:2]
            ['AngularSettings', 'GraspSettings']
        """
        found = []
        for name in self.names():
            if name in self._entries:
                value = getattr(self._entries[name], attribute)
                if value is not None and value not in found:
                    found.append(value)
        return found

    def names(self) -> list[str]:
        """Returns the registered names, sorted, then each family as ``prefix<name>``."""
        self._fill()
        return (sorted(self._entries) + [f"{prefix}<name>" for prefix in self._families]
                + [shown for _, _, shown in self._patterns])

    def __contains__(self, name: object) -> bool:
        self._fill()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        self._fill()
        return iter(sorted(self._entries))
