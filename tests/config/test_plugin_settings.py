"""A plug-in (method, criterion) declares its options beside its code, and they are composed into the config:
flags, reference, validation and identity, with no list to keep elsewhere."""

import dataclasses
from typing import ClassVar, Optional

import pytest

import tf_lottery as tl
from tf_lottery import criteria
from tf_lottery.config import Config, MethodConfig, reference
from tf_lottery.core import options
from tf_lottery.core.registry import Registry


def test_the_angular_window_is_declared_beside_angular_and_composed_into_the_method_section():
    angular = criteria.get("angular")
    assert angular.settings.__module__ == "tf_lottery.criteria.angular"
    assert angular.flags() == {"angular_window": "window"}
    assert options.plugin_of(MethodConfig, "angular_window") is angular.settings
    assert options.plugin_of(MethodConfig, "criterion") is None
    groups = dict(reference.option_groups())
    assert [o.name for o in groups["criterion options: --criterion=angular"]] == ["angular_window"]
    assert "angular_window" not in [o.name for o in groups["method"]]  # listed once, under its criterion
    assert [o.name for o in groups["method options: --method=filter_masks|filters"]] == [
        "match", "num_filters", "filter_ranking"]
    assert [o.name for o in groups["method options: --method=imp"]] == ["imp_rate", "imp_levels"]


def test_a_methods_options_are_declared_beside_it_and_in_its_runs_identity_only():
    filters = tl.tickets.get("filters")
    assert filters.settings.__module__ == "tf_lottery.tickets.filters"
    assert tl.tickets.get("filter_masks").settings is filters.settings
    config = Config.create(method="filters", match="none", num_filters=30)
    assert {"match": "none", "num_filters": 30, "filter_ranking": "global"}.items() <= \
        config.identity("ticket")["method"].items()
    assert "match" not in Config.create(match="none", num_filters=30).identity("ticket")["method"]  # blocks
    assert Config.create(method="imp", imp_rate=0.5).identity("ticket")["method"]["imp_rate"] == 0.5
    with pytest.raises(ValueError, match=r"--imp_rate must be in \(0, 1\); got 1.5"):
        Config.create(method="imp", imp_rate=1.5)
    with pytest.raises(ValueError, match="imp_levels must be <= 61 at --imp_rate=0.2"):
        Config.create(method="imp", imp_levels=62)


def test_a_criterion_option_reaches_the_scoring_function_under_its_keyword():
    config = Config.create(criterion="angular", angular_window=2, seed=3)
    assert config.criterion_options() == {"window": 2}
    assert Config.create(criterion="angular").criterion_options() == {}
    assert Config.create(criterion="random", seed=3).criterion_options() == {"seed": 3}


def test_a_criterion_option_is_checked_against_its_declaration_and_its_criterion():
    with pytest.raises(ValueError, match="angular_window must be >= 1; got 0"):
        Config.create(criterion="angular", angular_window=0)
    with pytest.raises(ValueError, match="--angular_window is an option of --criterion=angular; --criterion=grasp "
                                         "does not take it"):
        Config.create(criterion="grasp", angular_window=2)
    with pytest.raises(ValueError, match="--angular_window is an option of --criterion=angular; --criterion=snip"):
        Config.create(criterion="angular", angular_window=2, sweep_criteria=("angular", "snip"))


def test_an_option_at_its_default_leaves_the_identity_as_it_was():
    # The digests of 0.9, before the option was declared beside its criterion (recorded then).
    assert Config().digest("ticket") == "27cb9d7dd0a7"
    assert Config.create(criterion="angular").digest("ticket") == "6328a3cfe077"
    assert Config.create(criterion="angular", angular_window=2).digest("ticket") == "c647fc0a9038"
    assert "angular_window" in Config.create(criterion="angular", angular_window=2).identity("ticket")["method"]
    assert "angular_window" not in Config.create(criterion="angular").identity("ticket")["method"]
    assert "angular_window" in Config().to_dict()["method"]  # the JSON layout keeps every option


def test_the_python_api_takes_an_option_by_its_flag_or_its_keyword():
    angular = criteria.get("angular")
    assert angular.arguments({"angular_window": 3}) == {"window": 3}
    assert angular.arguments({"angular_window": None}) == {}
    with pytest.raises(ValueError, match="angular_window must be >= 1; got 0"):
        angular.arguments({"angular_window": 0})
    with pytest.raises(ValueError, match=r"--grasp_window is not an option of criterion 'angular'; its options: "
                                         r"--angular_window"):
        angular.arguments({"grasp_window": 1})
    angular.check_options({"angular_window": 2})
    angular.check_options({"window": 2})


