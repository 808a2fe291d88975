"""The config in sections: flags generated from it, identity per section, old layouts still load."""

import dataclasses
import json
import os

import pytest
from absl import app

import tf_lottery as tl
from tf_lottery import cli, data, models
from tf_lottery.core import options
from tf_lottery.config import Config

HERE = os.path.dirname(__file__)

# Every flag tf_lottery 0.1 had: each keeps its name and meaning.
FLAGS_OF_0_1 = {
    "experiment", "model", "depth", "blocks_per_stage", "width_multiplier", "shortcut", "seed", "input_shape",
    "num_classes", "dataset", "data_dir", "download", "train_size", "val_size", "test_size", "mean_subtraction",
    "crop", "flip", "criterion", "num_blocks", "fraction", "schedule", "min_blocks_per_stage", "aggregation",
    "prune_first", "score_per_class", "rewind", "rewind_epoch", "keep_epochs", "sweep_experiment",
    "sweep_num_blocks", "sweep_criteria", "sweep_seeds", "sweep_rewinds", "sweep_rewind_epochs", "length",
    "batch_size", "learning_rate", "momentum", "nesterov", "lr_drops", "lr_drop_factor", "weight_decay", "runs_dir",
    "export", "carbon_country", "latency_batch_sizes", "memory_batch_size", "tensorboard",
}


@dataclasses.dataclass(frozen=True)
class _ToySettings:
    toy_width: int = options.integer(4, "Toy width.")


def _parse(*args):
    cli.FLAGS.unparse_flags()
    try:
        cli.FLAGS(["tf-lottery", *args])
        return cli.config_from_flags()
    finally:
        cli.FLAGS.unparse_flags()


def _plugin_flags() -> set:
    """The flags the plug-ins declare beside their code (each one's own test covers it)."""
    from tf_lottery.config import sections

    return {o.name for kind in sections.SECTIONS.values() for o in options.options_of(kind)
            if options.plugin_of(kind, o.field) is not None}


def test_every_flag_of_0_1_is_generated_with_its_default():
    assert FLAGS_OF_0_1 <= set(cli.OPTIONS)
    # A plug-in's option is listed by its own test, never here: a new one touches no list.
    assert {"angular_window", "grasp_temperature", "match", "imp_rate", "severities", "cka_examples"} <= _plugin_flags()
    assert _plugin_flags() <= set(cli.OPTIONS)
    assert set(cli.OPTIONS) - FLAGS_OF_0_1 - _plugin_flags() == {
        "method", "evals", "wait_for_lock", "deterministic",  # 0.2
        "sweep_methods",  # 0.3: the baselines (their methods' options are plug-in options)
        "from",  # 0.4 (the robustness evaluations' options are plug-in options)
        "weights_file", "output", "stem",  # 0.5: keras.applications and imagenet_resnet settings
        "tflite", "tflite_dynamic_range", "serving_dir",  # 0.5: serving
        "strategy", "devices", "cpu_devices", "tpu", "lr_scaling", "sync_batchnorm", "xla",  # 0.6: scale out
        "mixed_precision",
        "data_path", "cache_dir",
        "warmup", "bn_momentum",  # 0.7: twin recipes
        "rewind_step", "keep_steps", "sweep_rewind_steps",  # 0.9: rewinding to a step
        "model_args", "residual_layers",  # 0.9: --model=package.module:function, residual layers
        "task", "sequence_length", "optimizer", "score_sequences",  # 0.9: --task=causal_lm
        "num_layers", "hidden_dim", "num_heads",
        "precision",  # 0.10: --precision=auto|float32|bfloat16|float16
        "sweep_cells", "sweep_lengths", "sweep_margin", "sweep_alpha", "sweep_power", "sweep_detectable",  # 0.10:
        "sweep_comparisons", "sweep_shard",  # verdicts declared with their power, cells, lengths, shards
        "hf_dir",  # 0.10: Hugging Face transformers folders of language models
        "heal", "heal_temperature", "heal_hidden",  # 0.10: healing a lottery ticket by distillation
    }
    # Every flag is the default config's, except the settings of the other model builders.
    assert set(cli.OPTIONS) - set(Config().flat()) == {"weights_file", "output", "stem", "model_args", "num_layers",
                                                        "hidden_dim", "num_heads"}
    assert _parse() == Config()  # the flags' defaults are the config's: the quick demo


def test_a_builders_setting_left_out_takes_that_builders_default():
    """--depth is shared by cifar_resnet (default 20) and imagenet_resnet (default 50)."""
    assert _parse("--model=imagenet_resnet").model.settings.depth == 50
    assert _parse("--model=imagenet_resnet", "--depth=18", "--stem=cifar").model.settings.stem == "cifar"
    assert _parse().model.settings.depth == 20
    assert _parse("--model=resnet50", "--output=softmax").model.settings.output == "softmax"
    with pytest.raises(app.UsageError, match="--stem is not a setting of --model=cifar_resnet"):
        _parse("--stem=cifar")


def test_flags_land_in_their_sections():
    config = _parse("--depth=56", "--criterion=snip", "--fraction=0.5", "--train_size=0", "--keep_epochs=1,2",
                    "--sweep_seeds=0,1", "--latency_batch_sizes=1,32", "--noexport")
    assert config.model.settings.depth == 56 and config.method.criterion == "snip"
    assert (config.method.fraction, config.method.num_blocks) == (0.5, None)  # a fraction overrides the count
    assert config.data.train_size is None and config.training.keep_epochs == (1, 2)
    assert config.sweep.sweep_seeds == (0, 1) and config.evaluation.latency_batch_sizes == (1, 32)
    assert config.runtime.export is False


