"""Sampled softmax: exact with every id as a negative, unbiased in the exp domain, and a
one-hot model over the whole vocabulary that trains, resumes and is scored like the others."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import ops

from autoencoder.config import AutoencoderConfig
from autoencoder.data.batches import OUTPUT_BYTES, eval_rows
from autoencoder.model.sampled import LogUniformSampler, sampled_softmax_ce
from embeddings.store.errors import SeqaeError
from tests.conftest import TINY_AE, assert_clean_error, invoke, read_json

RNG = np.random.default_rng(0)
V, D = 60, 8
KERNEL = RNG.standard_normal((D, V)).astype(np.float32)
BIAS = RNG.standard_normal(V).astype(np.float32)
HIDDEN = RNG.standard_normal((3, 4, D)).astype(np.float32)
IDS = RNG.integers(0, V, (3, 4)).astype(np.int32)


def full_softmax(hidden, kernel, bias, ids):
    """Loss and gradients (hidden, kernel, bias) of the full softmax cross-entropy, float64."""
    hidden, kernel, bias = (np.asarray(x, np.float64) for x in (hidden, kernel, bias))
    logits = hidden @ kernel + bias
    top = logits.max(-1, keepdims=True)
    log_z = np.log(np.exp(logits - top).sum(-1)) + top[..., 0]
    loss = log_z - np.take_along_axis(logits, ids[..., None], -1)[..., 0]
    delta = np.exp(logits - log_z[..., None])
    np.put_along_axis(delta, ids[..., None], np.take_along_axis(delta, ids[..., None], -1) - 1, -1)
    flat_h, flat_d = hidden.reshape(-1, hidden.shape[-1]), delta.reshape(-1, delta.shape[-1])
    return loss, (delta @ kernel.T, flat_h.T @ flat_d, flat_d.sum(0))


def value_and_grads(fn, *args):
    """``fn(*args)`` (a scalar) and its gradients, by the backend's own autodiff."""
    if keras.backend.backend() == "jax":
        import jax

        return jax.value_and_grad(fn, argnums=tuple(range(len(args))))(*args)
    import tensorflow as tf

    variables = [tf.Variable(a) for a in args]
    with tf.GradientTape() as tape:
        value = fn(*variables)
    return value, tape.gradient(value, variables)


@pytest.mark.backend
def test_with_every_id_as_a_negative_loss_and_gradients_are_the_full_softmax():
    every, zero = np.arange(V, dtype=np.int32), np.zeros(V, np.float32)  # K q = 1: no correction

    def total(hidden, kernel, bias):
        return ops.sum(sampled_softmax_ce(hidden, kernel, bias, IDS, every, zero))

    value, grads = value_and_grads(total, HIDDEN, KERNEL, BIAS)
    losses = ops.convert_to_numpy(sampled_softmax_ce(HIDDEN, KERNEL, BIAS, IDS, every, zero))
    loss, reference = full_softmax(HIDDEN, KERNEL, BIAS, IDS)
    np.testing.assert_allclose(losses, loss, rtol=1e-5, atol=1e-5)
    assert float(value) == pytest.approx(loss.sum(), rel=1e-5)
    for got, want in zip(grads, reference):
        np.testing.assert_allclose(ops.convert_to_numpy(ops.convert_to_tensor(got)), want,
                                   rtol=1e-5, atol=1e-5)


def test_a_target_drawn_as_a_negative_is_left_out():
    """An accidental hit changes nothing: drawing the target once more among the negatives,
    with any correction, gives the loss of the negatives without it."""
    ids = np.array([[5]], np.int32)
    hidden = HIDDEN[:1, :1]
    others = np.array([1, 9, 30], np.int32)
    log_q = np.array([0.3, -1.0, 2.0], np.float32)
    without = sampled_softmax_ce(hidden, KERNEL, BIAS, ids, others, log_q)
    with_hit = sampled_softmax_ce(hidden, KERNEL, BIAS, ids, np.append(others, 5).astype(np.int32),
                                  np.append(log_q, -5.0).astype(np.float32))
    assert float(ops.convert_to_numpy(with_hit)[0, 0]) == pytest.approx(
        float(ops.convert_to_numpy(without)[0, 0]), rel=1e-6)


