"""The run directory's layout: the folders seqae owns in it, a model folder's files, and what may
name a model. Every file and folder name of a run is written here, and only here.

Every stage writes below one run directory (``--run``)::

    RUN/config.json  RUN/.lock
    RUN/corpus/  RUN/embeddings/  RUN/models/NAME/  RUN/compare/  RUN/study/

A model name becomes a folder under ``RUN/models``, so it must be one path component of safe
characters: never ``.``, ``..``, a path, or anything a shell or file system would read otherwise.
Nothing here imports TensorFlow or gensim.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from embeddings.store.errors import SeqaeError
from embeddings.store.files import resolve_path, sha256_file
from embeddings.store.jsonfile import read_json, write_json
from embeddings.store.locks import LOCK_FILE, run_lock
from embeddings.store.machine import library_versions
from embeddings.store.manifests import MANIFEST, MANIFEST_SCHEMA
from embeddings.store.schema import Fields, MapOf

# The stage folders of a run, in pipeline order.
CORPUS, EMBEDDINGS, MODELS, COMPARE, STUDY = "corpus", "embeddings", "models", "compare", "study"
STAGE_FOLDERS = (CORPUS, EMBEDDINGS, MODELS, COMPARE, STUDY)
RUN_CONFIG = "config.json"
RUN_FILES = (RUN_CONFIG, LOCK_FILE)
# RUN/config.json: the resolved options of every stage that ran, by stage name.
RUN_CONFIG_SCHEMA = Fields({"stages": MapOf(dict)}, name="run configuration")
# RUN/compare/report.json, which marks a comparison written before stage manifests existed.
COMPARISON_SCHEMA = Fields({"models": dict, "split": str, "samples": list}, name="comparison report")
# A letter or digit first (no hidden names, no options), then letters, digits, '.', '_', '-'.
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_P = ParamSpec("_P")
_R = TypeVar("_R")


def check_run_dir(run_dir: str | os.PathLike) -> Path:
    """``run_dir`` as a path; an empty string (which would mean the current folder) is refused."""
    if not isinstance(run_dir, str | os.PathLike):
        raise SeqaeError(f"a run directory is a path, got {type(run_dir).__name__}")
    if not str(run_dir).strip():
        raise SeqaeError("--run must name a folder, not an empty string")
    return Path(run_dir)


def check_model_name(name: str) -> str:
    """``name`` if it can name a folder under ``RUN/models``, else :class:`SeqaeError`.

    One path component of at most 100 characters: letters, digits, ``.``, ``_`` and ``-``,
    starting with a letter or digit (so never ``.``, ``..``, hidden, absolute or nested).
    """
    if not _MODEL_NAME.fullmatch(name or ""):
        raise SeqaeError(f"model name {name!r} is not a plain name: use 1-100 letters, digits, "
                         "'.', '_' or '-', starting with a letter or digit")
    return name


class _Folder:
    """A folder of seqae's by its ``path``: usable wherever a path is (``os.fspath``, ``/``,
    ``str``), equal to another of its kind at the same path. Touches nothing on disk."""

    path: Path

    def __fspath__(self) -> str:
        return os.fspath(self.path)

    def __truediv__(self, other: str) -> Path:
        return self.path / other

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"

    def __str__(self) -> str:
        return str(self.path)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)


class ModelDir(_Folder):
    """One model folder, ``RUN/models/NAME``, and the name of every file in it.

    ``config.json`` (architecture, training settings, vectors' fingerprint) and ``vocab.txt`` are
    written before training; ``last.keras``, ``best.keras``, ``history.csv``, ``steps.csv`` and
    ``loss.png`` after each epoch, then ``manifest.json`` (size and sha256 of :attr:`FILES`), then
    ``state.json``, the commit point that ``--resume`` trusts. ``ModelDir(path)`` touches nothing
    on disk.
    """

    CONFIG = "config.json"
    VOCAB = "vocab.txt"
    LAST = "last.keras"
    BEST = "best.keras"
    HISTORY = "history.csv"
    STEPS = "steps.csv"
    LOSS_PLOT = "loss.png"
    STATE = "state.json"
    INDEX = "index"  # the code index of the train split (``pipe neighbours``), a folder
    # Proof that a hidden ``.NAME.replaced-TOKEN`` folder beside a model is one that ``--force``
    # moved aside: the folder holds this file, and its name ends in the token the file holds.
    REPLACED_TOKEN = ".replaced-token"
    # ``last.keras`` as ``state.json`` committed it, kept aside while its successor is saved.
    PREVIOUS = ".last.keras.previous"
    # What the manifest covers; state.json is not listed, it is the commit point written after it.
    FILES = (CONFIG, VOCAB, LAST, BEST, HISTORY, LOSS_PLOT, STEPS)

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    @property
    def name(self) -> str:
        return self.path.name

    def checkpoint(self, which: str) -> Path:
        """``best.keras`` or ``last.keras`` (``which``: "best" or "last")."""
        return self.path / {"best": self.BEST, "last": self.LAST}[which]

    config = property(lambda self: self.path / self.CONFIG, doc="``config.json``")
    vocab = property(lambda self: self.path / self.VOCAB, doc="``vocab.txt``: one word a line, in id order")
    last = property(lambda self: self.path / self.LAST, doc="``last.keras``: the latest checkpoint")
    best = property(lambda self: self.path / self.BEST, doc="``best.keras``: the best by the monitor")
    previous = property(lambda self: self.path / self.PREVIOUS, doc="the committed last.keras, kept aside")
    history = property(lambda self: self.path / self.HISTORY, doc="``history.csv``: a row an epoch")
    steps = property(lambda self: self.path / self.STEPS, doc="``steps.csv``: the step trace")
    loss_plot = property(lambda self: self.path / self.LOSS_PLOT, doc="``loss.png``")
    state = property(lambda self: self.path / self.STATE, doc="``state.json``: the commit point")
    index = property(lambda self: self.path / self.INDEX, doc="``index/``: the code index")


class RunDir(_Folder):
    """One run directory and every path under it: the stage folders, the model folders,
    ``config.json`` (the resolved options of each stage that ran) and the word vectors'
    fingerprint.

    ``RunDir(path)`` touches nothing on disk; each stage creates its own folder. A library
    function takes a path or a RunDir and converts it once (:meth:`of`); what it calls gets the
    RunDir.
    """

    VECTORS = "vectors.npy"

    def __init__(self, path: str | os.PathLike):
        self.path = check_run_dir(path)

    @classmethod
    def of(cls, run_dir: str | os.PathLike | RunDir) -> RunDir:
        """``run_dir`` as a RunDir (itself if it is one)."""
        return run_dir if isinstance(run_dir, RunDir) else cls(run_dir)

    corpus = property(lambda self: self.path / CORPUS, doc="``RUN/corpus``: tokenized splits")
    embeddings = property(lambda self: self.path / EMBEDDINGS, doc="``RUN/embeddings``: vectors")
    models = property(lambda self: self.path / MODELS, doc="``RUN/models``: a folder a model")
    compare = property(lambda self: self.path / COMPARE, doc="``RUN/compare``: the comparison")
    study = property(lambda self: self.path / STUDY, doc="``RUN/study``: the study's report")
    config_file = property(lambda self: self.path / RUN_CONFIG, doc="``RUN/config.json``")

    @property
    def vectors_file(self) -> Path:
        """``RUN/embeddings/vectors.npy``: float32, shape (vocabulary, vector size)."""
        return self.embeddings / self.VECTORS

    def model(self, name: str) -> ModelDir:
        """``RUN/models/NAME`` for a checked ``name``."""
        return ModelDir(self.models / check_model_name(name))

    def vectors_fingerprint(self, shape: tuple[int, ...]) -> dict:
        """sha256 and shape of the run's word vectors, which every model records and is checked
        against; the digest of an unchanged file is computed once per process."""
        return {"sha256": file_digest(self.vectors_file), "shape": list(shape)}

    def config(self) -> dict:
        """``RUN/config.json`` (empty stages when there is none yet); one that is not seqae's is
        refused, never overwritten."""
        path = self.config_file
        if not path.exists():
            return {"stages": {}}
        try:
            return read_json(path, RUN_CONFIG_SCHEMA)
        except SeqaeError as exc:
            raise SeqaeError(f"{exc}; it is left alone: choose another --run") from None

    @contextlib.contextmanager
    def writing(self, what: str, create: bool = False) -> Iterator[RunDir]:
        """Hold the run's lock (``RUN/.lock``) while ``what`` writes the run: a second writer,
        from Python or ``pipe``, is refused at once; the holder may call other writers (they
        share its lock). A missing run folder is refused unless ``create`` (a stage that starts
        a run), and so is a ``config.json`` seqae did not write, before anything is written."""
        if not create and not self.path.is_dir():
            raise SeqaeError(f"no run directory {self.path}: run `pipe embed` (run_embed) first")
        with run_lock(self.path, what):
            self.config()
            yield self

    def stage_options(self, stage: str) -> dict | None:
        """The options ``config.json`` records for ``stage``, or None."""
        return self.config()["stages"].get(stage)

    def record(self, stage: str, options: dict[str, Any]) -> None:
        """Merge one stage's resolved options into ``config.json`` with the library versions."""
        config = self.config()
        config["stages"][stage] = {k: (str(v) if isinstance(v, Path) else v)
                                   for k, v in options.items()}
        config["versions"] = library_versions()
        write_json(self.config_file, config)


def writes_run(create: bool = False) -> Callable[
        [Callable[Concatenate[RunDir, _P], _R]],
        Callable[Concatenate[str | os.PathLike | RunDir, _P], _R]]:
    """Make a library function whose first argument is a run directory hold the run's lock
    (:meth:`RunDir.writing`) while it runs, and get that argument as a :class:`RunDir` (a path
    or a RunDir is accepted, as the decorated function's type says); ``create``: it may start
    a new run."""

    def decorate(func: Callable[Concatenate[RunDir, _P], _R]
                 ) -> Callable[Concatenate[str | os.PathLike | RunDir, _P], _R]:
        @functools.wraps(func)
        def locked(run_dir: str | os.PathLike | RunDir, *args: _P.args, **kwargs: _P.kwargs) -> _R:
            run = RunDir.of(run_dir)
            with run.writing(f"{func.__name__}()", create=create):
                return func(run, *args, **kwargs)

        # help() and inspect show what a caller passes, as every other call of the library
        # names it: ``run_dir``, a path or a RunDir (the body's own name and type are its own).
        signature = inspect.signature(func)
        first, *rest = signature.parameters.values()
        locked.__signature__ = signature.replace(parameters=[
            first.replace(name="run_dir", annotation="str | os.PathLike | RunDir"), *rest])
        return locked

    return decorate


def file_digest(path: Path) -> str:
    """sha256 of ``path``, computed once per version of the file (its inode, size and
    modification time) in this process: an 800 MB ``vectors.npy`` is read once, not once per
    model and check."""
    info = os.stat(path)
    return _digest(os.path.realpath(path), info.st_dev, info.st_ino, info.st_size,
                   info.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _digest(path: str, device: int, inode: int, size: int, mtime_ns: int) -> str:
    return sha256_file(path)


def list_models(run_dir: str | os.PathLike) -> list[str]:
    """Names of the models in ``RUN/models`` that have a config (trained or in training)."""
    root = RunDir.of(run_dir).models
    if not root.is_dir():
        return []
    return sorted(p.parent.name for p in root.glob(f"*/{ModelDir.CONFIG}")
                  if _MODEL_NAME.fullmatch(p.parent.name))


def resolve_model(run_dir: str | os.PathLike, name: str | None = None) -> str:
    """The model a reader of the run means: ``name``, else the only model, else
    ``embedding-cosine``; :class:`SeqaeError` naming what is missing (the run, any model, or
    that name). Reads only file names, so commands check it before starting Keras."""
    run = RunDir.of(run_dir)
    if not run.path.is_dir():
        raise SeqaeError(f"no run directory {run}: run `pipe embed` and `pipe train-ae` first")
    names = list_models(run)
    if not names:
        raise SeqaeError(f"no trained model in {run}: run `pipe train-ae --run {run}` first")
    if name is None:
        name = names[0] if len(names) == 1 else "embedding-cosine"
    if name not in names:
        raise SeqaeError(f"no model named {name} in {run.models} (have: {', '.join(names)})")
    return name


def _manifest_options(folder: Path) -> dict | None:
    """The options recorded in ``folder``'s manifest, or None where seqae wrote no manifest
    there (or ``folder`` is a symbolic link, which seqae never makes)."""
    folder = Path(folder)
    if folder.is_symlink() or not (folder / MANIFEST).is_file():
        return None
    try:
        return read_json(folder / MANIFEST, MANIFEST_SCHEMA)["options"]
    except SeqaeError:
        return None


def is_seqae_model(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` is a model folder that seqae wrote: a real folder (not a link) whose
    manifest records an autoencoder. Only such a folder is ever removed (``--force``)."""
    options = _manifest_options(folder)
    return options is not None and "autoencoder" in options


def is_seqae_stage(folder: Path) -> bool:
    """Whether ``folder`` (``RUN/corpus``, ``RUN/embeddings``, ``RUN/compare``, ``RUN/study``) is
    one seqae wrote: a real folder holding seqae's manifest (or, for a comparison written before
    manifests, its ``report.json``), or an empty one. Only such a folder is ever replaced or
    written into."""
    folder = Path(folder)
    if folder.is_symlink() or not folder.is_dir():
        return False
    if _manifest_options(folder) is not None or not any(folder.iterdir()):
        return True
    try:
        read_json(folder / "report.json", COMPARISON_SCHEMA)
    except SeqaeError:
        return False
    return True


def check_replaceable(run_dir: str | os.PathLike, names: tuple[str, ...]) -> None:
    """Refuse to write into a ``RUN/<name>`` folder that seqae did not write (``--run`` at a
    folder of yours, say a source tree with its own ``embeddings/``)."""
    for name in names:
        folder = Path(run_dir) / name
        if (folder.exists() or folder.is_symlink()) and not is_seqae_stage(folder):
            raise SeqaeError(f"{folder} exists and is not a folder seqae wrote (no manifest); "
                             "it is left alone: choose another --run")


def seqae_owns(path: str | os.PathLike, run_dir: str | os.PathLike) -> bool:
    """Whether ``path`` (links resolved) is an artifact of seqae's that an output must never
    overwrite: inside a stage folder of ``run_dir``, or its ``config.json`` / ``.lock``; or,
    of any run, in a folder (or below one) that holds a seqae manifest (a stage, a model, an
    index), inside a stage folder of a folder that holds a run configuration and a lock, or a
    run file beside a run configuration."""
    target = resolve_path(path)
    run = resolve_path(run_dir)
    owned = [run / folder for folder in STAGE_FOLDERS]
    if target in {run / name for name in RUN_FILES} or any(
            target == folder or folder in target.parents for folder in owned):
        return True
    # A manifest beside it or one folder up (a stage, a model; a model's index), damaged or
    # not: a damaged run needs its files more, not less. Not further up: any project may hold
    # a file of that name.
    if any((folder / MANIFEST).exists() or (folder / MANIFEST).is_symlink()
           for folder in target.parents[:2]):
        return True
    if target.name in RUN_FILES and _is_run_config(target.parent / RUN_CONFIG):
        return True
    return any(folder.name in STAGE_FOLDERS and (folder.parent / LOCK_FILE).exists()
               and _is_run_config(folder.parent / RUN_CONFIG) for folder in target.parents)


def _is_run_config(path: Path) -> bool:
    try:
        read_json(path, RUN_CONFIG_SCHEMA)
    except SeqaeError:
        return False
    return True