def _registry_with(monkeypatch):
    registry = Registry("criterion")
    monkeypatch.setattr(criteria.registry, "CRITERIA", registry)
    return registry


def test_a_users_criterion_declares_options_the_same_way(monkeypatch):
    registry = _registry_with(monkeypatch)

    @dataclasses.dataclass(frozen=True)
    class OnesSettings:
        ones_value: Optional[float] = options.real(None, "ones: the score of every block.", lower_bound=0)
        ARGUMENTS: ClassVar[dict] = {"ones_value": "value"}

    @criteria.register("ones", prune_first="low", needs="nothing", when="any", summary="one score",
                       settings=OnesSettings)
    def ones(model, data=None, value: float = 1.0):
        return {block.name: value for block in tl.surgery.find_blocks(model)}

    entry = registry.get("ones")
    assert entry.flags() == {"ones_value": "value"}
    model = tl.models.cifar_resnet(8, input_shape=(8, 8, 3), num_classes=2, seed=0)
    assert set(entry(model, None, ones_value=0.5).values()) == {0.5}  # by its flag, as the config passes it
    assert set(entry(model, None, value=0.25).values()) == {0.25}     # by its keyword
    with pytest.raises(ValueError, match="ones_value must be >= 0; got -1"):
        entry(model, None, ones_value=-1.0)


@pytest.mark.parametrize("settings, error", [
    ("not a class", "settings must be a frozen dataclass class"),
    (dataclasses.make_dataclass("Loose", [("value", float, dataclasses.field(default=1.0))], frozen=True),
     "Loose.value is not a declared option"),
    (dataclasses.make_dataclass("Unfed", [("ones_size", int, options.integer(1, "size"))], frozen=True),
     "--ones_size feeds keyword 'ones_size', which ones does not take; it takes value"),
])
def test_settings_that_cannot_reach_the_function_are_refused_at_registration(monkeypatch, settings, error):
    registry = _registry_with(monkeypatch)
    with pytest.raises(ValueError, match=error):
        @criteria.register("ones", prune_first="low", needs="nothing", when="any", summary="x", settings=settings)
        def ones(model, data=None, value: float = 1.0):
            return {}
    assert "ones" not in registry.names()


def test_two_plug_ins_may_not_declare_one_flag_differently():
    @dataclasses.dataclass(frozen=True)
    class First:
        shared_size: int = options.integer(1, "first.")

    @dataclasses.dataclass(frozen=True)
    class Second:
        shared_size: int = options.integer(2, "second.")

    with pytest.raises(ValueError, match="Second and First both declare --shared_size, differently"):
        @dataclasses.dataclass(frozen=True)
        @options.compose(lambda: [First, Second])
        class Section:
            criterion: str = options.text("grasp", "Criterion.")

    with pytest.raises(ValueError, match="Clash declares --criterion, which Section declares itself"):
        @dataclasses.dataclass(frozen=True)
        class Clash:
            criterion: str = options.text("x", "clash.")

        First = Clash  # noqa: N806

        @dataclasses.dataclass(frozen=True)
        @options.compose(lambda: [First])
        class Section:  # noqa: F811
            criterion: str = options.text("grasp", "Criterion.")


def test_an_evaluations_options_are_declared_beside_it():
    from tf_lottery.config import EvaluationConfig

    corruptions = tl.evals.get("corruptions").options
    assert corruptions.__module__ == "tf_lottery.evals.robustness"
    assert options.plugin_of(EvaluationConfig, "severities") is corruptions
    assert options.plugin_of(EvaluationConfig, "evals") is None
    # --robustness_examples is read by two evaluations, declared alike by both: one flag.
    assert options.plugin_of(EvaluationConfig, "robustness_examples") in (corruptions, tl.evals.get("shift_sets").options)
    groups = dict(reference.option_groups())
    assert [o.name for o in groups["evaluation options: --evals=cka"]] == ["cka_examples"]
    assert [o.name for o in groups["evaluation"]] == ["evals", "from"]
    with pytest.raises(ValueError, match=r"severities takes distinct values from 1 to 5; got \[6\]"):
        Config.create(severities=(6,))
    assert set(Config().to_dict()["evaluation"]) == {
        "evals", "runs_from", "latency_batch_sizes", "memory_batch_size", "robustness_examples", "corruptions",
        "severities", "corruption_seed", "shift_sets", "shift_dir", "shift_download", "attacks", "epsilons",
        "pgd_steps", "pgd_step_size", "random_start", "attack_examples", "cka_examples"}  # the 0.9 layout
