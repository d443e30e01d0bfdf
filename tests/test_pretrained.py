"""``pipe embed --vectors FILE --format ...``: the user's vectors in place of word2vec."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
from gensim.models import KeyedVectors

from embeddings import CorpusConfig, PretrainedVectors, SeqaeError, load_corpus
from pipelines import load_embeddings, run_embed
from tests.conftest import assert_clean_error, invoke, read_json, tiny_ae, write_tiny_corpus

DIM = 12
EXTRA = ["zebra", "quantum", "xylophone"]  # in the file, never in the corpus


def _file_words(corpus: Path) -> list[str]:
    """The tiny corpus's words as a simple tokenizer sees them (most, not all, of seqae's
    tokens), then words the corpus never has."""
    text = " ".join(path.read_text(encoding="utf-8") for path in sorted(corpus.rglob("*.txt")))
    return sorted(set(re.findall(r"\w+|[^\w\s]", text.lower()))) + EXTRA


def write_vectors(path: Path, words: list[str], fmt: str, seed: int = 0) -> np.ndarray:
    """``words`` with random DIM-d vectors, in format ``fmt``; the vectors (rows in order)."""
    vectors = np.random.default_rng(seed).standard_normal((len(words), DIM)).astype(np.float32)
    if fmt == "word2vec-binary":
        kv = KeyedVectors(DIM)
        kv.add_vectors(words, vectors)
        kv.save_word2vec_format(str(path), binary=True)
        return vectors
    rows = [f"{word} " + " ".join(f"{x:.6f}" for x in row) for word, row in zip(words, vectors)]
    header = [] if fmt == "glove" else [f"{len(words)} {DIM}"]
    path.write_text("\n".join(header + rows) + "\n", encoding="utf-8")
    return vectors


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return write_tiny_corpus(tmp_path / "corpus")


def _embed(run: Path, corpus: Path, *args):
    return invoke("embed", "--run", run, "--corpus", corpus, "--workers", "1", *args)


@pytest.mark.parametrize("fmt, suffix", [("word2vec", ".txt"), ("word2vec-binary", ".bin"),
                                         ("glove", ".txt"), ("fasttext", ".vec")])
def test_vectors_from_a_file_are_stored_as_trained_ones_and_a_model_trains_on_them(
        corpus, tmp_path, fmt, suffix):
    words = _file_words(corpus)
    path = tmp_path / f"vectors{suffix}"
    vectors = dict(zip(words, write_vectors(path, words, fmt)))
    run = tmp_path / "run"
    result = _embed(run, corpus, "--vectors", path, "--format", fmt)
    assert result.exit_code == 0, result.output
    assert f"of the {len(words)} words of the file ({DIM} dimensions)" in result.stdout

    # The file's words that the train split has, in train-frequency order, with train counts.
    counts = load_corpus(run).vocab_counts()
    kv = load_embeddings(run)
    expected = [(word, count) for word, count in counts if word in vectors]
    assert [(w, kv.get_vecattr(w, "count")) for w in kv.index_to_key] == expected
    assert kv.vectors.dtype == np.float32 and kv.vectors.shape == (len(expected), DIM)
    assert np.allclose(kv.vectors, [vectors[w] for w in kv.index_to_key], atol=1e-6)
    assert not set(EXTRA) & set(kv.key_to_index)

    record = read_json(run / "config.json")["stages"]["embed"]
    assert "vector_size" not in record  # no word2vec option was used
    assert record["vectors"] == {
        "path": str(path), "format": fmt, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "dimensions": DIM, "words": len(words), "kept": len(expected),
        "dropped": len(words) - len(expected), "unknown": len(counts) - len(expected)}

    if fmt != "word2vec":  # every format is stored as the same vectors: one trains
        return
    for kind in ("embedding", "onehot"):
        trained = invoke("train-ae", "--run", run, "--kind", kind, *tiny_ae(1))
        assert trained.exit_code == 0, trained.output
    compared = invoke("compare", "--run", run)
    assert compared.exit_code == 0, compared.output
    assert (run / "compare" / "report.md").is_file()


def test_the_same_file_is_reused_and_an_edited_one_needs_force(corpus, tmp_path):
    path = tmp_path / "vectors.txt"
    write_vectors(path, _file_words(corpus), "word2vec")
    run = tmp_path / "run"
    assert _embed(run, corpus, "--vectors", path).exit_code == 0
    moved = Path(path.rename(tmp_path / "moved.txt"))
    again = _embed(run, corpus, "--vectors", moved)  # a file's name is not its content
    assert again.exit_code == 0 and "reusing word vectors" in again.stderr
    assert read_json(run / "config.json")["stages"]["embed"]["vectors"]["path"] == str(moved)

    assert invoke("train-ae", "--run", run, *tiny_ae(1)).exit_code == 0
    before = np.array(load_embeddings(run).vectors)
    write_vectors(moved, _file_words(corpus), "word2vec", seed=1)
    assert_clean_error(_embed(run, corpus, "--vectors", moved), "embedding-cosine", "--force")
    assert np.array_equal(load_embeddings(run).vectors, before)
    replaced = _embed(run, corpus, "--vectors", moved, "--force")
    assert replaced.exit_code == 0, replaced.output
    assert not np.allclose(load_embeddings(run).vectors, before)


def _lines(*lines: str) -> str:
    return "\n".join(lines) + "\n"


# (file content, --format, a fragment of the one error line)
BAD_FILES = [
    (_lines("3 4", "the 1 2 3 4", "cat 5", "man 1 2 3 4"), "word2vec",
     "line 3 has 1 values, not the 4 of its header"),
    (_lines("the 1 2 3 4", "cat 1 2 3 4 5"), "glove", "line 2 has 5 values, not the 4 of line 1"),
    (_lines("the 1 2 3 4", "", "cat 1 2 3 4"), "glove", "line 2 has no values"),
    (_lines("the 1 2 3 4", "cat 1 2 3 4"), "word2vec", "--format glove"),
    (_lines("2 4", "the 1 2 3 4", "cat 1 2 3 4"), "glove", "--format word2vec"),
    (_lines("3 4", "the 1 2 3 4", "cat 1 2 3 4"), "fasttext", "announces 3 words but it has 2"),
    (_lines("2 2", "the 1 x", "cat 1 2"), "word2vec", "could not convert string to float"),
    (_lines("2 2", "the 1 nan", "cat 1 2"), "word2vec", "the vector of 'the' has a value that is not finite"),
    (_lines("2 2", "zebra 1 2", "quantum 1 2"), "word2vec", "no word of"),
    ("", "glove", "it has no vectors"),
]


@pytest.mark.parametrize("content, fmt, message", BAD_FILES, ids=[m for _, _, m in BAD_FILES])
def test_a_bad_vectors_file_is_one_error_line_and_writes_nothing(corpus, tmp_path, content, fmt,
                                                                 message):
    path = tmp_path / "vectors.txt"
    path.write_text(content, encoding="utf-8")
    run = tmp_path / "run"
    result = _embed(run, corpus, "--vectors", path, "--format", fmt)
    assert_clean_error(result, message, str(path))
    assert not run.exists()


def test_a_truncated_binary_file_is_one_error_line(corpus, tmp_path):
    path = tmp_path / "vectors.bin"
    write_vectors(path, _file_words(corpus), "word2vec-binary")
    path.write_bytes(path.read_bytes()[:-10])
    assert_clean_error(_embed(tmp_path / "run", corpus, "--vectors", path, "--format",
                              "word2vec-binary"), "ends before the words its header announces")


@pytest.mark.parametrize("args, message", [
    (["--vectors", "missing.vec"], "no input file missing.vec"),
    (["--vectors", "v.txt", "--format", "word2vec-text"], "'word2vec-text' is not one of"),
    (["--format", "glove"], "--format applies to --vectors FILE only"),
    (["--vectors", "v.txt", "--vector-size", "300", "--cbow"], "--vector-size, --sg/--cbow: word2vec training options"),
])
def test_bad_vectors_options_are_one_error_line(corpus, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    write_vectors(tmp_path / "v.txt", _file_words(corpus), "word2vec")
    result = _embed(tmp_path / "run", corpus, *args)
    assert_clean_error(result, message)
    assert not (tmp_path / "run").exists()


def test_run_embed_takes_pretrained_vectors_in_place_of_word2vec(corpus, tmp_path):
    path = tmp_path / "v.glove"
    write_vectors(path, _file_words(corpus), "glove")
    result = run_embed(tmp_path / "run", CorpusConfig(source=str(corpus)),
                       PretrainedVectors(path, format="glove"), workers=1)
    assert result.pretrained["format"] == "glove" and result.vectors.vector_size == DIM
    assert result.pretrained["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(SeqaeError, match="format"):
        PretrainedVectors(path, format="txt")
    with pytest.raises(SeqaeError, match="--vectors"):
        PretrainedVectors("")
    with pytest.raises(SeqaeError, match=r"a Word2VecConfig\(...\) or a PretrainedVectors"):
        run_embed(tmp_path / "other", CorpusConfig(source=str(corpus)), str(path))
