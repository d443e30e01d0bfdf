"""Stage two on tiny synthetic data: shapes, masking, decoding, vocabularies, training loop."""

from __future__ import annotations

import shutil

import keras
import numpy as np
import pytest
from keras import ops

from autoencoder import PAD_ID, UNK_ID, NearestNeighbourDecoder, NonFiniteLossError, Vocabulary
from autoencoder.data.batches import Bucketing, batch_ids, padding_share, plan_epoch
from autoencoder.data.sentences import EncodedSentences, count_lines, sample_mask
from autoencoder.training.checkpoints import read_history
from embeddings.store.errors import SeqaeError
from tests.conftest import DIM, LATENT, SEQ_LEN, WORDS, fit, make_ae, read_json


def loss_and_grads(loss_fn, variables):
    """``loss_fn()`` and its gradients with respect to ``variables``, on the running backend."""
    if keras.backend.backend() == "jax":
        import jax

        def stateless(values):
            with keras.StatelessScope(state_mapping=list(zip(variables, values))):
                return loss_fn()

        loss, grads = jax.value_and_grad(stateless)([v.value for v in variables])
    else:
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = loss_fn()
        grads = tape.gradient(loss, variables)
    return float(loss), [ops.convert_to_numpy(ops.convert_to_tensor(g)) for g in grads]


@pytest.mark.backend
@pytest.mark.parametrize("kind", ["embedding", "onehot", "classic"])
def test_output_shapes(vectors, kind):
    ae = make_ae(vectors, kind)
    ids = ops.convert_to_tensor(np.array([[2, 3, 4, 0, 0, 0, 0, 0], [5, 1, 0, 0, 0, 0, 0, 0]],
                                         dtype=np.int32))
    outputs = ae.model(ae.inputs(ids))
    width = DIM if kind == "embedding" else 20
    assert outputs.shape == (2, SEQ_LEN, width)
    assert ae.token_loss(ids, outputs).shape == (2, SEQ_LEN)
    top, scores = ae.decode(ops.convert_to_numpy(outputs), k=3)
    assert top.shape == scores.shape == (2, SEQ_LEN, 3)
    assert (np.diff(scores, axis=-1) <= 1e-6).all()


def test_classic_model_is_the_seed_keras_model(vectors):
    """One-hot rows in (a frozen identity lookup), tanh LSTM(cap) out with no head, and Keras's
    categorical cross-entropy, which divides the outputs by their sum."""
    ae = make_ae(vectors, "classic")
    projection = ae.model.get_layer("onehot_projection")
    assert not projection.trainable
    np.testing.assert_array_equal(ops.convert_to_numpy(projection.embeddings), np.eye(20))
    decoder = ae.model.get_layer("decoder")
    assert decoder.units == 20 and decoder.activation is keras.activations.tanh
    assert ae.model.get_layer("output").count_params() == 0
    ids = ops.convert_to_tensor(np.array([[2, 3, 4, 0, 0, 0, 0, 0]], dtype=np.int32))
    outputs = ops.convert_to_numpy(ae.model(ids))
    assert np.abs(outputs).max() <= 1.0 and (outputs < 0).any()
    expected = -np.log(np.clip(outputs[0, 0, 2] / outputs[0, 0].sum(), 1e-7, 1 - 1e-7))
    loss = ops.convert_to_numpy(ae.token_loss(ids, ops.convert_to_tensor(outputs)))
    assert loss[0, 0] == pytest.approx(expected, rel=1e-5)


@pytest.mark.backend
def test_loss_ignores_padding_positions(vectors):
    """Whatever the model writes at padded positions changes neither loss nor gradients."""
    ae = make_ae(vectors)
    ids = ops.convert_to_tensor(np.array([[2, 3, 4, 0, 0, 0, 0, 0]], dtype=np.int32))
    mask = ops.cast(ids != PAD_ID, "float32")
    rng = np.random.default_rng(1)
    base = keras.Variable(rng.standard_normal((1, SEQ_LEN, DIM)).astype(np.float32))
    noise = np.concatenate([np.zeros((1, 3, DIM)), 100 * rng.standard_normal((1, 5, DIM))], 1)

    def loss_and_grad(outputs_offset):
        loss, (grad,) = loss_and_grads(
            lambda: ops.sum(ae.token_loss(ids, base + outputs_offset) * mask) / ops.sum(mask), [base])
        return loss, grad

    loss_a, grad_a = loss_and_grad(0.0)
    loss_b, grad_b = loss_and_grad(noise.astype(np.float32))
    assert loss_a == pytest.approx(loss_b)
    np.testing.assert_allclose(grad_a, grad_b)
    assert np.all(grad_a[0, 3:] == 0)


