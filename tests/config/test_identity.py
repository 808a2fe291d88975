"""Run identity survives refactoring: shipped flagfiles keep their run folders' digests.

The digests were computed by tf_lottery 0.7 (before the packages were layered in 0.8); a run
folder is ``<experiment>-<digest>``, so a changed digest would make every existing run
folder invisible to a rerun.
"""

import os

import pytest

from tf_lottery import cli

FLAGS_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "flags")

DIGESTS_OF_0_7 = {
    None: {"dense": "60fdda78dd92", "ticket": "27cb9d7dd0a7", "sweep": "118fa336934e"},  # the quick demo
    "quickstart.cfg": {"dense": "60fdda78dd92", "ticket": "27cb9d7dd0a7", "sweep": "118fa336934e"},
    "fashion_mnist_table2_resnet32.cfg": {"dense": "24779fe79dca", "ticket": "b9c2aecc0733", "sweep": "7f552d1716ae"},
    "fashion_mnist_table3_resnet32.cfg": {"dense": "24779fe79dca", "ticket": "b9c2aecc0733", "sweep": "71d8a201c131"},
    "cifar10_table1_resnet32.cfg": {"dense": "9a5961e7d104", "ticket": "9667ce1d046f", "sweep": "74d5f0960b81"},
    "cifar10_table4_resnet56.cfg": {"dense": "3e9200c01df7", "ticket": "9c9720bb0ad2", "sweep": "384e1d6686e1"},
}


def _config(flagfile):
    cli.FLAGS.unparse_flags()
    try:
        cli.FLAGS(["tf-lottery"] + ([f"--flagfile={os.path.join(FLAGS_DIR, flagfile)}"] if flagfile else []))
        return cli.config_from_flags()
    finally:
        cli.FLAGS.unparse_flags()


@pytest.mark.parametrize("flagfile", list(DIGESTS_OF_0_7), ids=lambda name: name or "no-flags")
def test_shipped_flagfiles_keep_the_digests_of_0_7(flagfile):
    config = _config(flagfile)
    assert {scope: config.digest(scope) for scope in ("dense", "ticket", "sweep")} == DIGESTS_OF_0_7[flagfile]


def test_the_quick_demo_lands_in_its_0_4_folder():
    config = _config(None)
    assert f"{config.experiment}-{config.digest('ticket')}" == "init_ticket-27cb9d7dd0a7"


# --- one training, one run folder: equivalent spellings give one identity -------------------------------

from hypothesis import given, settings, strategies as st  # noqa: E402

from tf_lottery.config import Config  # noqa: E402
from tf_lottery.data.idx import DEFAULT_FASHION_MNIST_DIR  # noqa: E402


@st.composite
def _meaning_and_spellings(draw):
    """A run's meaning, then two spellings of it drawn independently (explicit defaults, units, -0.0,
    trailing slashes, settings that the meaning makes moot)."""
    criterion = draw(st.sampled_from(["grasp", "snip", "magnitude"]))
    optimizer = draw(st.sampled_from(["sgd", "adamw"]))
    drops = draw(st.sampled_from([(), ("2ep",)]))
    num_blocks = draw(st.sampled_from([1, 2]))
    decay = draw(st.sampled_from([0.0, 1e-4]))

    def spelling():
        kw = dict(criterion=criterion, optimizer=optimizer, lr_drops=drops, num_blocks=num_blocks, val_size=1000)
        kw["data_dir"] = draw(st.sampled_from([None, DEFAULT_FASHION_MNIST_DIR, DEFAULT_FASHION_MNIST_DIR + "/"]))
        kw["weight_decay"] = -decay if decay == 0.0 and draw(st.booleans()) else decay
        kw.update(draw(st.sampled_from([{"depth": 14}, {"blocks_per_stage": (2, 2, 2)},
                                        {"depth": 20, "blocks_per_stage": (2, 2, 2)}])))
        if optimizer == "adamw":
            kw["momentum"], kw["nesterov"] = draw(st.sampled_from([0.9, 0.5])), draw(st.booleans())
        if not drops:
            kw["lr_drop_factor"] = draw(st.sampled_from([0.1, 0.5]))
        kw["num_classes"] = draw(st.sampled_from([None, 10]))
        kw["input_shape"] = draw(st.sampled_from([None, (28, 28, 1)]))
        own = {"grasp": ("mean", "high"), "snip": ("mean", "low"), "magnitude": ("mean", "low")}[criterion]
        if own[0] is not None:
            kw["aggregation"] = draw(st.sampled_from([None, own[0]]))
        if own[1] is not None:
            kw["prune_first"] = draw(st.sampled_from([None, own[1]]))
        if criterion == "magnitude":
            kw["score_per_class"] = draw(st.sampled_from([10, 3]))
        if num_blocks == 1:
            kw["schedule"] = draw(st.sampled_from(["oneshot", "iterative"]))
        kw["train_size"] = draw(st.sampled_from([0, 60000 - 1000]))
        kw["test_size"] = draw(st.sampled_from([0, 10000]))
        return kw

    return spelling(), spelling()


@settings(max_examples=200, deadline=None, derandomize=True)
@given(pair=_meaning_and_spellings())
def test_equivalent_spellings_of_one_training_name_one_run(pair):
    first, second = (Config.create(**kw) for kw in pair)
    for scope in ("dense", "ticket"):
        assert first.digest(scope) == second.digest(scope), (scope, pair)


def test_what_changes_the_training_still_changes_the_name():
    base = Config.create(depth=14)
    for change in ({"depth": 20}, {"blocks_per_stage": (2, 3, 2)}, {"weight_decay": 1e-3}, {"train_size": 100},
                   {"data_dir": "/elsewhere"}, {"num_classes": 12}, {"lr_drops": ("1ep",)}, {"momentum": 0.5}):
        assert base.replace(**change).digest("dense") != base.digest("dense"), change
    for change in ({"aggregation": "sum"}, {"prune_first": "low"}, {"schedule": "iterative"}, {"score_per_class": 3}):
        assert base.replace(**change).digest("ticket") != base.digest("ticket"), change
