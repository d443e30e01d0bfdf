"""word2vec: determinism, pickle-free storage, word2vec export, evaluation, the whole stage."""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import pytest
from gensim.models import KeyedVectors

from embeddings import (
    CorpusConfig, EpochLogger, SeqaeError, Word2VecConfig, evaluate_vectors, export_word2vec,
    format_evaluation, load_corpus, load_vectors, save_vectors, train_word2vec,
)
from pipelines import run_embed
from tests.conftest import TINY_W2V, read_json


@pytest.fixture
def train_file(tmp_path):
    from tests.conftest import english_like_sentences

    path = tmp_path / "train.txt"
    lines = [" ".join(s.lower().rstrip(".").split()) for s in english_like_sentences(300)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_one_worker_same_seed_gives_identical_vectors(train_file):
    first = train_word2vec(train_file, TINY_W2V)
    second = train_word2vec(train_file, TINY_W2V)
    other = train_word2vec(train_file, replace(TINY_W2V, seed=1))
    assert first.index_to_key == second.index_to_key
    assert np.array_equal(first.vectors, second.vectors)
    assert not np.array_equal(first.vectors, other.vectors)
    assert first.vectors.shape == (len(first), 16) and first.vectors.dtype == np.float32
    assert first.index_to_key[0] == "the" and first.get_vecattr("the", "count") > 300


def test_progress_records_every_epoch(train_file):
    progress = EpochLogger()
    train_word2vec(train_file, replace(TINY_W2V, epochs=3), progress)
    assert [e["epoch"] for e in progress.history] == [1, 2, 3]
    assert all(e["words_per_second"] > 0 for e in progress.history)


def test_min_count_leaving_no_word_is_an_error(train_file):
    with pytest.raises(SeqaeError, match="min_count=100000 times or more"):
        train_word2vec(train_file, replace(TINY_W2V, min_count=100_000))


@pytest.mark.parametrize("field", ["vector_size", "window", "min_count", "negative", "epochs", "workers"])
def test_non_positive_word2vec_options_are_errors(field):
    with pytest.raises(SeqaeError, match=field):
        Word2VecConfig(**{field: 0})


def test_save_load_round_trip_is_memory_mapped_and_pickle_free(train_file, tmp_path):
    kv = train_word2vec(train_file, TINY_W2V)
    save_vectors(kv, tmp_path / "emb")
    assert sorted(p.name for p in (tmp_path / "emb").iterdir()) == ["vectors.npy", "vocab.tsv"]
    loaded = load_vectors(tmp_path / "emb")
    assert isinstance(loaded.vectors, np.memmap) and not loaded.vectors.flags.writeable
    assert loaded.index_to_key == kv.index_to_key
    assert np.array_equal(loaded.vectors, kv.vectors)
    assert [loaded.get_vecattr(w, "count") for w in kv.index_to_key] == \
           [kv.get_vecattr(w, "count") for w in kv.index_to_key]
    assert loaded.most_similar("cat", topn=3) == kv.most_similar("cat", topn=3)
    in_memory = load_vectors(tmp_path / "emb", mmap=False)
    assert not isinstance(in_memory.vectors, np.memmap)


def _write_pickled_object_array(folder):
    np.save(folder / "vectors.npy", np.array([object()], dtype=object), allow_pickle=True)


def _truncate_vectors(folder):
    data = (folder / "vectors.npy").read_bytes()
    (folder / "vectors.npy").write_bytes(data[: len(data) // 2])


def _extra_vocab_line(folder):
    with open(folder / "vocab.tsv", "a", encoding="utf-8") as handle:
        handle.write("extra\t1\n")


@pytest.mark.parametrize("damage, message", [
    (lambda folder: (folder / "vectors.npy").unlink(), "missing vectors file"),
    (lambda folder: (folder / "vocab.tsv").unlink(), "missing vocabulary file"),
    (_write_pickled_object_array, "corrupt vectors file"),
    (_truncate_vectors, "corrupt vectors file"),
    (_extra_vocab_line, "lists 4 words but .* has 3 rows"),
    (lambda folder: (folder / "vocab.tsv").write_text("a 1\nb 2\nc 3\n"), "line 1 is not word<TAB>count"),
])
def test_damaged_vectors_are_clear_errors(tmp_path, damage, message):
    kv = KeyedVectors(4)
    kv.add_vectors(["a", "b", "c"], np.eye(3, 4, dtype=np.float32))
    save_vectors(kv, tmp_path)
    damage(tmp_path)
    with pytest.raises(SeqaeError, match=message):
        load_vectors(tmp_path)


def test_words_that_would_break_the_files_are_refused(tmp_path):
    kv = KeyedVectors(2)
    kv.add_vectors(["new york"], np.ones((1, 2), dtype=np.float32))
    save_vectors(kv, tmp_path)  # a space is fine in vocab.tsv...
    with pytest.raises(SeqaeError, match="whitespace"):  # ...but not in word2vec format
        export_word2vec(kv, tmp_path / "out.bin")
    kv.add_vectors(["tab\there"], np.ones((1, 2), dtype=np.float32))
    with pytest.raises(SeqaeError, match="tab or line break"):
        save_vectors(kv, tmp_path)


@pytest.mark.parametrize("binary", [True, False])
def test_export_is_readable_by_gensim(train_file, tmp_path, binary):
    kv = train_word2vec(train_file, TINY_W2V)
    path = tmp_path / ("vectors.bin" if binary else "vectors.txt")
    export_word2vec(kv, path, binary=binary)
    back = KeyedVectors.load_word2vec_format(str(path), binary=binary)
    assert set(back.index_to_key) == set(kv.index_to_key)
    assert np.allclose(back["cat"], kv["cat"], atol=1e-5)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_evaluation_returns_numbers_for_benchmark_words():
    words = ["tiger", "cat", "love", "sex", "book", "paper", "computer", "keyboard", "king", "queen",
             "man", "woman", "boy", "girl", "old", "new", "smart", "intelligent", "hard", "difficult"]
    kv = KeyedVectors(8)
    kv.add_vectors(words, np.random.default_rng(0).normal(size=(len(words), 8)).astype(np.float32))
    results = evaluate_vectors(kv)
    for name in ("wordsim353", "simlex999"):
        r = results[name]
        assert isinstance(r["spearman"], float) and -1 <= r["spearman"] <= 1
        assert isinstance(r["pearson"], float)
        assert 0 < r["oov_share"] < 1 and r["pairs"] >= 3
    analogy = results["analogy"]
    assert 0 <= analogy["accuracy"] <= 1 and analogy["questions"] > 0 and analogy["sections"] >= 1
    assert 0.99 < analogy["oov_share"] < 1
    assert "wordsim353" in format_evaluation(results)


@pytest.mark.parametrize("words", [[], ["zzz"], ["tiger", "cat"]])
def test_evaluation_of_a_tiny_vocabulary_gives_none(words):
    kv = KeyedVectors(4)
    if words:
        kv.add_vectors(words, np.ones((len(words), 4), dtype=np.float32))
    results = evaluate_vectors(kv)
    assert results["wordsim353"]["spearman"] is None and results["simlex999"]["pearson"] is None
    assert results["analogy"] == {"accuracy": None, "oov_share": 1.0, "questions": 0, "sections": 0}
    assert "-" in format_evaluation(results)


def test_tiny_run_has_every_artifact(tiny_run):
    corpus = load_corpus(tiny_run)
    kv = load_vectors(tiny_run / "embeddings")
    assert kv.vector_size == 16 and len(kv) == corpus.stats["splits"]["train"]["vocabulary_size"]
    assert {w: kv.get_vecattr(w, "count") for w in kv.index_to_key} == dict(corpus.vocab_counts())
    meta = read_json(tiny_run / "embeddings" / "meta.json")
    assert meta["key"]["corpus"] == corpus.digest and len(meta["epochs"]) == 2
    assert set(read_json(tiny_run / "embeddings" / "eval.json")) == {"wordsim353", "simlex999", "analogy"}


def test_run_embed_reuses_vectors_unless_options_change(tiny_run, caplog):
    corpus_config = CorpusConfig(source=load_corpus(tiny_run).stats["config"]["source"])
    with caplog.at_level(logging.INFO, logger="pipelines"):
        again = run_embed(tiny_run, corpus_config, TINY_W2V, workers=1)
    assert again.reused and "reusing word vectors" in caplog.text
    assert isinstance(again.vectors.vectors, np.memmap)
    changed = run_embed(tiny_run, corpus_config, replace(TINY_W2V, vector_size=8), workers=1)
    assert not changed.reused and changed.vectors.vector_size == 8
    assert load_vectors(tiny_run / "embeddings").vector_size == 8
    assert not run_embed(tiny_run, corpus_config, replace(TINY_W2V, vector_size=8), force=True).reused
