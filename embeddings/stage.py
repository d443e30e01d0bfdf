"""The embedding stage end to end: prepared corpus -> word2vec vectors -> evaluation.

Layout of ``RUN/embeddings``: ``vectors.npy`` and ``vocab.tsv`` (see :mod:`embeddings.word2vec`),
``eval.json`` (:func:`embeddings.evaluate.evaluate_vectors`), ``manifest.json`` (their sizes and
hashes), and ``meta.json`` (cache key and training history), written last so its presence means
"complete".
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from gensim.models import KeyedVectors

from embeddings.evaluate import evaluate_vectors
from embeddings.io import (
    SeqaeError, is_complete, options_digest, read_json, verify_manifest, write_json, write_manifest,
)
from embeddings.prepare import CorpusConfig, PreparedCorpus, prepare_corpus
from embeddings.word2vec import (
    VECTORS_FILE, VOCAB_FILE, EpochLogger, Word2VecConfig, load_vectors, save_vectors, train_word2vec,
)

log = logging.getLogger(__name__)

EMBEDDINGS_DIR = "embeddings"
_FILES = (VECTORS_FILE, VOCAB_FILE, "eval.json")


@dataclass(frozen=True)
class EmbedResult:
    """What the embedding stage produced: the corpus, the vectors and their evaluation."""

    corpus: PreparedCorpus
    vectors: KeyedVectors
    evaluation: dict
    reused: bool  # True when the vectors came from an earlier identical run


def run_embed(
    run_dir: Path,
    corpus_config: CorpusConfig,
    w2v_config: Word2VecConfig,
    workers: int | None = None,
    force: bool = False,
) -> EmbedResult:
    """Prepare the corpus, train word2vec on its train split, save and evaluate the vectors.

    Finished vectors are reused when the corpus and the word2vec options (``workers`` aside)
    are unchanged, unless ``force``. ``workers`` is the number of tokenizer processes (default:
    all cores); word2vec threads come from ``w2v_config.workers``.
    """
    run_dir = Path(run_dir)
    corpus = prepare_corpus(corpus_config, run_dir, workers=workers, force=force)
    folder = run_dir / EMBEDDINGS_DIR
    options = {k: v for k, v in asdict(w2v_config).items() if k != "workers"}
    key = {"corpus": corpus.digest, "word2vec": options}
    digest = options_digest(key)
    if not force and is_complete(folder, _FILES, digest):
        log.info("reusing word2vec vectors in %s", folder)
        return EmbedResult(corpus, load_embeddings(run_dir), read_json(folder / "eval.json"),
                           reused=True)
    (folder / "meta.json").unlink(missing_ok=True)  # from here on, old files must not pass as complete

    progress = EpochLogger()
    started = time.perf_counter()
    kv = train_word2vec(corpus.split_path("train"), w2v_config, progress)
    seconds = time.perf_counter() - started
    save_vectors(kv, folder)
    log.info("evaluating %d vectors", len(kv))
    evaluation = evaluate_vectors(kv)
    write_json(folder / "eval.json", evaluation)
    write_manifest(folder, _FILES, key)
    write_json(folder / "meta.json", {
        "digest": digest, "key": key, "vocabulary": len(kv), "dimensions": kv.vector_size,
        "train_seconds": seconds, "epochs": progress.history,
    })
    return EmbedResult(corpus, kv, evaluation, reused=False)


def load_embeddings(run_dir: Path) -> KeyedVectors:
    """The run's word vectors (memory-mapped, never unpickled), verified against their manifest."""
    folder = Path(run_dir) / EMBEDDINGS_DIR
    if not (folder / "meta.json").is_file():
        raise SeqaeError(f"no word vectors in {run_dir}: run `pipe embed` first")
    verify_manifest(folder)
    return load_vectors(folder)
