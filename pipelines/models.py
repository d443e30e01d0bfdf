"""A trained model's folder, ``RUN/models/NAME``, and its lifecycle: config, vocabulary and
checkpoints; loading; where a model stands for a set of options; replacing one safely.

``config.json`` records the architecture, the training settings and a fingerprint (sha256 and
shape) of the word vectors the model was trained on, so a model is never silently paired with other
vectors. ``vocab.txt`` is the model's vocabulary in id order. ``manifest.json`` (rewritten by the
trainer after every epoch) holds the size and sha256 of every file, checked before loading.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import shutil
import stat
import tempfile
from dataclasses import asdict
from pathlib import Path

import keras
import numpy as np

from autoencoder.backends import current_name
from autoencoder.config import OUTPUT_ONLY, AutoencoderConfig, TrainConfig
from autoencoder.data.vocab import Vocabulary
from autoencoder.model.network import SentenceAutoencoder
from autoencoder.training.checkpoints import (
    read_history,
    read_state,
    resume_point,
    sentences_seen,
    training_seconds,
)
from embeddings.store.errors import SeqaeError
from embeddings.store.files import open_artifact
from embeddings.store.jsonfile import read_json, write_json
from embeddings.store.locks import folder_lock
from embeddings.store.machine import library_versions
from embeddings.store.manifests import MANIFEST, verify_manifest
from embeddings.store.rundir import ModelDir, RunDir, resolve_model
from embeddings.store.schema import Fields, ListOf
from pipelines.embed import load_embeddings

log = logging.getLogger(__name__)

MODEL_CONFIG_SCHEMA = Fields(
    {"autoencoder": dict, "train": dict,
     "vectors": Fields({"sha256": str, "shape": ListOf(int)})},
    {"vocab_size": int, "backend": str, "versions": dict},
    name="model config")


def save_model_config(model_dir: ModelDir, config: AutoencoderConfig, train: dict,
                      vocab: Vocabulary, fingerprint: dict) -> None:
    """Write ``config.json`` and ``vocab.txt`` for a model about to be trained."""
    vocab.save(model_dir.vocab)
    write_json(model_dir.config, {
        "autoencoder": config.to_dict(), "train": train, "vectors": fingerprint,
        "vocab_size": len(vocab), "backend": current_name(), "versions": library_versions(),
    })


def load_autoencoder(run_dir: str | os.PathLike | RunDir, name: str, vectors: np.ndarray,
                     checkpoint: str = "best") -> tuple[SentenceAutoencoder, dict]:
    """Load a trained model for inference, checking it matches the run's word vectors.

    Returns the autoencoder and its ``config.json``. Raises :class:`SeqaeError` naming the file
    when something is missing, corrupt, unsafe or trained on other vectors. Reads under the
    model folder's shared lock, so a model in training is read between two of its checkpoints,
    never in the middle of one.
    """
    run = RunDir.of(run_dir)
    model_dir = run.model(name)
    path = model_dir.checkpoint(checkpoint)
    if not path.exists():
        raise SeqaeError(f"missing checkpoint {path}: model {model_dir.name} is not trained yet")
    with folder_lock(model_dir, shared=True):
        verify_manifest(model_dir, (ModelDir.CONFIG, ModelDir.VOCAB, path.name),
                        remedy=f"no seqae command changed it (they hold {model_dir.name}'s lock "
                               "while writing); restore the folder, or retrain the model")
        config = read_json(model_dir.config, MODEL_CONFIG_SCHEMA)
        ae_config = AutoencoderConfig.from_saved(config["autoencoder"])
        if ae_config is None:
            raise SeqaeError(f"damaged model config {model_dir.config}: its "
                             "architecture is not one seqae builds")
        if config["vectors"] != run.vectors_fingerprint(vectors.shape):
            raise SeqaeError(f"model {model_dir.name} was trained on other word vectors than "
                             f"{run.vectors_file}; retrain it")
        vocab = Vocabulary.load(model_dir.vocab)
        try:
            model = keras.saving.load_model(path, safe_mode=True, compile=False)
        except Exception as exc:  # a broken zip, a bad config or an unsafe layer all end here
            raise SeqaeError(f"cannot load model {path}: {exc}".splitlines()[0]) from None
    problem = architecture_problem(model, ae_config, len(vocab), int(vectors.shape[1]))
    if problem:
        raise SeqaeError(f"{path} does not hold the model its config.json describes: {problem}")
    return SentenceAutoencoder(ae_config, vocab, vectors, model=model), config


def check_checkpoint(path: Path, config: AutoencoderConfig, vocab_size: int, dim: int) -> None:
    """Refuse a checkpoint that does not load safely or does not hold the architecture of
    ``config`` over ``vocab_size`` ids and ``dim``-d vectors (a ``config.json`` edited since)."""
    with tempfile.TemporaryDirectory() as scratch:
        # Keras reads a checkpoint by its ``.keras`` name; the one a kill kept aside has another
        # (``.last.keras.previous``), and the model folder is not written before it is verified.
        named = Path(scratch) / "checkpoint.keras"
        named.symlink_to(Path(path).resolve())
        try:
            model = keras.saving.load_model(named, safe_mode=True, compile=False)
        except Exception as exc:  # a broken zip, a bad config or an unsafe layer all end here
            raise SeqaeError(f"cannot load checkpoint {path}: {exc}".replace(str(named), str(path))
                             .splitlines()[0]) from None
    problem = architecture_problem(model, config, vocab_size, dim)
    if problem:
        raise SeqaeError(f"{path} does not hold the model {ModelDir(path.parent).config} "
                         f"describes: {problem}; retrain it with --force (force=True)")


# Files a resume rewrites from the checkpoint, so that a kill between one of them and the
# manifest (a resume's new config.json, a NaN's history row, a trace cut back) never makes a
# model unresumable: each is checked for what it is, not against the manifest. config.json:
# schema, options, vectors and the checkpoint's architecture; history.csv: parsed, cut to the
# checkpoint's epoch; steps.csv: cut back or rebuilt; loss.png: redrawn.
REWRITTEN_ON_RESUME = (ModelDir.CONFIG, ModelDir.HISTORY, ModelDir.STEPS, ModelDir.LOSS_PLOT)


def verify_resumable(folder: ModelDir, config: AutoencoderConfig, vocab_size: int,
                     dim: int) -> Path:
    """The checkpoint ``--resume`` continues from, once every file that resuming reads or keeps
    is shown to be one seqae wrote, without writing anything: the checkpoint is the one
    ``state.json`` commits and holds ``config``'s architecture (:func:`check_checkpoint`);
    ``vocab.txt`` and ``best.keras`` match the manifest, except that after a kill inside a
    checkpoint write (``state.json`` no longer names the ``last.keras`` the manifest lists)
    ``best.keras`` may be that write's copy, checked like the checkpoint; the files of
    :data:`REWRITTEN_ON_RESUME` are regular files and the history parses. Else one-line
    :class:`SeqaeError`, naming the file."""
    remedy = (f"--resume approves only files seqae wrote; restore the folder, or retrain "
              f"{folder.name} with --force (force=True)")
    state, checkpoint = resume_point(folder)
    listed = verify_manifest(folder, (ModelDir.CONFIG, ModelDir.VOCAB, ModelDir.LAST), remedy,
                             only=(ModelDir.VOCAB,))["files"]
    for name in REWRITTEN_ON_RESUME:
        if (folder / name).exists() or (folder / name).is_symlink():
            try:  # a link, FIFO or folder: one line, at once
                open_artifact(folder / name).close()
            except SeqaeError as exc:
                raise SeqaeError(f"{exc}; {remedy}") from None
    read_history(folder.history)  # damaged: refused now, not after the writes
    check_checkpoint(checkpoint, config, vocab_size, dim)
    best = folder.best
    interrupted = listed[ModelDir.LAST]["sha256"] != state["last_sha256"] or (
        checkpoint == folder.previous)
    if ModelDir.BEST in listed:
        if not best.exists() and not best.is_symlink():
            raise SeqaeError(f"missing artifact {best} (listed in {MANIFEST}); {remedy}")
        if interrupted:
            check_checkpoint(best, config, vocab_size, dim)
        else:
            verify_manifest(folder, (), remedy, only=(ModelDir.BEST,))
    return checkpoint


def architecture_problem(model: keras.Model, config: AutoencoderConfig, vocab_size: int,
                         dim: int) -> str | None:
    """What in ``model`` differs from the architecture ``config`` builds (input and output
    shapes, encoder and decoder units), or None."""
    width = dim if config.kind == "embedding" else vocab_size
    encoder_input = ((None, config.seq_len, dim) if config.kind == "embedding"
                     else (None, config.seq_len))
    want = {"input": [encoder_input, (None, config.seq_len, dim)] if config.autoregressive
            else encoder_input,
            "output": (None, config.seq_len, width),
            "encoder units": config.latent,
            "decoder units": vocab_size if config.kind == "classic" else config.latent}
    try:
        shape = model.input_shape
        got = {"input": [tuple(s) for s in shape] if isinstance(shape, list) else tuple(shape),
               "output": tuple(model.output_shape),
               "encoder units": model.get_layer("encoder").forward_layer.units,
               "decoder units": model.get_layer("decoder").units}
    except (AttributeError, ValueError, TypeError) as exc:
        return f"it is not a seqae autoencoder ({exc})".splitlines()[0]
    wrong = [f"{key} {got[key]} (expected {value})" for key, value in want.items()
             if got[key] != value]
    return ", ".join(wrong) or None


# The token of a model that --force moved aside (ModelDir.REPLACED_TOKEN): 16 hex digits.
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


def recover_replaced(model_dir: ModelDir) -> None:
    """Settle a model that a killed ``--force`` left aside (``.NAME.replaced-TOKEN``): put it
    back if the new model never committed a checkpoint, else delete it as ``--force`` would
    have. A folder of that name without its token is not seqae's, and is left alone."""
    folder = model_dir.path
    for aside in sorted(folder.parent.glob(f".{folder.name}.replaced-*")):
        token = aside.name.rpartition("-")[2]
        proven = (_TOKEN.fullmatch(token) is not None and not aside.is_symlink() and aside.is_dir()
                  and _read_token(aside / ModelDir.REPLACED_TOKEN) == token)
        if not proven:
            log.warning("leaving %s alone: it is not a model seqae moved aside", aside)
        elif _has_checkpoint(model_dir):
            log.warning("removing %s, replaced by model %s before a kill", aside, folder.name)
            shutil.rmtree(aside)
        else:
            log.warning("putting back model %s, which a killed --force left aside in %s",
                        folder.name, aside)
            if folder.exists():
                shutil.rmtree(folder)
            (aside / ModelDir.REPLACED_TOKEN).unlink()
            os.replace(aside, folder)


