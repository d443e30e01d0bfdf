"""Scoring a trained autoencoder on held-out sentences against the original words.

Every figure counts real tokens of the (seq_len-truncated) original sentence, except BLEU. A
position is right only when the decoded word *is* the original word: a UNK output is always wrong,
and so is any output for a word outside the model's vocabulary, which the model cannot represent at
all. BLEU (sacreBLEU) scores what the model writes, at most seq_len words, against the *whole*
original sentence, so a truncated sentence pays the brevity penalty for the words it lost.

Sentences are scored in length-bucketed batches (:mod:`autoencoder.data.batches`, file order within
each window); each batch's original words are read back from the file for BLEU and the lengths.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from keras import ops
from sacrebleu.metrics import BLEU
from scipy.stats import skew

from autoencoder.backends import current as current_backend
from autoencoder.data.batches import Bucketing, batch_ids, plan_epoch
from autoencoder.data.sentences import EncodedSentences
from autoencoder.model.losses import l2_normalize
from autoencoder.model.network import SentenceAutoencoder
from autoencoder.data.vocab import PAD_ID, UNK_ID, Vocabulary
from embeddings.core.progress import progress_bar

LENGTH_BUCKETS = ((1, 5), (6, 10), (11, 20), (21, 30), (31, 50), (51, None))


def bucket_label(low: int, high: int | None) -> str:
    return f"{low}+" if high is None else f"{low}-{high}"


@dataclass
class _Tally:
    """Running sums for one model; ``finish`` turns them into the report's figures."""

    tokens: int = 0
    correct: int = 0
    covered: int = 0
    in_cap: np.ndarray = field(default_factory=lambda: np.zeros(2, dtype=np.int64))
    in_cap_correct: np.ndarray = field(default_factory=lambda: np.zeros(2, dtype=np.int64))
    sentences: int = 0
    exact: int = 0
    truncated_tokens: int = 0
    bucket_tokens: np.ndarray = field(default_factory=lambda: np.zeros(len(LENGTH_BUCKETS), np.int64))
    bucket_correct: np.ndarray = field(default_factory=lambda: np.zeros(len(LENGTH_BUCKETS), np.int64))
    cosine_sum: float = 0.0
    cosine_count: int = 0
    top5_correct: int = 0
    norm_sum: float = 0.0
    references: list = field(default_factory=list)  # whole original sentences (token lists)
    hypotheses: list = field(default_factory=list)  # what the model writes (token lists)
    output_counts: np.ndarray | None = None  # how often each id is the output at real tokens

    def add(self, ids: np.ndarray, top: np.ndarray, cosine: np.ndarray, norm: np.ndarray,
            cap_ids: np.ndarray, full_lengths: np.ndarray, vectors: bool) -> None:
        """Count one batch: ``ids`` (batch, width) the original ids, ``top`` (batch, width, k)
        the decoded ids, best first, ``cosine`` and ``norm`` (batch, width) output-target
        cosines and output norms (used when ``vectors``), ``cap_ids`` the ids under the capped
        vocabulary, ``full_lengths`` (batch,) the sentences' lengths before truncation."""
        predicted, real = top[..., 0], ids != PAD_ID
        right = (predicted == ids) & (ids != UNK_ID) & real
        lengths = real.sum(axis=1)
        self.output_counts += np.bincount(predicted[real], minlength=len(self.output_counts))
        self.tokens += int(real.sum())
        self.correct += int(right.sum())
        self.covered += int((real & (ids != UNK_ID)).sum())
        inside = cap_ids != UNK_ID
        for j, region in enumerate((inside & real, ~inside & real)):
            self.in_cap[j] += int(region.sum())
            self.in_cap_correct[j] += int((right & region).sum())
        self.sentences += len(ids)
        self.exact += int((right.sum(axis=1) == lengths).sum())
        self.truncated_tokens += int((full_lengths - lengths).sum())
        for b, (low, high) in enumerate(LENGTH_BUCKETS):
            chosen = (full_lengths >= low) & (full_lengths <= (high or np.inf))
            self.bucket_tokens[b] += int(real[chosen].sum())
            self.bucket_correct[b] += int(right[chosen].sum())
        if vectors:
            known = real & (ids != UNK_ID)
            self.cosine_sum += float(cosine[known].sum())
            self.cosine_count += int(known.sum())
            self.norm_sum += float(norm[real].sum(dtype=np.float64))
            self.top5_correct += int(((top == ids[..., None]).any(-1) & known).sum())