@pytest.mark.backend
@pytest.mark.parametrize("kind", ["embedding", "onehot"])
def test_encoder_ignores_padding(vectors, kind):
    """The sentence code of a padded sentence equals the code of the bare sentence."""
    ae = make_ae(vectors, kind)
    encoder = ae.model.get_layer("encoder")
    ids = ops.convert_to_tensor(np.array([[2, 3, 4, 5, 0, 0, 0, 0]], dtype=np.int32))
    front = ae.model.layers[1]  # Masking (embedding kind) or the one-hot projection
    padded = encoder(front(ae.inputs(ids)), mask=ids != PAD_ID)
    bare = encoder(front(ae.inputs(ids[:, :4])))
    np.testing.assert_allclose(ops.convert_to_numpy(padded), ops.convert_to_numpy(bare),
                               rtol=1e-5, atol=1e-6)


def test_nearest_neighbour_matches_brute_force():
    rng = np.random.default_rng(3)
    table = rng.standard_normal((500, 24)).astype(np.float32)
    queries = rng.standard_normal((300, 24)).astype(np.float32)
    decoder = NearestNeighbourDecoder(table, exclude=(0, 1), chunk_bytes=4 * 500 * 7)
    ids, scores = decoder.kneighbors(queries, k=4)
    unit = table / np.linalg.norm(table, axis=1, keepdims=True)
    for q, got_ids, got_scores in zip(queries, ids, scores):
        cos = unit @ (q / np.linalg.norm(q))
        cos[[0, 1]] = -np.inf
        expected = np.argsort(-cos)[:4]
        np.testing.assert_array_equal(got_ids, expected)
        np.testing.assert_allclose(got_scores, cos[expected], rtol=1e-5)


def test_capped_vocabulary_maps_rare_words_to_unk(caplog):
    counts = [("the", 50), ("cat", 10), ("sat", 5), ("mat", 1)]
    vocab = Vocabulary.capped(counts, 4)
    assert vocab.words == ("<pad>", "<unk>", "the", "cat")
    assert vocab.encode(["the", "mat", "cat"], 5).tolist() == [2, UNK_ID, 3, PAD_ID, PAD_ID]
    assert vocab.encode(["the"] * 9, 3).tolist() == [2, 2, 2]
    assert len(Vocabulary.capped(counts, 100)) == 6
    assert "shrinking the cap to 6" in caplog.text
    with pytest.raises(SeqaeError):
        Vocabulary.capped(counts, 2)


def test_encoded_sentences_pad_truncate_sample_and_read_back(splits, tmp_path):
    path = tmp_path / "s.txt"
    path.write_text("w0 w1 zz1\n\nw2 w3 w4 w5 w6 w7 w8 w9 w10 w11\n \t\n")
    sentences = EncodedSentences.encode(path, Vocabulary(WORDS), SEQ_LEN)
    assert np.asarray(sentences.ids).tolist() == [[2, 3, UNK_ID, 0, 0, 0, 0, 0], list(range(4, 12))]
    assert sentences.lengths.tolist() == [3, SEQ_LEN]
    assert sentences.tokens(np.array([1, 0])) == [[f"w{i}" for i in range(2, 12)], ["w0", "w1", "zz1"]]
    n = count_lines(splits / "train.txt")
    keep = sample_mask(n, 50, seed=4)
    kept = EncodedSentences.encode(splits / "train.txt", Vocabulary(WORDS), SEQ_LEN, keep=keep)
    assert (n, len(kept)) == (200, 50)
    lines = [line.split() for line in (splits / "train.txt").read_text().splitlines()]
    assert kept.tokens(np.arange(50)) == [t for t, k in zip(lines, keep) if k]
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    assert EncodedSentences.encode(empty, Vocabulary(WORDS), SEQ_LEN).ids.shape == (0, SEQ_LEN)


