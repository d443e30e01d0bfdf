"""Train a model into ``RUN/models/NAME``: check, replace safely, fit (the model folder's
rules live in :mod:`pipelines.models`)."""

from __future__ import annotations

import logging
import os
from dataclasses import asdict
from pathlib import Path

from autoencoder.backends import current as current_backend
from autoencoder.backends import current_name
from autoencoder.config import AutoencoderConfig, TrainConfig
from autoencoder.data.vocab import Vocabulary
from autoencoder.model.network import SentenceAutoencoder, vocabulary_vectors
from autoencoder.training.checkpoints import resume_point
from autoencoder.training.trainer import Trainer
from embeddings.core.params import check_type
from embeddings.prepare import load_corpus
from embeddings.store.errors import SeqaeError
from embeddings.store.jsonfile import read_json
from embeddings.store.locks import folder_lock
from embeddings.store.rundir import ModelDir, RunDir, check_model_name, is_seqae_model
from pipelines.embed import load_embeddings
from pipelines.models import (
    MODEL_CONFIG_SCHEMA,
    recover_replaced,
    replacing,
    save_model_config,
    verify_resumable,
)
from pipelines.plots import draw_model_losses

log = logging.getLogger(__name__)


def model_vocabulary(run: RunDir, config: AutoencoderConfig, kv) -> Vocabulary:
    """The word2vec vocabulary (the embedding kind, and the others without a cap: in frequency
    order, as sampled softmax needs) or the capped train vocabulary."""
    if config.kind == "embedding" or config.vocab_cap is None:
        return Vocabulary(kv.index_to_key)
    return Vocabulary.capped(load_corpus(run).vocab_counts(), config.vocab_cap)


def train_autoencoder(run_dir: str | os.PathLike | RunDir, config: AutoencoderConfig, train: TrainConfig,
                      name: str | None = None, resume: bool = False, force: bool = False,
                      strategy=None,
                      record: dict | None = None) -> Trainer:
    """Train ``RUN/models/NAME`` (NAME defaults to ``KIND-LOSS``) and return the fitted trainer.

    ``resume`` continues from ``last.keras`` with its optimizer state and epoch counter (the
    architecture must be the saved one); ``force`` replaces an existing model of that name.
    ``strategy`` distributes training (the backend's distribution; default: one device);
    checkpoints written under one strategy resume under any other, on any number of workers, and
    under either Keras backend. Every worker checks the run
    directory the same way, but only the chief writes to it.

    Everything is checked before anything is written; then the options (with ``record``'s
    entries, such as the command's strategy name) are recorded in ``RUN/config.json`` as
    stage ``train-ae:NAME``. A model replaced with ``force``
    is kept aside until the new one commits its first checkpoint, and put back if training
    fails before that, so a failed command never costs the model that was there.
    """
    run = RunDir.of(run_dir)
    check_type("config", config, AutoencoderConfig)
    check_type("train", train, TrainConfig)
    name = check_model_name(name or config.default_name)
    backend = current_backend()
    strategy = strategy or backend.default_strategy()
    if not backend.is_chief(strategy):  # the chief checks and writes the run directory
        trainer, splits, _ = _prepare(run, name, config, train, strategy, resume, force, chief=False)
        return trainer.fit(*splits, resume=resume)
    with run.writing("train_autoencoder()"):
        trainer, splits, fingerprint = _prepare(run, name, config, train, strategy, resume, force,
                                                chief=True)
        folder = trainer.model_dir
        with replacing(folder, keep=resume):
            with folder_lock(folder, shared=False):  # refused (a FIFO there, say) before recording
                run.record(f"train-ae:{name}", {**config.to_dict(), **asdict(train),
                                                "backend": current_name(),
                                                "replicas": backend.replicas(strategy),
                                                **(record or {})})
                save_model_config(folder, config, asdict(train), trainer.autoencoder.vocab,
                                  fingerprint)
                trainer.write_manifest()  # marks the folder as seqae's, and keeps the manifest true
            return trainer.fit(*splits, resume=resume)


