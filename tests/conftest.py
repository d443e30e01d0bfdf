"""Shared fixtures: tiny deterministic corpora and a finished tiny embedding run."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import random
import shutil
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # keep TensorFlow's C++ start-up chatter out

from embeddings import CorpusConfig, Word2VecConfig
from embeddings.store.locks import run_lock
from pipelines import run_embed
from pipelines.cli import main

SHARED_20NEWS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "20news-bydate.tar.gz"

_REAL_SENTENCES = [
    "Dr. Smith went home early because the weather was bad.",
    "The quick brown fox jumps over the lazy dog.",
    "Mr. Brown said the meeting would start at 9 a.m. on Monday.",
    "Paris is the capital of France, and Berlin is the capital of Germany.",
    "The king and the queen walked through the old city.",
    "A man and a woman sat in the park.",
]
_SUBJECTS = ["the cat", "the dog", "a man", "a woman", "the king", "the queen", "my friend", "the teacher"]
_VERBS = ["sees", "likes", "finds", "helps", "follows", "calls", "watches", "meets"]
_OBJECTS = ["the house", "a small bird", "the old city", "the river", "a red car", "the garden", "Paris"]
_ENDINGS = ["today", "every morning", "in the evening", "again", "near the school", "with care"]


def english_like_sentences(n: int, seed: int = 0) -> list[str]:
    """``n`` deterministic sentences from a small word list, with some real ones mixed in."""
    rng = random.Random(seed)
    sentences = []
    for i in range(n):
        if i % 5 == 0:
            sentences.append(_REAL_SENTENCES[(i // 5 + seed) % len(_REAL_SENTENCES)])
        else:
            words = [rng.choice(_SUBJECTS), rng.choice(_VERBS), rng.choice(_OBJECTS), rng.choice(_ENDINGS)]
            sentences.append(" ".join(words).capitalize() + ".")
    return sentences


def write_tiny_corpus(root: Path) -> Path:
    """Write 20 .txt documents (the last in a subfolder) into ``root``, 15 sentences each in
    paragraphs of 5: 300 sentences, enough for one validation and one test document."""
    for doc in range(20):
        sentences = english_like_sentences(15, seed=doc)
        paragraphs = [" ".join(sentences[i : i + 5]) for i in range(0, 15, 5)]
        path = root / ("more" if doc == 19 else "") / f"doc{doc:02d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n\n".join(paragraphs) + "\n", encoding="utf-8")
    return root


@pytest.fixture
def tiny_text_corpus(tmp_path: Path) -> Path:
    """The :func:`write_tiny_corpus` folder."""
    return write_tiny_corpus(tmp_path / "tiny_corpus")


TINY_W2V = Word2VecConfig(vector_size=16, min_count=1, epochs=2, workers=1, seed=0)


def embed_tiny_run(root: Path) -> Path:
    """``root/run`` after the embedding stage on a tiny corpus written to ``root/tiny_corpus``."""
    run_dir = root / "run"
    corpus = write_tiny_corpus(root / "tiny_corpus")
    run_embed(run_dir, CorpusConfig(source=str(corpus)), TINY_W2V, workers=1)
    return run_dir


@pytest.fixture
def tiny_run(tmp_path: Path) -> Path:
    """A run directory after the embedding stage on the tiny corpus (16-d vectors)."""
    return embed_tiny_run(tmp_path)


def invoke(*args):
    """``pipe ARGS`` in this process (arguments as strings); click's result."""
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_clean_error(result, *fragments):
    """Non-zero exit, one ``Error:`` line naming the problem, no traceback."""
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(lines) == 1, result.output
    for fragment in fragments:
        assert fragment in result.output


