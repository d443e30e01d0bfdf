"""Pretrained word vectors from a file, in place of training word2vec (``pipe embed --vectors``).

The file is read whole with gensim (``KeyedVectors.load_word2vec_format``), then cut to the words
of the corpus's train split, most frequent first, each with its train count: the order and the
``"count"`` attribute that :func:`~embeddings.word2vec.train_word2vec` gives, which the rest of
seqae relies on (the embedding model's vocabulary, sampled softmax's log-uniform draws). Words
of the file that the train split lacks are dropped; train words that the file lacks are
unknown to the models, as words under word2vec's ``min_count`` are.

Formats (:data:`FORMATS`):

- ``word2vec``: the C tool's text format, a ``WORDS DIMENSIONS`` header line, then one word and
  its values a line, separated by single spaces;
- ``word2vec-binary``: the same header, then each word, a space and DIMENSIONS float32 values;
- ``glove``: the text format without the header (Stanford's GloVe files);
- ``fasttext``: fastText's ``.vec`` files, which are the ``word2vec`` text format.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from gensim.models import KeyedVectors

from embeddings.core.params import OneOf, check_params
from embeddings.store.errors import SeqaeError
from embeddings.store.files import check_input_file, resolve_path, sha256_file
from embeddings.word2vec import keyed_vectors

log = logging.getLogger(__name__)

FORMATS = ("word2vec", "word2vec-binary", "glove", "fasttext")
# Per format: (binary, has the "WORDS DIMENSIONS" header line).
_LAYOUT = {"word2vec": (False, True), "word2vec-binary": (True, True), "glove": (False, False),
           "fasttext": (False, True)}


@dataclass(frozen=True)
class PretrainedVectors:
    """Stage one's vectors read from ``path`` (a file in ``format``, one of :data:`FORMATS`)
    instead of trained: pass it to :func:`pipelines.run_embed` in place of a ``Word2VecConfig``.
    ``path`` is kept as given (``str``); links are followed."""

    path: str
    format: str = "word2vec"

    PARAMS: ClassVar[dict] = {"format": OneOf(FORMATS)}

    def __post_init__(self) -> None:
        check_params(self, self.PARAMS)
        if not isinstance(self.path, str | os.PathLike) or not str(self.path).strip():
            raise SeqaeError(f"path (--vectors) must name a file, got {self.path!r}")
        object.__setattr__(self, "path", os.fspath(self.path))

    def fingerprint(self) -> dict:
        """What the vectors depend on: the format and the file's sha256 (not its name, so a
        moved file is the same vectors; an edited one is not). A missing file, a folder, a FIFO
        or a device is a :class:`SeqaeError`."""
        path = check_input_file(self.path, "a file of word vectors")
        return {"format": self.format, "sha256": sha256_file(resolve_path(path))}


def read_pretrained(config: PretrainedVectors) -> KeyedVectors:
    """Every vector of ``config.path`` (V x D, float32, in the file's order).

    One-line :class:`SeqaeError` for a file that is not in its format: a missing or wrong
    header, a line whose number of values is not the file's dimensions (gensim would read a
    line of one value as that value repeated), fewer or more words than the header announces,
    a value that is not a number, or a value that is not finite.
    """
    path = check_input_file(config.path, "a file of word vectors")
    binary, header = _LAYOUT[config.format]
    problem = _check_binary_header(path) if binary else _check_text(path, header)
    if problem is None:
        try:
            kv = KeyedVectors.load_word2vec_format(str(path), binary=binary, no_header=not header)
        except EOFError:
            problem = "it ends before the words its header announces (truncated?)"
        except ValueError as exc:  # a value that is not a number, a word that is not UTF-8
            problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if problem is None and not np.isfinite(kv.vectors).all():
        row = int(np.flatnonzero(~np.isfinite(kv.vectors).all(axis=1))[0])
        problem = f"the vector of {kv.index_to_key[row]!r} has a value that is not finite"
    if problem is not None:
        raise SeqaeError(f"cannot read {config.path} as {config.format} vectors: {problem}")
    log.info("read %d vectors of %d dimensions from %s", len(kv), kv.vector_size, config.path)
    return kv


def corpus_vectors(kv: KeyedVectors, counts: Sequence[tuple[str, int]], source: str
                   ) -> tuple[KeyedVectors, dict]:
    """The vectors of ``kv`` for the words of ``counts`` (the train split's ``(word, count)``
    pairs, most frequent first) that it has, in that order, float32, with those counts as the
    ``"count"`` attribute; and what was kept: ``{"dimensions", "words"`` (in the file),
    ``"kept", "dropped"`` (file words the train split lacks), ``"unknown"`` (train words the
    file lacks)``}``. :class:`SeqaeError` naming ``source`` when no word is shared."""
    kept = [(word, count) for word, count in counts if word in kv.key_to_index]
    if not kept:
        raise SeqaeError(f"no word of {source} ({len(kv):,} words) occurs in the train split of "
                         f"the corpus ({len(counts):,} words, all lowercase): is it in the "
                         "corpus's language, with lowercase words?")
    words = [word for word, _ in kept]
    rows = np.asarray(kv.vectors[[kv.key_to_index[word] for word in words]], dtype=np.float32)
    out = keyed_vectors(words, rows, [count for _, count in kept])
    summary = {"dimensions": kv.vector_size, "words": len(kv), "kept": len(kept),
               "dropped": len(kv) - len(kept), "unknown": len(counts) - len(kept)}
    log.info("kept %d of the %d words of %s (the others are not in the train split); %d train "
             "words have no vector", len(kept), len(kv), source, summary["unknown"])
    return out, summary


def _check_binary_header(path: os.PathLike) -> str | None:
    with open(path, "rb") as handle:
        return _header_problem(handle.readline())[1]


def _header_problem(line: bytes) -> tuple[tuple[int, int] | None, str | None]:
    """``((words, dimensions), None)`` for a ``WORDS DIMENSIONS`` header line, else
    ``(None, why not)``."""
    fields = line.split()
    if len(fields) != 2 or not all(field.isdigit() for field in fields):
        return None, ("its first line is not a 'WORDS DIMENSIONS' header (a GloVe file has "
                      "none: --format glove)")
    words, dimensions = map(int, fields)
    if dimensions < 1:
        return None, "its header announces 0 dimensions"
    return (words, dimensions), None


def _check_text(path: os.PathLike, header: bool) -> str | None:
    """Why the text file ``path`` cannot be read (each line as gensim splits it: a word, then
    values separated by single spaces), or None: every line must have the dimensions of the
    header (or, without one, of line 1), and as many lines as the header announces."""
    with open(path, "rb") as handle:
        announced = dimensions = None
        where = "line 1"
        rows = 0
        for number, line in enumerate(handle, start=1):
            if header and number == 1:
                sizes, problem = _header_problem(line)
                if problem:
                    return problem
                announced, dimensions = sizes
                where = "its header"
                continue
            try:
                values = line.decode("utf-8").rstrip().count(" ")
            except UnicodeDecodeError as exc:
                return f"line {number} is not UTF-8 (byte {exc.start})"
            if dimensions is None:
                if _header_problem(line)[1] is None:
                    return "its first line is a 'WORDS DIMENSIONS' header: --format word2vec"
                dimensions = values
            if not values:
                return f"line {number} has no values"
            if values != dimensions:
                return f"line {number} has {values} values, not the {dimensions} of {where}"
            rows += 1
    if header and rows != announced:
        return f"its header announces {announced:,} words but it has {rows:,}"
    if not rows:
        return "it has no vectors"
    return None
