"""The training loop: one ``tf.function`` step run through a ``tf.distribute`` strategy.

Not ``model.fit``: with Keras 3, ``fit`` breaks under ``MultiWorkerMirroredStrategy``
(keras-team/keras#20585), while this loop runs unchanged under any strategy. The loss of each
replica is its sum over real tokens divided by the number of real tokens in the *global* batch,
so summing replica gradients gives exactly the single-device token-mean gradient.

Batches come from :mod:`autoencoder.batches`: each split is encoded once into a memory-mapped id
matrix, and every epoch's batches (a pure function of the seed and the epoch) are grouped by
length and padded only to one of a few widths, at which the model runs (one traced step per
width). Under several workers every worker reads the whole file in the same seeded order and keeps its
slice of each global batch (``tf.data`` auto-sharding by data), so the global batches, and the
results, are those of a single worker. Only the chief evaluates and writes into the run
directory; it shares the validation figures with the other workers, so all of them take the same
early-stopping decision, and a Ctrl-C on any worker stops all of them at the same step.

Each epoch ends with a validation pass, a ``last.keras`` checkpoint (optimizer state included), a
``best.keras`` copy when validation loss improved, ``history.csv``, ``loss.png``, ``manifest.json``
(sizes and hashes of the model folder's files) and ``state.json`` (written last: it is the commit
point that ``resume`` trusts).
"""

from __future__ import annotations

import contextlib
import csv
import functools
import hashlib
import itertools
import logging
import math
import os
import resource
import shutil
import signal
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator

import keras
import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from autoencoder.batches import EVAL_BATCH, Bucketing, batch_ids, padding_share, plan_epoch
from autoencoder.data import EncodedSentences, count_lines, sample_mask
from autoencoder.distribute import is_chief
from autoencoder.model import IDS_SPEC, SentenceAutoencoder, per_width
from autoencoder.plots import plot_losses
from autoencoder.vocab import PAD_ID, UNK_ID
from embeddings.io import (
    SeqaeError, atomic_open, atomic_path, read_json, sha256_file, write_json, write_manifest,
)

log = logging.getLogger(__name__)

