"""The runtime patches of Keras: each reads Keras' private names through the seam module, by feature."""

import keras

from tf_lottery.core import keras_internals
from tf_lottery.runtime import keras_patches


def test_the_features_the_patches_use_exist_in_the_installed_keras():
    trainer = keras_internals.tensorflow_trainer_module()  # raises KerasInternalsError naming what is missing
    assert callable(trainer.reduce_per_replica)
    import tensorflow as tf

    assert keras_internals.is_multi_worker_collective(tf.distribute.get_strategy()) is False
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    spec = (tf.TensorSpec((None, 2)), tf.TensorSpec((None, 1)))
    keras_patches.build_from_spec(model, spec)
    model._maybe_symbolic_build()  # the patched build: from the spec, inside the strategy's scope
    assert model.optimizer.built


def test_the_metric_patch_is_idempotent_and_keeps_the_single_worker_path():
    tf_trainer = keras_internals.tensorflow_trainer_module()
    keras_patches.patch_multi_worker_metrics()
    patched = tf_trainer.reduce_per_replica
    keras_patches.patch_multi_worker_metrics()
    assert keras_patches.is_patched() and tf_trainer.reduce_per_replica is patched  # not wrapped twice
    # Outside a multi-worker strategy the values go through Keras' own reduction unchanged.
    import tensorflow as tf

    value = tf.constant(3.0)
    assert float(patched(value, tf.distribute.get_strategy(), "auto")) == 3.0


# --- the fused batch norm ---------------------------------------------------------------------------------
# Tolerances: the fused kernel sums a channel's values in another order than Keras' reduce_mean, so
# float32 results differ by rounding only (measured: at most 2e-6 relative on these shapes); the bounds
# below are 50x that, and three SGD steps grow the difference without ever reaching them.

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

import tf_lottery as tl  # noqa: E402


def _twins():
    keras.utils.set_random_seed(0)
    plain = tl.models.cifar_resnet(8, input_shape=(8, 8, 3), num_classes=4, seed=0)
    fused = tl.models.cifar_resnet(8, input_shape=(8, 8, 3), num_classes=4, seed=0)
    images = np.random.default_rng(0).normal(size=(16, 8, 8, 3)).astype("float32")
    labels = np.arange(16) % 4
    return plain, fused, images, labels


def _step(model, images, labels):
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    with tf.GradientTape() as tape:
        logits = model(images, training=True)
        value = loss(labels, logits)
    return logits.numpy(), [g.numpy() for g in tape.gradient(value, model.trainable_weights)]


def test_the_fused_batch_norm_computes_keras_step_and_moving_statistics():
    plain, fused, images, labels = _twins()
    plain_logits, plain_grads = _step(plain, images, labels)
    with keras_patches.fused_batch_norm(fused):
        fused_logits, fused_grads = _step(fused, images, labels)
    assert all("call" not in vars(layer) for layer in keras_patches.batch_norm_layers(fused))  # restored
    np.testing.assert_allclose(fused_logits, plain_logits, rtol=1e-4, atol=1e-5)
    for weight, a, b in zip(plain.trainable_weights, plain_grads, fused_grads):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5, err_msg=weight.path)
    for a, b in zip(plain.non_trainable_weights, fused.non_trainable_weights):  # moving mean and variance
        initial = 0.0 if a.path.endswith("moving_mean") else 1.0
        assert np.all(b.numpy() != initial), f"{b.path} did not move"
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-5, atol=1e-6, err_msg=a.path)


def test_training_under_the_fused_batch_norm_follows_keras_training():
    plain, fused, images, labels = _twins()
    for model in (plain, fused):
        model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    plain.fit(images, labels, batch_size=16, epochs=3, verbose=0, shuffle=False)
    with keras_patches.fused_batch_norm(fused):
        fused.fit(images, labels, batch_size=16, epochs=3, verbose=0, shuffle=False)
    for a, b in zip(plain.weights, fused.weights):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-3, atol=1e-4, err_msg=a.path)
    # Inference takes Keras' own path, patched or not: the same numbers.
    with keras_patches.fused_batch_norm(fused):
        inferred = fused(images, training=False).numpy()
    np.testing.assert_array_equal(inferred, fused(images, training=False).numpy())


def test_the_fused_kernel_is_in_the_traced_step_and_keras_path_elsewhere():
    _, model, images, _ = _twins()

    def op_types(training):
        traced = tf.function(lambda x: model(x, training=training)).get_concrete_function(
            tf.TensorSpec((None, 8, 8, 3)))
        return {op.type for op in traced.graph.get_operations()}

    with keras_patches.fused_batch_norm(model):
        assert "FusedBatchNormV3" in op_types(True)
        assert "FusedBatchNormV3" not in op_types(False)
    assert "FusedBatchNormV3" not in op_types(True)


def test_the_fused_kernel_is_set_on_one_model_and_never_on_the_class():
    # Another model, traced while the first is inside the block (as another thread training at the same
    # time would), keeps Keras' own path: the kernel is an attribute of the first model's layers only.
    _, model, _, _ = _twins()
    _, other, _, _ = _twins()

    def op_types(network):
        traced = tf.function(lambda x: network(x, training=True)).get_concrete_function(
            tf.TensorSpec((None, 8, 8, 3)))
        return {op.type for op in traced.graph.get_operations()}

    keras_call = keras.layers.BatchNormalization.call
    with keras_patches.fused_batch_norm(model):
        assert keras.layers.BatchNormalization.call is keras_call
        assert "FusedBatchNormV3" in op_types(model)
        assert "FusedBatchNormV3" not in op_types(other)
        with keras_patches.fused_batch_norm(model):  # nested: the inner block leaves the outer's kernel in place
            pass
        assert "FusedBatchNormV3" in op_types(model)
    assert all("call" not in vars(layer) for layer in keras_patches.batch_norm_layers(model))


def test_the_batch_norm_layers_of_nested_models_are_found():
    _, inner, _, _ = _twins()
    x = keras.Input((8, 8, 3))
    outer = keras.Model(x, keras.layers.BatchNormalization(name="outer_bn")(inner(x)[:, :, None, None]))
    found = keras_patches.batch_norm_layers(outer)
    assert len(found) == len(keras_patches.batch_norm_layers(inner)) + 1
    assert len({id(layer) for layer in found}) == len(found)


@pytest.mark.parametrize("policy", ["mixed_bfloat16"])
def test_under_bfloat16_the_fused_batch_norm_keeps_statistics_in_float32(policy):
    keras.mixed_precision.set_global_policy(policy)
    try:
        layer = keras.layers.BatchNormalization()
        x = tf.cast(np.random.default_rng(1).normal(2.0, 3.0, size=(8, 4, 4, 5)), tf.bfloat16)
        with keras_patches.fused_batch_norm(layer):
            y = layer(x, training=True)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert y.dtype == tf.bfloat16 and layer.moving_variance.dtype == "float32"
    values = tf.cast(x, tf.float32).numpy().reshape(-1, 5)
    np.testing.assert_allclose(layer.moving_mean.numpy(), 0.01 * values.mean(0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(layer.moving_variance.numpy(), 0.99 + 0.01 * values.var(0), rtol=1e-4)
