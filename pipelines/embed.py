"""The embedding stage end to end: prepared corpus -> word2vec vectors -> evaluation.

The vectors are trained (a :class:`~embeddings.word2vec.Word2VecConfig`) or read from the user's
file (a :class:`~embeddings.pretrained.PretrainedVectors`); either way they are stored alike.
Layout of ``RUN/embeddings``: ``vectors.npy`` and ``vocab.tsv`` (see :mod:`embeddings.word2vec`),
``eval.json`` (:func:`embeddings.evaluate.evaluate_vectors`), ``manifest.json`` (their sizes and
hashes), and ``meta.json`` (cache key, and the training history or the file's record), written
last so its presence means "complete".
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass

from gensim.models import KeyedVectors

from embeddings.core.params import WORKERS, check_type
from embeddings.evaluate import EVAL_SCHEMA, evaluate_vectors
from embeddings.prepare import (
    CorpusConfig,
    PreparedCorpus,
    corpus_is_current,
    corpus_key,
    load_corpus,
    write_corpus,
)
from embeddings.pretrained import PretrainedVectors, corpus_vectors, read_pretrained
from embeddings.store.errors import SeqaeError
from embeddings.store.jsonfile import options_digest, read_json, write_json
from embeddings.store.manifests import (
    META,
    META_SCHEMA,
    is_complete,
    staged_folders,
    verify_manifest,
    write_manifest,
)
from embeddings.store.rundir import (
    CORPUS,
    EMBEDDINGS,
    RunDir,
    check_replaceable,
    list_models,
    writes_run,
)
from embeddings.word2vec import (
    VECTORS_FILE,
    VOCAB_FILE,
    EpochLogger,
    Word2VecConfig,
    load_vectors,
    save_vectors,
    train_word2vec,
)

log = logging.getLogger(__name__)

_FILES = (VECTORS_FILE, VOCAB_FILE, "eval.json")


@dataclass(frozen=True)
class EmbedResult:
    """What the embedding stage produced: the corpus, the vectors and their evaluation;
    ``pretrained``: for vectors read from a file, what was read (its format and sha256, its
    dimensions and words, how many were kept and dropped, and the train words without a
    vector: ``unknown``), else None."""

    corpus: PreparedCorpus
    vectors: KeyedVectors
    evaluation: dict
    reused: bool  # True when the vectors came from an earlier identical run
    pretrained: dict | None = None


@writes_run(create=True)
def run_embed(
    run: RunDir,
    corpus_config: CorpusConfig,
    w2v_config: Word2VecConfig | PretrainedVectors,
    workers: int | None = None,
    force: bool = False,
) -> EmbedResult:
    """Prepare the corpus, then train word2vec on its train split (a ``Word2VecConfig``) or read
    the vectors of a file (a ``PretrainedVectors``: the file's words that the train split has,
    most frequent first, see :mod:`embeddings.pretrained`); save and evaluate the vectors.

    Finished results are reused when the corpus and the word2vec options (``workers`` aside),
    or the file's format and content (its sha256), are unchanged, unless ``force``. ``workers``
    is the number of tokenizer processes (default: all cores); word2vec threads come from
    ``w2v_config.workers``. The options are recorded in ``RUN/config.json`` (stage ``embed``;
    for a file, ``vectors``: its record, :attr:`EmbedResult.pretrained`).

    Models are tied to the vectors they were trained on, so replacing the corpus or the vectors
    of a run that has models needs ``force`` (the orphaned models are named). A file of vectors
    is read and checked before the corpus is prepared; the new corpus and vectors are written
    beside the old ones and replace them together at the end: a failure leaves the run as it was.
    """
    check_type("corpus_config", corpus_config, CorpusConfig)
    check_type("w2v_config", w2v_config, (Word2VecConfig, PretrainedVectors))
    WORKERS.check("workers", workers)
    key = {"corpus": options_digest(corpus_key(corpus_config)), **_vectors_key(w2v_config)}
    corpus_current = not force and corpus_is_current(corpus_config, run)
    result = _reused(run, key, corpus_current)
    if result is None:
        _check_replacing(run, force)
        result = _embed(run, corpus_config, w2v_config, key, workers,
                        reuse_corpus=corpus_current)
    vectors = ({"vectors": {"path": w2v_config.path, **result.pretrained}}
               if isinstance(w2v_config, PretrainedVectors) else asdict(w2v_config))
    run.record("embed", {**asdict(corpus_config), "remove": result.corpus.stats["source"]["remove"],
                         **vectors})
    return result


def _vectors_key(config: Word2VecConfig | PretrainedVectors) -> dict:
    """What the vectors depend on besides the corpus: word2vec's options (``workers`` aside),
    or the file's format and sha256."""
    if isinstance(config, PretrainedVectors):
        return {"vectors": config.fingerprint()}
    return {"word2vec": {k: v for k, v in asdict(config).items() if k != "workers"}}


