"""Corpus preparation: read, split by document, tokenize, and write one LineSentence file per split.

Layout of ``RUN/corpus``::

    train.txt, val.txt, test.txt   one unit per line, tokens separated by one space, UTF-8
    vocab.tsv                      train word <TAB> count, most frequent first (ties by word)
    stats.json                     source report, options and per-split statistics
    manifest.json                  size and sha256 of the files above, and the cache key
    meta.json                      cache key; written last, so its presence means "complete"
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import ClassVar

import numpy as np

from embeddings.core.params import DEFAULT_SEED, SEED, WORKERS, Number, check_params
from embeddings.core.progress import progress_bar
from embeddings.corpus import Document, check_remove, read_corpus, resolve_source
from embeddings.stats import SplitCounter, most_frequent, split_statistics
from embeddings.store.errors import SeqaeError
from embeddings.store.files import atomic_open
from embeddings.store.jsonfile import options_digest, read_json, write_json
from embeddings.store.manifests import META, is_complete, staged_folders, verify_manifest, write_manifest
from embeddings.store.rundir import CORPUS, RunDir, check_replaceable
from embeddings.store.schema import ANY, Fields, MapOf
from embeddings.tokenize import TokenizeConfig, tokenize_documents, train_punkt

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
CORPUS_FORMAT = 1  # bump when tokenization or the file layout changes: invalidates cached corpora
_FILES = (*(f"{split}.txt" for split in SPLITS), "vocab.tsv", "stats.json")
STATS_SCHEMA = Fields({"digest": str, "source": Fields({"remove": ANY}), "config": dict,
                       "splits": MapOf(dict)}, name="corpus statistics")


@dataclass(frozen=True)
class CorpusConfig:
    """Which corpus to read and how to tokenize and split it.

    ``remove``: newsgroup parts to strip (``None``: per source, see :func:`read_corpus`).
    ``max_docs``: seeded subsample of documents taken before splitting (``None``: all).
    ``val_fraction``/``test_fraction``: shares of documents (rounded down) for validation and
    test; 20 Newsgroups keeps its official test posts, so ``test_fraction`` is ignored there.
    """

    source: str = "default"
    remove: tuple[str, ...] | None = None
    unit: str = TokenizeConfig.unit
    paragraph_lines: int = TokenizeConfig.paragraph_lines
    max_docs: int | None = None
    seed: int = DEFAULT_SEED
    val_fraction: float = 0.05
    test_fraction: float = 0.05

    # Each field's type and bounds (the command line's options are built from them).
    PARAMS: ClassVar[dict] = {
        **{name: TokenizeConfig.PARAMS[name] for name in ("unit", "paragraph_lines")},
        "max_docs": Number(int, 1, optional=True),
        "seed": SEED,
        "val_fraction": Number(float, 0, 1, high_open=True),
        "test_fraction": Number(float, 0, 1, high_open=True),
    }

    def __post_init__(self):
        if not isinstance(self.source, str | os.PathLike):
            raise SeqaeError(f"source (--corpus) must be a corpus name or a path, got {self.source!r}")
        check_params(self, self.PARAMS)
        if self.remove is not None:  # normalised, so equal options give equal cache keys
            object.__setattr__(self, "remove", check_remove(self.remove))
        if self.val_fraction + self.test_fraction >= 1:
            raise SeqaeError("val_fraction and test_fraction must sum to less than 1")

    def tokenize_config(self) -> TokenizeConfig:
        return TokenizeConfig(unit=self.unit, paragraph_lines=self.paragraph_lines)


@dataclass(frozen=True)
class PreparedCorpus:
    """A tokenized, split corpus in ``root`` (``RUN/corpus``); ``stats`` is ``stats.json``."""

    root: Path
    stats: dict

    @property
    def digest(self) -> str:
        """Cache key of the options and source this corpus was prepared from."""
        return self.stats["digest"]

    def split_path(self, split: str) -> Path:
        """``RUN/corpus/<split>.txt``: gensim LineSentence format (one unit per line, UTF-8)."""
        if split not in SPLITS:
            raise SeqaeError(f"unknown split {split!r}: choose from {', '.join(SPLITS)}")
        return self.root / f"{split}.txt"

    def iter_sentences(self, split: str) -> Iterator[list[str]]:
        """Stream one split's units as lists of tokens."""
        with open(self.split_path(split), encoding="utf-8") as handle:
            for line in handle:
                yield line.split()

    def vocab_counts(self) -> list[tuple[str, int]]:
        """Train-split ``(word, count)`` pairs, most frequent first, ties by word."""
        pairs = []
        with open(self.root / "vocab.tsv", encoding="utf-8") as handle:
            for line in handle:
                word, count = line.rstrip("\n").split("\t")
                pairs.append((word, int(count)))
        return pairs


