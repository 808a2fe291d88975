"""The ``tf-lottery`` command line (absl). With no flags it runs the offline quick demo.

Every flag is generated from the config's sections and the model builders' settings
(:mod:`tf_lottery.config`, :mod:`tf_lottery.core.options`): a field added there is a flag here.

Examples:
    tf-lottery                                                  # quick demo (Fashion-MNIST, ResNet-20, GraSP)
    tf-lottery --flagfile=flags/quickstart.cfg
    tf-lottery --flagfile=flags/cifar10_resnet56_grasp.cfg --num_blocks=12
    tf-lottery --experiment=describe --depth=56 --dataset=cifar10
    tf-lottery --flagfile=flags/fashion_mnist_table2_resnet32.cfg      # a sweep: Table 2's shape
"""

from __future__ import annotations

import errno
import sys
import textwrap
from typing import Dict, List, Optional, Tuple

from absl import app, flags, logging

from tf_lottery import experiments, models
from tf_lottery.runtime import distribute
from tf_lottery.core import options, quiet
from tf_lottery.experiments import runs
from tf_lottery import training
from tf_lottery.config import SECTIONS, Config, reference
from tf_lottery.core.log import log
from tf_lottery.core.registry import UnknownNameError

FLAGS = flags.FLAGS


def _all_options() -> List[options.Option]:
    """Every option: the top level's, each section's, and every registered builder's settings."""
    found = options.options_of(Config)
    for kind in SECTIONS.values():
        found += options.options_of(kind)
    for settings in models.settings_classes():
        found += options.options_of(settings)
    return found


def _help(option: options.Option) -> str:
    """The help line; values that come from a registry are listed in it."""
    if option.choices is None or isinstance(option.choices, (tuple, list)):
        return option.help
    return f"{option.help} One of: {', '.join(option.names())}."


def _define(option: options.Option) -> None:
    default = option.default
    if option.zero_means_none and default is None:
        default = 0
    if option.kind == "text":
        flags.DEFINE_string(option.name, default, option.help)
    elif option.kind == "integer":
        flags.DEFINE_integer(option.name, default, option.help, lower_bound=option.lower_bound)
    elif option.kind == "real":
        flags.DEFINE_float(option.name, default, option.help)
    elif option.kind == "boolean":
        flags.DEFINE_bool(option.name, default, option.help)
    elif option.kind == "choice" and isinstance(option.choices, (tuple, list)):
        flags.DEFINE_enum(option.name, default, list(option.choices), option.help)
    elif option.kind == "choice":  # a registry: checked when the config is built, with its valid names
        flags.DEFINE_string(option.name, default, _help(option))
    else:  # integers, names
        flags.DEFINE_list(option.name, None if default is None else [str(v) for v in default], _help(option))


def define_flags() -> Dict[str, options.Option]:
    """Defines one absl flag per option (once; builders sharing a setting name share its flag).

    Returns:
        ``{flag name: option}``.

    Raises:
        ValueError: if two builders declare one setting name with different kinds.
    """
    defined: Dict[str, options.Option] = {}
    for option in _all_options():
        if option.name in defined:
            if defined[option.name].kind != option.kind:
                raise ValueError(f"setting {option.name!r} is declared as {defined[option.name].kind} and "
                                 f"{option.kind}; builders sharing a flag must agree on its kind")
            continue
        defined[option.name] = option
        if option.name not in FLAGS:
            _define(option)
    return defined


OPTIONS = define_flags()


def _value(option: options.Option):
    value = FLAGS[option.name].value
    if option.kind == "integers" and value is not None:
        try:
            value = tuple(int(v) for v in value)
        except ValueError:
            raise app.UsageError(f"--{option.name} takes comma-separated integers; got {','.join(value)}") from None
    elif option.kind == "names" and value is not None:
        value = tuple(value)
    if option.zero_means_none and value == 0:
        value = None
    return value