def test_exp_of_the_sampled_loss_is_an_unbiased_estimate_and_its_bias_shrinks_with_k():
    """Seeded: over 1,000 draws, the mean of exp(L) is within 4 standard errors of exp of the
    full cross-entropy at each position; L itself is biased low, less with more negatives."""
    vocab, draws = 400, 1000
    rng = np.random.default_rng(1)
    kernel = rng.standard_normal((D, vocab)).astype(np.float32)
    bias = np.log(LogUniformSampler(vocab, 1).probability(np.arange(vocab))).astype(np.float32)
    hidden = (0.3 * rng.standard_normal((1, 5, D))).astype(np.float32)
    ids = rng.integers(0, vocab, (1, 5)).astype(np.int32)
    full = full_softmax(hidden, kernel, bias, ids)[0][0]
    gaps = []
    for k in (16, 256):
        sampler = LogUniformSampler(vocab, k)
        losses = np.stack([ops.convert_to_numpy(sampled_softmax_ce(
            hidden, kernel, bias, ids, *sampler.draw(rng)))[0] for _ in range(draws)]).astype(np.float64)
        ratio = np.exp(losses)
        error = np.abs(ratio.mean(0) - np.exp(full)) / (ratio.std(0) / np.sqrt(draws))
        assert (error < 4).all(), (k, error)
        gaps.append(full - losses.mean(0))
    assert (gaps[0] > 0).all() and (gaps[1] < gaps[0]).all(), gaps


def test_the_sampler_draws_the_log_uniform_law():
    sampler, rng = LogUniformSampler(50, 50), np.random.default_rng(2)
    ids, log_expected = (np.concatenate(parts) for parts in zip(*(sampler.draw(rng) for _ in range(4000))))
    q = sampler.probability(np.arange(50))
    assert q.sum() == pytest.approx(1.0) and (np.diff(q) < 0).all()
    counts = np.bincount(ids, minlength=50)
    expected = 200_000 * q
    assert (np.abs(counts - expected) < 5 * np.sqrt(expected)).all()
    np.testing.assert_allclose(log_expected, np.log(50 * q[ids]), rtol=1e-6)


def test_bad_sampled_settings_are_refused_in_one_line():
    with pytest.raises(SeqaeError, match="--negatives must be between 1 and the vocabulary"):
        LogUniformSampler(100, 101)
    with pytest.raises(SeqaeError, match=r"negatives \(--negatives\) must be an integer at least 1"):
        AutoencoderConfig(kind="onehot", negatives=0)
    with pytest.raises(SeqaeError, match="applies to kind onehot only"):
        AutoencoderConfig(kind="embedding", softmax="sampled")
    assert AutoencoderConfig(kind="onehot", vocab_cap=None).softmax_for(20_001) == "sampled"
    assert AutoencoderConfig(kind="onehot").softmax_for(2_000) == "full"


def test_scoring_batches_keep_a_large_softmax_within_the_output_budget():
    rows = eval_rows(50, 100_000)
    assert rows >= 1 and rows * 50 * 100_000 * 4 <= OUTPUT_BYTES
    assert eval_rows(20, 300) == 256


@pytest.mark.parametrize("args, message", [
    (["--kind", "onehot", "--softmax", "sampled", "--negatives", "0"], "--negatives"),
    (["--kind", "onehot", "--softmax", "sampled", "--negatives", "100000"], "--negatives"),
    (["--kind", "embedding", "--softmax", "sampled"], "softmax (--softmax) sampled applies to kind onehot"),
    (["--kind", "onehot", "--loss", "vmf"], "loss (--loss) vmf does not fit kind (--kind) onehot"),
    (["--kind", "onehot", "--vocab-cap", "two"], "--vocab-cap"),
])
def test_bad_sampled_options_leave_the_run_as_it_was(tiny_run, args, message):
    from tests.conftest import snapshot, unchanged_but_lock

    before = snapshot(tiny_run)
    result = invoke("train-ae", "--run", tiny_run, *args, *TINY_AE)
    assert_clean_error(result, message)
    assert unchanged_but_lock(before, snapshot(tiny_run))


@pytest.mark.backend
def test_a_sampled_model_over_the_whole_vocabulary_trains_resumes_and_is_scored(tiny_run):
    name = "onehot-sampled"
    common = ["--run", tiny_run, "--kind", "onehot", "--vocab-cap", "none", "--softmax",
              "sampled", "--negatives", "16", "--name", name, "--seq-len", "8", "--latent", "8",
              "--batch-size", "32", "--val-sentences", "20"]
    result = invoke("train-ae", *common, "--epochs", "1")
    assert result.exit_code == 0, result.output
    result = invoke("train-ae", *common, "--epochs", "2", "--resume")
    assert result.exit_code == 0, result.output
    model = tiny_run / "models" / name
    config = read_json(model / "config.json")
    kv_words = (tiny_run / "embeddings" / "vocab.tsv").read_text().count("\n")
    assert config["vocab_size"] == kv_words + 2  # the whole word2vec vocabulary
    assert config["autoencoder"]["softmax"] == "sampled"
    assert read_json(model / "state.json")["epoch"] == 2
    result = invoke("compare", "--run", tiny_run, "--models", name)
    assert result.exit_code == 0, result.output
    report = read_json(tiny_run / "compare" / "report.json")
    assert 0 <= report["models"][name]["token_accuracy"] <= 1
    assert invoke("reconstruct", "--run", tiny_run, "--model", name, "the cat").exit_code == 0
