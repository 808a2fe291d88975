"""Where training runs: one ``tf.distribute`` strategy per process, and the precision it computes in.

``--strategy`` picks it:

* ``default``: TensorFlow's default strategy (one device; what every run did before 0.6);
* ``mirrored``: ``tf.distribute.MirroredStrategy`` over ``--devices`` (default: every GPU,
  else the logical CPUs that ``--cpu_devices`` made);
* ``multi_worker``: ``tf.distribute.MultiWorkerMirroredStrategy``; the cluster comes from
  ``TF_CONFIG``, as TensorFlow documents it;
* ``tpu``: ``tf.distribute.TPUStrategy`` on ``--tpu`` (a name or ``grpc://`` address; empty: the
  local TPU).

Models, optimizers, surgery rebuilds and weight loading all happen inside the strategy's
scope: the command line enters it once around the whole experiment (:func:`activate`).
``--batch_size`` is the batch of one replica; the global batch is ``batch_size x replicas``
and the learning rate follows by ``--lr_scaling`` (``linear``: times the replicas, Goyal et
al. 2017, "Accurate, Large Minibatch SGD", Sec. 2.1; ``none``: unchanged). Batch
normalization keeps per-replica statistics (Keras' default), so a replica normalizes over
the same ``batch_size`` images as one device does; ``--sync_batchnorm`` makes it normalize
over the global batch instead (then several replicas train what one device trains on the
global batch, up to the order of float sums).

Only the chief writes the run's files. Another worker of a multi-worker cluster runs the same
stages in a private folder, ``<runs_dir>/.workers/<index>``, that no other process touches:
every ``fit``, ``evaluate`` and model save is a collective all workers must join (TensorFlow's
multi-worker guide has non-chief workers save to scratch folders for the same reason), and
it publishes nothing to ``--serving_dir``. On resume the workers agree on the newest epoch
all of them saved (:func:`gather_from_workers`).

Keras 3.15 cannot train under ``MultiWorkerMirroredStrategy`` as released
(keras-team/keras#20585, tensorflow/tensorflow#72388): ``fit`` first reduces an input batch
across workers in eager mode, which the collective ops refuse ("Attempt to convert a value
(PerReplica...)"), and then reduces every scalar metric along ``axis=0`` ("Invalid reduction
dimension 0 for input with 0 dimensions"). :func:`prepare_fit` and the metric patch fix both, for
this process, at the two places they happen (:mod:`tf_lottery.runtime.keras_patches`, the one
module that touches Keras' private internals); nothing else changes.

The execution a process runs under (strategy, precision, worker) is one explicit object, the
:data:`CONTEXT` (an :class:`ExecutionContext`): :func:`activate` fills it from the config's
runtime section, :func:`deactivate` empties it, :func:`current` reads it and
:meth:`ExecutionContext.using` holds another execution for a block.

``--precision`` picks the arithmetic (:func:`precision_policy`):

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
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from typing import Iterator, Optional, Sequence

import keras

from tf_lottery.graph.reader import leaf_layers
from tf_lottery.runtime import keras_patches

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")
LR_SCALINGS = ("linear", "none")
XLA_MODES = ("auto", "on", "off")
PRECISIONS = ("auto", "float32", "bfloat16", "float16")
#: The Keras dtype policy of each explicit ``--precision``.
POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
#: CPU feature flags (Linux ``/proc/cpuinfo``) of native bfloat16 arithmetic.
BFLOAT16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
WORKERS_FOLDER = ".workers"
_MIRRORED: dict = {}


@dataclasses.dataclass(frozen=True)
class Execution:
    """The strategy a process trains under, and what follows from it.

    Attributes:
        name: One of :data:`STRATEGIES`.
        strategy: The ``tf.distribute.Strategy``.
        lr_scaling: How the learning rate follows the replicas (:data:`LR_SCALINGS`).
        precision: The Keras dtype policy models are built with ("float32", "mixed_bfloat16",
            "mixed_float16").
        worker: This process's index among the workers (0: the chief).
        workers: How many worker processes train together.
        sync_batchnorm: Batch normalization computes its statistics over the global batch
            (``synchronized=True``) instead of each replica's.
        xla: ``jit_compile`` of ``compile``: "auto" (Keras' choice), "on" or "off".
    """

    name: str = "default"
    strategy: object = None
    lr_scaling: str = "linear"
    precision: str = "float32"
    worker: int = 0
    workers: int = 1
    sync_batchnorm: bool = False
    xla: str = "auto"

    @property
    def jit_compile(self):
        """What ``keras.Model.compile`` takes for :attr:`xla`."""
        return {"auto": "auto", "on": True, "off": False}[self.xla]

    @property
    def replicas(self) -> int:
        """Replicas in sync: the global batch is the per-replica batch times this."""
        return 1 if self.strategy is None else int(self.strategy.num_replicas_in_sync)

    @property
    def is_chief(self) -> bool:
        """Whether this process writes the run files (the only worker, or worker 0)."""
        return self.worker == 0

    def global_recipe(self, recipe):
        """``recipe`` for all replicas at once: the global batch, and the learning rate scaled.

        Example:
            >>> Execution().global_recipe(Recipe(batch_size=128)).batch_size   # one replica
            128
        """
        if self.replicas == 1:
            return recipe
        factor = self.replicas if self.lr_scaling == "linear" else 1
        return dataclasses.replace(recipe, batch_size=recipe.batch_size * self.replicas,
                                   learning_rate=recipe.learning_rate * factor)

    def identity(self) -> dict:
        """What of the execution changes the trained weights, for a run's identity: nothing on
        one replica in float32 (so every earlier run keeps its folder)."""
        found = {}
        if self.replicas > 1:
            found.update(replicas=self.replicas, lr_scaling=self.lr_scaling, sync_batchnorm=self.sync_batchnorm)
        if self.precision != "float32":
            found["precision"] = self.precision
        return found

    def describe(self) -> str:
        """One line for the log."""
        where = f"{self.replicas} replica{'s' if self.replicas > 1 else ''}"
        workers = f", worker {self.worker} of {self.workers}" if self.workers > 1 else ""
        return f"strategy {self.name} ({where}{workers}), {self.precision}"


class ExecutionContext:
    """The execution this process runs under: one replica in float32 until :meth:`set`.

    One instance, :data:`CONTEXT`, is the process's; what reads it (``fit``, model builders,
    run folders) calls :func:`current`. It is plain process state, not thread-local: the
    replica threads of a ``MirroredStrategy`` see the same execution as the main thread.

    Example:
        >>> with CONTEXT.using(Execution(precision="mixed_bfloat16")):
        ...     current().precision
        'mixed_bfloat16'
    """

    def __init__(self):
        self._execution = Execution()

    @property
    def execution(self) -> Execution:
        return self._execution

    def set(self, execution: Execution) -> Execution:
        """Makes ``execution`` current; returns it."""
        self._execution = execution
        return execution

    def reset(self) -> None:
        """Back to one replica in float32."""
        self._execution = Execution()

    @contextlib.contextmanager
    def using(self, execution: Execution) -> Iterator[Execution]:
        """Holds ``execution`` current inside the block, and the previous one after."""
        previous = self._execution
        self._execution = execution
        try:
            yield execution
        finally:
            self._execution = previous


#: The process's execution context.
CONTEXT = ExecutionContext()


def current() -> Execution:
    """The execution this process runs under (one replica, float32, until :func:`activate`)."""
    return CONTEXT.execution


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


def _worker_of(strategy) -> tuple:
    """``(index, count)`` of this process among the workers (chief first)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    spec = resolver.cluster_spec().as_dict() if resolver is not None else {}
    if not spec or resolver.task_type is None:
        return 0, 1
    order = [(kind, i) for kind in ("chief", "worker") for i in range(len(spec.get(kind, [])))]
    return order.index((resolver.task_type, int(resolver.task_id))), len(order)


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


