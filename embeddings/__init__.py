"""Stage one of seqae: corpus ingestion, tokenization, splits, statistics and word2vec vectors.

``embeddings.store`` is the layer every stage stands on (errors, atomic files, manifests,
locks, the run directory, JSON schemas). Names are re-exported lazily (PEP 562), so that
``from embeddings import SeqaeError`` costs neither gensim nor nltk.
"""

from embeddings.core.lazy import lazy_exports

_EXPORTS = {
    "embeddings.corpus": ("Document", "read_corpus"),
    "embeddings.evaluate": ("evaluate_vectors", "format_evaluation"),
    "embeddings.store.errors": ("SeqaeError",),
    "embeddings.prepare": ("SPLITS", "CorpusConfig", "PreparedCorpus", "load_corpus", "prepare_corpus"),
    "embeddings.pretrained": ("PretrainedVectors", "read_pretrained"),
    "embeddings.stats": ("ONE_HOT_CAP", "ONE_HOT_WORDS", "format_stats"),
    "embeddings.tokenize": ("TokenizeConfig", "Tokenizer", "tokenize_documents", "train_punkt"),
    "embeddings.word2vec": ("EpochLogger", "Word2VecConfig", "export_word2vec", "load_vectors",
                            "save_vectors", "train_word2vec"),
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
