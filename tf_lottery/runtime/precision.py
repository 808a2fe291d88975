"""The arithmetic of ``--precision``, and the hardware detection behind ``auto``.

* ``float32``: everything in float32 (the default);
* ``bfloat16``: Keras' ``mixed_bfloat16``: layers compute in bfloat16, variables stay float32
  (bfloat16 keeps float32's range, so no loss scaling);
* ``float16``: ``mixed_float16``, GPUs only (Keras wraps the optimizer in a ``LossScaleOptimizer``);
* ``auto``: ``bfloat16`` where the hardware computes it natively (:func:`has_bfloat16`: a TPU,
  GPUs of compute capability 8.0 or more, a CPU with AVX512_BF16 or AMX-BF16), else ``float32``.
  It is *detected*, never assumed: on a CPU without those instructions bfloat16 is emulated and
  slower than float32.

Under any mixed policy the layer that ends the network computes in float32, so logits,
probabilities and losses are float32; criteria score in float32 (:func:`float32_compute`;
SynFlow keeps its float64 copy). The resolved policy, not the word ``auto``, enters a run's
identity: a run resumed on the same machine continues in the precision it started in, and a
machine where ``auto`` resolves otherwise trains in a run folder of its own.
``--mixed_precision`` (0.6) is kept: ``float16`` on GPUs, ``bfloat16`` elsewhere.

Example:
    >>> precision_policy("bfloat16")
    'mixed_bfloat16'
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Optional

import keras

from tf_lottery.graph.reader import leaf_layers

PRECISIONS = ("auto", "float32", "bfloat16", "float16")
#: The Keras dtype policy of each explicit ``--precision``.
POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
#: CPU feature flags (Linux ``/proc/cpuinfo``) of native bfloat16 arithmetic.
BFLOAT16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags(path: str = "/proc/cpuinfo") -> frozenset:
    """The CPU's feature flags as Linux lists them (empty where the file is missing: another OS)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return frozenset(line.partition(":")[2].split())
    except OSError:
        pass
    return frozenset()


def has_bfloat16(strategy_name: str = "default", flags: Optional[frozenset] = None) -> bool:
    """Whether this machine computes bfloat16 natively, as ``--precision=auto`` asks.

    A TPU does; GPUs do when every one has compute capability 8.0 or more (Ampere on); a CPU does
    when it has AVX512_BF16 or AMX-BF16 (:data:`BFLOAT16_CPU_FLAGS`).

    Args:
        strategy_name: The ``--strategy`` (``tpu`` answers yes).
        flags: The CPU's flags (default: :func:`cpu_flags`).

    Example:
        >>> has_bfloat16(flags=frozenset({"avx512f", "avx512_bf16"}))   # on a machine without GPUs
        True
    """
    import tensorflow as tf

    if strategy_name == "tpu":
        return True
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        capabilities = [tf.config.experimental.get_device_details(gpu).get("compute_capability", (0, 0))
                        for gpu in gpus]
        return all(tuple(c) >= (8, 0) for c in capabilities)
    return bool(set(BFLOAT16_CPU_FLAGS) & (cpu_flags() if flags is None else flags))


def precision_policy(precision: str, strategy_name: str = "default", mixed: bool = False) -> str:
    """The Keras dtype policy of ``--precision`` (and of the older ``--mixed_precision``).

    Args:
        precision: One of :data:`PRECISIONS`.
        strategy_name: The ``--strategy``.
        mixed: ``--mixed_precision``: float16 on GPUs, bfloat16 elsewhere (with ``precision``
            left at float32).

    Returns:
        "float32", "mixed_bfloat16" or "mixed_float16".

    Raises:
        ValueError: for an unknown precision, or float16 without a GPU.

    Example:
        >>> precision_policy("bfloat16")
        'mixed_bfloat16'
    """
    import tensorflow as tf

    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    on_gpu = strategy_name != "tpu" and bool(tf.config.list_physical_devices("GPU"))
    if mixed and precision == "float32":
        precision = "float16" if on_gpu else "bfloat16"
    if precision == "auto":
        precision = "bfloat16" if has_bfloat16(strategy_name) else "float32"
    if precision == "float16" and not on_gpu:
        raise ValueError("--precision=float16 needs a GPU (float16 on CPUs and TPUs is emulated and needs loss "
                         "scaling); use --precision=bfloat16 or auto")
    return POLICIES[precision]


@contextlib.contextmanager
def float32_compute(model: keras.Model) -> Iterator[keras.Model]:
    """Every layer of ``model`` computes in float32 inside the block (variables are float32 under
    any mixed policy, so nothing is copied); the layers' policies are restored after."""
    layers = [layer for layer in leaf_layers(model) if layer.dtype_policy.name != "float32"]
    kept = [layer.dtype_policy for layer in layers]
    for layer in layers:
        layer.dtype_policy = "float32"
    try:
        yield model
    finally:
        for layer, policy in zip(layers, kept):
            layer.dtype_policy = policy