def corpus_key(config: CorpusConfig) -> dict:
    """What a prepared corpus depends on: ``config`` and a fingerprint of the source (kind, path,
    size, mtime); checked without reading the corpus."""
    return {
        "format": CORPUS_FORMAT, "config": asdict(config),
        "source": resolve_source(config.source).describe(), "nltk": metadata.version("nltk"),
    }


def corpus_is_current(config: CorpusConfig, run_dir: str | os.PathLike | RunDir) -> bool:
    """Whether ``RUN/corpus`` is finished and was prepared with ``config`` from today's source."""
    return is_complete(RunDir.of(run_dir).corpus, _FILES, options_digest(corpus_key(config)))


def prepare_corpus(
    config: CorpusConfig, run_dir: str | os.PathLike | RunDir, workers: int | None = None,
    force: bool = False,
) -> PreparedCorpus:
    """Read, split and tokenize a corpus into ``RUN/corpus``, or reuse it if already there.

    The cache key is :func:`corpus_key`; ``force`` recomputes anyway. ``workers`` tokenizer
    processes (default: all cores). The new corpus is written beside the old one and replaces it
    only when complete: a failure leaves ``RUN/corpus`` as it was.
    """
    WORKERS.check("workers", workers)
    run = RunDir.of(run_dir)
    if not force and corpus_is_current(config, run):
        log.info("reusing tokenized corpus in %s", run.corpus)
        return load_corpus(run)
    check_replaceable(run, (CORPUS,))
    with staged_folders(run, (CORPUS,)) as stage:
        write_corpus(config, stage / CORPUS, workers)
    return load_corpus(run)


def write_corpus(config: CorpusConfig, root: Path, workers: int | None = None) -> PreparedCorpus:
    """Prepare the corpus of ``config`` into the new folder ``root`` (see the module docstring).

    Refuses (:class:`SeqaeError`) a corpus that leaves the validation or test split without a
    sentence: every model is selected on one and scored on the other.
    """
    key = corpus_key(config)
    digest = options_digest(key)
    docs, report = read_corpus(config.source, config.remove)
    docs, splits = split_documents(docs, config)
    # Counted before tokenizing, which takes minutes on a large corpus.
    _refuse_empty(config, [split for split in SPLITS if split not in splits], len(docs))
    tokenize = config.tokenize_config()
    punkt = None
    if tokenize.unit == "sentence":
        punkt = train_punkt(doc.text for doc, split in zip(docs, splits) if split == "train")

    counters = {split: SplitCounter() for split in SPLITS}
    with contextlib.ExitStack() as stack:
        files = {split: stack.enter_context(atomic_open(root / f"{split}.txt")) for split in SPLITS}
        tokenized = tokenize_documents(docs, tokenize, punkt, workers)
        progress = progress_bar(tokenized, total=len(docs), unit="doc", desc="tokenizing")
        for split, units in zip(splits, progress):
            counters[split].add(units)
            files[split].writelines(" ".join(unit) + "\n" for unit in units)
        _check_splits(config, counters)

    with atomic_open(root / "vocab.tsv") as handle:
        handle.writelines(f"{word}\t{count}\n" for word, count in most_frequent(counters["train"].words))
    stats = {"digest": digest, "source": report, "config": asdict(config),
             "splits": split_statistics(counters)}
    write_json(root / "stats.json", stats)
    write_manifest(root, _FILES, key)
    write_json(root / META, {"digest": digest, "key": key})
    log.info("prepared corpus: %s", ", ".join(
        f"{split} {s['documents']} docs / {s['sentences']} units" for split, s in stats["splits"].items()))
    return PreparedCorpus(root, stats)


