"""The autoregressive decoder: teacher forcing in training, greedy decoding at inference, one
model file that plain Keras loads, and every use of a model working with either decoder."""

from __future__ import annotations

import numpy as np
import pytest

from autoencoder.config import AutoencoderConfig
from embeddings.store.errors import SeqaeError
from tests.conftest import (
    SEQ_LEN,
    TINY_AE,
    assert_clean_error,
    fit,
    invoke,
    make_ae,
    read_json,
    tiny_ae,
)

AR = {"decoder": "autoregressive"}


def _ids(rows: int = 5) -> np.ndarray:
    rng = np.random.default_rng(3)
    ids = rng.integers(2, 20, size=(rows, SEQ_LEN)).astype(np.int32)
    for row, length in enumerate(rng.integers(1, SEQ_LEN + 1, size=rows)):
        ids[row, length:] = 0
    return ids


@pytest.mark.backend
@pytest.mark.parametrize("kind", ["embedding", "onehot"])
def test_greedy_decoding_is_the_teacher_forced_model_fed_its_own_words(vectors, kind):
    """Word by word (the LSTM's cell, fed back the word it chose) equals the whole model run on
    those words at once: the loop, the shift and the feedback are the model's own."""
    ae = make_ae(vectors, kind, **AR)
    codes = ae.encode(_ids())
    generated = ae.decoder_outputs(codes)  # (rows, seq_len, out)
    words = np.asarray(ae.feedback_ids(generated))
    forced = ae.decoder_outputs(codes, words)
    np.testing.assert_allclose(generated, forced, rtol=1e-4, atol=1e-5)


@pytest.mark.backend
@pytest.mark.parametrize("kind", ["embedding", "onehot"])
def test_the_compiled_scoring_step_writes_what_greedy_decoding_writes(vectors, kind):
    from autoencoder.backends import current

    ae = make_ae(vectors, kind, **AR)
    ids = _ids()
    width = 6
    step = current().compile_forward(ae, lambda ids, outputs: (), rows=ae.eval_rows)
    (outputs,) = step(ids[:, :width])
    expected = ae.decoder_outputs(ae.encode(ids[:, :width]))[:, :width]
    np.testing.assert_allclose(outputs, expected, rtol=1e-4, atol=1e-5)


def test_the_previous_words_are_the_input_shifted_right_with_word_dropout_as_unk(vectors):
    ae = make_ae(vectors, "embedding", **AR)
    ids = _ids(2)
    keep = np.ones(ids.shape, np.float32)
    keep[0, 3] = 0.0
    previous = np.asarray(ae.previous(ids, keep))
    assert not previous[:, 0].any()  # t = 0: the zero start vector
    np.testing.assert_array_equal(previous[1, 1:], ae.table[ids[1, :-1]])
    np.testing.assert_array_equal(previous[0, 3], ae.table[1])  # dropped: UNK's vector
    assert ae.step_inputs((0, 1, 2), 4) == ()  # no word dropout: nothing drawn
    dropping = make_ae(vectors, "embedding", **AR, word_dropout=0.5)
    a, b = dropping.step_inputs((0, 1, 2), 64), dropping.step_inputs((0, 1, 2), 64)
    assert len(a) == 1 and a[0].shape == (64, SEQ_LEN)
    np.testing.assert_array_equal(a[0], b[0])  # seeded: a resumed run drops the same words
    assert 0.4 < 1 - a[0].mean() < 0.6


@pytest.mark.backend
def test_an_autoregressive_model_trains_saves_and_loads_in_plain_keras(vectors, splits, tmp_path):
    import keras

    ae = make_ae(vectors, "embedding", **AR, word_dropout=0.25)
    trainer = fit(ae, splits, tmp_path / "m", epochs=2)
    assert trainer.history_[-1]["val_loss"] < trainer.history_[0]["train_loss"]
    loaded = keras.saving.load_model(tmp_path / "m" / "best.keras", safe_mode=True, compile=False)
    ids = _ids()
    inputs = [ae.inputs(ids), ae.previous(ids)]
    np.testing.assert_allclose(np.asarray(loaded.predict_on_batch(inputs)),
                               np.asarray(ae.model.predict_on_batch(inputs)), rtol=1e-5, atol=1e-6)


def test_decoder_options_are_checked():
    with pytest.raises(SeqaeError, match=r"decoder \(--decoder\) must be one of repeat, autoregressive"):
        AutoencoderConfig(decoder="attention")
    with pytest.raises(SeqaeError, match="does not apply to kind classic"):
        AutoencoderConfig(kind="classic", decoder="autoregressive")
    with pytest.raises(SeqaeError, match=r"word_dropout \(--word-dropout\)"):
        AutoencoderConfig(decoder="autoregressive", word_dropout=1.0)
    assert AutoencoderConfig(word_dropout=0.3).word_dropout is None  # repeat: does not apply
    saved = {k: v for k, v in AutoencoderConfig().to_dict().items()
             if k not in ("decoder", "word_dropout")}  # a model saved before decoders
    assert AutoencoderConfig.from_saved(saved) == AutoencoderConfig()


def test_pipe_refuses_a_bad_decoder_and_a_resume_with_another(trained):
    assert_clean_error(invoke("train-ae", "--run", trained, "--decoder", "lstm"), "--decoder")
    assert_clean_error(invoke("train-ae", "--run", trained, *TINY_AE, "--decoder",
                              "autoregressive", "--resume"), "these options differ: decoder")
    config = read_json(trained / "models" / "embedding-cosine" / "config.json")
    assert config["autoencoder"]["decoder"] == "repeat"


@pytest.mark.slow
def test_every_use_of_a_model_works_with_the_autoregressive_decoder(tiny_run, tmp_path):
    for kind in ("embedding", "onehot"):
        result = invoke("train-ae", "--run", tiny_run, "--kind", kind, "--vocab-cap", "30",
                        *TINY_AE, "--decoder", "autoregressive", "--word-dropout", "0.2",
                        "--eval-every", "4")
        assert result.exit_code == 0, result.output
    steps = (tiny_run / "models" / "embedding-cosine" / "steps.csv").read_text().splitlines()
    header = steps[0].split(",")
    column = {key: [row.split(",")[header.index(key)] for row in steps[1:]]
              for key in ("code_free", "code_zeroed")}
    # The decoder as a language model: its zeroed-code loss measured anew, no statistical floor.
    assert any(column["code_zeroed"]) and len(set(column["code_zeroed"]) - {""}) > 1
    assert not any(column["code_free"])
    resumed = invoke("train-ae", "--run", tiny_run, *tiny_ae(3), "--decoder", "autoregressive",
                     "--word-dropout", "0.2", "--eval-every", "4", "--resume")
    assert resumed.exit_code == 0, resumed.output
    compare = invoke("compare", "--run", tiny_run)
    assert compare.exit_code == 0 and "onehot-ce" in compare.output, compare.output
    sentence = tiny_run.parent / "sentences.txt"
    sentence.write_text("the cat sees the dog .\na dog .\n")
    for args in (("reconstruct", "the cat sees the dog"),
                 ("encode", sentence, tmp_path / "codes.npy"),
                 ("neighbours", "the cat sees the dog", "--top-k", "2"),
                 ("interpolate", "the cat", "a dog", "--steps", "3")):
        result = invoke(*args[:1], "--run", tiny_run, "--model", "onehot-ce", *args[1:])
        assert result.exit_code == 0, result.output
