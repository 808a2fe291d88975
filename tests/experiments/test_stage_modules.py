"""The stages of an experiment, one concern per module since 0.10, and the deprecated ``stages`` alias."""

import importlib

import pytest

import tf_lottery as tl
from tf_lottery.experiments import finished, fitting, measuring, preparing, publishing, recording, scoring

MODULES = {"preparing": preparing, "scoring": scoring, "fitting": fitting, "measuring": measuring,
           "publishing": publishing, "recording": recording, "finished": finished}


def test_the_deprecated_stages_module_warns_and_names_the_same_functions():
    with pytest.warns(DeprecationWarning, match="tf_lottery.experiments.stages is deprecated.*removed in 0.11"):
        stages = importlib.reload(importlib.import_module("tf_lottery.experiments.stages"))
    for name in stages.__all__:
        owners = [module for module in MODULES.values() if getattr(module, name, None) is getattr(stages, name)
                  and getattr(module, name).__module__ == module.__name__]
        assert len(owners) == 1, f"{name} is defined in {len(owners)} of the stage modules"
    assert tl.experiments.stages is stages


def test_every_stage_function_of_0_9_is_defined_once_and_named_in_the_alias():
    import inspect

    stages = importlib.import_module("tf_lottery.experiments.stages")
    defined = {name for module in MODULES.values() for name, value in vars(module).items()
               if inspect.isfunction(value) and value.__module__ == module.__name__ and not name.startswith("_")}
    assert set(stages.__all__) <= defined  # the stages of 0.9; later ones (check_hf_dir, ...) need no alias
    assert {"check_hf_dir", "publish_transformers"} <= defined - set(stages.__all__)
