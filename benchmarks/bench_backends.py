"""Benchmark 9: Keras backends. The Trainer's own step on TensorFlow and on JAX, on the CPU.

Each kind at V = 20,000 trains in two processes, one per backend, alternating epoch by epoch on
the same pre-built batches (the step alone is timed). A ratio above 1 means JAX is faster. The
TensorFlow step is seqae's default ``tf.function`` (no XLA; see the XLA benchmark); the JAX step
is always compiled whole by XLA (``jax.jit``). ``--quick`` times the embedding kind only.
Needs the ``jax`` extra (``REQUIRES``): without it the section is skipped.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from autoencoder.backends import BACKENDS
from benchmarks import bench_xla
from benchmarks.report import Section
from benchmarks.timing import median_of
from benchmarks.training_worker import race, write_zipf_sentences

# Optional packages, checked before this module is imported (a missing one skips the section).
REQUIRES = ("jax",)  # the jax extra

# The same train-step sizes as the XLA benchmark: both time one step against another.
FULL, QUICK = bench_xla.FULL, bench_xla.QUICK


def run(settings: bench_xla.Settings, workdir: Path) -> Section:
    """Sentences/s per kind on each backend, their ratio, and each backend's warm-up time."""
    path = write_zipf_sentences(Path(workdir) / "backends.txt", settings.vocab_size,
                                settings.sentences)
    section = Section(f"Keras backends on the train step (CPU), V = {settings.vocab_size:,}",
                      ["kind", "tensorflow sent/s", "jax sent/s", "jax/tensorflow",
                       "warm-up s (tensorflow / jax)"])
    ratios = []
    for kind in settings.kinds:
        base = settings.train_spec(kind, settings.vocab_size, settings.sentences)
        startup, samples = race({name: replace(base, backend=name) for name in BACKENDS}, path,
                                settings.repeats, "memory")
        speed = {name: median_of(samples[name], "sentences_per_s") for name in BACKENDS}
        ratios.append(speed["jax"] / speed["tensorflow"])
        section.rows.append([kind, f"{speed['tensorflow']:.1f}", f"{speed['jax']:.1f}",
                             f"{ratios[-1]:.2f}x",
                             f"{startup['tensorflow']['warmup_s']:.1f} / "
                             f"{startup['jax']['warmup_s']:.1f}"])
    section.notes += [
        f"{settings.sentences} synthetic sentences per epoch; {base.shape_note()}; "
        f"{settings.repeats} epochs per backend, alternating, median. Both run the same Keras "
        "layers, loss, clipping and Adam; JAX pads a short batch to the batch size (one "
        "compiled program per width).",
        f"jax/tensorflow: {bench_xla.ratio_range(ratios)} on this CPU; GPU figures come "
        "from benchmarks/gpu.sh.",
    ]
    return section
