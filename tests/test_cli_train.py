"""``train-ae``, ``reconstruct``, ``compare`` and ``run`` through the CLI on a tiny run."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from sacrebleu.metrics import BLEU

from pipelines.cli import main
from tests.conftest import SHARED_20NEWS, TINY_AE, assert_clean_error, invoke, snapshot, tiny_ae


def test_train_ae_writes_every_artifact(trained_run):
    for name in ("embedding-cosine", "onehot-ce"):
        folder = trained_run / "models" / name
        assert {p.name for p in folder.iterdir()} >= {
            "config.json", "vocab.txt", "best.keras", "last.keras", "history.csv", "loss.png",
            "state.json"}
    config = json.loads((trained_run / "config.json").read_text())
    assert {"train-ae:embedding-cosine", "train-ae:onehot-ce"} <= set(config["stages"])
    assert config["versions"]["tensorflow"]
    vocab = (trained_run / "models" / "onehot-ce" / "vocab.txt").read_text().split()
    assert vocab[:2] == ["<pad>", "<unk>"] and len(vocab) == 30


def test_existing_model_needs_resume_or_force(trained_run):
    result = invoke("train-ae", "--run", trained_run, *TINY_AE)
    assert_clean_error(result, "--resume")
    result = invoke("train-ae", "--run", trained_run, *tiny_ae(3), "--resume")
    assert result.exit_code == 0, result.output
    assert "3 epochs" in result.output


@pytest.mark.backend
def test_reconstruct_prints_tokens_ids_and_neighbours(trained_run):
    result = invoke("reconstruct", "--run", trained_run, "--model", "embedding-cosine",
                    "--top-k", "3", "The cat sees qqqunknownqqq today.")
    assert result.exit_code == 0, result.output
    assert "tokens: the cat sees qqqunknownqqq today ." in result.output
    assert "1*" in result.output  # the unknown word is marked
    assert result.output.count("\n") >= 4 + 6
    result = invoke("reconstruct", "--run", trained_run, "--model", "onehot-ce", "a man")
    assert result.exit_code == 0, result.output


@pytest.mark.backend
def test_compare_matches_a_hand_computation(trained_run):
    """report.json's token accuracy and BLEU (sacreBLEU on seqae's tokens, against the whole
    original sentences) equal a per-sentence recomputation."""
    from embeddings import load_vectors
    from embeddings.store.rundir import RunDir
    from pipelines import load_autoencoder

    result = invoke("compare", "--run", trained_run)
    assert result.exit_code == 0, result.output
    out = trained_run / "compare"
    assert {"report.md", "report.json", "loss.png", "accuracy_by_length.png"} <= {
        p.name for p in out.iterdir()}
    report = json.loads((out / "report.json").read_text())
    sentences = [line.split() for line in
                 (trained_run / "corpus" / "test.txt").read_text().splitlines() if line.strip()]
    kv = load_vectors(trained_run / "embeddings")
    for name in ("embedding-cosine", "onehot-ce"):
        ae, _ = load_autoencoder(RunDir(trained_run), name, kv.vectors)
        correct = total = 0
        refs, hyps = [], []
        for whole in sentences:
            tokens = whole[: ae.config.seq_len]
            ids = ae.vocab.encode(tokens, ae.config.seq_len)[None]
            decoded = ae.decode(np.asarray(ae.model.predict_on_batch(ae.inputs(ids))))[0][0, :, 0]
            words = [ae.vocab.words[i] for i in decoded[: len(tokens)]]
            correct += sum(w == t for w, t in zip(words, tokens))
            total += len(tokens)
            refs.append(" ".join(whole))
            hyps.append(" ".join(words))
        figures = report["models"][name]
        assert figures["tokens"] == total
        assert figures["token_accuracy"] == pytest.approx(correct / total)
        bleu = BLEU(tokenize="none")
        assert figures["bleu4"] == pytest.approx(bleu.corpus_score(hyps, [refs]).score / 100)
        assert figures["bleu_signature"] == str(bleu.get_signature())
        vectors = ae.config.kind == "embedding"
        assert (figures["mean_output_norm"] > 0) if vectors else figures["mean_output_norm"] is None
        assert (figures["hubness_skew"] is not None) == vectors
    markdown = (out / "report.md").read_text()
    assert markdown.count("sacreBLEU") == 1 and "tok:none" in markdown
    assert "| BLEU |" in markdown and "## Output vectors" in markdown
    assert len(report["samples"]) == min(5, len(sentences))
    assert "onehot-ce" in result.output and "report:" in result.output


def test_compare_errors(trained_run):
    assert_clean_error(invoke("compare", "--run", trained_run, "--models", "nope"), "nope")
    shutil.rmtree(trained_run / "models" / "embedding-cosine" / "best.keras", ignore_errors=True)
    (trained_run / "models" / "embedding-cosine" / "best.keras").unlink(missing_ok=True)
    assert_clean_error(invoke("compare", "--run", trained_run), "best.keras")
    shutil.rmtree(trained_run / "models")
    assert_clean_error(invoke("compare", "--run", trained_run), "no models")


def test_train_ae_errors(tmp_path, tiny_run):
    assert_clean_error(invoke("train-ae", "--run", tmp_path / "empty", *TINY_AE), "pipe embed")
    assert not (tmp_path / "empty").exists()  # nothing written for a run that does not exist
    assert_clean_error(invoke("train-ae", "--run", tiny_run, "--seq-len", "0"), "--seq-len")
    assert_clean_error(invoke("train-ae", "--run", tiny_run, "--kind", "onehot", "--vocab-cap", "2"),
                       "--vocab-cap")
    assert_clean_error(invoke("train-ae", "--run", tiny_run, "--loss", "ce"), "--loss")
    assert_clean_error(invoke("train-ae", "--run", tiny_run, "--resume", *TINY_AE), "resume")


def test_vocabulary_smaller_than_cap_shrinks_with_a_warning(tiny_run, caplog):
    result = invoke("train-ae", "--run", tiny_run, "--kind", "onehot", "--vocab-cap", "100000",
                    *tiny_ae(1))
    assert result.exit_code == 0, result.output
    words = (tiny_run / "models" / "onehot-ce" / "vocab.txt").read_text().split()
    assert 3 <= len(words) < 100000
    assert "shrinking the cap" in caplog.text


def test_resume_refuses_a_truncated_checkpoint(trained_run):
    last = trained_run / "models" / "embedding-cosine" / "last.keras"
    last.write_bytes(last.read_bytes()[:100])
    result = invoke("train-ae", "--run", trained_run, "--resume", *TINY_AE)
    assert_clean_error(result, "last.keras")


def test_run_end_to_end_then_reuses(tiny_text_corpus, tmp_path, caplog):
    args = ["run", "--run", tmp_path / "r", "--corpus", tiny_text_corpus, "--vector-size", "16",
            "--min-count", "1", "--w2v-epochs", "1", "--workers", "1", "--seq-len", "8",
            "--latent", "8", "--epochs", "1", "--val-sentences", "20"]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "r" / "compare" / "report.md").exists()
    assert "embedding-cosine" in result.output and "onehot-ce" in result.output
    caplog.clear()
    assert invoke(*args).exit_code == 0
    assert caplog.text.count("reusing the finished model") == 2
    models = snapshot(tmp_path / "r" / "models")
    result = invoke(*args, "--latent", "6")  # other options: the models are not replaced unasked
    assert_clean_error(result, "embedding-cosine, onehot-ce", "--force")
    assert snapshot(tmp_path / "r" / "models") == models


@pytest.mark.slow
@pytest.mark.skipif(not SHARED_20NEWS.is_file(), reason=f"{SHARED_20NEWS} not present")
def test_20news_sample_end_to_end(tmp_path):
    """A 20 Newsgroups sample through every stage; ``pipe run``'s one-hot baseline can write
    every word the embedding model can (the whole word2vec vocabulary), and a capped one covers
    far fewer of the test tokens."""
    result = invoke("run", "--run", tmp_path / "r", "--corpus", SHARED_20NEWS, "--max-docs", "600",
                    "--vector-size", "64", "--min-count", "2", "--w2v-epochs", "3", "--seq-len", "20",
                    "--latent", "16", "--epochs", "1", "--max-sentences", "1000",
                    "--val-sentences", "100", "--eval-sentences", "300")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r" / "compare" / "report.json").read_text())
    embedding, onehot = report["models"]["embedding-cosine"], report["models"]["onehot-ce"]
    assert onehot["vocab_size"] == embedding["vocab_size"]
    assert onehot["coverage"] == pytest.approx(embedding["coverage"])
    assert report["sentences"] == 300
    capped = invoke("train-ae", "--run", tmp_path / "r", "--kind", "onehot", "--vocab-cap", "2000",
                    "--name", "capped", "--seq-len", "20", "--latent", "16", "--epochs", "1",
                    "--max-sentences", "1000", "--val-sentences", "100")
    assert capped.exit_code == 0, capped.output
    result = invoke("compare", "--run", tmp_path / "r", "--models", "capped,onehot-ce",
                    "--eval-sentences", "300")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r" / "compare" / "report.json").read_text())
    capped, whole = report["models"]["capped"], report["models"]["onehot-ce"]
    assert capped["coverage"] < whole["coverage"]
    assert capped["token_accuracy_out_of_cap"] == 0.0


@pytest.mark.slow
@pytest.mark.long  # about 4 minutes of training
def test_run_defaults_learn_to_reconstruct(tmp_path):
    """The main job as a new user runs it: ``pipe run`` with its defaults (gensim's Wikipedia
    excerpt) ends with an embedding model that reconstructs held-out text, above the baseline."""
    result = invoke("run", "--run", tmp_path / "r")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r" / "compare" / "report.json").read_text())
    embedding, onehot = report["models"]["embedding-cosine"], report["models"]["onehot-ce"]
    assert embedding["token_accuracy"] >= 0.15
    assert embedding["token_accuracy"] > onehot["token_accuracy"]
    assert "validation token accuracy against training time" in result.output


@pytest.mark.slow  # a training subprocess killed mid-epoch, then resumed
def test_sigkill_mid_training_then_resume(tiny_run):
    """A training process killed with SIGKILL resumes from its last finished epoch."""
    import os
    import signal
    import subprocess
    import sys
    import time

    state = tiny_run / "models" / "embedding-cosine" / "state.json"
    args = [sys.executable, "-m", "pipelines", "train-ae", "--run", str(tiny_run),
            "--seq-len", "8", "--latent", "8", "--batch-size", "8", "--val-sentences", "5"]
    proc = subprocess.Popen(args + ["--epochs", "500", "--patience", "0"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300  # a loaded machine starts TensorFlow slowly
        while not (state.exists() and json.loads(state.read_text())["epoch"] >= 2):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    done = json.loads(state.read_text())["epoch"]
    result = subprocess.run(args + ["--epochs", str(done + 2), "--patience", "0", "--resume"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    history = (tiny_run / "models" / "embedding-cosine" / "history.csv").read_text().splitlines()
    assert [int(row.split(",")[0]) for row in history[1:]] == list(range(1, done + 3))


@pytest.mark.slow  # a training subprocess killed mid-epoch, then resumed
def test_ctrl_c_saves_a_checkpoint_that_resumes_exactly(tiny_run):
    """SIGINT mid-training exits 130 with a --resume hint; resuming ends with the very weights of
    an uninterrupted run."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import keras

    models = tiny_run / "models"
    args = [sys.executable, "-m", "pipelines", "train-ae", "--run", str(tiny_run), "--seq-len", "8",
            "--latent", "8", "--batch-size", "4", "--val-sentences", "5", "--patience", "0"]
    proc = subprocess.Popen(args + ["--epochs", "500"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    state = models / "embedding-cosine" / "state.json"
    deadline = time.monotonic() + 300  # a loaded machine starts TensorFlow slowly
    while not (state.exists() and json.loads(state.read_text())["epoch"] >= 1):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.1)  # land somewhere inside a later epoch
    os.kill(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130, stderr
    assert "--resume" in stderr and "Traceback" not in stderr
    saved = json.loads(state.read_text())
    target = str(saved["epoch"] + 2)
    resumed = subprocess.run(args + ["--epochs", target, "--resume"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    reference = subprocess.run(args + ["--epochs", target, "--name", "reference"],
                               capture_output=True, text=True)
    assert reference.returncode == 0, reference.stderr
    a = keras.saving.load_model(models / "embedding-cosine" / "last.keras", compile=False)
    b = keras.saving.load_model(models / "reference" / "last.keras", compile=False)
    for x, y in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


def test_models_trained_on_replaced_vectors_are_refused(trained_run):
    """Re-embedding the run invalidates its models: resume and compare refuse them by name."""
    from embeddings import CorpusConfig, Word2VecConfig, load_corpus
    from pipelines import run_embed

    source = load_corpus(trained_run).stats["config"]["source"]
    run_embed(trained_run, CorpusConfig(source=source),
              Word2VecConfig(vector_size=12, min_count=1, epochs=1, workers=1), workers=1,
              force=True)
    assert_clean_error(invoke("train-ae", "--run", trained_run, "--resume", *tiny_ae(3)),
                       "other word vectors")
    assert_clean_error(invoke("compare", "--run", trained_run), "other word vectors")
    assert_clean_error(invoke("neighbours", "--run", trained_run, "the cat"), "other word vectors")


@pytest.mark.parametrize("command", sorted(main.commands))
def test_every_command_has_help(command):
    result = invoke(command, "--help")
    assert result.exit_code == 0, result.output
    assert "--run" in result.output and "Usage:" in result.output


def test_python_dash_m_pipelines_is_pipe():
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "pipelines", "--help"], capture_output=True,
                            text=True)
    assert result.returncode == 0
    for command in main.commands:
        assert command in result.stdout
