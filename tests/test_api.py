"""The README's public API is reachable from `import tf_lottery as tl` alone."""

import tf_lottery as tl


def test_public_modules_and_entry_points():
    for name in ("models", "surgery", "cost", "criteria", "tickets", "data", "train", "carbon", "export", "methods",
                 "evals", "records", "config"):
        assert hasattr(tl, name), name
    assert callable(tl.find_ticket) and callable(tl.export.save_ticket) and callable(tl.data.prepare)
    assert callable(tl.train.fit) and callable(tl.carbon.track) and callable(tl.models.cifar_resnet)
    assert callable(tl.models.build) and callable(tl.models.rebuild) and callable(tl.evals.run_cached)
    assert tl.methods.get("blocks").name == "blocks"
    assert tl.evals.EVALS.names() == ["adversarial", "cka", "clean", "corruptions", "cost", "generation", "latency",
                                      "shift_sets"]
    assert callable(tl.evals.corrupt) and callable(tl.evals.attack) and callable(tl.evals.linear_cka)


# Every tl.<package>.<name> the 0.7 README, tests and scripts used (0.8 moved the modules beneath them).
NAMES_OF_0_7 = [
    "carbon.track", "cost.count_filters", "cost.flops", "cost.latency", "cost.memory", "cost.reduction",
    "cost.uncounted", "criteria.class_balanced_batch", "criteria.get", "criteria.names", "curves.FLAT_PP",
    "data.DATASETS", "data.DataOptions", "data.DatasetUnavailable", "data.PreparedData", "data.datasets",
    "data.get", "data.pipeline", "data.prepare", "data.streaming", "data.synthetic_arrays",
    "distribute.float32_compute", "distribute.patch_keras_multi_worker", "distribute.prepare_fit", "evals.ATTACKS",
    "evals.EVALS", "evals.attack", "evals.cka", "evals.corrupt", "evals.corruptions", "evals.get",
    "evals.linear_cka", "evals.run_cached", "evals.shift_sets", "evals.wanted", "experiments.existing",
    "experiments.get", "experiments.robustness", "experiments.stages", "export.read_metadata", "export.save_model",
    "export.save_ticket", "filters.apply_masks", "filters.filter_groups", "filters.filter_masks",
    "filters.filter_scores", "filters.remove_filters", "filters.select_filters", "graph.flat", "graph.is_nested",
    "graph.leaf_layers", "graph.operation", "methods.get", "methods.imp", "models.CifarResNetSettings",
    "models.CifarResNetSpec", "models.MODELS", "models.build", "models.build_application", "models.cifar_resnet",
    "models.cifar_resnet_from_spec", "models.float32_head", "models.get", "models.imagenet_resnet",
    "models.lineage", "models.lineage_json", "models.logits_output", "models.names", "models.outputs_probabilities",
    "models.rebuild", "models.register_builder", "paper.TABLE3", "records.TicketRecord", "registry.Registry",
    "resume.EpochCheckpoint", "resume.discard", "serving.Preprocessing", "serving.tflite_outputs", "stats.paired",
    "surgery.Block", "surgery.blocks", "surgery.eligibility_rule", "surgery.find_blocks", "surgery.lineage",
    "surgery.lineage_json", "surgery.max_removable", "surgery.producers", "surgery.rebuild",
    "surgery.removable_blocks", "surgery.remove_blocks", "surgery.rewire", "surgery.silence_blocks",
    "tickets.select", "train.LinearWarmup", "train.Recipe", "train.compile_model", "train.evaluate", "train.fit",
    "train.make_deterministic", "train.warmup_schedule",
]


def test_every_public_name_of_0_7_is_still_reached_through_tl():
    missing = []
    for dotted in NAMES_OF_0_7:
        package, name = dotted.split(".")
        if not hasattr(getattr(tl, package), name):
            missing.append(dotted)
    assert missing == []
    assert tl.methods is tl.tickets and tl.train is tl.training and tl.cost is tl.graph.cost
    assert tl.surgery.rebuild is tl.models.rebuild and tl.filters.filter_scores is tl.criteria.filter_scores


def test_the_names_0_9_adds_for_models_beyond_convolutions():
    assert callable(tl.surgery.family_ticket) and callable(tl.surgery.kept_blocks) and callable(tl.surgery.bypassed)
    assert callable(tl.graph.containers.register) and callable(tl.cost.traced_flops)
    assert callable(tl.criteria.language.next_token_batch) and callable(tl.criteria.similarity.linear_cka)
    assert tl.evals.linear_cka is tl.criteria.similarity.linear_cka  # one implementation
    assert callable(tl.data.text.read_fortunes) and callable(tl.evals.language.perplexity)
    assert callable(tl.export.save_language_model)
