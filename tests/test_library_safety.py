"""The library is as safe as the command line: one lock taken where the write happens, nothing
approved that seqae did not write, no unverified or unbounded read, arguments checked once."""

from __future__ import annotations

import errno
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from autoencoder.config import AutoencoderConfig, TrainConfig
from autoencoder.training.checkpoints import read_history
from autoencoder.training.trace import read_steps
from embeddings import CorpusConfig, Word2VecConfig
from embeddings.store import locks
from embeddings.store.errors import SeqaeError
from embeddings.store.files import atomic_path
from pipelines.study_config import StudyConfig
from tests.conftest import (
    TINY_AE,
    assert_clean_error,
    invoke,
    read_json,
    snapshot,
    tiny_ae,
    unchanged_but_lock,
)
from tests.test_reliability import reseal

REPO = Path(__file__).resolve().parents[1]


# -- one lock, taken where the write happens ---------------------------------------------------

def _hold_in_another_process(run_dir: Path, holder: str) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from embeddings.store.locks import run_lock
        with run_lock({str(run_dir)!r}, {holder!r}):
            print("locked", flush=True)
            time.sleep(120)
    """)], stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert process.stdout.readline().strip() == "locked"
    return process


def test_every_library_writer_is_refused_while_another_process_writes_the_run(trained):
    from pipelines import compare_models, run_embed, run_pipeline, run_study, train_autoencoder
    from pipelines.compare import run_compare, write_report

    corpus = CorpusConfig(source=str(trained.parent / "tiny_corpus"))
    w2v = Word2VecConfig(vector_size=16, min_count=1, epochs=1, workers=1)
    ae, train = AutoencoderConfig(seq_len=8, latent=8), TrainConfig(epochs=1, batch_size=32)
    report = compare_models(trained)  # a reader: allowed beside a writer
    writers = {
        "train_autoencoder": lambda: train_autoencoder(trained, ae, train, force=True),
        "run_embed": lambda: run_embed(trained, corpus, w2v, force=True),
        "run_compare": lambda: run_compare(trained),
        "write_report": lambda: write_report(report, trained),
        "run_pipeline": lambda: run_pipeline(trained, corpus, w2v, [(ae, train)], force=True),
        "run_study": lambda: run_study(trained, StudyConfig(models=("embedding-cosine",),
                                                            seq_len=8, latent=8, budget=64,
                                                            sweep=32)),
    }
    before = snapshot(trained)
    holder = _hold_in_another_process(trained, "pipe train-ae")
    try:
        for write in writers.values():
            with pytest.raises(SeqaeError, match=rf"in use by pid {holder.pid} \(pipe train-ae\)"):
                write()
    finally:
        holder.kill()
        holder.wait()
    assert unchanged_but_lock(before, snapshot(trained))
    write_report(report, trained)  # the lock names the call a user made, for the next writer
    assert (trained / ".lock").read_text().split(" ", 1)[1].strip() == "write_report()"


def test_the_lock_is_reentrant_in_its_thread_only(tmp_path):
    from tests.conftest import held_elsewhere

    with locks.run_lock(tmp_path, "outer"), locks.run_lock(tmp_path, "inner"):
        assert (tmp_path / ".lock").read_text().split(" ", 1)[1].strip() == "outer"
    with held_elsewhere(tmp_path, "a thread"), pytest.raises(SeqaeError, match="a thread"):
        with locks.run_lock(tmp_path, "this thread"):
            pass


@pytest.mark.slow
def test_pipe_is_refused_while_a_library_call_trains_the_model(trained):
    """Two real processes: ``train_autoencoder`` from Python, then ``pipe train-ae --force``."""
    trainer = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        from autoencoder.config import AutoencoderConfig, TrainConfig
        from pipelines import train_autoencoder
        train_autoencoder({str(trained)!r}, AutoencoderConfig(seq_len=8, latent=8),
                          TrainConfig(epochs=100000, batch_size=32, max_time=60, patience=0),
                          name="other")
    """)], cwd=REPO, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while "train_autoencoder()" not in (trained / ".lock").read_text():
            assert trainer.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
        before = snapshot(trained / "models" / "embedding-cosine")
        result = invoke("train-ae", "--run", trained, *TINY_AE, "--force")
        assert_clean_error(result, f"in use by pid {trainer.pid} (train_autoencoder())")
        assert snapshot(trained / "models" / "embedding-cosine") == before
    finally:
        trainer.kill()
        trainer.wait()


# -- verify, then change: --resume approves only what seqae wrote ------------------------------

def _resume(run_dir, *options):
    return invoke("train-ae", "--run", run_dir, *TINY_AE, *options, "--resume")


