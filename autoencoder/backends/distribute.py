"""Choosing a ``tf.distribute`` strategy, and which process of a cluster is the chief.

* ``default``: one device, no distribution.
* ``mirrored``: :class:`tf.distribute.MirroredStrategy` over this machine's GPUs or, on a machine
  without one, over the CPU split into logical devices (for testing: it adds no speed).
* ``multi-worker``: :class:`tf.distribute.MultiWorkerMirroredStrategy`, one process per host,
  configured from the standard ``TF_CONFIG`` variable. It must be created before any other
  TensorFlow op runs in the process.

The chief (task ``chief``, else ``worker`` 0) is the only process that writes into the run
directory; see :class:`ClusterRole`.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass

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
        return tf.distribute.get_strategy()
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
