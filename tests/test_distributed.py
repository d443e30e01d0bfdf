"""Distributed training: cluster roles, mirrored replicas and a 2-worker cluster on loopback.

The cluster tests start real ``pipe train-ae --strategy multi-worker`` processes with their own
``TF_CONFIG`` and compare them with a single-process run of the same global batch.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
    pytest.skip("tf.distribute is TensorFlow's only", allow_module_level=True)

from autoencoder.backends.tensorflow.distribute import ClusterRole
from autoencoder.config import TrainConfig
from autoencoder.training.checkpoints import read_history
from embeddings.store.errors import SeqaeError
from pipelines.cli.cluster import free_ports, tf_config
from tests.conftest import embed_tiny_run, invoke

ROOT = Path(__file__).resolve().parents[1]
# 280 training sentences in batches of 9: the last global batch holds one sentence, so one
# worker's share of it is empty.
TRAIN = ["--seq-len", "12", "--latent", "8", "--batch-size", "9", "--val-sentences", "50",
         "--patience", "0"]
DIGEST = re.compile(r"final weights sha256 ([0-9a-f]{64})")


def pipe(*args, env=None) -> subprocess.CompletedProcess:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **(env or {}))
    return subprocess.run([sys.executable, "-m", "pipelines", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def assert_same_history(a: Path, b: Path, epochs: int) -> None:
    """Two models' per-epoch losses and accuracies agree up to float summation order."""
    rows_a, rows_b = read_history(a / "history.csv"), read_history(b / "history.csv")
    assert [r["epoch"] for r in rows_a] == [r["epoch"] for r in rows_b] == list(range(1, epochs + 1))
    for x, y in zip(rows_a, rows_b):
        for key in ("train_loss", "val_loss", "val_token_accuracy", "grad_norm"):
            np.testing.assert_allclose(x[key], y[key], rtol=1e-4, err_msg=key)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A tiny embedded run with a 2-epoch single-process reference model, ``reference``."""
    run_dir = embed_tiny_run(tmp_path_factory.mktemp("distributed"))
    result = invoke("train-ae", "--run", run_dir, *TRAIN, "--epochs", 2, "--name", "reference")
    assert result.exit_code == 0, result.output
    return run_dir


# -- roles and options (no cluster) -----------------------------------------------------------
@pytest.mark.parametrize("config, chief, workers", [
    (None, True, 1),
    ({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 0}}, True, 2),
    ({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}, False, 2),
    ({"cluster": {"chief": ["c:0"], "worker": ["a:1"]}, "task": {"type": "worker", "index": 0}},
     False, 2),
    ({"cluster": {"chief": ["c:0"], "worker": ["a:1"]}, "task": {"type": "chief", "index": 0}},
     True, 2),
])
def test_cluster_role_from_tf_config(config, chief, workers):
    role = ClusterRole.from_env("" if config is None else json.dumps(config))
    assert (role.is_chief, role.n_workers) == (chief, workers)


@pytest.mark.parametrize("raw", ["{not json", '{"cluster": {}}', '{"cluster": {"worker": ["a:1"]}, '
                                 '"task": {"type": "worker", "index": 3}}'])
def test_malformed_tf_config_is_one_clear_error(raw):
    with pytest.raises(SeqaeError, match="TF_CONFIG must be JSON like"):
        ClusterRole.from_env(raw)


def test_loopback_cluster_configs():
    ports = free_ports(3)
    assert len(set(ports)) == 3
    roles = [ClusterRole.from_env(tf_config(ports, i)) for i in range(3)]
    assert [r.is_chief for r in roles] == [True, False, False]
    assert {r.n_workers for r in roles} == {3}


def test_scale_lr_multiplies_by_replicas():
    assert TrainConfig(lr=0.01).learning_rate(4) == 0.01
    assert TrainConfig(lr=0.01, scale_lr=True).learning_rate(4) == pytest.approx(0.04)


def test_cluster_demo_forwards_every_option(monkeypatch, tmp_path):
    """Workers get the very options given (flags, negated flags, values), not the demo's own."""
    import pipelines.cli.cluster

    seen = {}
    monkeypatch.setattr(pipelines.cli.cluster, "run_cluster_demo",
                        lambda n, args: seen.update(n=n, args=args))
    result = invoke("train-ae", "--run", tmp_path, "--cluster-demo", 3, "--no-center", "--lr", 0.5,
                    "--scale-lr", "--name", "m", "-q")
    assert result.exit_code == 0, result.output
    args = seen["args"]
    assert seen["n"] == 3 and args[0] == "train-ae"
    pairs = dict(zip(args[1:], args[2:]))
    assert pairs["--run"] == str(tmp_path) and pairs["--lr"] == "0.5" and pairs["--name"] == "m"
    assert {"--no-center", "--scale-lr", "-q"} <= set(args)
    assert not {"--cluster-demo", "--strategy", "--resume", "--center"} & set(args)


def test_distribution_option_errors(tmp_path):
    import tensorflow as tf

    tf.config.list_logical_devices()  # start TensorFlow here, as every other test does
    for args, message in [
        (["--cluster-demo", 2, "--strategy", "mirrored"], "--cluster-demo runs"),
        (["--replicas", 2], "--replicas applies to --strategy mirrored only"),
        # TensorFlow started in this test process with one CPU device: it cannot be split now.
        (["--strategy", "mirrored", "--replicas", 3], "start a new process"),
    ]:
        result = invoke("train-ae", "--run", tmp_path, *args)
        assert result.exit_code != 0 and "Traceback" not in result.output
        assert message in result.output, result.output


