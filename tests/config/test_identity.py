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
