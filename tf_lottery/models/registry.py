"""The model registry and the one place a model is built from a config.

A builder registers a :class:`ModelBuilder`: its public function (``tl.models.cifar_resnet``),
a frozen dataclass of its own settings (each field a flag, see :mod:`tf_lottery.core.options`),
and how to build from those settings or from the JSON spec its models carry in their
lineage (:mod:`tf_lottery.graph.lineage`).

Example:
    >>> builder = MODELS.get("cifar_resnet")
    >>> model = builder(depth=20)              # the public function
    >>> model = build(config.model, data, seed=0, weight_decay=1e-4)
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Dict, List, Optional

import keras

from tf_lottery.graph.heads import float32_head
from tf_lottery.runtime import distribute
from tf_lottery.core.registry import Registry


@dataclasses.dataclass(frozen=True)
class ModelBuilder:
    """A registered model builder.

    Attributes:
        name: Registry name (the ``--model`` flag's value).
        fn: The public builder function; calling the entry calls it.
        settings: Frozen dataclass of the builder's own settings (declared options).
        from_settings: ``(settings, input_shape, num_classes, seed, weight_decay) -> model``.
        from_spec: ``(spec dict, removed block names) -> model``: the model a lineage
            describes (see ``lineage.rebuild``). A builder that cannot leave blocks out
            itself builds the dense model and cuts it with
            :func:`tf_lottery.surgery.remove_blocks`.
        architecture: ``(settings, input_shape, num_classes) -> str`` or None: a digest of the
            built model's architecture, for builders whose settings do not determine it.
        tasks: The ``--task`` values its models serve ("classify": images to class scores;
            "causal_lm": token ids and a padding mask to next-token logits).

    Example:
        >>> builder = get("cifar_resnet")
        >>> builder.settings.__name__, builder(depth=20).name
        ('CifarResNetSettings', 'resnet20')
    """

    name: str
    fn: Callable
    settings: type
    from_settings: Callable
    from_spec: Callable
    architecture: Optional[Callable] = None
    tasks: tuple = ("classify",)

    def __call__(self, *args, **kwargs) -> keras.Model:
        """Calls the public builder function."""
        return self.fn(*args, **kwargs)


#: The model builder registry (``--model``): :func:`get` a builder by name, :func:`names` lists them.
MODELS: Registry = Registry("model")
_PATTERN_SETTINGS: Dict[str, type] = {}  # how names() shows a pattern family -> its builders' settings


def register_builder(name: str, *, settings: type, from_settings: Callable, from_spec: Callable,
                     architecture: Optional[Callable] = None, tasks: tuple = ("classify",)):
    """Decorator registering a public builder function as a :class:`ModelBuilder`.

    Args:
        name: The ``--model`` value.
        settings: Frozen dataclass of the builder's own settings (each field a flag).
        from_settings: ``(settings, input_shape, num_classes, seed, weight_decay) -> model``.
        from_spec: ``(spec dict, removed block names) -> model``.
        architecture: ``(settings, input_shape, num_classes) -> str`` for a builder whose
            settings do not say everything its models are (a user's function): a digest that
            enters the run identity.
        tasks: The ``--task`` values its models serve (default: classify).

    Returns:
        The decorator; it registers the function and gives it back.

    Raises:
        ValueError: (from the decorator) for a name registered already.

    Example:
        >>> @register_builder("tiny_resnet", settings=TinySettings, from_settings=build, from_spec=rebuild)
        ... def tiny_resnet(input_shape=(32, 32, 3), num_classes=10, seed=0, width=16):
        ...     ...
    """

    return MODELS.entry(name, lambda fn: ModelBuilder(name, fn, settings, from_settings, from_spec, architecture,
                                                      tuple(tasks)))


def register_pattern(pattern: str, make: Callable[[str], ModelBuilder], shown: str, settings: type) -> None:
    """Makes every ``--model`` value matching ``pattern`` a builder made by ``make(value)``
    (``package.module:function``), whose settings are ``settings``.

    Args:
        pattern: A regular expression the whole value must match.
        make: ``value -> ModelBuilder``.
        shown: How :func:`names` and errors show the family (``"<package.module>:<function>"``).
        settings: The settings dataclass of its builders.

    Example:
        >>> register_pattern(r"mine:\w+", make_my_builder, "mine:<name>", MySettings)
        >>> "mine:<name>" in names()
        True
    """
    MODELS.register_pattern(pattern, make, shown)
    _PATTERN_SETTINGS[shown] = settings


def settings_classes() -> Dict[type, List[str]]:
    """Which settings class each ``--model`` value takes, registered builders and patterns alike.

    Returns:
        ``{settings class: [the --model values that take it]}``.

    Example:
        >>> settings_classes()[tl.models.CifarResNetSettings]
        ['cifar_resnet']
    """
    found: Dict[type, List[str]] = {}
    for name in MODELS:
        found.setdefault(MODELS.get(name).settings, []).append(name)
    for shown, settings in _PATTERN_SETTINGS.items():
        found.setdefault(settings, []).append(shown)
    return found


def get(name: str) -> ModelBuilder:
    """Returns the builder registered as ``name``.

    Args:
        name: A model type (:func:`names`), or ``package.module:function`` (a user's function, named by
            the caller, so it may be imported).

    Returns:
        Its :class:`ModelBuilder`.

    Raises:
        UnknownNameError: for a name that is not registered (listing the valid names).

    Example:
        >>> tl.models.get("cifar_resnet")(depth=32).count_params()
        470218
    """
    if isinstance(name, str) and ":" in name:  # package.module:function, named by the caller: it may be imported
        from tf_lottery.models import function  # (which imports this module)

        function.trust(name)
    return MODELS.get(name)


def build(model_config, data, seed: int = 0, weight_decay: float = 0.0) -> keras.Model:
    """Builds the model a config's model section describes: the only place runs build one.

    Args:
        model_config: A :class:`tf_lottery.config.ModelConfig` (type, settings, optional
            input shape and class count).
        data: Anything with ``input_shape`` and ``num_classes`` (prepared data or a
            registered dataset's info): the defaults for the shape and the class count.
        seed: Seed of the initial weights θ0.
        weight_decay: L2 factor the builder puts on its kernels.

    Returns:
        An uncompiled functional ``keras.Model`` carrying its lineage. Under a mixed-precision
        policy its end computes in float32 (:func:`tf_lottery.graph.heads.float32_head`).

    Raises:
        UnknownNameError: for an unregistered model type (listing the valid ones).
        ValueError: for settings the builder refuses.

    Example:
        >>> dense = build(config.model, data, seed=config.seed, weight_decay=config.training.weight_decay)
    """
    builder = MODELS.get(model_config.type)
    input_shape = tuple(model_config.input_shape or data.input_shape)
    num_classes = model_config.num_classes or data.num_classes
    model = builder.from_settings(model_config.settings, input_shape, num_classes, seed, weight_decay)
    if keras.mixed_precision.global_policy().name != "float32":  # --mixed_precision: logits and loss in float32
        float32_head(model)
    return distribute.apply_to_model(model)


def names() -> list[str]:
    """Registered model types.

    Returns:
        The names, sorted, with each pattern family as it is shown.

    Example:
        >>> names()[:2]
        ['byte_decoder', 'cifar_resnet']
    """
    return MODELS.names()
