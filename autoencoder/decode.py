"""Nearest-neighbour decoding of output vectors back to vocabulary ids.

Cosine similarity of every query against every candidate is one float32 GEMM per chunk of queries
(BLAS, all cores), followed by an argmax or a partial sort: no Python loop over tokens.
"""

from __future__ import annotations

from typing import Iterable

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
    vectors : (V, dim) candidate vectors; row ``i`` is id ``i``. Rows are scaled to unit length.
    exclude : ids never returned (PAD and UNK by default for the embedding autoencoder).
    chunk_bytes : cap on the (queries x candidates) float32 score block held at once.
    """

    def __init__(self, vectors: np.ndarray, exclude: Iterable[int] = (), chunk_bytes: int = 256 << 20):
        vectors = np.asarray(vectors, dtype=np.float32)
        keep = np.ones(len(vectors), dtype=bool)
        keep[list(exclude)] = False
        self.candidate_ids_ = np.flatnonzero(keep)
        candidates = vectors[keep]
        norms = np.linalg.norm(candidates, axis=1, keepdims=True)
        # Transposed once, contiguous: the GEMM then reads it as a plain (dim, V) operand.
        self.candidates_t_ = np.ascontiguousarray((candidates / np.maximum(norms, 1e-12)).T)
        self.chunk_rows = max(1, chunk_bytes // (4 * max(1, len(self.candidate_ids_))))

    def kneighbors(self, queries: np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Ids and cosine scores of the ``k`` nearest candidates, best first.

        queries : (N, dim) vectors, any length (zero vectors score 0 against everything).
        Returns (N, k) int64 ids and (N, k) float32 scores.
        """
        queries = np.asarray(queries, dtype=np.float32)
        k = min(k, len(self.candidate_ids_))
        ids = np.empty((len(queries), k), dtype=np.int64)
        scores = np.empty((len(queries), k), dtype=np.float32)
        for start in range(0, len(queries), self.chunk_rows):
            block = queries[start:start + self.chunk_rows]
            norms = np.linalg.norm(block, axis=1, keepdims=True)
            sims = (block / np.maximum(norms, 1e-12)) @ self.candidates_t_
            top, best = top_k(sims, k)
            ids[start:start + len(block)] = self.candidate_ids_[top]
            scores[start:start + len(block)] = best
        return ids, scores