def test_epoch_plans_bucket_by_length_and_replay_from_the_seed():
    lengths = np.random.default_rng(0).integers(1, 31, size=1000).astype(np.int32)
    bucketing = Bucketing(window=4, multiple=8)
    first = plan_epoch(lengths, 32, 30, seed=5, bucketing=bucketing)
    again = plan_epoch(lengths, 32, 30, seed=5, bucketing=bucketing)
    other = plan_epoch(lengths, 32, 30, seed=6, bucketing=bucketing)
    assert all(np.array_equal(a.rows, b.rows) and a.width == b.width for a, b in zip(first, again))
    assert not all(np.array_equal(a.rows, b.rows) for a, b in zip(first, other))
    assert sorted(np.concatenate([b.rows for b in first]).tolist()) == list(range(1000))
    assert sorted(len(b.rows) for b in first) == [8] + [32] * 31
    assert {b.width for b in first} <= set(bucketing.widths(30)) == {8, 16, 24, 30}
    assert all(lengths[b.rows].max() <= b.width < lengths[b.rows].max() + 8 for b in first)
    fixed = plan_epoch(lengths, 32, 30, seed=5, bucketing=None)
    assert {b.width for b in fixed} == {30}
    assert padding_share(first, lengths) < padding_share(fixed, lengths) / 1.5
    in_order = plan_epoch(lengths, 32, 30, bucketing=bucketing)  # evaluation: no shuffling
    assert np.array_equal(np.concatenate([b.rows for b in in_order[:4]]),
                          np.argsort(lengths[:128], kind="stable"))


# On JAX too for the two kinds of input (vector and one-hot lookups); classic shares onehot's.
@pytest.mark.parametrize("kind", [pytest.param("embedding", marks=pytest.mark.backend),
                                  pytest.param("onehot", marks=pytest.mark.backend), "classic"])
def test_bucketed_batch_equals_the_same_sentences_at_full_width(vectors, splits, kind):
    """Outputs, loss and gradients at real tokens do not depend on the batch's width."""
    ae = make_ae(vectors, kind)
    sentences = EncodedSentences.encode(splits / "train.txt", ae.vocab, SEQ_LEN)
    plan = plan_epoch(sentences.lengths, 16, SEQ_LEN, seed=0, bucketing=Bucketing(multiple=2))
    batch, ids = min(zip(plan, batch_ids(sentences, plan)), key=lambda pair: pair[0].width)
    assert batch.width < SEQ_LEN and ids.shape == (16, batch.width)
    narrow = ops.convert_to_tensor(ids)
    full = ops.convert_to_tensor(np.asarray(sentences.ids[batch.rows]))
    mask = ops.cast(full != PAD_ID, "float32")

    def outputs_loss_and_grads(x):
        loss, grads = loss_and_grads(
            lambda: ops.sum(ae.token_loss(x, ae(x)) * mask[:, : x.shape[1]]),
            ae.model.trainable_variables)
        return ops.convert_to_numpy(ae(x)), loss, grads

    (out_n, loss_n, grads_n), (out_f, loss_f, grads_f) = (outputs_loss_and_grads(narrow),
                                                          outputs_loss_and_grads(full))
    assert out_f.shape[1] == SEQ_LEN
    real = ids != PAD_ID
    np.testing.assert_allclose(out_n[real], out_f[:, : batch.width][real], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loss_n, loss_f, rtol=1e-5)
    for g_n, g_f in zip(grads_n, grads_f):
        np.testing.assert_allclose(g_n, g_f, rtol=1e-4, atol=1e-6)
    assert ae.at_width(batch.width) is ae.at_width(batch.width)
    assert len(ae.model.weights) == len(ae.at_width(batch.width).weights)


# On JAX too for the embedding kind (the onehot kind's step is the same code).
@pytest.mark.parametrize("kind", [pytest.param("embedding", marks=pytest.mark.backend), "onehot"])
def test_training_is_deterministic_and_learns(vectors, splits, tmp_path, kind):
    a = fit(make_ae(vectors, kind), splits, tmp_path / "a", epochs=2)
    b = fit(make_ae(vectors, kind), splits, tmp_path / "b", epochs=2)
    losses = [row["train_loss"] for row in a.history_]
    assert losses == [row["train_loss"] for row in b.history_]
    assert losses[-1] < losses[0]
    for x, y in zip(a.autoencoder.model.get_weights(), b.autoencoder.model.get_weights()):
        np.testing.assert_array_equal(x, y)
    assert {p.name for p in (tmp_path / "a").iterdir()} >= {
        "best.keras", "last.keras", "history.csv", "state.json"}  # loss.png: a pipeline hook
    assert len(read_history(tmp_path / "a" / "history.csv")) == 2


