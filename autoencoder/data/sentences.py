"""A split's sentences encoded once into ids: a memory-mapped (N, seq_len) int32 matrix.

The LineSentence file is read once, in chunks, and each sentence encoded with the model's
:meth:`Vocabulary.encode <autoencoder.data.vocab.Vocabulary.encode>` (the project's one word -> id
encoder) into an unlinked temporary file that is then memory-mapped read-only. No corpus-sized
matrix is ever held in RAM: what stays in memory is 12 bytes per sentence (its length and the
byte offset of its line), against ``4 x seq_len`` bytes per row of ids on disk. The temporary
file has no name from the start, so nothing is left behind however the process ends.

Plain numpy: producing batches (:mod:`autoencoder.data.batches`) needs no deep-learning backend.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from autoencoder.data.vocab import Vocabulary

ENCODE_CHUNK = 8192  # sentences encoded per write: bounds the memory of encoding


def count_lines(path: Path) -> int:
    """Number of non-empty lines of a LineSentence file, streamed."""
    count = 0
    with open(path, "rb") as handle:
        for line in handle:
            count += bool(line.strip())
    return count


def sample_mask(n_lines: int, n_keep: int | None, seed: int) -> np.ndarray | None:
    """A seeded boolean mask over line numbers keeping ``n_keep`` of ``n_lines``; None keeps all."""
    if n_keep is None or n_keep >= n_lines:
        return None
    mask = np.zeros(n_lines, dtype=bool)
    mask[np.random.default_rng(seed).choice(n_lines, size=n_keep, replace=False)] = True
    return mask


class EncodedSentences:
    """The sentences of one LineSentence file as ids, encoded once.

    Build with :meth:`encode`. Row ``i`` is the ``i``-th non-empty line of the file that ``keep``
    keeps (file order).

    Attributes
    ----------
    path : the LineSentence file.
    seq_len : width of every row.
    ids : (N, seq_len) int32, memory-mapped: ids of each sentence, truncated to ``seq_len`` and
        right-padded with PAD (0).
    lengths : (N,) int32: real tokens per row, 1 to ``seq_len`` (empty lines are skipped).
    offsets : (N,) int64: byte offset of each row's line in ``path``, to read its words back.
    truncated : how many sentences had more than ``seq_len`` tokens (their rows are cut).
    """

    def __init__(self, path: Path, ids: np.ndarray, lengths: np.ndarray, offsets: np.ndarray,
                 truncated: int = 0):
        self.path = Path(path)
        self.ids, self.lengths, self.offsets = ids, lengths, offsets
        self.truncated = truncated
        self.seq_len = int(ids.shape[1])

    @classmethod
    def encode(cls, path: Path, vocab: Vocabulary, seq_len: int, *,
               keep: np.ndarray | None = None, tmp_dir: Path | None = None) -> EncodedSentences:
        """Encode the non-empty lines of ``path`` (those of the ``keep`` mask over them, from
        :func:`sample_mask`; None keeps all) with ``vocab``.

        ``tmp_dir`` : where the ids file lives while it is in use (default: the system's
        temporary folder, ``$TMPDIR``); it takes ``N x seq_len x 4`` bytes.
        """
        lengths, offsets, truncated = [], [], 0
        with tempfile.TemporaryFile(dir=tmp_dir) as store:
            for chunk_offsets, chunk_tokens in _chunks(path, keep):
                rows = np.stack([vocab.encode(tokens, seq_len) for tokens in chunk_tokens])
                store.write(rows.tobytes())
                full = np.array([len(t) for t in chunk_tokens])
                truncated += int((full > seq_len).sum())
                lengths.append(np.minimum(full, seq_len).astype(np.int32))
                offsets.append(np.array(chunk_offsets, dtype=np.int64))
            store.flush()
            n = sum(map(len, lengths))
            # The mapping keeps the (unlinked) file alive after the handle is closed.
            ids = (np.memmap(store, dtype=np.int32, mode="r", shape=(n, seq_len)) if n
                   else np.zeros((0, seq_len), dtype=np.int32))
        return cls(path, ids, _concat(lengths, np.int32), _concat(offsets, np.int64), truncated)

    def __len__(self) -> int:
        return len(self.lengths)

    def tokens(self, rows: np.ndarray) -> list[list[str]]:
        """The original words of ``rows`` (whole lines, not truncated), read from the file."""
        return line_tokens(self.path, self.offsets[rows])


def line_tokens(path: Path, offsets: np.ndarray) -> list[list[str]]:
    """The words of the lines of ``path`` that start at byte ``offsets``, in that order."""
    with open(path, "rb") as handle:
        out = []
        for offset in offsets:
            handle.seek(offset)
            out.append(_split(handle.readline()))
        return out


def _chunks(path: Path, keep: np.ndarray | None) -> Iterator[tuple[list[int], list[list[str]]]]:
    """(byte offsets, tokens) of the kept non-empty lines, ``ENCODE_CHUNK`` lines at a time."""
    offsets, tokens, line_number, offset = [], [], 0, 0
    with open(path, "rb") as handle:
        for raw in handle:
            start, offset = offset, offset + len(raw)
            if not raw.strip():
                continue
            kept = keep is None or keep[line_number]
            line_number += 1
            if not kept:
                continue
            offsets.append(start)
            tokens.append(_split(raw))
            if len(tokens) == ENCODE_CHUNK:
                yield offsets, tokens
                offsets, tokens = [], []
    if tokens:
        yield offsets, tokens


def _split(raw: bytes) -> list[str]:
    # Split the bytes, as count_lines strips them: a line is empty for both or for neither.
    return [token.decode("utf-8") for token in raw.split()]


def _concat(parts: list[np.ndarray], dtype) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)