def _reused(run: RunDir, key: dict, corpus_current: bool) -> EmbedResult | None:
    """The finished stage one of these options (on a current corpus), or None."""
    folder = run.embeddings
    if not corpus_current or not is_complete(folder, _FILES, options_digest(key)):
        return None
    log.info("reusing word vectors in %s", folder)
    meta = read_json(folder / META, META_SCHEMA)
    return EmbedResult(load_corpus(run), load_embeddings(run),
                       read_json(folder / "eval.json", EVAL_SCHEMA), reused=True,
                       pretrained=meta.get("pretrained"))


def _check_replacing(run: RunDir, force: bool) -> None:
    """Refuse to replace a corpus and vectors that models were trained on, unless ``force``."""
    check_replaceable(run, (CORPUS, EMBEDDINGS))
    models = list_models(run)
    if models and (run.embeddings / META).exists():
        if not force:
            raise SeqaeError(
                f"{run} has models trained on its current vectors ({', '.join(models)}); "
                "these options would replace the corpus or the vectors and orphan them: use "
                "another --run, or --force to replace them anyway")
        log.warning("replacing the vectors orphans these models (retrain them with --force): %s",
                    ", ".join(models))


def _embed(run: RunDir, corpus_config: CorpusConfig,
           w2v_config: Word2VecConfig | PretrainedVectors, key: dict, workers: int | None,
           reuse_corpus: bool) -> EmbedResult:
    """Write the corpus (unless reused) and the vectors beside the old ones; both replace them
    together at the end."""
    pretrained = isinstance(w2v_config, PretrainedVectors)
    from_file = read_pretrained(w2v_config) if pretrained else None  # checked before any work
    with staged_folders(run, (CORPUS, EMBEDDINGS)) as stage:
        if reuse_corpus:
            log.info("reusing tokenized corpus in %s", run.corpus)
            corpus = load_corpus(run)
        else:
            corpus = write_corpus(corpus_config, stage / CORPUS, workers)
        if pretrained:
            kv, record = corpus_vectors(from_file, corpus.vocab_counts(), w2v_config.path)
            del from_file
            made = {"pretrained": {**key["vectors"], **record}}
        else:
            progress = EpochLogger()
            started = time.perf_counter()
            kv = train_word2vec(corpus.split_path("train"), w2v_config, progress)
            made = {"train_seconds": time.perf_counter() - started, "epochs": progress.history}
        _check_coverage(corpus, kv, "a larger file of vectors" if pretrained else
                        "lower --min-count or use a larger corpus")
        staged = stage / EMBEDDINGS
        save_vectors(kv, staged)
        log.info("evaluating %d vectors", len(kv))
        evaluation = evaluate_vectors(kv)
        write_json(staged / "eval.json", evaluation)
        write_manifest(staged, _FILES, key)
        write_json(staged / META, {
            "digest": options_digest(key), "key": key, "vocabulary": len(kv),
            "dimensions": kv.vector_size, **made,
        })
    return EmbedResult(load_corpus(run), load_embeddings(run), evaluation, reused=False,
                       pretrained=made.get("pretrained"))


def _check_coverage(corpus: PreparedCorpus, kv: KeyedVectors, remedy: str) -> None:
    """Refuse vectors that know no word of the validation or the test split: a model could
    not reconstruct a single token there."""
    for split in ("val", "test"):
        if not any(token in kv.key_to_index
                   for tokens in corpus.iter_sentences(split) for token in tokens):
            raise SeqaeError(f"no word of the {split} split is in the vocabulary of the vectors "
                             f"({len(kv)} words): {remedy}")


def load_embeddings(run_dir: str | os.PathLike | RunDir) -> KeyedVectors:
    """The run's word vectors (memory-mapped, never unpickled), verified against their manifest."""
    run = RunDir.of(run_dir)
    folder = run.embeddings
    if not (folder / META).is_file():
        raise SeqaeError(f"no word vectors in {run}: run `pipe embed` first")
    verify_manifest(folder, _FILES, remedy="rerun `pipe embed --force`")
    made_from = read_json(folder / META, META_SCHEMA).get("key", {}).get("corpus")
    corpus_meta = run.corpus / META
    if corpus_meta.is_file() and made_from != read_json(corpus_meta, META_SCHEMA)["digest"]:
        raise SeqaeError(f"the vectors in {folder} were not trained on the run's corpus (a "
                         "`pipe embed` was interrupted between the two): rerun `pipe embed`")
    return load_vectors(folder)
