"""Fault injection: commands killed with SIGKILL at chosen points, then rerun.

Each case starts a real ``python -m pipelines`` process, polls the run directory for a marker of
the point it wants to hit (a folder or file appearing, a hidden temp file being written, a
checkpoint renamed ahead of its ``state.json``), sends SIGKILL there, and checks that

* no artifact under its final name is half-written (every one present equals the uninterrupted
  run's, or is a complete checkpoint);
* rerunning the same command (``--resume`` for training) succeeds;
* the artifacts then equal an uninterrupted run's: byte for byte for ``embed``, the same weights
  (1e-5) and one history row per epoch for ``train-ae``, the same ``report.json`` but for
  timings for ``compare``.

A case whose window closed before the kill landed (the process got past the point first) is
tried again, in a fresh folder, up to :data:`TRIES` times, and fails when every try missed: a
case that never lands its kill would test nothing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import embed_tiny_run, english_like_sentences

pytestmark = pytest.mark.slow  # about two dozen subprocesses, each importing gensim or TensorFlow

ROOT = Path(__file__).resolve().parents[1]
_ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",  # run this checkout, not another install
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def pipe(*args) -> list[str]:
    return [sys.executable, "-m", "pipelines", *(str(a) for a in args)]


def start(args: list[str], log: Path) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as handle:  # a file, not a pipe: a full pipe would stall the child
        return subprocess.Popen(args, cwd=ROOT, env=_ENV, stdout=handle, stderr=subprocess.STDOUT)


def run_ok(args: list[str]) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=ROOT, env=_ENV, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return result


TRIES = 3


class Missed(Exception):
    """The kill landed outside the window the case wants (the process got past it first)."""


def retried(case, tmp_path: Path) -> None:
    """Run ``case(folder)`` in a fresh folder until it lands its kill; fail after
    :data:`TRIES` misses."""
    misses = []
    for attempt in range(TRIES):
        try:
            return case(tmp_path / f"try{attempt}")
        except Missed as exc:
            misses.append(str(exc))
    pytest.fail(f"the kill missed its window {TRIES} times: {misses}")


def kill_when(proc: subprocess.Popen, ready, log: Path, timeout: float = 300) -> None:
    """SIGKILL ``proc`` as soon as ``ready()`` is true (polled every 2 ms). Raises
    :class:`Missed` when the process exits first, fails when it never gets there."""
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            if proc.poll() is not None:
                output = log.read_text() if log.exists() else ""
                if proc.returncode != 0:
                    pytest.fail(f"exited {proc.returncode} before the kill point:\n{output}")
                raise Missed("the process finished before the kill point was seen")
            if time.monotonic() > deadline:
                pytest.fail("the kill point was never reached")
            time.sleep(0.002)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    if proc.returncode != -signal.SIGKILL:  # it exited between the last poll and the kill
        raise Missed(f"the process exited ({proc.returncode}) before the kill landed")


def exists(path: Path):
    return lambda: path.exists()


def hidden_temp(folder: Path, name: str, min_size: int = 0):
    """True once a temp file ``.NAME.*`` (atomic write of ``NAME``) exists with > min_size bytes."""
    def ready():
        try:
            return any(p.stat().st_size > min_size for p in folder.glob(f".{name}.*"))
        except FileNotFoundError:  # renamed or removed between glob and stat
            return False
    return ready


def final_files(folder: Path) -> dict[str, Path]:
    """Artifacts under their final names (hidden temp files excluded)."""
    if not folder.is_dir():
        return {}
    return {p.name: p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")}


# -- pipe embed -----------------------------------------------------------------------------------

EMBED_DOCS = 500  # ~2 s of tokenizing on one worker: wide enough windows to land a kill in
EMBED_OPTIONS = ["--vector-size", 16, "--min-count", 1, "--epochs", 2, "--workers", 1]
# Deterministic artifacts (stats/meta/eval/manifest hold timings or the run path, or follow).
EMBED_IDENTICAL = ["corpus/train.txt", "corpus/val.txt", "corpus/test.txt", "corpus/vocab.tsv",
                   "embeddings/vectors.npy", "embeddings/vocab.tsv"]


@pytest.fixture(scope="module")
def embed_reference(tmp_path_factory):
    """A corpus of many documents built from the tiny fixture's sentences, and one
    uninterrupted ``pipe embed`` of it."""
    root = tmp_path_factory.mktemp("faults_embed")
    corpus = root / "corpus"
    corpus.mkdir()
    for doc in range(EMBED_DOCS):
        sentences = english_like_sentences(15, seed=doc % 40)
        paragraphs = [" ".join(sentences[i : i + 5]) for i in range(0, 15, 5)]
        (corpus / f"doc{doc:04d}.txt").write_text("\n\n".join(paragraphs) + "\n", encoding="utf-8")
    reference = root / "reference"
    run_ok(pipe("embed", "--run", reference, "--corpus", corpus, *EMBED_OPTIONS))
    return corpus, reference


def staged(run: Path, rel: str) -> Path | None:
    """``rel`` inside the run's hidden staging folder (where embed writes before it commits)."""
    return next(run.glob(f".staging-*/{rel}"), None)


