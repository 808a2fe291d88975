"""The criteria registry: one entry per criterion, scoring blocks and, where it can, filters.

A criterion is a :class:`Criterion`: a callable ``(model, data, **options) -> {block: score}``
plus its convention: ``prune_first="low"`` (the lowest scores are removed first, the usual
"least important") or ``"high"`` (GraSP: a high score means removing the weights *raises*
the gradient norm, so those go first). Scores are given for every block of the model;
selection (:mod:`tf_lottery.tickets`) considers only the removable ones. A criterion with a
per-filter form (``filters``, for the filter-ticket baseline of the paper's Table 3) scores
every prunable filter with the same idea and the same direction.

Each criterion's module registers it with :func:`register`, once. A criterion with options that a
run chooses declares them beside its code, as a frozen settings dataclass of declared options
(:mod:`tf_lottery.core.options`) given to :func:`register` as ``settings=``: each field is a flag named
after the criterion (``--angular_window``), validated, listed in ``--help`` and the configuration
reference, and part of a ticket run's identity when set away from its default. ``ARGUMENTS`` maps a
field to the scoring function's keyword when their names differ.

Example:
    >>> @dataclasses.dataclass(frozen=True)
    ... class OnesSettings:
    ...     ones_value: float = options.real(1.0, "ones: the score of every block.")
    ...     ARGUMENTS = {"ones_value": "value"}
    >>> @register("ones", prune_first="low", needs="nothing", when="any", summary="all ones",
    ...           settings=OnesSettings)
    ... def ones(model, data=None, value: float = 1.0):
    ...     return {name: value for name in blocks(model)}
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import numbers
from typing import Callable, Dict, Mapping, Optional

import keras
import numpy as np

from tf_lottery.core import keras_internals
from tf_lottery.core import arguments, options as declared
from tf_lottery.core.registry import Registry, UnknownNameError
from tf_lottery.criteria.inputs import check_scores, check_scoring_data
from tf_lottery.criteria.language import causal_lm_parts, check_tokens
from tf_lottery.graph import reader as graph
from tf_lottery.criteria.loss import joint_cross_entropy, labels_by_output, using_loss
from tf_lottery.graph.heads import head_views, is_classifier, joint_view, logits_output, scored_output
from tf_lottery.runtime import distribute
from tf_lottery.surgery import residual as surgery
from tf_lottery.surgery.filters import filter_groups

#: How a criterion's per-weight scores make one block score: their ``sum`` or their ``mean``.
AGGREGATIONS = ("sum", "mean")

#: The criterion registry (``--criterion``): :func:`get` a :class:`Criterion` by name.
CRITERIA: Registry = Registry("criterion")


@dataclasses.dataclass(frozen=True)
class FilterCriterion:
    """The per-filter form of a criterion. Its direction (``prune_first``) is its criterion's.

    Attributes:
        name: The criterion's name.
        fn: ``(model, groups, data, **options) -> {conv: scores per filter}``.
        summary: One line for listings (the first line of ``fn``'s docstring).

    Example:
        >>> scores = filter_criterion("snip")(model, (images, labels))
        >>> scores["stage1_block2_conv1"].shape
        (16,)
    """

    name: str
    fn: Callable
    summary: str

    def __call__(self, model, data=None, **options) -> Dict[str, np.ndarray]:
        """Scores every prunable filter of ``model``.

        Raises:
            ValueError: for data the model cannot take, or a non-finite score.
        """
        check_scoring_data(model, data, CRITERIA.get(self.name).needs, self.name)
        scores = self.fn(model, filter_groups(model), data, **options)
        check_scores(self.name, scores)
        return scores


@dataclasses.dataclass(frozen=True)
class Criterion:
    """A registered block criterion.

    Attributes:
        name: Registry name.
        fn: ``(model, data, **options) -> {block name: score}``.
        prune_first: "low" or "high": which end of the ranking is removed first.
        needs: "labelled_batch", "images" or "nothing".
        when: "init", "trained" or "any": the regime it was designed for.
        summary: One line for listings.
        filters: Its per-filter form, or None when it has none.
        reads_output: Whether its scores depend on the model's output (False: weights alone, or a seed),
            so a model of several outputs needs no ``output=`` for it.
        settings: The frozen dataclass declaring the options a run chooses (flags), or None.

    Example:
        >>> grasp = get("grasp")
        >>> grasp.prune_first, grasp.needs
        ('high', 'labelled_batch')
        >>> scores = grasp(model, (images, labels))   # {block name: score}
    """

    name: str
    fn: Callable
    prune_first: str
    needs: str
    when: str
    summary: str
    filters: Optional[FilterCriterion] = None
    reads_output: bool = True
    settings: Optional[type] = None

    def flags(self) -> Dict[str, str]:
        """``{flag name: keyword of the scoring function}`` of the options in :attr:`settings`.

        Returns:
            The mapping, empty for a criterion without settings.

        Example:
            >>> get("angular").flags()
            {'angular_window': 'window'}
        """
        if self.settings is None:
            return {}
        renamed = getattr(self.settings, "ARGUMENTS", {})
        return {f.name: renamed.get(f.name, f.name) for f in dataclasses.fields(self.settings)}

    def arguments(self, values: Mapping[str, object]) -> Dict[str, object]:
        """The scoring function's keywords for flag values (``{"angular_window": 2}`` -> ``{"window": 2}``);
        values that are None (not chosen) are left out.

        Args:
            values: Flag names (of :meth:`flags`) and their values.

        Returns:
            Keyword arguments for the scoring function.

        Raises:
            ValueError: for a flag this criterion does not declare, or a value its declaration refuses.

        Example:
            >>> get("angular").arguments({"angular_window": 2})
            {'window': 2}
        """
        flags = self.flags()
        unknown = sorted(set(values) - set(flags))
        if unknown:
            raise ValueError(f"--{unknown[0]} is not an option of criterion {self.name!r}; its options: "
                             f"{', '.join('--' + f for f in flags) or 'none'}")
        checks = {o.name: o for o in declared.options_of(self.settings)} if self.settings else {}
        chosen = {}
        for flag, value in values.items():
            if value is not None:
                checks[flag].check(value)
                chosen[flags[flag]] = value
        if hasattr(self.settings, "check_values"):  # what the single declarations cannot refuse alone
            self.settings.check_values({**{o.name: o.default for o in checks.values()}, **values})
        return chosen

    def options(self) -> Dict[str, object]:
        """The criterion's own options and their defaults, e.g. ``{"aggregation": "mean"}``."""
        parameters = list(inspect.signature(self.fn).parameters.values())[2:]  # after (model, data)
        return {p.name: p.default for p in parameters}

    def check_options(self, options: Dict[str, object]) -> None:
        """Refuses options this criterion does not take.

        An option may be given by its keyword (``window``) or by its flag (``angular_window``, see
        :meth:`flags`); a flag's value is checked against its declaration.

        Raises:
            ValueError: naming the option, the criterion and the options it takes.

        Example:
            >>> get("hrank").check_options({"aggregation": "mean"})
            Traceback (most recent call last):
            ValueError: criterion 'hrank' takes no option 'aggregation'; its options: batch_size
        """
        options = self._by_keyword(options)
        unknown = sorted(set(options) - set(self.options()))
        if unknown:
            takes = ", ".join(self.options()) or "none"
            raise ValueError(f"criterion {self.name!r} takes no option {unknown[0]!r}; its options: {takes}")
        if "aggregation" in options:
            arguments.one_of("aggregation", options["aggregation"], AGGREGATIONS)
        for name, default in self.options().items():  # an option of a numeric default takes a number
            value = options.get(name)
            if value is not None and isinstance(default, numbers.Real) and not isinstance(default, bool):
                if isinstance(default, numbers.Integral):
                    arguments.count(name, value, least=0 if name == "seed" else 1)  # a seed may be 0, a size not
                else:
                    arguments.number(name, value)

    def _by_keyword(self, options: Mapping[str, object]) -> Dict[str, object]:
        """``options`` with each flag name (``angular_window``) turned into its keyword (``window``), checked."""
        flags = self.flags()
        given = {name: value for name, value in options.items() if name in flags and flags[name] != name}
        rest = {name: value for name, value in options.items() if name not in given}
        return {**rest, **self.arguments(given)}

    def run_options(self, seed: int, **chosen) -> Dict[str, object]:
        """The options a run passes: the ``chosen`` ones (None values left out), checked, plus the
        run's ``seed`` for a criterion that takes one (``random``).

        Raises:
            ValueError: for a chosen option the criterion does not take.
        """
        options = self._by_keyword({k: v for k, v in chosen.items() if v is not None})
        self.check_options(options)
        if "seed" in self.options():
            options["seed"] = seed
        return options

    def __call__(self, model: keras.Model, data=None, output: Optional[str] = None, loss: Optional[Callable] = None,
                 **options) -> Dict[str, float]:
        """Scores the blocks of ``model`` (nested models flattened, a softmax head switched to logits,
        every layer computing in float32 under a mixed-precision policy, dropout off).

        Args:
            model: A functional model.
            data: What the criterion needs (:attr:`needs`).
            output: For a model of several outputs, the name of the one to score
                (:func:`tf_lottery.graph.heads.scored_output`). Without it, labels for every
                output (``(images, {output name: labels})`` or a list in output order) score the
                sum of every output's cross-entropy (:mod:`tf_lottery.criteria.loss`).
            loss: ``loss(outputs, labels) -> scalar`` instead of the cross-entropy of logits and
                labels (:mod:`tf_lottery.criteria.loss`): for a model that is not a classifier
                (:func:`tf_lottery.criteria.language.next_token_loss` for a language model's logits).
                A keras_hub ``*CausalLM`` task is scored through its backbone on the next-token loss
                (:mod:`tf_lottery.criteria.language`); a loss given instead receives the backbone's
                hidden states.
            **options: The criterion's own options.

        Raises:
            ValueError: for missing data or data the model cannot take (checked against its
                input and classes before any TensorFlow op runs), an option the criterion does
                not take, a model without residual blocks, a model with several outputs and no
                ``output``, a model that is not a classifier without ``loss``, or a non-finite
                score (naming the first bad block).
        """
        if self.needs != "nothing" and data is None:
            raise ValueError(f"criterion {self.name!r} needs data ({self.needs.replace('_', ' ')}); got data=None")
        options = self._by_keyword(options)
        self.check_options(options)
        language_model = causal_lm_parts(model)
        if language_model is not None:  # a tied-embedding causal LM: its backbone, the head in the loss
            check_tokens(model, data[0] if isinstance(data, (tuple, list)) else data)
            model, loss = language_model.backbone, loss or language_model.loss
        flat = graph.flat(model)
        per_output = None
        if output is None and loss is None and len(flat.outputs) > 1 and isinstance(data, (tuple, list)) \
                and len(data) == 2 and self.needs == "labelled_batch":
            per_output = labels_by_output(flat, data[1])
        if per_output is not None:  # labels for every output: the sum of their cross-entropies
            view, data, loss = joint_view(flat), (data[0], per_output), joint_cross_entropy(flat)
        elif output is None and len(flat.outputs) > 1 and not self.reads_output:
            view = joint_view(flat)  # weights alone (or a seed): no output to choose
        else:
            view = scored_output(flat, output)
        if not surgery.find_blocks(view):
            raise ValueError(f"{model.name!r} has no residual block to score; {surgery.NO_BLOCKS_HINT}; "
                             f"{surgery.looked_at(view)}")
        if self.needs == "labelled_batch" and loss is None and not is_classifier(view):
            raise ValueError(
                f"{model.name!r} outputs {tuple(view.outputs[0].shape[1:])} per example, not class scores (batch, classes): criterion "
                f"{self.name!r} differentiates the cross-entropy of logits and labels. Add a classification head "
                "(e.g. GlobalAveragePooling2D and Dense(classes)), or pass loss=fn(outputs, labels) returning a "
                "scalar (tl.find_ticket(..., loss=fn))")
        check_scoring_data(view, data, self.needs, self.name, labels_checked=loss is None)
        with contextlib.ExitStack() as context:
            for head in head_views(flat) if per_output is not None else [view]:
                context.enter_context(logits_output(head))
            context.enter_context(distribute.float32_compute(view))  # float32 under mixed precision
            context.enter_context(_dropout_off(view))
            context.enter_context(using_loss(loss))
            scores = self.fn(view, data, **options)
        check_scores(self.name, scores)
        return scores


@contextlib.contextmanager
def _dropout_off(model: keras.Model):
    """Every dropout layer of ``model`` (inside subclassed layers too) drops nothing within the block.

    The criteria run the network in training mode (batch statistics, as SNIP's and GraSP's code
    does); a transformer's dropout would then draw a new mask per call and make the scores random.
    """
    layers = [layer for layer in keras_internals.child_layers(model, recursive=True)
              if isinstance(layer, keras.layers.Dropout) and layer.rate]
    rates = [layer.rate for layer in layers]
    for layer in layers:
        layer.rate = 0.0
    try:
        yield model
    finally:
        for layer, rate in zip(layers, rates):
            layer.rate = rate


def register(name: str, *, prune_first: str, needs: str, when: str, summary: str,
             filters: Optional[Callable] = None, reads_output: bool = True, settings: Optional[type] = None):
    """Decorator registering a block scoring function as a :class:`Criterion`.

    Args:
        name: The registry name.
        prune_first: "low" or "high".
        needs: "labelled_batch", "images" or "nothing".
        when: "init", "trained" or "any".
        summary: One line for listings.
        filters: The per-filter form, ``(model, groups, data, **options) -> {conv: scores}``
            (its docstring's first line is its summary), or None.
        reads_output: False for a criterion of weights alone (or a seed): it scores a model of
            several outputs without ``output=``.
        settings: A frozen dataclass of declared options (:mod:`tf_lottery.core.options`) that a run
            chooses: one flag per field, named after the criterion. Class attributes: ``ARGUMENTS``
            maps a field to the scoring function's keyword when their names differ;
            ``IDENTITY_DEFAULTS`` lists values that leave a run's identity as it was before the option
            existed; a classmethod ``check_values(values)`` refuses what one declaration cannot.

    Returns:
        The decorator, which registers the function and returns the :class:`Criterion`.

    Returns:
        The decorator; it registers the function and gives it back.

    Raises:
        ValueError: for a bad ``prune_first``, a name registered already, or settings that are not a
            frozen dataclass of declared options each feeding a keyword of the function.

    Example:
        >>> @register("ones", prune_first="low", needs="nothing", when="any", summary="all ones")
        ... def ones(model, data=None):
        ...     return {name: 1.0 for name in blocks(model)}
    """
    if prune_first not in ("low", "high"):
        raise ValueError(f"prune_first must be 'low' or 'high'; got {prune_first!r}")
    per_filter = None
    if filters is not None:
        summary_line = (inspect.getdoc(filters) or "").split("\n")[0].replace("``", "")  # plain text for listings
        per_filter = FilterCriterion(name, filters, summary_line)

    def make(fn):
        criterion = Criterion(name, fn, prune_first, needs, when, summary, per_filter, reads_output, settings)
        _check_settings(criterion)
        return criterion

    return CRITERIA.entry(name, make)


def _check_settings(criterion: Criterion) -> None:
    """Refuses settings that are not a frozen dataclass of declared options, each feeding a keyword of the
    scoring function (so a flag can never be silently ignored)."""
    settings = criterion.settings
    if settings is None:
        return
    if not (dataclasses.is_dataclass(settings) and isinstance(settings, type)
            and settings.__dataclass_params__.frozen):
        raise ValueError(f"criterion {criterion.name!r}: settings must be a frozen dataclass class; got {settings!r}")
    takes = criterion.options()
    for flag, keyword in criterion.flags().items():
        field = {f.name: f for f in dataclasses.fields(settings)}[flag]
        if "option" not in field.metadata:
            raise ValueError(f"criterion {criterion.name!r}: {settings.__name__}.{flag} is not a declared option "
                             "(tf_lottery.core.options: integer, real, choice, ...)")
        if keyword not in takes:
            raise ValueError(f"criterion {criterion.name!r}: --{flag} feeds keyword {keyword!r}, which "
                             f"{criterion.fn.__name__} does not take; it takes {', '.join(takes) or 'none'}")


def settings_classes() -> list:
    """The settings classes of the registered criteria, in registration order (each once): what the
    method section of the config is composed with (:func:`tf_lottery.core.options.compose`).

    Returns:
        The classes.

    Example:
        >>> [cls.__name__ for cls in settings_classes()]
        ['AngularSettings', 'GraspSettings', ...]
    """
    return CRITERIA.declared("settings")


def get(name: str) -> Criterion:
    """Returns the criterion registered as ``name``.

    Args:
        name: A criterion's name (:func:`names`).

    Returns:
        Its :class:`Criterion`: call it as ``criterion(model, data, **options)``.

    Raises:
        UnknownNameError: for a name that is not registered (listing the valid names).

    Example:
        >>> scores = tl.criteria.get("grasp")(model, (images, labels))
    """
    return CRITERIA.get(name)


def names() -> list:
    """Registered criterion names.

    Returns:
        The names, sorted.

    Example:
        >>> names()[:4]
        ['angular', 'block_influence', 'cka', 'expectabs']
    """
    return CRITERIA.names()


def filter_names() -> list:
    """The criteria that have a per-filter form.

    Returns:
        Their names, sorted.

    Example:
        >>> filter_names()
        ['expectabs', 'grasp', 'hrank', 'magnitude', 'random', 'snip']
    """
    return [name for name in CRITERIA.names() if name in CRITERIA and CRITERIA.get(name).filters is not None]


def filter_criterion(name: str) -> FilterCriterion:
    """The per-filter form of criterion ``name``.

    Args:
        name: One of :func:`filter_names`.

    Returns:
        Its :class:`FilterCriterion`.

    Raises:
        UnknownNameError: for a criterion without one (listing those with one).

    Example:
        >>> filter_criterion("snip").name
        'snip'
    """
    entry = CRITERIA.get(name) if name in CRITERIA else None
    if entry is None or entry.filters is None:
        raise UnknownNameError(f"unknown filter criterion {name!r}; valid names: {', '.join(filter_names())}")
    return entry.filters


def filter_scores(model: keras.Model, criterion: str, data=None, **options) -> Dict[str, np.ndarray]:
    """Scores every prunable filter of ``model`` with ``criterion``'s per-filter form.

    Args:
        model: The network (unchanged by this call).
        criterion: A criterion with a per-filter form (snip, grasp, magnitude, random, expectabs, hrank).
        data: What the criterion needs, e.g. ``(images, labels)``.
        **options: The criterion's options (``aggregation``, ``seed`` for random, ...).

    Returns:
        ``{conv name: array of one score per filter}``.

    Raises:
        UnknownNameError: for a criterion without a per-filter form (listing those with one).

    Example:
        >>> scores = filter_scores(model, "snip", (images, labels))
    """
    return filter_criterion(criterion)(model, data, **options)


def flat_scores(scores: Mapping[str, np.ndarray]) -> Dict[str, float]:
    """The JSON form of :func:`filter_scores`: one entry per filter.

    Args:
        scores: ``{conv name: array of one score per filter}``.

    Returns:
        ``{"<conv>:<index>": score}``.

    Example:
        >>> flat_scores({"stage1_block2_conv1": np.array([0.5, 0.25])})
        {'stage1_block2_conv1:0': 0.5, 'stage1_block2_conv1:1': 0.25}
    """
    return {f"{conv}:{i}": float(v) for conv, values in scores.items() for i, v in enumerate(values)}



