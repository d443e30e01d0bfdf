"""Stage two: LSTM sentence autoencoders on word2vec inputs, and the one-hot baseline.

The model and its training only: ids and batches (``data/``), the network, losses and decoding
(``model/``), the training loop (``training/``), one module per Keras backend (``backends/``)
and scoring. It knows nothing of run directories or the command line (``pipelines`` does).

Names are re-exported lazily (PEP 562): importing the package starts no Keras, so the command
line can choose the Keras backend (``--backend``) before Keras is first imported.
"""

from embeddings.core.lazy import lazy_exports

_EXPORTS = {
    "autoencoder.data.batches": ("Bucketing",),
    "autoencoder.model.decode": ("NearestNeighbourDecoder",),
    "autoencoder.config": ("AutoencoderConfig", "TrainConfig"),
    "autoencoder.model.network": ("SentenceAutoencoder", "build_model"),
    "autoencoder.training.trainer": ("NonFiniteLossError", "Trainer"),
    "autoencoder.data.vocab": ("PAD_ID", "UNK_ID", "Vocabulary"),
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
