"""Stage two: LSTM sentence autoencoders on word2vec inputs, and the capped one-hot baseline.

Names are re-exported lazily (PEP 562): importing the package starts no Keras, so the command
line can choose the Keras backend (``--backend``) before Keras is first imported.
"""

import importlib

_EXPORTS = {
    "autoencoder.artifacts": ("load_autoencoder",),
    "autoencoder.batches": ("Bucketing",),
    "autoencoder.compare": ("compare_models", "format_table", "write_report"),
    "autoencoder.decode": ("NearestNeighbourDecoder",),
    "autoencoder.model": ("AutoencoderConfig", "SentenceAutoencoder", "build_model"),
    "autoencoder.stage": ("model_status", "reconstruct_sentence", "train_autoencoder"),
    "autoencoder.train": ("NonFiniteLossError", "TrainConfig", "Trainer"),
    "autoencoder.vocab": ("PAD_ID", "UNK_ID", "Vocabulary"),
    "embeddings.rundir": ("list_models",),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'autoencoder' has no attribute {name!r}")
    return getattr(importlib.import_module(_MODULE_OF[name]), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