def test_resume_refuses_a_checkpoint_copied_in_from_another_model(trained_run):
    models = trained_run / "models"
    shutil.copyfile(models / "onehot-ce" / "best.keras", models / "embedding-cosine" / "best.keras")
    before = snapshot(trained_run)
    assert_clean_error(_resume(trained_run), "best.keras", "altered", "--force")
    assert unchanged_but_lock(before, snapshot(trained_run))
    # and the loaders refuse it as before: the resume approved nothing
    assert_clean_error(invoke("reconstruct", "--run", trained_run, "--model", "embedding-cosine",
                              "the cat"), "best.keras")


def test_resume_refuses_a_config_edited_even_under_a_rewritten_manifest(trained):
    folder = trained / "models" / "embedding-cosine"
    config = read_json(folder / "config.json")
    config["autoencoder"]["latent"] = 16
    (folder / "config.json").write_text(__import__("json").dumps(config), encoding="utf-8")
    assert_clean_error(_resume(trained, "--latent", "16"), "config.json", "--force")
    reseal(folder)  # the manifest no longer tells: the checkpoint's own shape does
    before = snapshot(trained)
    assert_clean_error(_resume(trained, "--latent", "16"), "does not hold the model",
                       "encoder units 8 (expected 16)")
    assert unchanged_but_lock(before, snapshot(trained))


def test_a_kill_inside_a_checkpoint_write_resumes_and_resumes_again(trained):
    """SIGKILL after the new ``last.keras`` was renamed into place, before the manifest and
    ``state.json`` named it: the committed checkpoint is the one kept aside. The resume puts it
    back and the manifest follows, so the next resume and the readers accept the folder."""
    folder = trained / "models" / "embedding-cosine"
    os.link(folder / "last.keras", folder / ".last.keras.previous")
    (folder / "last.keras").unlink()
    (folder / "last.keras").write_bytes(b"a checkpoint the kill never committed")
    for epochs in ("2", "3"):
        result = invoke("train-ae", "--run", trained, *tiny_ae(epochs), "--resume")
        assert result.exit_code == 0, result.output
    assert not (folder / ".last.keras.previous").exists()
    assert invoke("reconstruct", "--run", trained, "the cat").exit_code == 0


@pytest.mark.parametrize("plant", ["steps-link-to-dev-zero", "history-fifo", "steps-folder"])
def test_resume_never_follows_a_link_or_opens_a_fifo(trained, plant):
    folder = trained / "models" / "embedding-cosine"
    name = "steps.csv" if plant.startswith("steps") else "history.csv"
    (folder / name).unlink()
    if plant == "steps-link-to-dev-zero":
        (folder / name).symlink_to("/dev/zero")
    elif plant == "history-fifo":
        os.mkfifo(folder / name)
    else:
        (folder / name).mkdir()
    before = snapshot(trained)
    started = time.monotonic()
    assert_clean_error(_resume(trained), name, "symbolic link" if "link" in plant
                       else "not a regular file")
    assert time.monotonic() - started < 30
    assert unchanged_but_lock(before, snapshot(trained))  # RUN/config.json included


# -- no unverified read, no unbounded read -----------------------------------------------------

@pytest.mark.parametrize("content, problem", [
    (b"epoch,train_loss,status\n1,\xff,ok\n", "not UTF-8"),
    (b"epoch,train_loss,status\n1,lots,ok\n", "could not convert"),
    (b"epoch,train_loss,status\n1,0.5\n", "another length"),
])
def test_a_history_seqae_did_not_write_is_one_line(tmp_path, content, problem):
    path = tmp_path / "history.csv"
    path.write_bytes(content)
    with pytest.raises(SeqaeError, match=problem) as caught:
        read_history(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("reader", [read_history, read_steps])
def test_trace_readers_refuse_links_special_and_oversized_files(tmp_path, reader, monkeypatch):
    link = tmp_path / "link.csv"
    link.symlink_to("/dev/zero")
    with pytest.raises(SeqaeError, match="symbolic link"):
        reader(link)
    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)
    with pytest.raises(SeqaeError, match="not a regular file"):
        reader(fifo)
    big = tmp_path / "big.csv"
    big.write_bytes(b"epoch\n" + b"1\n" * 600_000)
    monkeypatch.setattr("autoencoder.training.checkpoints.MAX_HISTORY_BYTES", 1 << 20)
    monkeypatch.setattr("autoencoder.training.trace.MAX_STEPS_BYTES", 1 << 20)
    with pytest.raises(SeqaeError, match="more than the"):
        reader(big)
    assert reader(tmp_path / "missing.csv") == []


def test_a_huge_field_in_steps_csv_costs_its_row_only(trained):
    path = trained / "models" / "embedding-cosine" / "steps.csv"
    rows = read_steps(path)
    lines = path.read_text().splitlines()
    lines.insert(2, "1," + "9" * 300_000 + ",3,4,5,6,7" + "," * 3)
    lines.insert(3, '1,"2,3')  # a stray quote swallows no line after it
    path.write_text("\n".join(lines) + "\n")
    assert read_steps(path) == rows


