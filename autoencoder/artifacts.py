"""A trained model's folder, ``RUN/models/NAME``: config, vocabulary and checkpoints.

``config.json`` records the architecture, the training settings and a fingerprint (sha256 and
shape) of the word vectors the model was trained on, so a model is never silently paired with other
vectors. ``vocab.txt`` is the model's vocabulary in id order. ``manifest.json`` (rewritten by the
trainer after every epoch) holds the size and sha256 of every file, checked before loading.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from autoencoder.backends import current_name
from autoencoder.config import AutoencoderConfig
from autoencoder.model import SentenceAutoencoder
from autoencoder.vocab import Vocabulary
from embeddings.io import (
    SeqaeError, folder_lock, library_versions, read_json, sha256_file, verify_manifest, write_json,
)
from embeddings.schema import Fields, ListOf

CHECKPOINTS = ("best", "last")
MODEL_CONFIG_SCHEMA = Fields(
    {"autoencoder": dict, "train": dict,
     "vectors": Fields({"sha256": str, "shape": ListOf(int)})},
    {"vocab_size": int, "backend": str, "versions": dict},
    name="model config")


def vectors_fingerprint(vectors_file: Path, vectors: np.ndarray) -> dict:
    return {"sha256": sha256_file(vectors_file), "shape": list(vectors.shape)}


def save_model_config(model_dir: Path, config: AutoencoderConfig, train: dict, vocab: Vocabulary,
                      fingerprint: dict) -> None:
    """Write ``config.json`` and ``vocab.txt`` for a model about to be trained."""
    vocab.save(model_dir / "vocab.txt")
    write_json(model_dir / "config.json", {
        "autoencoder": config.to_dict(), "train": train, "vectors": fingerprint,
        "vocab_size": len(vocab), "backend": current_name(), "versions": library_versions(),
    })


def load_autoencoder(model_dir: Path, vectors_file: Path, vectors: np.ndarray,
                     checkpoint: str = "best") -> tuple[SentenceAutoencoder, dict]:
    """Load a trained model for inference, checking it matches the run's word vectors.

    Returns the autoencoder and its ``config.json``. Raises :class:`SeqaeError` naming the file
    when something is missing, corrupt, unsafe or trained on other vectors. Reads under the
    model folder's shared lock, so a model in training is read between two of its checkpoints,
    never in the middle of one.
    """
    model_dir = Path(model_dir)
    path = model_dir / f"{checkpoint}.keras"
    if not path.exists():
        raise SeqaeError(f"missing checkpoint {path}: model {model_dir.name} is not trained yet")
    with folder_lock(model_dir, shared=True):
        verify_manifest(model_dir, ("config.json", "vocab.txt", path.name),
                        remedy=f"no seqae command changed it (they hold {model_dir.name}'s lock "
                               "while writing); restore the folder, or retrain the model")
        config = read_json(model_dir / "config.json", MODEL_CONFIG_SCHEMA)
        ae_config = AutoencoderConfig.from_saved(config["autoencoder"])
        if ae_config is None:
            raise SeqaeError(f"damaged model config {model_dir / 'config.json'}: its "
                             "architecture is not one seqae builds")
        if config["vectors"] != vectors_fingerprint(vectors_file, vectors):
            raise SeqaeError(f"model {model_dir.name} was trained on other word vectors than "
                             f"{vectors_file}; retrain it")
        vocab = Vocabulary.load(model_dir / "vocab.txt")
        try:
            model = keras.saving.load_model(path, safe_mode=True, compile=False)
        except Exception as exc:  # a broken zip, a bad config or an unsafe layer all end here
            raise SeqaeError(f"cannot load model {path}: {exc}".splitlines()[0]) from None
    problem = architecture_problem(model, ae_config, len(vocab), int(vectors.shape[1]))
    if problem:
        raise SeqaeError(f"{path} does not hold the model its config.json describes: {problem}")
    return SentenceAutoencoder(ae_config, vocab, vectors, model=model), config


def architecture_problem(model: keras.Model, config: AutoencoderConfig, vocab_size: int,
                         dim: int) -> str | None:
    """What in ``model`` differs from the architecture ``config`` builds (input and output
    shapes, encoder and decoder units), or None."""
    width = dim if config.kind == "embedding" else vocab_size
    want = {"input": (None, config.seq_len, dim) if config.kind == "embedding"
            else (None, config.seq_len),
            "output": (None, config.seq_len, width),
            "encoder units": config.latent,
            "decoder units": vocab_size if config.kind == "classic" else config.latent}
    try:
        got = {"input": tuple(model.input_shape), "output": tuple(model.output_shape),
               "encoder units": model.get_layer("encoder").forward_layer.units,
               "decoder units": model.get_layer("decoder").units}
    except (AttributeError, ValueError, TypeError) as exc:
        return f"it is not a seqae autoencoder ({exc})".splitlines()[0]
    wrong = [f"{key} {got[key]} (expected {value})" for key, value in want.items()
             if got[key] != value]
    return ", ".join(wrong) or None