def test_json_round_trips_in_sections():
    config = Config.create(depth=32, blocks_per_stage=(2, 3, 4), shortcut="zero_pad", criterion="kl", rewind="lr",
                           sweep_criteria=("snip",), evals=("clean",), runs_dir="elsewhere")
    saved = json.loads(config.to_json())
    assert set(saved) == {"experiment", "seed", "model", "data", "training", "method", "sweep", "evaluation", "runtime"}
    assert saved["model"]["type"] == "cifar_resnet" and saved["model"]["blocks_per_stage"] == [2, 3, 4]
    assert Config.from_dict(saved) == config
    assert config.replace() == config and config.replace(seed=4).seed == 4


@pytest.mark.parametrize("name", ["fashion_mnist_table1", "fashion_mnist_table2", "fashion_mnist_table4"])
def test_flat_configs_written_by_0_1_load_as_the_same_settings(name):
    """Flat configs that 0.1 wrote into results.json load as the same settings.

    The fixtures are the ``config`` of the 0.1 evidence sweeps, kept under ``tests/fixtures`` so that regenerating the
    evidence (which writes today's nested config) does not remove the old format from the tests.
    """
    with open(os.path.join(HERE, "..", "fixtures", f"config_0_1_{name}.json")) as handle:
        flat = json.load(handle)
    config = Config.from_dict(flat)
    assert {k: list(v) if isinstance(v, tuple) else v for k, v in config.flat().items() if k in flat} == flat
    assert Config.from_dict(config.to_dict()) == config


@pytest.mark.parametrize("name", sorted(os.listdir(os.path.join(HERE, "..", "..", "flags"))))
def test_every_shipped_flagfile_round_trips(name):
    config = _parse(f"--flagfile={os.path.join(HERE, '..', '..', 'flags', name)}")
    assert Config.from_dict(json.loads(config.to_json())) == config


def test_identity_is_declared_per_section():
    base = Config()
    assert set(base.identity("dense")) == {"seed", "model", "data", "training"}
    assert set(base.identity("ticket")) == {"seed", "model", "data", "training", "method"}
    assert set(base.identity("sweep")) == {"seed", "model", "data", "training", "method", "sweep"}
    assert base.replace(depth=32).digest("dense") != base.digest("dense")
    assert base.replace(keep_epochs=(1,)).digest("dense") != base.digest("dense")
    assert base.replace(memory_batch_size=1, runs_dir="x").digest("sweep") == base.digest("sweep")
    with pytest.raises(ValueError, match="scope must be one of"):
        base.digest("everything")


@pytest.mark.parametrize(
    "flat, message",
    [
        (dict(criterion="hrank", aggregation="mean"),
         "criterion 'hrank' takes no option 'aggregation'; its options: batch_size"),
        (dict(criterion="grsp"), "unknown criterion 'grsp'; valid names: angular, block_influence, cka, expectabs"),
        (dict(evals=("clean", "robustness")),
         "unknown evaluation 'robustness'; valid names: adversarial, cka, clean, corruptions, cost, generation, latency, shift_sets"),
        (dict(method="channels"), "unknown method 'channels'; valid names: blocks, filter_masks, filters, imp"),
        (dict(depth=33), r"depth must be 6n\+2 with n >= 1"),
        (dict(keep_epochs=(2, 2)), "keep_epochs lists 2 twice; got 2,2: give each value once"),
        (dict(deepth=20), r"unknown config keys \['deepth'\]"),
    ],
)
def test_bad_values_are_refused_when_the_config_is_built(flat, message):
    with pytest.raises(ValueError, match=message):
        Config.create(**flat)


def test_a_setting_of_another_builder_is_refused_on_the_command_line():
    @models.register_builder("toy", settings=_ToySettings, from_settings=None, from_spec=None)
    def toy():
        raise NotImplementedError

    try:
        with pytest.raises(Exception, match="--depth is not a setting of --model=toy; its settings: toy_width"):
            _parse("--model=toy", "--depth=32")
    finally:
        models.MODELS._entries.pop("toy")


def test_the_one_model_build_reads_the_model_section():
    config = Config.create(depth=32, width_multiplier=0.5, num_classes=7)
    model = models.build(config.model, data.get("cifar10"), seed=3, weight_decay=0.0)
    same = tl.models.cifar_resnet(32, num_classes=7, input_shape=(32, 32, 3), seed=3, width_multiplier=0.5,
                                  weight_decay=0.0)
    assert model.count_params() == same.count_params() and model.output.shape[-1] == 7
    for a, b in zip(model.get_weights(), same.get_weights()):
        assert (a == b).all()


def test_the_command_line_of_a_language_run_names_its_task_data_and_builder_settings():
    # Regression: command_line() built a Config of the run's model with the demo's task, which a language
    # model refuses, so every --task=causal_lm run failed where it names its command (scores.json's remedy).
    config = Config.create(task="causal_lm", dataset="fortunes", model="byte_decoder", num_layers=3, evals=("clean",))
    assert config.command_line() == ("tf-lottery --dataset=fortunes --evals=clean --model=byte_decoder --num_layers=3 "
                                     "--task=causal_lm")
    assert Config.create(model="imagenet_resnet", depth=50).command_line() == "tf-lottery --model=imagenet_resnet"
