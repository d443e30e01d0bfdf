"""Batches of encoded sentences, bucketed by length so that little of them is padding.

Both LSTMs run as many steps as the batch is wide. On 20 Newsgroups (median sentence 15 tokens)
95% of random batches of 64 hold a sentence of 50+ tokens, so at a fixed width of 50 about 64% of
all LSTM steps are padding. Sorting windows of many batches by length before cutting them puts
sentences of similar length together, and each batch is padded only to its longest sentence,
rounded up to one of a few widths (so a compiled step is reused, not rebuilt for every batch).

An epoch's batches are a pure function of (lengths, seed): a resumed run replays them exactly.
Plain numpy; no deep-learning backend is needed to produce them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from autoencoder.data.sentences import EncodedSentences
from embeddings.store.errors import SeqaeError

EVAL_BATCH = 256  # sentences per batch when evaluating (no gradients: larger batches are fine)
OUTPUT_BYTES = 256 << 20  # the most model output (float32) one evaluation batch may hold


def eval_rows(seq_len: int, output_width: int) -> int:
    """Sentences per evaluation batch: :data:`EVAL_BATCH`, fewer where the (rows, seq_len,
    output_width) float32 output would pass :data:`OUTPUT_BYTES` (a 100k-word softmax is 20 MB
    a sentence at seq-len 50)."""
    return max(1, min(EVAL_BATCH, OUTPUT_BYTES // (4 * seq_len * output_width)))


@dataclass(frozen=True)
class Bucketing:
    """How batches are grouped by length.

    Parameters
    ----------
    window : batches per window; the sentences of a window (``window x batch_size`` of the
        shuffled order) are sorted by length before they are cut into batches, then all the
        epoch's batches are shuffled. Larger windows pad less; a window of 1 batch sorts nothing.
    multiple : batch widths are rounded up to a multiple of this, capped at ``seq_len``, so a
        model runs at no more than ``ceil(seq_len / multiple)`` widths (13 for 50 and 4). On
        20 Newsgroups lengths (batch 64, seq-len 50), 4 leaves 8.5% of the steps to padding,
        8 leaves 17% (7 widths), 1 leaves 1.3% (50 widths, each a compiled step).
    """

    window: int = 100
    multiple: int = 4

    def __post_init__(self) -> None:
        if self.window < 1 or self.multiple < 1:
            raise SeqaeError("bucketing window and multiple must be at least 1")

    def width(self, longest: int, seq_len: int) -> int:
        """The width of a batch whose longest sentence has ``longest`` tokens."""
        return min(-(-longest // self.multiple) * self.multiple, seq_len)

    def widths(self, seq_len: int) -> tuple[int, ...]:
        """Every width a batch can have."""
        return tuple(sorted({self.width(n, seq_len) for n in range(1, seq_len + 1)}))


@dataclass(frozen=True, eq=False)
class Batch:
    """One batch's rows (sentence indices, shape (batch,) int64) and width in tokens."""

    rows: np.ndarray
    width: int


def plan_epoch(lengths: np.ndarray, batch_size: int, seq_len: int, *, seed: int | None = None,
               bucketing: Bucketing | None = Bucketing()) -> list[Batch]:
    """The batches of one pass over sentences of ``lengths`` ((N,) real tokens, 1 to seq_len).

    ``seed`` : shuffle the sentences, then the batches, with this seed; None keeps file order
        (evaluation), each window's sentences still sorted by length.
    ``bucketing`` : None cuts the (shuffled) order as it is and pads every batch to ``seq_len``.

    Every batch holds ``batch_size`` sentences except one (the epoch's last, before the batches
    are shuffled) when ``batch_size`` does not divide N.
    """
    n = len(lengths)
    rng = None if seed is None else np.random.default_rng(seed)
    order = np.arange(n) if rng is None else rng.permutation(n)
    if bucketing is not None:
        span = bucketing.window * batch_size
        for start in range(0, n, span):
            window = order[start : start + span]
            order[start : start + span] = window[np.argsort(lengths[window], kind="stable")]
    batches = [order[start : start + batch_size] for start in range(0, n, batch_size)]
    if bucketing is None:
        return [Batch(rows, seq_len) for rows in batches]
    if rng is not None:  # else each window would run from its shortest to its longest sentences
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return [Batch(rows, bucketing.width(int(lengths[rows].max()), seq_len)) for rows in batches]


def padding_share(plan: list[Batch], lengths: np.ndarray) -> float:
    """Share of padded positions, ``1 - real tokens / sum(rows x width)``: the share of LSTM
    steps that run on padding."""
    steps = sum(len(batch.rows) * batch.width for batch in plan)
    real = sum(int(lengths[batch.rows].sum()) for batch in plan)
    return 1.0 - real / steps if steps else 0.0


def batch_ids(sentences: EncodedSentences, plan: list[Batch]) -> Iterator[np.ndarray]:
    """The ids of each batch of ``plan``: shape (rows, width) int32, right-padded with PAD."""
    for batch in plan:
        yield np.asarray(sentences.ids[batch.rows, : batch.width])
