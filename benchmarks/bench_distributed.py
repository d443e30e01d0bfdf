"""Benchmark 6: training throughput on one process against a local multi-worker cluster.

One embedded run on the default corpus, then the same ``pipe train-ae`` under the default
strategy, as a 1-worker ``--cluster-demo`` (``MultiWorkerMirroredStrategy``'s own overhead) and as
a 2-worker one (the cores shared out between the workers, every gradient all-reduced over
loopback gRPC). The figure is the sentences/s of the last epoch in the chief's ``history.csv``,
so TensorFlow's start-up and first-epoch tracing are left out.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from autoencoder.training.checkpoints import read_history
from benchmarks.report import Section
from benchmarks.timing import alternate, median, plural
from embeddings.store.rundir import RunDir

# Optional packages, checked before this module is imported (a missing one skips the section).
REQUIRES: tuple[str, ...] = ()

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Settings:
    """Model and data sizes of the training runs, and ``repeats`` rounds of contenders."""

    vector_size: int = 300
    seq_len: int = 50
    latent: int = 256
    batch_size: int = 64
    sentences: int = 2000
    epochs: int = 2
    repeats: int = 3
    workers: tuple[int, ...] = (0, 1, 2)  # 0: one process under the default strategy


FULL = Settings()
QUICK = Settings(vector_size=64, seq_len=20, latent=32, sentences=384, repeats=1, workers=(0, 2))


def label(workers: int) -> str:
    if workers == 0:
        return "1 process (default strategy)"
    return f"{workers} worker{'s' if workers > 1 else ''} (--cluster-demo {workers})"


def pipe(*args: str) -> None:
    result = subprocess.run([sys.executable, "-m", "pipelines", *args], cwd=ROOT, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if result.returncode:
        raise RuntimeError(f"pipe {args[0]} failed: {result.stderr.strip().splitlines()[-1:]}")


def train_options(settings: Settings) -> list[str]:
    return ["--seq-len", str(settings.seq_len), "--latent", str(settings.latent),
            "--batch-size", str(settings.batch_size), "--max-sentences", str(settings.sentences),
            "--epochs", str(settings.epochs), "--patience", "0", "--val-sentences", "100"]


def sentences_per_s(run_dir: Path, settings: Settings, workers: int) -> float:
    """Last-epoch sentences/s of one fresh training run of the model ``bench``."""
    demo = ["--cluster-demo", str(workers)] if workers else []
    pipe("train-ae", "--run", str(run_dir), "--name", "bench", "--force", *train_options(settings),
         *demo)
    return read_history(RunDir(run_dir).model("bench").history)[-1]["sentences_per_s"]


def run(settings: Settings, workdir: Path) -> Section:
    """Median last-epoch sentences/s per contender, and each one's ratio to one process."""
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        run_dir = Path(tmp) / "run"
        pipe("embed", "--run", str(run_dir), "--corpus", "default", "--vector-size",
             str(settings.vector_size), "--min-count", "2")
        samples = alternate({label(n): (lambda n=n: sentences_per_s(run_dir, settings, n))
                             for n in settings.workers}, settings.repeats)
    speeds = {name: median(values) for name, values in samples.items()}
    baseline = speeds[label(settings.workers[0])]
    section = Section("Distributed training: one process against local workers",
                      ["setup", "sentences/s", "vs 1 process"])
    for name, speed in speeds.items():
        section.rows.append([name, f"{speed:.0f}", f"{speed / baseline:.2f}x"])
    shown = " ".join(["pipe", "train-ae", *train_options(settings)])
    section.notes.append(
        f"`{shown}` on `pipe embed --corpus default --vector-size {settings.vector_size}`, "
        f"{plural(settings.repeats, 'round')}, median of the last epoch's sentences/s (chief's "
        "history). "
        "Local workers share this machine's cores (cores / N threads each): on one machine the "
        "cluster shows the all-reduce overhead, not a speed-up; that comes from more hosts or GPUs.")
    return section
