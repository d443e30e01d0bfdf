"""Intrinsic evaluation of word vectors on the benchmarks gensim ships.

WordSim-353 and SimLex-999 (Spearman and Pearson correlation of cosine similarity with human
judgements) and Mikolov et al.'s analogy questions (3CosAdd accuracy). Pairs or questions with
a word outside the vocabulary are skipped; ``oov_share`` is the share skipped.
"""

from __future__ import annotations

import contextlib
import logging
import math
import warnings

from gensim.models import KeyedVectors
from gensim.test.utils import datapath

from embeddings.store.schema import Fields

log = logging.getLogger(__name__)

SIMILARITY_SETS = {"wordsim353": "wordsim353.tsv", "simlex999": "simlex999.txt"}
ANALOGY_SET = "questions-words.txt"
_SIMILARITY = Fields({"spearman": (float, None), "pearson": (float, None), "oov_share": float,
                      "pairs": int})
# eval.json: what evaluate_vectors returns.
EVAL_SCHEMA = Fields({**{name: _SIMILARITY for name in SIMILARITY_SETS},
                      "analogy": Fields({"accuracy": (float, None), "oov_share": float,
                                         "questions": int, "sections": int})},
                     name="word-vector evaluation")
_MIN_PAIRS = 3  # fewer in-vocabulary pairs give no meaningful correlation (scipy refuses under 2)


def evaluate_vectors(kv: KeyedVectors) -> dict:
    """Score ``kv`` on every benchmark; the whole vocabulary takes part, case-insensitively.

    Returns ``{"wordsim353": {"spearman", "pearson", "oov_share", "pairs"}, "simlex999": {...},
    "analogy": {"accuracy", "oov_share", "questions", "sections"}}``; a figure that cannot be
    computed (too few in-vocabulary items) is ``None``. Shares are fractions in [0, 1].
    """
    restrict = max(len(kv), 1)
    results = {}
    with _quiet_gensim():
        for name, filename in SIMILARITY_SETS.items():
            results[name] = _similarity(kv, datapath(filename), restrict)
        results["analogy"] = _analogy(kv, datapath(ANALOGY_SET), restrict)
    return results


def _similarity(kv: KeyedVectors, path: str, restrict: int) -> dict:
    known = {str(word).upper() for word in kv.index_to_key}
    pairs = _read_pairs(path)
    inside = sum(a in known and b in known for a, b in pairs)
    figures = {"spearman": None, "pearson": None, "oov_share": 1 - inside / len(pairs), "pairs": inside}
    if inside >= _MIN_PAIRS:
        pearson, spearman, _ = kv.evaluate_word_pairs(path, restrict_vocab=restrict, case_insensitive=True)
        figures.update(spearman=_number(spearman.statistic), pearson=_number(pearson.statistic))
    return figures


def _analogy(kv: KeyedVectors, path: str, restrict: int) -> dict:
    _, sections = kv.evaluate_word_analogies(path, restrict_vocab=restrict, case_insensitive=True)
    total = sections.pop()  # gensim appends the overall section last
    answered = len(total["correct"]) + len(total["incorrect"])
    asked = _count_questions(path)
    return {
        "accuracy": len(total["correct"]) / answered if answered else None,
        "oov_share": 1 - answered / asked,
        "questions": answered,
        "sections": sum(1 for s in sections if s["correct"] or s["incorrect"]),
    }


def _read_pairs(path: str) -> list[tuple[str, str]]:
    """The word pairs of a similarity benchmark, upper-cased as gensim compares them."""
    with open(path, encoding="utf-8") as handle:
        rows = [line.split("\t") for line in handle if line.strip() and not line.startswith("#")]
    return [(row[0].upper(), row[1].upper()) for row in rows]


def _count_questions(path: str) -> int:
    with open(path, encoding="utf-8") as handle:
        return sum(1 for line in handle if line.strip() and not line.startswith(":"))


def _number(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


@contextlib.contextmanager
def _quiet_gensim():
    # gensim logs every skipped out-of-vocabulary pair at INFO (hundreds of lines per benchmark),
    # and scipy warns on constant similarities, which we report as a None correlation.
    logger = logging.getLogger("gensim.models.keyedvectors")
    level = logger.level
    logger.setLevel(max(logging.WARNING, level))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            yield
    finally:
        logger.setLevel(level)


def format_evaluation(results: dict) -> str:
    """A plain-text table of :func:`evaluate_vectors` results."""
    def cell(value, fmt):
        return "-" if value is None else fmt.format(value)

    lines = [f"{'benchmark':<12}{'score':>22}{'items':>8}{'OOV':>8}"]
    for name in SIMILARITY_SETS:
        r = results[name]
        score = f"rho {cell(r['spearman'], '{:.3f}')} r {cell(r['pearson'], '{:.3f}')}"
        lines.append(f"{name:<12}{score:>22}{r['pairs']:>8}{r['oov_share']:>8.1%}")
    r = results["analogy"]
    score = f"acc {cell(r['accuracy'], '{:.3f}')} ({r['sections']} sect.)"
    lines.append(f"{'analogy':<12}{score:>22}{r['questions']:>8}{r['oov_share']:>8.1%}")
    return "\n".join(lines)
