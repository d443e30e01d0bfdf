"""Tokenization: documents into units (sentences or fixed-size paragraphs) of word tokens.

Sentence boundaries come from an unsupervised Punkt model trained on the corpus itself
(:func:`train_punkt`), words from NLTK's Treebank-style ``NLTKWordTokenizer``; neither needs
downloaded NLTK data.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import ClassVar

from nltk.tokenize.destructive import NLTKWordTokenizer
from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer, PunktTrainer

from embeddings.core.params import Flag, Number, OneOf, check_params
from embeddings.corpus import Document

log = logging.getLogger(__name__)

UNITS = ("sentence", "paragraph")

_BLANK_LINE = re.compile(r"\n\s*\n")
_CHUNK_DOCS = 32  # documents per pool task: amortises pickling without starving workers
_TASKS_IN_FLIGHT = 4  # pool tasks per worker submitted ahead of the consumer; bounds memory


@dataclass(frozen=True)
class TokenizeConfig:
    """How documents become units.

    ``unit="sentence"``: Punkt sentences within blank-line-separated blocks.
    ``unit="paragraph"``: groups of ``paragraph_lines`` consecutive non-empty lines.
    """

    unit: str = "sentence"
    paragraph_lines: int = 15
    lowercase: bool = True

    # Each field's type and bounds (CorpusConfig and the command line read them).
    PARAMS: ClassVar[dict] = {
        "unit": OneOf(UNITS),
        "paragraph_lines": Number(int, 1),
        "lowercase": Flag(),
    }

    def __post_init__(self):
        check_params(self, self.PARAMS)


def train_punkt(texts: Iterable[str], max_chars: int = 20_000_000) -> PunktParameters:
    """Learn Punkt sentence-boundary parameters (abbreviations, collocations, sentence starters).

    Unsupervised, on the given texts, stopping after ``max_chars`` characters (Punkt training is
    single-threaded, roughly 3 s per million characters).
    """
    trainer = PunktTrainer()
    used = 0
    for text in texts:
        text = text[: max_chars - used]
        trainer.train(text, finalize=False)
        used += len(text)
        if used >= max_chars:
            break
    trainer.finalize_training()
    params = trainer.get_params()
    log.info("trained Punkt on %d characters: %d abbreviations, %d collocations, %d sentence starters",
             used, len(params.abbrev_types), len(params.collocations), len(params.sent_starters))
    return params


class Tokenizer:
    """Callable turning one text into its units, each a non-empty list of tokens.

    ``punkt=None`` uses untrained Punkt (splits at every sentence-final period).
    """

    def __init__(self, config: TokenizeConfig, punkt: PunktParameters | None):
        self.config = config
        self.sentences = PunktSentenceTokenizer(punkt if punkt is not None else PunktParameters())
        self.words = NLTKWordTokenizer()

    def __call__(self, text: str) -> list[list[str]]:
        units = []
        for chunk in self._chunks(text):
            tokens = self._words(chunk)
            if self.config.lowercase:
                tokens = [token.lower() for token in tokens]
            if tokens:
                units.append(tokens)
        return units

    def _chunks(self, text: str) -> Iterator[str]:
        if self.config.unit == "sentence":
            for block in _BLANK_LINE.split(text):
                yield from self._sentences(block)
        else:
            lines = [line for line in text.split("\n") if line.strip()]
            step = self.config.paragraph_lines
            for start in range(0, len(lines), step):
                yield "\n".join(lines[start : start + step])


    def _words(self, chunk: str) -> list[str]:
        """NLTK's word tokens of ``chunk``; where one of its regular expressions runs past
        NLTK's time limit (a pathological unit), the unit's white-space tokens, with a warning
        that names its size rather than the expression."""
        try:
            return self.words.tokenize(chunk)
        except TimeoutError:
            log.warning("word tokenizing timed out on a %d-character unit: split at white space",
                        len(chunk))
            return chunk.split()

    def _sentences(self, block: str) -> list[str]:
        """Punkt's sentences of ``block``. NLTK stops a regular expression that runs past its
        time limit (a pathological line); such a block falls back to its lines, and a line
        that still times out is one unit."""
        try:
            return self.sentences.tokenize(block)
        except TimeoutError:
            if "\n" not in block.strip():
                log.warning("sentence splitting timed out on a %d-character line: kept as one unit",
                            len(block))
                return [block]
            return [s for line in block.split("\n") for s in self._sentences(line)]


_worker: Tokenizer | None = None


def _init_worker(config: TokenizeConfig, punkt: PunktParameters | None) -> None:
    global _worker
    _worker = Tokenizer(config, punkt)


def _tokenize_in_worker(text: str) -> list[list[str]]:
    return _worker(text)


def tokenize_documents(
    docs: Sequence[Document],
    config: TokenizeConfig,
    punkt: PunktParameters | None,
    workers: int | None = None,
) -> Iterator[list[list[str]]]:
    """Yield, for each document in order, its units as lists of tokens (empty units dropped).

    ``punkt`` comes from :func:`train_punkt` (``None``: see :class:`Tokenizer`). ``workers``
    processes (default: all cores) tokenize chunks of documents; only a few chunks per worker
    are in flight at a time, so memory stays bounded.
    """
    workers = max(1, min(workers or os.cpu_count() or 1, len(docs)))
    if workers == 1:
        tokenizer = Tokenizer(config, punkt)
        for doc in docs:
            yield tokenizer(doc.text)
        return
    window = workers * _TASKS_IN_FLIGHT * _CHUNK_DOCS
    with multiprocessing.Pool(workers, initializer=_init_worker, initargs=(config, punkt)) as pool:
        for start in range(0, len(docs), window):
            texts = [doc.text for doc in docs[start : start + window]]
            yield from pool.imap(_tokenize_in_worker, texts, chunksize=_CHUNK_DOCS)