def staged_exists(run: Path, rel: str):
    return lambda: staged(run, rel) is not None


def staged_temp(run: Path, rel: str, name: str, min_size: int = 0):
    def ready():
        folder = staged(run, rel)
        return folder is not None and hidden_temp(folder, name, min_size)()
    return ready


EMBED_POINTS = {
    # Punkt is trained and the staged split files are open: tokenizing has just begun.
    "tokenizing-start": lambda run: staged_exists(run, "corpus"),
    # train.txt's temp file has data: in the middle of tokenizing and writing.
    "tokenizing-mid": lambda run: staged_temp(run, "corpus", "train.txt", min_size=64 << 10),
    # The staged corpus is complete: word2vec is building its vocabulary or training.
    "word2vec": lambda run: staged_exists(run, "corpus/meta.json"),
    # vocab.tsv of the staged vectors is written: saving the vectors or evaluating them.
    "saving-vectors": lambda run: staged_exists(run, "embeddings/vocab.tsv"),
}
# The commit marker that must still be absent when the kill lands: the staged folders are
# swapped into the run only at the very end.
EMBED_NOT_YET = dict.fromkeys(EMBED_POINTS, "embeddings/meta.json")


@pytest.mark.parametrize("point", EMBED_POINTS)
def test_embed_killed_then_rerun_equals_an_uninterrupted_run(embed_reference, tmp_path, point):
    retried(lambda folder: _embed_killed_then_rerun(embed_reference, folder, point), tmp_path)


def _embed_killed_then_rerun(embed_reference, tmp_path: Path, point: str) -> None:
    from embeddings.store.manifests import verify_manifest

    corpus, reference = embed_reference
    run = tmp_path / "run"
    args = pipe("embed", "--run", run, "--corpus", corpus, *EMBED_OPTIONS)
    proc = start(args, tmp_path / "killed.log")
    kill_when(proc, EMBED_POINTS[point](run), tmp_path / "killed.log")
    if (run / EMBED_NOT_YET[point]).exists():
        raise Missed(f"the kill landed after {EMBED_NOT_YET[point]} was committed")

    # Whatever sits under a final name is complete: equal to the uninterrupted run's file.
    for name in EMBED_IDENTICAL:
        if (run / name).exists():
            assert (run / name).read_bytes() == (reference / name).read_bytes(), name
    for stage in ("corpus", "embeddings"):
        for name, path in final_files(run / stage).items():
            if name.endswith(".json"):
                json.loads(path.read_text())  # parses: not cut short

    run_ok(args)
    for name in EMBED_IDENTICAL:
        assert (run / name).read_bytes() == (reference / name).read_bytes(), name
    for stage in ("corpus", "embeddings"):
        verify_manifest(run / stage, ())
        assert set(final_files(run / stage)) == set(final_files(reference / stage))
    assert not list(run.glob(".staging-*"))  # what the kill left was cleared by the rerun


# -- pipe train-ae --------------------------------------------------------------------------------

TRAIN_EPOCHS = 4
TRAIN_OPTIONS = ["--seq-len", 8, "--latent", 8, "--batch-size", 4, "--val-sentences", 5,
                 "--patience", 0, "--epochs", TRAIN_EPOCHS]


@pytest.fixture(scope="module")
def train_run(tmp_path_factory):
    """A tiny embedded run with a ``reference`` model trained without interruption."""
    run = embed_tiny_run(tmp_path_factory.mktemp("faults_train"))
    run_ok(pipe("train-ae", "--run", run, "--name", "reference", *TRAIN_OPTIONS))
    return run


def _state_epoch(model: Path) -> int:
    try:
        return json.loads((model / "state.json").read_text())["epoch"]
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return 0


def _mid_epoch(model: Path):
    """Some 50 ms into the epoch after epoch 1 was committed."""
    seen = {}

    def ready():
        if "at" not in seen and _state_epoch(model) >= 1:
            seen["at"] = time.monotonic()
        return "at" in seen and time.monotonic() - seen["at"] > 0.05
    return ready


