"""The ``tf.distribute`` strategy of ``--strategy`` (see :mod:`tf_lottery.runtime.distribute` for what each
one is), the CPU split into logical devices for ``mirrored`` on a CPU, and the checks of ``--devices``
and ``TF_CONFIG``.

Example:
    >>> make_strategy("default").num_replicas_in_sync
    1
"""

from __future__ import annotations

import json
import os
from typing import Optional, Sequence

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")
LR_SCALINGS = ("linear", "none")
XLA_MODES = ("auto", "on", "off")
_MIRRORED: dict = {}


def split_cpu(count: int) -> None:
    """Splits the CPU into ``count`` logical devices (``/cpu:0`` ... ``/cpu:{count-1}``), so that a
    CPU machine can run ``mirrored`` (tests, benchmarks). Call it before TensorFlow runs its
    first op; calling it again with the same count is a no-op.

    Raises:
        ValueError: if ``count`` < 1.
        RuntimeError: if TensorFlow has started with another device count.
    """
    import tensorflow as tf

    if count < 1:
        raise ValueError(f"--cpu_devices must be >= 1; got {count}")
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError:
        have = len(tf.config.list_logical_devices("CPU"))
        if have != count:
            raise RuntimeError(f"--cpu_devices={count} must be set before TensorFlow starts; this process "
                               f"already runs with {have} CPU device(s)") from None


def make_strategy(name: str, devices: Sequence[str] = (), tpu: Optional[str] = None):
    """The ``tf.distribute.Strategy`` called ``name`` (see the module docstring).

    Raises:
        ValueError: for an unknown name, devices given to a strategy that takes none, a
            device this machine does not have, or a ``TF_CONFIG`` that does not parse.
        RuntimeError: when no TPU answers.
    """
    import tensorflow as tf

    if name not in STRATEGIES:
        raise ValueError(f"--strategy must be one of {', '.join(STRATEGIES)}; got {name!r}")
    if devices and name != "mirrored":
        raise ValueError(f"--devices is for --strategy=mirrored; got --strategy={name} "
                         f"--devices={','.join(devices)}")
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        # One strategy per device list and process: a second MirroredStrategy over the same
        # devices would reuse the collective keys of the first and abort ("Shape mismatch in
        # the collective instance").
        chosen = tuple(_mirrored_devices(devices))
        if chosen not in _MIRRORED:
            _MIRRORED[chosen] = tf.distribute.MirroredStrategy(list(chosen))
        return _MIRRORED[chosen]
    if name == "multi_worker":
        _check_tf_config()
        return tf.distribute.MultiWorkerMirroredStrategy()
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or "")
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as error:
        raise RuntimeError(f"--strategy=tpu found no TPU{f' at {tpu!r}' if tpu else ''}: "
                           f"{str(error).splitlines()[0][:200]}") from None
    return tf.distribute.TPUStrategy(resolver)


def _mirrored_devices(devices: Sequence[str]) -> list:
    """The device list of ``mirrored``: as given (checked), else every GPU, else every logical CPU."""
    import tensorflow as tf

    known = {d.name.rsplit("device:", 1)[-1].lower(): d.name for d in tf.config.list_logical_devices()}
    if devices:
        wanted = [d.lower().lstrip("/").rsplit("device:", 1)[-1] for d in devices]
        missing = [d for d, w in zip(devices, wanted) if w not in known]
        if missing:
            raise ValueError(f"--devices names {missing[0]!r}, which this machine does not have; it has "
                             f"{', '.join(sorted(known))} (split the CPU with --cpu_devices=N)")
        if len(set(wanted)) != len(wanted):
            raise ValueError(f"--devices lists a device twice: {','.join(devices)}")
        return [known[w] for w in wanted]
    gpus = tf.config.list_logical_devices("GPU")
    return [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]


def _check_tf_config() -> None:
    text = os.environ.get("TF_CONFIG")
    if not text:
        return  # one worker: MultiWorkerMirroredStrategy runs locally
    try:
        cluster = json.loads(text)
        cluster["cluster"], cluster["task"]["type"], int(cluster["task"]["index"])
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"TF_CONFIG must be JSON with 'cluster' and 'task' ({{'type', 'index'}}), as "
                         f"tf.distribute documents it; got {text[:200]!r} ({error})") from None
