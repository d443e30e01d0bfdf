"""JAX's compiled steps: ``jax.jit``-compiled stateless steps on one device.

The model's variables are passed into the compiled functions as values (through
:class:`keras.StatelessScope`), so the word-vector table is an argument, never a constant baked
into the program, and new weights come back as results that are assigned after each step.
Batches are padded with PAD rows to a fixed number of rows: XLA compiles one program per input
shape, so this way there is one per batch width, as with ``per_width`` on TensorFlow, and a
short batch needs no other. PAD rows are masked out of the loss, so they change nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import jax
import jax.numpy as jnp
import keras
import numpy as np
from keras import ops

from autoencoder.data.vocab import PAD_ID
from autoencoder.model.network import SentenceAutoencoder


def make_train_step(ae: SentenceAutoencoder, optimizer: keras.optimizers.Optimizer,
                    clipnorm: float, strategy: None = None, batches: Iterator | None = None,
                    rows: int | None = None, jit_compile: bool | None = None,
                    per_tensor: bool = False) -> Callable:
    """``step(ids, stop)``: the token-mean loss of a (batch <= ``rows``, width) id batch, its
    gradient clipped to the global norm ``clipnorm`` (0: not clipped; ``per_tensor``: each
    gradient to its own norm), one optimizer update.
    Made once the model and the optimizer are final (it holds their variables)."""
    trainable = ae.model.trainable_variables
    frozen = ae.model.non_trainable_variables + ae.lookup_variables

    def loss_fn(train_values, frozen_values, ids, extra):
        mask = ops.cast(ids != PAD_ID, "float32")
        mapping = [*zip(trainable, train_values), *zip(frozen, frozen_values)]
        with keras.StatelessScope(state_mapping=mapping):
            n_tokens = ops.sum(mask)
            return ops.sum(ae.step_loss(ids, *extra) * mask) / n_tokens, n_tokens

    @jax.jit
    def step(train_values, frozen_values, optimizer_values, ids, extra):
        (loss, n_tokens), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            train_values, frozen_values, ids, extra)
        norm = jnp.sqrt(sum(jnp.sum(jnp.square(g)) for g in grads))
        if clipnorm and per_tensor:  # as tf.clip_by_norm
            grads = [g * (clipnorm / jnp.maximum(jnp.sqrt(jnp.sum(jnp.square(g))), clipnorm))
                     for g in grads]
        elif clipnorm:  # as tf.clip_by_global_norm
            grads = [g * (clipnorm / jnp.maximum(norm, clipnorm)) for g in grads]
        train_values, optimizer_values = optimizer.stateless_apply(
            optimizer_values, grads, train_values)
        return train_values, optimizer_values, loss, norm, n_tokens

    def train_step(ids, stop: float, *extra):
        ae.step_model(ids.shape[1])  # built outside the trace
        train_values, optimizer_values, loss, norm, n_tokens = step(
            _values(trainable), _values(frozen), _values(optimizer.variables), _pad(ids, rows),
            extra)
        _assign(trainable, train_values)
        _assign(optimizer.variables, optimizer_values)
        return loss, norm, n_tokens, stop

    return train_step


def compile_forward(ae: SentenceAutoencoder, extra: Callable, rows: int | None = None) -> Callable:
    """``forward(ids)``: what the model writes for one id batch of at most ``rows`` sentences
    (``ae.reconstruct``) and ``extra(ids, outputs)`` (per-row arrays), as NumPy."""
    state = ae.model.variables + ae.lookup_variables

    @jax.jit
    def forward(values, ids):
        with keras.StatelessScope(state_mapping=list(zip(state, values))):
            outputs = ae.reconstruct(ids)
            return (outputs, *extra(ids, outputs))

    def call(ids: np.ndarray):
        ae.at_width(ids.shape[1]), ae.encoder  # built outside the trace
        results = forward(_values(state), _pad(ids, rows))
        return tuple(np.asarray(r)[: len(ids)] for r in results)

    return call


def _values(variables: list) -> list:
    return [v.value for v in variables]


def _assign(variables: list, values: list) -> None:
    for variable, value in zip(variables, values):
        variable.assign(value)


def _pad(ids: np.ndarray, rows: int | None) -> np.ndarray:
    """``ids`` with PAD rows up to ``rows``, so every batch of a width has one shape (a full
    batch is passed as it is: it may already be on the device)."""
    if rows is None or len(ids) >= rows:
        return ids
    ids = np.asarray(ids, dtype=np.int32)
    return np.concatenate([ids, np.full((rows - len(ids), ids.shape[1]), PAD_ID, np.int32)])
