"""What ``pip install`` puts on a machine: seqae's packages and licence, nothing of the checkout."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # builds a wheel in an isolated build environment
def test_the_wheel_holds_only_seqae_packages_and_the_license(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp_path, REPO],
                   check=True, capture_output=True, timeout=600)
    (wheel,) = tmp_path.glob("seqae-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names if not name.startswith("seqae-")} == {
        "embeddings", "autoencoder", "pipelines"}
    assert any(name.endswith("/licenses/LICENSE") for name in names)
    assert {"embeddings/py.typed", "autoencoder/py.typed", "pipelines/py.typed"} <= set(names)
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    runtime = [line for line in metadata.splitlines()
               if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert not any(name in line for line in runtime for name in ("psutil", "threadpoolctl"))


def test_no_private_scikit_learn_names_in_the_library():
    for package in ("embeddings", "autoencoder", "pipelines"):
        for path in (REPO / package).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            assert "sklearn.datasets._" not in text, path


def _imports(path: Path) -> list[tuple[str, tuple[str, ...]]]:
    """``(module, names)`` of every import in ``path``, at any depth (lazy ones too)."""
    import ast

    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, ()) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, tuple(alias.name for alias in node.names)))
    return found


# Each package uses only those above it (README, Design notes).
LAYERS = ("embeddings", "autoencoder", "pipelines")


@pytest.mark.parametrize("package", LAYERS)
def test_each_package_imports_only_those_above_it(package):
    below = LAYERS[LAYERS.index(package) + 1:]
    for path in (REPO / package).rglob("*.py"):
        wrong = [module for module, _ in _imports(path) if module.split(".")[0] in below]
        assert not wrong, f"{path.relative_to(REPO)} imports {wrong}"


def test_the_one_hot_cap_is_read_from_the_autoencoder_config():
    """Defined with the corpus statistics (below the autoencoder), read from its config."""
    from autoencoder.config import ONE_HOT_CAP, AutoencoderConfig
    from pipelines.study_config import StudyModel

    assert (AutoencoderConfig(kind="onehot").vocab_cap
            == StudyModel("m", "onehot", "ce", "a model").vocab_cap == ONE_HOT_CAP)
    for package in ("autoencoder", "pipelines"):
        for path in (REPO / package).rglob("*.py"):
            if path == REPO / "autoencoder" / "config.py":
                continue
            for module, names in _imports(path):
                assert not (module.startswith("embeddings") and "ONE_HOT_CAP" in names), path
