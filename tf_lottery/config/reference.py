"""The configuration reference: every option, grouped by section, described from its declaration.

What ``tf-lottery --help`` prints, read from the same declarations the flags are generated
from (:mod:`tf_lottery.core.options`), so the two cannot drift apart.

Example:
    >>> groups = option_groups()
    >>> [title for title, _ in groups][:3]
    ['run', 'model', 'data']
    >>> describe(dict(groups)["method"][0])["flag"], describe(dict(groups)["method"][0])["default"]
    ('--method', 'blocks')
"""

from __future__ import annotations

from typing import Dict, List, Tuple

from tf_lottery.config.core import Config
from tf_lottery.config.sections import SECTIONS
from tf_lottery.core import options
from tf_lottery.criteria import CRITERIA
from tf_lottery.evals import EVALS
from tf_lottery.tickets import METHODS
from tf_lottery.models import settings_classes

#: What each kind of option takes on the command line.
KIND_LABELS = {"text": "string", "integer": "integer", "real": "number", "boolean": "bool, --no<name> for false",
               "choice": "one name", "integers": "comma-separated integers", "names": "comma-separated names"}


def option_groups() -> List[Tuple[str, List[options.Option]]]:
    """``[(section title, its options)]``: ``run`` (experiment, seed), the config's sections in
    order (without the plug-ins' options composed into them), then each method's and criterion's own
    options (``method options: --method=filter_masks|filters``, ``criterion options: --criterion=angular``,
    ``evaluation options: --evals=corruptions``), then the model builders' own settings
    (``model settings: --model=<builders>``; builders with one settings class, such as the
    keras.applications families, share a group).

    A setting several settings classes declare (``--depth``) is listed under each of them.
    """
    groups = [("run", options.options_of(Config))]
    groups += [(name, [o for o in options.options_of(kind) if options.plugin_of(kind, o.field) is None])
               for name, kind in SECTIONS.items()]
    for kind, flag, registry, attribute in (("method", "method", METHODS, "settings"),
                                            ("criterion", "criterion", CRITERIA, "settings"),
                                            ("evaluation", "evals", EVALS, "options")):
        owners: Dict[type, List[str]] = {}
        for name in registry.names():
            declared = getattr(registry.get(name), attribute)
            if declared is not None:
                owners.setdefault(declared, []).append(name)
        for declared, names in owners.items():
            groups.append((f"{kind} options: --{flag}={'|'.join(names)}", options.options_of(declared)))
    for settings, builders in settings_classes().items():
        declared = options.options_of(settings)
        if declared:
            groups.append((f"model settings: --model={'|'.join(builders)}", declared))
    return groups


def _shown(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value)) or "(empty)"
    return str(value)


def describe(option: options.Option) -> Dict[str, str]:
    """``{"flag", "type", "default", "allowed", "help"}`` of one option, as text.

    ``allowed`` is the list of valid values (a registry's names included), a lower bound
    (``>= 1``), or empty when any value of the type goes.
    """
    allowed = option.names()
    if allowed is not None:
        allowed_text = ", ".join(map(str, allowed))
    elif option.lower_bound is not None:
        allowed_text = f">= {option.lower_bound:g}"
    else:
        allowed_text = ""
    if option.zero_means_none:
        allowed_text = (allowed_text + "; " if allowed_text else "") + "0 means none (all)"
    return {"flag": f"--{option.name}", "type": KIND_LABELS[option.kind], "default": _shown(option.default),
            "allowed": allowed_text, "help": option.help}
