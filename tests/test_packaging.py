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
