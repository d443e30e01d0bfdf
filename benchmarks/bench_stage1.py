"""Benchmark 1: stage one on 20 Newsgroups, tokenization and word2vec.

Tokenization: sentences/s of :func:`embeddings.tokenize_documents` with one worker process
against all cores (Punkt is trained once beforehand, untimed). word2vec: raw corpus words/s of
the library's ``corpus_file`` mode (:func:`embeddings.train_word2vec`) against gensim's iterable
mode (``sentences=LineSentence(...)``) with the same hyper-parameters, one thread and all cores.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from gensim.models import Word2Vec
from gensim.models.word2vec import LineSentence

from benchmarks.report import Section
from benchmarks.timing import alternate, median, seconds
from embeddings import (
    CorpusConfig, EpochLogger, TokenizeConfig, Word2VecConfig, read_corpus, tokenize_documents,
    train_punkt, train_word2vec,
)
from embeddings.prepare import split_documents

# Optional packages, checked before this module is imported (a missing one skips the section).
REQUIRES: tuple[str, ...] = ()

ARCHIVE = Path(__file__).resolve().parents[2] / "shared" / "data" / "20news-bydate.tar.gz"


@dataclass(frozen=True)
class Settings:
    """``max_docs`` seeded document subsample (None: all 18k posts), word2vec ``dim`` and
    ``w2v_epochs`` per timed run, ``repeats`` rounds."""

    archive: Path = ARCHIVE
    max_docs: int | None = None
    dim: int = 2000
    w2v_epochs: int = 1
    repeats: int = 3


FULL = Settings()
QUICK = Settings(max_docs=500, repeats=2)


def run(settings: Settings, workdir: Path) -> Section:
    """Tokenization sentences/s and word2vec words/s, 1 worker vs all cores."""
    section = Section("Stage one on 20 Newsgroups: tokenization and word2vec",
                      ["step", "mode", "workers", "rate", "vs 1 worker", "vs iterable"])
    if not settings.archive.is_file():
        section.notes.append(f"skipped: {settings.archive} is missing")
        return section
    all_cores = os.cpu_count() or 1
    worker_counts = sorted({1, all_cores})
    docs, _ = read_corpus(str(settings.archive))
    docs, _ = split_documents(docs, CorpusConfig(source=str(settings.archive),
                                                 max_docs=settings.max_docs))
    tokenize = TokenizeConfig()
    punkt = train_punkt(doc.text for doc in docs)

    def tokenized(workers: int) -> list[list[str]]:
        return [unit for units in tokenize_documents(docs, tokenize, punkt, workers) for unit in units]

    units = tokenized(1)
    path = Path(workdir) / "20news-sentences.txt"
    with open(path, "w", encoding="utf-8") as handle:
        handle.writelines(" ".join(unit) + "\n" for unit in units)
    tokens = sum(map(len, units))

    samples = alternate({workers: (lambda workers=workers: len(units) / seconds(lambda: tokenized(workers)))
                         for workers in worker_counts}, settings.repeats)
    for workers in worker_counts:
        rate = median(samples[workers])
        section.rows.append(["tokenize", "tokenize_documents", str(workers), f"{rate:,.0f} sentences/s",
                             f"{rate / median(samples[1]):.2f}x", ""])

    config = Word2VecConfig(vector_size=settings.dim, epochs=settings.w2v_epochs, seed=0)

    def corpus_file_rate(workers: int) -> float:
        progress = EpochLogger()
        train_word2vec(path, replace(config, workers=workers), progress)
        return median([epoch["words_per_second"] for epoch in progress.history])

    def iterable_rate(workers: int) -> float:
        progress = EpochLogger()
        Word2Vec(sentences=LineSentence(str(path)), vector_size=config.vector_size,
                 window=config.window, min_count=config.min_count, negative=config.negative, hs=0,
                 sg=int(config.sg), epochs=config.epochs, workers=workers, seed=config.seed,
                 callbacks=[progress])
        return median([epoch["words_per_second"] for epoch in progress.history])

    modes = {"corpus_file": corpus_file_rate, "iterable": iterable_rate}
    samples = alternate({(mode, workers): (lambda rate=rate, workers=workers: rate(workers))
                         for mode, rate in modes.items() for workers in worker_counts},
                        settings.repeats)
    for mode in modes:
        for workers in worker_counts:
            rate = median(samples[mode, workers])
            section.rows.append([
                "word2vec", mode, str(workers), f"{rate:,.0f} words/s",
                f"{rate / median(samples[mode, 1]):.2f}x",
                f"{rate / median(samples['iterable', workers]):.2f}x",
            ])
    sample = "all" if settings.max_docs is None else f"a seeded sample of {settings.max_docs:,}"
    section.notes += [
        f"{len(docs):,} posts ({sample}; headers, footers and quotes removed): "
        f"{len(units):,} sentences, {tokens:,} tokens. "
        f"{settings.repeats} rounds alternating the contenders, median; all cores = {all_cores}.",
        "Tokenization: Punkt sentences + NLTK Treebank words, Punkt trained once beforehand "
        "(untimed); the multi-worker figure includes starting its process pool.",
        f"word2vec: CBOW, dim {settings.dim}, window {config.window}, negative {config.negative}, "
        f"min_count {config.min_count}, {settings.w2v_epochs} epoch(s) per run; rate = raw corpus "
        "words / epoch seconds (gensim's own epoch timing via EpochLogger; vocabulary building "
        "untimed).",
    ]
    return section
