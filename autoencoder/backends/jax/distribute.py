"""JAX's one device: the distribution the interface asks for is none (``tf.distribute`` is
TensorFlow's only), and this process is always the chief.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import jax
import numpy as np

from embeddings.store.errors import SeqaeError


def default_strategy() -> None:
    return None


def make_strategy(name: str = "default", replicas: int | None = None) -> None:
    """The single device; any other distribution is refused in one line."""
    if name != "default":
        raise SeqaeError(f"--strategy {name} needs --backend tensorflow (tf.distribute); "
                         "the jax backend trains on one device")
    if replicas is not None:
        raise SeqaeError("--replicas applies to --strategy mirrored only")
    return None


def replicas(strategy: None) -> int:
    return 1


def scope(strategy: None):
    return contextlib.nullcontext()


def is_chief(strategy: None) -> bool:
    return True


def is_multi_worker(strategy: None) -> bool:
    return False


def chief_broadcast(strategy: None) -> Callable:
    return lambda figures: figures  # one process: it is the chief


def distribute_batches(strategy: None, generate: Callable[[], Iterator[np.ndarray]]) -> Iterator:
    return iter(generate())


def devices() -> list[str]:
    """JAX's devices, each ``PLATFORM:KIND`` (``cpu:cpu``, ``gpu:NVIDIA H100 80GB HBM3``)."""
    return [f"{d.platform}:{d.device_kind}" for d in jax.devices()]
