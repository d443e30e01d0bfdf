"""Backend neutrality: no eager TensorFlow or JAX, and the same commands on either backend."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _python(code: str, env: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
                          timeout=600, **kwargs)


def test_imports_and_help_start_neither_tensorflow_nor_jax():
    done = _python(
        "import sys\n"
        "from embeddings.io import SeqaeError\n"
        "assert 'gensim' not in sys.modules and 'nltk' not in sys.modules, 'embeddings.io'\n"
        "import embeddings, autoencoder, pipelines\n"
        "from pipelines.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = [m for m in ('tensorflow', 'jax', 'keras') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    assert done.returncode == 0, done.stderr
    assert "train-ae" in done.stdout
