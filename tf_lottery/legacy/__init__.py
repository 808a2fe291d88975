"""tf_keras and tfmot: the only place either is imported.

tfmot (TensorFlow Model Optimization) wraps only tf_keras (Keras 2) models, and importing
it sets ``TF_USE_LEGACY_KERAS=1`` for the whole process, so TensorFlow's own Keras alias becomes tf_keras.
tf_lottery itself always says ``import keras`` (Keras 3), which is unaffected: Keras 3
tickets keep training and exporting after this package was imported (tested in one process).

* :mod:`~tf_lottery.legacy.convert`: the same architecture in tf_keras, weights moved by
  layer name (bit-exact), and back;
* :mod:`~tf_lottery.legacy.masked`: training under *frozen* masks held by tfmot's
  ``prune_low_magnitude`` wrappers, stripped afterwards;
* the methods built on them: ``filter_masks`` (:mod:`tf_lottery.tickets.filter_masks`) and
  ``imp`` (:mod:`tf_lottery.tickets.imp`).

tf_keras and tfmot are imported inside the functions that use them, so ``import tf_lottery``
never imports either.
"""
