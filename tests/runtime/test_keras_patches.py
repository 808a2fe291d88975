"""The patches of Keras' private internals are pinned to the Keras release they were written for."""

import keras
from keras.src.backend.tensorflow import trainer as tf_trainer

from tf_lottery.runtime import keras_patches


def test_the_installed_keras_is_the_one_the_patches_were_written_for():
    assert keras.__version__ == keras_patches.WRITTEN_FOR, (
        f"Keras {keras.__version__} is installed but tf_lottery/runtime/keras_patches.py was written for "
        f"{keras_patches.WRITTEN_FOR}: re-check both patches against this Keras (and the multi-worker tests), "
        "then update WRITTEN_FOR")


def test_the_private_names_the_patches_use_still_exist():
    assert callable(tf_trainer.reduce_per_replica)
    assert callable(tf_trainer._collective_all_reduce_multi_worker)
    assert callable(getattr(keras.Model, "_symbolic_build"))
    assert hasattr(keras.Model, "_maybe_symbolic_build")


def test_the_metric_patch_is_idempotent_and_keeps_the_single_worker_path():
    keras_patches.patch_multi_worker_metrics()
    patched = tf_trainer.reduce_per_replica
    keras_patches.patch_multi_worker_metrics()
    assert keras_patches.is_patched() and tf_trainer.reduce_per_replica is patched  # not wrapped twice
    # Outside a multi-worker strategy the values go through Keras' own reduction unchanged.
    import tensorflow as tf

    value = tf.constant(3.0)
    assert float(patched(value, tf.distribute.get_strategy(), "auto")) == 3.0
