"""Stage two: LSTM sentence autoencoders on word2vec inputs, and the capped one-hot baseline.

Names are re-exported lazily (PEP 562): importing the package starts no Keras, so the command
line can choose the Keras backend (``--backend``) before Keras is first imported.
"""

from embeddings.lazy import lazy_exports

_EXPORTS = {
    "autoencoder.artifacts": ("load_autoencoder",),
    "autoencoder.batches": ("Bucketing",),
    "autoencoder.compare": ("compare_models", "format_table", "write_report"),
    "autoencoder.decode": ("NearestNeighbourDecoder",),
    "autoencoder.config": ("AutoencoderConfig", "TrainConfig"),
    "autoencoder.model": ("SentenceAutoencoder", "build_model"),
    "autoencoder.stage": ("model_status", "reconstruct_sentence", "train_autoencoder"),
    "autoencoder.train": ("NonFiniteLossError", "Trainer"),
    "autoencoder.vocab": ("PAD_ID", "UNK_ID", "Vocabulary"),
    "embeddings.rundir": ("list_models",),
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
