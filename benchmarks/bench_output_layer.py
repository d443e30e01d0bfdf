"""Benchmark 2: the output layer against the vocabulary size.

One training epoch of the one-hot baseline (softmax over V, trainable V x dim input projection)
against the embedding kind (dim-wide linear output, frozen V x dim input table), at the same V.
Synthetic vocabularies and Zipf-distributed sentences; each contender trains in its own process
(:class:`~benchmarks.training_worker.TrainingWorker`), the two alternating epoch by epoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from benchmarks.report import Section
from benchmarks.timing import median_of
from benchmarks.training_worker import ModelShape, TrainSpec, race, write_zipf_sentences

# Optional packages, checked before this module is imported (a missing one skips the section).
REQUIRES: tuple[str, ...] = ()

KINDS = ("onehot", "embedding")


@dataclass(frozen=True)
class Settings(ModelShape):
    """Sizes: ``vocab_sizes`` V (PAD and UNK included), ``sentences`` per timed epoch, the model
    shape, and ``repeats`` timed epochs per contender."""

    vocab_sizes: tuple[int, ...] = (2_000, 20_000, 100_000)
    sentences: int = 512

    def spec(self, kind: str, vocab_size: int) -> TrainSpec:
        return self.train_spec(kind, vocab_size, self.sentences)


FULL = Settings()
# The 100k-word one-hot model takes ~11 s per step and ~13 GB at full size: quick shrinks the
# width, model and batch (the same for every V and both kinds, so the ratios stay comparable).
# Two vocabularies, the smallest and the reference V of the other benchmarks (about 20
# Newsgroups'), show the trend with a third fewer processes.
QUICK = Settings(vocab_sizes=(2_000, 20_000), sentences=128, dim=512, seq_len=20, latent=128,
                 batch_size=32, repeats=2, bucket=False)


def run(settings: Settings, workdir: Path) -> Section:
    """Sentences/s and peak RSS per kind and V, with the embedding/onehot ratios."""
    section = Section(
        "Output layer vs vocabulary size (one training epoch)",
        ["V", "onehot sent/s", "embedding sent/s", "speed emb/onehot",
         "onehot peak RSS MiB", "embedding peak RSS MiB", "RSS emb/onehot"],
    )
    startups = []
    for vocab_size in settings.vocab_sizes:
        path = write_zipf_sentences(Path(workdir) / f"zipf-{vocab_size}.txt", vocab_size,
                                    settings.sentences)
        startup, samples = race({kind: settings.spec(kind, vocab_size) for kind in KINDS}, path,
                                settings.repeats)
        speed = {kind: median_of(samples[kind], "sentences_per_s") for kind in KINDS}
        rss = {kind: max(sample["peak_rss_mb"] for sample in samples[kind]) for kind in KINDS}
        section.rows.append([
            f"{vocab_size:,}", f"{speed['onehot']:.1f}", f"{speed['embedding']:.1f}",
            f"{speed['embedding'] / speed['onehot']:.2f}x", f"{rss['onehot']:,.0f}",
            f"{rss['embedding']:,.0f}", f"{rss['embedding'] / rss['onehot']:.2f}x",
        ])
        startups.append(f"V = {vocab_size:,}: " + ", ".join(
            f"{kind} {startup[kind]['build_s']:.1f} + {startup[kind]['warmup_s']:.1f}" for kind in KINDS))
    spec = settings.spec("embedding", settings.vocab_sizes[0])
    section.notes += [
        f"{settings.sentences} synthetic sentences (Zipf word ranks, mean length 20) per epoch; "
        f"{spec.shape_note()}; Adam; {settings.repeats} epochs per contender, alternating, "
        "median sentences/s. Only the training steps are timed (tracing happens before, "
        "validation and checkpoints are not run).",
        "Peak RSS: VmHWM of each contender's own process (build and training included). "
        "The embedding kind's includes its V x dim table three times over (input vectors, "
        "unit table, TF variable; the decoder reads the unit table in place).",
        "Untimed start-up, seconds of model build + step tracing: " + "; ".join(startups) + ".",
        "One-hot cost at large V is the softmax and the dense Adam update of its V x dim input "
        "projection (Keras densifies that gradient: a V x dim tensor per step).",
    ]
    return section