@pytest.mark.backend
def test_resume_continues_where_it_stopped(vectors, splits, tmp_path):
    whole = fit(make_ae(vectors), splits, tmp_path / "whole", epochs=2)
    fit(make_ae(vectors), splits, tmp_path / "split", epochs=1)
    resumed = fit(make_ae(vectors, seed=99), splits, tmp_path / "split", epochs=2, resume=True)
    assert [r["epoch"] for r in resumed.history_] == [1, 2]
    for x, y in zip(whole.autoencoder.model.get_weights(), resumed.autoencoder.model.get_weights()):
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)


def test_resume_refuses_a_corrupt_checkpoint(vectors, splits, tmp_path):
    fit(make_ae(vectors), splits, tmp_path / "m", epochs=1)
    last = tmp_path / "m" / "last.keras"
    last.write_bytes(last.read_bytes()[:1000])
    with pytest.raises(SeqaeError, match="last.keras"):
        fit(make_ae(vectors), splits, tmp_path / "m", epochs=2, resume=True)


@pytest.mark.parametrize("eval_every", [None, 1])  # a measurement must not move the limit
def test_max_time_ends_the_epoch_at_that_step_and_resume_goes_on(vectors, splits, tmp_path,
                                                                 eval_every):
    timed = fit(make_ae(vectors), splits, tmp_path / "m", epochs=3, max_time=1e-6,
                eval_every=eval_every)
    assert timed.state_.stopped == "time" and timed.state_.epoch == 1
    (row,) = read_history(tmp_path / "m" / "history.csv")
    # One step (a batch of at most 32 sentences), then validated.
    assert 0 < row["sentences"] <= 32 and row["val_loss"] is not None
    resumed = fit(make_ae(vectors), splits, tmp_path / "m", epochs=2, resume=True)
    assert resumed.state_.stopped == "epochs"
    assert [r["sentences"] for r in resumed.history_] == [row["sentences"], 200]
    again = fit(make_ae(vectors), splits, tmp_path / "again", epochs=2, max_time=1e-6)
    for x, y in zip(timed.autoencoder.model.get_weights(), again.autoencoder.model.get_weights()):
        np.testing.assert_array_equal(x, y)


@pytest.mark.backend
@pytest.mark.parametrize("scope", ["global", "tensor"])
def test_clip_scope_clips_the_global_norm_or_each_gradient(vectors, splits, tmp_path, scope):
    """With plain SGD at lr 1 an update is minus the clipped gradient: its global norm is the
    clip norm (global) or each weight's is (tensor). (The embedding kind: a one-hot lookup's
    gradient is sparse, and its rows are clipped before duplicates are summed.)"""
    ae = make_ae(vectors)
    before = ae.model.get_weights()
    fit(ae, splits, tmp_path / scope, epochs=1, batch_size=200, optimizer="sgd", lr=1.0,
        clipnorm=1e-4, clip_scope=scope, val_sentences=1)
    norms = [np.linalg.norm(a - b) for a, b in zip(ae.model.get_weights(), before)]
    changed = [n for n in norms if n > 0]
    assert len(changed) > 3
    if scope == "global":
        assert np.sqrt(np.sum(np.square(norms))) == pytest.approx(1e-4, rel=1e-2)
    else:
        np.testing.assert_allclose(changed, 1e-4, rtol=1e-2)


