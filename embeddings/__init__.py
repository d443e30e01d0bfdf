"""Stage one of seqae: corpus ingestion, tokenization, splits, statistics and word2vec vectors.

Names are re-exported lazily (PEP 562), so that ``from embeddings.io import SeqaeError`` costs
neither gensim nor nltk.
"""

import importlib

_EXPORTS = {
    "embeddings.corpus": ("Document", "read_corpus"),
    "embeddings.evaluate": ("evaluate_vectors", "format_evaluation"),
    "embeddings.io": ("SeqaeError",),
    "embeddings.prepare": ("SPLITS", "CorpusConfig", "PreparedCorpus", "load_corpus", "prepare_corpus"),
    "embeddings.stage": ("EmbedResult", "load_embeddings", "run_embed"),
    "embeddings.stats": ("ONE_HOT_CAP", "ONE_HOT_WORDS", "format_stats"),
    "embeddings.tokenize": ("TokenizeConfig", "Tokenizer", "tokenize_documents", "train_punkt"),
    "embeddings.word2vec": ("EpochLogger", "Word2VecConfig", "export_word2vec", "load_vectors",
                            "save_vectors", "train_word2vec"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'embeddings' has no attribute {name!r}")
    return getattr(importlib.import_module(_MODULE_OF[name]), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
