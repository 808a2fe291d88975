"""The ``tf-lottery`` command line (absl). With no flags it runs the offline quick demo.

Examples:
    tf-lottery                                                  # quick demo (Fashion-MNIST, ResNet-20, GraSP)
    tf-lottery --flagfile=flags/quickstart.cfg
    tf-lottery --flagfile=flags/cifar10_resnet56_grasp.cfg --num_blocks=12
    tf-lottery --experiment=describe --depth=56 --dataset=cifar10
    tf-lottery --flagfile=flags/fashion_mnist_table2_resnet32.cfg      # a sweep: Table 2's shape
"""

from __future__ import annotations

import sys

from absl import app, flags, logging

from tf_lottery import criteria, data, experiments
from tf_lottery.config import Config
from tf_lottery.registry import UnknownNameError

_D = Config()  # the defaults: the quick demo

flags.DEFINE_string("experiment", _D.experiment, f"What to run: {', '.join(experiments.EXPERIMENTS.names())}.")
# Model
flags.DEFINE_string("model", _D.model, "Model builder.")
flags.DEFINE_integer("depth", _D.depth, "ResNet depth, 6n+2 (20, 32, 44, 56, 110, ...).")
flags.DEFINE_list("blocks_per_stage", None, "Blocks per stage, e.g. 3,4,6; overrides --depth.")
flags.DEFINE_float("width_multiplier", _D.width_multiplier, "Scales the 16/32/64 filters.")
flags.DEFINE_enum("shortcut", _D.shortcut, ["projection", "zero_pad"],
                  "Downsampling shortcut: 1x1 projection conv (paper) or zero-padded identity (option A).")
flags.DEFINE_integer("seed", _D.seed, "Seed of θ0, the data split and order, and the scoring batch.")
flags.DEFINE_list("input_shape", None, "Image height,width,channels (default: the dataset's).")
flags.DEFINE_integer("num_classes", None, "Classifier outputs (default: the dataset's).", lower_bound=1)
# Data
flags.DEFINE_string("dataset", _D.dataset, f"Dataset: {', '.join(data.DATASETS.names())}.")
flags.DEFINE_string("data_dir", None, "Where the dataset is (Fashion-MNIST IDX folder or tfds data_dir).")
flags.DEFINE_bool("download", _D.download, "Let tfds download a missing dataset (needs internet).")
flags.DEFINE_integer("train_size", _D.train_size, "Training examples (0 = all).", lower_bound=0)
flags.DEFINE_integer("val_size", _D.val_size, "Validation examples held out of the training split.", lower_bound=0)
flags.DEFINE_integer("test_size", 0, "Test examples (0 = all).", lower_bound=0)
flags.DEFINE_bool("mean_subtraction", _D.mean_subtraction, "Subtract the per-pixel training mean.")
flags.DEFINE_bool("crop", _D.crop, "Pad-4 random crop augmentation.")
flags.DEFINE_bool("flip", _D.flip, "Random horizontal flip augmentation.")
# Ticket
flags.DEFINE_string("criterion", _D.criterion, f"Block criterion: {', '.join(criteria.names())}.")
flags.DEFINE_integer("num_blocks", _D.num_blocks, "Blocks to remove (the paper's p).", lower_bound=0)
flags.DEFINE_float("fraction", None, "Or: fraction of the removable blocks to remove (overrides --num_blocks).")
flags.DEFINE_enum("schedule", _D.schedule, ["oneshot", "iterative"], "One scoring, or re-score after each removal.")
flags.DEFINE_integer("min_blocks_per_stage", _D.min_blocks_per_stage, "Blocks each stage keeps.", lower_bound=1)
flags.DEFINE_enum("aggregation", None, ["sum", "mean"], "Per-weight to block score (default: the criterion's).")
flags.DEFINE_enum("prune_first", None, ["low", "high"], "Override the criterion's direction.")
flags.DEFINE_integer("score_per_class", _D.score_per_class, "Scoring examples per class.", lower_bound=1)
flags.DEFINE_enum("rewind", _D.rewind, ["weights", "lr", "reinit"],
                  "lottery: rewind the kept layers' weights to epoch i, keep the trained weights and replay "
                  "the schedule from epoch i, or re-initialize at random.")
flags.DEFINE_integer("rewind_epoch", _D.rewind_epoch, "lottery: the rewind epoch i.", lower_bound=0)
flags.DEFINE_list("keep_epochs", [], "Epochs after which the dense run keeps its weights θ_i (lottery adds "
                  "--rewind_epoch); runs of the same seed share the dense run only with the same list.")
# Sweep
flags.DEFINE_enum("sweep_experiment", _D.sweep_experiment, ["init_ticket", "lottery"],
                  "sweep: the experiment of each point.")
