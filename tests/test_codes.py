"""``encode``, ``neighbours``, ``interpolate`` and the codes API on a tiny trained run."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tests.conftest import assert_clean_error, invoke, tiny_ae

SENTENCES = ["The cat sees the river today.", "A man helps the queen again.",
             "The quick brown fox jumps over the lazy dog and the cat.", "", "Paris ."]


def reconstruction(run_dir, sentence, model="embedding-cosine"):
    result = invoke("reconstruct", "--run", run_dir, "--model", model, sentence)
    assert result.exit_code == 0, result.output
    return next(line for line in result.output.splitlines()
                if line.startswith("output: "))[len("output: "):]


@pytest.fixture
def encoded(trained_run, tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    result = invoke("encode", "--run", trained_run, "--model", "embedding-cosine", source,
                    tmp_path / "codes.npy")
    assert result.exit_code == 0, result.output
    return trained_run, tmp_path / "codes.npy", result


def test_encode_writes_aligned_codes_and_sentences(encoded):
    run_dir, codes_path, result = encoded
    codes = np.load(codes_path, allow_pickle=False)
    lines = codes_path.with_suffix(".tsv").read_text(encoding="utf-8").splitlines()
    assert codes.dtype == np.float32 and codes.shape == (4, 8)  # the empty line is skipped
    assert lines[0] == "the cat sees the river today ." and lines[3] == "paris ."
    assert "1 of 4 sentences were longer" in result.output  # 13 tokens, seq-len 8
    assert not list(codes_path.parent.glob(".*"))  # no temporary file left


@pytest.mark.backend
def test_bucketed_codes_equal_codes_one_at_a_time(encoded):
    from pipelines.models import load_run_model

    run_dir, codes_path, _ = encoded
    codes = np.load(codes_path)
    _, ae = load_run_model(run_dir, "embedding-cosine")
    for row, line in zip(codes, codes_path.with_suffix(".tsv").read_text().splitlines()):
        ids = ae.vocab.encode(line.split(), ae.config.seq_len)[None]
        np.testing.assert_allclose(ae.encode(ids)[0], row, atol=1e-5)


def test_encode_a_split_and_flat_window_writes(trained_run, tmp_path, monkeypatch):
    """Codes written window by window (here 1 batch of 2 per window) equal the default ones."""
    from pipelines import codes as codes_module
    from autoencoder.data.batches import Bucketing
    from autoencoder.data.sentences import EncodedSentences
    from pipelines.models import load_run_model

    result = invoke("encode", "--run", trained_run, "--split", "test", tmp_path / "test.npy")
    assert result.exit_code == 0, result.output
    default = np.load(tmp_path / "test.npy")
    test_lines = [line for line in (trained_run / "corpus" / "test.txt").read_text().splitlines()
                  if line.strip()]
    assert (tmp_path / "test.tsv").read_text().splitlines() == test_lines
    _, ae = load_run_model(trained_run, "embedding-cosine")
    sentences = EncodedSentences.encode(trained_run / "corpus" / "test.txt", ae.vocab, 8)
    codes_module.write_codes(ae, sentences, tmp_path / "small.npy", batch_size=2,
                             bucketing=Bucketing(window=1))
    np.testing.assert_allclose(np.load(tmp_path / "small.npy"), default, atol=1e-5)


@pytest.mark.backend
def test_decode_codes_of_encode_is_the_reconstruction(trained_run):
    from pipelines.codes import sentence_code
    from pipelines.models import load_run_model

    for model in ("embedding-cosine", "onehot-ce"):
        _, ae = load_run_model(trained_run, model)
        for sentence in SENTENCES[:3]:
            tokens, code = sentence_code(ae, sentence, model)
            decoded = ae.decode_codes(code[None], [len(tokens)])[0]
            assert " ".join(decoded) == reconstruction(trained_run, sentence, model)


def test_interpolate_a_to_a_is_a_reconstruction_at_every_step(trained_run):
    sentence = SENTENCES[1]
    result = invoke("interpolate", "--run", trained_run, "--steps", "4", sentence, sentence)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [reconstruction(trained_run, sentence)] * 4
    result = invoke("interpolate", "--run", trained_run, "--model", "onehot-ce", "a man",
                    "the cat sees the river today .")
    assert result.exit_code == 0, result.output
    lengths = [len(line.split()) for line in result.output.splitlines()]
    assert lengths == [2, 3, 4, 6, 7]  # lengths go linearly from A's to B's


def test_neighbours_finds_the_sentence_itself_and_rebuilds_for_a_new_model(trained_run, tmp_path):
    train = [line for line in (trained_run / "corpus" / "train.txt").read_text().splitlines()
             if 3 <= len(line.split()) <= 8]
    query = train[0]
    result = invoke("neighbours", "--run", trained_run, "--k", "3", query)
    assert result.exit_code == 0, result.output
    rows = [line.split("\t") for line in result.output.splitlines() if "\t" in line]
    assert len(rows) == 3 and rows[0][1] == query
    assert float(rows[0][0]) == pytest.approx(1.0, abs=1e-4)
    assert float(rows[0][0]) >= float(rows[1][0]) >= float(rows[2][0])
    index = trained_run / "models" / "embedding-cosine" / "index"
    made_from = json.loads((index / "manifest.json").read_text())["options"]
    stamp = (index / "codes.npy").stat().st_mtime_ns
    assert invoke("neighbours", "--run", trained_run, query).exit_code == 0
    assert (index / "codes.npy").stat().st_mtime_ns == stamp  # reused, not rebuilt
    (index / "codes.npy").write_bytes(b"damaged")
    result = invoke("neighbours", "--run", trained_run, query)
    assert result.exit_code == 0 and "rebuilding the code index" in result.output, result.output
    assert np.load(index / "codes.npy").shape[1] == 8

    kept = shutil.copytree(index, tmp_path / "old-index")
    result = invoke("train-ae", "--run", trained_run, *tiny_ae(1), "--force", "--seed", "1")
    assert result.exit_code == 0, result.output
    shutil.copytree(kept, index)  # the old model's index, left beside the new checkpoint
    result = invoke("neighbours", "--run", trained_run, query)
    assert result.exit_code == 0, result.output
    rebuilt = json.loads((index / "manifest.json").read_text())["options"]
    assert rebuilt["checkpoint_sha256"] != made_from["checkpoint_sha256"]


def test_bad_inputs_get_one_clean_error(trained_run, tmp_path):
    run = ["--run", trained_run]
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    out = tmp_path / "codes.npy"
    assert_clean_error(invoke("encode", *run, empty, out), "no sentences")
    assert not out.exists() and not out.with_suffix(".tsv").exists()
    assert_clean_error(invoke("encode", *run, tmp_path / "missing.txt", out), "missing.txt")
    source = tmp_path / "in.txt"
    source.write_text("the cat\n")
    assert_clean_error(invoke("encode", *run, source, tmp_path), "folder")
    (tmp_path / "dir.tsv").mkdir()
    assert_clean_error(invoke("encode", *run, source, tmp_path / "dir.npy"), "folder")
    assert_clean_error(invoke("encode", *run, source, trained_run / "embeddings" / "x.npy"),
                       "seqae's own files")
    assert_clean_error(invoke("encode", *run, source, tmp_path / "x.tsv"), ".tsv")
    assert_clean_error(invoke("encode", *run, source), "OUTPUT")
    assert_clean_error(invoke("encode", *run, "--model", "nope", source, out),
                       "no model named nope")
    assert_clean_error(invoke("neighbours", *run, "--model", "nope", "the cat"), "nope")
    assert_clean_error(invoke("neighbours", *run, "--k", "0", "the cat"), "--k")
    assert_clean_error(invoke("interpolate", *run, "--steps", "0", "a", "b"), "--steps")
    assert_clean_error(invoke("neighbours", *run, "  "), "no tokens")
    assert_clean_error(invoke("interpolate", *run, "the cat", "qqqx zzzy"), "unknown")
    assert_clean_error(invoke("neighbours", *run, "qqqx"), "unknown")


def test_neighbours_top_k_is_the_spelling_and_k_still_works(trained_run):
    sentence = "The cat sees the river today."
    new = invoke("neighbours", "--run", trained_run, "--top-k", 2, sentence)
    old = invoke("neighbours", "--run", trained_run, "--k", 2, sentence)  # the index is built
    assert new.exit_code == old.exit_code == 0, new.output + old.output
    assert new.stdout.splitlines()[-2:] == old.stdout.splitlines() and len(old.stdout.splitlines()) == 2
    help_text = invoke("neighbours", "--help").output
    assert "--top-k" in help_text and "--k " not in help_text