@pytest.mark.backend
def test_nan_guard_restores_weights_and_saves_nothing_non_finite(vectors, splits, tmp_path):
    ae = make_ae(vectors, loss="mse")
    fit(ae, splits, tmp_path / "m", epochs=1, optimizer="sgd", lr=1e-3)
    with pytest.raises(NonFiniteLossError, match="lower --lr"):
        fit(ae, splits, tmp_path / "m", epochs=5, optimizer="sgd", lr=1000.0, clipnorm=0.0,
            resume=True)
    state = read_json(tmp_path / "m" / "state.json")
    assert state["nan_events"] == 1 and state["stopped"] == "non-finite"
    event = state["non_finite"]  # where it happened, and the finite steps that led to it
    assert event["epoch"] == state["epoch"] + 1 and event["step"] >= 1
    # Non-finite values are kept as text, so state.json stays standard JSON.
    non_finite = [v for v in (event["loss"], event["grad_norm"]) if isinstance(v, str)]
    assert non_finite and set(non_finite) <= {"nan", "inf", "-inf"}
    assert [b["step"] for b in event["before"]] == list(range(1, event["step"]))[-20:]
    assert all(np.isfinite(b["loss"]) for b in event["before"])
    history = read_history(tmp_path / "m" / "history.csv")
    assert history[-1]["status"].startswith("non-finite")
    assert [row["epoch"] for row in history[:-1]] == list(range(1, state["epoch"] + 1))
    last = keras.saving.load_model(tmp_path / "m" / "last.keras", safe_mode=True, compile=False)
    # In memory: the weights the failed epoch started from, which are the last checkpoint's.
    for restored, saved in zip(ae.model.get_weights(), last.get_weights()):
        np.testing.assert_array_equal(restored, saved)
        assert np.isfinite(saved).all()
    best = keras.saving.load_model(tmp_path / "m" / "best.keras", safe_mode=True, compile=False)
    assert all(np.isfinite(w).all() for w in best.get_weights())


# -- the step trace -------------------------------------------------------------------------------

def test_the_step_trace_has_a_row_every_n_steps_and_at_each_epochs_end(vectors, splits, tmp_path):
    from autoencoder.training.trace import read_steps

    trainer = fit(make_ae(vectors), splits, tmp_path / "m", epochs=2, trace_every=3)
    rows = read_steps(tmp_path / "m" / "steps.csv")
    for epoch, record in enumerate(trainer.history_, 1):
        steps = [row["step"] for row in rows if row["epoch"] == epoch]
        assert steps == sorted({*range(3, steps[-1] + 1, 3), steps[-1]})
        # The rows' gradient norms, weighted by the steps each covers, give the epoch's mean.
        widths = np.diff([0, *steps])
        norms = [row["grad_norm"] for row in rows if row["epoch"] == epoch]
        assert np.dot(widths, norms) / steps[-1] == pytest.approx(record["grad_norm"], rel=1e-6)
    assert rows[-1]["sentences"] == sum(record["sentences"] for record in trainer.history_)
    assert all(np.diff([row["sentences"] for row in rows]) > 0)
    assert all(np.diff([row["train_s"] for row in rows]) > 0)
    assert {row["lr"] for row in rows} == {1e-2}


def test_the_step_trace_of_an_interrupted_then_resumed_run_equals_an_uninterrupted_one(
        vectors, splits, tmp_path, monkeypatch):
    import contextlib

    import autoencoder.training.trainer as train_module
    from autoencoder.training.trace import read_steps

    def trace(folder):
        return [{k: v for k, v in row.items() if k != "train_s"}
                for row in read_steps(folder / "steps.csv")]

    fit(make_ae(vectors), splits, tmp_path / "whole", epochs=3, trace_every=2)
    calls = []

    @contextlib.contextmanager
    def ctrl_c_in_epoch_two():
        yield lambda: calls.append(1) or len(calls) >= 10  # step 3 of epoch 2 (7 steps/epoch)

    monkeypatch.setattr(train_module, "_deferred_sigint", ctrl_c_in_epoch_two)
    with pytest.raises(train_module.TrainingInterrupted):
        fit(make_ae(vectors), splits, tmp_path / "m", epochs=3, trace_every=2)
    monkeypatch.undo()
    assert read_json(tmp_path / "m" / "state.json")["partial"]["step"] < 7
    fit(make_ae(vectors, seed=99), splits, tmp_path / "m", epochs=3, trace_every=2, resume=True)
    expected = trace(tmp_path / "whole")
    got = trace(tmp_path / "m")
    assert [(r["epoch"], r["step"], r["sentences"]) for r in got] == \
        [(r["epoch"], r["step"], r["sentences"]) for r in expected]
    for row, reference in zip(got, expected, strict=True):
        assert row["train_loss"] == pytest.approx(reference["train_loss"], rel=1e-5)
        assert row["grad_norm"] == pytest.approx(reference["grad_norm"], rel=1e-5)


