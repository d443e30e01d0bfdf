"""Stage two as calls on a run directory: train a model, reconstruct a sentence with it."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import secrets
import shutil
import stat
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np

from autoencoder.artifacts import (
    MODEL_CONFIG_SCHEMA, load_autoencoder, save_model_config, vectors_fingerprint,
)
from autoencoder.backends import current as current_backend
from autoencoder.checkpoints import read_history, read_state, resume_point, training_seconds
from autoencoder.config import OUTPUT_ONLY, AutoencoderConfig, TrainConfig
from autoencoder.model import SentenceAutoencoder
from autoencoder.train import Trainer
from autoencoder.vocab import UNK_ID, Vocabulary
from embeddings import load_corpus, load_embeddings
from embeddings.io import SeqaeError, folder_lock, read_json
from embeddings.rundir import check_model_name, is_seqae_model, model_dir, models_root, resolve_model
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
                      strategy=None,
                      on_start: Callable[[], None] | None = None) -> Trainer:
    """Train ``RUN/models/NAME`` (NAME defaults to ``KIND-LOSS``) and return the fitted trainer.

    ``resume`` continues from ``last.keras`` with its optimizer state and epoch counter (the
    architecture must be the saved one); ``force`` replaces an existing model of that name.
    ``strategy`` distributes training (the backend's distribution; default: one device);
    checkpoints written under one strategy resume under any other, on any number of workers, and
    under either Keras backend. Every worker checks the run
    directory the same way, but only the chief writes to it.

    Everything is checked before anything is written; ``on_start`` (for example recording the
    options in ``RUN/config.json``) runs once the checks passed. A model replaced with ``force``
    is kept aside until the new one commits its first checkpoint, and put back if training
    fails before that, so a failed command never costs the model that was there.
    """
    run_dir = Path(run_dir)
    name = check_model_name(name or config.default_name)
    corpus = load_corpus(run_dir)
    kv = load_embeddings(run_dir)
    folder = model_dir(run_dir, name)
    if models_root(run_dir).is_symlink():  # --force would then remove a model of another run
        raise SeqaeError(f"{models_root(run_dir)} is a symbolic link: seqae trains only into a "
                         "models folder of the run itself")
    fingerprint = vectors_fingerprint(vectors_file(run_dir), kv.vectors)
    backend = current_backend()
    strategy = strategy or backend.default_strategy()
    chief = backend.is_chief(strategy)
    if chief:
        _recover_replaced(folder)
    if resume:
        _check_resumable(folder, config, fingerprint)
    elif folder.exists() or folder.is_symlink():
        if (folder / "state.json").exists() and not force:
            raise SeqaeError(f"model {name} already exists in {run_dir}; use --resume to "
                             "continue it, --force to retrain it, or --name for another")
        if not is_seqae_model(folder):
            raise SeqaeError(f"{folder} is not a model folder seqae wrote (no model manifest); "
                             "it is left alone: move it away or choose another --name")
    vocab = model_vocabulary(run_dir, config, kv)
    with backend.scope(strategy):
        autoencoder = SentenceAutoencoder(config, vocab, kv.vectors, seed=train.seed)
    trainer = Trainer(autoencoder, train, folder, strategy)
    if not chief:
        if on_start is not None:
            on_start()
        return trainer.fit(corpus.split_path("train"), corpus.split_path("val"), resume=resume)
    with _replacing(folder, keep=resume):
        with folder_lock(folder, shared=False):  # refused (a FIFO there, say) before on_start
            if on_start is not None:
                on_start()
            save_model_config(folder, config, asdict(train), vocab, fingerprint)
            trainer.write_manifest()  # marks the folder as seqae's, and keeps the manifest true
        return trainer.fit(corpus.split_path("train"), corpus.split_path("val"), resume=resume)


def _check_resumable(folder: Path, config: AutoencoderConfig, fingerprint: dict) -> None:
    """Refuse ``--resume`` of ``folder`` unless its checkpoint, vectors and architecture fit."""
    if not (folder / "state.json").exists():
        raise SeqaeError(f"nothing to resume: model {folder.name} has no checkpoint in "
                         f"{folder.parent.parent}; train it without --resume")
    resume_point(folder)
    saved_config = read_json(folder / "config.json", MODEL_CONFIG_SCHEMA)
    if saved_config["vectors"] != fingerprint:
        raise SeqaeError(f"model {folder.name} was trained on other word vectors than "
                         f"the run's current ones; retrain it with --force")
    saved_ae = AutoencoderConfig.from_saved(saved_config["autoencoder"])
    saved = saved_ae.to_dict() if saved_ae is not None else saved_config["autoencoder"]
    if saved != config.to_dict():
        changed = sorted(k for k in config.to_dict() if saved.get(k) != config.to_dict()[k])
        raise SeqaeError(f"--resume needs the saved architecture of {folder.name}; "
                         f"these options differ: {', '.join(changed)}")


# Proof that a hidden folder beside a model is one that ``--force`` moved aside: the folder
# holds this file, and its name ends in the token the file holds (16 hex digits).
REPLACED_TOKEN = ".replaced-token"
_TOKEN = re.compile(r"[0-9a-f]{16}")


def _read_token(path: Path) -> str | None:
    """The token in ``path`` if it is a small regular file (never a link, FIFO or device,
    which could point anywhere or block), else None."""
    try:
        info = os.lstat(path)
        if not stat.S_ISREG(info.st_mode) or info.st_size > 64:
            return None
        return path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        return None


def _recover_replaced(folder: Path) -> None:
    """Settle a model that a killed ``--force`` left aside (``.NAME.replaced-TOKEN``): put it
    back if the new model never committed a checkpoint, else delete it as ``--force`` would
    have. A folder of that name without its token is not seqae's, and is left alone."""
    for aside in sorted(folder.parent.glob(f".{folder.name}.replaced-*")):
        token = aside.name.rpartition("-")[2]
        proven = (_TOKEN.fullmatch(token) is not None and not aside.is_symlink() and aside.is_dir()
                  and _read_token(aside / REPLACED_TOKEN) == token)
        if not proven:
            log.warning("leaving %s alone: it is not a model seqae moved aside", aside)
        elif _has_checkpoint(folder):
            log.warning("removing %s, replaced by model %s before a kill", aside, folder.name)
            shutil.rmtree(aside)
        else:
            log.warning("putting back model %s, which a killed --force left aside in %s",
                        folder.name, aside)
            if folder.exists():
                shutil.rmtree(folder)
            (aside / REPLACED_TOKEN).unlink()
            os.replace(aside, folder)


@contextlib.contextmanager
def _replacing(folder: Path, keep: bool):
    """Train into ``folder``: unless ``keep``, a model already there is moved aside first, then
    deleted once the new model committed a checkpoint, or put back if the block fails before
    that. A SIGKILL in between leaves it in a hidden ``.NAME.replaced-TOKEN`` folder beside it,
    never lost."""
    aside = None
    if not keep and folder.exists():
        token = secrets.token_hex(8)
        (folder / REPLACED_TOKEN).unlink(missing_ok=True)  # never written through a link
        (folder / REPLACED_TOKEN).write_text(token, encoding="utf-8")
        aside = folder.with_name(f".{folder.name}.replaced-{token}")
        os.replace(folder, aside)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        yield
    except BaseException:
        if aside is not None and not _has_checkpoint(folder):
            shutil.rmtree(folder)
            (aside / REPLACED_TOKEN).unlink()
            os.replace(aside, folder)
            log.warning("training failed before its first checkpoint: model %s is as it was",
                        folder.name)
            aside = None
        raise
    finally:
        if aside is not None:
            shutil.rmtree(aside)


def _has_checkpoint(folder: Path) -> bool:
    """Whether ``folder``'s ``state.json`` commits a checkpoint (a NaN before the first one
    writes a state without)."""
    try:
        return bool(read_state(folder / "state.json")["last_sha256"])
    except SeqaeError:
        return False


def load_run_model(run_dir: Path, name: str | None = None) -> tuple[str, SentenceAutoencoder]:
    """Model ``name`` of the run (default: the only model, else ``embedding-cosine``), loaded
    for inference from its best checkpoint; returns its name and the autoencoder."""
    run_dir = Path(run_dir)
    name = resolve_model(run_dir, name)
    kv = load_embeddings(run_dir)
    ae, _ = load_autoencoder(model_dir(run_dir, name), vectors_file(run_dir), kv.vectors)
    return name, ae


@functools.lru_cache(maxsize=1)
def _sentence_tokenizer() -> Tokenizer:
    return Tokenizer(TokenizeConfig(unit="paragraph"), None)


def tokenize_sentence(sentence: str) -> list[str]:
    """The tokens of one sentence, tokenized as the corpus is (lower-cased words and
    punctuation), however many sentences Punkt would see in it."""
    return [t for unit in _sentence_tokenizer()(sentence) for t in unit]


def sentence_ids(ae: SentenceAutoencoder, sentence: str, name: str,
                 known: bool = False) -> tuple[list[str], np.ndarray]:
    """The tokens of ``sentence`` that model ``name`` reads (the first ``seq_len``; a warning
    says when the rest is cut) and their ids, shape (seq_len,) int32 right-padded with PAD.

    ``known`` : refuse a sentence whose every word is unknown to the model (all UNK), whose
        code says nothing about it.
    """
    tokens = tokenize_sentence(sentence)
    if not tokens:
        raise SeqaeError("the sentence has no tokens")
    if len(tokens) > ae.config.seq_len:
        log.warning("the sentence has %d tokens; model %s reads the first %d (--seq-len): the "
                    "rest is cut", len(tokens), name, ae.config.seq_len)
    tokens = tokens[: ae.config.seq_len]
    ids = ae.vocab.encode(tokens, ae.config.seq_len)
    if known and (ids[: len(tokens)] == UNK_ID).all():
        raise SeqaeError(f"every word of {sentence!r} is unknown to model {name}: its code "
                         "would mean nothing")
    return tokens, ids


def reconstruct_sentence(run_dir: Path, sentence: str, name: str | None = None, k: int = 1) -> dict:
    """Autoencode one sentence with model ``name`` (default: the only model, else
    ``embedding-cosine``).

    Returns ``{"model", "tokens", "ids", "reconstruction", "candidates"}``; ``candidates`` holds,
    per position, the ``k`` best (word, score) pairs: cosine for the embedding kind, probability
    for onehot.
    """
    name, ae = load_run_model(run_dir, name)
    tokens, ids = sentence_ids(ae, sentence, name)
    outputs = ae.model.predict_on_batch(ae.inputs(ids[None]))
    top, scores = ae.decode(np.asarray(outputs), k)
    words = ae.vocab.words
    candidates = [[(words[i], float(s)) for i, s in zip(top[0, p], scores[0, p])]
                  for p in range(len(tokens))]
    return {"model": name, "tokens": tokens, "ids": ids[: len(tokens)].tolist(),
            "reconstruction": [c[0][0] for c in candidates], "candidates": candidates}


def _weights_settings(train: TrainConfig) -> dict:
    """The training settings that shape the weights (the trace's do not)."""
    return {k: v for k, v in asdict(train).items() if k not in OUTPUT_ONLY}


def model_status(run_dir: Path, name: str, config: AutoencoderConfig, train: TrainConfig) -> str:
    """Where ``RUN/models/NAME`` stands for these options: ``finished`` (reusable), ``partial``
    (resumable), ``stale`` (a model trained with other options or vectors: replaced only on
    request) or ``absent`` (no checkpoint to keep: a missing model, or one stopped by a kill or
    a NaN before its first checkpoint)."""
    folder = model_dir(run_dir, name)
    if not (folder / "state.json").exists():
        return "absent"
    state = read_state(folder / "state.json")  # a damaged one is an error, never "absent"
    if not state["last_sha256"]:
        return "absent"
    saved = read_json(folder / "config.json", MODEL_CONFIG_SCHEMA)
    kv = load_embeddings(run_dir)
    try:  # settings added since the model was saved take their defaults
        saved_train = _weights_settings(TrainConfig(**saved["train"]))
    except (TypeError, SeqaeError):
        return "stale"
    if (AutoencoderConfig.from_saved(saved["autoencoder"]) != config
            or saved_train != _weights_settings(train)
            or saved["vectors"] != vectors_fingerprint(vectors_file(run_dir), kv.vectors)):
        return "stale"
    if state["stopped"] == "time":  # by these options' --max-time, or an earlier, shorter one
        spent = training_seconds(read_history(folder / "history.csv"))
        return "finished" if train.max_time is not None and spent >= train.max_time else "partial"
    return "finished" if state["stopped"] in ("epochs", "early-stop") else "partial"
