"""Corpus statistics per split: sizes, sentence-length distribution, vocabulary and the
share of tokens a capped one-hot vocabulary would leave unknown."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping

ONE_HOT_CAP = 2000
"""Size of the classic capped one-hot vocabulary, PAD and UNK included: the one-hot models'
default cap, which the rest of seqae reads from :mod:`autoencoder.config`. Defined here, in stage
one, because the corpus statistics report the share of tokens outside it and stage one imports
nothing of the autoencoder."""
ONE_HOT_WORDS = ONE_HOT_CAP - 2
"""Real words in that vocabulary: the 1,998 most frequent train words (PAD and UNK take 2 slots)."""


class SplitCounter:
    """Streams one split's tokenized documents into counts: O(vocabulary + distinct lengths)."""

    def __init__(self) -> None:
        self.documents = 0
        self.lengths: Counter[int] = Counter()  # sentence length (tokens) -> sentences
        self.words: Counter[str] = Counter()

    def add(self, units: Iterable[list[str]]) -> None:
        """Count one document, given as its units (lists of tokens)."""
        self.documents += 1
        for unit in units:
            self.lengths[len(unit)] += 1
            self.words.update(unit)

    def summary(self, known: set[str]) -> dict:
        """This split's statistics; ``known`` is the capped vocabulary for the unknown counts."""
        tokens = sum(self.words.values())
        unknown = sum(count for word, count in self.words.items() if word not in known)
        return {
            "documents": self.documents,
            "sentences": sum(self.lengths.values()),
            "tokens": tokens,
            "sentence_length": length_summary(self.lengths),
            "vocabulary_size": len(self.words),
            f"unk_tokens_cap{ONE_HOT_CAP}": unknown,
            f"unk_share_cap{ONE_HOT_CAP}": unknown / tokens if tokens else None,
        }


def most_frequent(counts: Mapping[str, int]) -> list[tuple[str, int]]:
    """``(word, count)`` pairs, most frequent first, ties broken by word."""
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def split_statistics(counters: Mapping[str, SplitCounter]) -> dict[str, dict]:
    """Statistics of every split; unknown tokens are judged against the ``ONE_HOT_WORDS``
    (1,998) most frequent words of the ``train`` split."""
    known = {word for word, _ in most_frequent(counters["train"].words)[:ONE_HOT_WORDS]}
    return {split: counter.summary(known) for split, counter in counters.items()}


def length_summary(lengths: Mapping[int, int]) -> dict[str, float | None]:
    """min, max, mean, p25, median and p75 of a length histogram (``length -> occurrences``).

    Percentiles use numpy's default (linear) interpolation on the expanded sample; all values
    are ``None`` for an empty histogram.
    """
    total = sum(lengths.values())
    if not total:
        return dict.fromkeys(("min", "max", "mean", "p25", "median", "p75"))
    return {
        "min": min(lengths), "max": max(lengths),
        "mean": sum(length * n for length, n in lengths.items()) / total,
        "p25": percentile(lengths, 25), "median": percentile(lengths, 50), "p75": percentile(lengths, 75),
    }


def percentile(histogram: Mapping[int, int], q: float) -> float:
    """The ``q``-th percentile (0-100) of the sample a ``value -> occurrences`` histogram describes,
    equal to ``numpy.percentile(sample, q)`` without expanding the sample."""
    values = sorted(v for v, n in histogram.items() if n > 0)
    position = q / 100 * (sum(histogram[v] for v in values) - 1)
    low, high = math.floor(position), math.ceil(position)
    low_value = high_value = None
    seen = 0
    for value in values:
        seen += histogram[value]
        if low_value is None and seen > low:
            low_value = value
        if seen > high:
            high_value = value
            break
    return float(low_value + (high_value - low_value) * (position - low))


_ROWS = (
    ("documents", lambda s: s["documents"], "{:,}"),
    ("sentences", lambda s: s["sentences"], "{:,}"),
    ("tokens", lambda s: s["tokens"], "{:,}"),
    ("length min", lambda s: s["sentence_length"]["min"], "{:,}"),
    ("length p25", lambda s: s["sentence_length"]["p25"], "{:.1f}"),
    ("length median", lambda s: s["sentence_length"]["median"], "{:.1f}"),
    ("length mean", lambda s: s["sentence_length"]["mean"], "{:.2f}"),
    ("length p75", lambda s: s["sentence_length"]["p75"], "{:.1f}"),
    ("length max", lambda s: s["sentence_length"]["max"], "{:,}"),
    ("vocabulary", lambda s: s["vocabulary_size"], "{:,}"),
    (f"unk tokens @{ONE_HOT_CAP}", lambda s: s[f"unk_tokens_cap{ONE_HOT_CAP}"], "{:,}"),
    (f"unk share @{ONE_HOT_CAP}", lambda s: s[f"unk_share_cap{ONE_HOT_CAP}"], "{:.2%}"),
)


def format_stats(stats: dict) -> str:
    """A plain-text table of ``stats["splits"]``: one row per figure, one column per split.

    Lengths are in tokens per sentence (or paragraph); "unk" counts tokens outside the
    ``ONE_HOT_WORDS`` most frequent train words.
    """
    splits = stats["splits"]
    header = ["", *splits]
    rows = [header] + [
        [label, *(_cell(fmt, get(s)) for s in splits.values())] for label, get, fmt in _ROWS
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join([row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])])
        for row in rows
    )


def _cell(fmt: str, value) -> str:
    return "-" if value is None else fmt.format(value)
