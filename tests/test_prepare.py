"""Corpus preparation: splits, statistics with known answers, files, cache and atomicity."""

from __future__ import annotations

import logging
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import embeddings.prepare as prepare_module
from embeddings import (
    ONE_HOT_WORDS, SPLITS, CorpusConfig, Document, SeqaeError, format_stats, load_corpus,
    prepare_corpus,
)
from embeddings.prepare import split_documents
from embeddings.stats import SplitCounter, percentile, split_statistics


def _docs(n: int, fixed_test: int = 0) -> list[Document]:
    return [Document(str(i), "x", "test" if i < fixed_test else ("train" if fixed_test else None))
            for i in range(n)]


def test_splits_are_90_5_5_and_seeded():
    docs = _docs(100)
    _, first = split_documents(docs, CorpusConfig(seed=1))
    _, again = split_documents(docs, CorpusConfig(seed=1))
    _, other = split_documents(docs, CorpusConfig(seed=2))
    assert first == again
    assert first != other
    assert Counter(first) == {"train": 90, "val": 5, "test": 5}


def test_20news_test_posts_stay_test_and_val_comes_from_train():
    docs = _docs(200, fixed_test=60)
    for seed in range(3):
        _, splits = split_documents(docs, CorpusConfig(seed=seed))
        assert splits[:60] == ["test"] * 60
        assert Counter(splits[60:]) == {"train": 133, "val": 7}  # 5% of 140 train posts


def test_tiny_corpora_keep_one_train_document():
    _, splits = split_documents(_docs(1), CorpusConfig(val_fraction=0.5, test_fraction=0.4))
    assert splits == ["train"]
    _, splits = split_documents(_docs(3), CorpusConfig(val_fraction=0.5, test_fraction=0.4))
    assert Counter(splits) == {"train": 1, "val": 1, "test": 1}


def test_max_docs_takes_a_seeded_subsample_in_order():
    docs = _docs(50)
    sample, splits = split_documents(docs, CorpusConfig(max_docs=10, seed=3))
    again, _ = split_documents(docs, CorpusConfig(max_docs=10, seed=3))
    assert sample == again and len(sample) == len(splits) == 10
    assert [int(d.doc_id) for d in sample] == sorted(int(d.doc_id) for d in sample)
    assert sample != split_documents(docs, CorpusConfig(max_docs=10, seed=4))[0]


def test_only_test_documents_is_an_error():
    with pytest.raises(SeqaeError, match="no training documents"):
        split_documents([Document("a", "x", "test")], CorpusConfig())


@pytest.mark.parametrize("kwargs", [
    {"val_fraction": 1.0}, {"val_fraction": 0.6, "test_fraction": 0.4}, {"max_docs": 0},
    {"remove": ("signatures",)}, {"unit": "word"},
])
def test_bad_corpus_config_is_an_error(kwargs):
    with pytest.raises(SeqaeError):
        CorpusConfig(**kwargs)


HAND_MADE = "The cat sat. Dogs ran.\n\nBirds sing very loudly.\n"


def test_statistics_of_a_hand_made_corpus(tmp_path):
    # Three copies of one document: one each for train, val and test.
    for name in "abc":
        (tmp_path / "hand" / f"{name}.txt").parent.mkdir(exist_ok=True)
        (tmp_path / "hand" / f"{name}.txt").write_text(HAND_MADE)
    corpus = prepare_corpus(CorpusConfig(source=str(tmp_path / "hand")), tmp_path / "run", workers=1)
    train = corpus.stats["splits"]["train"]
    assert train == {
        "documents": 1, "sentences": 3, "tokens": 12,
        "sentence_length": {"min": 3, "max": 5, "mean": 4.0, "p25": 3.5, "median": 4.0, "p75": 4.5},
        "vocabulary_size": 10, "unk_tokens_cap2000": 0, "unk_share_cap2000": 0.0,
    }
    assert corpus.stats["splits"]["val"] == corpus.stats["splits"]["test"] == train
    assert list(corpus.iter_sentences("train")) == [
        ["the", "cat", "sat", "."], ["dogs", "ran", "."], ["birds", "sing", "very", "loudly", "."]]
    assert corpus.vocab_counts()[:3] == [(".", 3), ("birds", 1), ("cat", 1)]
    table = format_stats(corpus.stats)
    assert "train" in table and "unk share" in table


@pytest.mark.parametrize("text", ["The cat sat. Dogs ran. Birds sing very loudly.\n", "... !!! ???\n"])
def test_a_corpus_without_val_or_test_sentences_is_refused_before_writing(tmp_path, text):
    """One document (a file of one line, or of punctuation) cannot give three splits: refused, and an
    existing corpus of the run stays as it was."""
    run = tmp_path / "run"
    good = tmp_path / "good"
    for name in "abc":
        good.mkdir(exist_ok=True)
        (good / f"{name}.txt").write_text(HAND_MADE)
    prepare_corpus(CorpusConfig(source=str(good)), run, workers=1)
    before = {p.name: p.read_bytes() for p in (run / "corpus").iterdir()}
    path = tmp_path / "one.txt"
    path.write_text(text)
    with pytest.raises(SeqaeError, match="no sentence in the val and test splits"):
        prepare_corpus(CorpusConfig(source=str(path)), run, workers=1)
    assert {p.name: p.read_bytes() for p in (run / "corpus").iterdir()} == before
    assert sorted(p.name for p in run.iterdir()) == ["corpus"]  # no staging folder left


