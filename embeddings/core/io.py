"""Artifact I/O shared by every stage: atomic writes, JSON, hashes, manifests, the run lock.

Every artifact is written to a temporary file in its destination folder and renamed into place,
so an interrupted run never leaves a half-written file under the final name. Each stage folder
holds a ``manifest.json`` (size and sha256 of every artifact) that loading verifies, so a
truncated or altered file is refused instead of half-read.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import platform
import re
import secrets
import shutil
import stat
import tempfile
import threading
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any, BinaryIO

from embeddings.core.schema import Fields, MapOf, SchemaError, check


class SeqaeError(Exception):
    """A user-facing error: bad input, missing artifact, option out of range.

    The CLI turns it into one line on stderr and a non-zero exit, without a traceback.
    """


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


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_open(path) as handle:
        json.dump(obj, handle, indent=2, sort_keys=False, default=_json_default)
        handle.write("\n")


# seqae's JSON files are small (a report with every model's history is well under a megabyte);
# the bounds keep a planted file from exhausting memory or the parser's recursion.
MAX_JSON_BYTES = 64 << 20


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


def read_json(path: str | os.PathLike, schema: Any) -> Any:
    """Read one of seqae's JSON files and check it against its declared ``schema``
    (:mod:`embeddings.core.schema`). A missing, oversized, corrupt or misshapen file, or one
    that is a link or no regular file, is a :class:`SeqaeError` of one line naming the file and
    what is wrong."""
    path = Path(path)
    what = schema.name if isinstance(schema, Fields) else "JSON file"
    try:
        value = json.loads(read_text(path, MAX_JSON_BYTES, what))
    except FileNotFoundError:
        raise SeqaeError(f"missing file: {path}") from None
    except ValueError as exc:  # JSONDecodeError, or a 5,000-digit number
        raise SeqaeError(f"corrupt JSON in {path}: {exc}") from None
    except RecursionError:
        raise SeqaeError(f"corrupt JSON in {path}: nested too deeply") from None
    try:
        check(value, schema)
    except SchemaError as exc:
        raise SeqaeError(f"damaged {what} {path}: {exc} (seqae did not write it so)") from None
    return value


def _json_default(obj: Any) -> Any:
    # numpy scalars and paths show up in configs and metrics.
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def sha256_file(path: str | os.PathLike, chunk_bytes: int = 1 << 20) -> str:
    """Hex sha256 of a regular file, read in chunks (never through a link, never a FIFO or
    device: :func:`open_artifact`)."""
    digest = hashlib.sha256()
    with open_artifact(path) as handle:
        for chunk in iter(lambda: handle.read(chunk_bytes), b""):
            digest.update(chunk)
    return digest.hexdigest()


def options_digest(options: dict[str, Any]) -> str:
    """A short stable hash of a JSON-able options dict, used as a cache key."""
    blob = json.dumps(options, sort_keys=True, default=_json_default).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


_LIBRARIES = ("seqae", "gensim", "tensorflow", "jax", "keras", "numpy", "nltk", "scikit-learn",
              "click")


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries whose behaviour shapes the results."""
    versions = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def cpu_model() -> str | None:
    """The CPU's model name (Linux's /proc/cpuinfo; ``platform.processor()`` elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


MANIFEST = "manifest.json"
MANIFEST_SCHEMA = Fields({"files": MapOf(Fields({"size": int, "sha256": str})), "options": dict},
                         name="manifest")
# A stage's commit point: the digest of the options it was made with, written last.
META_SCHEMA = Fields({"digest": str}, {"key": dict}, name="stage record (meta.json)")


def write_manifest(folder: str | os.PathLike, files: tuple[str, ...], options: dict[str, Any]) -> None:
    """Record the size and sha256 of ``files`` (names in ``folder``) and the options that made them."""
    paths = {name: Path(folder) / name for name in files}
    write_json(Path(folder) / MANIFEST, {
        "files": {name: {"size": path.stat().st_size, "sha256": sha256_file(path)}
                  for name, path in paths.items()},
        "options": options,
    })


def verify_manifest(folder: str | os.PathLike, required: tuple[str, ...],
                    remedy: str = "recompute it (--force)",
                    only: tuple[str, ...] | None = None) -> dict:
    """Check that ``folder/manifest.json`` lists every file of ``required`` (what the artifact
    cannot be used without) and that every file it lists (or, given ``only``, those of them)
    matches its recorded size and sha256; return the manifest.

    Hashing everything is affordable: sha256 reads about 1.5 GB/s, so the 180 MB vectors of
    20 Newsgroups cost 0.12 s. Raises :class:`SeqaeError` naming the first missing, unlisted,
    truncated or altered file, with ``remedy`` as the advice.
    """
    folder = Path(folder)
    if not (folder / MANIFEST).is_file():
        raise SeqaeError(f"no {MANIFEST} in {folder}: it was not written by a finished stage; {remedy}")
    manifest = read_json(folder / MANIFEST, MANIFEST_SCHEMA)
    listed = manifest["files"]
    outside = [name for name in listed if Path(name).name != name or name in (".", "..")]
    if outside:
        raise SeqaeError(f"damaged manifest {folder / MANIFEST}: it lists {outside[0]!r}, which is "
                         f"not a file of {folder}; {remedy}")
    unlisted = [name for name in required if name not in listed]
    if unlisted:
        raise SeqaeError(f"{folder / MANIFEST} does not list {', '.join(unlisted)}: the folder "
                         f"cannot be verified; {remedy}")
    for name, expected in listed.items():
        if only is not None and name not in only:
            continue
        path = folder / name
        if path.is_symlink() or not path.is_file():
            missing = "not a regular file" if path.is_symlink() or path.exists() else "missing"
            raise SeqaeError(f"artifact {path} (listed in {MANIFEST}) is {missing}; {remedy}")
        size = path.stat().st_size
        if size != expected["size"]:
            problem = f"has {size} bytes, not the {expected['size']} recorded: truncated or altered"
        elif sha256_file(path) != expected["sha256"]:
            problem = "does not match its recorded sha256: altered"
        else:
            continue
        raise SeqaeError(f"artifact {path} {problem} since seqae wrote it; {remedy}")
    return manifest


def is_complete(folder: str | os.PathLike, files: tuple[str, ...], digest: str) -> bool:
    """Whether a stage's output in ``folder`` is finished and made with the options of ``digest``.

    Stages write ``meta.json`` (holding ``"digest"``) last, after every file in ``files`` and the
    manifest, and delete it before recomputing, so a crash in between can never pass for a
    finished result.
    """
    folder = Path(folder)
    if not all((folder / name).is_file() for name in (*files, MANIFEST, "meta.json")):
        return False
    try:
        return read_json(folder / "meta.json", META_SCHEMA)["digest"] == digest
    except SeqaeError:
        return False


@contextlib.contextmanager
def staged_folders(run_dir: str | os.PathLike, names: tuple[str, ...]) -> Iterator[Path]:
    """Yield a hidden staging folder in ``run_dir``; when the block succeeds, each of ``names``
    written into it replaces the folder of that name in ``run_dir`` (old one moved aside, new
    one renamed in, old one deleted). If the block fails, nothing in ``run_dir`` changed.

    The caller checks first that the folders it replaces are its own. The folders are swapped
    one at a time; each stage's ``meta.json`` names what it was made from, so a kill between
    two swaps leaves a pair that the next run recomputes."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    for stale in run_dir.glob(".staging-*"):  # left by a killed run (the caller holds the lock)
        shutil.rmtree(stale, ignore_errors=True)
    stage = Path(tempfile.mkdtemp(prefix=".staging-", dir=run_dir))
    try:
        yield stage
        for name in names:
            if not (stage / name).is_dir():
                continue
            if (run_dir / name).exists() or (run_dir / name).is_symlink():
                os.replace(run_dir / name, stage / f"{name}.replaced")
            os.replace(stage / name, run_dir / name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


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