def test_a_trace_edited_by_hand_is_rebuilt_on_resume_and_the_model_trains_on(
        vectors, splits, tmp_path, caplog):
    """Each edit (a word for a number, a row cut mid-way, rows deleted, the file deleted) on a
    copy of one trained model: the resume rebuilds the trace and trains on."""
    from autoencoder.training.trace import read_steps

    fit(make_ae(vectors), splits, tmp_path / "trained", epochs=2, trace_every=2)
    before = read_steps(tmp_path / "trained" / "steps.csv")
    lost = {"word-for-a-number": 1, "cut-mid-row": 1, "rows-deleted": 2,
            "file-deleted": len(before)}
    for edit in lost:
        model = tmp_path / edit
        shutil.copytree(tmp_path / "trained", model)
        path = model / "steps.csv"
        lines = path.read_text().splitlines(keepends=True)
        if edit == "word-for-a-number":
            lines[3] = "two," + lines[3].split(",", 1)[1]
        elif edit == "cut-mid-row":
            lines = [*lines[:-1], lines[-1][:7]]
        elif edit == "rows-deleted":
            del lines[2:4]
        path.write_text("".join(lines))
        if edit == "file-deleted":
            path.unlink()
        caplog.clear()
        with caplog.at_level("WARNING"):
            trainer = fit(make_ae(vectors), splits, model, epochs=3, trace_every=2, resume=True)
        assert [r["epoch"] for r in trainer.history_] == [1, 2, 3], edit
        assert "changed by hand" in caplog.text, edit
        after = read_steps(path)
        # Every row now parses: the rows of epochs 1-2 that survived the edit, then epoch 3's.
        assert len(after) == len(path.read_text().splitlines()) - 1, edit
        assert len([r for r in after if r["epoch"] <= 2]) == len(before) - lost[edit], edit
        assert [r["epoch"] for r in after if r["epoch"] == 3] and after[-1]["epoch"] == 3, edit


def test_reading_a_trace_leaves_out_rows_that_do_not_parse(tmp_path, caplog):
    from autoencoder.training.trace import STEP_FIELDS, read_steps

    path = tmp_path / "steps.csv"
    blank = "," * (len(STEP_FIELDS) - 7)
    path.write_text(",".join(STEP_FIELDS) + "\n" + f"1,1,64,0.5,2.0,0.3,0.001{blank}\n"
                    + f"1,x,128,0.9,1.9,0.3,0.001{blank}\n" + "1,3,192\n"
                    + f"1,4,256,1.5,1.8,0.3,0.001{blank},extra\n")
    with caplog.at_level("WARNING"):
        rows = read_steps(path)
    assert [(r["step"], r["train_loss"]) for r in rows] == [(1, 2.0)]
    assert "3 row(s) that do not parse" in caplog.text


# -- how much the decoder relies on the code ------------------------------------------------------

def test_the_code_free_floor_is_the_per_position_unigram_cross_entropy(vectors, splits):
    """Witten-Bell: a position's counts, interpolated with the add-one smoothed counts of all
    positions, weighted by the number of distinct words the position has seen."""
    from autoencoder.training.reliance import code_free_loss

    ae = make_ae(vectors, "onehot")
    train = EncodedSentences.encode(splits / "train.txt", ae.vocab, SEQ_LEN)
    ids = np.asarray(EncodedSentences.encode(splits / "val.txt", ae.vocab, SEQ_LEN).ids)
    train_ids = np.asarray(train.ids)
    real = train_ids[train_ids != PAD_ID]
    overall = {w: ((real == w).sum() + 1) / (len(real) + len(ae.vocab)) for w in range(len(ae.vocab))}
    overall[PAD_ID] = 1 / (len(real) + len(ae.vocab))
    expected = []
    for row in ids:
        for position, word in enumerate(row):
            if word != PAD_ID:
                seen = train_ids[:, position][train_ids[:, position] != PAD_ID]
                distinct = len(set(seen.tolist()))
                p = ((seen == word).sum() + distinct * overall[word]) / (len(seen) + distinct)
                expected.append(-np.log(p))
    assert code_free_loss(ae, train, ids) == pytest.approx(np.mean(expected), rel=1e-9)


