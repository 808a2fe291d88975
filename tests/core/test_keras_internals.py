"""The seam to Keras' private internals: what each function reads, and that nothing else reads it."""

import ast
import pathlib

import keras
import numpy as np
import pytest

from tf_lottery.core import keras_internals
from tf_lottery.core.keras_internals import KerasInternalsError

PACKAGE = pathlib.Path(keras_internals.__file__).resolve().parents[1]
SEAM = pathlib.Path(keras_internals.__file__).resolve()


def _own_private_names(trees) -> set:
    """Private names tf_lottery defines itself (functions, classes, module names, its objects' attributes)."""
    own = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                own.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                own.add(node.id)
            elif isinstance(node, ast.alias):
                own.add(node.asname or node.name)
            elif (isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)
                  and isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                own.add(node.attr)
    return {name for name in own if name.startswith("_")}


def private_keras_uses(files, root=PACKAGE.parent) -> list:
    """``path:line: what`` for each read of a private name that tf_lottery does not define, each
    ``keras.src`` import and each ``hasattr``/``getattr``/``setattr`` of a private name, in ``files``."""
    trees = {path: ast.parse(path.read_text()) for path in files}
    own = _own_private_names(trees.values())
    found = []
    for path, tree in trees.items():
        where = path.relative_to(root)
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                    and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
                    and node.attr not in own):
                found.append(f"{where}:{node.lineno}: .{node.attr}")
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("keras.src"):
                found.append(f"{where}:{node.lineno}: from {node.module} import")
            elif isinstance(node, ast.Import) and any(a.name.startswith("keras.src") for a in node.names):
                found.append(f"{where}:{node.lineno}: import keras.src")
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                  and node.func.id in ("hasattr", "getattr", "setattr", "delattr") and len(node.args) >= 2
                  and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)
                  and node.args[1].value.startswith("_") and not node.args[1].value.startswith("__")
                  and node.args[1].value not in own):
                found.append(f"{where}:{node.lineno}: {node.func.id}(..., {node.args[1].value!r})")
    return found


def test_no_module_but_the_seam_reads_a_private_keras_name():
    files = [path for path in PACKAGE.rglob("*.py") if path.resolve() != SEAM]
    assert private_keras_uses(files) == [], "read Keras' private names through tf_lottery/core/keras_internals.py"


def test_the_scan_finds_what_it_looks_for(tmp_path):
    # The scan above cannot pass by finding nothing: here it finds each form of private read.
    bad = tmp_path / "tf_lottery" / "bad.py"
    bad.parent.mkdir()
    bad.write_text("from keras.src.ops import numpy\n"
                   "def f(tensor, model):\n"
                   "    hasattr(model, '_nodes_by_depth')\n"
                   "    return tensor._keras_history, model._run_through_graph\n")
    found = private_keras_uses([bad], root=tmp_path)
    assert sorted(line.split(": ", 1)[1] for line in found) == sorted([
        "from keras.src.ops import", "hasattr(..., '_nodes_by_depth')", "._keras_history", "._run_through_graph"])


def _shared_model():
    x = keras.Input((4,), name="pixels")
    shared = keras.layers.Dense(4, name="shared")
    y = shared(shared(x))
    z = keras.layers.Add(name="plus")([x, y])
    return keras.Model(x, keras.layers.Dense(2, name="head")(z)), shared


def test_producers_of_tensors():
    model, _ = _shared_model()
    assert [keras_internals.producer_name(t) for t in model.inputs] == ["pixels"]
    assert keras_internals.producer_name(model.outputs[0]) == "head"
    assert isinstance(keras_internals.producer(model.outputs[0]), keras.layers.Dense)
    assert keras_internals.producer_index(model.outputs[0]) == 0
    with pytest.raises(TypeError, match="expected a symbolic Keras tensor.*ndarray"):
        keras_internals.producer_name(np.zeros(2))


def test_calls_in_a_model_one_node_per_call():
    model, shared = _shared_model()
    assert len(keras_internals.calls_in(model, shared)) == 2
    assert len(keras_internals.calls_in(model, model.get_layer("head"))) == 1
    other = keras.Model(model.inputs, shared(model.inputs[0]))  # a third call, by another model
    assert len(keras_internals.calls_in(model, shared)) == 2
    assert len(keras_internals.calls_in(other, shared)) == 1


def test_running_a_graph_with_another_function_per_operation():
    model, _ = _shared_model()
    seen = []

    def operation_fn(operation):
        seen.append(operation.name)
        return operation

    inputs = [keras.Input((4,))]
    outputs = keras_internals.run_through_graph(model, inputs, operation_fn)
    rebuilt = keras.Model(keras_internals.pack_like_inputs(model, inputs), outputs)
    batch = np.arange(8, dtype="float32").reshape(2, 4)
    np.testing.assert_array_equal(rebuilt(batch).numpy(), model(batch).numpy())
    assert seen == ["shared", "shared", "plus", "head"]


def test_is_functional_child_layers_and_the_ops_addition():
    model, _ = _shared_model()
    assert keras_internals.is_functional(model)

    class Subclassed(keras.Model):
        def call(self, x):
            return x

    assert not keras_internals.is_functional(Subclassed())
    assert not keras_internals.is_functional("model")
    assert [layer.name for layer in keras_internals.child_layers(model)] == ["pixels", "shared", "plus", "head"]
    x, y = keras.Input((2,)), keras.Input((2,))
    assert keras_internals.is_ops_addition(keras_internals.producer(x + y))
    assert not keras_internals.is_ops_addition(keras_internals.producer(keras.layers.Add()([x, y])))
    assert not keras_internals.is_ops_addition(keras_internals.producer(x * y))


def test_a_missing_feature_is_named_in_one_line():
    class NotAKerasModel:
        pass

    with pytest.raises(KerasInternalsError, match=r"has no NotAKerasModel\._run_through_graph, which tf_lottery "
                                                  r"needs to run a model's graph operation by operation"):
        keras_internals.run_through_graph(NotAKerasModel(), [], lambda op: op)


def test_each_call_of_a_shared_layer_is_told_apart_and_run_by_its_node():
    model, shared = _shared_model()
    first, second = keras_internals.calls_in(model, shared)
    plus = keras_internals.calls_in(model, model.get_layer("plus"))[0]
    assert keras_internals.producer_call(second.input_tensors[0]) is first
    assert keras_internals.producer_call(plus.input_tensors[1]) is second
    seen = []

    def call_fn(node, args, kwargs):
        seen.append((node.operation.name, node is second))
        return args[0] if node is second else node.operation(*args, **kwargs)  # skip the second call only

    inputs = [keras.Input((4,))]
    rebuilt = keras.Model(inputs[0], keras_internals.run_calls(model, inputs, call_fn))
    assert seen == [("shared", False), ("shared", True), ("plus", False), ("head", False)]
    batch = np.arange(8, dtype="float32").reshape(2, 4)
    expected = model.get_layer("head")(shared(batch) + batch)
    np.testing.assert_allclose(rebuilt(batch).numpy(), expected.numpy(), rtol=1e-6)
