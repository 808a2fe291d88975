"""The ``tf-lottery`` command line (absl).

Examples:
    tf-lottery --experiment=describe --depth=56
    tf-lottery --flagfile=flags/describe_resnet56.cfg
"""

from __future__ import annotations

import sys

from absl import app, flags

from tf_lottery import experiments
from tf_lottery.config import Config

_EXPERIMENT = flags.DEFINE_string(
    "experiment", "describe", f"What to run; one of: {', '.join(experiments.EXPERIMENTS.names())}."
)
_MODEL = flags.DEFINE_string("model", "cifar_resnet", "Model builder.")
_DEPTH = flags.DEFINE_integer("depth", 32, "ResNet depth, 6n+2 (20, 32, 44, 56, 110, ...).")
_BLOCKS = flags.DEFINE_list("blocks_per_stage", None, "Blocks per stage, e.g. 3,4,6; overrides --depth.")
_WIDTH = flags.DEFINE_float("width_multiplier", 1.0, "Scales the 16/32/64 filters.")
_SHORTCUT = flags.DEFINE_enum(
    "shortcut", "projection", ["projection", "zero_pad"],
    "Downsampling shortcut: 1x1 projection conv (paper) or zero-padded identity (option A).",
)
_INPUT_SHAPE = flags.DEFINE_list("input_shape", ["32", "32", "3"], "Image height,width,channels.")
_NUM_CLASSES = flags.DEFINE_integer("num_classes", 10, "Classifier outputs.", lower_bound=1)
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the initial weights.")
_MEMORY_BATCH = flags.DEFINE_integer("memory_batch_size", 128, "Batch size of the memory estimate.", lower_bound=1)


def _int_list(flag) -> tuple | None:
    if flag.value is None:
        return None
    try:
        return tuple(int(v) for v in flag.value)
    except ValueError:
        raise app.UsageError(f"--{flag.name} takes comma-separated integers; got {','.join(flag.value)}") from None


def config_from_flags() -> Config:
    """Builds the frozen :class:`Config` from the parsed flags.

    Raises:
        app.UsageError: for any invalid value, naming it and what is allowed.
    """
    experiments.get(_EXPERIMENT.value)
    try:
        return Config(
            experiment=_EXPERIMENT.value,
            model=_MODEL.value,
            depth=_DEPTH.value,
            blocks_per_stage=_int_list(_BLOCKS),
            width_multiplier=_WIDTH.value,
            shortcut=_SHORTCUT.value,
            input_shape=_int_list(_INPUT_SHAPE),
            num_classes=_NUM_CLASSES.value,
            seed=_SEED.value,
            memory_batch_size=_MEMORY_BATCH.value,
        )
    except ValueError as error:
        raise app.UsageError(str(error)) from None


def main(argv) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}; every setting is a --flag")
    try:
        config = config_from_flags()
        experiments.get(config.experiment)(config)
    except (ValueError, KeyError) as error:
        # Bad values found past flag parsing: one clear line and a non-zero exit.
        print(f"tf-lottery: error: {error}", file=sys.stderr)
        return 2
    return 0


def run() -> None:
    """Console-script entry point: takes no arguments, as setuptools requires."""
    app.run(main)


if __name__ == "__main__":
    run()