def test_unknown_tokens_use_the_1998_most_frequent_train_words():
    train, test = SplitCounter(), SplitCounter()
    words = [f"w{i:04d}" for i in range(2000)]
    # w0000 is the most frequent; w1997, w1998 and w1999 tie, and ties go to the smaller word.
    train.words.update({word: 3000 - min(i, 1997) for i, word in enumerate(words)})
    test.add([["w0000", "w1997", "w1998", "w1999", "unseen"]])
    stats = split_statistics({"train": train, "val": SplitCounter(), "test": test})
    assert ONE_HOT_WORDS == 1998
    assert stats["train"]["unk_tokens_cap2000"] == 2 * 1003
    assert stats["test"]["unk_tokens_cap2000"] == 3
    assert stats["test"]["unk_share_cap2000"] == pytest.approx(3 / 5)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.integers(1, 60), st.integers(1, 5), min_size=1), st.floats(0, 100))
def test_percentile_of_histogram_matches_numpy(histogram, q):
    sample = np.repeat(list(histogram), list(histogram.values()))
    assert percentile(histogram, q) == pytest.approx(np.percentile(sample, q))


def test_prepare_writes_line_sentence_files_and_reuses_them(tiny_text_corpus, tmp_path, caplog):
    config = CorpusConfig(source=str(tiny_text_corpus))
    run = tmp_path / "run"
    corpus = prepare_corpus(config, run, workers=1)
    assert sorted(p.name for p in corpus.root.iterdir()) == [
        "manifest.json", "meta.json", "stats.json", "test.txt", "train.txt", "val.txt", "vocab.tsv"]
    stats = corpus.stats["splits"]
    assert [stats[s]["documents"] for s in SPLITS] == [18, 1, 1]
    # 300 sentences; Punkt may also split after abbreviations too rare in 20 documents to learn.
    assert 300 <= sum(stats[s]["sentences"] for s in SPLITS) <= 330
    for split in SPLITS:
        lines = corpus.split_path(split).read_text(encoding="utf-8").splitlines()
        assert len(lines) == stats[split]["sentences"]
        assert list(corpus.iter_sentences(split)) == [line.split(" ") for line in lines]
    assert sum(c for _, c in corpus.vocab_counts()) == stats["train"]["tokens"]

    mtime = corpus.split_path("train").stat().st_mtime_ns
    with caplog.at_level(logging.INFO, logger="embeddings"):
        again = prepare_corpus(config, run, workers=1)
    assert "reusing tokenized corpus" in caplog.text
    assert again == load_corpus(run) and again.stats == corpus.stats
    assert again.split_path("train").stat().st_mtime_ns == mtime


def test_prepare_recomputes_when_options_source_or_force_change(tiny_text_corpus, tmp_path):
    run = tmp_path / "run"
    config = CorpusConfig(source=str(tiny_text_corpus))
    digest = prepare_corpus(config, run, workers=1).digest
    paragraphs = prepare_corpus(CorpusConfig(source=str(tiny_text_corpus), unit="paragraph"), run, workers=1)
    assert paragraphs.digest != digest and paragraphs.stats["splits"]["train"]["sentences"] < 100
    assert prepare_corpus(config, run, workers=1).digest == digest
    (tiny_text_corpus / "new.txt").write_text("A brand new document.")
    changed = prepare_corpus(config, run, workers=1)
    assert changed.digest != digest and changed.stats["source"]["documents"] == 21
    mtime = changed.split_path("train").stat().st_mtime_ns
    forced = prepare_corpus(config, run, workers=1, force=True)
    assert forced.split_path("train").stat().st_mtime_ns != mtime


def test_prepare_20news_keeps_official_test_posts(fake_20news_archive, tmp_path):
    corpus = prepare_corpus(CorpusConfig(source=str(fake_20news_archive)), tmp_path / "run", workers=1)
    stats = corpus.stats["splits"]
    assert [stats[s]["documents"] for s in SPLITS] == [5, 1, 2]  # val: at least one post
    assert "café" in corpus.split_path("train").read_text(encoding="utf-8")
    assert "writes" not in corpus.split_path("test").read_text(encoding="utf-8")


def test_interrupted_prepare_leaves_the_previous_corpus_valid(tiny_text_corpus, tmp_path, monkeypatch):
    run = tmp_path / "run"
    before = prepare_corpus(CorpusConfig(source=str(tiny_text_corpus)), run, workers=1)
    files = {p.name: p.read_bytes() for p in (run / "corpus").iterdir()}

    def crash(docs, *args, **kwargs):
        yield [["first", "document"]]
        raise KeyboardInterrupt

    monkeypatch.setattr(prepare_module, "tokenize_documents", crash)
    with pytest.raises(KeyboardInterrupt):
        prepare_corpus(CorpusConfig(source=str(tiny_text_corpus), seed=1), run, workers=1)
    assert {p.name: p.read_bytes() for p in (run / "corpus").iterdir()} == files
    assert load_corpus(run).digest == before.digest
    assert sorted(p.name for p in run.iterdir()) == ["corpus"]  # no staging folder left


def test_load_corpus_without_prepare_is_a_clear_error(tmp_path):
    with pytest.raises(SeqaeError, match=r"no prepared corpus in .*: run `pipe embed` first"):
        load_corpus(tmp_path)
