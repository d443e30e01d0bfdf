"""Backend neutrality: no eager TensorFlow or JAX, and the same commands on either backend."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from autoencoder.training.checkpoints import read_history
from embeddings.store.errors import SeqaeError
from tests.conftest import read_json, write_tiny_corpus

REPO = Path(__file__).resolve().parents[1]


def _python(code: str, env: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
                          timeout=600, **kwargs)


def test_imports_and_help_start_neither_tensorflow_nor_jax():
    done = _python(
        "import sys\n"
        "from embeddings.store.errors import SeqaeError\n"
        "assert 'gensim' not in sys.modules and 'nltk' not in sys.modules, 'embeddings.store.errors'\n"
        "import embeddings, autoencoder, pipelines\n"
        "from pipelines.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "from benchmarks import figures\n"  # docs/usage.md's reference: every command's --help
        "for command in main.commands:\n"
        "    figures.render(figures.COMMAND_BLOCK + command)\n"
        "heavy = [m for m in ('tensorflow', 'jax', 'keras') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    assert done.returncode == 0, done.stderr
    assert "train-ae" in done.stdout


@pytest.mark.parametrize("name", ["tensorflow", "jax"])
def test_each_backend_package_has_the_interface_and_lists_this_machines_devices(name):
    """Both packages, whichever backend Keras runs: every function of the interface, and the
    devices as ``PLATFORM:NAME``."""
    from autoencoder.backends import BACKENDS, check_installed
    from autoencoder.backends.base import missing_functions

    assert name in BACKENDS
    try:
        check_installed(name)
    except SeqaeError:
        pytest.skip(f"{name} is not installed")
    module = importlib.import_module(f"autoencoder.backends.{name}")
    assert missing_functions(module) == []
    devices = module.devices()
    assert devices and all(isinstance(d, str) and all(d.partition(":")[::2]) for d in devices), devices


def test_hardware_names_the_running_backend_and_its_devices():
    from autoencoder.backends import current, current_name, hardware

    described = hardware()
    assert described["backend"] == current_name()
    assert described["devices"] == current().devices()
    assert {"machine", "processor", "system", "cpu_count", "usable_cpus"} <= set(described)


def _has_jax() -> bool:
    return _python("import jax").returncode == 0


needs_jax = pytest.mark.skipif(not _has_jax(), reason="jax is not installed")
TINY_EMBED = ["--vector-size", "16", "--min-count", "1", "--epochs", "2", "--workers", "1"]
TINY_AE = ["--seq-len", "8", "--latent", "8", "--batch-size", "32", "--val-sentences", "20", "-q"]


def _pipe(*args, backend: str, no_tensorflow: Path | None = None) -> subprocess.CompletedProcess:
    """``pipe ARGS`` in a fresh process on ``backend``; with ``no_tensorflow``, a folder whose
    ``tensorflow`` package fails to import comes first on the path."""
    path = os.pathsep.join(str(p) for p in (no_tensorflow, REPO) if p)
    return subprocess.run([sys.executable, "-m", "pipelines", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": path, "KERAS_BACKEND": backend,
                               "TF_CPP_MIN_LOG_LEVEL": "3"})


@pytest.mark.slow  # fresh processes without TensorFlow
@needs_jax
def test_embed_train_and_compare_without_tensorflow(tmp_path):
    blocker = tmp_path / "blocker" / "tensorflow"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('no TensorFlow on this machine')\n")
    run = tmp_path / "run"
    corpus = write_tiny_corpus(tmp_path / "corpus")
    for args in (["embed", "--run", run, "--corpus", corpus, *TINY_EMBED],
                 ["train-ae", "--run", run, "--backend", "jax", "--epochs", "1", *TINY_AE],
                 ["compare", "--run", run]):
        done = _pipe(*args, backend="jax", no_tensorflow=blocker.parent)
        assert done.returncode == 0, done.stderr
    assert "embedding-cosine" in done.stdout
    assert read_json(run / "models" / "embedding-cosine" / "config.json")["backend"] == "jax"
    refused = _pipe("train-ae", "--run", run, "--strategy", "mirrored", "--name", "m",
                    backend="jax", no_tensorflow=blocker.parent)
    assert refused.returncode != 0
    assert [line for line in refused.stderr.splitlines() if line.startswith("Error")] == [
        "Error: --strategy mirrored needs --backend tensorflow (tf.distribute); the jax backend "
        "trains on one device"]


@pytest.mark.slow  # four fresh processes, each starting a backend
@needs_jax
def test_a_model_resumes_and_decodes_under_the_other_backend(tiny_run):
    """One model, each epoch on the other backend (TensorFlow, JAX, TensorFlow), then read on
    JAX: both directions of a checkpoint's journey, the optimizer state included."""
    import keras

    model = tiny_run / "models" / "embedding-cosine"
    steps = None
    for epoch, backend in enumerate(("tensorflow", "jax", "tensorflow"), 1):
        resume = ["--resume"] if epoch > 1 else []
        done = _pipe("train-ae", "--run", tiny_run, "--epochs", epoch, *resume, *TINY_AE,
                     backend=backend)
        assert done.returncode == 0, done.stderr
        assert [row["epoch"] for row in read_history(model / "history.csv")] == list(range(1, epoch + 1))
        assert read_json(model / "state.json")["epoch"] == epoch
        # The optimizer state came along: its step counter went on from the other backend's.
        iterations = int(keras.saving.load_model(model / "last.keras").optimizer.iterations.numpy())
        steps = steps or iterations
        assert iterations == epoch * steps
    done = _pipe("reconstruct", "--run", tiny_run, "the cat sees the house", backend="jax")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("model:  embedding-cosine")


