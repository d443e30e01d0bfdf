"""Nearest-neighbour decoding of output vectors back to vocabulary ids.

Cosine similarity of every query against every candidate is one float32 GEMM per chunk of queries
(BLAS, all cores), followed by an argmax or a partial sort: no Python loop over tokens.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Column indices and values of the ``k`` largest entries of each row, best first.

    scores : (N, M) array. Returns (N, k) int64 indices and (N, k) values; a partial sort, so the
    cost is O(N * M) rather than O(N * M log M).
    """
    if k == 1:
        top = scores.argmax(axis=1)[:, None]
    else:
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        top = np.take_along_axis(top, np.argsort(-np.take_along_axis(scores, top, 1), 1), 1)
    return top, np.take_along_axis(scores, top, 1)


class NearestNeighbourDecoder:
    """Cosine k-nearest-neighbour search over the rows of a vocabulary matrix.

    Parameters
    ----------
    vectors : (V, dim) candidate vectors; row ``i`` is id ``i``.
    exclude : ids never returned (PAD and UNK for the embedding autoencoder).
    unit_rows : the rows already have unit length (or are zero), so ``vectors`` is used as is;
        otherwise one normalised copy is made.
    chunk_bytes : cap on the (queries x V) float32 score block held at once.
    """

    def __init__(self, vectors: np.ndarray, exclude: Iterable[int] = (), unit_rows: bool = False,
                 chunk_bytes: int = 256 << 20):
        vectors = np.asarray(vectors, dtype=np.float32)
        if not unit_rows:
            vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        # No per-candidate copy: excluded ids are masked in the score block, and BLAS reads the
        # (V, dim) matrix transposed in place.
        self.unit_ = vectors
        self.exclude_ = np.array(sorted(set(exclude)), dtype=np.int64)
        if len(self.exclude_) >= len(vectors):
            raise ValueError("every candidate is excluded")
        self.chunk_rows = max(1, chunk_bytes // (4 * len(vectors)))

    def kneighbors(self, queries: np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Ids and cosine scores of the ``k`` nearest candidates, best first.

        queries : (N, dim) vectors, any length (zero vectors score 0 against everything).
        Returns (N, k) int64 ids and (N, k) float32 scores.
        """
        queries = np.asarray(queries, dtype=np.float32)
        k = min(k, len(self.unit_) - len(self.exclude_))
        ids = np.empty((len(queries), k), dtype=np.int64)
        scores = np.empty((len(queries), k), dtype=np.float32)
        for start in range(0, len(queries), self.chunk_rows):
            block = queries[start:start + self.chunk_rows]
            norms = np.linalg.norm(block, axis=1, keepdims=True)
            sims = (block / np.maximum(norms, 1e-12)) @ self.unit_.T
            sims[:, self.exclude_] = -np.inf
            ids[start:start + len(block)], scores[start:start + len(block)] = top_k(sims, k)
        return ids, scores
