"""Every public function refuses a wrong argument with one line naming it, before doing anything.

A table of calls with one wrong argument each (a wrong type, a value out of range, an unknown
choice): each must raise TypeError or ValueError (or the registry's KeyError) whose message is one
line naming the argument. Also: scores that cannot choose are refused, and tied scores are named.
"""

import os
import warnings

import numpy as np
import pytest

import tf_lottery as tl
from tf_lottery.core import arguments
from tf_lottery.tickets.find import TiedScores


@pytest.fixture(scope="module")
def model():
    return tl.models.cifar_resnet(14, input_shape=(16, 16, 3), num_classes=4, seed=0)


@pytest.fixture(scope="module")
def batch():
    return (np.random.default_rng(0).standard_normal((8, 16, 16, 3)).astype("float32"), np.arange(8) % 4)


def _scores(model):
    return {b.name: 0.1 * i for i, b in enumerate(tl.surgery.find_blocks(model))}


CALLS = {
    "temperature": lambda m, b: tl.find_ticket(m, "grasp", num_blocks=1, data=b, min_blocks_per_stage=1,
                                               temperature="hot"),
    "criterion": lambda m, b: tl.find_ticket(m, ["grasp"], num_blocks=1, data=b),
    "num_blocks": lambda m, b: tl.find_ticket(m, "grasp", num_blocks="2", data=b),
    "schedule": lambda m, b: tl.find_ticket(m, "grasp", num_blocks=1, data=b, schedule=3),
    "min_blocks_per_stage": lambda m, b: tl.find_ticket(m, "grasp", num_blocks=1, data=b, min_blocks_per_stage="2"),
    "prune_first": lambda m, b: tl.find_ticket(m, "grasp", num_blocks=1, data=b, prune_first="up"),
    "aggregation": lambda m, b: tl.find_ticket(m, "grasp", num_blocks=1, data=b, aggregation="max"),
    "residual_layers": lambda m, b: tl.find_ticket(m, "grasp", num_blocks=1, data=b, residual_layers=[3]),
    "fraction": lambda m, b: tl.find_ticket(m, "grasp", fraction=2.0, data=b),
    "batch_size": lambda m, b: tl.find_ticket(m, "hrank", num_blocks=1, data=b[0], min_blocks_per_stage=1,
                                              batch_size=0),
    "labels": lambda m, b: tl.find_ticket(m, "grasp", num_blocks=1, data=(b[0], np.arange(8)),
                                          min_blocks_per_stage=1),
    "scoring images": lambda m, b: tl.find_ticket(m, "grasp", num_blocks=1, data=(b[0] * 1j, b[1]),
                                                  min_blocks_per_stage=1),
    "'graps'": lambda m, b: tl.criteria.get("graps"),
    "recipe": lambda m, b: tl.train.fit(m, None, None, "w", "dense"),
    "recipe ": lambda m, b: tl.train.compile_model(m, None, 10),
    "data": lambda m, b: tl.train.fit(m, b, tl.train.Recipe(length="1ep"), "w", "dense"),
    "learning_rate": lambda m, b: tl.train.Recipe(length="1ep", learning_rate=-1),
    "momentum": lambda m, b: tl.train.Recipe(length="1ep", momentum="x"),
    "length": lambda m, b: tl.train.Recipe(length="ten"),
    "depth": lambda m, b: tl.models.cifar_resnet(15),
    "num_classes": lambda m, b: tl.models.cifar_resnet(8, num_classes=0),
    "input_shape": lambda m, b: tl.models.cifar_resnet(8, input_shape=(16, 16)),
    "names": lambda m, b: tl.surgery.remove_blocks(m, "stage1_block2"),
    "'nope'": lambda m, b: tl.surgery.remove_blocks(m, ["nope"]),
    "functional model": lambda m, b: tl.surgery.find_blocks(None),
    "per_class": lambda m, b: tl.criteria.class_balanced_batch(b[0], b[1], per_class="2"),
    "per_class ": lambda m, b: tl.criteria.class_balanced_batch(b[0], b[1], per_class=0),
    "count": lambda m, b: tl.tickets.select(m, _scores(m), "1"),
    "prune_first ": lambda m, b: tl.tickets.select(m, _scores(m), 1, prune_first="x"),
    "model": lambda m, b: tl.export.save_model(None, "never"),
    "origin": lambda m, b: tl.models.rebuild(3),
    "origin ": lambda m, b: tl.models.rebuild("{not json"),
    "metadata": lambda m, b: tl.export.save_model(m, "never", metadata=["x"]),
}


@pytest.mark.parametrize("named", sorted(CALLS))
def test_a_wrong_argument_is_refused_in_one_line_naming_it(model, batch, named, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises((TypeError, ValueError, KeyError)) as raised:
        CALLS[named](model, batch)
    message = str(raised.value).strip().strip('"')
    assert named.strip() in message, message
    assert "\n" not in message, message
    assert not os.listdir(tmp_path)  # refused before anything was written


@pytest.mark.parametrize("call,error,message", [
    (lambda: arguments.number("temperature", "hot", above=0), TypeError, "temperature must be a number > 0; got 'hot'"),
    (lambda: arguments.number("x", float("nan")), ValueError, "x must be a number; got nan"),
    (lambda: arguments.number("x", True), TypeError, "x must be a number; got True"),
    (lambda: arguments.count("n", 1.0, least=1), TypeError, "n must be an integer >= 1; got 1.0"),
    (lambda: arguments.count("n", 5, least=1, most=4), ValueError, "n must be an integer >= 1 and <= 4; got 5"),
    (lambda: arguments.one_of("s", ["a"], ("a", "b")), ValueError, "s must be one of 'a', 'b'; got ['a']"),
])
def test_the_argument_checks_say_what_is_allowed(call, error, message):
    with pytest.raises(error) as raised:
        call()
    assert str(raised.value) == message


def test_scores_that_cannot_choose_are_refused(model):
    flat = {b.name: 0.0 for b in tl.surgery.find_blocks(model)}
    with pytest.raises(ValueError, match=r"every removable block scored 0.0, so the scores cannot choose 1 of 3: the "
                                         r"scoring data gave the criterion nothing to measure"):
        tl.tickets.select(model, flat, 1, min_blocks_per_stage=1)


def test_all_zero_images_give_grasp_nothing_to_measure(model):
    zeros = (np.zeros((8, 16, 16, 3), "float32"), np.arange(8) % 4)
    with pytest.raises(ValueError, match="every removable block scored"):
        tl.find_ticket(model, "grasp", num_blocks=1, data=zeros, min_blocks_per_stage=1)


def test_a_tie_at_the_cut_is_named(model):
    scores = {b.name: float(i) for i, b in enumerate(tl.surgery.find_blocks(model))}
    removable = [b.name for b in tl.surgery.find_blocks(model) if b.removable]
    scores[removable[1]] = scores[removable[0]]  # the lowest two tie
    with pytest.warns(TiedScores, match=rf"{removable[0]} \(removed\) and {removable[1]} \(kept\) have the same score"):
        assert tl.tickets.select(model, scores, 1, min_blocks_per_stage=1) == [removable[0]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no tie at the cut: no warning
        tl.tickets.select(model, scores, 2, min_blocks_per_stage=1)