def _checkpoint_renamed(model: Path):
    """A new ``last.keras`` is in place but ``state.json`` (the commit point) is not yet
    rewritten: the window in which state.json's sha256 names the previous checkpoint."""
    def ready():
        try:
            return (_state_epoch(model) >= 1 and (model / "last.keras").stat().st_mtime_ns
                    > (model / "state.json").stat().st_mtime_ns)
        except FileNotFoundError:
            return False
    return ready


TRAIN_POINTS = {
    "mid-epoch": _mid_epoch,
    # A later epoch's checkpoint is being written to its hidden temp file.
    "checkpoint-temp": lambda model: lambda: (_state_epoch(model) >= 1
                                              and hidden_temp(model, "last.keras")()),
    "checkpoint-renamed": _checkpoint_renamed,
}


def _complete_checkpoint(path: Path) -> None:
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None, path
        assert "model.weights.h5" in archive.namelist()


@pytest.mark.parametrize("point", TRAIN_POINTS)
def test_train_killed_then_resume_equals_an_uninterrupted_run(train_run, tmp_path, point):
    retried(lambda folder: _train_killed_then_resume(train_run, folder, point), tmp_path)


def _train_killed_then_resume(train_run: Path, tmp_path: Path, point: str) -> None:
    import keras

    name = f"killed-{point}-{tmp_path.name}"  # a fresh model for every try
    model = train_run / "models" / name
    args = pipe("train-ae", "--run", train_run, "--name", name, *TRAIN_OPTIONS)
    proc = start(args, tmp_path / "killed.log")
    kill_when(proc, TRAIN_POINTS[point](model), tmp_path / "killed.log")
    state = json.loads((model / "state.json").read_text())
    if state["stopped"]:
        raise Missed("the kill landed after training finished")
    for checkpoint in ("last.keras", "best.keras"):
        _complete_checkpoint(model / checkpoint)
    leftovers = set(model.glob(".*"))  # hidden temp files of the killed write, if any
    from embeddings.store.files import sha256_file
    uncommitted = sha256_file(model / "last.keras") != state["last_sha256"]
    if point == "checkpoint-renamed" and not uncommitted:
        raise Missed("the kill landed after state.json committed the new checkpoint")

    resumed = run_ok(args + ["--resume"])
    if uncommitted:  # last.keras was ahead of state.json: resumed from the one kept aside
        assert "checkpoint write was interrupted" in resumed.stderr, resumed.stderr
    history = (model / "history.csv").read_text().splitlines()
    assert [int(row.split(",")[0]) for row in history[1:]] == list(range(1, TRAIN_EPOCHS + 1))
    assert json.loads((model / "state.json").read_text())["stopped"] == "epochs"
    final = keras.saving.load_model(model / "last.keras", compile=False)
    reference = keras.saving.load_model(train_run / "models" / "reference" / "last.keras",
                                        compile=False)
    for x, y in zip(final.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-5)
    assert set(model.glob(".*")) <= leftovers  # the rerun left no temp file of its own


# -- pipe compare ---------------------------------------------------------------------------------

COMPARE_FILES = {"report.md", "report.json", "loss.png", "accuracy_by_length.png", "manifest.json"}
TIMINGS = {"eval_tokens_per_s"}


def _without_timings(report: dict) -> dict:
    for figures in report["models"].values():
        for key in TIMINGS:
            figures.pop(key)
    return report


@pytest.fixture(scope="module")
def compare_reference(train_run):
    run_ok(pipe("compare", "--run", train_run, "--models", "reference"))
    report = json.loads((train_run / "compare" / "report.json").read_text())
    return train_run, _without_timings(report)


COMPARE_POINTS = {
    "after-report-json": "report.json",  # drawing loss.png
    "after-loss-png": "loss.png",  # drawing accuracy_by_length.png or writing report.md
}


@pytest.mark.parametrize("point", COMPARE_POINTS)
def test_compare_killed_then_rerun_equals_an_uninterrupted_run(compare_reference, tmp_path, point):
    retried(lambda folder: _compare_killed_then_rerun(compare_reference, folder, point), tmp_path)


