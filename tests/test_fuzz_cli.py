"""Property tests over the command line: generated option values, names and corpus files.

Whatever is typed, every command ends within a time limit either successfully or with one
``Error:`` line, a non-zero exit and no traceback; a command that fails leaves every file of the
run directory as it was; a model name never reaches outside ``RUN/models``.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import invoke, snapshot, unchanged_but_lock

# Each example runs a command in process (many train a model): minutes, so with the slow tests.
pytestmark = pytest.mark.slow

FUZZ = settings(max_examples=25, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow,
                                       HealthCheck.function_scoped_fixture])
HANG_SECONDS = 120


@contextlib.contextmanager
def no_hang(seconds: int = HANG_SECONDS):
    """Fail the example if the command runs past ``seconds`` (a hang, not a slow success)."""

    def alarm(signum, frame):
        raise TimeoutError(f"command still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def check_outcome(result, run: Path, before: dict, verify=None) -> None:
    """Success (then ``verify(run)``, which must find what the command wrote readable), or
    exactly one ``Error:`` line, no traceback, and the run as it was."""
    assert not isinstance(result.exception, TimeoutError), "hang"
    if result.exit_code == 0:
        if verify is not None:
            verify(run)
        return
    assert result.exit_code in (1, 2), (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1, result.output
    assert unchanged_but_lock(before, snapshot(run)), result.output


def embedding_loads(run: Path) -> None:
    """The corpus and vectors a successful embed wrote verify against their manifests."""
    from embeddings import load_corpus
    from pipelines import load_embeddings

    assert load_corpus(run).stats["splits"]["train"]["sentences"] > 0
    assert len(load_embeddings(run)) > 0


def every_model_loads(run: Path) -> None:
    """Every model of the run (the one just trained included) loads and verifies."""
    from embeddings.store.rundir import list_models
    from pipelines.models import load_run_model

    for name in list_models(run):
        assert load_run_model(run, name)[0] == name


junk = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", " ", "nan", "inf", "-inf", "-0", "1e400", "0x10", " 3", "1_0", "٣"]),
)


def numbers(low: int, high: int):
    """Values around ``[low, high]``: inside, just outside, far outside, and junk."""
    return st.one_of(st.integers(low, high).map(str), st.sampled_from(
        [str(low - 1), str(high + 1), str(-(2**63)), str(2**64)]), junk)


EMBED_OPTIONS = {
    "--vector-size": numbers(1, 64), "--window": numbers(1, 1000), "--min-count": numbers(1, 50),
    "--negative": numbers(1, 100), "--epochs": numbers(1, 3), "--workers": numbers(1, 4),
    "--max-docs": numbers(1, 30), "--paragraph-lines": numbers(1, 20), "--seed": numbers(0, 9),
    "--unit": st.sampled_from(["sentence", "paragraph", "word", ""]),
    "--remove": st.sampled_from(["none", "headers", "headers,quotes", "signatures", ","]),
}

corpus_files = st.lists(st.one_of(
    st.binary(max_size=200),
    st.text(max_size=300).map(lambda t: t.encode("utf-8", "replace")),
    st.just(b"... !!! ???\n"),
    st.just(b"The cat sat. The dog ran. A bird sang.\n\n" * 3),
), min_size=0, max_size=4)


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    """A finished tiny run with one trained model, copied fresh for each example."""
    from tests.conftest import embed_tiny_run

    run = embed_tiny_run(tmp_path_factory.mktemp("fuzz"))
    result = invoke("train-ae", "--run", run, "--seq-len", "4", "--latent", "2", "--epochs", "1",
                    "--val-sentences", "10")
    assert result.exit_code == 0, result.output
    return run


@contextlib.contextmanager
def copy_of(run: Path):
    with tempfile.TemporaryDirectory() as tmp:
        yield Path(shutil.copytree(run, Path(tmp) / "run"))


@FUZZ
@given(options=st.dictionaries(st.sampled_from(sorted(EMBED_OPTIONS)), st.none(), max_size=4)
       .flatmap(lambda keys: st.fixed_dictionaries({k: EMBED_OPTIONS[k] for k in keys})),
       files=corpus_files)
def test_embed_with_generated_options_and_corpus(embedded, options, files):
    with copy_of(embedded) as run:
        corpus = run.parent / "corpus"
        corpus.mkdir()
        for i, data in enumerate(files):
            (corpus / f"doc{i}.txt").write_bytes(data)
        before = snapshot(run)
        args = [x for pair in options.items() for x in pair]
        with no_hang():
            result = invoke("embed", "--run", run, "--corpus", corpus, *args, "--force")
        check_outcome(result, run, before, verify=embedding_loads)


TRAIN_OPTIONS = {
    "--lr": st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), junk),
    "--clipnorm": st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), junk),
    "--momentum": st.one_of(st.floats(-1, 2).map(repr), junk),
    "--batch-size": numbers(1, 64), "--patience": numbers(0, 3),
    "--max-sentences": numbers(1, 50), "--val-sentences": numbers(1, 20),
    "--seq-len": st.sampled_from(["0", "1", "3", "-1", "1001", "x"]),
    "--latent": st.sampled_from(["0", "1", "2", "8193", "y"]),
    "--optimizer": st.sampled_from(["adam", "sgd", "rmsprop", ""]),
    "--kind": st.sampled_from(["embedding", "onehot", "other"]),
    "--loss": st.sampled_from(["cosine", "mse", "ce", "l1"]),
    "--vocab-cap": numbers(2, 40),
}


@FUZZ
@given(options=st.dictionaries(st.sampled_from(sorted(TRAIN_OPTIONS)), st.none(), max_size=4)
       .flatmap(lambda keys: st.fixed_dictionaries({k: TRAIN_OPTIONS[k] for k in keys})),
       name=st.one_of(st.none(), st.text(max_size=10), st.sampled_from(
           [".", "..", "../x", "/tmp", "a/b", "embedding-cosine", "-x", "ok_name.1"])))
def test_train_ae_with_generated_options_and_names(embedded, options, name):
    with copy_of(embedded) as run:
        before = snapshot(run)
        outside = snapshot(run.parent)
        args = [x for pair in options.items() for x in pair]
        if name is not None:
            args += [f"--name={name}"]
        with no_hang():
            result = invoke("train-ae", "--run", run, "--epochs", "1", *args)
        check_outcome(result, run, before, verify=every_model_loads)
        # Nothing outside the run directory was created, changed or removed.
        after = {k: v for k, v in snapshot(run.parent).items() if not k.startswith("run/")}
        assert after == {k: v for k, v in outside.items() if not k.startswith("run/")}
        if result.exit_code == 0:
            models = [p for p in (run / "models").iterdir() if not p.name.startswith(".")]
            assert all(p.parent == run / "models" and p.is_dir() for p in models)


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8)
SEQAE_JSON = ["models/embedding-cosine/manifest.json", "models/embedding-cosine/state.json",
              "models/embedding-cosine/config.json", "embeddings/meta.json",
              "embeddings/manifest.json", "corpus/meta.json", "corpus/manifest.json",
              "corpus/stats.json", "config.json"]


@FUZZ
@given(file=st.sampled_from(SEQAE_JSON), key=st.integers(0, 20), value=json_values,
       whole=st.booleans(), command=st.sampled_from([
           ["reconstruct", "the cat"], ["compare"], ["encode", "--split", "val"],
           ["train-ae", "--seq-len", "4", "--latent", "2", "--epochs", "2", "--resume"]]))
def test_seqaes_json_files_of_any_shape(embedded, file, key, value, whole, command):
    """One of seqae's JSON files replaced by a generated value, or one of its keys set to one:
    every reader ends in success or one line, and nothing valid is changed."""
    import json

    with copy_of(embedded) as run:
        path = run / file
        content = json.loads(path.read_text())
        if not whole and isinstance(content, dict) and content:
            content[sorted(content)[key % len(content)]] = value
        else:
            content = value
        path.write_text(json.dumps(content))
        args = [*command[:1], "--run", run, *command[1:]]
        if command[0] == "encode":
            args.append(run.parent / "codes.npy")
        before = snapshot(run)
        with no_hang():
            result = invoke(*args)
        check_outcome(result, run, before)
