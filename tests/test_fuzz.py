"""Property tests: the corpus readers and the tokenizer on hostile input.

Whatever the bytes, encodings, line lengths, folder depths, symlink loops or empty files, a
reader either returns documents or raises :class:`SeqaeError` (only for a binary-looking file,
the one refusal random junk can trigger), and a known sentence planted among the junk survives
reading and tokenizing.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from embeddings.corpus import read_corpus
from embeddings.store.errors import SeqaeError
from embeddings.tokenize import TokenizeConfig, Tokenizer

KNOWN = "The zebra quietly crossed the frozen lake."
KNOWN_TOKENS = ["the", "zebra", "quietly", "crossed", "the", "frozen", "lake", "."]
PROBE = 1024  # the decoder's binary probe: a NUL in a file's first PROBE bytes refuses it

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_encoded_text = st.builds(
    lambda text, encoding: text.encode(encoding, errors="replace"),
    st.text(max_size=300), st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "cp1252", "utf-16"]),
)
junk_bytes = st.one_of(
    st.binary(max_size=300),                                       # may look binary (NUL)
    st.binary(max_size=300).map(lambda b: b.replace(b"\0", b"")),  # never does
    _encoded_text,
    st.just(b""),
    st.integers(1, 200_000).map(lambda n: b"x" * n),               # one huge line
)
names = st.text("abcdefgh", min_size=1, max_size=6)
nested = st.lists(names, max_size=8)  # folder depth


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _loop(root: Path, folder: Path) -> None:
    """A symlink from ``folder``, somewhere below ``root``, back up to ``root``."""
    folder.mkdir(parents=True, exist_ok=True)
    os.symlink(root, folder / "loop")


def _check(source: Path, written: list[bytes], remove=None) -> None:
    """Read ``source``: a clean refusal only for a binary-looking file, else KNOWN is kept."""
    try:
        docs, _ = read_corpus(str(source), remove)
    except SeqaeError as exc:
        assert "looks binary" in str(exc) and any(b"\0" in data[:PROBE] for data in written)
        return
    assert any(KNOWN in doc.text for doc in docs)
    tokenize = Tokenizer(TokenizeConfig(), None)
    known = [doc for doc in docs if KNOWN in doc.text]
    assert any(KNOWN_TOKENS in tokenize(doc.text) for doc in known)


@FUZZ
@given(files=st.lists(st.tuples(nested, names, junk_bytes), max_size=6), known_at=nested,
       loop_at=st.none() | nested)
def test_text_folder_reader(files, known_at, loop_at):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp, "corpus")
        written = []
        for folders, name, data in files:
            _write(root.joinpath(*folders, name + ".txt"), data)
            written.append(data)
        _write(root.joinpath(*known_at, "zzknown.txt"), f"\n\n{KNOWN}\n\n".encode())
        if loop_at is not None:
            _loop(root, root.joinpath(*loop_at, "zzloop"))
        _check(root, written)


@FUZZ
@given(before=junk_bytes, after=junk_bytes, crlf=st.booleans())
def test_single_file_reader(before, after, crlf):
    newline = b"\r\n" if crlf else b"\n"
    data = before + newline * 2 + KNOWN.encode() + newline * 2 + after
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "corpus.txt")
        path.write_bytes(data)
        _check(path, [data])


_POST = f"From: someone@example.org\nSubject: zebras\n\n{KNOWN}\n".encode("latin-1")


@FUZZ
@given(posts=st.lists(st.tuples(st.sampled_from(["train", "test"]), names,
                                st.integers(0, 10**9), junk_bytes), max_size=6),
       loop=st.booleans())
def test_bydate_folder_reader(posts, loop):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp, "20news-bydate")
        written = []
        for split, group, number, data in posts:
            _write(root / f"20news-bydate-{split}" / group / str(number), data)
            written.append(data)
        _write(root / "20news-bydate-train" / "sci.zoo" / "1", _POST)
        if loop:
            _loop(root, root / "20news-bydate-train" / "sci.zoo" / "zzloop")
        _check(root, written)


@FUZZ
@given(blocks=st.lists(st.text(max_size=400) | st.integers(1, 50_000).map(lambda n: "y" * n),
                       max_size=5),
       position=st.integers(0, 5), unit=st.sampled_from(["sentence", "paragraph"]))
def test_tokenizer_keeps_a_sentence_among_junk(blocks, position, unit):
    blocks = [block.replace("\r", "\n") for block in blocks]  # the readers normalise newlines
    blocks.insert(min(position, len(blocks)), KNOWN)
    text = "\n\n".join(blocks)
    # With one line per paragraph, the known sentence is a unit of its own either way.
    units = Tokenizer(TokenizeConfig(unit=unit, paragraph_lines=1), None)(text)
    assert KNOWN_TOKENS in units
    # Units are stored as space-separated lines: every one must survive that round trip.
    assert all(unit and " ".join(unit).split() == unit for unit in units)