def config_from_flags() -> Config:
    """Builds the frozen :class:`Config` from the parsed flags.

    A setting of another model builder than ``--model``'s that a flagfile gave (``--hidden_dim`` of
    ``flags/fortunes_causal_lm.cfg`` with ``--model=my_lms:llama3``) is ignored with one notice line;
    given on the command line itself, it is an error. Flags parsed by :func:`parse_flags` know where
    they came from; flags parsed otherwise count as given on the command line.

    Raises:
        app.UsageError: for any invalid value, naming it and what is allowed, or for a
            setting of another model builder than ``--model``'s given on the command line.
    """
    try:
        layout = Config.layout(FLAGS["model"].value)
    except (UnknownNameError, ValueError) as error:  # an unknown name, a model function that does not import
        raise app.UsageError(str(error)) from None
    foreign = sorted(name for name in OPTIONS if name not in layout and FLAGS[name].present)
    from_files = _from_flagfiles(foreign)
    explicit = [name for name in foreign if name not in from_files]
    if explicit:
        settings = ", ".join(o.name for o in options.options_of(models.get(FLAGS["model"].value).settings))
        raise app.UsageError(f"--{explicit[0]} is not a setting of --model={FLAGS['model'].value}; its settings: "
                             f"{settings or 'none'}")
    if from_files:
        log(f"note: --model={FLAGS['model'].value} takes no {', '.join('--' + name for name in from_files)} (read "
            "from a flagfile, settings of another model builder): ignored")
    if FLAGS["num_blocks"].present and FLAGS["fraction"].present:
        raise app.UsageError(f"give --num_blocks or --fraction, not both; got --num_blocks={FLAGS['num_blocks'].value} "
                             f"and --fraction={FLAGS['fraction'].value}")
    # A builder's setting the command line leaves out takes that builder's default, not the
    # default of the first builder that declared the shared flag (--depth: 20 or 50).
    values = {name: _value(OPTIONS[name]) for name in layout
              if layout[name][0] != "model.settings" or FLAGS[name].present}
    try:
        config = Config.create(**values)
    except (ValueError, TypeError, UnknownNameError) as error:
        raise app.UsageError(str(error)) from None
    if FLAGS["from"].present and not experiments.get(config.experiment).takes_from:
        takers = ", ".join(n for n in experiments.EXPERIMENTS.names() if experiments.get(n).takes_from)
        raise app.UsageError(f"--experiment={config.experiment} takes no --from (it would be ignored); the "
                             f"experiments that read run folders: {takers}")
    return config


def main(argv) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}; every setting is a --flag")
    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # TensorFlow's INFO lines drown the progress otherwise
    else:
        sys.stderr.write(quiet.startup_output())  # TensorFlow's C++ start-up lines, held back on import
    try:
        config = config_from_flags()
    except app.UsageError as error:  # a value quoted in the message stays on one printable line
        raise app.UsageError(one_line(error)) from None
    try:
        if experiments.get(config.experiment).scope is not None:
            runs.check_runs_dir(config.runtime.runs_dir)
        if config.runtime.deterministic:
            training.make_deterministic()
        execution = distribute.activate(config.runtime)
        config = config.bound(execution)
        if not execution.is_chief:  # another worker joins every collective (saving too) in a folder of its own
            config = config.replace(runs_dir=distribute.private_runs_dir(config.runtime.runs_dir), serving_dir=None,
                                    hf_dir=None, tensorboard=False)
        if execution.name != "default" or execution.precision != "float32":
            log(execution.describe())
        with distribute.scope():
            experiments.get(config.experiment)(config)
    except OSError as error:  # a full disk, a read-only folder, a missing file
        if error.errno == errno.ENOSPC:
            print(f"tf-lottery: error: no space left on the device ({error.filename or config.runtime.runs_dir}); "
                  "free some and rerun: finished stages and epochs are kept", file=sys.stderr)
        else:
            print(f"tf-lottery: error: {error}", file=sys.stderr)
        return 2
    except (ValueError, TypeError, KeyError, RuntimeError, ImportError) as error:
        # Bad values found past flag parsing (an impossible p, a missing dataset, a damaged run
        # file): one clear line and a non-zero exit. Files already written are complete.
        message = f"missing key {error}" if isinstance(error, KeyError) else str(error)
        print(f"tf-lottery: error: {one_line(message)}", file=sys.stderr)
        return 2
    finally:
        distribute.deactivate()
    return 0


HELP_FLAGS = ("-h", "-?", "--help", "--helpshort")


def help_text(width: int = 100) -> str:
    """What ``tf-lottery --help`` prints: the examples, then tf_lottery's own flags by section,
    each with its type, default and allowed values (:mod:`tf_lottery.config.reference`).

    Example:
        >>> "--criterion" in help_text() and "method:" in help_text()
        True
    """
    examples = __doc__.split("Examples:\n", 1)[1].rstrip()
    lines = ["tf-lottery: layer lottery tickets at initialization, in Keras 3. With no flags it runs the offline",
             "quick demo. Every setting is a --flag; --flagfile=FILE reads flags from a file.", "", "Examples:",
             examples, ""]
    for title, declared in reference.option_groups():
        lines.append(f"{title}:")
        for option in declared:
            about = reference.describe(option)
            lines.append(f"  {about['flag']}  ({about['type']}; default: {about['default']})")
            text = about["help"] + (f" Allowed: {about['allowed']}." if about["allowed"] else "")
            lines += textwrap.wrap(text, width, initial_indent="      ", subsequent_indent="      ")
        lines.append("")
    lines.append("--helpfull lists absl's and TensorFlow's flags as well.")
    return "\n".join(lines)