OPTIMIZERS = ("adam", "sgd")
HISTORY_FIELDS = (
    "epoch", "train_loss", "val_loss", "val_token_accuracy", "grad_norm", "wall_s",
    "sentences", "sentences_per_s", "padding_share", "peak_rss_mb", "status",
)
# What the manifest covers; state.json is not listed, it is the commit point written after it.
MODEL_FILES = ("config.json", "vocab.txt", "last.keras", "best.keras", "history.csv", "loss.png")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings.

    Parameters
    ----------
    epochs : maximum number of passes over the training sentences.
    batch_size : global batch size in sentences (split across replicas).
    optimizer : ``adam`` or ``sgd`` (with ``momentum`` and ``nesterov``).
    lr : learning rate.
    clipnorm : clip the global gradient norm to this value (Keras's ``global_clipnorm``);
        0 disables clipping.
    patience : stop after this many epochs without a lower validation loss; 0 never stops early.
    scale_lr : multiply ``lr`` by the number of replicas in sync (the linear scaling rule of
        Goyal et al. 2017, for a global batch that grows with the replicas).
    seed : shuffling and sampling seed.
    max_sentences : train on a seeded subsample of this many sentences (None: all).
    val_sentences : validate on a seeded subsample of this many sentences (None: all).
    """

    epochs: int = 20
    batch_size: int = 64
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.0
    nesterov: bool = False
    clipnorm: float = 1.0
    patience: int = 3
    scale_lr: bool = False
    seed: int = 0
    max_sentences: int | None = None
    val_sentences: int | None = 1000

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise SeqaeError(f"--optimizer must be one of {', '.join(OPTIMIZERS)}")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise SeqaeError(f"--{name.replace('_', '-')} must be at least 1")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise SeqaeError(f"--lr must be a positive number, got {self.lr}")
        if not (math.isfinite(self.clipnorm) and math.isfinite(self.momentum)):
            raise SeqaeError("--clipnorm and --momentum must be finite numbers")
        if self.clipnorm < 0 or self.momentum < 0 or self.patience < 0:
            raise SeqaeError("--clipnorm, --momentum and --patience must not be negative")
        if self.nesterov and self.optimizer != "sgd":
            raise SeqaeError("--nesterov applies to --optimizer sgd only")

    def learning_rate(self, replicas: int = 1) -> float:
        """The learning rate used with ``replicas`` replicas in sync."""
        return float(self.lr * (replicas if self.scale_lr else 1))

    def make_optimizer(self, replicas: int = 1) -> keras.optimizers.Optimizer:
        lr = self.learning_rate(replicas)
        if self.optimizer == "adam":
            return keras.optimizers.Adam(learning_rate=lr)
        return keras.optimizers.SGD(learning_rate=lr, momentum=self.momentum,
                                    nesterov=self.nesterov)


# ``last.keras`` as committed by ``state.json``, kept aside while its successor is saved.
PREVIOUS_CHECKPOINT = ".last.keras.previous"
_STATE_KEYS = {"epoch": int, "best_val_loss": (float, int, type(None)),
               "best_epoch": (int, type(None)), "wait": int, "nan_events": int,
               "stopped": (str, type(None)), "last_sha256": (str, type(None))}


def resume_point(model_dir: Path) -> tuple[dict, Path]:
    """``state.json`` and the checkpoint it commits, checked without writing anything.

    The checkpoint is ``last.keras``, or its predecessor kept aside when a kill came between
    renaming a new ``last.keras`` into place and committing it. Raises :class:`SeqaeError`
    when there is nothing to resume, ``state.json`` is damaged, or no file matches its sha256.
    """
    model_dir = Path(model_dir)
    state_path, last = model_dir / "state.json", model_dir / "last.keras"
    if not state_path.is_file() or not last.is_file():
        raise SeqaeError(f"nothing to resume in {model_dir}: no checkpoint yet")
    state = read_json(state_path)
    bad = [key for key, kind in _STATE_KEYS.items()
           if not isinstance(state, dict) or not isinstance(state.get(key, ...), kind)
           or isinstance(state.get(key), bool)]
    if bad or state["epoch"] < 0:
        raise SeqaeError(f"damaged {state_path} ({', '.join(bad) or 'epoch'}); "
                         "train again without --resume (--force)")
    if sha256_file(last) == state["last_sha256"]:
        return state, last
    previous = model_dir / PREVIOUS_CHECKPOINT
    if previous.is_file() and sha256_file(previous) == state["last_sha256"]:
        return state, previous
    raise SeqaeError(f"checkpoint {last} does not match state.json (corrupt, truncated or "
                     "replaced); train again without --resume")


class NonFiniteLossError(SeqaeError):
    """Training produced a NaN or infinite loss or gradient; weights were restored."""


class TrainingInterrupted(SeqaeError):
    """Ctrl-C during training: a resumable checkpoint was saved first."""

    exit_code = 130  # the shell's convention for SIGINT


@contextlib.contextmanager
def _deferred_sigint() -> Iterator[Callable[[], bool]]:
    """Turn the first Ctrl-C into a flag the loop checks between steps, so no step or checkpoint
    is cut in half; a second Ctrl-C interrupts at once. Yields the flag's getter."""
    flag = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield flag.is_set  # signal handlers can only be set from the main thread
        return

    def handler(signum, frame):
        if flag.is_set():
            signal.default_int_handler(signum, frame)
        log.warning("interrupt: saving a resumable checkpoint after this step (Ctrl-C again to abort)")
        flag.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield flag.is_set
    finally:
        signal.signal(signal.SIGINT, previous)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def epoch_seed(seed: int, epoch: int) -> int:
    """A shuffle seed per epoch, so a resumed run replays the uninterrupted run's order."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def weights_finite(model: keras.Model) -> bool:
    return all(np.isfinite(w).all() for w in model.get_weights())


def weights_sha256(model: keras.Model) -> str:
    """A digest of every weight's bytes, to check that workers ended with the same model."""
    digest = hashlib.sha256()
    for weights in model.get_weights():
        digest.update(np.ascontiguousarray(weights).tobytes())
    return digest.hexdigest()


class Trainer:
    """Trains a :class:`SentenceAutoencoder` and keeps its checkpoints in ``model_dir``.

    Parameters
    ----------
    autoencoder : the model to train (built under ``strategy.scope()``).
    config : optimisation settings.
    model_dir : ``RUN/models/NAME``.
    strategy : a ``tf.distribute`` strategy; the default (single-device) one when None.
    bucketing : how training and validation batches are grouped by length; None pads every
        batch to ``seq_len`` (the fixed-width batches of earlier versions).

    Attributes
    ----------
    history_ : list of per-epoch dicts with ``HISTORY_FIELDS``.
    state_ : the contents of ``state.json`` after the last epoch.
    weights_sha256_ : digest of the final weights (equal on every worker of a cluster).
    """

    def __init__(self, autoencoder: SentenceAutoencoder, config: TrainConfig, model_dir: Path,
                 strategy: tf.distribute.Strategy | None = None,
                 bucketing: Bucketing | None = Bucketing()):
        self.autoencoder = autoencoder
        self.config = config
        self.model_dir = Path(model_dir)
        self.strategy = strategy or tf.distribute.get_strategy()
        self.bucketing = bucketing
        self.is_chief = is_chief(self.strategy)

    # -- checkpoints -----------------------------------------------------------------------
    @property
    def last_path(self) -> Path:
        return self.model_dir / "last.keras"

    @property
    def best_path(self) -> Path:
        return self.model_dir / "best.keras"

    @property
    def _previous_path(self) -> Path:
        return self.model_dir / PREVIOUS_CHECKPOINT

    def _restore(self) -> dict:
        """Load ``last.keras`` (weights and optimizer state) and ``state.json`` for ``--resume``."""
        state, checkpoint = resume_point(self.model_dir)
        if checkpoint != self.last_path:
            # Killed after the new last.keras was renamed into place but before state.json
            # committed it: the committed checkpoint is the one kept aside. Put it back.
            log.warning("the last checkpoint write was interrupted; resuming from the "
                        "checkpoint of epoch %d", state["epoch"])
            if self.is_chief:
                os.replace(checkpoint, self.last_path)
                checkpoint = self.last_path
        try:
            with self.strategy.scope():
                model = keras.saving.load_model(checkpoint, safe_mode=True)
        except Exception as exc:  # Keras raises many types for a broken zip or config.
            raise SeqaeError(f"cannot load checkpoint {checkpoint}: {exc}") from None
        self.autoencoder.model = model
        self.history_ = read_history(self.model_dir / "history.csv")[: state["epoch"]]
        return state

    def _save_epoch(self, state: dict, improved: bool) -> None:
        model = self.autoencoder.model
        if not weights_finite(model):
            raise NonFiniteLossError("weights became non-finite; nothing saved")
        if not self.is_chief:
            return
        previous = self._previous_path
        if self.last_path.exists():
            # state.json names this checkpoint until the new state.json is written: keep it
            # aside (a hard link, no copy) so that a kill in between can still resume from it.
            previous.unlink(missing_ok=True)
            try:
                os.link(self.last_path, previous)
            except OSError:
                shutil.copyfile(self.last_path, previous)
        with atomic_path(self.last_path, suffix=".tmp.keras") as tmp:
            model.save(tmp)
        if improved:
            with atomic_path(self.best_path, suffix=".tmp.keras") as tmp:
                shutil.copyfile(self.last_path, tmp)
        state["last_sha256"] = sha256_file(self.last_path)
        write_history(self.model_dir / "history.csv", self.history_)
        plot_losses({self.model_dir.name: self.history_}, self.model_dir / "loss.png")
        self.write_manifest()
        write_json(self.model_dir / "state.json", state)
        previous.unlink(missing_ok=True)

    def write_manifest(self) -> None:
        files = tuple(name for name in MODEL_FILES if (self.model_dir / name).exists())
        write_manifest(self.model_dir, files, {"autoencoder": self.autoencoder.config.to_dict(),
                                               "train": asdict(self.config)})

    # -- the step --------------------------------------------------------------------------
    def _make_train_step(self, optimizer: keras.optimizers.Optimizer, ids_spec=IDS_SPEC,
                         jit_compile: bool | None = None):
        """The step, one graph per batch width, traced for batches of ``ids_spec`` (the
        distributed iterator's ``element_spec``); ``jit_compile``: compiled by XLA."""
        ae, clipnorm = self.autoencoder, self.config.clipnorm
        model, n_replicas = ae.model, self.strategy.num_replicas_in_sync

        def replica_step(ids, stop, width):
            ids = tf.ensure_shape(ids, (None, width))
            ctx = tf.distribute.get_replica_context()
            mask = tf.cast(ids != PAD_ID, tf.float32)
            # One all-reduce carries the global token count and any replica's stop request.
            n_tokens, stop = tf.unstack(ctx.all_reduce(tf.distribute.ReduceOp.SUM,
                                                       tf.stack([tf.reduce_sum(mask), stop])))
            with tf.GradientTape() as tape:
                outputs = ae(ids, training=True)
                loss = tf.reduce_sum(ae.token_loss(ids, outputs) * mask) / n_tokens
            grads = ctx.all_reduce(tf.distribute.ReduceOp.SUM,
                                   tape.gradient(loss, model.trainable_variables))
            norm = tf.linalg.global_norm(grads)
            if clipnorm:
                grads, _ = tf.clip_by_global_norm(grads, clipnorm, use_norm=norm)
            if n_replicas > 1:
                # Keras optimizers sum gradients over replicas themselves: give each its share.
                grads = [_scale(g, 1.0 / n_replicas) for g in grads]
            optimizer.apply(grads, model.trainable_variables)
            return loss, norm, n_tokens, stop

        def train_step(ids, stop, width):
            """One global batch ``width`` tokens wide; ``stop`` is 1.0 when this process was
            interrupted. Returns the token-mean loss, the gradient norm, the global token count
            and the summed stops."""
            loss, *same_everywhere = self.strategy.run(replica_step, args=(ids, stop, width))
            reduce = self.strategy.reduce
            return (reduce(tf.distribute.ReduceOp.SUM, loss, axis=None),
                    *(reduce(tf.distribute.ReduceOp.MEAN, t, axis=None) for t in same_everywhere))

        return per_width(train_step, (ids_spec, tf.TensorSpec((), tf.float32)), jit_compile)

    # -- the loop --------------------------------------------------------------------------
    def fit(self, train_path: Path, val_path: Path, resume: bool = False) -> "Trainer":
        """Train until ``epochs``, early stopping or a non-finite loss (which raises)."""
        cfg, ae = self.config, self.autoencoder
        if self.is_chief:
            self.model_dir.mkdir(parents=True, exist_ok=True)
        if resume:
            state = self._restore()
            log.info("resuming %s after epoch %d%s", self.model_dir.name, state["epoch"],
                     f", step {state['partial']['step']}" if "partial" in state else "")
        else:
            self.history_ = []
            state = {"epoch": 0, "best_val_loss": None, "best_epoch": None, "wait": 0,
                     "nan_events": 0, "stopped": None, "last_sha256": None}
            with self.strategy.scope():
                ae.model.compile(optimizer=cfg.make_optimizer(self.strategy.num_replicas_in_sync))
        model, optimizer = ae.model, ae.model.optimizer
        # Resuming keeps the optimizer's moments but takes the learning rate asked for now (the
        # usual remedy after a non-finite loss), scaled for the replicas of this run.
        optimizer.learning_rate.assign(cfg.learning_rate(self.strategy.num_replicas_in_sync))
        if not optimizer.built:
            with self.strategy.scope():
                optimizer.build(model.trainable_variables)
        self._eval_step = per_width(functools.partial(_eval_loss, ae), (IDS_SPEC,))
        self._from_chief = _chief_broadcast(self.strategy)
        self._stop_requested = False
        train = self._encode(train_path, cfg.max_sentences, cfg.seed)
        if len(train) == 0:
            raise SeqaeError(f"no training sentences in {train_path}")
        val = self._encode(val_path, cfg.val_sentences, cfg.seed + 1)
        steps = math.ceil(len(train) / cfg.batch_size)
        log.info("training %s: %d sentences, %d steps/epoch, %s parameters, %d replica(s)",
                 self.model_dir.name, len(train), steps, f"{model.count_params():,}",
                 self.strategy.num_replicas_in_sync)

        first = state["epoch"] + 1
        if first <= cfg.epochs and state["stopped"] != "early-stop":
            skip = state.get("partial", {}).get("step", 0)
            batches = iter(self.strategy.experimental_distribute_dataset(
                self._batches(train, first, skip)))
            train_step = self._make_train_step(optimizer, batches.element_spec)
        with _deferred_sigint() as interrupted:
            for epoch in range(first, cfg.epochs + 1):
                if state["stopped"] == "early-stop":
                    break
                self._run_epoch(epoch, state, train_step, batches, train, val, steps, interrupted)
                if self._stop_requested:
                    raise TrainingInterrupted(f"interrupted after epoch {epoch}; checkpoint saved: "
                                              "rerun the same command with --resume to continue")
        self.state_ = state
        self.weights_sha256_ = weights_sha256(model)
        log.info("final weights sha256 %s", self.weights_sha256_)
        return self

    def _encode(self, path: Path, n_keep: int | None, seed: int) -> EncodedSentences:
        """A split's sentences (a seeded subsample of ``n_keep`` of them; None: all), encoded."""
        keep = sample_mask(count_lines(path), n_keep, seed)
        return EncodedSentences.encode(path, self.autoencoder.vocab,
                                       self.autoencoder.config.seq_len, keep=keep)

    def _plan(self, train: EncodedSentences, epoch: int):
        """The batches of ``epoch``: a pure function of the seed and the epoch."""
        return plan_epoch(train.lengths, self.config.batch_size, self.autoencoder.config.seq_len,
                          seed=epoch_seed(self.config.seed, epoch), bucketing=self.bucketing)

    def _batches(self, train: EncodedSentences, first_epoch: int, skip: int) -> tf.data.Dataset:
        """The batches of every epoch from ``first_epoch`` on, one epoch after the other, less
        the ``skip`` already trained, read through a single distributed iterator: deleting one
        stalls for seconds under ``MirroredStrategy`` (about 10 s on 2 CPU cores), which an
        iterator per epoch paid every epoch."""

        def generate():
            for epoch in range(first_epoch, self.config.epochs + 1):
                plan = self._plan(train, epoch)
                yield from batch_ids(train, plan[skip if epoch == first_epoch else 0 :])

        batches = tf.data.Dataset.from_generator(
            generate, output_signature=tf.TensorSpec((None, None), tf.int32))
        # Every worker generates every global batch and keeps its slice of it.
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        return batches.prefetch(tf.data.AUTOTUNE).with_options(options)

    def _run_epoch(self, epoch: int, state: dict, train_step, batches: Iterator,
                   train: EncodedSentences, val: EncodedSentences, steps: int,
                   interrupted: Callable[[], bool]) -> None:
        """One pass over the training sentences (``steps`` batches from ``batches``), validation,
        checkpoint; Ctrl-C between steps saves a mid-epoch checkpoint from which ``--resume``
        replays the rest of the epoch."""
        cfg, model = self.config, self.autoencoder.model
        good_weights = model.get_weights()
        done = state.pop("partial", None) or {"step": 0, "loss_sum": 0.0, "tokens": 0.0,
                                               "norm_sum": 0.0, "wall_s": 0.0}
        started = time.perf_counter() - done["wall_s"]
        loss_sum, tokens, norm_sum = done["loss_sum"], done["tokens"], done["norm_sum"]
        bar = tqdm(itertools.islice(batches, steps - done["step"]),
                   total=steps, initial=done["step"], desc=f"epoch {epoch}/{cfg.epochs}",
                   unit="batch", leave=False, disable=None if self.is_chief else True)
        for step, ids in enumerate(bar, done["step"] + 1):
            stop = tf.constant(float(interrupted()))
            loss, norm, n_tokens, stops = (float(t) for t in train_step(ids, stop))
            if not (math.isfinite(loss) and math.isfinite(norm)):
                bar.close()
                self._non_finite(state, epoch, step, good_weights, started)
            loss_sum, tokens, norm_sum = loss_sum + loss * n_tokens, tokens + n_tokens, norm_sum + norm
            bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
            self._stop_requested = stops > 0
            if self._stop_requested and step < steps:
                bar.close()
                state["partial"] = {"step": step, "loss_sum": loss_sum, "tokens": tokens,
                                    "norm_sum": norm_sum, "wall_s": time.perf_counter() - started}
                self._save_epoch(state, improved=False)
                raise TrainingInterrupted(
                    f"interrupted in epoch {epoch} after step {step} of {steps}; checkpoint saved: "
                    "rerun the same command with --resume to continue")
        wall = time.perf_counter() - started
        val_loss, val_acc = self._from_chief(
            self.evaluate(val) if self.is_chief else (None, None))
        train_loss = loss_sum / tokens
        monitored = train_loss if val_loss is None else val_loss
        improved = state["best_val_loss"] is None or monitored < state["best_val_loss"]
        if improved:
            state.update(best_val_loss=monitored, best_epoch=epoch, wait=0)
        else:
            state["wait"] += 1
        self.history_.append({
            "epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
            "val_token_accuracy": val_acc, "grad_norm": norm_sum / steps, "wall_s": wall,
            "sentences": len(train), "sentences_per_s": len(train) / wall,
            "padding_share": padding_share(self._plan(train, epoch), train.lengths),
            "peak_rss_mb": peak_rss_mb(), "status": "ok",
        })
        state["epoch"] = epoch
        if cfg.patience and state["wait"] >= cfg.patience:
            state["stopped"] = "early-stop"
        elif epoch == cfg.epochs:
            state["stopped"] = "epochs"
        self._save_epoch(state, improved)
        log.info("epoch %d: train %.4f  val %s  val acc %s  |g| %.3g  %.0f sent/s%s", epoch,
                 train_loss, _fmt(val_loss), _fmt(val_acc), norm_sum / steps, len(train) / wall,
                 "  (best)" if improved else "")

    def _non_finite(self, state: dict, epoch: int, step: int, good_weights: list, started: float):
        """Restore the epoch's starting weights, record the event, and raise."""
        self.autoencoder.model.set_weights(good_weights)
        state["nan_events"] += 1
        cfg = self.config
        error = NonFiniteLossError(
            f"non-finite loss at epoch {epoch}, step {step} ({cfg.optimizer}, lr {cfg.lr:g}, "
            f"clipnorm {cfg.clipnorm:g}): the learning rate is too high for this model; lower "
            f"--lr (try {cfg.lr / 10:g}) or set --clipnorm 1.0. Checkpoints hold the last good epoch."
        )
        if not self.is_chief:
            raise error
        self.history_.append({
            "epoch": epoch, "train_loss": float("nan"), "wall_s": time.perf_counter() - started,
            "peak_rss_mb": peak_rss_mb(), "status": f"non-finite at step {step}",
        })
        write_history(self.model_dir / "history.csv", self.history_)
        self.write_manifest()  # history.csv changed
        state_path = self.model_dir / "state.json"
        on_disk = read_json(state_path) if state_path.exists() else dict(state, epoch=0)
        write_json(state_path, dict(on_disk, nan_events=state["nan_events"], stopped="non-finite"))
        raise error

    def evaluate(self, sentences: EncodedSentences) -> tuple[float | None, float | None]:
        """Token-mean loss and token accuracy over real tokens; as in ``compare``, a position is
        right only when it decodes to its word, so UNK (in or out) never counts as right."""
        ae, loss_sum, correct, tokens = self.autoencoder, 0.0, 0, 0
        plan = plan_epoch(sentences.lengths, EVAL_BATCH, ae.config.seq_len,
                          bucketing=self.bucketing)
        for ids in batch_ids(sentences, plan):
            outputs, batch_loss = self._eval_step(tf.constant(ids))
            mask = ids != PAD_ID
            predicted = ae.decode(outputs.numpy())[0][..., 0]
            loss_sum += float(batch_loss)
            correct += int(((predicted == ids) & mask & (ids != UNK_ID)).sum())
            tokens += int(mask.sum())
        if tokens == 0:
            return None, None
        return loss_sum / tokens, correct / tokens


def _eval_loss(ae: SentenceAutoencoder, ids: tf.Tensor, width: int):
    """Outputs and the summed loss over real tokens of one batch ``width`` tokens wide."""
    ids = tf.ensure_shape(ids, (None, width))
    outputs = ae(ids)
    mask = tf.cast(ids != PAD_ID, tf.float32)
    return outputs, tf.reduce_sum(ae.token_loss(ids, outputs) * mask)


def _chief_broadcast(strategy: tf.distribute.Strategy):
    """A function that returns, on every worker, the figures the chief passed to it (None
    travels as NaN), through one all-reduce in which only replica 0, the chief's, counts."""

    def replica_values(values):
        ctx = tf.distribute.get_replica_context()
        mine = tf.where(tf.equal(ctx.replica_id_in_sync_group, 0), values, tf.zeros_like(values))
        return ctx.all_reduce(tf.distribute.ReduceOp.SUM, mine)

    @tf.function
    def all_reduce(values):
        return strategy.experimental_local_results(strategy.run(replica_values, args=(values,)))[0]

    def broadcast(figures: tuple[float | None, ...]) -> tuple[float | None, ...]:
        values = tf.constant([math.nan if f is None else f for f in figures], tf.float64)
        return tuple(None if math.isnan(v) else float(v) for v in all_reduce(values).numpy())

    return broadcast


def _scale(grad, factor: float):
    # The one-hot projection's gradient is sparse (IndexedSlices): scale its values only.
    if isinstance(grad, tf.IndexedSlices):
        return tf.IndexedSlices(grad.values * factor, grad.indices, grad.dense_shape)
    return grad * factor


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def write_history(path: Path, rows: list[dict]) -> None:
    with atomic_open(path, newline="") as handle:
        writer = csv.DictWriter(handle, HISTORY_FIELDS)
        writer.writeheader()
        writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in rows)


def read_history(path: Path) -> list[dict]:
    """Rows of ``history.csv`` with numbers parsed (empty cells become None)."""
    if not Path(path).exists():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        return [{k: _parse(k, v) for k, v in row.items()} for row in csv.DictReader(handle)]


def _parse(key: str, value: str):
    if key == "status":
        return value
    if value == "":
        return None
    return int(value) if key in ("epoch", "sentences") else float(value)
