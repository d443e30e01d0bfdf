"""Which Keras backend trains and runs the models, and the one package specific to each.

Everything else (model, losses, training loop, checkpoints, evaluation) is written against
``keras`` and ``keras.ops`` and runs on any of :data:`BACKENDS`. What cannot be, the compiled
train and forward steps (``NAME/steps.py``) and the devices and the distribution over them
(``NAME/distribute.py``), lives in one package a backend, ``autoencoder.backends.NAME``, which
exports the functions of :class:`~autoencoder.backends.base.Backend` (checked when the package is
first used). :func:`hardware` describes what a process computes on.

The backend is Keras's own: the ``KERAS_BACKEND`` variable, read once when Keras is first
imported. :func:`select_backend` sets it; the command line calls it before importing Keras, and
runs its commands under :func:`quiet_start`, which keeps the backends' native start-up lines off
the terminal.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import importlib.util
import os
import platform
import sys
from collections.abc import Iterator

from autoencoder.backends.base import Backend, missing_functions
from embeddings.store.errors import SeqaeError
from embeddings.store.machine import cpu_model

BACKENDS = ("tensorflow", "jax")
DEFAULT_BACKEND = "tensorflow"
# Distributions by name; the jax backend has only the first (see its make_strategy).
STRATEGIES = ("default", "mirrored", "multi-worker")


# What each backend needs installed, and how to get it (one line in an error).
_INSTALL = {
    "tensorflow": ("tensorflow", "pip install tensorflow (seqae's default dependency)"),
    "jax": ("jax", "pip install 'seqae[jax]' (on a GPU: pip install 'jax[cuda12]')"),
}


def requested_backend() -> str:
    """The backend ``KERAS_BACKEND`` names, else :data:`DEFAULT_BACKEND`."""
    return os.environ.get("KERAS_BACKEND") or DEFAULT_BACKEND


def check_installed(name: str) -> str:
    """``name`` if its package can be imported (looked up, not imported), else
    :class:`SeqaeError` naming the install command."""
    module, install = _INSTALL[name]
    if importlib.util.find_spec(module) is None:
        raise SeqaeError(f"the {name} backend is not installed: {install}")
    return name


def select_backend(name: str, *, source: str = "--backend") -> str:
    """Make ``name`` the Keras backend of this process (before Keras is imported) and return it.

    Raises :class:`SeqaeError` for an unknown name (``source`` says where it came from: the
    option, or ``KERAS_BACKEND``), a backend whose package is not installed, or when Keras
    already runs another backend in this process (a process has one backend; start a new one).
    """
    if name not in BACKENDS:
        given = f"KERAS_BACKEND={name}" if source == "KERAS_BACKEND" else f"--backend {name}"
        raise SeqaeError(f"{given}: seqae runs on {' or '.join(BACKENDS)}")
    if "keras" in sys.modules:
        running = sys.modules["keras"].backend.backend()
        if running != name:
            raise SeqaeError(f"--backend {name}: Keras already runs on {running} in this "
                             "process; start a new process (or set KERAS_BACKEND)")
    else:
        check_installed(name)
    os.environ["KERAS_BACKEND"] = name
    return name


def current_name() -> str:
    """The backend Keras runs on (imports Keras)."""
    import keras

    name = keras.backend.backend()
    if name not in BACKENDS:
        raise SeqaeError(f"seqae runs on the {' or '.join(BACKENDS)} backend of Keras, "
                         f"not {name}: set KERAS_BACKEND")
    return name


def current() -> Backend:
    """The backend-specific package of the backend Keras runs on."""
    name = current_name()
    try:
        module = importlib.import_module(f"autoencoder.backends.{name}")
    except ImportError as exc:
        raise SeqaeError(f"the {name} backend cannot start: {exc}") from None
    missing = missing_functions(module)
    if missing:  # a programming error in seqae, named at once rather than mid-training
        raise TypeError(f"autoencoder.backends.{name} lacks {', '.join(missing)}")
    return module


def hardware() -> dict:
    """What this process computes on (imports Keras and starts its backend): the machine, its
    cores (``cpu_count``; ``usable_cpus``, this process's share), the backend and its devices
    (:meth:`Backend.devices`), as a study's report records them."""
    return {"machine": platform.machine(), "processor": cpu_model(),
            "system": platform.system(), "cpu_count": os.cpu_count(),
            "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
            else None, "backend": current_name(), "devices": current().devices()}


# The modules whose first import starts a native runtime that writes to the process's stderr
# before anything can configure it: TensorFlow 2.21's absl lines ("All log messages before
# absl::InitializeLog() is called are written to STDERR", oneDNN, "Could not find cuda
# drivers"), which TF_CPP_MIN_LOG_LEVEL does not stop.
_RUNTIMES = ("keras", "tensorflow", "jax")


@contextlib.contextmanager
def quiet_start() -> Iterator[None]:
    """While the block runs, the first import of Keras, TensorFlow or JAX (wherever it happens)
    runs with the native standard error, file descriptor 2, sent to ``/dev/null``.

    Only those imports are silenced: native lines written later (a CUDA error in training)
    still show. Python's own output does too, even during them: ``sys.stderr`` writes to the
    real stderr meanwhile, and an import that fails raises as ever."""
    finder = _QuietImport()
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


class _QuietImport(importlib.abc.MetaPathFinder):
    """Finds one of :data:`_RUNTIMES` with the other finders, and has it executed with the
    native stderr silenced (:class:`_QuietLoader`)."""

    def find_spec(self, name, path=None, target=None):
        if name not in _RUNTIMES:
            return None
        later = sys.meta_path[sys.meta_path.index(self) + 1:] if self in sys.meta_path else []
        for finder in later:
            spec = getattr(finder, "find_spec", lambda *_: None)(name, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _QuietLoader(spec.loader)
                return spec
        return None


class _QuietLoader(importlib.abc.Loader):
    """Runs ``loader``'s module with the native stderr silenced; the module keeps ``loader``."""

    def __init__(self, loader: importlib.abc.Loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        module.__loader__ = module.__spec__.loader = self.loader
        with _native_stderr_silenced():
            self.loader.exec_module(module)


_silenced = 0  # how many _native_stderr_silenced blocks are open (one import runs another)


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """File descriptor 2 to ``/dev/null`` for the block; a ``sys.stderr`` that writes to it is
    replaced meanwhile by a :class:`_Forward` to a duplicate of the real stderr, which forwards
    to the old ``sys.stderr`` after the block (a module imported meanwhile may keep it)."""
    global _silenced
    if _silenced:
        yield
        return
    python_stderr = sys.stderr
    python_stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    forward = real = None
    if _writes_to_fd2(python_stderr):
        real = open(os.dup(saved), "w", buffering=1, encoding=python_stderr.encoding,
                    errors=python_stderr.errors)
        forward = sys.stderr = _Forward(real)
    _silenced += 1
    try:
        yield
    finally:
        _silenced -= 1
        if forward is not None:
            forward.target = python_stderr
            real.close()
            if sys.stderr is forward:
                sys.stderr = python_stderr
        os.dup2(saved, 2)
        os.close(saved)


class _Forward:
    """A stream that forwards everything to ``target``, which may change."""

    def __init__(self, target):
        self.target = target

    def write(self, text: str) -> int:
        return self.target.write(text)

    def __getattr__(self, name: str):
        return getattr(self.target, name)


def _writes_to_fd2(stream) -> bool:
    try:
        return stream.fileno() == 2
    except (AttributeError, OSError, ValueError):  # a test runner's buffer has no descriptor
        return False
