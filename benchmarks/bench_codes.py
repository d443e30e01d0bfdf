"""Benchmark 9: ``pipe encode`` against ``reconstruct_sentence`` in a loop, and its memory.

A small run is made once (``pipe embed`` and ``pipe train-ae`` on synthetic Zipf sentences, in
child processes). Then (a) :func:`pipelines.codes.encode_file` (model loading, tokenizing,
bucketed batches, codes written to a ``.npy``) is timed per sentence against
:func:`pipelines.reconstruct.reconstruct_sentence` called once per sentence, as a script without
``encode`` would; and (b) ``pipe encode`` runs on N and on 4N sentences, each in a fresh
process that reports its own peak RSS.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from benchmarks.report import Section, Target
from benchmarks.timing import alternate, median, plural, seconds
from benchmarks.training_worker import own_peak_rss_mb, write_zipf_sentences

# Optional packages, checked before this module is imported (a missing one skips the section).
REQUIRES: tuple[str, ...] = ()

ROOT = Path(__file__).resolve().parents[1]
SPEED_TARGET = 5.0  # encode at least this many times faster per sentence than the loop
FLATNESS = 0.10  # peak RSS of 4N within 10% of N


@dataclass(frozen=True)
class Settings:
    """The run (``corpus_sentences`` synthetic sentences over ``vocab_size`` words, word2vec
    ``dim``, model ``seq_len`` and ``latent``, trained ``train_sentences`` for one epoch),
    ``sentences`` N encoded (and 4N for memory), ``loop_sentences`` through the per-sentence
    loop (its rate is per sentence), and ``repeats`` rounds."""

    corpus_sentences: int = 20_000
    vocab_size: int = 20_000
    dim: int = 300
    seq_len: int = 50
    latent: int = 256
    train_sentences: int = 2000
    sentences: int = 20_000
    loop_sentences: int = 20
    repeats: int = 3


FULL = Settings()
QUICK = Settings(corpus_sentences=1000, vocab_size=2000, dim=32, seq_len=20, latent=64,
                 train_sentences=250, sentences=1000, loop_sentences=10, repeats=1)


def pipe(*args: object) -> None:
    """Run ``pipe ARGS`` in a child process; raise with its last lines if it fails."""
    result = subprocess.run([sys.executable, "-m", "pipelines", *map(str, args)], cwd=ROOT,
                            capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"pipe {args[0]} failed: {result.stderr[-2000:]}")


def make_run(settings: Settings, workdir: Path) -> Path:
    """A run directory with an ``embedding-cosine`` model, on a corpus of 20 synthetic
    documents (one sentence a line, each line a unit)."""
    corpus = Path(workdir) / "codes-corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    per_doc = settings.corpus_sentences // 20
    for doc in range(20):
        write_zipf_sentences(corpus / f"doc{doc:02d}.txt", settings.vocab_size, per_doc, seed=doc)
    run_dir = Path(workdir) / "codes-run"
    pipe("embed", "--run", run_dir, "--corpus", corpus, "--unit", "paragraph",
         "--paragraph-lines", 1, "--vector-size", settings.dim, "--min-count", 1, "--epochs", 1,
         "--workers", 1, "-q")
    pipe("train-ae", "--run", run_dir, "--seq-len", settings.seq_len, "--latent", settings.latent,
         "--epochs", 1, "--max-sentences", settings.train_sentences, "--val-sentences", 100, "-q")
    return run_dir


def peak_rss_of_encodes(run_dir: Path, jobs: list[tuple[Path, Path]]) -> list[float]:
    """Peak RSS in MiB of one ``pipe encode`` per (source, output) of ``jobs``, each in a fresh
    process, all started together: each reports its own peak (VmHWM), which the others
    cannot inflate, and their start-ups overlap."""
    children = [subprocess.Popen([sys.executable, "-m", "benchmarks.bench_codes", str(run_dir),
                                  str(source), str(output)], cwd=ROOT, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
                for source, output in jobs]
    peaks = []
    for child in children:
        stdout, stderr = child.communicate()
        if child.returncode:
            raise RuntimeError(f"encode child failed: {stderr[-2000:]}")
        peaks.append(json.loads(stdout.splitlines()[-1])["peak_rss_mb"])
    return peaks


def run(settings: Settings, workdir: Path) -> Section:
    """Sentences/s of encode (N and 4N), of the reconstruct loop and of one-at-a-time codes;
    peak RSS for N and 4N; the two targets."""
    from pipelines.codes import encode_file, sentence_code
    from pipelines.models import load_run_model
    from pipelines.reconstruct import reconstruct_sentence

    workdir = Path(workdir)
    run_dir = make_run(settings, workdir)
    n = settings.sentences
    inputs = {size: write_zipf_sentences(workdir / f"codes-in-{size}.txt", settings.vocab_size,
                                         size, seed=99) for size in (n, 4 * n)}
    loop_lines = inputs[n].read_text(encoding="utf-8").splitlines()[: settings.loop_sentences]
    name, ae = load_run_model(run_dir)
    contenders = {
        "reconstruct_sentence loop": (settings.loop_sentences, lambda: [
            reconstruct_sentence(run_dir, line) for line in loop_lines]),
        "one sentence per call, model loaded once": (settings.loop_sentences, lambda: [
            sentence_code(ae, line, name) for line in loop_lines]),
        **{f"encode ({label})": (size, lambda size=size: encode_file(
            run_dir, workdir / "codes.npy", source=inputs[size]))
           for label, size in (("N", n), ("4N", 4 * n))},
    }
    samples = alternate({label: lambda fn=fn: seconds(fn)
                         for label, (_, fn) in contenders.items()}, settings.repeats)
    rates = {label: size / median(samples[label]) for label, (size, _) in contenders.items()}
    sizes = {"encode (N)": n, "encode (4N)": 4 * n}
    rounds = [peak_rss_of_encodes(run_dir, [(inputs[size], workdir / f"codes-{size}-{i}.npy")
                                            for size in sizes.values()])
              for i in range(settings.repeats)]  # N and 4N side by side, round by round
    peaks = {label: median([peak[j] for peak in rounds]) for j, label in enumerate(sizes)}
    loop_rate = rates["reconstruct_sentence loop"]
    section = Section(
        f"Codes: pipe encode vs reconstruct_sentence per sentence (seq-len {settings.seq_len}, "
        f"latent {settings.latent}, dim {settings.dim})",
        ["contender", "sentences", "sentences/s", "vs loop", "peak RSS MiB (fresh process)"])
    section.rows += [[label, f"{size:,}", f"{rates[label]:,.1f}",
                      f"{rates[label] / loop_rate:,.1f}x",
                      f"{peaks[label]:,.0f}" if label in peaks else "-"]
                     for label, (size, _) in contenders.items()]
    gain = rates["encode (N)"] / loop_rate
    growth = peaks["encode (4N)"] / peaks["encode (N)"] - 1
    section.targets += [
        Target(f"encode >= {SPEED_TARGET:.0f}x faster per sentence than reconstruct_sentence "
               "in a loop", gain >= SPEED_TARGET, f"{gain:,.0f}x"),
        Target(f"encode peak RSS flat in N (4N within {FLATNESS:.0%} of N)",
               abs(growth) <= FLATNESS, f"4N is {growth:+.1%} vs N"),
    ]
    section.notes += [
        f"{plural(settings.repeats, 'round')} alternating the contenders, median. encode is "
        "encode_file: "
        "model loading, tokenizing, tracing one predict step per batch shape and writing the "
        ".npy included, so its rate grows with N (compare N and 4N). The reconstruct loop loads "
        "the model for every sentence, as reconstruct_sentence does: that, not the forward "
        "pass, is most of its time; 'one sentence per call' is the batching gain alone.",
        f"Peak RSS: `pipe encode` in a fresh process per run ({settings.repeats} per size, "
        "median; N and 4N side by side), its VmHWM, TensorFlow's own footprint included.",
    ]
    return section


def _encode_child(run_dir: str, source: str, output: str) -> None:
    """``pipe encode --run RUN SOURCE OUTPUT`` in this process, then its peak RSS as JSON."""
    from pipelines.cli import main

    main(["encode", "--run", run_dir, "-q", source, output], standalone_mode=False)
    print(json.dumps({"peak_rss_mb": own_peak_rss_mb()}))


if __name__ == "__main__":
    _encode_child(*sys.argv[1:4])
