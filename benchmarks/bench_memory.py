"""Benchmark 4: peak memory of training does not grow with the number of sentences.

The embedding kind trains one epoch on N and on 4N sentences, each in a fresh process; the
streaming input pipeline should keep the two peaks equal, while a materialised input tensor
(or a one-hot one) would grow fourfold.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from benchmarks.report import Section, Target
from benchmarks.timing import median_of
from benchmarks.training_worker import ModelShape, TrainSpec, TrainingWorker, write_zipf_sentences

# Optional packages, checked before this module is imported (a missing one skips the section).
REQUIRES: tuple[str, ...] = ()

FLATNESS = 0.10  # the claim: the 4N peak within 10% of the N peak


@dataclass(frozen=True)
class Settings(ModelShape):
    """``sentences`` N (the other run has 4N), the vocabulary size V, the model shape, and
    ``repeats`` fresh processes per size."""

    sentences: int = 1000
    vocab_size: int = 20_000

    def spec(self, sentences: int) -> TrainSpec:
        return self.train_spec("embedding", self.vocab_size, sentences)


FULL = Settings()
# The output-layer benchmark's quick model and batch ("same batch/model" as there).
# One process per size: the N / 4N contrast is in every single pair (peak RSS barely varies).
QUICK = Settings(sentences=128, seq_len=20, latent=128, batch_size=32, repeats=1, bucket=False)


def run(settings: Settings, workdir: Path) -> Section:
    """Peak RSS for N and 4N sentences, next to the bytes a materialised input would take."""
    sizes = {"N": settings.sentences, "4N": 4 * settings.sentences}
    paths = {name: write_zipf_sentences(Path(workdir) / f"memory-{n}.txt", settings.vocab_size, n)
             for name, n in sizes.items()}
    # Every process starts at once: only memory is measured, which another process cannot
    # inflate (VmHWM is per process), and the start-ups overlap.
    with contextlib.ExitStack() as stack:
        workers = [(name, stack.enter_context(TrainingWorker(settings.spec(n), paths[name])))
                   for _ in range(settings.repeats) for name, n in sizes.items()]
        results = [(name, worker.epoch()) for name, worker in workers]
    peak = {name: median_of([epoch for done, epoch in results if done == name], "peak_rss_mb")
            for name in sizes}
    section = Section(
        "Memory: training peak RSS vs number of sentences (embedding kind)",
        ["run", "sentences", "peak RSS MiB", "vs N", "dense float32 input MiB",
         f"one-hot float32 (V={settings.vocab_size:,}) MiB"],
    )
    for name, n in sizes.items():
        dense = n * settings.seq_len * settings.dim * 4 / 2**20
        onehot = n * settings.seq_len * settings.vocab_size * 4 / 2**20
        section.rows.append([name, f"{n:,}", f"{peak[name]:,.0f}", f"{peak[name] / peak['N']:.3f}x",
                             f"{dense:,.0f}", f"{onehot:,.0f}"])
    growth = peak["4N"] / peak["N"] - 1
    section.targets.append(Target(
        f"peak RSS flat in N (4N within {FLATNESS:.0%} of N)", abs(growth) <= FLATNESS,
        f"4N is {growth:+.1%} vs N"))
    section.notes += [
        f"Each run is a fresh process ({settings.repeats} per size, all started together, median) that "
        f"builds the model ({settings.spec(1).shape_note()}, V = {settings.vocab_size:,} synthetic "
        "words) and trains one epoch on the Trainer's batch stream (ids encoded once into a "
        "memory-mapped file, 12 bytes per sentence in RAM); peak RSS is its VmHWM, "
        "TensorFlow's own footprint, the vocabulary table and the mapped ids read so far "
        "included.",
        "The last two columns are what materialising the whole epoch's input would take "
        f"(N x {settings.seq_len} x {settings.dim} vectors, or N x {settings.seq_len} x V one-hot rows).",
    ]
    return section