@contextlib.contextmanager
def replacing(model_dir: ModelDir, keep: bool):
    """Train into ``folder``: unless ``keep``, a model already there is moved aside first, then
    deleted once the new model committed a checkpoint, or put back if the block fails before
    that. A SIGKILL in between leaves it in a hidden ``.NAME.replaced-TOKEN`` folder beside it,
    never lost."""
    folder, aside = model_dir.path, None
    if not keep and folder.exists():
        token = secrets.token_hex(8)
        (folder / ModelDir.REPLACED_TOKEN).unlink(missing_ok=True)  # never written through a link
        (folder / ModelDir.REPLACED_TOKEN).write_text(token, encoding="utf-8")
        aside = folder.with_name(f".{folder.name}.replaced-{token}")
        os.replace(folder, aside)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        yield
    except BaseException:
        if aside is not None and not _has_checkpoint(model_dir):
            shutil.rmtree(folder)
            (aside / ModelDir.REPLACED_TOKEN).unlink()
            os.replace(aside, folder)
            log.warning("training failed before its first checkpoint: model %s is as it was",
                        folder.name)
            aside = None
        raise
    finally:
        if aside is not None:
            shutil.rmtree(aside)


def _has_checkpoint(model_dir: ModelDir) -> bool:
    """Whether ``model_dir``'s ``state.json`` commits a checkpoint (a NaN before the first one
    writes a state without)."""
    try:
        return bool(read_state(model_dir.state)["last_sha256"])
    except SeqaeError:
        return False