def test_the_code_free_floor_of_a_vector_model_is_its_loss_on_the_mean_target(vectors, splits):
    from autoencoder.training.reliance import code_free_loss

    ae = make_ae(vectors)
    train = EncodedSentences.encode(splits / "train.txt", ae.vocab, SEQ_LEN)
    ids = np.asarray(EncodedSentences.encode(splits / "val.txt", ae.vocab, SEQ_LEN).ids)
    train_ids = np.asarray(train.ids)
    losses = []
    for position in range(SEQ_LEN):
        seen = train_ids[:, position][train_ids[:, position] != PAD_ID]
        mean = ae.table[seen].mean(axis=0)
        for word in ids[:, position][ids[:, position] != PAD_ID]:
            target = ae.table[word]
            losses.append(1 - mean @ target / np.linalg.norm(mean))  # cosine loss, unit target
    assert code_free_loss(ae, train, ids) == pytest.approx(np.mean(losses), rel=1e-5)


def test_a_decoder_that_cannot_read_the_code_loses_nothing_when_codes_are_swapped(vectors, splits):
    from autoencoder.training.reliance import CodeReliance

    ae = make_ae(vectors)
    train = EncodedSentences.encode(splits / "train.txt", ae.vocab, SEQ_LEN)
    val = EncodedSentences.encode(splits / "val.txt", ae.vocab, SEQ_LEN)
    reliance = CodeReliance(ae, val, train, size=20, seed=0)
    assert sorted(reliance.swap) == list(range(20)) and (reliance.swap != np.arange(20)).all()
    before = reliance.measure()
    assert before["val_loss"] != pytest.approx(before["val_loss_swapped"], abs=1e-7)
    encoder = ae.model.get_layer("encoder")
    encoder.set_weights([np.zeros_like(w) for w in encoder.get_weights()])  # every code is 0
    after = reliance.measure()
    assert after["val_loss"] == pytest.approx(after["val_loss_swapped"], abs=1e-7)
    assert after["code_free"] == before["code_free"]
    # The network's own code-free loss: every code is 0 now, so it is the own-code loss.
    assert before["code_zeroed"] > 0 and before["code_zeroed"] != pytest.approx(
        before["val_loss"], abs=1e-7)
    assert after["code_zeroed"] == pytest.approx(after["val_loss"], abs=1e-6)


@pytest.mark.parametrize("kind", ["embedding", "onehot"])
@pytest.mark.parametrize("decoder", ["repeat", "autoregressive"])
def test_every_decoder_measures_its_own_loss_with_every_code_zeroed(vectors, splits, kind,
                                                                     decoder):
    """code_zeroed is the decoder fed all-zero codes, teacher-forced like the other two (for
    the repeat decoder decoded once and shared); code_free is the word-statistics estimate,
    which the autoregressive decoder, a language model in itself, has none of."""
    from keras import ops as kops

    from autoencoder.training.reliance import CodeReliance

    ae = make_ae(vectors, kind, decoder=decoder)
    train = EncodedSentences.encode(splits / "train.txt", ae.vocab, SEQ_LEN)
    val = EncodedSentences.encode(splits / "val.txt", ae.vocab, SEQ_LEN)
    measured = CodeReliance(ae, val, train, size=20, seed=0).measure()
    ids = np.asarray(val.ids[:20])
    zeros = np.zeros((len(ids), LATENT), np.float32)
    losses = kops.convert_to_numpy(ae.token_loss(ids, ae.decoder_outputs(zeros, ids)))
    assert measured["code_zeroed"] == pytest.approx(losses[ids != PAD_ID].mean(), rel=1e-5)
    assert (measured["code_free"] is None) == (decoder == "autoregressive")


def test_the_gap_interval_contains_the_point_gap_and_is_fixed_by_the_seed(vectors, splits):
    from autoencoder.training.reliance import CodeReliance

    ae = make_ae(vectors, "onehot")
    train = EncodedSentences.encode(splits / "train.txt", ae.vocab, SEQ_LEN)
    val = EncodedSentences.encode(splits / "val.txt", ae.vocab, SEQ_LEN)
    first = CodeReliance(ae, val, train, size=30, seed=4).measure()
    share = (first["val_loss_swapped"] - first["val_loss"]) / first["val_loss_swapped"]
    assert first["gap_low"] <= share <= first["gap_high"] and first["gap_low"] < first["gap_high"]
    again = CodeReliance(ae, val, train, size=30, seed=4).measure()
    assert (again["gap_low"], again["gap_high"]) == (first["gap_low"], first["gap_high"])
    other = CodeReliance(ae, val, train, size=30, seed=5).measure()
    assert (other["gap_low"], other["gap_high"]) != (first["gap_low"], first["gap_high"])
    assert CodeReliance(ae, val, train, size=30, seed=4).swap.tolist() == \
        _swap_before_intervals(30, 4).tolist()  # the intervals left the swap as it was


