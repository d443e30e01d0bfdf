"""``score_autoencoder``'s BLEU (sacreBLEU against the whole original sentence) and its figures
about the output vectors (mean norm, hubness), on models whose reconstruction is known."""

from __future__ import annotations

import math

import numpy as np
import pytest
from keras import ops
from scipy.stats import skew

from autoencoder.data.vocab import PAD_ID, UNK_ID, Vocabulary
from autoencoder.scoring import corpus_bleu, hubness_skew, score_autoencoder
from tests.conftest import SEQ_LEN, WORDS, make_ae

# Words w2..w17: inside the onehot model's cap of 20 (PAD, UNK and w0..w17) and the embedding
# model's vocabulary; every sentence no longer than SEQ_LEN (8), one of at least 4 words.
SHORT = [["w2", "w3", "w4", "w5", "w6"], ["w7", "w8", "w9"], ["w3", "w3", "w10", "w11", "w12", "w13",
                                                              "w14", "w15"], ["w16"]]
LONG = ["w2", "w4", "w6", "w8", "w10", "w12", "w14", "w16", "w3", "w5"]  # 10 words > SEQ_LEN
NORM = 3.0


def _write(path, sentences):
    path.write_text("".join(" ".join(s) + "\n" for s in sentences), encoding="utf-8")
    return path


def _perfect(vectors, kind, loss=None):
    """A model whose reconstruction is its input: the unit input vectors scaled by NORM for the
    embedding kind (their nearest neighbours are the words themselves), one-hot rows for onehot."""
    ae = make_ae(vectors, kind, loss=loss)
    if kind == "embedding":
        ae.reconstruct = lambda ids: NORM * ae.inputs(ids)
    else:
        ae.reconstruct = lambda ids: ops.one_hot(ids, len(ae.vocab))
    return ae


def _score(ae, path, **options):
    return score_autoencoder(ae, path, Vocabulary(WORDS), **options)


@pytest.mark.parametrize("kind", ["embedding", "onehot"])
def test_a_perfect_reconstruction_of_short_sentences_has_bleu_one(vectors, tmp_path, kind):
    metrics, samples = _score(_perfect(vectors, kind), _write(tmp_path / "s.txt", SHORT),
                              sample_rows=(0, 2))
    assert metrics["exact_sentence_rate"] == 1.0
    assert metrics["bleu4"] == pytest.approx(1.0, abs=1e-12)
    assert samples == {0: SHORT[0], 2: SHORT[2]}  # the model's words


@pytest.mark.parametrize("kind", ["embedding", "onehot"])
def test_a_truncated_sentence_pays_the_brevity_penalty_against_its_whole_reference(
        vectors, tmp_path, kind):
    sentences = SHORT + [LONG]
    metrics, samples = _score(_perfect(vectors, kind), _write(tmp_path / "s.txt", sentences),
                              sample_rows=(4,))
    assert metrics["exact_sentence_rate"] == 1.0  # right at every position it writes
    assert samples[4] == LONG[:SEQ_LEN]  # it writes seq_len words
    written = sum(min(len(s), SEQ_LEN) for s in sentences)
    whole = sum(len(s) for s in sentences)
    # Every n-gram precision is 1: BLEU is the brevity penalty exp(1 - reference / hypothesis).
    assert metrics["bleu4"] == pytest.approx(math.exp(1 - whole / written), rel=1e-9)
    assert metrics["bleu4"] < 0.95  # the old, truncated reference gave 1
    assert metrics["truncated_token_share"] == pytest.approx((whole - written) / whole)


def test_bleu_is_sacrebleu_on_seqaes_own_tokens_with_its_signature(vectors, tmp_path):
    metrics, _ = _score(_perfect(vectors, "embedding"), _write(tmp_path / "s.txt", SHORT))
    signature = metrics["bleu_signature"]
    for part in ("nrefs:1", "case:mixed", "eff:no", "tok:none", "smooth:exp", "version:2."):
        assert part in signature, signature
    # Tokens are scored as they are: "a,b" is one token, which sacreBLEU's default tokenizer
    # (13a) would split into "a , b", scoring this hypothesis 1.
    assert corpus_bleu([["a,b", "c", "d", "e", "f"]], [["a", ",", "b", "c", "d", "e", "f"]])[0] < 0.9
    assert corpus_bleu([], []) == (None, None)


def test_mean_output_norm_is_the_norm_of_the_raw_outputs_at_real_tokens(vectors, tmp_path):
    path = _write(tmp_path / "s.txt", SHORT + [LONG])
    metrics, _ = _score(_perfect(vectors, "embedding"), path)
    assert metrics["mean_output_norm"] == pytest.approx(NORM, rel=1e-5)  # PAD's zeros left out
    assert _score(_perfect(vectors, "onehot"), path)[0]["mean_output_norm"] is None


@pytest.mark.parametrize("loss", ["cosine", "vmf"])
def test_mean_output_norm_is_positive_and_finite_for_an_embedding_model(vectors, tmp_path, loss):
    metrics, _ = _score(make_ae(vectors, "embedding", loss=loss), _write(tmp_path / "s.txt", SHORT))
    assert 0 < metrics["mean_output_norm"] < math.inf
    assert math.isfinite(metrics["hubness_skew"])


def test_hubness_skew_is_the_skewness_of_the_top1_counts_over_the_vocabulary(vectors, tmp_path):
    sentences = SHORT + [LONG]
    metrics, _ = _score(_perfect(vectors, "embedding"), _write(tmp_path / "s.txt", sentences))
    vocab = Vocabulary(WORDS)
    # Perfect: each word is the top-1 output as often as it occurs in the truncated sentences.
    counts = np.zeros(len(vocab), np.int64)
    for sentence in sentences:
        for word in sentence[:SEQ_LEN]:
            counts[vocab.words.index(word)] += 1
    n1 = [c for i, c in enumerate(counts) if i not in (PAD_ID, UNK_ID)]
    assert len(n1) == len(WORDS)  # every word, those never written (zeros) included
    assert metrics["hubness_skew"] == pytest.approx(skew(n1), rel=1e-9)
    assert metrics["top_output_share"] == pytest.approx(max(n1) / sum(n1))
    assert _score(_perfect(vectors, "onehot"), tmp_path / "s.txt")[0]["hubness_skew"] is None


def test_hubness_skew_by_hand():
    counts = np.array([7, 3, 10, 0, 0, 1, 0])  # PAD and UNK's counts (7, 3) are left out
    n1 = np.array([10, 0, 0, 1, 0], float)
    centred = n1 - n1.mean()
    expected = (centred ** 3).mean() / (centred ** 2).mean() ** 1.5  # population skewness
    assert hubness_skew(counts) == pytest.approx(expected)
    assert hubness_skew(counts) > 1  # one hub
    assert hubness_skew(np.array([0, 0, 4, 4, 4])) is None  # no spread: undefined
    assert hubness_skew(np.array([5, 5, 0, 0])) is None