def test_readers_work_on_a_read_only_file_system(trained, monkeypatch):
    from pipelines import reconstruct_sentence

    real_open = os.open

    def read_only(path, flags, *args):
        if flags & (os.O_CREAT | os.O_WRONLY | os.O_RDWR):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(locks.os, "open", read_only)
    (trained / "models" / "embedding-cosine" / ".update.lock").unlink(missing_ok=True)
    assert reconstruct_sentence(trained, "the cat sees the dog")["reconstruction"]


# -- arguments checked once, at construction ---------------------------------------------------

@pytest.mark.parametrize("make, keyword", [
    (lambda: TrainConfig(max_sentences=-5), "max_sentences (--max-sentences)"),
    (lambda: TrainConfig(momentum=1.5), "momentum (--momentum)"),
    (lambda: AutoencoderConfig(seq_len=2.5), "seq_len (--seq-len)"),
    (lambda: TrainConfig(epochs="5"), "epochs (--epochs)"),
    (lambda: TrainConfig(lr=float("nan")), "lr (--lr)"),
    (lambda: AutoencoderConfig(center="yes"), "center (--center)"),
    (lambda: Word2VecConfig(workers=0), "workers (--workers)"),
    (lambda: CorpusConfig(val_fraction=1.5), "val_fraction (--val-fraction)"),
    (lambda: StudyConfig(models="embedding-cosine"), "models (--models)"),
    (lambda: StudyConfig(budget=0), "budget (--budget)"),
    (lambda: StudyConfig(lrs=(None,)), "lrs (--lrs)"),
])
def test_bad_arguments_are_one_line_at_construction(make, keyword):
    with pytest.raises(SeqaeError, match=keyword.replace("(", r"\(").replace(")", r"\)")):
        make()


@pytest.mark.parametrize("call, args, kwargs, keyword", [
    ("reconstruct_sentence", ("a man",), {"top_k": 0}, "top_k (--top-k)"),
    ("reconstruct_sentence", ("a man",), {"top_k": 101}, "top_k (--top-k)"),
    ("nearest_sentences", ("a man",), {"top_k": 10_001}, "top_k (--top-k)"),
    ("interpolate", ("a man", "a cat"), {"steps": 1001}, "steps (--steps)"),
    ("encode_file", ("out.npy",), {"split": "dev"}, "split (--split)"),
    ("compare_models", (), {"eval_sentences": 0}, "eval_sentences (--eval-sentences)"),
    ("compare_models", (), {"seed": -1}, "seed (--seed)"),
    ("compare_models", (), {"split": "all"}, "split (--split)"),
    ("run_pipeline", (CorpusConfig(), Word2VecConfig(), []), {"eval_sentences": 2.5},
     "eval_sentences (--eval-sentences)"),
    ("run_embed", (CorpusConfig(), Word2VecConfig()), {"workers": 0}, "workers (--workers)"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_library_calls_check_their_arguments_as_pipe_does(tmp_path, call, args, kwargs, keyword):
    """Each keyword is refused by the declaration that its option reads, before the run is
    read (here a missing one)."""
    import pipelines

    with pytest.raises(SeqaeError, match=re.escape(keyword)):
        getattr(pipelines, call)(tmp_path / "run", *args, **kwargs)


def test_library_readers_refuse_an_empty_run_path_as_pipe_does():
    from pipelines import reconstruct_sentence

    with pytest.raises(SeqaeError, match="--run must name a folder"):
        reconstruct_sentence("", "a man")


# Every exported call that takes a run directory first, with the rest of its arguments.
RUN_CALLS = [
    ("embeddings", "load_corpus", ()), ("embeddings", "prepare_corpus", None),
    ("pipelines", "run_embed", (CorpusConfig(), Word2VecConfig())),
    ("pipelines", "load_embeddings", ()), ("pipelines", "list_models", ()),
    ("pipelines", "train_autoencoder", (AutoencoderConfig(), TrainConfig())),
    ("pipelines", "load_autoencoder", ("embedding-cosine", None)),
    ("pipelines", "load_run_model", ()),
    ("pipelines", "model_status", ("embedding-cosine", AutoencoderConfig(), TrainConfig())),
    ("pipelines", "reconstruct_sentence", ("a man",)),
    ("pipelines", "compare_models", ()), ("pipelines", "run_study", (StudyConfig(),)),
    ("pipelines", "run_pipeline", (CorpusConfig(), Word2VecConfig(), [])),
    ("pipelines", "encode_file", ("codes.npy",)), ("pipelines", "interpolate", ("a", "b")),
    ("pipelines", "nearest_sentences", ("a man",)),
]


@pytest.mark.parametrize("package, call, args", RUN_CALLS, ids=[c for _, c, _ in RUN_CALLS])
def test_library_calls_refuse_a_run_directory_that_is_not_a_path(package, call, args):
    import importlib

    func = getattr(importlib.import_module(package), call)
    for bad in (3, None):
        with pytest.raises(SeqaeError, match=f"a run directory is a path, got {type(bad).__name__}"):
            if args is None:  # prepare_corpus takes the run second
                func(CorpusConfig(), bad)
            else:
                func(bad, *args)


def test_every_call_names_its_run_directory_run_dir(tmp_path):
    import importlib
    import inspect

    for package, call, args in RUN_CALLS:
        func = getattr(importlib.import_module(package), call)
        assert list(inspect.signature(func).parameters)[args is None] == "run_dir", call
    from pipelines import run_study

    with pytest.raises(SeqaeError, match="no run directory"):  # the name it shows is the one it takes
        run_study(run_dir=tmp_path / "missing", config=StudyConfig())


def test_load_autoencoder_takes_a_path_as_the_other_calls_do(trained):
    from pipelines import RunDir, load_autoencoder, load_embeddings

    vectors = load_embeddings(trained).vectors
    for run_dir in (str(trained), trained, RunDir(trained)):
        ae, config = load_autoencoder(run_dir, "embedding-cosine", vectors)
        assert ae.config.kind == "embedding" and config["vocab_size"] == len(ae.vocab)


def test_numpy_numbers_are_taken_as_python_numbers():
    config = TrainConfig(epochs=np.int64(3), lr=np.float32(0.5))
    assert type(config.epochs) is int and type(config.lr) is float


def test_library_calls_refuse_before_writing(tmp_path, trained):
    from pipelines import compare_models, run_study

    missing = tmp_path / "nowhere"
    with pytest.raises(SeqaeError, match="no run directory"):
        run_study(missing, StudyConfig(models=("embedding-cosine",)))
    assert not missing.exists()
    with pytest.raises(SeqaeError, match=r"write \['embedding-cosine'\]"):
        compare_models(trained, "embedding-cosine")
    from pipelines import train_autoencoder

    before = snapshot(trained)
    with pytest.raises(SeqaeError, match=r"config must be a AutoencoderConfig\(...\), got str"):
        train_autoencoder(trained, "embedding", TrainConfig())
    with pytest.raises(SeqaeError, match="a run directory is a path, got int"):
        run_study(3, StudyConfig())
    assert snapshot(trained) == before


# -- messages that name the path and give advice that works ------------------------------------

def test_a_short_write_names_the_file(tmp_path):
    target = tmp_path / "vectors.npy"
    with pytest.raises(SeqaeError, match=f"cannot write {target}: 60896 requested and 27616 "
                                         r"written \(is the disk full\?\)"):
        with atomic_path(target):
            raise OSError("60896 requested and 27616 written")
    assert list(tmp_path.iterdir()) == []


def test_interrupted_training_advises_what_each_command_does():
    from autoencoder.training.trainer import RESUME_ADVICE

    assert "pipe train-ae --resume" in RESUME_ADVICE and "resume=True" in RESUME_ADVICE
    assert "`pipe run` and `pipe study` continue it when rerun" in RESUME_ADVICE


def test_a_word_tokenizer_timeout_is_a_short_warning(monkeypatch, caplog):
    from embeddings.tokenize import TokenizeConfig, Tokenizer

    tokenizer = Tokenizer(TokenizeConfig(), None)

    def slow(text):
        raise TimeoutError("regular expression " + "(?:x)" * 120 + " ran past its time limit")

    monkeypatch.setattr(tokenizer.words, "tokenize", slow)
    assert tokenizer("Some words here.") == [["some", "words", "here."]]
    assert "timed out on a 16-character unit" in caplog.text and "(?:x)" not in caplog.text


def test_the_gpu_script_leaves_no_scratch_folder(tmp_path):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch), "PYTHON": "false",
           "SEQAE_WHEELS": str(tmp_path / "none")}
    env.pop("SEQAE_WORK", None)
    result = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu.sh"), str(tmp_path)],
                            env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert list(scratch.iterdir()) == []


def test_fetch_wheels_help_downloads_nothing(tmp_path):
    script = str(REPO / "benchmarks" / "fetch_wheels.sh")
    result = subprocess.run(["bash", script, "--help"], cwd=tmp_path, capture_output=True,
                            text=True)
    assert result.returncode == 0 and "fetch_wheels.sh [DEST]" in result.stdout
    bad = subprocess.run(["bash", script, "--dest"], cwd=tmp_path, capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown option --dest" in bad.stderr
    assert list(tmp_path.iterdir()) == []
