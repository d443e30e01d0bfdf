"""The training loop: epochs, early stopping, checkpoints, the NaN guard, resume and Ctrl-C.

Not ``model.fit``: with Keras 3, ``fit`` breaks under ``MultiWorkerMirroredStrategy``
(keras-team/keras#20585), while this loop runs unchanged under any strategy. The loop is the
same on every Keras backend; the compiled step, the forward pass and the distribution come from
the backend's module (:mod:`autoencoder.backends`): ``tf.function`` steps run through a
``tf.distribute`` strategy on TensorFlow, ``jax.jit`` stateless steps on JAX.

Batches come from :mod:`autoencoder.data.batches`: each split is encoded once into a memory-mapped id
matrix, and every epoch's batches (a pure function of the seed and the epoch) are grouped by
length and padded only to one of a few widths, at which the model runs (one compiled step per
width). Under several workers every worker reads the whole file in the same seeded order and
keeps its slice of each global batch, so the global batches, and the results, are those of a
single worker. Only the chief evaluates and writes into the run directory; it shares the
validation figures with the other workers, so all of them take the same early-stopping decision,
and a Ctrl-C on any worker stops all of them at the same step.

Each epoch ends with a validation pass, a ``last.keras`` checkpoint (optimizer state included), a
``best.keras`` copy when validation loss improved, ``history.csv``, the checkpoint hooks (the
pipelines draw ``loss.png``), ``manifest.json`` (sizes and hashes of the model folder's files)
and ``state.json`` (written last: it is the commit point that ``resume`` trusts); see
:mod:`autoencoder.training.checkpoints`.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import itertools
import logging
import math
import os
import resource
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path

import keras
import numpy as np
from keras import ops

from autoencoder.backends import current as current_backend
from autoencoder.config import TrainConfig
from autoencoder.data.batches import Bucketing, batch_ids, padding_share, plan_epoch
from autoencoder.data.sentences import EncodedSentences, count_lines, sample_mask
from autoencoder.data.vocab import PAD_ID, UNK_ID
from autoencoder.model.network import SentenceAutoencoder
from autoencoder.training.checkpoints import (
    EpochProgress,
    TrainingState,
    read_history,
    read_state,
    resume_point,
    sentences_seen,
    training_seconds,
    weights_finite,
    weights_sha256,
    write_history,
)
from autoencoder.training.reliance import CodeReliance
from autoencoder.training.trace import StepTrace, default_every
from embeddings.core.progress import progress_bar
from embeddings.store.errors import SeqaeError
from embeddings.store.files import atomic_path, sha256_file
from embeddings.store.jsonfile import write_json
from embeddings.store.locks import folder_lock
from embeddings.store.manifests import write_manifest
from embeddings.store.rundir import ModelDir

log = logging.getLogger(__name__)

# Steps whose loss and gradient norm a non-finite event keeps, to show what led to it.
STEPS_BEFORE_NON_FINITE = 20


class NonFiniteLossError(SeqaeError):
    """Training produced a NaN or infinite loss or gradient; weights were restored.

    ``event``: where (``epoch``, ``step``), the step's ``loss`` and ``grad_norm`` (non-finite
    values as the strings ``nan``/``inf``, which JSON can hold), and the steps ``before`` it.
    """

    def __init__(self, message: str, event: dict | None = None):
        super().__init__(message)
        self.event = event


# How to go on after Ctrl-C: each way of training continues its own way.
RESUME_ADVICE = ("continue with `pipe train-ae --resume` (train_autoencoder(resume=True)); "
                 "`pipe run` and `pipe study` continue it when rerun as they were")


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


class Trainer:
    """Trains a :class:`SentenceAutoencoder` and keeps its checkpoints in ``model_dir``.

    Parameters
    ----------
    autoencoder : the model to train (built under ``strategy.scope()``).
    config : optimisation settings.
    model_dir : ``RUN/models/NAME`` (a :class:`~embeddings.store.rundir.ModelDir`, or its path).
    strategy : the backend's distribution (a ``tf.distribute`` strategy on TensorFlow; None on
        JAX); the default (single-device) one when None.
    bucketing : how training and validation batches are grouped by length; None pads every
        batch to ``seq_len`` (the fixed-width batches of earlier versions).
    on_checkpoint : callables ``hook(model_dir, history)`` run after each checkpoint, under the
        model folder's lock and before the manifest (a figure of the history, say); a file a
        hook writes is in the manifest when :attr:`ModelDir.FILES` names it.

    Attributes
    ----------
    history_ : list of per-epoch dicts with ``HISTORY_FIELDS``.
    state_ : :class:`TrainingState`, as ``state.json`` holds it after the last epoch.
    weights_sha256_ : digest of the final weights (equal on every worker of a cluster).
    """

    def __init__(self, autoencoder: SentenceAutoencoder, config: TrainConfig, model_dir: ModelDir | Path,
                 strategy=None,
                 bucketing: Bucketing | None = Bucketing(),
                 on_checkpoint: Sequence[Callable[[ModelDir, list[dict]], None]] = ()):
        self.autoencoder = autoencoder
        self.config = config
        self.model_dir = model_dir if isinstance(model_dir, ModelDir) else ModelDir(model_dir)
        self.backend = current_backend()
        self.strategy = strategy or self.backend.default_strategy()
        self.replicas = self.backend.replicas(self.strategy)
        self.bucketing = bucketing
        self.is_chief = self.backend.is_chief(self.strategy)
        if self.backend.is_multi_worker(self.strategy):
            config.check_multi_worker()
        self.on_checkpoint = tuple(on_checkpoint)

    # -- checkpoints -----------------------------------------------------------------------
    @property
    def last_path(self) -> Path:
        return self.model_dir.last

    @property
    def best_path(self) -> Path:
        return self.model_dir.best

    def _restore(self) -> TrainingState:
        """Load ``last.keras`` (weights and optimizer state) and ``state.json`` for ``--resume``."""
        saved, checkpoint = resume_point(self.model_dir)
        state = TrainingState.from_dict(saved)
        if checkpoint != self.last_path:
            # Killed after the new last.keras was renamed into place but before state.json
            # committed it: the committed checkpoint is the one kept aside. Put it back.
            log.warning("the last checkpoint write was interrupted; resuming from the "
                        "checkpoint of epoch %d", state.epoch)
            if self.is_chief:
                with folder_lock(self.model_dir, shared=False):
                    os.replace(checkpoint, self.last_path)
                    self.write_manifest()  # the manifest follows the checkpoint put back
                checkpoint = self.last_path
        try:
            with self.backend.scope(self.strategy):
                model = keras.saving.load_model(checkpoint, safe_mode=True)
        except Exception as exc:  # Keras raises many types for a broken zip or config.
            raise SeqaeError(f"cannot load checkpoint {checkpoint}: {exc}") from None
        self.autoencoder.model = model
        self.history_ = read_history(self.model_dir.history)[: state.epoch]
        return state

    def _save_epoch(self, state: TrainingState, improved: bool) -> None:
        model = self.autoencoder.model
        if not weights_finite(model):
            raise NonFiniteLossError("weights became non-finite; nothing saved")
        if not self.is_chief:
            self.trace_.pending.clear()  # the chief writes the trace
            return
        with folder_lock(self.model_dir, shared=False):  # readers see all old or all new
            previous = self.model_dir.previous
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
            state.last_sha256 = sha256_file(self.last_path)
            write_history(self.model_dir.history, self.history_)
            for hook in self.on_checkpoint:
                hook(self.model_dir, self.history_)
            state.trace_bytes = self.trace_.commit()  # after the checkpoints: one commit
            self.write_manifest()
            write_json(self.model_dir.state, state.to_dict())
            previous.unlink(missing_ok=True)

    def write_manifest(self) -> None:
        files = tuple(name for name in ModelDir.FILES if (self.model_dir / name).exists())
        write_manifest(self.model_dir, files, {"autoencoder": self.autoencoder.config.to_dict(),
                                               "train": asdict(self.config)})

    # -- the step --------------------------------------------------------------------------
    def _make_train_step(self, optimizer: keras.optimizers.Optimizer, batches: Iterator | None = None,
                         jit_compile: bool | None = None):
        """The backend's compiled step for the batches of ``batches`` (the iterator of
        :meth:`_batches`); ``jit_compile``: XLA on TensorFlow (JAX always compiles)."""
        return self.backend.make_train_step(
            self.autoencoder, optimizer, self.config.clipnorm, self.strategy, batches,
            rows=self.config.batch_size, jit_compile=jit_compile,
            per_tensor=self.config.clip_scope == "tensor")

    # -- the loop --------------------------------------------------------------------------
    def fit(self, train_path: Path, val_path: Path, resume: bool = False) -> Trainer:
        """Train until ``epochs``, early stopping or a non-finite loss (which raises)."""
        if self.is_chief:
            self.model_dir.path.mkdir(parents=True, exist_ok=True)
        state = self._start(resume)
        train, val = self._load_splits(train_path, val_path)
        steps = math.ceil(len(train) / self.config.batch_size)
        self._open_trace(state, steps, resume)
        log.info("training %s: %d sentences, %d steps/epoch, %s parameters, %d replica(s)",
                 self.model_dir.name, len(train), steps,
                 f"{self.autoencoder.model.count_params():,}", self.replicas)
        first = state.epoch + 1
        if first <= self.config.epochs and state.stopped != "early-stop":
            skip = state.partial.step if state.partial else 0
            batches = self._batches(train, first, skip)
            loop = _Loop(self._make_train_step(self.autoencoder.model.optimizer, batches),
                         batches, train, val, steps)
        with _deferred_sigint() as interrupted:
            for epoch in range(first, self.config.epochs + 1):
                if state.stopped == "early-stop":
                    break
                limit = ("time" if self._time_left() <= 0 else "seen"
                         if self.config.max_seen is not None
                         and self._seen() >= self.config.max_seen else None)
                if limit:
                    if limit != state.stopped:  # resumed past a limit reached before
                        self._record_stop(state, limit)
                    break
                self._run_epoch(epoch, state, loop, interrupted)
                if self._stop_requested:
                    raise TrainingInterrupted(f"interrupted after epoch {epoch}; checkpoint saved: "
                                              + RESUME_ADVICE)
        self.state_ = state
        self.weights_sha256_ = weights_sha256(self.autoencoder.model)
        log.info("final weights sha256 %s", self.weights_sha256_)
        return self

    def _record_stop(self, state: TrainingState, limit: str) -> None:
        """A resumed run that is already at ``limit``: say so in ``state.json`` (the
        checkpoint is unchanged), so that it reads as stopped by these options."""
        state.stopped = limit
        if self.is_chief:
            with folder_lock(self.model_dir, shared=False):
                write_json(self.model_dir.state, state.to_dict())

    def _start(self, resume: bool) -> TrainingState:
        """The state to start from (the checkpoint's, or a new one with a compiled model), with
        the optimizer built at the learning rate asked for now and the compiled steps ready."""
        cfg, ae = self.config, self.autoencoder
        if resume:
            state = self._restore()
            log.info("resuming %s after epoch %d%s", self.model_dir.name, state.epoch,
                     f", step {state.partial.step}" if state.partial else "")
        else:
            self.history_, state = [], TrainingState()
            with self.backend.scope(self.strategy):
                ae.model.compile(optimizer=cfg.make_optimizer(self.replicas))
        model, optimizer = ae.model, ae.model.optimizer
        # Resuming keeps the optimizer's moments but takes the learning rate asked for now (the
        # usual remedy after a non-finite loss), scaled for the replicas of this run.
        optimizer.learning_rate.assign(cfg.learning_rate(self.replicas))
        if not optimizer.built:
            with self.backend.scope(self.strategy):
                optimizer.build(model.trainable_variables)
        self._eval_step = self.backend.compile_forward(ae, functools.partial(_masked_loss, ae),
                                                       rows=ae.eval_rows)
        self._from_chief = self.backend.chief_broadcast(self.strategy)
        self._stop_requested = False
        return state

    def _load_splits(self, train_path: Path, val_path: Path
                     ) -> tuple[EncodedSentences, EncodedSentences]:
        """The training and validation sentences, encoded, and the code-reliance measure."""
        cfg = self.config
        train = self._encode(train_path, cfg.max_sentences, cfg.seed)
        if len(train) == 0:
            raise SeqaeError(f"no training sentences in {train_path}")
        val = self._encode(val_path, cfg.val_sentences, cfg.seed + 1)
        self.reliance_ = (CodeReliance(self.autoencoder, val, train, cfg.eval_sample, cfg.seed + 2)
                          if cfg.eval_every and self.is_chief else None)
        return train, val

    def _open_trace(self, state: TrainingState, steps: int, resume: bool) -> None:
        """``steps.csv``: rows past the committed checkpoint are dropped (they are replayed);
        a new run starts it empty."""
        self.trace_ = StepTrace(self.model_dir.steps,
                                self.config.trace_every or default_every(steps))
        if self.is_chief:
            with folder_lock(self.model_dir, shared=False):
                # The checkpoint's place: the steps of its partial epoch, or its whole epochs.
                upto = ((state.epoch + 1, state.partial.step) if state.partial
                        else (state.epoch, math.inf))
                if self.trace_.restore(state.trace_bytes if resume else 0, upto):
                    self.write_manifest()  # the manifest follows the file it covers

    def _encode(self, path: Path, n_keep: int | None, seed: int) -> EncodedSentences:
        """A split's sentences (a seeded subsample of ``n_keep`` of them; None: all), encoded."""
        keep = sample_mask(count_lines(path), n_keep, seed)
        return EncodedSentences.encode(path, self.autoencoder.vocab,
                                       self.autoencoder.config.seq_len, keep=keep)

    def _plan(self, train: EncodedSentences, epoch: int):
        """The batches of ``epoch``: a pure function of the seed and the epoch."""
        return plan_epoch(train.lengths, self.config.batch_size, self.autoencoder.config.seq_len,
                          seed=epoch_seed(self.config.seed, epoch), bucketing=self.bucketing)

    def _batches(self, train: EncodedSentences, first_epoch: int, skip: int) -> Iterator:
        """The batches of every epoch from ``first_epoch`` on, one epoch after the other, less
        the ``skip`` already trained, through a single iterator of the backend."""

        def generate():
            for epoch in range(first_epoch, self.config.epochs + 1):
                plan = self._plan(train, epoch)
                yield from batch_ids(train, plan[skip if epoch == first_epoch else 0 :])

        return self.backend.distribute_batches(self.strategy, generate)

    def _seen(self) -> int:
        return sentences_seen(self.history_)

    def _time_left(self) -> float:
        """Seconds of ``max_time`` not yet spent by the finished epochs (inf without a limit)."""
        if self.config.max_time is None:
            return math.inf
        return self.config.max_time - training_seconds(self.history_)

    def _run_epoch(self, epoch: int, state: TrainingState, loop: _Loop,
                   interrupted: Callable[[], bool]) -> None:
        """One pass over the training sentences, validation, checkpoint; Ctrl-C between steps
        saves a mid-epoch checkpoint from which ``--resume`` replays the rest of the epoch. When
        ``max_time`` runs out, the epoch ends at that step (its other batches are not trained)
        and is validated and checkpointed as a whole one."""
        good_weights = self.autoencoder.model.get_weights()
        state.stopped = None  # a resumed model goes on past the limit it stopped at
        done, state.partial = state.partial or EpochProgress(), None
        clock = _Clock(self._time_left(), done.wall_s)
        self.trace_.reset(done.trace)
        plan = self._plan(loop.train, epoch)
        limit = self._train_steps(epoch, state, loop, plan, done, clock, good_weights,
                                  interrupted)
        self._end_epoch(epoch, state, loop, plan, done, clock.elapsed(),
                        limit or ("time" if clock.over() else None))  # or the last step spent it

    def _train_steps(self, epoch: int, state: TrainingState, loop: _Loop, plan: list,
                     done: EpochProgress, clock: _Clock, good_weights: list,
                     interrupted: Callable[[], bool]) -> str | None:
        """The epoch's steps from ``done.step`` on, adding to ``done``; ``time`` or ``seen``
        when ``max_time`` or ``max_seen`` ran out before the last one."""
        cfg, first = self.config, done.step
        seen = self._seen() + sum(len(batch.rows) for batch in plan[:first])
        before, lr = training_seconds(self.history_), cfg.learning_rate(self.replicas)
        recent = collections.deque(maxlen=STEPS_BEFORE_NON_FINITE)
        bar = progress_bar(itertools.islice(loop.batches, loop.steps - first), total=loop.steps,
                           initial=first, desc=f"epoch {epoch}/{cfg.epochs}", unit="batch",
                           leave=False, show=self.is_chief)
        with contextlib.closing(bar):
            for step, ids in enumerate(bar, first + 1):
                extra = self.autoencoder.step_inputs((cfg.seed, epoch, step), cfg.batch_size)
                loss, norm, n_tokens, stops = (
                    float(t) for t in loop.train_step(ids, float(interrupted()), *extra))
                if not (math.isfinite(loss) and math.isfinite(norm)):
                    bar.close()
                    self._non_finite(state, epoch, step, good_weights, clock,
                                     {"loss": loss, "grad_norm": norm, "before": list(recent)})
                recent.append({"step": step, "loss": loss, "grad_norm": norm})
                done.add(loss, n_tokens, norm)
                seen += len(plan[step - 1].rows)
                # Decided before a measurement moves the deadline.
                over = ("time" if clock.over() else
                        "seen" if cfg.max_seen is not None and seen >= cfg.max_seen else None)
                last = step == loop.steps or over is not None
                measured = self._measure(clock) if self._measures(step, last) else None
                self.trace_.step(epoch, step, loss, n_tokens, norm, last=last, sentences=seen,
                                 train_s=before + clock.elapsed(), lr=lr, validation=measured)
                bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
                self._stop_requested = stops > 0  # a Ctrl-C at the last step stops after the epoch
                if over:
                    log.info("%s reached after step %d of epoch %d",
                             f"--max-time {cfg.max_time:g}s" if over == "time"
                             else f"--max-seen {cfg.max_seen}", step, epoch)
                    return over
                if self._stop_requested and step < loop.steps:
                    bar.close()
                    self._save_interrupted(epoch, state, done, clock, loop.steps)
        return None

    def _measures(self, step: int, last: bool) -> bool:
        return self.reliance_ is not None and (last or step % self.config.eval_every == 0)

    def _measure(self, clock: _Clock) -> dict:
        """The code-reliance measure now; its time is not training time."""
        started = time.perf_counter()
        measured = self.reliance_.measure()
        clock.pause(time.perf_counter() - started)
        return measured

    def _save_interrupted(self, epoch: int, state: TrainingState, done: EpochProgress,
                          clock: _Clock, steps: int):
        """Ctrl-C inside an epoch: save a checkpoint with the epoch's progress, and stop."""
        done.wall_s, done.trace = clock.elapsed(), self.trace_.state()
        state.partial = done
        self._save_epoch(state, improved=False)
        raise TrainingInterrupted(
            f"interrupted in epoch {epoch} after step {done.step} of {steps}; checkpoint saved: "
            + RESUME_ADVICE)

    def _end_epoch(self, epoch: int, state: TrainingState, loop: _Loop, plan: list,
                   done: EpochProgress, wall: float, limit: str | None) -> None:
        """Validate, decide on early stopping (by ``monitor``), append the history row and
        checkpoint; ``limit``: ``time`` or ``seen`` when that limit ended the epoch."""
        cfg = self.config
        sentences = sum(len(batch.rows) for batch in plan[: done.step])  # fewer if out of time
        val_loss, val_acc = self._from_chief(
            self.evaluate(loop.val) if self.is_chief else (None, None))
        train_loss, grad_norm = done.loss_sum / done.tokens, done.norm_sum / done.step
        improved = _improves(state, cfg.monitor, train_loss if val_loss is None else val_loss,
                             val_acc)
        if val_acc is not None and (state.best_val_accuracy is None
                                    or val_acc > state.best_val_accuracy):
            state.best_val_accuracy = val_acc
        if val_loss is not None and (state.best_val_loss is None
                                     or val_loss < state.best_val_loss):
            state.best_val_loss = val_loss
        elif val_loss is None and (state.best_val_loss is None or train_loss < state.best_val_loss):
            state.best_val_loss = train_loss  # no validation sentences: the training loss
        if improved:
            state.best_epoch, state.wait = epoch, 0
        else:
            state.wait += 1
        self.history_.append({
            "epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
            "val_token_accuracy": val_acc, "grad_norm": grad_norm, "wall_s": wall,
            "sentences": sentences, "sentences_per_s": sentences / wall,
            "padding_share": padding_share(plan, loop.train.lengths),
            "peak_rss_mb": peak_rss_mb(), "status": "ok",
        })
        state.epoch = epoch
        if cfg.patience and state.wait >= cfg.patience and self._seen() >= (cfg.min_seen or 0):
            state.stopped = "early-stop"
        elif epoch == cfg.epochs:
            state.stopped = "epochs"
        elif limit:
            state.stopped = limit
        self._save_epoch(state, improved)
        log.info("epoch %d: train %.4f  val %s  val acc %s  |g| %.3g  %.0f sent/s%s", epoch,
                 train_loss, _fmt(val_loss), _fmt(val_acc), grad_norm, sentences / wall,
                 "  (best)" if improved else "")

    def _non_finite(self, state: TrainingState, epoch: int, step: int, good_weights: list,
                    clock: _Clock, event: dict):
        """Restore the epoch's starting weights, record the event (``event``: the step's loss
        and gradient norm, and those of the steps ``before`` it) in ``state.json``, and raise."""
        self.autoencoder.model.set_weights(good_weights)
        state.nan_events += 1
        cfg = self.config
        event = {"epoch": epoch, "step": step, **{k: v if math.isfinite(v) else str(v)
                                                   for k, v in event.items() if k != "before"},
                 "before": event["before"]}
        error = NonFiniteLossError(
            f"non-finite loss at epoch {epoch}, step {step} ({cfg.optimizer}, lr {cfg.lr:g}, "
            f"clipnorm {cfg.clipnorm:g}): the learning rate is too high for this model; lower "
            f"--lr (try {cfg.lr / 10:g}) or set --clipnorm 1.0. Checkpoints hold the last good epoch.",
            event)
        if not self.is_chief:
            raise error
        self.history_.append({
            "epoch": epoch, "train_loss": float("nan"), "wall_s": clock.elapsed(),
            "peak_rss_mb": peak_rss_mb(), "status": f"non-finite at step {step}",
        })
        with folder_lock(self.model_dir, shared=False):
            write_history(self.model_dir.history, self.history_)
            self.write_manifest()  # history.csv changed
            state_path = self.model_dir.state
            on_disk = (read_state(state_path) if state_path.exists()
                       else dict(state.to_dict(), epoch=0))
            write_json(state_path, dict(on_disk, nan_events=state.nan_events,
                                        stopped="non-finite", non_finite=event))
        raise error

    def evaluate(self, sentences: EncodedSentences) -> tuple[float | None, float | None]:
        """Token-mean loss and token accuracy over real tokens; as in ``compare``, a position is
        right only when it decodes to its word, so UNK (in or out) never counts as right."""
        ae, loss_sum, correct, tokens = self.autoencoder, 0.0, 0, 0
        plan = plan_epoch(sentences.lengths, ae.eval_rows, ae.config.seq_len,
                          bucketing=self.bucketing)
        for ids in progress_bar(batch_ids(sentences, plan), total=len(plan), desc="validation",
                                unit="batch", leave=False):
            outputs, token_loss = self._eval_step(ids)
            mask = ids != PAD_ID
            predicted = ae.decode(outputs)[0][..., 0]
            loss_sum += float(token_loss.sum(dtype=np.float64))
            correct += int(((predicted == ids) & mask & (ids != UNK_ID)).sum())
            tokens += int(mask.sum())
        if tokens == 0:
            return None, None
        return loss_sum / tokens, correct / tokens


def _improves(state: TrainingState, monitor: str, loss: float, accuracy: float | None) -> bool:
    """Whether an epoch's figures beat the best so far by ``monitor`` (before ``state`` takes
    them); accuracy falls back to the loss where there is none (no validation sentences)."""
    if monitor == "val_token_accuracy" and accuracy is not None:
        return state.best_val_accuracy is None or accuracy > state.best_val_accuracy
    return state.best_val_loss is None or loss < state.best_val_loss


def _masked_loss(ae: SentenceAutoencoder, ids, outputs) -> tuple:
    """The loss at each real token of an id batch, 0 at padding: shape (batch, width). The
    autoregressive decoder's is teacher-forced, as in training (``outputs``, what it writes on
    its own, give the accuracy)."""
    if ae.config.autoregressive:
        outputs = ae(ids)
    return (ae.token_loss(ids, outputs) * ops.cast(ids != PAD_ID, "float32"),)


@dataclasses.dataclass
class _Loop:
    """What every epoch of one ``fit`` shares: the compiled step, the batch iterator (one over
    all epochs), the encoded splits and the steps per epoch."""

    train_step: Callable
    batches: Iterator
    train: EncodedSentences
    val: EncodedSentences
    steps: int


class _Clock:
    """An epoch's training time: ``elapsed`` seconds, ``over`` once ``budget`` seconds have
    gone; ``pause`` leaves time spent on something else (validation) out of both."""

    def __init__(self, budget: float, already: float = 0.0):
        now = time.perf_counter()
        self.started, self.deadline = now - already, now + budget - already

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def over(self) -> bool:
        return time.perf_counter() >= self.deadline

    def pause(self, seconds: float) -> None:
        self.started += seconds
        self.deadline += seconds


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


