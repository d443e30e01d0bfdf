"""How much the decoder relies on the code: the loss with each sentence's own code, with the
codes swapped between sentences, with every code zeroed, and the best loss a decoder that reads
no code can reach.

The question behind seqae asks why a seq2seq loss sits on a plateau and then falls sharply.
The explanation tested here: the decoder first learns what it can say without the code (the
words most likely at each position), and the loss rests near that code-free floor until the
encoder's code starts to carry the sentence; then the loss with the own code falls below the
loss with another sentence's code. In plain numbers, on a fixed sample of validation sentences:

- ``val_loss``: the token-mean loss with each sentence's own code;
- ``val_loss_swapped``: the same decoder fed the code of another sentence of the sample (a
  seeded permutation, fixed for the run);
- ``code_zeroed``: the same decoder fed an all-zero code for every sentence: what the network
  itself says with no code, measured with the current weights. All three are teacher-forced for
  the autoregressive decoder, as in its training;
- ``code_free``: an estimate from word statistics of the loss of a good decoder that ignores the
  code, fitted to the training split position by position: the word frequencies at each position
  (interpolated with the overall ones, Witten-Bell) scored by cross-entropy (onehot kind); the
  mean target vector at each position, made the best constant output by the loss's registry
  entry (:attr:`autoencoder.model.losses.Loss.floor`: the vMF loss scales it to its best
  length), scored with the model's own loss (embedding kind). None for the classic kind, whose
  Keras loss divides tanh outputs by their sum and so has no such floor, and for the
  autoregressive decoder, which reads the previous words and so is a language model in itself:
  no per-position statistic bounds it (its network floor is ``code_zeroed``);
- ``gap_low``, ``gap_high``: a 95% bootstrap interval of the code-reliance gap
  ``(val_loss_swapped - val_loss) / |val_loss_swapped|`` over the sample's sentences
  (:data:`BOOTSTRAP` resamples of the sentences, drawn once from the seed, so the same at every
  measurement and deterministic for a seed; each resample's gap is a ratio of its sentences'
  token-loss sums; the percentile interval, widened to contain the point gap where the
  resamples' skew leaves it a hair outside). None where the swapped-code loss is not positive
  (a vMF NLL can be negative: no share).

``val_loss_swapped - val_loss`` is what the code explains: about 0 when the decoder ignores it.
"""

from __future__ import annotations

import numpy as np
from keras import ops

from autoencoder.data.batches import EVAL_BATCH
from autoencoder.data.sentences import ENCODE_CHUNK, EncodedSentences
from autoencoder.model.network import SentenceAutoencoder
from autoencoder.data.vocab import PAD_ID

FIELDS = ("val_loss", "val_loss_swapped", "code_free", "code_zeroed", "gap_low", "gap_high")
BOOTSTRAP = 1000  # resamples of the sample's sentences for the gap's interval
CONFIDENCE = 0.95


class CodeReliance:
    """The losses of the module docstring on ``sample`` (the first ``size`` validation
    sentences), with the code-free estimate computed once from ``train``.

    Parameters
    ----------
    ae : the model being trained (its weights are read at each :meth:`measure`).
    sample : validation sentences, encoded; the first ``size`` are scored.
    train : the training sentences the code-free estimate is fitted to.
    seed : seed of the permutation that swaps the codes and of the bootstrap resamples.
    """

    def __init__(self, ae: SentenceAutoencoder, sample: EncodedSentences, train: EncodedSentences,
                 size: int, seed: int):
        self.ae = ae
        self.ids = np.asarray(sample.ids[: min(size, len(sample))])  # (n, seq_len) int32
        n = len(self.ids)
        rng = np.random.default_rng(seed)
        # One seeded cycle through the sample: every sentence gets another's code (when n > 1).
        order = rng.permutation(n)
        self.swap = np.empty(n, dtype=np.int64)
        self.swap[order] = np.roll(order, 1)
        # Drawn after the permutation, from the same generator: the swap is what it was before
        # the intervals. (BOOTSTRAP, n) sentence indices, the same at every measurement.
        self.resamples = rng.integers(0, max(n, 1), size=(BOOTSTRAP, n), dtype=np.int32)
        self.mask = self.ids != PAD_ID
        self.code_free = None if ae.config.autoregressive else code_free_loss(ae, train, self.ids)

    def measure(self) -> dict:
        """The :data:`FIELDS` with the model's current weights."""
        if not self.mask.any():
            return dict.fromkeys(FIELDS)
        codes = np.concatenate([self.ae.encode(self.ids[start:start + EVAL_BATCH])
                                for start in range(0, len(self.ids), EVAL_BATCH)])
        own = self._sentence_losses(codes)
        swapped = self._sentence_losses(codes[self.swap])
        zeroed = self._sentence_losses(np.zeros_like(codes))
        tokens = int(self.mask.sum())
        low, high = gap_interval(own, swapped, self.resamples)
        return {"val_loss": float(own.sum() / tokens),
                "val_loss_swapped": float(swapped.sum() / tokens),
                "code_free": self.code_free, "code_zeroed": float(zeroed.sum() / tokens),
                "gap_low": low, "gap_high": high}

    def _sentence_losses(self, codes: np.ndarray) -> np.ndarray:
        """(n,) float64: each sample sentence's token-loss sum from the decoder on ``codes``
        against its words, in batches of ``ae.eval_rows`` (whose outputs stay within a set
        size). The repeat decoder's outputs depend on the code alone, so an all-zero ``codes``
        is decoded once and its outputs shared by every sentence."""
        rows = self.ae.eval_rows
        shared = (np.asarray(self.ae.decoder_outputs(codes[:1]))
                  if not self.ae.config.autoregressive and len(codes) and not codes.any()
                  else None)
        sums = np.zeros(len(codes))
        for start in range(0, len(codes), rows):
            ids, mask = self.ids[start:start + rows], self.mask[start:start + rows]
            outputs = (np.broadcast_to(shared, (len(ids), *shared.shape[1:])) if shared is not None
                       else self.ae.decoder_outputs(codes[start:start + rows], ids))
            losses = ops.convert_to_numpy(self.ae.token_loss(ids, outputs))
            sums[start:start + rows] = np.where(mask, losses, 0.0).sum(axis=1, dtype=np.float64)
        return sums


def gap_interval(own: np.ndarray, swapped: np.ndarray, resamples: np.ndarray,
                 confidence: float = CONFIDENCE) -> tuple[float | None, float | None]:
    """The percentile bootstrap interval of ``(S - O) / |S|`` where O and S are the sums of
    ``own`` and ``swapped`` (per-sentence token-loss sums, (n,)) over each row of sentence
    indices in ``resamples`` (B, n): the token counts cancel in the ratio of two token means of
    the same sentences. Widened to contain the point gap; (None, None) where the swapped sum is
    not positive (no share)."""
    total = swapped.sum()
    if not total > 0 or resamples.shape[1] != len(own):
        return None, None
    point = (total - own.sum()) / total
    own_b, swapped_b = own[resamples].sum(axis=1), swapped[resamples].sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        gaps = (swapped_b - own_b) / np.abs(swapped_b)
    gaps = gaps[np.isfinite(gaps)]
    if not len(gaps):
        return float(point), float(point)
    tail = 50 * (1 - confidence)
    low, high = np.percentile(gaps, [tail, 100 - tail])
    return float(min(low, point)), float(max(high, point))


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
    means = ae.loss.floor(means, ae.config)
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
