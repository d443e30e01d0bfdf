"""Streaming sentence batches: tokenized text lines -> padded id matrices, inside the tf.data graph.

The corpus is never materialised: lines are read from the LineSentence file, shuffled within a
bounded buffer, batched, then split and looked up in a hash table. Only (batch, seq_len) int32 ids
leave the pipeline; word vectors and one-hot rows are gathered later, per batch, inside the model
step. Peak memory therefore depends on the batch and buffer sizes, not on the number of sentences.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from autoencoder.vocab import PAD_ID, UNK_ID, Vocabulary

SHUFFLE_BUFFER = 10_000


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


def lookup_table(vocab: Vocabulary) -> tf.lookup.StaticHashTable:
    """A word -> id table; any other string maps to UNK."""
    keys = tf.constant(vocab.words[2:], dtype=tf.string)
    values = tf.range(2, len(vocab), dtype=tf.int32)
    return tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(keys, values), UNK_ID)


def encode_lines(lines: tf.Tensor, table: tf.lookup.StaticHashTable, seq_len: int) -> tf.Tensor:
    """Ids of a batch of LineSentence lines: shape (batch, seq_len) int32, truncated / padded."""
    tokens = tf.strings.split(tf.strings.strip(lines))
    ids = tf.ragged.map_flat_values(table.lookup, tokens)
    return ids.to_tensor(default_value=PAD_ID, shape=[None, seq_len])


def sentence_dataset(
    path: Path,
    table: tf.lookup.StaticHashTable,
    seq_len: int,
    batch_size: int,
    *,
    keep: np.ndarray | None = None,
    shuffle_seed: int | None = None,
    with_text: bool = False,
) -> tf.data.Dataset:
    """Batches of ids, shape (batch, seq_len) int32, right-padded with PAD_ID and truncated.

    Parameters
    ----------
    path : LineSentence file (one sentence per line, space-separated tokens).
    table : from :func:`lookup_table`.
    keep : optional boolean mask over the file's non-empty lines (from :func:`sample_mask`).
    shuffle_seed : shuffle lines within a buffer of ``SHUFFLE_BUFFER`` with this seed; None keeps
        file order. Callers pass a different seed each epoch so a resumed run replays the order.
    with_text : also yield the raw lines, shape (batch,) string, for scoring against the
        original words.
    """
    lines = tf.data.TextLineDataset(str(path)).filter(
        lambda line: tf.strings.length(tf.strings.strip(line)) > 0
    )
    if keep is not None:
        keep_t = tf.constant(keep)
        lines = lines.enumerate().filter(lambda i, _: keep_t[i]).map(lambda _, line: line)
    if shuffle_seed is not None:
        lines = lines.shuffle(SHUFFLE_BUFFER, seed=shuffle_seed, reshuffle_each_iteration=False)

    def encode(batch: tf.Tensor):
        ids = encode_lines(batch, table, seq_len)
        return (ids, batch) if with_text else ids

    return (
        lines.batch(batch_size)
        .map(encode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .prefetch(tf.data.AUTOTUNE)
    )
