"""Training contenders in fresh processes, on synthetic vocabularies and sentences.

Each :class:`TrainingWorker` is one spawned Python process holding one autoencoder. The parent
drives it epoch by epoch over a pipe, so two contenders can alternate (A B A B ...) while each
keeps its own peak RSS: nothing one allocates can inflate the other's figure.

The step is the library's own (:class:`autoencoder.training.trainer.Trainer`'s) and the input the Trainer's
own batches of a LineSentence file (length-bucketed unless the spec says otherwise); only
``Trainer.fit``'s per-epoch validation and checkpointing are left out, since a checkpoint of the
100k-word one-hot baseline is gigabytes of disk traffic that says nothing about training speed.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
import multiprocessing
import os
import resource
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SOURCES = ("stream", "memory", "pipeline")
STREAM_EPOCHS = 12  # epochs a worker's stream holds, as many as any benchmark asks of one worker


@dataclass(frozen=True)
class ModelShape:
    """The model and batch every training benchmark shares (the reference sizes by default);
    benchmark settings extend it with their own data sizes.

    ``bucket=False`` pads every batch to ``seq_len``: one traced step instead of one per
    batch width, which saves ``--quick`` most of each worker's start-up where the batch
    widths are not what is compared (both contenders get the same batches either way).
    """

    dim: int = 2000
    seq_len: int = 50
    latent: int = 256
    batch_size: int = 64
    repeats: int = 3
    bucket: bool = True

    def train_spec(self, kind: str, vocab_size: int, sentences: int) -> TrainSpec:
        return TrainSpec(kind=kind, vocab_size=vocab_size, sentences=sentences, dim=self.dim,
                         seq_len=self.seq_len, latent=self.latent, batch_size=self.batch_size,
                         bucket=self.bucket)


@dataclass(frozen=True)
class TrainSpec:
    """One training contender.

    kind : ``embedding`` or ``onehot``.
    vocab_size : V, PAD and UNK included (the one-hot cap; the embedding kind gets V - 2 random
        word vectors).
    sentences : sentences per epoch.
    dim : word-vector width (also the one-hot kind's input projection width).
    seq_len, latent, batch_size : as in :class:`autoencoder.AutoencoderConfig` / ``TrainConfig``.
    jit_compile : compile the whole train step with XLA (one device only; TensorFlow: the JAX
        backend always compiles it).
    backend : the Keras backend the worker process runs on (``tensorflow`` or ``jax``).
    bucket : batches grouped by length and padded to one of a few widths (the Trainer's default);
        False pads every batch to ``seq_len``.
    softmax : the one-hot kind's training softmax, ``full`` or ``sampled`` (``negatives`` a step).
    """

    kind: str
    vocab_size: int
    sentences: int
    dim: int = 2000
    seq_len: int = 50
    latent: int = 256
    batch_size: int = 64
    seed: int = 0
    jit_compile: bool = False
    bucket: bool = True
    backend: str = "tensorflow"
    softmax: str = "full"
    negatives: int = 1024

    @property
    def label(self) -> str:
        return f"{self.kind} V={self.vocab_size:,}"

    def shape(self) -> str:
        """The model and batch settings, for table notes."""
        return (f"dim {self.dim}, seq-len {self.seq_len}, latent {self.latent}, "
                f"batch {self.batch_size}" + ("" if self.bucket else ", fixed-width batches"))

    def shape_note(self) -> str:
        """:meth:`shape`, flagged when it differs from the reference setup."""
        reference = TrainSpec(self.kind, self.vocab_size, self.sentences).shape()
        if self.shape() == reference:
            return self.shape()
        return f"{self.shape()} (shrunk from the reference {reference})"


def own_peak_rss_mb() -> float:
    """Peak resident memory of this process's own address space, in MiB.

    ``VmHWM`` of /proc/self/status, which starts afresh at exec; ``ru_maxrss`` (the fallback
    off Linux) does not: a child started by fork + exec (``subprocess``, multiprocessing's
    spawn) inherits its parent's peak, so a parent bigger than the child (one that has loaded
    TensorFlow and a model, as the benchmark runner has by then) hides the child's figure.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def synthetic_words(n: int) -> list[str]:
    """``n`` distinct words ``w0``, ``w1``, ... (most frequent first under :func:`write_zipf_sentences`)."""
    return [f"w{i}" for i in range(n)]


def write_zipf_sentences(path: Path, vocab_size: int, sentences: int, seed: int = 0,
                         mean_length: float = 20.0, lengths: np.ndarray | None = None) -> Path:
    """Write a LineSentence file of synthetic sentences over the ``vocab_size - 2`` words of
    :func:`synthetic_words`.

    Word rank r (0-based) is drawn with probability proportional to 1 / (r + 1) (Zipf, s = 1);
    lengths are geometric with mean ``mean_length`` tokens (about a 20 Newsgroups sentence),
    so the longest are truncated to the model's seq-len like real ones, or drawn (with
    replacement) from ``lengths`` when given: (n,) token counts of real sentences.
    """
    rng = np.random.default_rng(seed)
    words = np.array(synthetic_words(vocab_size - 2))
    weights = 1.0 / np.arange(1, len(words) + 1)
    lengths = (rng.geometric(1.0 / mean_length, size=sentences) if lengths is None
               else rng.choice(lengths, size=sentences))
    tokens = rng.choice(len(words), size=int(lengths.sum()), p=weights / weights.sum())
    path = Path(path)
    with open(path, "w", encoding="utf-8") as handle:
        for line in np.split(words[tokens], np.cumsum(lengths)[:-1]):
            handle.write(" ".join(line) + "\n")
    return path


class TrainingWorker:
    """A spawned process that builds ``spec``'s model, traces its train step, then trains one
    epoch of ``train_path`` per :meth:`epoch` call.

    Construction returns at once (the child builds in the background); :meth:`wait` or the
    first :meth:`epoch` waits for it. Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, spec: TrainSpec, train_path: Path):
        self.spec = spec
        context = multiprocessing.get_context("spawn")
        self._conn, child_conn = context.Pipe()
        self._process = context.Process(target=_serve, args=(child_conn, spec, str(train_path)),
                                        name=f"bench-{spec.kind}-{spec.vocab_size}", daemon=True)
        self._process.start()
        child_conn.close()
        self._ready: dict | None = None

    def wait(self) -> dict:
        """Block until the child has built the model and traced the step; its start-up figures:
        ``build_s`` (model build), ``warmup_s`` (step tracing), ``peak_rss_mb`` after both."""
        if self._ready is None:
            self._ready = self._receive()
        return self._ready

    def epoch(self, source: str = "stream") -> dict:
        """Train one epoch and return ``seconds``, ``sentences``, ``sentences_per_s`` and the
        process's ``peak_rss_mb`` so far.

        ``source="stream"``: the real input pipeline, read as ``Trainer.fit`` reads it (one
        iterator over every epoch's reshuffled batches; at most ``STREAM_EPOCHS`` per worker).
        ``"memory"``: an epoch's batches, pre-built in memory, so the time is the model's alone.
        ``"pipeline"``: an epoch's batches produced (planned, read from the encoded ids) and
        dropped, without training, so the time is the input's alone.

        Also ``padding_share``: the share of padded positions in the epoch's batches.
        """
        if source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
        self.wait()
        self._conn.send(("epoch", source))
        return self._receive()

    def close(self) -> None:
        if self._process.is_alive():
            try:
                self._conn.send(("close", None))
            except (BrokenPipeError, OSError):
                pass
            self._process.join(timeout=60)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join()
        self._conn.close()

    def __enter__(self) -> TrainingWorker:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _receive(self) -> dict:
        try:
            status, payload = self._conn.recv()
        except EOFError:
            self._process.join(timeout=10)
            raise RuntimeError(f"training worker {self.spec.label} died (exit code "
                               f"{self._process.exitcode}; killed for memory?)") from None
        if status == "error":
            raise RuntimeError(f"training worker {self.spec.label} failed:\n{payload}")
        return payload


def race(specs: Mapping[str, TrainSpec], train_path: Path, repeats: int,
         source: str = "stream") -> tuple[dict[str, dict], dict[str, list[dict]]]:
    """Start one worker a contender (they build and trace side by side), then time ``repeats``
    epochs of each, alternating (:func:`~benchmarks.timing.alternate`). Returns each
    contender's start-up figures (:meth:`TrainingWorker.wait`) and its epochs' samples."""
    from benchmarks.timing import alternate

    with contextlib.ExitStack() as stack:
        workers = {name: stack.enter_context(TrainingWorker(spec, train_path))
                   for name, spec in specs.items()}
        startup = {name: worker.wait() for name, worker in workers.items()}
        samples = alternate({name: functools.partial(worker.epoch, source)
                             for name, worker in workers.items()}, repeats)
    return startup, samples


def _serve(conn, spec: TrainSpec, train_path: str) -> None:
    """The child's loop: build, report ready, then answer ``epoch`` commands until ``close``."""
    try:
        session = _Session(spec, Path(train_path))
        conn.send(("ok", session.ready))
        while True:
            command, source = conn.recv()
            if command == "close":
                break
            conn.send(("ok", session.epoch(source)))
    except Exception:  # everything goes back to the parent, which raises it with the traceback
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


class _Session:
    """The model, optimizer, traced step and input of one worker (lives in the child)."""

    def __init__(self, spec: TrainSpec, train_path: Path):
        # Keras is imported here, in the child, on the spec's backend, after quieting
        # TensorFlow's C++ start-up logs.
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        os.environ["KERAS_BACKEND"] = spec.backend
        import keras

        from autoencoder import AutoencoderConfig, SentenceAutoencoder, TrainConfig, Trainer, Vocabulary
        from autoencoder.data.batches import Bucketing, batch_ids, padding_share

        self._batch_ids, self._padding_share = batch_ids, padding_share
        self.spec = spec
        started = time.perf_counter()
        onehot = {"softmax": spec.softmax, "negatives": spec.negatives} if spec.kind == "onehot" else {}
        config = AutoencoderConfig(kind=spec.kind, seq_len=spec.seq_len, latent=spec.latent,
                                   vocab_cap=spec.vocab_size, **onehot)
        if spec.kind == "embedding":
            vectors = np.random.default_rng(spec.seed).standard_normal(
                (spec.vocab_size - 2, spec.dim), dtype=np.float32)
        else:  # the one-hot kind reads only the width from its vectors
            vectors = np.zeros((0, spec.dim), dtype=np.float32)
        vocab = Vocabulary(synthetic_words(spec.vocab_size - 2))
        autoencoder = SentenceAutoencoder(config, vocab, vectors, seed=spec.seed)
        del vectors
        train_config = TrainConfig(batch_size=spec.batch_size, seed=spec.seed, epochs=STREAM_EPOCHS)
        autoencoder.model.compile(optimizer=train_config.make_optimizer())
        optimizer = autoencoder.model.optimizer
        optimizer.build(autoencoder.model.trainable_variables)
        # Trainer's own step and batches; model_dir is never written (only Trainer.fit writes there).
        self._trainer = trainer = Trainer(autoencoder, train_config, model_dir=train_path.parent / "unused",
                                          bucketing=Bucketing() if spec.bucket else None)
        self._step = trainer._make_train_step(optimizer, jit_compile=spec.jit_compile or None)
        self._to_tensor = keras.ops.convert_to_tensor
        self._sentences = trainer._encode(train_path, None, spec.seed)
        # Streamed epochs come from Trainer.fit's own iterator over every epoch's batches.
        self._stream = trainer._batches(self._sentences, first_epoch=1, skip=0)
        self._steps, self._streamed = math.ceil(spec.sentences / spec.batch_size), 0
        self._drawn = 0  # steps run: the key of each step's sampled negatives
        self._memory_batches: list | None = None
        self.epochs = 0
        build_s = time.perf_counter() - started

        started = time.perf_counter()
        self._train(self._warm_up_batches())
        self.ready = {"build_s": build_s, "warmup_s": time.perf_counter() - started,
                      "peak_rss_mb": own_peak_rss_mb()}

    def _warm_up_batches(self) -> list:
        """One full batch of every width of epoch 1, then its short batch if any: every graph
        the timed epochs need is traced now, not timed."""
        plan = self._trainer._plan(self._sentences, 1)
        full, short = {}, []
        for batch in plan:
            if len(batch.rows) == self.spec.batch_size:
                full.setdefault(batch.width, batch)
            else:
                short.append(batch)
        return list(self._batch_ids(self._sentences, [*full.values(), *short]))

    def _train(self, batches) -> int:
        """Run the step on every batch, reading each result back as ``Trainer.fit`` does."""
        sentences, ae = 0, self._trainer.autoencoder
        for ids in batches:
            self._drawn += 1
            extra = ae.step_inputs((self.spec.seed, self._drawn), self.spec.batch_size)  # as fit does
            loss, norm, _, _ = (float(t) for t in self._step(ids, 0.0, *extra))  # 0.0: no Ctrl-C
            if not (math.isfinite(loss) and math.isfinite(norm)):
                raise FloatingPointError(f"non-finite loss {loss} or gradient norm {norm}")
            sentences += int(ids.shape[0])
        return sentences

    def epoch(self, source: str) -> dict:
        plan = self._trainer._plan(self._sentences, 1)
        if source == "memory" and self._memory_batches is None:
            self._memory_batches = [self._to_tensor(ids)
                                    for ids in self._batch_ids(self._sentences, plan)]
        self.epochs += 1
        if source == "stream":
            self._streamed += 1
            if self._streamed > STREAM_EPOCHS:
                raise ValueError(f"a worker streams at most {STREAM_EPOCHS} epochs")
            plan = self._trainer._plan(self._sentences, self._streamed)
        started = time.perf_counter()
        if source == "memory":
            sentences = self._train(self._memory_batches)
        elif source == "stream":
            sentences = self._train(itertools.islice(self._stream, self._steps))
        else:  # "pipeline": an epoch's batches produced and dropped, no training
            plan = self._trainer._plan(self._sentences, self.epochs)
            sentences = sum(len(ids) for ids in self._batch_ids(self._sentences, plan))
        seconds = time.perf_counter() - started
        return {"seconds": seconds, "sentences": sentences, "sentences_per_s": sentences / seconds,
                "padding_share": self._padding_share(plan, self._sentences.lengths),
                "peak_rss_mb": own_peak_rss_mb()}
