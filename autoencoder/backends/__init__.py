"""Which Keras backend trains and runs the models, and the one module specific to each.

Everything else (model, losses, training loop, checkpoints, evaluation) is written against
``keras`` and ``keras.ops`` and runs on any of :data:`BACKENDS`. What cannot be, the compiled
train and forward steps and the distribution over devices, lives in one module a backend,
``autoencoder.backends.NAME``, which provides the functions of :class:`~autoencoder.backends.base.Backend`
(checked when the module is first used).

The backend is Keras's own: the ``KERAS_BACKEND`` variable, read once when Keras is first
imported. :func:`select_backend` sets it; the command line calls it before importing Keras.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys

from autoencoder.backends.base import Backend, missing_functions
from embeddings.core.io import SeqaeError

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
    """The backend-specific module of the backend Keras runs on."""
    name = current_name()
    try:
        module = importlib.import_module(f"autoencoder.backends.{name}")
    except ImportError as exc:
        raise SeqaeError(f"the {name} backend cannot start: {exc}") from None
    missing = missing_functions(module)
    if missing:  # a programming error in seqae, named at once rather than mid-training
        raise TypeError(f"autoencoder.backends.{name} lacks {', '.join(missing)}")
    return module
