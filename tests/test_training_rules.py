"""The rules a fair comparison trains by: an equal number of sentence-passes (``max_seen``),
no early stopping before a minimum (``min_seen``), checkpoints chosen by validation token
accuracy (``monitor``), and a one-hot baseline started from the same word2vec vectors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from autoencoder.training.checkpoints import sentences_seen
from tests.conftest import WORDS, assert_clean_error, fit, invoke, make_ae, tiny_ae


def test_max_seen_ends_training_at_the_step_that_crosses_it(vectors, splits, tmp_path):
    """200 training sentences an epoch, batches of 32: 300 sentence-passes end in epoch 2 at
    the step that crosses 300, which is validated and checkpointed as a whole epoch."""
    trainer = fit(make_ae(vectors), splits, tmp_path / "m", epochs=10, max_seen=300, patience=0)
    seen = sentences_seen(trainer.history_)
    assert trainer.state_.stopped == "seen" and trainer.state_.epoch == 2
    assert 300 <= seen < 300 + 32
    # Asking for more goes on from there, and stops at the new budget.
    more = fit(make_ae(vectors), splits, tmp_path / "m", resume=True, epochs=10, max_seen=500,
               patience=0)
    assert more.state_.stopped == "seen" and 500 <= sentences_seen(more.history_) < 532


def test_a_resumed_run_already_past_its_limit_says_so(vectors, splits, tmp_path):
    """Stopped by the epoch limit, then resumed under a --max-seen it has already passed: no
    epoch runs, and state.json now gives that limit as the reason."""
    fit(make_ae(vectors), splits, tmp_path / "m", epochs=2, patience=0)
    again = fit(make_ae(vectors), splits, tmp_path / "m", resume=True, epochs=10, max_seen=100,
                patience=0)
    assert again.state_.epoch == 2 and again.state_.stopped == "seen"
    assert json.loads((tmp_path / "m" / "state.json").read_text())["stopped"] == "seen"


def test_min_seen_holds_early_stopping_back(vectors, splits, tmp_path):
    """Patience 1 with a learning rate of zero stops after epoch 2 (nothing improves); a
    minimum of 800 sentence-passes (four epochs of 200) keeps it going to epoch 4."""
    quick = fit(make_ae(vectors), splits, tmp_path / "a", epochs=8, patience=1, lr=1e-12)
    held = fit(make_ae(vectors), splits, tmp_path / "b", epochs=8, patience=1, lr=1e-12,
               min_seen=800)
    assert quick.state_.stopped == held.state_.stopped == "early-stop"
    assert quick.state_.epoch == 2 and held.state_.epoch == 4


def test_monitor_val_token_accuracy_keeps_the_most_accurate_epoch(vectors, splits, tmp_path):
    trainer = fit(make_ae(vectors), splits, tmp_path / "m", epochs=4, patience=0,
                  monitor="val_token_accuracy")
    accuracies = [row["val_token_accuracy"] for row in trainer.history_]
    best = trainer.state_.best_epoch
    assert accuracies[best - 1] == max(accuracies)
    assert accuracies.index(max(accuracies)) == best - 1  # the first epoch that reached it
    assert trainer.state_.best_val_accuracy == max(accuracies)
    assert trainer.state_.best_val_loss == min(row["val_loss"] for row in trainer.history_)
    saved = json.loads((tmp_path / "m" / "state.json").read_text())
    assert saved["best_val_accuracy"] == max(accuracies)


def test_a_state_with_an_impossible_accuracy_is_refused():
    from autoencoder.training.checkpoints import state_problem

    state = {"epoch": 2, "best_epoch": 1, "best_val_loss": 1.0, "wait": 0, "nan_events": 0,
             "best_val_accuracy": 1.5}
    assert "best_val_accuracy" in state_problem(state)
    assert state_problem({**state, "best_val_accuracy": 0.5}) is None


def test_init_from_vectors_starts_the_one_hot_projection_from_the_word_vectors(vectors):
    from autoencoder.model.network import unit_vectors, vocabulary_vectors

    ae = make_ae(vectors, kind="onehot", init_from_vectors=True)
    table = vocabulary_vectors(ae.vocab, WORDS, vectors)
    ae.init_projection(table)
    weights = np.asarray(ae.model.get_layer("onehot_projection").embeddings)
    unit = unit_vectors(vectors)
    # Each capped id's row is its word's centred unit vector; PAD's is zero.
    for word in ae.vocab.words[2:]:
        assert np.allclose(weights[ae.vocab.index[word]], unit[WORDS.index(word) + 2], atol=1e-6)
    assert not weights[0].any() and np.allclose(weights[1], unit[1])
    with pytest.raises(Exception, match="does not fit"):
        ae.init_projection(table[:-1])


def test_init_from_vectors_is_the_onehot_kinds_only():
    from autoencoder import AutoencoderConfig

    assert AutoencoderConfig(kind="onehot").init_from_vectors is False
    assert AutoencoderConfig(kind="embedding", init_from_vectors=True).init_from_vectors is None


def test_train_ae_init_from_vectors_uses_the_runs_vectors(tiny_run):
    """``pipe train-ae --init-from-vectors``: the projection's rows at the start are the run's
    word2vec vectors (a learning rate of ~0 leaves them where they started)."""
    from autoencoder.model.network import unit_vectors
    from embeddings.store.rundir import RunDir
    from pipelines.embed import load_embeddings
    from pipelines.models import load_autoencoder

    result = invoke("train-ae", "--run", tiny_run, "--kind", "onehot", "--init-from-vectors",
                    "--lr", "1e-12", "--name", "w2v", *tiny_ae(1))
    assert result.exit_code == 0, result.output
    kv = load_embeddings(tiny_run)
    ae, _ = load_autoencoder(RunDir(tiny_run), "w2v", kv.vectors)
    word = ae.vocab.words[5]
    row = np.asarray(ae.model.get_layer("onehot_projection").embeddings)[5]
    expected = unit_vectors(kv.vectors)[kv.key_to_index[word] + 2]
    assert np.allclose(row, expected, atol=1e-4)
    assert_clean_error(invoke("train-ae", "--run", tiny_run, "--monitor", "bogus"), "--monitor")