flags.DEFINE_list("sweep_num_blocks", [], "sweep: the values of p, e.g. 1,2,3,4,5 (empty: --num_blocks).")
flags.DEFINE_list("sweep_criteria", [], "sweep: the criteria, e.g. snip,grasp (empty: --criterion).")
flags.DEFINE_list("sweep_seeds", [], "sweep: the seeds, e.g. 0,1,2 (empty: --seed).")
flags.DEFINE_list("sweep_rewinds", [], "sweep (lottery): the rewind modes, e.g. weights,lr (empty: --rewind).")
flags.DEFINE_list("sweep_rewind_epochs", [], "sweep (lottery): the rewind epochs, e.g. 0,25,50,75 "
                  "(empty: --rewind_epoch).")
# Training
flags.DEFINE_string("length", _D.length, "Training length: 200ep (epochs) or 5000it (steps).")
flags.DEFINE_integer("batch_size", _D.batch_size, "Batch size.", lower_bound=1)
flags.DEFINE_float("learning_rate", _D.learning_rate, "Initial SGD learning rate.")
flags.DEFINE_float("momentum", _D.momentum, "SGD momentum.")
flags.DEFINE_bool("nesterov", _D.nesterov, "Nesterov momentum.")
flags.DEFINE_list("lr_drops", list(_D.lr_drops), "Lengths where the learning rate drops, e.g. 100ep,150ep.")
flags.DEFINE_float("lr_drop_factor", _D.lr_drop_factor, "Learning-rate factor at each drop.")
flags.DEFINE_float("weight_decay", _D.weight_decay, "L2 factor on conv kernels.")
# Output
flags.DEFINE_string("runs_dir", _D.runs_dir, "Folder of run folders.")
flags.DEFINE_bool("export", _D.export, "Export dense and ticket (SavedModel, .keras, metadata).")
flags.DEFINE_string("carbon_country", _D.carbon_country, "ISO alpha-3 country of the grid for CO2 (codecarbon).")
flags.DEFINE_list("latency_batch_sizes", [str(b) for b in _D.latency_batch_sizes], "Batch sizes of the latency measurement.")
flags.DEFINE_integer("memory_batch_size", _D.memory_batch_size, "Batch size of the memory estimate.", lower_bound=1)
flags.DEFINE_bool("tensorboard", _D.tensorboard, "Write TensorBoard logs.")

FLAGS = flags.FLAGS
_INT_LISTS = ("blocks_per_stage", "input_shape", "latency_batch_sizes", "keep_epochs", "sweep_num_blocks",
              "sweep_seeds", "sweep_rewind_epochs")
_NAME_LISTS = ("sweep_criteria", "sweep_rewinds")
_ZERO_MEANS_ALL = ("train_size", "test_size")


def _int_list(name: str):
    value = FLAGS[name].value
    if value is None:
        return None
    try:
        return tuple(int(v) for v in value)
    except ValueError:
        raise app.UsageError(f"--{name} takes comma-separated integers; got {','.join(value)}") from None


def config_from_flags() -> Config:
    """Builds the frozen :class:`Config` from the parsed flags.

    Raises:
        app.UsageError: for any invalid value, naming it and what is allowed.
    """
    values = {}
    for field in Config.__dataclass_fields__:
        value = _int_list(field) if field in _INT_LISTS else FLAGS[field].value
        if field in _NAME_LISTS:
            value = tuple(value)
        if field in _ZERO_MEANS_ALL and value == 0:
            value = None
        values[field] = value
    if values["fraction"] is not None:
        values["num_blocks"] = None
    values["lr_drops"] = tuple(values["lr_drops"] or ())
    try:
        for registry, name in ((experiments.EXPERIMENTS, "experiment"), (data.DATASETS, "dataset"),
                               (criteria.CRITERIA, "criterion")):
            registry.get(values[name])
        for name in values["sweep_criteria"]:
            criteria.CRITERIA.get(name)
        return Config(**values)
    except (ValueError, UnknownNameError) as error:
        raise app.UsageError(str(error)) from None


def main(argv) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}; every setting is a --flag")
    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # TensorFlow's INFO lines drown the progress otherwise
    config = config_from_flags()
    try:
        experiments.get(config.experiment)(config)
    except (ValueError, KeyError, FileNotFoundError, FileExistsError, RuntimeError) as error:
        # Bad values found past flag parsing (an impossible p, a missing dataset, ...):
        # one clear line and a non-zero exit. Files already written are complete.
        print(f"tf-lottery: error: {error}", file=sys.stderr)
        return 2
    return 0


def run() -> None:
    """Console-script entry point: takes no arguments, as setuptools requires."""
    app.run(main)


if __name__ == "__main__":
    run()