def score_autoencoder(
    ae: SentenceAutoencoder, path: Path, cap_vocab: Vocabulary, *,
    keep: np.ndarray | None = None, sample_rows: tuple[int, ...] = (),
    bucketing: Bucketing | None = Bucketing(),
) -> tuple[dict, dict[int, list[str]]]:
    """Score ``ae`` on the sentences of ``path`` (optionally those of the ``keep`` mask).

    Parameters
    ----------
    cap_vocab : the capped vocabulary that splits tokens into inside / outside the cap.
    sample_rows : sentence numbers (file order, ``keep`` applied) whose reconstructions are
        returned.
    bucketing : how batches are grouped by length; None pads all to ``seq_len``.

    Returns
    -------
    metrics : dict of figures (see the README's metric glossary).
    samples : {row: reconstructed words} for ``sample_rows``.
    """
    seq_len, words = ae.config.seq_len, np.array(ae.vocab.words, dtype=object)
    k = 5 if ae.config.kind == "embedding" else 1
    step = current_backend().compile_forward(ae, functools.partial(_position_figures, ae),
                                             rows=ae.eval_rows)
    wanted = set(sample_rows)
    tally, samples = _Tally(output_counts=np.zeros(len(ae.vocab), np.int64)), {}
    started = time.perf_counter()
    sentences = EncodedSentences.encode(path, ae.vocab, seq_len, keep=keep)
    plan = plan_epoch(sentences.lengths, ae.eval_rows, seq_len, bucketing=bucketing)
    for batch, ids in progress_bar(zip(plan, batch_ids(sentences, plan)), total=len(plan),
                                   desc="scoring", unit="batch", leave=False):
        outputs, cosine, norm = step(ids)
        lines = sentences.tokens(batch.rows)
        cap_ids = np.stack([cap_vocab.encode(tokens, batch.width) for tokens in lines])
        top, _ = ae.decode(outputs, k)
        tally.add(ids, top, cosine, norm, cap_ids, np.array([len(tokens) for tokens in lines]),
                  ae.config.kind == "embedding")
        hypothesis = words[top[..., 0]]
        for i, (row, tokens) in enumerate(zip(batch.rows, lines)):
            tally.references.append(tokens)  # the whole sentence: truncation costs BLEU
            tally.hypotheses.append(list(hypothesis[i, : min(len(tokens), seq_len)]))
            if row in wanted:
                samples[int(row)] = tally.hypotheses[-1]
    metrics = _finish(tally, time.perf_counter() - started, ae.config.kind)
    # A collapsed model writes a few words everywhere: how many distinct, and the commonest.
    top = int(tally.output_counts.argmax())
    metrics.update(distinct_outputs=int((tally.output_counts > 0).sum()), top_output=words[top],
                   top_output_share=_share(int(tally.output_counts[top]), tally.tokens),
                   hubness_skew=(hubness_skew(tally.output_counts) if ae.config.kind == "embedding"
                                 else None))
    return metrics, samples


def _position_figures(ae: SentenceAutoencoder, ids, outputs) -> tuple:
    """cosine(output, target) and the output's L2 norm per position for the embedding kind
    (zeros for onehot), each of shape (batch, width)."""
    if ae.config.kind != "embedding":
        zeros = ops.zeros(ops.shape(ids))
        return zeros, zeros
    return (ops.sum(l2_normalize(outputs) * ae.inputs(ids), axis=-1),
            ops.sqrt(ops.sum(ops.square(outputs), axis=-1)))


def hubness_skew(output_counts: np.ndarray) -> float | None:
    """Skewness (population, ``scipy.stats.skew``) of the k-occurrence distribution N_1: for
    every word of the vocabulary but PAD and UNK, zeros included, how often it is the top-1
    output (``output_counts``, indexed by id). A few hub words written everywhere skew it to the
    right (Radovanovic et al. 2010); None when it is undefined (fewer than two words, or every
    word written equally often, none included)."""
    n1 = np.delete(np.asarray(output_counts, dtype=np.float64), [PAD_ID, UNK_ID])
    if n1.size < 2 or n1.min() == n1.max():
        return None
    return float(skew(n1))


def corpus_bleu(references: list[list[str]], hypotheses: list[list[str]]) -> tuple[float | None, str | None]:
    """sacreBLEU's corpus BLEU of token-list ``hypotheses`` against ``references`` (one each),
    on a 0-1 scale (sacreBLEU's score / 100), and its signature; (None, None) for no sentences.

    The texts are seqae's own tokens, joined with spaces: ``tokenize="none"`` scores those very
    tokens (sacreBLEU's 13a tokenizer would split them again), and ``force`` silences its warning
    that the hypotheses look tokenized, which they are by design. Default smoothing ("exp"), no
    effective order, as for corpus BLEU.
    """
    if not references:
        return None, None
    bleu = BLEU(tokenize="none", force=True)
    score = bleu.corpus_score([" ".join(h) for h in hypotheses], [[" ".join(r) for r in references]])
    return score.score / 100, str(bleu.get_signature())


def _share(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def _finish(t: _Tally, seconds: float, kind: str) -> dict:
    bleu, signature = corpus_bleu(t.references, t.hypotheses)
    metrics = {
        "sentences": t.sentences,
        "tokens": t.tokens,
        "token_accuracy": _share(t.correct, t.tokens),
        "token_accuracy_in_cap": _share(t.in_cap_correct[0], t.in_cap[0]),
        "token_accuracy_out_of_cap": _share(t.in_cap_correct[1], t.in_cap[1]),
        "out_of_cap_share": _share(t.in_cap[1], t.tokens),
        "exact_sentence_rate": _share(t.exact, t.sentences),
        "bleu4": bleu,
        "bleu_signature": signature,
        "coverage": _share(t.covered, t.tokens),
        "truncated_token_share": _share(t.truncated_tokens, t.tokens + t.truncated_tokens),
        "accuracy_by_length": {
            bucket_label(*bounds): _share(c, n)
            for bounds, c, n in zip(LENGTH_BUCKETS, t.bucket_correct, t.bucket_tokens)
        },
        "eval_tokens_per_s": _share(t.tokens, seconds),
        "mean_cosine": _share(t.cosine_sum, t.cosine_count) if kind == "embedding" else None,
        "top5_accuracy": _share(t.top5_correct, t.tokens) if kind == "embedding" else None,
        "mean_output_norm": _share(t.norm_sum, t.tokens) if kind == "embedding" else None,
    }
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in metrics.items()}
