"""Sampled softmax: training the one-hot kind over a large vocabulary at the cost of a few
thousand classes a step (Bengio & Senecal 2008; Jean et al. 2015, "On Using Very Large Target
Vocabulary for Neural Machine Translation"; TensorFlow's ``sampled_softmax_loss``).

Each training step draws ``K`` negative ids once, from a log-uniform (Zipfian) proposal ``q`` over
the frequency-ordered vocabulary (ids 2.. run from the most to the least frequent word), with
replacement, so a word ``w`` is expected ``K q(w)`` times. At a position with target ``t``,
decoder state ``h`` and logits ``s_w = h.W_w + b_w``, the loss is::

    L = log(exp(s_t) + sum_k [k != t] exp(s_k) / (K q(k))) - s_t

the negatives' logits corrected by ``log(K q)`` (the "logQ correction") and a negative equal to
the target (an "accidental hit") left out. The sum inside the log is an unbiased estimate of the
softmax's partition function, so ``exp(L)`` is an unbiased estimate of ``exp`` of the full
cross-entropy; ``L`` itself is biased low (Jensen), less the larger ``K``. With every id of the
vocabulary as its own negative and ``K q = 1`` the loss is the full softmax cross-entropy
exactly. tests/test_sampled.py checks all three. The model saved is the plain one, scored with
the full softmax. Only ``keras.ops``: it runs inside the compiled step on TensorFlow and JAX.
"""

from __future__ import annotations

import math

import numpy as np
from keras import ops

from embeddings.store.errors import SeqaeError

# Logit given to an accidental hit: exp() of it is 0 in float32, and its gradient stays finite.
_EXCLUDED = -1e9


class LogUniformSampler:
    """``negatives`` ids a step from ``q(k) = log((k + 2) / (k + 1)) / log(V + 1)``,
    ``k`` in ``0..V-1``: the log-uniform proposal of TensorFlow's ``log_uniform_candidate_sampler``,
    close to a Zipf law on frequency-ordered ids."""

    def __init__(self, vocab_size: int, negatives: int):
        if not 1 <= negatives <= vocab_size:
            raise SeqaeError(f"--negatives must be between 1 and the vocabulary size "
                             f"({vocab_size:,}), got {negatives:,}")
        self.vocab_size, self.negatives = vocab_size, negatives
        self._log_range = math.log(vocab_size + 1)

    def probability(self, ids: np.ndarray) -> np.ndarray:
        """``q(ids)``, float64, same shape as ``ids``."""
        ids = np.asarray(ids, dtype=np.float64)
        return np.log1p(1.0 / (ids + 1.0)) / self._log_range

    def draw(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """The step's negatives: ids (K,) int32 and ``log(K q(id))`` (K,) float32."""
        ids = np.floor(np.exp(rng.random(self.negatives) * self._log_range)).astype(np.int64) - 1
        ids = np.clip(ids, 0, self.vocab_size - 1)
        return (ids.astype(np.int32),
                np.log(self.negatives * self.probability(ids)).astype(np.float32))


def sampled_softmax_ce(hidden, kernel, bias, ids, negatives, log_expected):
    """Per-position sampled softmax cross-entropy ``L`` of the module docstring.

    ``hidden`` (..., d) decoder states; ``kernel`` (d, V) and ``bias`` (V,) the output layer;
    ``ids`` (...) the targets; ``negatives`` (K,) sampled ids and ``log_expected`` (K,) their
    ``log(K q)``. Returns shape (...).
    """
    true_weights = ops.moveaxis(ops.take(kernel, ids, axis=1), 0, -1)  # (..., d)
    true_logits = ops.sum(hidden * true_weights, axis=-1) + ops.take(bias, ids)
    logits = (ops.matmul(hidden, ops.take(kernel, negatives, axis=1))
              + ops.take(bias, negatives) - log_expected)  # (..., K)
    hits = ops.expand_dims(ops.cast(ids, "int32"), -1) == ops.cast(negatives, "int32")
    logits = ops.where(hits, _EXCLUDED, logits)
    all_logits = ops.concatenate([ops.expand_dims(true_logits, -1), logits], axis=-1)
    return ops.logsumexp(all_logits, axis=-1) - true_logits