def read_json(path) -> object:
    """A JSON file as the test wrote or expects it, unchecked (seqae's reader checks the
    schema of each file kind; tests read and plant files of any shape)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def snapshot(root: Path) -> dict[str, str]:
    """sha256 of every file below ``root`` (links recorded as links), by relative path."""
    files = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            files[rel] = "link -> " + os.readlink(path)
        elif path.is_file():
            files[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


@contextlib.contextmanager
def held_elsewhere(run_dir, command: str):
    """Hold ``run_dir``'s lock from another thread, as another process would: this thread's
    commands and library calls are refused (the lock is re-entrant only where it is held)."""
    taken, release = threading.Event(), threading.Event()

    def hold():
        with run_lock(run_dir, command):
            taken.set()
            release.wait(60)

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    taken.wait(30)
    try:
        yield
    finally:
        release.set()
        holder.join()


def unchanged_but_lock(before: dict, after: dict) -> bool:
    """The run's files are as they were (the lock file records its last holder's pid)."""
    return {k: v for k, v in before.items() if k != ".lock"} == {
        k: v for k, v in after.items() if k != ".lock"}


# The synthetic vocabulary and sizes of the autoencoder unit tests.
WORDS = [f"w{i}" for i in range(40)]
DIM, SEQ_LEN, LATENT = 16, 8, 8


@pytest.fixture(scope="module")
def vectors():
    return np.random.default_rng(0).standard_normal((len(WORDS), DIM)).astype(np.float32)


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    """train.txt / val.txt of random sentences over WORDS plus two unknown words."""
    root = tmp_path_factory.mktemp("splits")
    rng = np.random.default_rng(1)
    for split, n in (("train", 200), ("val", 30)):
        with open(root / f"{split}.txt", "w") as handle:
            for _ in range(n):
                length = rng.integers(1, 12)
                handle.write(" ".join(rng.choice(WORDS + ["zz1", "zz2"], size=length)) + "\n")
    return root


def make_ae(vectors, kind="embedding", loss=None, seed=0, **options):
    """A small :class:`SentenceAutoencoder` over :data:`WORDS` (onehot: capped at 20);
    ``options``: more of its ``AutoencoderConfig`` (``decoder="autoregressive"``)."""
    from autoencoder import AutoencoderConfig, SentenceAutoencoder, Vocabulary

    config = AutoencoderConfig(kind=kind, loss=loss or ("cosine" if kind == "embedding" else "ce"),
                               seq_len=SEQ_LEN, latent=LATENT, vocab_cap=20, **options)
    vocab = Vocabulary(WORDS) if kind == "embedding" else Vocabulary.capped(
        [(w, 100 - i) for i, w in enumerate(WORDS)], 20)
    return SentenceAutoencoder(config, vocab, vectors, seed=seed)


def fit(ae, splits, model_dir, resume=False, **options):
    """Train ``ae`` on ``splits/train.txt`` (validated on ``val.txt``) into ``model_dir``."""
    from autoencoder import TrainConfig, Trainer

    config = TrainConfig(**{"epochs": 2, "batch_size": 32, "lr": 1e-2, **options})
    return Trainer(ae, config, model_dir).fit(splits / "train.txt", splits / "val.txt",
                                              resume=resume)


def tiny_ae(epochs=2):
    """``train-ae`` options of a model that trains in about a second."""
    return ["--seq-len", "8", "--latent", "8", "--epochs", epochs, "--batch-size", "32",
            "--val-sentences", "20"]


TINY_AE = tiny_ae()


def train_both_kinds(run_dir: Path) -> Path:
    """Train ``embedding-cosine`` and ``onehot-ce`` (cap 30) on ``run_dir`` with :data:`TINY_AE`."""
    for kind in ("embedding", "onehot"):
        result = invoke("train-ae", "--run", run_dir, "--kind", kind, "--vocab-cap", "30", *TINY_AE)
        assert result.exit_code == 0, result.output
    return run_dir


@pytest.fixture(scope="session")
def both_trained_once(tmp_path_factory) -> Path:
    """A tiny run with both kinds trained, once per session: never write it (copy it with
    ``trained_run``)."""
    return train_both_kinds(embed_tiny_run(tmp_path_factory.mktemp("both")))


@pytest.fixture
def trained_run(both_trained_once: Path, tmp_path: Path) -> Path:
    """A private copy of :func:`both_trained_once` that a test may change."""
    return Path(shutil.copytree(both_trained_once, tmp_path / "both-trained"))


@pytest.fixture(scope="session")
def trained_once(tmp_path_factory) -> Path:
    """A tiny run with one embedding model trained for one epoch, once per session: never
    write it (copy it with ``trained``)."""
    run = embed_tiny_run(tmp_path_factory.mktemp("one"))
    result = invoke("train-ae", "--run", run, *tiny_ae(1))
    assert result.exit_code == 0, result.output
    return run


@pytest.fixture
def trained(trained_once: Path, tmp_path: Path) -> Path:
    """A private copy of :func:`trained_once` that a test may damage."""
    return Path(shutil.copytree(trained_once, tmp_path / "trained"))


_HEADER = (
    "From: {author}@example.org (A. Poster)\n"
    "Subject: Re: {subject}\n"
    "Organization: Example University\n"
    "Lines: 12\n"
)
_BODY = (
    "In article <{post}@example.org> someone@example.org writes:\n"
    "> This quoted line should go away with quotes removed.\n"
    "| So should this one.\n"
    "\n"
    "I think the caf\xe9 near the river serves good coffee. Dr. Jones agreed with me.\n"
    "We talked about {subject} for an hour.\n"
    "\n"
    "--\n"
    "{author} signature line\n"
)


def _post(post: int, subject: str) -> bytes:
    author = f"user{post}"
    text = _HEADER.format(author=author, subject=subject) + "\n" + _BODY.format(
        post=post, subject=subject, author=author)
    return text.encode("latin-1")


FAKE_20NEWS_POSTS = {
    "20news-bydate-train/alt.atheism/101": "philosophy",
    "20news-bydate-train/alt.atheism/102": "belief",
    "20news-bydate-train/alt.atheism/103": "arguments",
    "20news-bydate-train/sci.space/201": "rockets",
    "20news-bydate-train/sci.space/202": "orbits",
    "20news-bydate-train/sci.space/203": "the moon",
    "20news-bydate-test/alt.atheism/301": "morality",
    "20news-bydate-test/sci.space/401": "satellites",
}


@pytest.fixture
def fake_20news_archive(tmp_path: Path) -> Path:
    """A tiny 20news-bydate .tar.gz: 6 train and 2 test posts, latin-1, with headers, quotes
    and signatures (members stored out of order, as real archives may be)."""
    path = tmp_path / "20news-bydate.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        for name, subject in reversed(FAKE_20NEWS_POSTS.items()):
            data = _post(int(name.rsplit("/", 1)[1]), subject)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path
