"""Tokenization: Punkt trained on the corpus (no NLTK downloads), units, worker pool order."""

from __future__ import annotations

import pytest

from embeddings import Document, SeqaeError, TokenizeConfig, Tokenizer, tokenize_documents, train_punkt
from tests.conftest import english_like_sentences


@pytest.fixture(scope="module")
def punkt():
    names = ["Smith", "Jones", "Brown", "Taylor"]
    texts = [
        f"Dr. {names[i % 4]} called the office. The nurse wrote a letter. "
        f"Mr. {names[(i + 1) % 4]} visited the clinic yesterday."
        for i in range(200)
    ]
    return train_punkt(texts)


def test_punkt_learns_abbreviations_without_downloads(punkt):
    assert {"dr", "mr"} <= punkt.abbrev_types
    units = Tokenizer(TokenizeConfig(), punkt)("Dr. Smith went home. He slept.")
    assert units == [["dr.", "smith", "went", "home", "."], ["he", "slept", "."]]


def test_untrained_punkt_still_splits_sentences():
    units = Tokenizer(TokenizeConfig(), None)("The sun rose. Birds sang! Did you hear?")
    assert units == [["the", "sun", "rose", "."], ["birds", "sang", "!"], ["did", "you", "hear", "?"]]


def test_blank_lines_end_units_and_empty_units_are_dropped(punkt):
    text = "A title without a period\n\n  \n\nThe body\nwraps over lines.\n\n"
    units = Tokenizer(TokenizeConfig(), punkt)(text)
    assert units == [["a", "title", "without", "a", "period"], ["the", "body", "wraps", "over", "lines", "."]]


def test_lowercase_can_be_turned_off(punkt):
    units = Tokenizer(TokenizeConfig(lowercase=False), punkt)("Paris is big.")
    assert units == [["Paris", "is", "big", "."]]


def test_paragraph_unit_groups_non_empty_lines():
    text = "l1 a\nl2 b\n\nl3 c\nl4 d\n\n\nl5 e\nl6 f\nl7 g\n"
    units = Tokenizer(TokenizeConfig(unit="paragraph", paragraph_lines=3), None)(text)
    assert units == [["l1", "a", "l2", "b", "l3", "c"], ["l4", "d", "l5", "e", "l6", "f"], ["l7", "g"]]


@pytest.mark.parametrize("kwargs", [{"unit": "word"}, {"paragraph_lines": 0}])
def test_bad_tokenize_config_is_an_error(kwargs):
    with pytest.raises(SeqaeError):
        TokenizeConfig(**kwargs)


def test_worker_pool_keeps_document_order(punkt):
    docs = [Document(str(i), " ".join(english_like_sentences(5, seed=i))) for i in range(300)]
    config = TokenizeConfig()
    serial = list(tokenize_documents(docs, config, punkt, workers=1))
    pooled = list(tokenize_documents(docs, config, punkt, workers=2))
    assert pooled == serial
    assert len(serial) == 300 and serial[0] != serial[1]


def test_train_punkt_caps_training_text():
    text = "Dr. Who left. " * 1000
    small = train_punkt([text], max_chars=100)
    assert "dr" not in small.abbrev_types
    assert "dr" in train_punkt([text]).abbrev_types
