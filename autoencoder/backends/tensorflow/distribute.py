"""TensorFlow's devices and the ``tf.distribute`` strategies over them: choosing one, feeding
it batches, and which process of a cluster is the chief.

* ``default``: one device, no distribution.
* ``mirrored``: :class:`tf.distribute.MirroredStrategy` over this machine's GPUs or, on a machine
  without one, over the CPU split into logical devices (for testing: it adds no speed).
* ``multi-worker``: :class:`tf.distribute.MultiWorkerMirroredStrategy`, one process per host,
  configured from the standard ``TF_CONFIG`` variable. It must be created before any other
  TensorFlow op runs in the process.

The chief (task ``chief``, else ``worker`` 0) is the only process that writes into the run
directory; see :class:`ClusterRole`. Under several workers every worker generates every global
batch and keeps its slice of it (``tf.data`` auto-sharding by data), so the results are those of
a single worker.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from autoencoder.backends import STRATEGIES
from embeddings.store.errors import SeqaeError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClusterRole:
    """This process's place in a ``TF_CONFIG`` cluster.

    Parameters
    ----------
    task_type : ``chief`` or ``worker`` (None outside any cluster).
    index : the task's index within its type.
    n_workers : processes that train (chief and workers).
    has_chief : whether the cluster names a ``chief`` task.
    """

    task_type: str | None = None
    index: int = 0
    n_workers: int = 1
    has_chief: bool = False

    @property
    def is_chief(self) -> bool:
        """Whether this process writes the run directory: task ``chief``, or ``worker`` 0 of a
        cluster without one, or a process outside any cluster."""
        if self.task_type in (None, "chief"):
            return True
        return self.task_type == "worker" and self.index == 0 and not self.has_chief

    @classmethod
    def from_env(cls, tf_config: str | None = None) -> ClusterRole:
        """The role that ``TF_CONFIG`` (the environment's by default) gives; raises
        :class:`SeqaeError` on a malformed value."""
        raw = os.environ.get("TF_CONFIG", "") if tf_config is None else tf_config
        if not raw.strip():
            return cls()
        try:
            config = json.loads(raw)
            cluster, task = config["cluster"], config["task"]
            task_type, index = task["type"], int(task["index"])
            if not 0 <= index < len(cluster[task_type]):
                raise IndexError(f"task index {index} is not in cluster[{task_type!r}]")
            n_workers = sum(len(cluster.get(kind, ())) for kind in ("chief", "worker"))
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
            raise SeqaeError(
                'TF_CONFIG must be JSON like {"cluster": {"worker": ["host1:port", ...]}, '
                f'"task": {{"type": "worker", "index": 0}}}} ({type(exc).__name__}: {exc})'
            ) from None
        return cls(task_type, index, n_workers, bool(cluster.get("chief")))


def default_strategy() -> tf.distribute.Strategy:
    return tf.distribute.get_strategy()


def replicas(strategy: tf.distribute.Strategy) -> int:
    return strategy.num_replicas_in_sync


def scope(strategy: tf.distribute.Strategy):
    return strategy.scope()


def make_strategy(name: str = "default", replicas: int | None = None) -> tf.distribute.Strategy:
    """The strategy called ``name`` (one of :data:`STRATEGIES`).

    ``replicas`` (``mirrored`` only): how many local devices to mirror over; the first that many
    GPUs, or that many logical CPU devices on a machine without GPUs. Default: every GPU, or one
    CPU device.
    """
    if name not in STRATEGIES:
        raise SeqaeError(f"--strategy must be one of {', '.join(STRATEGIES)}")
    if replicas is not None and name != "mirrored":
        raise SeqaeError("--replicas applies to --strategy mirrored only")
    if name == "default":
        return default_strategy()
    if name == "multi-worker":
        if ClusterRole.from_env().n_workers == 1:  # also checks TF_CONFIG before TF parses it
            log.warning("TF_CONFIG names no cluster: multi-worker training runs as one worker")
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.MirroredStrategy(devices=_local_devices(replicas))


def _local_devices(replicas: int | None) -> list[str]:
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        if replicas is not None and replicas > len(gpus):
            raise SeqaeError(f"--replicas {replicas}: this machine has {len(gpus)} GPU(s)")
        return [f"/gpu:{i}" for i in range(replicas or len(gpus))]
    replicas = replicas or 1
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * replicas)
    except RuntimeError:
        pass  # the runtime already started in this process: its devices must do
    have = len(tf.config.list_logical_devices("CPU"))
    if have != replicas:
        raise SeqaeError(f"--replicas {replicas}: TensorFlow already started with {have} CPU "
                         "device(s) in this process; start a new process to change it")
    return [f"/cpu:{i}" for i in range(replicas)]


def is_multi_worker(strategy: tf.distribute.Strategy) -> bool:
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes checkpoints, history and plots: always, except on the
    non-chief workers of a multi-worker strategy."""
    if is_multi_worker(strategy):
        return ClusterRole.from_env().is_chief
    return True


def distribute_batches(strategy: tf.distribute.Strategy,
                       generate: Callable[[], Iterator[np.ndarray]]) -> Iterator:
    """One distributed iterator over every batch ``generate`` yields: deleting one stalls for
    seconds under ``MirroredStrategy`` (about 10 s on 2 CPU cores), so the trainer makes one
    for all its epochs."""
    batches = tf.data.Dataset.from_generator(
        generate, output_signature=tf.TensorSpec((None, None), tf.int32))
    # Every worker generates every global batch and keeps its slice of it.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return iter(strategy.experimental_distribute_dataset(
        batches.prefetch(tf.data.AUTOTUNE).with_options(options)))


def chief_broadcast(strategy: tf.distribute.Strategy) -> Callable:
    """A function that returns, on every worker, the figures the chief passed to it (None
    travels as NaN), through one all-reduce in which only replica 0, the chief's, counts."""

    def replica_values(values):
        ctx = tf.distribute.get_replica_context()
        mine = tf.where(tf.equal(ctx.replica_id_in_sync_group, 0), values, tf.zeros_like(values))
        return ctx.all_reduce(tf.distribute.ReduceOp.SUM, mine)

    @tf.function
    def all_reduce(values):
        return strategy.experimental_local_results(strategy.run(replica_values, args=(values,)))[0]

    def broadcast(figures: tuple[float | None, ...]) -> tuple[float | None, ...]:
        values = tf.constant([math.nan if f is None else f for f in figures], tf.float64)
        return tuple(None if math.isnan(v) else float(v) for v in all_reduce(values).numpy())

    return broadcast


def devices() -> list[str]:
    """This process's logical devices, each ``TYPE:NAME`` (``CPU:/device:CPU:0``). Starts
    TensorFlow's runtime, after which the CPU's logical devices can no longer be split."""
    return [f"{d.device_type}:{d.name}" for d in tf.config.list_logical_devices()]
