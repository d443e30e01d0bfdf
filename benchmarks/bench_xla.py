"""Benchmark 7: XLA. The Trainer's own step, as traced by TensorFlow and compiled whole by XLA.

Each kind at V = 20,000 trains in two processes, one per variant, alternating epoch by epoch on
the same pre-built batches (the step alone is timed). A ratio above 1 is XLA's speed-up.
``--quick`` times the embedding kind only.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from benchmarks.report import Section
from benchmarks.timing import median_of
from benchmarks.training_worker import ModelShape, race, write_zipf_sentences

# Optional packages, checked before this module is imported (a missing one skips the section).
REQUIRES: tuple[str, ...] = ()

VARIANTS = {"plain": False, "xla": True}


@dataclass(frozen=True)
class Settings(ModelShape):
    """``vocab_size`` V for every kind of ``kinds``, ``sentences`` per timed epoch, the model
    shape."""

    vocab_size: int = 20_000
    sentences: int = 512
    kinds: tuple[str, ...] = ("embedding", "onehot")


FULL = Settings()
# Quick times the embedding kind alone (two processes, not four): the plain/xla contrast stays.
QUICK = Settings(sentences=128, dim=512, seq_len=20, latent=128, batch_size=32, repeats=2,
                 kinds=("embedding",), bucket=False)


def ratio_range(ratios: list[float]) -> str:
    """``0.82x``, or ``0.82-0.87x`` for several kinds."""
    low, high = f"{min(ratios):.2f}", f"{max(ratios):.2f}"
    return f"{low}x" if low == high else f"{low}-{high}x"


def run(settings: Settings, workdir: Path) -> Section:
    """Sentences/s per kind without and with XLA, their ratio, and XLA's compile time."""
    path = write_zipf_sentences(Path(workdir) / "xla.txt", settings.vocab_size, settings.sentences)
    section = Section(f"XLA (jit_compile) on the train step, V = {settings.vocab_size:,}",
                      ["kind", "plain sent/s", "xla sent/s", "xla/plain", "trace s (plain / xla)"])
    ratios = []
    for kind in settings.kinds:
        base = settings.train_spec(kind, settings.vocab_size, settings.sentences)
        startup, samples = race({name: replace(base, jit_compile=jit) for name, jit in VARIANTS.items()},
                                path, settings.repeats, "memory")
        speed = {name: median_of(samples[name], "sentences_per_s") for name in VARIANTS}
        ratios.append(speed["xla"] / speed["plain"])
        section.rows.append([kind, f"{speed['plain']:.1f}", f"{speed['xla']:.1f}",
                             f"{ratios[-1]:.2f}x",
                             f"{startup['plain']['warmup_s']:.1f} / {startup['xla']['warmup_s']:.1f}"])
    section.notes += [
        f"{settings.sentences} synthetic sentences per epoch; {base.shape_note()}; "
        f"{settings.repeats} epochs per variant, alternating, median. XLA compiles the whole "
        "step (forward, loss, gradients, clipping, Adam) on one device.",
        f"seqae trains without XLA; here it gains {ratio_range(ratios)}, against "
        "the extra compile seconds for every new batch shape (an epoch's short last batch is "
        "one), and it was not measured on a GPU (none lent), where Keras already runs the LSTM "
        "as one fused cuDNN kernel.",
    ]
    return section