def _check_splits(config: CorpusConfig, counters: dict[str, SplitCounter]) -> None:
    empty = [split for split in SPLITS if not sum(counters[split].lengths.values())]
    _refuse_empty(config, empty, sum(c.documents for c in counters.values()))


def _refuse_empty(config: CorpusConfig, empty: list[str], documents: int) -> None:
    """Refuse a corpus that leaves the splits ``empty`` without a sentence."""
    if empty:
        raise SeqaeError(
            f"corpus {config.source} leaves no sentence in the {' and '.join(empty)} split"
            f"{'s' if len(empty) > 1 else ''} ({documents} document(s); val and test take "
            f"{config.val_fraction:.0%} and {config.test_fraction:.0%} of the documents, at "
            "least one each): use a corpus of more documents (or a larger --max-docs)")


def load_corpus(run_dir: str | os.PathLike | RunDir) -> PreparedCorpus:
    """The corpus :func:`prepare_corpus` wrote in ``RUN/corpus``."""
    root = RunDir.of(run_dir).corpus
    if not (root / META).is_file():
        raise SeqaeError(f"no prepared corpus in {run_dir}: run `pipe embed` first")
    missing = [name for name in _FILES if not (root / name).is_file()]
    if missing:
        raise SeqaeError(f"prepared corpus in {root} lacks {', '.join(missing)}: rerun `pipe embed --force`")
    verify_manifest(root, _FILES, remedy="rerun `pipe embed --force`")
    return PreparedCorpus(root, read_json(root / "stats.json", STATS_SCHEMA))


def split_documents(docs: list[Document], config: CorpusConfig) -> tuple[list[Document], list[str]]:
    """Subsample (``max_docs``) and assign each document a split, seeded by ``config.seed``.

    Documents with a fixed ``split`` (20 Newsgroups) keep it: test posts are ``test`` and a
    seeded ``val_fraction`` of the train posts becomes ``val``. Otherwise ``val_fraction`` and
    ``test_fraction`` of all documents (rounded down, but at least one) go to ``val`` and
    ``test``; ``train`` always keeps at least one document, so a corpus of fewer than three
    documents leaves ``val`` or ``test`` empty (which :func:`write_corpus` refuses).
    """
    rng = np.random.default_rng(config.seed)
    if config.max_docs is not None and config.max_docs < len(docs):
        docs = [docs[i] for i in np.sort(rng.choice(len(docs), config.max_docs, replace=False))]
    fixed = any(doc.split is not None for doc in docs)
    pool = [i for i, doc in enumerate(docs) if doc.split != "test"]
    if not pool:
        raise SeqaeError(f"corpus {config.source} has no training documents")
    fractions = {"val": config.val_fraction, "test": 0.0 if fixed else config.test_fraction}
    # At least one document for a split that has a share, as long as train keeps one.
    counts = {split: max(int(len(pool) * share), int(share > 0)) for split, share in fractions.items()}
    counts["test"] = min(counts["test"], len(pool) - 1)
    counts["val"] = min(counts["val"], len(pool) - 1 - counts["test"])
    order = rng.permutation(pool)
    splits = ["test" if doc.split == "test" else "train" for doc in docs]
    for i in order[: counts["val"]]:
        splits[i] = "val"
    for i in order[counts["val"] : counts["val"] + counts["test"]]:
        splits[i] = "test"
    return docs, splits