def _prepare(run: RunDir, name: str, config: AutoencoderConfig, train: TrainConfig, strategy,
             resume: bool, force: bool, chief: bool) -> tuple[Trainer, tuple[Path, Path], dict]:
    """Check everything ``RUN/models/NAME`` is trained from (writing nothing) and build the
    trainer; returns it, the train and validation split files and the vectors' fingerprint."""
    corpus, kv, folder = load_corpus(run), load_embeddings(run), run.model(name)
    fingerprint = run.vectors_fingerprint(kv.vectors.shape)
    if run.models.is_symlink():  # --force would then remove a model of another run
        raise SeqaeError(f"{run.models} is a symbolic link: seqae trains only into a "
                         "models folder of the run itself")
    if chief:
        recover_replaced(folder)
    vocab = model_vocabulary(run, config, kv)
    _check_target(run, folder, config, vocab, kv.vectors.shape[1], fingerprint, resume, force,
                  chief)
    with current_backend().scope(strategy):
        autoencoder = SentenceAutoencoder(config, vocab, kv.vectors, seed=train.seed)
        if config.init_from_vectors:  # a resumed model's checkpoint replaces it
            autoencoder.init_projection(vocabulary_vectors(vocab, kv.index_to_key, kv.vectors))
    trainer = Trainer(autoencoder, train, folder, strategy, on_checkpoint=(draw_model_losses,))
    return trainer, (corpus.split_path("train"), corpus.split_path("val")), fingerprint


def _check_target(run: RunDir, folder: ModelDir, config: AutoencoderConfig, vocab: Vocabulary,
                  dim: int, fingerprint: dict, resume: bool, force: bool, chief: bool) -> None:
    """Refuse to train into ``folder`` when that would lose or misuse what is there."""
    if resume:
        _check_resumable(folder, config, vocab, dim, fingerprint, chief)
    elif folder.path.exists() or folder.path.is_symlink():
        if folder.state.exists() and not force:
            raise SeqaeError(f"model {folder.name} already exists in {run.path}; use --resume "
                             "(resume=True) to continue it, --force (force=True) to retrain it, or "
                             "--name (name=) for another")
        if not is_seqae_model(folder):
            raise SeqaeError(f"{folder} is not a model folder seqae wrote (no model manifest); "
                             "it is left alone: move it away or choose another --name")


def _check_resumable(folder: ModelDir, config: AutoencoderConfig, vocab: Vocabulary, dim: int,
                     fingerprint: dict, chief: bool) -> None:
    """Refuse ``--resume`` of ``folder`` unless its checkpoint, vectors, vocabulary and
    architecture fit and (on the chief, which holds the run's lock while it checks) every file
    it reads is one seqae wrote there (:func:`~pipelines.models.verify_resumable`); nothing is
    written before. Other workers check what they read, not the files the chief may be
    rewriting."""
    if folder.path.is_symlink():
        raise SeqaeError(f"{folder} is a symbolic link: seqae resumes only a model folder of the "
                         "run itself")
    if not folder.state.exists():
        raise SeqaeError(f"nothing to resume: model {folder.name} has no checkpoint in "
                         f"{folder.path.parent.parent}; train it without --resume (resume=False)")
    saved_config = read_json(folder.config, MODEL_CONFIG_SCHEMA)
    if saved_config["vectors"] != fingerprint:
        raise SeqaeError(f"model {folder.name} was trained on other word vectors than "
                         f"the run's current ones; retrain it with --force (force=True)")
    saved_ae = AutoencoderConfig.from_saved(saved_config["autoencoder"])
    saved = saved_ae.to_dict() if saved_ae is not None else saved_config["autoencoder"]
    if saved != config.to_dict():
        changed = sorted(k for k in config.to_dict() if saved.get(k) != config.to_dict()[k])
        raise SeqaeError(f"--resume needs the saved architecture of {folder.name}; "
                         f"these options differ: {', '.join(changed)}")
    if not chief:
        resume_point(folder)
        return
    verify_resumable(folder, config, len(vocab), dim)
    if Vocabulary.load(folder.vocab).words != vocab.words:
        raise SeqaeError(f"{folder.vocab} is not the vocabulary this run gives the model "
                         "now; retrain it with --force (force=True)")
