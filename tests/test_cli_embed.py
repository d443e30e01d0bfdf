"""``pipe embed`` and ``pipe export`` through click: help, happy path, and clean failures."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from gensim.models import KeyedVectors

from tests.conftest import invoke, read_json

TINY = ["--vector-size", "16", "--min-count", "1", "--epochs", "2", "--workers", "1"]


@pytest.fixture(autouse=True)
def _restore_logging():
    # The CLI points the root logger at CliRunner's stderr, which is closed after each call.
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize("command, expected", [
    ("embed", ["--corpus", "--remove", "--unit", "--vector-size", "--sg / --cbow", "--seed", "--force"]),
    ("export", ["PATH", "--text", "--run"]),
])
def test_help(command, expected):
    result = invoke(command, "--help")
    assert result.exit_code == 0
    for option in expected:
        assert option in result.output


def test_embed_happy_path_then_reuse_and_export(tiny_text_corpus, tmp_path):
    run = tmp_path / "run"
    exported = tmp_path / "vectors.bin"
    result = invoke("embed", "--run", run, "--corpus", tiny_text_corpus, *TINY, "--export-word2vec", exported)
    assert result.exit_code == 0, result.output
    assert "unk share @2000" in result.stdout and "wordsim353" in result.stdout
    assert "Traceback" not in result.output
    for name in ("corpus/train.txt", "corpus/stats.json", "embeddings/vectors.npy", "embeddings/eval.json"):
        assert (run / name).is_file()
    stage = read_json(run / "config.json")["stages"]["embed"]
    assert (stage["seed"], stage["vector_size"], stage["remove"], stage["sg"]) == (0, 16, [], False)
    assert KeyedVectors.load_word2vec_format(str(exported), binary=True).vector_size == 16

    again = invoke("embed", "--run", run, "--corpus", tiny_text_corpus, *TINY)
    assert again.exit_code == 0 and "reusing word vectors" in again.stderr

    text = tmp_path / "vectors.txt"
    result = invoke("export", "--run", run, text, "--text")
    assert result.exit_code == 0, result.output
    assert text.read_text(encoding="utf-8").split("\n", 1)[0].endswith(" 16")


def _assert_clean_failure(result, message: str, run: Path) -> None:
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and message in errors[0], result.output
    leftovers = [p for p in run.rglob("*") if p.name.endswith(".tmp")] if run.exists() else []
    assert leftovers == []
    assert not (run / "config.json").exists() and not (run / "embeddings" / "vectors.npy").exists()


def _empty_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "empty"
    folder.mkdir()
    return folder


def _binary_file(tmp_path: Path) -> Path:
    path = tmp_path / "image.txt"
    path.write_bytes(b"GIF89a\x00\x01\x00\x01")
    return path


def _empty_files(tmp_path: Path) -> Path:
    folder = _empty_folder(tmp_path)
    (folder / "a.txt").write_text("")
    (folder / "b.txt").write_text(" \n")
    return folder


@pytest.mark.parametrize("make_source, message", [
    (lambda tmp_path: tmp_path / "missing", "corpus not found"),
    (_empty_folder, "no .txt files"),
    (_binary_file, "looks binary"),
    (_empty_files, "only empty documents"),
])
def test_bad_corpus_fails_cleanly(tmp_path, make_source, message):
    run = tmp_path / "run"
    result = invoke("embed", "--run", run, "--corpus", make_source(tmp_path), *TINY)
    _assert_clean_failure(result, message, run)
    # nothing was written before the corpus was read, and the failed command left no run
    assert not run.exists()


def test_remove_option_parses_lists_and_none():
    from pipelines.cli.embed import _RemoveList

    parse = _RemoveList().convert
    assert parse("none", None, None) == ()
    assert parse("quotes, headers", None, None) == ("headers", "quotes")


@pytest.mark.parametrize("args, message", [
    (["--vector-size", "0"], "Invalid value for '--vector-size'"),
    (["--epochs", "-1"], "Invalid value for '--epochs'"),
    (["--remove", "headers,signatures"], "cannot remove signatures"),
    (["--unit", "word"], "Invalid value for '--unit'"),
])
def test_bad_options_are_usage_errors(tiny_text_corpus, tmp_path, args, message):
    run = tmp_path / "run"
    result = invoke("embed", "--run", run, "--corpus", tiny_text_corpus, *args)
    _assert_clean_failure(result, message, run)
    assert result.exit_code == 2 and not run.exists()


def test_min_count_leaving_no_word_fails_cleanly(tiny_text_corpus, tmp_path):
    run = tmp_path / "run"
    result = invoke("embed", "--run", run, "--corpus", tiny_text_corpus, *TINY, "--min-count", "1000000")
    _assert_clean_failure(result, "lower min_count", run)
    assert not (run / "embeddings" / "meta.json").exists()


def test_export_without_vectors_fails_cleanly(tmp_path):
    result = invoke("export", "--run", tmp_path / "run", tmp_path / "out.bin")
    _assert_clean_failure(result, "run `pipe embed` first", tmp_path / "run")
    assert not (tmp_path / "out.bin").exists()
