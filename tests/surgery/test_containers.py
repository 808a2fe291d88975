"""Containers (one layer calling a sequence of blocks) are opened through their registered family:
their blocks are found, scored and removed one by one, bit-exactly; an unregistered container is
named with how to register it, and an unroll that computes something else is refused."""

import numpy as np
import pytest

import tf_lottery as tl
from tests import zoo


@tl.graph.containers.register(zoo.Stack)
def _stack(layer, x):
    for block in layer.blocks:
        x = block(x)
    return layer.norm(x)


@tl.graph.containers.register(zoo.MisreadStack)
def _misread(layer, x):
    for block in layer.blocks:
        x = block(x)
    return x  # forgets the norm


def _images(n=4, seed=0):
    return np.random.default_rng(seed).normal(size=(n, 16, 16, 3)).astype("float32")


def _numpy(tensor):
    return np.asarray(tensor)


def test_the_blocks_inside_a_registered_container_are_the_models_blocks():
    model = zoo.stack_resnet()
    found = tl.surgery.find_blocks(model)
    assert [(b.name, b.input_layer, b.removable) for b in found] == [
        ("unit1", "stem", True), ("unit2", "unit1", True), ("unit3", "unit2", True)]
    x = _images()
    assert np.array_equal(_numpy(tl.graph.flat(model)(x)), _numpy(model(x)))  # the view computes the model


def test_removing_a_block_inside_a_container_equals_bypassing_it():
    model = zoo.stack_resnet(seed=2)
    ticket = tl.surgery.remove_blocks(model, ["unit2"], min_blocks_per_stage=0)
    assert tl.surgery.blocks(ticket) == ["unit1", "unit3"]
    stack = model.get_layer("stack")
    x = _images()
    h = model.get_layer("stem")(x)
    h = stack.norm(stack.blocks[2](stack.blocks[0](h)))
    bypassed = model.get_layer("logits")(model.get_layer("pool")(h))
    assert np.array_equal(_numpy(ticket(x)), _numpy(bypassed))
    for name in ("stem", "unit1", "unit3", "stack_norm", "logits"):  # kept weights, bit for bit
        kept = ticket.get_layer(name).get_weights()
        source = {"unit1": stack.blocks[0], "unit3": stack.blocks[2], "stack_norm": stack.norm}.get(name)
        source = source or model.get_layer(name)
        assert all(np.array_equal(a, b) for a, b in zip(kept, source.get_weights()))


def test_a_ticket_cut_from_a_container_model_is_scored_and_cut_again():
    model = zoo.stack_resnet(depth=4, seed=3)
    data = (_images(8), np.arange(8) % 4)
    scores = tl.criteria.get("snip")(model, data)
    assert sorted(scores) == ["unit1", "unit2", "unit3", "unit4"] and all(np.isfinite(list(scores.values())))
    ticket = tl.find_ticket(model, "snip", data=data, num_blocks=1, min_blocks_per_stage=0)
    assert ticket.removed == [min(scores, key=scores.get)]
    smaller = tl.find_ticket(ticket.model, "snip", data=data, num_blocks=1, min_blocks_per_stage=0)
    assert len(tl.surgery.blocks(smaller.model)) == 2


def test_an_unregistered_container_is_named_with_how_to_register_it():
    model = zoo.stack_resnet(container=_Unregistered)
    with pytest.raises(ValueError, match=r"stack holds 3 residual layers \(unit1, unit2, unit3\): a container of "
                                         r"blocks, opened once its family is registered: "
                                         r"@tl.graph.containers.register\('tests.surgery.test_containers._Unregistered'\)"):
        tl.find_ticket(model, "magnitude", num_blocks=1)


class _Unregistered(zoo.Stack):
    pass


def test_an_unroll_that_computes_something_else_is_refused():
    model = zoo.stack_resnet(container=zoo.MisreadStack)
    with pytest.raises(ValueError, match=r"the unrolled container 'stack' \(tests.zoo.MisreadStack\) does not "
                                         r"compute what its call does"):
        tl.surgery.blocks(model)


def test_a_family_is_registered_once():
    with pytest.raises(ValueError, match="already registered"):
        tl.graph.containers.register(zoo.Stack)(_stack)
