"""Real-data checks (``-m slow``): the shared 20 Newsgroups archive and gensim's Lee corpus."""

from __future__ import annotations

from collections import Counter

import pytest

from embeddings import CorpusConfig, Word2VecConfig, read_corpus
from pipelines import run_embed
from tests.conftest import SHARED_20NEWS

pytestmark = pytest.mark.slow
needs_20news = pytest.mark.skipif(not SHARED_20NEWS.is_file(), reason=f"{SHARED_20NEWS} not present")


@needs_20news
def test_20news_archive_reads_every_post():
    docs, report = read_corpus(str(SHARED_20NEWS), remove=())
    assert report["documents"] + report["empty_documents"] == 18846
    assert Counter(d.split for d in docs) == {"train": 11314, "test": 7532}
    assert len({d.group for d in docs}) == 20
    stripped, report = read_corpus(str(SHARED_20NEWS))
    assert report["remove"] == ["headers", "footers", "quotes"] and report["empty_documents"] > 0
    # scikit-learn strips up to the first blank line; a few posts quote a second header block.
    assert sum(d.text.startswith("From:") for d in stripped) < 100


@needs_20news
def test_20news_sample_embeds_with_official_test_split(tmp_path):
    result = run_embed(
        tmp_path / "run", CorpusConfig(source=str(SHARED_20NEWS), max_docs=1500),
        Word2VecConfig(vector_size=50, epochs=2),
    )
    splits = result.corpus.stats["splits"]
    assert sum(s["documents"] for s in splits.values()) <= 1500
    assert splits["test"]["documents"] > 0 and splits["val"]["documents"] > 0
    assert 0 < splits["test"]["unk_share_cap2000"] < 0.5
    assert len(result.vectors) > 1000 and result.evaluation["wordsim353"]["spearman"] is not None


def test_default_corpus_full_embed(tmp_path):
    result = run_embed(tmp_path / "run", CorpusConfig(), Word2VecConfig())
    splits = result.corpus.stats["splits"]
    assert [splits[s]["documents"] for s in ("train", "val", "test")] == [270, 15, 15]
    assert result.vectors.vector_size == 2000 and len(result.vectors) > 1000
    assert result.evaluation["wordsim353"]["pairs"] > 10
