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
- ``code_free``: the loss of a good decoder that ignores the code, fitted to the training split
  position by position: the word frequencies at each position (interpolated with the overall
  ones, Witten-Bell) scored by cross-entropy (onehot kind); the mean target vector at each
  position, scaled to its best length for the vMF loss, scored with the model's own loss
  (embedding kind). None for the classic kind, whose Keras loss divides tanh outputs by their
  sum and so has no such floor. For the autoregressive decoder, which reads the previous words
  and so is a language model in itself, the floor is that decoder's own loss with every code
  zeroed (teacher-forced, as its other two losses are), measured with the current weights.

``val_loss_swapped - val_loss`` is what the code explains: about 0 when the decoder ignores it.
"""

from __future__ import annotations

import numpy as np
from keras import ops

from autoencoder.data.batches import EVAL_BATCH
from autoencoder.data.sentences import ENCODE_CHUNK, EncodedSentences
from autoencoder.model.network import SentenceAutoencoder
from autoencoder.data.vocab import PAD_ID

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
        self.code_free = None if ae.config.autoregressive else code_free_loss(ae, train, self.ids)

    def measure(self) -> dict:
        """``{"val_loss", "val_loss_swapped", "code_free"}`` with the model's current weights."""
        if not self.mask.any():
            return dict.fromkeys(FIELDS)
        codes = np.concatenate([self.ae.encode(self.ids[start:start + EVAL_BATCH])
                                for start in range(0, len(self.ids), EVAL_BATCH)])
        own, swapped = (self._loss(codes[order]) for order in (np.arange(len(codes)), self.swap))
        code_free = (self._loss(np.zeros_like(codes)) if self.ae.config.autoregressive
                     else self.code_free)
        return {"val_loss": own, "val_loss_swapped": swapped, "code_free": code_free}

    def _loss(self, codes: np.ndarray) -> float:
        """Token-mean loss of the decoder on ``codes`` against the sample's words, in batches
        of ``ae.eval_rows`` (whose outputs stay within a set size)."""
        rows = self.ae.eval_rows
        total = 0.0
        for start in range(0, len(codes), rows):
            ids, mask = self.ids[start:start + rows], self.mask[start:start + rows]
            outputs = self.ae.decoder_outputs(codes[start:start + rows], ids)
            losses = ops.convert_to_numpy(self.ae.token_loss(ids, outputs))
            total += float(losses[mask].sum(dtype=np.float64))
        return total / int(self.mask.sum())


def code_free_loss(ae: SentenceAutoencoder, train: EncodedSentences,
                   ids: np.ndarray) -> float | None:
    """The token-mean loss on ``ids`` (n, seq_len) of the decoder that reads no code, fitted
    to the ``train`` sentences position by position (see the module docstring)."""
    if ae.config.kind == "classic":
        return None
    seq_len, vocab_size = ae.config.seq_len, len(ae.vocab)
    counts = np.zeros((seq_len, vocab_size), dtype=np.int64)  # (position, word) in train
    for start in range(0, len(train), ENCODE_CHUNK):  # streamed: O(tokens), not O(V) a chunk
        chunk = np.asarray(train.ids[start:start + ENCODE_CHUNK])
        np.add.at(counts, (np.broadcast_to(np.arange(seq_len), chunk.shape), chunk), 1)
    counts[:, PAD_ID] = 0
    mask = ids != PAD_ID
    if not mask.any():
        return None
    if ae.config.kind == "onehot":
        probs = position_unigrams(counts)
        positions = np.broadcast_to(np.arange(seq_len), ids.shape)
        return float(-np.log(probs[positions[mask], ids[mask]]).mean())
    totals = np.maximum(counts.sum(axis=1, keepdims=True), 1)
    means = (counts / totals).astype(np.float32) @ ae.table  # (seq_len, dim) mean targets
    if ae.config.loss == "vmf":
        means = (means * _best_concentration(means, ae)[:, None]).astype(np.float32)
    losses = np.zeros(ids.shape)
    for position in range(seq_len):  # one position's outputs at a time: (n, dim)
        outputs = np.broadcast_to(means[position], (len(ids), 1, means.shape[1]))
        losses[:, position] = ops.convert_to_numpy(
            ae.token_loss(ids[:, position:position + 1], ops.convert_to_tensor(outputs)))[:, 0]
    return float(losses[mask].mean(dtype=np.float64))


def position_unigrams(counts: np.ndarray) -> np.ndarray:
    """(seq_len, V) probabilities of each word at each position from (seq_len, V) counts:
    Witten-Bell interpolation of a position's frequencies with the add-one smoothed frequencies
    over all positions, weighted by how many distinct words the position has seen."""
    overall = counts.sum(axis=0) + 1.0
    overall /= overall.sum()
    seen = counts.sum(axis=1, keepdims=True).astype(np.float64)
    distinct = (counts > 0).sum(axis=1, keepdims=True).astype(np.float64)
    return (counts + distinct * overall) / np.maximum(seen + distinct, 1.0)


def _best_concentration(means: np.ndarray, ae: SentenceAutoencoder) -> np.ndarray:
    """Per position, the length of the output along the mean target's direction that minimises
    the expected vMF NLL over the targets, ``-log C_m(k) - k (lambda2 |mean| - lambda1)``, on a
    log grid of lengths (its step is 0.5%: the floor is that close to the best)."""
    from autoencoder.model.losses import log_vmf_normalizer

    config = ae.config
    kappas = np.geomspace(1e-3, 1e6, 4000)
    log_c = ops.convert_to_numpy(log_vmf_normalizer(ops.convert_to_tensor(kappas), ae.dim))
    pull = config.vmf_lambda2 * np.linalg.norm(means, axis=1) - config.vmf_lambda1  # (seq_len,)
    expected = -log_c[None, :] - kappas[None, :] * pull[:, None]
    best = kappas[expected.argmin(axis=1)]
    return best / np.maximum(np.linalg.norm(means, axis=1), 1e-12)
