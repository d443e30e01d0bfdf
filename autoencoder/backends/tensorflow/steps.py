"""TensorFlow's compiled steps: ``tf.function`` graphs, one per batch width, run through a
``tf.distribute`` strategy (:mod:`.distribute`).

The loss of each replica is its sum over real tokens divided by the number of real tokens in the
*global* batch, so summing replica gradients gives exactly the single-device token-mean gradient.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator

import tensorflow as tf

from autoencoder.model.network import SentenceAutoencoder
from autoencoder.data.vocab import PAD_ID

IDS_SPEC = tf.TensorSpec((None, None), tf.int32)  # an id batch of any size and width


def per_width(fn: Callable, input_signature: tuple, jit_compile: bool | None = None) -> Callable:
    """``fn(ids, *args, width=w)`` for an id batch ``ids`` (a tensor or a ``tf.distribute``
    per-replica value) of width ``w``, run through one ``tf.function`` per width, traced once
    for ``input_signature`` (whose batch size and width are None). ``fn`` pins the width with
    ``tf.ensure_shape`` (per replica), which picks the model of
    :meth:`SentenceAutoencoder.at_width`; the batch size stays unknown, so a short batch or an
    empty replica slice (0 rows) needs no other graph."""
    functions: dict[int, Callable] = {}

    def call(ids, *args):
        width = int(tf.nest.flatten(ids, expand_composites=True)[0].shape[1])
        if width not in functions:
            functions[width] = tf.function(functools.partial(fn, width=width),
                                           input_signature=input_signature,
                                           jit_compile=jit_compile)
        return functions[width](ids, *args)

    return call




def make_train_step(ae: SentenceAutoencoder, optimizer, clipnorm: float,
                    strategy: tf.distribute.Strategy, batches: Iterator | None = None,
                    rows: int | None = None, jit_compile: bool | None = None,
                    per_tensor: bool = False) -> Callable:
    """The step, one graph per batch width, traced for the batches of the distributed iterator
    ``batches`` (its ``element_spec``; plain tensors when None); ``jit_compile``: compiled by
    XLA. ``rows`` (the global batch) sizes only the word-dropout mask: the batch size stays
    unknown in the graph. ``per_tensor``
    clips each gradient to ``clipnorm`` on its own instead of their global norm."""
    model, n_replicas = ae.model, strategy.num_replicas_in_sync
    ids_spec = IDS_SPEC if batches is None else batches.element_spec

    def replica_step(ids, stop, *extra, width):
        ids = tf.ensure_shape(ids, (None, width))
        ctx = tf.distribute.get_replica_context()
        mask = tf.cast(ids != PAD_ID, tf.float32)
        # One all-reduce carries the global token count and any replica's stop request.
        n_tokens, stop = tf.unstack(ctx.all_reduce(tf.distribute.ReduceOp.SUM,
                                                   tf.stack([tf.reduce_sum(mask), stop])))
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(ae.step_loss(ids, *extra) * mask) / n_tokens
        grads = ctx.all_reduce(tf.distribute.ReduceOp.SUM,
                               tape.gradient(loss, model.trainable_variables))
        norm = tf.linalg.global_norm(grads)
        if clipnorm and per_tensor:
            grads = [tf.clip_by_norm(g, clipnorm) for g in grads]
        elif clipnorm:
            grads, _ = tf.clip_by_global_norm(grads, clipnorm, use_norm=norm)
        if n_replicas > 1:
            # Keras optimizers sum gradients over replicas themselves: give each its share.
            grads = [_scale(g, 1.0 / n_replicas) for g in grads]
        optimizer.apply(grads, model.trainable_variables)
        return loss, norm, n_tokens, stop

    def train_step(ids, stop, *extra, width):
        loss, *same_everywhere = strategy.run(replica_step, args=(ids, stop, *extra),
                                              kwargs={"width": width})
        reduce = strategy.reduce
        return (reduce(tf.distribute.ReduceOp.SUM, loss, axis=None),
                *(reduce(tf.distribute.ReduceOp.MEAN, t, axis=None) for t in same_everywhere))

    # The step's other inputs (sampled negatives) have fixed shapes: one spec from a draw.
    extra_specs = tuple(tf.TensorSpec(x.shape, x.dtype) for x in ae.step_inputs((0,), rows or 1))
    step = per_width(train_step, (ids_spec, tf.TensorSpec((), tf.float32), *extra_specs), jit_compile)
    return lambda ids, stop, *extra: step(ids, tf.constant(stop, tf.float32), *extra)


def compile_forward(ae: SentenceAutoencoder, extra: Callable, rows: int | None = None) -> Callable:
    """``forward(ids)``: what the model writes for one id batch (``ae.reconstruct``) and
    ``extra(ids, outputs)``, as NumPy."""

    def forward(ids, width):
        ids = tf.ensure_shape(ids, (None, width))
        outputs = ae.reconstruct(ids)
        return (outputs, *extra(ids, outputs))

    step = per_width(forward, (IDS_SPEC,))
    return lambda ids: tuple(t.numpy() for t in step(tf.constant(ids)))




def _scale(grad, factor: float):
    # The one-hot projection's gradient is sparse (IndexedSlices): scale its values only.
    if isinstance(grad, tf.IndexedSlices):
        return tf.IndexedSlices(grad.values * factor, grad.indices, grad.dense_shape)
    return grad * factor
