"""The interface every backend package (``autoencoder.backends.NAME``) provides.

A module, not a class: its functions (each package exports them from its ``steps`` and
``distribute`` modules) close over the backend's own objects (a ``tf.distribute``
strategy on TensorFlow, None on JAX, where one device trains). :func:`missing_functions` checks
a module against it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Backend(Protocol):
    """What the training loop, scoring and encoding need from a Keras backend."""

    def devices(self) -> list[str]:
        """The devices the backend computes on, each ``PLATFORM:NAME`` as a study's report
        records them: a TensorFlow logical device's type and name (``CPU:/device:CPU:0``), a
        JAX device's platform and kind (``gpu:NVIDIA H100 80GB HBM3``)."""

    def default_strategy(self) -> Any:
        """The single-device distribution (a ``tf.distribute`` strategy; None on JAX)."""

    def make_strategy(self, name: str, replicas: int | None) -> Any:
        """The distribution called ``name`` (one of ``STRATEGIES``), or a ``SeqaeError``
        where the backend has none."""

    def replicas(self, strategy: Any) -> int:
        """Replicas in sync."""

    def scope(self, strategy: Any) -> Any:
        """The context in which variables are created."""

    def is_chief(self, strategy: Any) -> bool:
        """Whether this process writes the run directory."""

    def is_multi_worker(self, strategy: Any) -> bool:
        """Whether ``strategy`` spans processes (whose clocks differ)."""

    def chief_broadcast(self, strategy: Any) -> Callable[[tuple], tuple]:
        """``broadcast(figures)``: the chief's figures on every worker."""

    def distribute_batches(self, strategy: Any,
                           generate: Callable[[], Iterator[np.ndarray]]) -> Iterator:
        """An iterator over the (batch, width) int32 id batches ``generate()`` yields, as the
        step takes them."""

    def make_train_step(self, ae: Any, optimizer: Any, clipnorm: float, strategy: Any,
                        batches: Iterator | None = None, rows: int | None = None,
                        jit_compile: bool | None = None, per_tensor: bool = False) -> Callable:
        """``step(ids, stop, *extra) -> (loss, grad_norm, n_tokens, stops)``: one optimizer
        step on a global batch of at most ``rows`` sentences (the loss is ``ae.step_loss``,
        ``extra`` what ``ae.step_inputs`` drew for the step; gradients clipped to the global
        norm ``clipnorm``, or each to its own with ``per_tensor``), its token-mean loss, the
        global gradient norm before clipping, and the sum of the processes' stop flags
        (``stop`` is 1.0 when this one was interrupted)."""

    def compile_forward(self, ae: Any, extra: Callable, rows: int | None = None) -> Callable:
        """``forward(ids) -> (outputs, *extra(ids, outputs))`` as NumPy arrays, for id batches
        of at most ``rows`` sentences; ``extra`` is written with ``keras.ops``."""


def missing_functions(module: object) -> list[str]:
    """The functions of :class:`Backend` that ``module`` does not define."""
    names = [name for name in vars(Backend) if not name.startswith("_")
             and callable(getattr(Backend, name))]
    return [name for name in names if not callable(getattr(module, name, None))]
