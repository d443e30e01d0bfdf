"""Stage two as calls on a run directory: train a model, reconstruct a sentence with it."""

from __future__ import annotations

import logging
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np
import tensorflow as tf

from autoencoder.artifacts import (
    list_models, load_autoencoder, models_root, save_model_config, vectors_fingerprint,
)
from autoencoder.distribute import is_chief
from autoencoder.model import AutoencoderConfig, SentenceAutoencoder
from autoencoder.train import TrainConfig, Trainer
from autoencoder.vocab import Vocabulary
from embeddings import load_corpus, load_embeddings
from embeddings.io import SeqaeError, read_json
from embeddings.tokenize import TokenizeConfig, Tokenizer

log = logging.getLogger(__name__)


def vectors_file(run_dir: Path) -> Path:
    return Path(run_dir) / "embeddings" / "vectors.npy"


def model_vocabulary(run_dir: Path, config: AutoencoderConfig, kv) -> Vocabulary:
    """The word2vec vocabulary (embedding kind) or the capped train vocabulary (onehot)."""
    if config.kind == "embedding":
        return Vocabulary(kv.index_to_key)
    return Vocabulary.capped(load_corpus(run_dir).vocab_counts(), config.vocab_cap)


def train_autoencoder(run_dir: Path, config: AutoencoderConfig, train: TrainConfig,
                      name: str | None = None, resume: bool = False, force: bool = False,
                      strategy: tf.distribute.Strategy | None = None) -> Trainer:
    """Train ``RUN/models/NAME`` (NAME defaults to ``KIND-LOSS``) and return the fitted trainer.

    ``resume`` continues from ``last.keras`` with its optimizer state and epoch counter (the
    architecture must be the saved one); ``force`` discards an existing model of that name.
    ``strategy`` distributes training (default: one device); checkpoints written under one
    strategy resume under any other, on any number of workers. Every worker checks the run
    directory the same way, but only the chief writes to it.
    """
    run_dir = Path(run_dir)
    corpus = load_corpus(run_dir)
    kv = load_embeddings(run_dir)
    model_dir = models_root(run_dir) / (name or config.default_name)
    state_file = model_dir / "state.json"
    fingerprint = vectors_fingerprint(vectors_file(run_dir), kv.vectors)
    if resume:
        if not state_file.exists():
            raise SeqaeError(f"nothing to resume: model {model_dir.name} has no checkpoint in "
                             f"{run_dir}; train it without --resume")
        saved_config = read_json(model_dir / "config.json")
        if saved_config["vectors"] != fingerprint:
            raise SeqaeError(f"model {model_dir.name} was trained on other word vectors than "
                             f"the run's current ones; retrain it with --force")
        saved = saved_config["autoencoder"]
        if saved != config.to_dict():
            changed = sorted(k for k in saved if saved[k] != config.to_dict().get(k))
            raise SeqaeError(f"--resume needs the saved architecture of {model_dir.name}; "
                             f"these options differ: {', '.join(changed)}")
    elif state_file.exists() and not force:
        raise SeqaeError(f"model {model_dir.name} already exists in {run_dir}; use --resume to "
                         "continue it, --force to retrain it, or --name for another")
    strategy = strategy or tf.distribute.get_strategy()
    chief = is_chief(strategy)
    if chief and not resume and model_dir.exists():
        shutil.rmtree(model_dir)
    vocab = model_vocabulary(run_dir, config, kv)
    with strategy.scope():
        autoencoder = SentenceAutoencoder(config, vocab, kv.vectors, seed=train.seed)
    if chief:
        model_dir.mkdir(parents=True, exist_ok=True)
        save_model_config(model_dir, config, asdict(train), vocab, fingerprint)
    trainer = Trainer(autoencoder, train, model_dir, strategy)
    return trainer.fit(corpus.split_path("train"), corpus.split_path("val"), resume=resume)


def reconstruct_sentence(run_dir: Path, sentence: str, name: str | None = None, k: int = 1) -> dict:
    """Autoencode one sentence with model ``name`` (default: the only model, else
    ``embedding-cosine``).

    Returns ``{"model", "tokens", "ids", "reconstruction", "candidates"}``; ``candidates`` holds,
    per position, the ``k`` best (word, score) pairs: cosine for the embedding kind, probability
    for onehot.
    """
    run_dir = Path(run_dir)
    names = list_models(run_dir)
    if name is None:
        name = names[0] if len(names) == 1 else "embedding-cosine"
    if name not in names:
        raise SeqaeError(f"no model named {name} in {models_root(run_dir)} "
                         f"(have: {', '.join(names) or 'none'})")
    kv = load_embeddings(run_dir)
    ae, _ = load_autoencoder(models_root(run_dir) / name, vectors_file(run_dir), kv.vectors)
    tokens = [t for unit in Tokenizer(TokenizeConfig(unit="paragraph"), None)(sentence) for t in unit]
    if not tokens:
        raise SeqaeError("the sentence has no tokens")
    tokens = tokens[: ae.config.seq_len]
    ids = ae.vocab.encode(tokens, ae.config.seq_len)
    outputs = ae.model.predict_on_batch(ae.inputs(ids[None]))
    top, scores = ae.decode(np.asarray(outputs), k)
    words = ae.vocab.words
    candidates = [[(words[i], float(s)) for i, s in zip(top[0, p], scores[0, p])]
                  for p in range(len(tokens))]
    return {"model": name, "tokens": tokens, "ids": ids[: len(tokens)].tolist(),
            "reconstruction": [c[0][0] for c in candidates], "candidates": candidates}


def model_status(run_dir: Path, name: str, config: AutoencoderConfig, train: TrainConfig) -> str:
    """Where ``RUN/models/NAME`` stands for these options: ``finished`` (reusable), ``partial``
    (resumable), or ``stale`` / ``absent`` (train from scratch)."""
    model_dir = models_root(run_dir) / name
    if not (model_dir / "state.json").exists():
        return "absent"
    saved, state = read_json(model_dir / "config.json"), read_json(model_dir / "state.json")
    kv = load_embeddings(run_dir)
    if (saved["autoencoder"] != config.to_dict() or saved["train"] != asdict(train)
            or saved["vectors"] != vectors_fingerprint(vectors_file(run_dir), kv.vectors)):
        return "stale"
    return "finished" if state["stopped"] in ("epochs", "early-stop") else "partial"
