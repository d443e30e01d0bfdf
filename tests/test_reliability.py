"""The run lock, manifest verification and pickle-free loading, through the CLI on a tiny run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from embeddings.store.manifests import write_manifest
from tests.conftest import assert_clean_error, held_elsewhere, invoke, read_json, tiny_ae

WRITERS = {
    "embed": ["--corpus", "default"],
    "train-ae": tiny_ae(1),
    "compare": [],
    "run": [],
}


def reseal(folder):
    """Rewrite ``folder``'s manifest over its current files, as an attacker who can write the
    run directory could: what remains to stop a planted file is the loader itself."""
    manifest = read_json(folder / "manifest.json")
    write_manifest(folder, tuple(manifest["files"]), manifest["options"])


# -- the run lock -------------------------------------------------------------------------------

@pytest.mark.parametrize("command", WRITERS)
def test_a_second_writer_refuses_with_the_holder(tmp_path, command):
    with held_elsewhere(tmp_path, "pipe other"):
        result = invoke(command, "--run", tmp_path, *WRITERS[command])
    assert_clean_error(result, f"in use by pid {os.getpid()} (pipe other)", "another --run")


def test_readers_do_not_take_the_lock(trained):
    with held_elsewhere(trained, "pipe train-ae"):
        result = invoke("reconstruct", "--run", trained, "the cat sees the dog")
        assert result.exit_code == 0, result.output
        assert invoke("export", "--run", trained, trained / "v.bin").exit_code == 0


def test_the_lock_of_a_killed_process_does_not_block(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from embeddings.store.locks import run_lock
        with run_lock({str(tmp_path)!r}, "pipe train-ae"):
            print("locked", flush=True)
            time.sleep(600)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert_clean_error(invoke("compare", "--run", tmp_path), f"pid {holder.pid} (pipe train-ae)")
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    assert (tmp_path / ".lock").exists()  # left behind by the dead holder, and harmless:
    assert_clean_error(invoke("compare", "--run", tmp_path), "no models")


# -- manifests ----------------------------------------------------------------------------------

def _truncate(path):
    path.write_bytes(path.read_bytes()[:-10])


def _flip_a_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x20
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("artifact, damage, command", [
    ("embeddings/vectors.npy", _truncate, ["export", "OUT"]),
    ("embeddings/vectors.npy", _flip_a_byte, ["compare"]),
    ("corpus/train.txt", _flip_a_byte, ["train-ae", "--name", "other", *tiny_ae(1)]),
    ("corpus/vocab.tsv", _truncate, ["embed", "--corpus", "CORPUS", "--vector-size", "16",
                                     "--min-count", "1", "--epochs", "2", "--workers", "1"]),
    ("models/embedding-cosine/best.keras", _truncate, ["reconstruct", "a man"]),
    ("models/embedding-cosine/vocab.txt", _flip_a_byte, ["compare"]),
])
def test_a_damaged_artifact_is_refused_naming_it(trained, artifact, damage, command):
    damage(trained / artifact)
    corpus = read_json(trained / "corpus" / "stats.json")["config"]["source"]
    args = [{"OUT": trained / "out.bin", "CORPUS": corpus}.get(a, a) for a in command]
    result = invoke(args[0], "--run", trained, *args[1:])
    assert_clean_error(result, artifact.rsplit("/", 1)[1], "truncated or altered" if
                       damage is _truncate else "altered")
    assert not (trained / "out.bin").exists()


def test_manifests_list_every_artifact_with_its_options(trained):
    corpus = read_json(trained / "corpus" / "manifest.json")
    assert set(corpus["files"]) == {"train.txt", "val.txt", "test.txt", "vocab.tsv", "stats.json"}
    assert corpus["options"]["config"]["unit"] == "sentence"
    model = read_json(trained / "models" / "embedding-cosine" / "manifest.json")
    assert {"best.keras", "last.keras", "config.json", "vocab.txt"} <= set(model["files"])
    assert model["options"]["train"]["epochs"] == 1
    assert all(len(f["sha256"]) == 64 and f["size"] > 0 for f in model["files"].values())


# -- nothing executes on load ------------------------------------------------------------------

class _Plant:
    """Unpickling this creates ``marker``: proof that a pickle was loaded."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def test_pickled_vectors_are_refused_and_never_unpickled(trained):
    marker = trained.parent / "pwned"
    vectors = trained / "embeddings" / "vectors.npy"
    rows = np.load(vectors).shape[0]
    planted = np.empty(rows, dtype=object)
    planted[:] = [_Plant(marker)] * rows
    np.save(vectors, planted, allow_pickle=True)
    reseal(trained / "embeddings")
    for command in (["export", trained / "out.bin"], ["compare"], ["reconstruct", "a man"]):
        assert_clean_error(invoke(command[0], "--run", trained, *command[1:]), "vectors.npy")
    assert not marker.exists()


def test_a_lambda_layer_is_refused_and_never_run(trained):
    import keras

    marker = trained.parent / "pwned"
    path = str(marker)  # the closure Keras serialises must be plain data
    model = keras.Sequential([keras.Input((2,)), keras.layers.Lambda(
        lambda x: x + 0 * len(open(path, "w").name))])  # noqa: SIM115 (the payload)
    model.save(trained / "models" / "embedding-cosine" / "best.keras")
    marker.unlink()  # building the model ran the payload once; loading must not run it again
    reseal(trained / "models" / "embedding-cosine")
    for command in (["compare"], ["reconstruct", "a man"]):
        assert_clean_error(invoke(command[0], "--run", trained, *command[1:]), "best.keras")
    assert not marker.exists()


def test_a_replaced_file_keeps_its_mode_and_a_new_one_gets_the_umask(tmp_path):
    from embeddings.store.files import atomic_open

    private = tmp_path / "private.txt"
    private.write_text("old")
    private.chmod(0o600)
    with atomic_open(private) as handle:
        handle.write("new")
    assert private.read_text() == "new" and (private.stat().st_mode & 0o777) == 0o600
    old_mask = os.umask(0o027)
    try:
        with atomic_open(tmp_path / "fresh.txt") as handle:
            handle.write("x")
    finally:
        os.umask(old_mask)
    assert (tmp_path / "fresh.txt").stat().st_mode & 0o777 == 0o640