def activate(runtime) -> Execution:
    """Creates the strategy of a :class:`~tf_lottery.config.RuntimeConfig`, sets the dtype
    policy and makes them current for this process (call once, before any model is built).

    Returns:
        The :class:`Execution`; enter :func:`scope` around the experiment.

    Raises:
        ValueError, RuntimeError: see :func:`split_cpu` and :func:`make_strategy`.
    """
    if runtime.cpu_devices:
        split_cpu(runtime.cpu_devices)
    strategy = make_strategy(runtime.strategy, runtime.devices, runtime.tpu)
    worker, workers = _worker_of(strategy)
    if runtime.strategy == "multi_worker":
        keras_patches.patch_multi_worker_metrics()
    precision = precision_policy(runtime.precision, runtime.strategy, runtime.mixed_precision)
    keras.mixed_precision.set_global_policy(precision)
    return CONTEXT.set(Execution(runtime.strategy, strategy, runtime.lr_scaling, precision, worker, workers,
                                 runtime.sync_batchnorm, runtime.xla))


def apply_to_model(model: keras.Model) -> keras.Model:
    """What the execution changes in a freshly built model: under ``--sync_batchnorm`` with
    several replicas, every batch normalization layer synchronizes its statistics (the setting
    is in the layers' configs, so surgery's rebuilds keep it). Returns ``model``."""
    execution = current()
    if execution.sync_batchnorm and execution.replicas > 1:
        for layer in leaf_layers(model):
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.synchronized = True
    return model