def one_line(text: str) -> str:
    """``text`` as one printable line: control characters a value carried (``\\r``, ``\\x1e``) are shown
    escaped, so an error that quotes the value stays one line."""
    return " ".join("".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in str(text)).split())


_PARSED: Optional[Tuple[frozenset, dict]] = None
"""What the last :func:`parse_flags` read: the flags named on the command line itself (not in a flagfile),
and every present flag's value (to know the record is still that of the flags in effect)."""


def _present() -> dict:
    return {name: FLAGS[name].value for name in OPTIONS if FLAGS[name].present}


def _command_line_names(argv: List[str]) -> frozenset:
    """The flags ``argv`` names itself (``--name=value``, ``--name value``, ``--noname``), flagfiles left out."""
    found = set()
    for arg in argv[1:]:
        if arg == "--":
            break
        if not arg.startswith("-"):
            continue
        name = arg.lstrip("-").split("=", 1)[0]
        if name not in FLAGS and name.startswith("no") and name[2:] in FLAGS:
            name = name[2:]
        if name != "flagfile":
            found.add(name)
    return frozenset(found)


def _from_flagfiles(names: List[str]) -> List[str]:
    """Those of ``names`` that only a flagfile gave, by :func:`parse_flags`' record (none without one)."""
    if _PARSED is None or _PARSED[1] != _present():
        return []
    return [name for name in names if name not in _PARSED[0]]


def parse_flags(argv: List[str]) -> List[str]:
    """absl's flag parsing, whose errors quote the bad value escaped, on one line; records which flags
    the command line gave itself rather than a flagfile (:func:`config_from_flags` reads it).

    Raises:
        flags.Error: for a value a flag refuses.
    """
    global _PARSED
    _PARSED = None
    for file in _flagfiles(argv):
        _check_flagfile(file)
    try:
        remaining = FLAGS(argv)
        _PARSED = (_command_line_names(argv), _present())
        return remaining
    except flags.Error as error:
        raise flags.Error(one_line(error)) from None
    except UnicodeDecodeError as error:  # a flagfile named inside another flagfile
        raise flags.Error(f"a flagfile is not UTF-8 text ({error.reason} at byte {error.start}); save it as UTF-8") \
            from None


def _flagfiles(argv: List[str]) -> List[str]:
    """The ``--flagfile`` values of ``argv`` (``--flagfile=F`` or ``--flagfile F``)."""
    found = []
    for index, arg in enumerate(argv):
        if arg.startswith("--flagfile="):
            found.append(arg.split("=", 1)[1])
        elif arg == "--flagfile" and index + 1 < len(argv):
            found.append(argv[index + 1])
    return found


def _check_flagfile(file: str) -> None:
    """Refuses a flagfile that is not UTF-8 text (absl would fail with a traceback), naming it and the byte.

    Raises:
        flags.Error: naming the file.
    """
    try:
        with open(file, encoding="utf-8") as handle:
            handle.read()
    except UnicodeDecodeError as error:
        raise flags.Error(f"--flagfile={file} is not UTF-8 text ({error.reason}: byte {error.object[error.start]:#04x} "
                          f"at position {error.start}); save it as UTF-8") from None
    except OSError:
        return  # absl names a missing file itself


def _parse_flags_or_exit(argv: List[str]) -> List[str]:
    """``app.run``'s flag parser: :func:`parse_flags`, an error printed as absl prints it (one line) and exit 1."""
    try:
        return parse_flags(argv)
    except flags.Error as error:
        sys.stderr.write(f"FATAL Flags parsing error: {error}\nPass --help to see tf_lottery's flags.\n")
        sys.exit(1)


def run() -> None:
    """Console-script entry point: takes no arguments, as setuptools requires.

    ``--help`` (``-h``, ``--helpshort``) prints :func:`help_text` and exits 0; absl's own help,
    which lists only the flags of the script's module, is left to ``--helpfull``.
    """
    if any(arg in HELP_FLAGS for arg in sys.argv[1:]):
        print(help_text())
        sys.exit(0)
    app.run(main, flags_parser=_parse_flags_or_exit)


if __name__ == "__main__":
    run()