def load_run_model(run_dir: str | os.PathLike | RunDir,
                   name: str | None = None) -> tuple[str, SentenceAutoencoder]:
    """Model ``name`` of the run (default: the only model, else ``embedding-cosine``), loaded
    for inference from its best checkpoint; returns its name and the autoencoder."""
    run = RunDir.of(run_dir)
    name = resolve_model(run, name)
    ae, _ = load_autoencoder(run, name, load_embeddings(run).vectors)
    return name, ae


def _weights_settings(train: TrainConfig) -> dict:
    """The training settings that shape the weights (the trace's do not)."""
    return {k: v for k, v in asdict(train).items() if k not in OUTPUT_ONLY}


def model_status(run_dir: str | os.PathLike | RunDir, name: str, config: AutoencoderConfig,
                 train: TrainConfig) -> str:
    """Where ``RUN/models/NAME`` stands for these options: ``finished`` (reusable), ``partial``
    (resumable), ``stale`` (a model trained with other options or vectors: replaced only on
    request) or ``absent`` (no checkpoint to keep: a missing model, or one stopped by a kill or
    a NaN before its first checkpoint)."""
    run = RunDir.of(run_dir)
    folder = run.model(name)
    if not folder.state.exists():
        return "absent"
    state = read_state(folder.state)  # a damaged one is an error, never "absent"
    if not state["last_sha256"]:
        return "absent"
    saved = read_json(folder.config, MODEL_CONFIG_SCHEMA)
    kv = load_embeddings(run)
    try:  # settings added since the model was saved take their defaults
        saved_train = _weights_settings(TrainConfig(**saved["train"]))
    except (TypeError, SeqaeError):
        return "stale"
    if (AutoencoderConfig.from_saved(saved["autoencoder"]) != config
            or saved_train != _weights_settings(train)
            or saved["vectors"] != run.vectors_fingerprint(kv.vectors.shape)):
        return "stale"
    if state["stopped"] == "time":  # by these options' --max-time, or an earlier, shorter one
        spent = training_seconds(read_history(folder.history))
        return "finished" if train.max_time is not None and spent >= train.max_time else "partial"
    if state["stopped"] == "seen":  # likewise for --max-seen
        seen = sentences_seen(read_history(folder.history))
        return "finished" if train.max_seen is not None and seen >= train.max_seen else "partial"
    return "finished" if state["stopped"] in ("epochs", "early-stop") else "partial"