# -- real distribution ------------------------------------------------------------------------
@pytest.mark.slow  # two logical CPUs: about 30 s
@pytest.mark.long  # in CI, test_mirrored_batches_of_one_sentence_... checks the same equality
def test_mirrored_on_two_logical_cpus_matches_one_device(run):
    result = pipe("train-ae", "--run", run, *TRAIN, "--epochs", 2, "--name", "mirrored",
                  "--strategy", "mirrored", "--replicas", 2)
    assert result.returncode == 0, result.stderr
    assert "2 replica(s)" in result.stderr
    assert_same_history(run / "models" / "mirrored", run / "models" / "reference", 2)


@pytest.mark.slow  # two logical CPUs: about 30 s
def test_mirrored_batches_of_one_sentence_leave_a_replica_empty(run):
    """Every global batch holds one sentence, so replica 1 never has a row: it must count zero
    tokens, and the run must equal one device's."""
    tiny = [*TRAIN, "--batch-size", "1", "--max-sentences", "6", "--epochs", "2"]
    result = pipe("train-ae", "--run", run, *tiny, "--name", "mirrored-one",
                  "--strategy", "mirrored", "--replicas", 2)
    assert result.returncode == 0, result.stderr
    single = invoke("train-ae", "--run", run, *tiny, "--name", "single-one")
    assert single.exit_code == 0, single.output
    assert_same_history(run / "models" / "mirrored-one", run / "models" / "single-one", 2)


@pytest.mark.slow  # a cluster of worker processes: about a minute or more
@pytest.mark.long
def test_two_workers_agree_match_one_and_only_the_chief_writes(run, tmp_path):
    """Worker 1 reads its own copy of the run directory, so that what it writes would show."""
    copy = tmp_path / "worker1-run"
    shutil.copytree(run, copy)
    before = tree_digest(copy)
    ports = free_ports(2)
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "pipelines", "train-ae", "--run", str(run_dir), *TRAIN,
             "--epochs", "2", "--name", "cluster", "--strategy", "multi-worker"],
            cwd=ROOT, env=dict(os.environ, TF_CONFIG=tf_config(ports, i), TF_CPP_MIN_LOG_LEVEL="3"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i, run_dir in enumerate((run, copy))
    ]
    outputs = [w.communicate(timeout=300) for w in workers]
    for worker, (_, stderr) in zip(workers, outputs):
        assert worker.returncode == 0, stderr
    digests = [DIGEST.search(stderr).group(1) for _, stderr in outputs]
    assert digests[0] == digests[1]  # identical weights on both workers
    assert outputs[0][0].startswith("cluster: 2 epochs") and outputs[1][0] == ""
    assert tree_digest(copy) == before  # worker 1 wrote nothing, not even the lock
    chief_model = run / "models" / "cluster"
    assert {"best.keras", "last.keras", "history.csv", "loss.png", "state.json",
            "manifest.json"} <= {p.name for p in chief_model.iterdir()}
    assert_same_history(chief_model, run / "models" / "reference", 2)


@pytest.mark.slow  # a cluster of worker processes: about a minute or more
@pytest.mark.long
@pytest.mark.parametrize("first, then", [(2, 1), (1, 2)])
def test_checkpoints_resume_on_another_number_of_workers(run, first, then):
    """One epoch on ``first`` workers, the second on ``then``: the same as 2 epochs on one."""
    name = f"resume-{first}-{then}"

    def train(workers, *extra):
        args = ["train-ae", "--run", run, *TRAIN, "--name", name, *extra]
        if workers == 1:
            result = invoke(*args)
            assert result.exit_code == 0, result.output
        else:
            result = pipe(*args, "--cluster-demo", workers)
            assert result.returncode == 0, result.stderr

    train(first, "--epochs", 1)
    train(then, "--epochs", 2, "--resume")
    assert_same_history(run / "models" / name, run / "models" / "reference", 2)


@pytest.mark.slow  # a cluster of worker processes: about a minute or more
@pytest.mark.long
def test_ctrl_c_stops_a_cluster_at_one_step_and_resumes_on_one_worker(run):
    """SIGINT to ``--cluster-demo 2`` mid-epoch: both workers stop after the same step, the
    chief saves a mid-epoch checkpoint, and one worker finishes the run as if uninterrupted."""
    import signal
    import time

    small_batches = [*TRAIN, "--batch-size", "2"]  # many steps per epoch: land inside one
    state = run / "models" / "interrupted" / "state.json"
    demo = subprocess.Popen(
        [sys.executable, "-m", "pipelines", "train-ae", "--run", str(run), *small_batches,
         "--epochs", "500", "--name", "interrupted", "--cluster-demo", "2"],
        cwd=ROOT, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 180
    while not (state.exists() and json.loads(state.read_text())["epoch"] >= 1):
        assert demo.poll() is None and time.monotonic() < deadline, demo.communicate()[1]
        time.sleep(0.05)
    demo.send_signal(signal.SIGINT)
    _, stderr = demo.communicate(timeout=180)
    assert demo.returncode == 130, stderr
    assert "--resume" in stderr and "Traceback" not in stderr
    stops = re.findall(r"\[worker (\d)\] Error: interrupted (in|after) epoch (\d+)(?: after step (\d+))?",
                       stderr)
    assert {worker for worker, *_ in stops} == {"0", "1"} and len({tuple(s[1:]) for s in stops}) == 1
    target = json.loads(state.read_text())["epoch"] + 2
    for name, extra in (("interrupted", ["--resume"]), ("uninterrupted", [])):
        result = invoke("train-ae", "--run", run, *small_batches, "--epochs", target,
                        "--name", name, *extra)
        assert result.exit_code == 0, result.output
    assert_same_history(run / "models" / "interrupted", run / "models" / "uninterrupted", target)