@pytest.mark.slow  # fresh processes without TensorFlow
@needs_jax
def test_gpu_script_runs_at_a_tiny_size_on_the_cpu(tmp_path):
    corpus = write_tiny_corpus(tmp_path / "corpus")
    (tmp_path / "no_wheels").mkdir()
    done = subprocess.run(
        ["bash", str(REPO / "benchmarks" / "gpu.sh"), str(corpus)], capture_output=True,
        text=True, timeout=600, cwd=tmp_path,
        env={**os.environ, "SEQAE_SIZE": "tiny", "SEQAE_WORK": str(tmp_path / "work"),
             "SEQAE_WHEELS": str(tmp_path / "no_wheels"), "PYTHON": sys.executable,
             "JAX_PLATFORMS": "cpu"})
    assert done.returncode == 0, done.stderr
    figures = dict(line.split(": ", 1) for line in done.stdout.splitlines() if ": " in line)
    assert figures["epochs"].startswith("2 ")
    assert float(figures["sentences/s"]) > 0
    assert 0 <= float(figures["padding share"]) < 1
    assert 0 <= float(figures["validation token accuracy"]) <= 1
    assert "(cpu)" in figures["device"]


@pytest.mark.slow  # a study of two models, two rates, two seeds, in fresh processes
@needs_jax
def test_gpu_script_runs_a_tiny_study_on_the_cpu(tmp_path):
    corpus = write_tiny_corpus(tmp_path / "corpus")
    (tmp_path / "no_wheels").mkdir()
    done = subprocess.run(
        ["bash", str(REPO / "benchmarks" / "gpu.sh"), "study", str(corpus)], capture_output=True,
        text=True, timeout=600, cwd=tmp_path,
        env={**os.environ, "SEQAE_SIZE": "tiny", "SEQAE_WORK": str(tmp_path / "work"),
             "SEQAE_WHEELS": str(tmp_path / "no_wheels"), "PYTHON": sys.executable,
             "SEQAE_RESULTS": str(tmp_path / "results"), "JAX_PLATFORMS": "cpu",
             "SEQAE_STUDY_MODELS": "embedding-cosine-ar,embedding-cosine",
             "SEQAE_STUDY_SEEDS": "0,1"})
    assert done.returncode == 0, done.stderr
    assert "report in" in done.stdout
    report = json.loads((tmp_path / "results" / "report.json").read_text())
    assert list(report["models"]) == ["embedding-cosine",
                                      "embedding-cosine-ar"]  # both decoders, in study order
    assert report["config"]["seeds"] == [0, 1] and len(report["config"]["lrs"]) == 2
    assert report["hardware"]["backend"] == "jax"
    # Every run's trace comes back with the report: the sweep's and each seed's.
    runs = {p.stem for p in (tmp_path / "results" / "steps").glob("*.csv")}
    assert {r for entry in report["models"].values() for r in entry["runs"]} <= runs
    # Each sweeping model: both rates on seed 0 (the chosen one goes on), and seed 1.
    assert len(runs) == 3 + 3
    for name in ("report.md", "trace.png", "curves.png", "config.json"):
        assert (tmp_path / "results" / name).stat().st_size > 0


# What TensorFlow 2.21 writes to the native stderr as it starts, whatever TF_CPP_MIN_LOG_LEVEL.
START_UP = ("absl", "oneDNN", "cuda")


def _start_up_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines()
            if any(marker.lower() in line.lower() for marker in START_UP)]


