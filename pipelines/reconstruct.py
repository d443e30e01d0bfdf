"""One sentence through a trained model: tokenized as the corpus is, encoded, decoded."""

from __future__ import annotations

import functools
import logging
import os

import numpy as np

from autoencoder.data.vocab import UNK_ID
from autoencoder.model.network import SentenceAutoencoder
from embeddings.store.errors import SeqaeError
from embeddings.store.rundir import RunDir
from embeddings.tokenize import TokenizeConfig, Tokenizer
from pipelines.models import load_run_model
from pipelines.params import ReconstructParams

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=1)
def _sentence_tokenizer() -> Tokenizer:
    return Tokenizer(TokenizeConfig(unit="paragraph"), None)


def tokenize_sentence(sentence: str) -> list[str]:
    """The tokens of one sentence, tokenized as the corpus is (lower-cased words and
    punctuation), however many sentences Punkt would see in it."""
    return [t for unit in _sentence_tokenizer()(sentence) for t in unit]


def sentence_ids(ae: SentenceAutoencoder, sentence: str, name: str,
                 known: bool = False) -> tuple[list[str], np.ndarray]:
    """The tokens of ``sentence`` that model ``name`` reads (the first ``seq_len``; a warning
    says when the rest is cut) and their ids, shape (seq_len,) int32 right-padded with PAD.

    ``known`` : refuse a sentence whose every word is unknown to the model (all UNK), whose
        code says nothing about it.
    """
    tokens = tokenize_sentence(sentence)
    if not tokens:
        raise SeqaeError("the sentence has no tokens")
    if len(tokens) > ae.config.seq_len:
        log.warning("the sentence has %d tokens; model %s reads the first %d (--seq-len): the "
                    "rest is cut", len(tokens), name, ae.config.seq_len)
    tokens = tokens[: ae.config.seq_len]
    ids = ae.vocab.encode(tokens, ae.config.seq_len)
    if known and (ids[: len(tokens)] == UNK_ID).all():
        raise SeqaeError(f"every word of {sentence!r} is unknown to model {name}: its code "
                         "would mean nothing")
    return tokens, ids


def reconstruct_sentence(run_dir: str | os.PathLike | RunDir, sentence: str,
                         name: str | None = None,
                         top_k: int = ReconstructParams.top_k) -> dict:
    """Autoencode one sentence with model ``name`` (default: the only model, else
    ``embedding-cosine``).

    Returns ``{"model", "tokens", "ids", "reconstruction", "candidates"}``; ``candidates`` holds,
    per position, the ``top_k`` best (word, score) pairs: cosine for the embedding kind,
    probability for onehot.
    """
    ReconstructParams(top_k=top_k)
    name, ae = load_run_model(run_dir, name)
    tokens, ids = sentence_ids(ae, sentence, name)
    outputs = ae.decoder_outputs(ae.encode(ids[None]))  # what it writes from the code alone
    top, scores = ae.decode(outputs, top_k)
    words = ae.vocab.words
    candidates = [[(words[i], float(s)) for i, s in zip(top[0, p], scores[0, p])]
                  for p in range(len(tokens))]
    return {"model": name, "tokens": tokens, "ids": ids[: len(tokens)].tolist(),
            "reconstruction": [c[0][0] for c in candidates], "candidates": candidates}
