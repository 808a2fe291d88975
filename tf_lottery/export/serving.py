"""What an export serves: raw-image signatures with the run's preprocessing inside, TFLite, TF Serving.

A trained model expects images as training fed them: scaled to [0, 1], resized to the
model's input shape when it differs from the dataset's, minus the per-pixel mean of the
training split. A consumer should not have to repeat that by hand (a mismatch fails
silently, as a wrong accuracy), so every export carries it:

* ``serving_default`` takes raw images as the dataset stores them (``uint8``, the native
  height, width and channels, any batch size) and applies the preprocessing in the graph,
  with the same TensorFlow operations, in the same order, as training did;
* ``preprocessed`` takes what the model itself takes (float32, the model's input shape);
* both return ``logits``, ``probabilities`` (softmax of the logits), ``class`` (int64
  argmax) and ``features`` (the input of the last Dense layer: what a new head trains on).

A model that ends in a softmax reports ``log(probabilities)`` as its logits (they differ
from the pre-softmax values by a constant per image, which changes neither the softmax
nor the argmax). The signatures have fixed dtypes and shapes: a float image, or one of
another size, is an error, not a silent guess.

Example:
    >>> prep = Preprocessing.from_data(data)
    >>> write_saved_model(model, prep, "export/ticket/saved_model")
    >>> convert_tflite("export/ticket/saved_model", "export/ticket/model.tflite")
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
from typing import Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from tf_lottery import graph
from tf_lottery.data.transforms import resize_images
from tf_lottery.core.io import atomic_path, nearest_existing
from tf_lottery.graph.heads import output_names, outputs_probabilities, penultimate, scored_output

#: The outputs a serving signature can give, each named ``<name>_output`` in a model of several outputs.
OUTPUTS = ("logits", "probabilities", "class", "features")


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """How raw images become the model's input.

    Attributes:
        raw_shape: (height, width, channels) of one image as the dataset stores it.
        raw_dtype: Its dtype ("uint8").
        input_shape: The model's input shape (the raw shape unless ``--input_shape`` resized it).
        mean: Per-pixel mean subtracted after scaling (and resizing), shaped like the input.
        class_names: Label names, in label order.

    Example:
        >>> preprocessing = Preprocessing.from_data(data)
        >>> preprocessing.apply(tf.zeros((1, *preprocessing.raw_shape), tf.uint8)).shape == (1, *data.input_shape)
        True
    """

    raw_shape: tuple
    raw_dtype: str
    input_shape: tuple
    mean: np.ndarray
    class_names: tuple = ()

    @classmethod
    def from_data(cls, data, class_names: Sequence[str] = ()) -> "Preprocessing":
        """The preprocessing of prepared data (:class:`tf_lottery.data.PreparedData`).

        Example:
            >>> Preprocessing.from_data(tl.data.prepare(tl.data.DataOptions("synthetic"))).raw_shape
            (16, 16, 3)
        """
        return cls(tuple(data.raw_shape), data.raw_dtype, tuple(data.input_shape),
                   np.asarray(data.mean, dtype="float32"), tuple(class_names or data.class_names))

    @classmethod
    def none(cls, model: keras.Model) -> "Preprocessing":
        """No preprocessing: the raw signature takes what the model takes (float32 model inputs)."""
        shape = tuple(int(d) for d in model.inputs[0].shape[1:])
        classes = int(model.outputs[0].shape[-1])
        return cls(shape, "float32", shape, np.zeros(shape, "float32"), tuple(str(i) for i in range(classes)))

    def apply(self, images: tf.Tensor) -> tf.Tensor:
        """Raw images to model inputs, with the operations :func:`tf_lottery.data.prepare` uses."""
        x = tf.cast(images, tf.float32)
        if np.issubdtype(np.dtype(self.raw_dtype), np.integer):
            x = x / 255.0
        if tuple(self.raw_shape) != tuple(self.input_shape):
            x = resize_images(x, self.input_shape)
        return x - tf.constant(self.mean)

    def to_dict(self) -> dict:
        """JSON-ready description (the mean is summarised; the export keeps it in ``mean.npy``)."""
        return {
            "raw_input": {"dtype": self.raw_dtype, "shape": [None, *self.raw_shape]},
            "model_input": {"dtype": "float32", "shape": [None, *self.input_shape]},
            "steps": [s for s in (
                "cast to float32",
                "divide by 255" if np.issubdtype(np.dtype(self.raw_dtype), np.integer) else None,
                f"resize to {self.input_shape[0]}x{self.input_shape[1]} (bilinear; antialiased when shrinking)"
                if tuple(self.raw_shape[:2]) != tuple(self.input_shape[:2]) else None,
                f"repeat the grey channel {self.input_shape[-1]} times"
                if self.raw_shape[-1] != self.input_shape[-1] else None,
                "subtract the per-pixel training mean (mean.npy)" if np.any(self.mean) else None) if s],
            "mean_of_mean": float(np.mean(self.mean)),
            "class_names": list(self.class_names),
        }


def head_names(model: keras.Model) -> list:
    """The signature keys of a model's heads when it has several: each output's name (the
    operation producing it), suffixed ``_output`` where it would clash with a key of
    :data:`OUTPUTS`; empty for a model of one output.

    Args:
        model: A functional model.

    Returns:
        The keys, in output order.

    Example:
        >>> head_names(tl.models.cifar_resnet(20))   # one output
        []
    """
    names = output_names(model)
    if len(names) == 1:
        return []
    return [f"{name}_output" if name in OUTPUTS else name for name in names]


def _heads(model: keras.Model):
    """A model giving (features, every output) from the model's input, sharing its layers; the
    features are the first head's classifier input (:func:`tf_lottery.graph.heads.penultimate`),
    else its output."""
    view = graph.flat(model)
    first = scored_output(view, output_names(view)[0])
    try:
        features = penultimate(first)
    except ValueError:  # no Dense classifier
        features = first.outputs[0]
    return keras.Model(view.inputs, [features, *view.outputs])


def write_saved_model(model: keras.Model, preprocessing: Preprocessing, path: str) -> None:
    """Writes a SavedModel with the ``serving_default`` (raw) and ``preprocessed`` signatures.

    Both return the first head's ``logits``, ``probabilities``, ``class`` and ``features``; a model
    with several outputs also returns every head's output under its name (:func:`head_names`).

    Args:
        model: A functional model (dense or ticket), trained.
        preprocessing: How its inputs were made (see :class:`Preprocessing`).
        path: The SavedModel folder (must not exist).

    Raises:
        ValueError: when the model's input shape is not ``preprocessing.input_shape``.

    Example:
        >>> write_saved_model(ticket, Preprocessing.from_data(data), "exports/ticket/saved_model")
        >>> tf.saved_model.load("exports/ticket/saved_model").signatures["serving_default"]
    """
    if tuple(model.inputs[0].shape[1:]) != tuple(preprocessing.input_shape):
        raise ValueError(f"model {model.name!r} takes {tuple(model.inputs[0].shape[1:])} but the preprocessing makes "
                         f"{tuple(preprocessing.input_shape)}")
    probabilities_out = outputs_probabilities(model)
    both = _heads(model)
    heads = head_names(model)

    def serve(x):
        features, out, *others = both(x, training=False)
        heads_out = {name: tf.cast(value, tf.float32) for name, value in zip(heads, [out, *others])}
        out = tf.cast(out, tf.float32)
        logits = tf.math.log(tf.clip_by_value(out, 1e-12, 1.0)) if probabilities_out else out
        return {"logits": logits, "probabilities": tf.nn.softmax(logits), "class": tf.argmax(logits, axis=-1),
                "features": tf.cast(features, tf.float32), **heads_out}

    archive = keras.export.ExportArchive()
    archive.track(both)
    def checked(images, shape):  # a loaded signature checks the dtype, not the shape: refuse, never broadcast
        return tf.ensure_shape(images, (None, *shape))

    archive.add_endpoint("serving_default",
                         lambda image: serve(preprocessing.apply(checked(image, preprocessing.raw_shape))),
                         input_signature=[tf.TensorSpec((None, *preprocessing.raw_shape),
                                                        tf.as_dtype(preprocessing.raw_dtype), name="image")])
    archive.add_endpoint("preprocessed", lambda image: serve(checked(image, preprocessing.input_shape)),
                         input_signature=[tf.TensorSpec((None, *preprocessing.input_shape), tf.float32,
                                                        name="image")])
    archive.write_out(path, verbose=False)


def folder_bytes(path: str) -> int:
    """Total size of the files under ``path`` (a SavedModel folder).

    Args:
        path: A folder.

    Returns:
        The bytes of every file below it.

    Example:
        >>> folder_bytes("exports/ticket/saved_model") > 0
        True
    """
    return sum(os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(path) for name in names)


def convert_tflite(saved_model: str, path: str, dynamic_range: bool = False) -> dict:
    """Converts a SavedModel's ``serving_default`` (raw images in) to a ``.tflite`` file.

    Args:
        saved_model: The SavedModel folder.
        path: Where to write the ``.tflite`` file (atomically).
        dynamic_range: Quantize weights to int8 (dynamic-range quantization); else float32.

    Returns:
        ``{"path", "bytes", "quantization", "select_tf_ops"}``: ``select_tf_ops`` is True when an
        operation had no TFLite builtin and the file needs the TensorFlow-ops delegate
        (``tf.lite.Interpreter`` of the tensorflow package has it; a mobile build must link it).

    Raises:
        ValueError: when the graph cannot be converted even with TensorFlow ops (an
            antialiased resize, from an ``--input_shape`` smaller than the images).

    Example:
        >>> convert_tflite("exports/ticket/saved_model", "exports/ticket/model.tflite")["quantization"]
        'none (float32)'
    """
    def convert(select_ops: bool) -> bytes:
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model, signature_keys=["serving_default"])
        if dynamic_range:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if select_ops:
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
        return converter.convert()

    try:
        content, select = convert(False), False
    except Exception:  # a TF operation without a builtin kernel: convert again with the TF-ops fallback
        try:
            content, select = convert(True), True
        except Exception as error:
            raise ValueError(
                f"TFLite cannot convert {saved_model}: {str(error).splitlines()[0][:300]}. An antialiased resize "
                "(an --input_shape smaller than the dataset's images) has no TFLite kernel: train at the native size "
                "or a larger one, or leave out --tflite") from error
    with atomic_path(path) as staging:
        with open(staging, "wb") as handle:
            handle.write(content)
    return {"path": os.path.basename(path), "bytes": len(content),
            "quantization": "dynamic_range" if dynamic_range else "none (float32)", "select_tf_ops": select}


def check_serving_dir(serving_dir: str) -> None:
    """Fails before a run trains when ``serving_dir`` cannot take TF Serving's folders.

    Args:
        serving_dir: The ``--serving_dir`` folder (it need not exist yet).

    Raises:
        ValueError: for a path that is a file (or under one), or a folder (or its nearest existing
            parent) that is not writable.

    Example:
        >>> check_serving_dir("serving")   # silent: it can be made here
    """
    existing = nearest_existing(serving_dir)
    if not os.path.isdir(existing):
        raise ValueError(f"--serving_dir={serving_dir}: {existing} is a file; TF Serving's layout needs a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"--serving_dir={serving_dir}: {existing} is not writable")


def serving_version(saved_model: str, serving_dir: str, name: str) -> str:
    """Copies a SavedModel to ``serving_dir/name/<n>/``, TF Serving's layout, with ``n`` one above
    the highest version there (1 for the first). The copy takes its number only once complete.

    Args:
        saved_model: The SavedModel folder.
        serving_dir: TF Serving's model base folder.
        name: The model's name under it.

    Returns:
        The version folder.

    Example:
        >>> serving_version("runs/x/export/ticket/saved_model", "serving", "resnet20_minus2-6b7b7f746cfd")
        'serving/resnet20_minus2-6b7b7f746cfd/1'
    """
    base = os.path.join(serving_dir, name)
    os.makedirs(base, exist_ok=True)
    versions = [int(v) for v in os.listdir(base) if re.fullmatch(r"\d+", v)]
    target = os.path.join(base, str(max(versions, default=0) + 1))
    with atomic_path(target, folder=True) as staging:  # TF Serving ignores names that are not numbers
        shutil.copytree(saved_model, staging)
    return target


def tflite_outputs(path: str, images: np.ndarray, batch: Optional[int] = None) -> dict:
    """Runs a ``.tflite`` file's ``serving_default`` on ``images`` with ``tf.lite.Interpreter``.

    Args:
        path: The ``.tflite`` file.
        images: Raw images, shaped as the signature takes them.
        batch: Images per call (default: all at once).

    Returns:
        ``{output name: array over all images}``.

    Example:
        >>> tflite_outputs("exports/ticket/model.tflite", test_images[:8])["class"].shape
        (8,)
    """
    interpreter = tf.lite.Interpreter(model_path=path)
    runner = interpreter.get_signature_runner("serving_default")
    outputs = {}
    step = batch or len(images)
    for start in range(0, len(images), step):
        part = runner(image=images[start:start + step])
        for key, value in part.items():
            outputs.setdefault(key, []).append(value)
    return {key: np.concatenate(values) for key, values in outputs.items()}