def _compare_killed_then_rerun(compare_reference, tmp_path: Path, point: str) -> None:
    import shutil

    run, expected = compare_reference
    shutil.rmtree(run / "compare")
    args = pipe("compare", "--run", run, "--models", "reference")
    proc = start(args, tmp_path / "killed.log")
    kill_when(proc, exists(run / "compare" / COMPARE_POINTS[point]), tmp_path / "killed.log")
    present = set(final_files(run / "compare"))
    if present == COMPARE_FILES:
        raise Missed("the kill landed after the report was complete")
    if "report.json" in present:  # written atomically, so complete
        assert _without_timings(json.loads((run / "compare" / "report.json").read_text())) \
            == expected

    run_ok(args)
    assert set(final_files(run / "compare")) == COMPARE_FILES
    assert _without_timings(json.loads((run / "compare" / "report.json").read_text())) == expected
    assert "reference" in (run / "compare" / "report.md").read_text()


# -- the same window, deterministically (in process) ----------------------------------------------

class _Crash(BaseException):
    """Stands in for SIGKILL: nothing after the raise point runs (not even ``except Exception``)."""


def test_resume_after_a_crash_between_checkpoint_and_state(monkeypatch, tmp_path):
    """Crash after epoch 2's last.keras is renamed into place but before state.json commits it:
    resume falls back to the committed epoch-1 checkpoint and replays epoch 2 exactly."""
    from autoencoder.training.trace import read_steps
    from autoencoder.training.trainer import Trainer
    from embeddings.store.files import sha256_file
    from embeddings.store.locks import UPDATE_LOCK
    from tests.conftest import fit, make_ae, read_json

    splits = tmp_path / "splits"
    splits.mkdir()
    rng = np.random.default_rng(1)
    words = [f"w{i}" for i in range(40)]
    for split, n in (("train", 200), ("val", 30)):
        (splits / f"{split}.txt").write_text("".join(
            " ".join(rng.choice(words, size=rng.integers(1, 12))) + "\n" for _ in range(n)))
    vectors = np.random.default_rng(0).standard_normal((40, 16)).astype(np.float32)

    whole = fit(make_ae(vectors), splits, tmp_path / "whole", epochs=3)
    calls = []
    real = Trainer.write_manifest

    def crash_on_second_epoch(self):
        calls.append(1)
        if len(calls) == 2:
            raise _Crash
        real(self)

    monkeypatch.setattr(Trainer, "write_manifest", crash_on_second_epoch)
    with pytest.raises(_Crash):
        fit(make_ae(vectors), splits, tmp_path / "m", epochs=3)
    monkeypatch.undo()
    state = read_json(tmp_path / "m" / "state.json")
    assert state["epoch"] == 1
    assert sha256_file(tmp_path / "m" / "last.keras") != state["last_sha256"]  # the window

    resumed = fit(make_ae(vectors, seed=99), splits, tmp_path / "m", epochs=3, resume=True)
    assert [r["epoch"] for r in resumed.history_] == [1, 2, 3]
    # The trace rows epoch 2 appended before the crash were cut back, then written again once.
    steps = [[(r["epoch"], r["step"], r["sentences"]) for r in read_steps(folder / "steps.csv")]
             for folder in (tmp_path / "whole", tmp_path / "m")]
    assert steps[0] == steps[1]
    for x, y in zip(whole.autoencoder.model.get_weights(),
                    resumed.autoencoder.model.get_weights(), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)
    hidden = {p.name for p in (tmp_path / "m").glob(".*")}
    assert hidden == {UPDATE_LOCK}  # the checkpoint kept aside is gone again


def test_reading_a_model_while_it_trains_never_fails(tmp_path):
    """A reader loading the model in a loop while it trains sees one checkpoint or the next,
    never a half-written set reported as tampering (the writer and readers share a lock)."""
    from embeddings.store.errors import SeqaeError
    from pipelines.reconstruct import reconstruct_sentence

    run = embed_tiny_run(tmp_path)
    first = run_ok(pipe("train-ae", "--run", run, "--seq-len", "8", "--latent", "8",
                        "--epochs", "1", "--batch-size", "8", "--val-sentences", "20"))
    assert "Traceback" not in first.stderr
    proc = start(pipe("train-ae", "--run", run, "--seq-len", "8", "--latent", "8", "--epochs", "40",
                      "--batch-size", "8", "--val-sentences", "20", "--patience", "0", "--resume"),
                 tmp_path / "train.log")
    reads, failures = 0, []
    try:
        while proc.poll() is None:
            try:
                reconstruct_sentence(run, "the cat sat")
                reads += 1
            except SeqaeError as exc:
                failures.append(str(exc))
    finally:
        proc.wait()
    assert proc.returncode == 0, (tmp_path / "train.log").read_text()
    assert not failures, failures[:3]
    assert reads >= 5  # the reads overlapped the training, epoch after epoch
