"""Stage one of seqae: corpus ingestion, tokenization, splits, statistics and word2vec vectors."""

from embeddings.corpus import Document, read_corpus
from embeddings.evaluate import evaluate_vectors, format_evaluation
from embeddings.io import SeqaeError
from embeddings.prepare import SPLITS, CorpusConfig, PreparedCorpus, load_corpus, prepare_corpus
from embeddings.stage import EmbedResult, load_embeddings, run_embed
from embeddings.stats import ONE_HOT_CAP, ONE_HOT_WORDS, format_stats
from embeddings.tokenize import TokenizeConfig, Tokenizer, tokenize_documents, train_punkt
from embeddings.word2vec import (
    EpochLogger, Word2VecConfig, export_word2vec, load_vectors, save_vectors, train_word2vec,
)

__all__ = [
    "SPLITS", "ONE_HOT_CAP", "ONE_HOT_WORDS",
    "CorpusConfig", "Document", "EmbedResult", "EpochLogger", "PreparedCorpus", "SeqaeError",
    "TokenizeConfig", "Tokenizer", "Word2VecConfig",
    "evaluate_vectors", "export_word2vec", "format_evaluation", "format_stats", "load_corpus",
    "load_embeddings", "load_vectors", "prepare_corpus", "read_corpus", "run_embed", "save_vectors",
    "tokenize_documents", "train_punkt", "train_word2vec",
]