def _reconstruct(run: Path, *options: str, backend: str = "tensorflow") -> subprocess.CompletedProcess:
    """``pipe reconstruct`` in a fresh process (the native stderr is only seen there), with no
    TF_CPP_MIN_LOG_LEVEL of the tests'."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run([sys.executable, "-m", "pipelines", "reconstruct", "--run", str(run),
                           "--backend", backend, *options, "the cat sees the dog ."], cwd=REPO,
                          capture_output=True, text=True, timeout=600,
                          env={**env, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    assert "output:" in done.stdout
    return done


def test_the_backends_start_up_lines_are_printed_only_with_vv(trained):
    assert _start_up_lines(_reconstruct(trained).stderr) == []
    if not _start_up_lines(_reconstruct(trained, "-vv").stderr):
        alone = _python("import keras", env={"KERAS_BACKEND": "tensorflow"})
        if not _start_up_lines(alone.stderr):
            pytest.skip("this TensorFlow writes no start-up lines")
        pytest.fail(f"-vv hid TensorFlow's start-up lines: {_start_up_lines(alone.stderr)}")


@pytest.mark.slow
def test_pipe_run_prints_no_backend_notice_before_its_own_first_line(tmp_path):
    """The whole pipeline in a fresh process: seqae's own line comes first on stderr, and no
    start-up line of TensorFlow's comes at all."""
    from tests.conftest import write_tiny_corpus

    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run(
        [sys.executable, "-m", "pipelines", "run", "--run", str(tmp_path / "run"), "--corpus",
         str(write_tiny_corpus(tmp_path / "corpus")), "--vector-size", "16", "--min-count", "1",
         "--w2v-epochs", "1", "--seq-len", "8", "--latent", "8", "--epochs", "1",
         "--batch-size", "32", "--val-sentences", "20", "--eval-sentences", "10"],
        cwd=REPO, capture_output=True, text=True, timeout=600, env={**env, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    assert "stage 1/3: embed" in done.stderr.splitlines()[0]
    assert _start_up_lines(done.stderr) == []


def test_quiet_start_silences_only_the_native_stderr_of_the_import(tmp_path):
    """A stand-in ``keras`` writes to file descriptor 2, to ``sys.stderr``, warns, and keeps a
    handler on ``sys.stderr`` (as JAX does); only the first is silenced, and the handler still
    writes after the block."""
    (tmp_path / "keras").mkdir()
    (tmp_path / "keras" / "__init__.py").write_text(
        "import logging, os, sys, warnings\n"
        "os.write(2, b'native start-up line\\n')\n"
        "print('python line', file=sys.stderr)\n"
        "warnings.warn('python warning')\n"
        "handler = logging.StreamHandler(sys.stderr)\n")
    done = _python(
        "import os, sys, logging\n"
        "from autoencoder.backends import quiet_start\n"
        "with quiet_start():\n"
        "    import keras\n"
        "assert keras.__spec__.loader is keras.__loader__ and sys.stderr is sys.__stderr__\n"
        "keras.handler.emit(logging.makeLogRecord({'msg': 'kept handler line'}))\n"
        "os.write(2, b'native line after\\n')\n",
        env={"PYTHONPATH": os.pathsep.join((str(tmp_path), str(REPO)))})
    assert done.returncode == 0, done.stderr
    assert "native start-up line" not in done.stderr and "Logging error" not in done.stderr
    for line in ("python line", "python warning", "kept handler line", "native line after"):
        assert line in done.stderr


@pytest.mark.slow  # two fresh processes, each starting JAX and TensorFlow
@needs_jax
def test_jax_platform_notes_are_printed_only_with_v(trained):
    quiet = _reconstruct(trained, backend="jax").stderr
    assert "backend '" not in quiet and _start_up_lines(quiet) == [], quiet
    assert "Initializing backend 'cpu'" in _reconstruct(trained, "-v", backend="jax").stderr


@pytest.mark.parametrize("how", ["option", "environment"])
def test_a_backend_that_is_not_installed_is_one_line_naming_the_install(tmp_path, how):
    """JAX hidden from the process (as without the jax extra): ``--backend jax`` or
    ``KERAS_BACKEND=jax`` is one ``Error:`` line with the install command, before any work."""
    argv = ["compare", "--run", str(tmp_path), *(["--backend", "jax"] if how == "option" else [])]
    code = ("import sys\nsys.modules['jax'] = None  # what find_spec reports for a missing package\n"
            f"from pipelines.cli import main\nmain({argv!r})\n")
    result = _python(code, env={"KERAS_BACKEND": "jax"} if how == "environment" else {})
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "the jax backend is not installed: pip install 'seqae[jax]'" in errors[0]
    assert ("KERAS_BACKEND" in result.stderr) == (how == "environment")


def test_importing_seqae_changes_no_process_state(tmp_path):
    """No umask call, no environment variable, no matplotlib backend: importing the packages
    (and the plotting and file modules) leaves a notebook's process as it was."""
    code = (
        "import os, sys\n"
        "calls = []\n"
        "real = os.umask\n"
        "os.umask = lambda mask: calls.append(mask) or real(mask)\n"
        "import matplotlib\n"
        "before_env, before_backend = dict(os.environ), matplotlib.get_backend()\n"
        "import embeddings, autoencoder, pipelines, pipelines.cli, embeddings.store.errors, embeddings.core.progress\n"
        "import pipelines.plots\n"
        "from pipelines.plots import plot_accuracy_by_length\n"
        "plot_accuracy_by_length({'m': {'1-5': 0.5}}, __import__('pathlib').Path(sys.argv[1]))\n"
        "assert not calls, calls\n"
        "assert dict(os.environ) == before_env, set(os.environ.items()) ^ set(before_env.items())\n"
        "assert matplotlib.get_backend() == before_backend, matplotlib.get_backend()\n"
        "assert 'keras' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "plot.png")],
                            capture_output=True, text=True, cwd=REPO, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(REPO), "MPLBACKEND": "svg"})
    assert result.returncode == 0, result.stderr
