"""A Sphinx directive that writes the API reference from the public face of tf_lottery.

``{tf-lottery-api}`` renders one section per public module, found by walking the public face:
``tf_lottery.__all__`` (its lazily loaded modules and objects), then the ``__all__`` of every
module reached that way, a module named in an ``__all__`` being walked in turn. A module without
``__all__`` shows the functions, classes and UPPER_CASE constants it defines itself. Functions and
classes are rendered by autodoc from their docstrings; a constant by its ``#:`` comment or the
string literal that follows its assignment, read from the module that defines it. So the page
lists every public name and cannot drift from the code; ``tests/test_api_reference.py`` checks
the docstrings it shows.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import sys
import types
import typing
from typing import Dict, List, Optional, Tuple

# The packages from the bottom layer up (the import-linter contract in setup.cfg); a module sorts after
# its package.
LAYERS = ["core", "graph", "data", "runtime", "surgery", "export", "models", "training", "criteria", "evals", "legacy",
          "results", "tickets", "config", "reports", "experiments"]


@dataclasses.dataclass
class PublicModule:
    """One module of the public face: its name, the dotted names it is reached by, its public names."""

    name: str
    reached_as: List[str]
    names: List[str]
    declared: bool  # whether the names come from the module's __all__


def _own_names(module: types.ModuleType) -> List[str]:
    """The public names a module without ``__all__`` defines itself."""
    names = []
    for name, value in vars(module).items():
        if name.startswith("_") or isinstance(value, (types.ModuleType, typing.TypeVar)):
            continue
        if inspect.isclass(value) or inspect.isfunction(value):
            if getattr(value, "__module__", None) == module.__name__:
                names.append(name)
        elif name.isupper() and not callable(value) and defining_module(module.__name__, name) == module.__name__:
            names.append(name)
    return names


def _sort_key(name: str) -> Tuple[int, str]:
    parts = name.split(".")
    if len(parts) == 1:
        return (-1, "")
    return (LAYERS.index(parts[1]) if parts[1] in LAYERS else len(LAYERS), name)


def public_modules() -> List[PublicModule]:
    """Every module of the public face, ``tf_lottery`` first, then by layer from the bottom up."""
    import tf_lottery

    found: Dict[str, PublicModule] = {}
    queue: List[Tuple[str, str]] = [("tf_lottery", "tf_lottery")]
    while queue:
        real, reached = queue.pop(0)
        if real in found:
            if reached not in found[real].reached_as:
                found[real].reached_as.append(reached)
            continue
        module = importlib.import_module(real)
        if module is tf_lottery:
            for name in tf_lottery._MODULES:
                getattr(tf_lottery, name)  # loads the lazy modules, and attaches the names moved to them
        declared = hasattr(module, "__all__")
        names = list(module.__all__) if declared else _own_names(module)
        found[real] = PublicModule(real, [reached], names, declared)
        for name in names:
            value = getattr(module, name)
            if isinstance(value, types.ModuleType) and value.__name__.startswith("tf_lottery."):
                queue.append((value.__name__, f"{reached}.{name}"))
    return sorted(found.values(), key=lambda public: _sort_key(public.name))


def defining_module(module_name: str, name: str) -> Optional[str]:
    """The module whose source assigns ``name``, following ``from ... import`` re-exports.

    Returns ``None`` when ``name`` is neither assigned nor imported by a module of tf_lottery.
    """
    found = _definition(module_name, name)
    return found and found[0]


def _definition(module_name: str, name: str, depth: int = 0) -> Optional[Tuple[str, str]]:
    """``(module, name there)`` of the assignment ``name`` comes from (an import may rename it)."""
    tree = _tree(module_name)
    if tree is None or depth > 10:
        return None
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(target, ast.Name) and target.id == name for target in targets):
                return module_name, name
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tf_lottery"):
            for alias in node.names:
                if (alias.asname or alias.name) == name:
                    return _definition(node.module, alias.name, depth + 1)
    return None


def _tree(module_name: str) -> Optional[ast.Module]:
    module = sys.modules.get(module_name) or importlib.import_module(module_name)
    try:
        return ast.parse(inspect.getsource(module))
    except (OSError, TypeError):
        return None


def constant_doc(module_name: str, name: str) -> str:
    """The ``#:`` comment above a constant's assignment, or the string literal after it ('' if neither).

    Args:
        module_name: The module that shows the constant (it may re-export it).
        name: The constant's name there.
    """
    found = _definition(module_name, name)
    if found is None:
        return ""
    home, name = found
    tree, lines = _tree(home), inspect.getsource(sys.modules[home]).splitlines()
    for index, node in enumerate(tree.body):
        targets = (node.targets if isinstance(node, ast.Assign) else [node.target]
                   if isinstance(node, ast.AnnAssign) else [])
        if not any(isinstance(target, ast.Name) and target.id == name for target in targets):
            continue
        following = tree.body[index + 1] if index + 1 < len(tree.body) else None
        if (isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)):
            return inspect.cleandoc(following.value.value)
        comment, line = [], node.lineno - 2
        while line >= 0 and lines[line].strip().startswith("#:"):
            comment.insert(0, lines[line].strip()[2:].strip())
            line -= 1
        return " ".join(comment)
    return ""


def kind(value) -> str:
    """How the reference shows a public value: 'module', 'class', 'function' or 'data'."""
    if isinstance(value, types.ModuleType):
        return "module"
    if inspect.isclass(value):
        return "class"
    if callable(value) and (inspect.isfunction(inspect.unwrap(value)) or inspect.isbuiltin(value)):
        return "function"
    return "data"


def _value_text(value) -> str:
    """The value of a constant when it is a short literal (an object's repr would carry its address)."""
    text = repr(value)
    try:
        ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return ""
    return text if len(text) <= 70 and "\n" not in text else ""


def reference_lines() -> List[str]:
    """The reStructuredText of the whole reference (what the directive parses)."""
    lines: List[str] = []
    shown: Dict[int, str] = {}  # id of an object already rendered in full -> where
    for public in public_modules():
        module = sys.modules[public.name]
        reached = [name for name in public.reached_as if name != public.name]
        lines += [public.name, "-" * len(public.name), "", f".. automodule:: {public.name}", "   :no-members:", ""]
        if reached:
            lines += ["Reached as " + ", ".join(f"``{name}``" for name in reached) + ".", ""]
        if not public.declared:
            lines += ["(No ``__all__``: the names it defines.)", ""]
        for name in public.names:
            value = getattr(module, name)
            target, what = f"{public.name}.{name}", kind(value)
            if what == "module":
                lines += [f".. py:data:: {name}", f"   :module: {public.name}", "   :no-index:", "",
                          f"   The module :mod:`{value.__name__}` (its own section).", ""]
                continue
            again = shown.get(id(value)) if what != "data" else None
            options = ["   :no-index:"] if again else []
            if what == "data":
                doc = constant_doc(public.name, name)
                lines += [f".. py:data:: {name}", f"   :module: {public.name}"]
                lines += [f"   :value: {_value_text(value)}"] if _value_text(value) else []
                lines += [""] + [f"   {line}" for line in (doc or "(undocumented)").splitlines()] + [""]
                continue
            directive = "autoclass" if what == "class" else "autofunction"
            lines += [f".. {directive}:: {target}"] + options
            if what == "class" and not again:
                lines += ["   :members:"]
            lines.append("")
            if again:
                lines += [f"   The same object as :py:obj:`{again}`.", ""]
            else:
                shown[id(value)] = target
    return lines


def _directive():
    from docutils import nodes
    from docutils.statemachine import StringList
    from sphinx.util.docutils import SphinxDirective
    from sphinx.util.nodes import nested_parse_with_titles

    class ApiDirective(SphinxDirective):
        has_content = False

        def run(self):
            container = nodes.section()
            container.document = self.state.document
            nested_parse_with_titles(self.state, StringList(reference_lines(), source="tf_lottery public face"),
                                     container, self.content_offset)
            return container.children

    return ApiDirective


def setup(app):
    app.add_directive("tf-lottery-api", _directive())
    return {"parallel_read_safe": True, "version": "1"}
