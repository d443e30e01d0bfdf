"""Benchmark 5: ``pipe run`` end to end on the default corpus, by stage.

Each run is a fresh ``python -m pipelines run`` process in an empty run directory. Stage
boundaries are the moments its "stage 1/3", "stage 2/3" and "stage 3/3" log lines reach us
(stderr is line-buffered, read as it comes), so no stage is timed to the log's 1 s resolution.
"""

from __future__ import annotations

import collections
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.report import Section
from benchmarks.timing import alternate, median, plural

# Optional packages, checked before this module is imported (a missing one skips the section).
REQUIRES: tuple[str, ...] = ()

ROOT = Path(__file__).resolve().parents[1]
STAGE_LINE = re.compile(r"stage ([123])/3")
PHASES = ("start-up", "1 embed", "2 train-ae (both models)", "3 compare")


@dataclass(frozen=True)
class Settings:
    """Extra ``pipe run`` options (none: its defaults) and ``repeats`` runs."""

    options: tuple[str, ...] = ()
    repeats: int = 3


FULL = Settings()
# Reading, tokenizing and word2vec's 20 default epochs over the whole Wikipedia excerpt were most
# of a quick run: quick embeds a seeded sample of its articles, 2 word2vec epochs, in one run.
QUICK = Settings(options=("--epochs", "1", "--max-sentences", "200", "--max-docs", "20",
                          "--w2v-epochs", "2"), repeats=1)


def command(settings: Settings, run_dir: Path) -> list[str]:
    return [sys.executable, "-m", "pipelines", "run", "--run", str(run_dir), *settings.options]


def timed_run(settings: Settings, workdir: Path) -> dict[str, float]:
    """Seconds per phase of one ``pipe run`` in a fresh run directory, and ``total``."""
    stamps: dict[str, float] = {}
    tail: collections.deque[str] = collections.deque(maxlen=40)
    with tempfile.TemporaryDirectory(dir=workdir) as run_dir:
        started = time.perf_counter()
        with subprocess.Popen(command(settings, Path(run_dir) / "run"), cwd=ROOT, text=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as process:
            for line in process.stderr:
                tail.append(line)
                match = STAGE_LINE.search(line)
                if match:
                    stamps.setdefault(match.group(1), time.perf_counter() - started)
        total = time.perf_counter() - started
    if process.returncode or len(stamps) != 3:
        raise RuntimeError(f"pipe run failed (exit {process.returncode}); last lines:\n"
                           + "".join(tail))
    bounds = [0.0, stamps["1"], stamps["2"], stamps["3"], total]
    phases = {phase: bounds[i + 1] - bounds[i] for i, phase in enumerate(PHASES)}
    return {**phases, "total": total}


def run(settings: Settings, workdir: Path) -> Section:
    """Median seconds per stage of ``pipe run`` and each stage's share of the total."""
    samples = alternate({"run": lambda: timed_run(settings, Path(workdir))}, settings.repeats)["run"]
    total = median([sample["total"] for sample in samples])
    section = Section("End to end: pipe run on the default corpus", ["stage", "seconds", "share"])
    for phase in (*PHASES, "total"):
        seconds = median([sample[phase] for sample in samples])
        section.rows.append([phase, f"{seconds:.1f}", f"{seconds / total:.0%}"])
    shown = " ".join(["pipe", "run", "--run", "RUN", *settings.options])
    section.notes.append(
        f"`{shown}` ({'defaults' if not settings.options else 'small options for --quick'}), "
        f"{plural(settings.repeats, 'run')} in fresh run directories, median per stage (stage medians need "
        "not sum to the median total). Start-up is interpreter and import time before stage 1.")
    return section
