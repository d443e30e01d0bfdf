"""Stage two: LSTM sentence autoencoders on word2vec inputs, and the capped one-hot baseline."""

from autoencoder.artifacts import load_autoencoder
from autoencoder.batches import Bucketing
from autoencoder.compare import compare_models, format_table, write_report
from autoencoder.decode import NearestNeighbourDecoder
from autoencoder.model import AutoencoderConfig, SentenceAutoencoder, build_model
from autoencoder.stage import model_status, reconstruct_sentence, train_autoencoder
from autoencoder.train import NonFiniteLossError, TrainConfig, Trainer
from autoencoder.vocab import PAD_ID, UNK_ID, Vocabulary
from embeddings.rundir import list_models

__all__ = [
    "AutoencoderConfig", "Bucketing", "NearestNeighbourDecoder", "NonFiniteLossError", "PAD_ID",
    "SentenceAutoencoder", "TrainConfig", "Trainer", "UNK_ID", "Vocabulary", "build_model",
    "compare_models", "format_table", "list_models", "load_autoencoder", "model_status", "reconstruct_sentence",
    "train_autoencoder", "write_report",
]