def deactivate() -> None:
    """Back to one replica in float32 (tests, and a process that runs several configs)."""
    keras.mixed_precision.set_global_policy("float32")
    CONTEXT.reset()


@contextlib.contextmanager
def scope() -> Iterator[Execution]:
    """The current strategy's scope (nothing to enter for the default strategy)."""
    execution = current()
    if execution.strategy is None:
        yield execution
        return
    with execution.strategy.scope():
        yield execution


def private_runs_dir(runs_dir: str, execution: Optional[Execution] = None) -> str:
    """Where a worker writes: ``runs_dir`` for the chief, ``runs_dir/.workers/<index>`` for another."""
    execution = execution or current()
    return runs_dir if execution.is_chief else os.path.join(runs_dir, WORKERS_FOLDER, str(execution.worker))


def prepare_fit(model: keras.Model) -> None:
    """Under any strategy but the default, before ``fit`` or ``evaluate`` (:func:`tf_lottery.training.compile_model`
    calls it): Keras will build the optimizer and metrics from the shapes of the model's input
    and of integer labels, in place of its build from a real batch. That build opens an
    iterator of its own on the dataset, so a seeded ``shuffle(reshuffle_each_iteration=True)``
    would give training the order of its second iterator (another order than on one device),
    and under ``multi_worker`` it reduces the batch across workers, which fails (see the
    module docstring)."""
    if current().strategy is None or current().name == "default":
        return
    import tensorflow as tf

    spec = (tf.TensorSpec((None, *model.inputs[0].shape[1:]), model.inputs[0].dtype), tf.TensorSpec((None,), tf.int64))

    keras_patches.build_from_spec(model, spec)


def gather_from_workers(value: int) -> list:
    """Every worker's ``value``, in worker order (one process: ``[value]``). All workers must call
    it together: a resumed multi-worker run uses it to agree on the epoch it starts from."""
    execution = current()
    if execution.workers == 1:
        return [int(value)]
    import tensorflow as tf

    strategy = execution.strategy

    @tf.function
    def gather():
        def local():
            return tf.distribute.get_replica_context().all_gather(tf.constant([value], tf.int64), axis=0)

        return strategy.experimental_local_results(strategy.run(local))[0]

    return [int(v) for v in gather().numpy()]


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


#: Kept for 0.7 callers: see :func:`tf_lottery.runtime.keras_patches.patch_multi_worker_metrics`.
patch_keras_multi_worker = keras_patches.patch_multi_worker_metrics