def _swap_before_intervals(n: int, seed: int) -> np.ndarray:
    order = np.random.default_rng(seed).permutation(n)
    swap = np.empty(n, dtype=np.int64)
    swap[order] = np.roll(order, 1)
    return swap


def test_the_gap_interval_is_the_percentile_bootstrap_of_the_ratio_of_sums():
    from autoencoder.training.reliance import gap_interval

    rng = np.random.default_rng(0)
    own, swapped = rng.uniform(5, 10, 40), rng.uniform(6, 12, 40)
    resamples = rng.integers(0, 40, size=(500, 40))
    gaps = [(swapped[r].sum() - own[r].sum()) / swapped[r].sum() for r in resamples]
    low, high = gap_interval(own, swapped, resamples)
    assert (low, high) == pytest.approx(tuple(np.percentile(gaps, [2.5, 97.5])), rel=1e-12)
    assert gap_interval(-own, -swapped, resamples) == (None, None)  # no share: no interval
    one = np.zeros((500, 1), dtype=np.int64)
    assert gap_interval(own[:1], swapped[:1], one) == pytest.approx(
        ((swapped[0] - own[0]) / swapped[0],) * 2)


def test_eval_every_adds_the_reliance_to_the_trace_rows_it_falls_on(vectors, splits, tmp_path):
    from autoencoder.training.trace import read_steps

    fit(make_ae(vectors), splits, tmp_path / "m", epochs=2, trace_every=2, eval_every=3,
        eval_sample=10)
    rows = read_steps(tmp_path / "m" / "steps.csv")
    last = {epoch: max(r["step"] for r in rows if r["epoch"] == epoch) for epoch in (1, 2)}
    for row in rows:
        measured = row["step"] % 3 == 0 or row["step"] == last[row["epoch"]]
        assert (row["val_loss"] is not None) == measured, row
        if measured:
            assert row["code_free"] > 0 and row["val_loss_swapped"] > 0 and row["code_zeroed"] > 0
            share = (row["val_loss_swapped"] - row["val_loss"]) / row["val_loss_swapped"]
            assert row["gap_low"] <= share <= row["gap_high"]
        else:
            assert row["code_zeroed"] is None and row["gap_low"] is None
    assert {r["step"] for r in rows if r["epoch"] == 1} >= {2, 3, 4, 6}


def test_the_vmf_floor_scales_the_mean_target_to_its_best_length(vectors, splits):
    """The best code-free vMF output is the mean target's direction at the concentration that
    minimises the expected NLL: on the sentences it was fitted to (the random words of this
    fixture carry nothing from train to val), lower than the mean itself and than half or twice
    that length."""
    from autoencoder.model.losses import vmf_best_scale, vmf_nll
    from autoencoder.training.reliance import code_free_loss

    ae = make_ae(vectors, loss="vmf")
    train = EncodedSentences.encode(splits / "train.txt", ae.vocab, SEQ_LEN)
    train_ids = np.asarray(train.ids)
    ids = train_ids
    means = np.stack([ae.table[column[column != PAD_ID]].mean(axis=0) for column in train_ids.T])
    mask = ids != PAD_ID

    def loss_at(scale):
        outputs = np.broadcast_to((means * scale[:, None]).astype(np.float32), (*ids.shape, DIM))
        losses = ops.convert_to_numpy(vmf_nll(ops.convert_to_tensor(outputs), ae.table[ids],
                                              ae.config.vmf_lambda1, ae.config.vmf_lambda2))
        return losses[mask].mean()

    best = vmf_best_scale(means, ae.config.vmf_lambda1, ae.config.vmf_lambda2)
    floor = code_free_loss(ae, train, ids)
    assert floor == pytest.approx(loss_at(best), rel=1e-5)
    for other in (np.ones(SEQ_LEN), best / 2, best * 2):
        assert floor < loss_at(other)
