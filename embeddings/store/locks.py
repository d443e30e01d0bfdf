"""Locks: the run lock (one writer per run, across processes and threads) and the folder lock
(a model folder's files and manifest updated together)."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

from embeddings.store.errors import SeqaeError

LOCK_FILE = ".lock"
_LOCK_LINE = re.compile(r"(\d+ [^\n]*\n)?")  # empty, or the last holder's "PID command"


def _open_lock_file(path: Path, read_only_ok: bool = False) -> int:
    """A descriptor of the lock file ``path``, created if missing, opened for reading and
    writing (read-only where it may not be written, if ``read_only_ok``), never through a
    symbolic link. A link, folder, FIFO, socket or device there is a :class:`SeqaeError`:
    seqae locks only a regular file it made."""
    flags = os.O_NOFOLLOW | os.O_NONBLOCK  # non-blocking: opening a FIFO must not hang
    try:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | flags, 0o666)
        except OSError as exc:  # a folder we may not write, or a read-only file system
            if not read_only_ok or exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise
            fd = os.open(path, os.O_RDONLY | flags)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO):
            raise SeqaeError(f"{path} is not a regular file seqae made (a link, folder or "
                             "special file): it is left alone; remove it or use another --run") from None
        raise SeqaeError(f"cannot open {path}: {exc.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise SeqaeError(f"{path} is not a regular file seqae made (a folder, FIFO or device): "
                         "it is left alone; remove it or use another --run")
    return fd


# The run locks this thread holds (resolved run folders): a library call made inside a command,
# or a pipeline calling its stages, holds the lock it already has. Another thread or process is
# refused, as flock refuses a second open file of the same lock.
_held = threading.local()


@contextlib.contextmanager
def run_lock(run_dir: str | os.PathLike, command: str) -> Iterator[None]:
    """Hold ``RUN/.lock`` for the block, or refuse at once if another process (or thread) holds
    it; re-entrant in the thread that holds it.

    ``flock`` belongs to the open file, so the kernel releases it when the holder exits or is
    killed: a stale lock file never blocks. The file keeps the holder's pid and command for the
    error message, and is kept (deleting it would let two processes lock two inodes), except
    that a command that fails leaves no trace where it found none: a lock file it created is
    removed, and so is the run folder it created if nothing else is in it.
    """
    held = _held.__dict__.setdefault("runs", set())
    key = os.path.realpath(run_dir)
    if key in held:  # the outer block of this thread holds it, and releases it
        yield
        return
    path = Path(run_dir) / LOCK_FILE
    new_folders = [p for p in (path.parent, *path.parent.parents) if not p.exists()]
    path.parent.mkdir(parents=True, exist_ok=True)
    new_file = not (path.exists() or path.is_symlink())
    try:
        with _holding_run_lock(path, run_dir, command):
            held.add(key)
            try:
                yield
            finally:
                held.discard(key)
    except BaseException:
        if new_file:
            path.unlink(missing_ok=True)
            for folder in new_folders:  # deepest first
                try:
                    folder.rmdir()
                except OSError:  # not empty: the command left results
                    break
        raise


@contextlib.contextmanager
def _holding_run_lock(path: Path, run_dir: str | os.PathLike, command: str) -> Iterator[None]:
    with open(_open_lock_file(path), "r+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EACCES):
                raise
            pid, _, holder = handle.read(4096).strip().partition(" ")
            who = f"pid {pid} ({holder})" if pid else "another process"
            raise SeqaeError(f"run directory {run_dir} is in use by {who}; wait for it or use "
                             "another --run") from None
        if not _LOCK_LINE.fullmatch(handle.read(4096)):
            raise SeqaeError(f"{path} exists and was not written by seqae: it is left alone; "
                             "choose another --run")
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()} {command}\n")
        handle.flush()
        yield


UPDATE_LOCK = ".update.lock"


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike, shared: bool) -> Iterator[None]:
    """Hold ``folder/.update.lock`` for the block: exclusive for the one writer that updates the
    folder's files and manifest together, shared for readers, so that a reader never sees a
    half-updated set (a new checkpoint under an old manifest). Waits for the other side.

    A reader that may not create the file (a read-only folder, where nobody is writing) reads
    without it."""
    path = Path(folder) / UPDATE_LOCK
    try:
        fd = _open_lock_file(path, read_only_ok=shared)
    except SeqaeError:
        if not shared or path.is_symlink() or path.exists():
            raise
        fd = None  # a folder where it cannot be created: nobody can be writing here
    if fd is None:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock
