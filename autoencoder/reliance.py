"""How much the decoder relies on the code: the loss with each sentence's own code, with the
codes swapped between sentences, and the best loss a decoder that reads no code can reach.

The question behind seqae asks why a seq2seq loss sits on a plateau and then falls sharply.
The explanation tested here: the decoder first learns what it can say without the code (the
words most likely at each position), and the loss rests near that code-free floor until the
encoder's code starts to carry the sentence; then the loss with the own code falls below the
loss with another sentence's code. In plain numbers, on a fixed sample of validation sentences:

- ``val_loss``: the token-mean loss with each sentence's own code;
- ``val_loss_swapped``: the same decoder fed the code of another sentence of the sample (a
  seeded permutation, fixed for the run);
- ``code_free``: the loss of the best decoder that ignores the code, from the training split:
  the per-position word frequencies scored by cross-entropy (one-hot kinds), or the
  per-position mean target vector scored with the model's own loss (embedding kind).

``val_loss_swapped - val_loss`` is what the code explains: about 0 when the decoder ignores it.
"""

from __future__ import annotations

import numpy as np
from keras import ops

from autoencoder.data import ENCODE_CHUNK, EncodedSentences
from autoencoder.model import SentenceAutoencoder
from autoencoder.vocab import PAD_ID

FIELDS = ("val_loss", "val_loss_swapped", "code_free")


class CodeReliance:
    """The three losses of the module docstring on ``sample`` (the first ``size`` validation
    sentences), with the code-free floor computed once from ``train``.

    Parameters
    ----------
    ae : the model being trained (its weights are read at each :meth:`measure`).
    sample : validation sentences, encoded; the first ``size`` are scored.
    train : the training sentences the code-free decoder is fitted to.
    seed : seed of the permutation that swaps the codes.
    """

    def __init__(self, ae: SentenceAutoencoder, sample: EncodedSentences, train: EncodedSentences,
                 size: int, seed: int):
        self.ae = ae
        self.ids = np.asarray(sample.ids[: min(size, len(sample))])  # (n, seq_len) int32
        n = len(self.ids)
        # One seeded cycle through the sample: every sentence gets another's code (when n > 1).
        order = np.random.default_rng(seed).permutation(n)
        self.swap = np.empty(n, dtype=np.int64)
        self.swap[order] = np.roll(order, 1)
        self.mask = self.ids != PAD_ID
        self.code_free = code_free_loss(ae, train, self.ids)

    def measure(self) -> dict:
        """``{"val_loss", "val_loss_swapped", "code_free"}`` with the model's current weights."""
        if not self.mask.any():
            return dict.fromkeys(FIELDS)
        codes = self.ae.encode(self.ids)
        own, swapped = (self._loss(codes[order]) for order in (np.arange(len(codes)), self.swap))
        return {"val_loss": own, "val_loss_swapped": swapped, "code_free": self.code_free}

    def _loss(self, codes: np.ndarray) -> float:
        outputs = self.ae.code_decoder.predict_on_batch(codes)
        losses = ops.convert_to_numpy(self.ae.token_loss(self.ids, outputs))
        return float(losses[self.mask].mean(dtype=np.float64))


def code_free_loss(ae: SentenceAutoencoder, train: EncodedSentences, ids: np.ndarray) -> float:
    """The token-mean loss on ``ids`` (n, seq_len) of the best decoder that reads no code,
    fitted to the ``train`` sentences position by position (see the module docstring)."""
    seq_len, vocab_size = ae.config.seq_len, len(ae.vocab)
    counts = np.zeros((seq_len, vocab_size), dtype=np.int64)  # (position, word) in train
    for start in range(0, len(train), ENCODE_CHUNK):
        chunk = np.asarray(train.ids[start:start + ENCODE_CHUNK])
        for position in range(seq_len):
            counts[position] += np.bincount(chunk[:, position], minlength=vocab_size)
    counts[:, PAD_ID] = 0
    mask = ids != PAD_ID
    if not mask.any():
        return float("nan")
    if ae.config.kind != "embedding":
        # Add-one smoothing: a word never seen at a position has a small, not a zero, chance.
        probs = (counts + 1) / (counts.sum(axis=1, keepdims=True) + vocab_size)
        positions = np.broadcast_to(np.arange(seq_len), ids.shape)
        return float(-np.log(probs[positions[mask], ids[mask]]).mean())
    totals = np.maximum(counts.sum(axis=1, keepdims=True), 1)
    means = (counts / totals).astype(np.float32) @ ae.table  # (seq_len, dim) mean targets
    outputs = np.broadcast_to(means, (*ids.shape, means.shape[1]))
    losses = ops.convert_to_numpy(ae.token_loss(ids, ops.convert_to_tensor(outputs)))
    return float(losses[mask].mean(dtype=np.float64))
