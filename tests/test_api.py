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
    assert tl.evals.EVALS.names() == ["adversarial", "cka", "clean", "corruptions", "cost", "latency", "shift_sets"]
    assert callable(tl.evals.corrupt) and callable(tl.evals.attack) and callable(tl.evals.linear_cka)
