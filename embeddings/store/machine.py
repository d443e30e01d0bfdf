"""What a result was made with: library versions and the CPU, recorded beside every run."""

from __future__ import annotations

import platform
from importlib import metadata

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
