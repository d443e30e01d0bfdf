"""Files seqae writes and reads: atomic writes, output-path policy, safe reads, hashes.

Every artifact is written to a temporary file in its destination folder and renamed into place,
so an interrupted run never leaves a half-written file under the final name. Every file seqae
reads back is opened without following a link and refused if it is no regular file.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from embeddings.store.errors import SeqaeError


def _new_temp_file(folder: Path, prefix: str, suffix: str) -> Path:
    """Create an empty file ``folder/PREFIX<random>SUFFIX`` that did not exist, with the mode a
    new file gets (0666 less the process umask, applied by the kernel: no umask is changed)."""
    while True:
        candidate = folder / f"{prefix}{secrets.token_hex(4)}{suffix}"
        try:
            os.close(os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return candidate


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds.

    ``suffix`` is the temporary file's suffix (default ``.tmp``); writers that infer the format
    from the name (Keras wants ``.keras``) pass their own. A file that is replaced keeps its
    permission bits; a new one gets the usual mode of a new file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = _new_temp_file(path.parent, f".{path.name}.", suffix or ".tmp")
    try:
        with _naming(path, tmp_path):
            yield tmp_path
            if path.is_file():  # keep the mode of what is replaced (a 0600 file stays private)
                os.chmod(tmp_path, stat.S_IMODE(path.stat().st_mode))
            os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def _naming(path: Path, tmp: Path | None = None) -> Iterator[None]:
    """Make an operating-system error name ``path``: one raised without a file name (a full
    disk), or naming the temporary file ``tmp`` that the user never asked for."""
    try:
        yield
    except OSError as exc:
        if exc.filename not in (None, str(tmp)):
            raise
        if exc.errno is None:  # numpy's "N requested and M written": a short write
            raise SeqaeError(f"cannot write {path}: {exc} (is the disk full?)") from None
        raise OSError(exc.errno, exc.strerror, str(path)) from None


def resolve_path(path: str | os.PathLike) -> Path:
    """``path`` with every symbolic link resolved; a link loop is a :class:`SeqaeError`."""
    try:
        return Path(path).resolve()
    except (RuntimeError, OSError) as exc:  # Python raises RuntimeError for a loop
        raise SeqaeError(f"cannot resolve {path}: {exc}") from None


@contextlib.contextmanager
def output_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield the path to write a user-named output ``path`` to: a temporary file renamed onto
    it for a regular file (or a new one), the path itself for a device or FIFO (``/dev/null``,
    a pipe), and for a symbolic link the same for what it points to, so the link stays a link."""
    path = Path(path)
    target = resolve_path(path) if path.is_symlink() else path
    if target.is_dir():
        raise SeqaeError(f"cannot write {path}: it is a folder")
    if not target.parent.is_dir():  # as a shell redirection would, rather than make folders
        raise SeqaeError(f"cannot write {path}: no folder {target.parent}")
    if target.exists() and not target.is_file():
        with _naming(target):  # a rename would replace the device node or pipe, not write to it
            yield target
        return
    with atomic_path(target) as tmp:
        yield tmp


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs: Any) -> Iterator[Any]:
    """Open a temporary file for writing; it replaces ``path`` only when the block succeeds."""
    if "b" not in mode:
        kwargs.setdefault("encoding", "utf-8")
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as handle:
        yield handle
        handle.flush()
        os.fsync(handle.fileno())


def portable_path(text: str) -> str:
    """``text`` as a report shows it: an absolute path relative to the working directory (so
    a committed report names no folder of the machine it ran on), anything else unchanged."""
    return os.path.relpath(text) if os.path.isabs(text) else text


def check_input_file(path: str | os.PathLike, what: str = "a file of sentences") -> Path:
    """``path`` if it is a regular file (links followed), else :class:`SeqaeError`: a folder
    (named as not ``what``), a missing path, or a FIFO, device or socket (which could block or
    never end)."""
    path = Path(path)
    if path.is_dir():
        raise SeqaeError(f"cannot read {path}: it is a folder, not {what}")
    if not path.exists():
        raise SeqaeError(f"no input file {path}")
    if not path.is_file():
        raise SeqaeError(f"{path} is not a regular file (a FIFO, device or socket could block "
                         "or never end): copy its content to a file first")
    return path


def open_artifact(path: str | os.PathLike, max_bytes: int | None = None) -> BinaryIO:
    """Open one of seqae's files for reading in binary: never through a symbolic link, never a
    folder, FIFO or device (which could block or never end), and at most ``max_bytes`` long;
    else one-line :class:`SeqaeError` naming the file (:class:`FileNotFoundError` when it is
    missing, for the caller to decide)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SeqaeError(f"{path} is a symbolic link, not a file seqae wrote: it is not "
                             "followed") from None
        raise SeqaeError(f"cannot read {path}: {exc.strerror}") from None
    info = os.fstat(fd)
    problem = (None if stat.S_ISREG(info.st_mode) else
               "is not a regular file (a folder, FIFO or device): it is not read")
    if problem is None and max_bytes is not None and info.st_size > max_bytes:
        problem = f"has {info.st_size:,} bytes, more than the {max_bytes:,} seqae reads of it"
    if problem:
        os.close(fd)
        raise SeqaeError(f"{path} {problem}: it is not a file seqae wrote")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def read_text(path: str | os.PathLike, max_bytes: int, what: str) -> str:
    """The whole of one of seqae's text files (:func:`open_artifact`'s checks), decoded as
    UTF-8; a byte that is not is a one-line :class:`SeqaeError` naming ``what`` it is."""
    with open_artifact(path, max_bytes) as handle:
        data = handle.read(max_bytes + 1)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SeqaeError(f"damaged {what} {path}: byte {exc.start} is not UTF-8 (seqae did not "
                         "write it so)") from None


def sha256_file(path: str | os.PathLike, chunk_bytes: int = 1 << 20) -> str:
    """Hex sha256 of a regular file, read in chunks (never through a link, never a FIFO or
    device: :func:`open_artifact`)."""
    digest = hashlib.sha256()
    with open_artifact(path) as handle:
        for chunk in iter(lambda: handle.read(chunk_bytes), b""):
            digest.update(chunk)
    return digest.hexdigest()
