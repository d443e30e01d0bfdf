"""word2vec training (gensim, corpus_file mode) and pickle-free storage of the vectors.

Storage in a folder (``RUN/embeddings``)::

    vectors.npy   float32, shape (V, D), plain ``np.save`` (no pickle), row i = word i
    vocab.tsv     word <TAB> training count, one line per row of vectors.npy, in index order
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
from gensim.models import KeyedVectors, Word2Vec
from gensim.models.callbacks import CallbackAny2Vec

from embeddings.core.params import DEFAULT_SEED, SEED, WORKERS, Flag, Number, check_params
from embeddings.core.progress import progress_bar
from embeddings.store.errors import SeqaeError
from embeddings.store.files import atomic_open, output_path
from embeddings.store.rundir import RunDir

log = logging.getLogger(__name__)

VECTORS_FILE = RunDir.VECTORS  # the run's layout names it
VOCAB_FILE = "vocab.tsv"


@dataclass(frozen=True)
class Word2VecConfig:
    """word2vec hyper-parameters; the defaults are Mikolov et al.'s (2013) except ``vector_size``.

    ``vector_size``: dimensions D. ``window``: max distance (words) between centre and context.
    ``min_count``: words seen fewer times in training are dropped. ``negative``: noise words per
    positive example. ``sg``: skip-gram if true, else CBOW. ``workers``: threads (``None``: all
    cores; only ``workers=1`` is bit-reproducible). ``seed``: initialisation seed.
    """

    vector_size: int = 2000
    window: int = 5
    min_count: int = 5
    negative: int = 5
    epochs: int = 5
    sg: bool = False
    workers: int | None = None
    seed: int = DEFAULT_SEED

    # Each field's type and bounds, with why each upper bound is there (shown in ``--help``):
    # past them gensim hangs, overflows a C int in a worker thread, or only burns time.
    PARAMS: ClassVar[dict] = {
        "vector_size": Number(int, 1, 100_000, why="a 100k-word vocabulary is then 40 GB"),
        "window": Number(int, 1, 1_000, why="wider than any sentence changes nothing"),
        "min_count": Number(int, 1, 2**31 - 1, why="gensim stores it as a C int"),
        "negative": Number(int, 1, 100, why="each positive example draws that many noise words; "
                                            "5-20 is usual"),
        "epochs": Number(int, 1, 1_000, why="each epoch is a full pass over the corpus"),
        "sg": Flag(),
        "workers": WORKERS,
        "seed": SEED,
    }

    def __post_init__(self):
        check_params(self, self.PARAMS)


class EpochLogger(CallbackAny2Vec):
    """Logs each epoch's duration and throughput, keeps them in :attr:`history`, and shows a
    progress bar over the epochs (see :func:`~embeddings.core.progress.progress_bar`).

    Throughput counts raw corpus words (before ``min_count`` and down-sampling) per second.
    """

    def __init__(self) -> None:
        self.history: list[dict] = []
        self._started = 0.0

    def on_train_begin(self, model: Word2Vec) -> None:
        self._bar = progress_bar(total=model.epochs, desc="word2vec", unit="epoch", leave=False)

    def on_train_end(self, model: Word2Vec) -> None:
        self._bar.close()

    def on_epoch_begin(self, model: Word2Vec) -> None:
        self._started = time.perf_counter()

    def on_epoch_end(self, model: Word2Vec) -> None:
        seconds = time.perf_counter() - self._started
        rate = model.corpus_total_words / seconds if seconds > 0 else float("inf")
        self.history.append({"epoch": len(self.history) + 1, "seconds": seconds, "words_per_second": rate})
        log.info("word2vec epoch %d/%d: %.1f s, %.0f words/s", len(self.history), model.epochs, seconds, rate)
        self._bar.update()


def train_word2vec(
    corpus_file: Path, config: Word2VecConfig, progress: EpochLogger | None = None
) -> KeyedVectors:
    """Train word2vec on a LineSentence file (one sentence per line, space-separated tokens).

    Uses gensim's ``corpus_file`` mode, which scales with threads. ``progress`` is the callback
    that logs epochs; pass your own to read its ``history`` afterwards. Returns the word vectors,
    most frequent word first, with training counts as the ``"count"`` attribute.
    """
    corpus_file = Path(corpus_file)
    if not corpus_file.is_file():
        raise SeqaeError(f"missing training corpus: {corpus_file}")
    model = Word2Vec(
        vector_size=config.vector_size, window=config.window, min_count=config.min_count,
        negative=config.negative, hs=0, sg=int(config.sg), epochs=config.epochs,
        workers=config.workers or os.cpu_count() or 1, seed=config.seed,
    )
    model.build_vocab(corpus_file=str(corpus_file))
    if not len(model.wv):
        raise SeqaeError(
            f"no word of {corpus_file} occurs min_count={config.min_count} times or more; lower min_count"
        )
    log.info("word2vec: %d words of %d kept (min_count=%d), %d dimensions, %s",
             len(model.wv), model.corpus_total_words, config.min_count, config.vector_size,
             "skip-gram" if config.sg else "CBOW")
    model.train(
        corpus_file=str(corpus_file), total_examples=model.corpus_count,
        total_words=model.corpus_total_words, epochs=model.epochs, callbacks=[progress or EpochLogger()],
    )
    return model.wv


_TSV_BREAKERS = re.compile(r"[\t\n\r]")
_WORD2VEC_BREAKERS = re.compile(r"\s")


def save_vectors(kv: KeyedVectors, folder: Path) -> None:
    """Write ``vectors.npy`` (float32, V x D) and ``vocab.tsv`` (word, count) to ``folder``, atomically."""
    folder = Path(folder)
    _check_keys(kv, _TSV_BREAKERS, "a tab or line break")
    counts = kv.expandos.get("count", np.zeros(len(kv), dtype=np.int64))
    with atomic_open(folder / VOCAB_FILE) as handle:
        handle.writelines(f"{word}\t{int(count)}\n" for word, count in zip(kv.index_to_key, counts))
    with atomic_open(folder / VECTORS_FILE, "wb") as handle:
        np.save(handle, np.asarray(kv.vectors, dtype=np.float32), allow_pickle=False)


def load_vectors(folder: Path, mmap: bool = True) -> KeyedVectors:
    """Load what :func:`save_vectors` wrote; ``mmap`` maps the matrix read-only instead of reading it.

    Never unpickles. :class:`SeqaeError` naming the file if one is missing, corrupt, or the two disagree.
    """
    folder = Path(folder)
    vectors_path, vocab_path = folder / VECTORS_FILE, folder / VOCAB_FILE
    try:
        vectors = np.load(vectors_path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except FileNotFoundError:
        raise SeqaeError(f"missing vectors file: {vectors_path}") from None
    except (ValueError, OSError, EOFError) as exc:
        raise SeqaeError(f"corrupt vectors file {vectors_path}: {exc}") from None
    if vectors.ndim != 2 or not np.issubdtype(vectors.dtype, np.floating):
        raise SeqaeError(f"corrupt vectors file {vectors_path}: {vectors.dtype} array of shape {vectors.shape}")
    words, counts = _read_vocab(vocab_path)
    if len(words) != vectors.shape[0]:
        raise SeqaeError(f"{vocab_path} lists {len(words)} words but {vectors_path} has {vectors.shape[0]} rows")
    kv = keyed_vectors(words, vectors, counts)
    if len(kv.key_to_index) != len(words):
        raise SeqaeError(f"corrupt vocabulary {vocab_path}: repeated words")
    return kv


def keyed_vectors(words: list[str], vectors: np.ndarray, counts: list[int]) -> KeyedVectors:
    """gensim's word vectors with row i of ``vectors`` (V x D) for ``words[i]``, whose count
    (the ``"count"`` attribute) is ``counts[i]``: the vectors as :func:`train_word2vec` returns
    them. ``vectors`` is used as it is (a memory map stays one)."""
    kv = KeyedVectors(vectors.shape[1], dtype=vectors.dtype)
    kv.vectors = vectors
    kv.index_to_key = words
    kv.key_to_index = {word: i for i, word in enumerate(words)}
    kv.next_index = len(words)
    # What set_vecattr("count", ...) does word by word, in one assignment.
    kv.allocate_vecattrs(attrs=["count"], types=[np.int64])
    kv.expandos["count"][:] = counts
    return kv


def export_word2vec(kv: KeyedVectors, path: Path, binary: bool = True) -> None:
    """Write the vectors in the original word2vec format (binary or text): atomically to a
    regular file, straight through to a device or pipe (see :func:`embeddings.store.files.output_path`)."""
    _check_keys(kv, _WORD2VEC_BREAKERS, "whitespace")
    with output_path(path) as target:
        kv.save_word2vec_format(str(target), binary=binary)
    log.info("exported %d vectors to %s (%s word2vec format)", len(kv), path, "binary" if binary else "text")


def _read_vocab(path: Path) -> tuple[list[str], list[int]]:
    words, counts = [], []
    try:
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                word, sep, count = line.rstrip("\n").partition("\t")
                if not sep or not count.isdigit():
                    raise SeqaeError(f"corrupt vocabulary {path}: line {number} is not word<TAB>count")
                words.append(word)
                counts.append(int(count))
    except FileNotFoundError:
        raise SeqaeError(f"missing vocabulary file: {path}") from None
    except UnicodeDecodeError:
        raise SeqaeError(f"corrupt vocabulary {path}: not UTF-8") from None
    return words, counts


def _check_keys(kv: KeyedVectors, forbidden: re.Pattern, what: str) -> None:
    bad = next((word for word in kv.index_to_key if forbidden.search(str(word))), None)
    if bad is not None:
        raise SeqaeError(f"cannot store the word {bad!r}: it contains {what}")
