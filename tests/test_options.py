"""Every numeric option out of range, and every inconsistent combination, is one ``Error`` line.

Each case runs against a missing corpus or an empty run directory: an option that slipped
through validation would fail later with another message (corpus not found, run `pipe embed`
first), which the expected fragment catches, and no case ever reaches heavy work.
"""

from __future__ import annotations

import pytest

from tests.test_cli_train import assert_clean_error, invoke

# (command, arguments, a fragment of the error)
BAD = [
    *[("embed", [option, value], option) for option, value in [
        ("--paragraph-lines", "0"), ("--max-docs", "0"), ("--vector-size", "0"),
        ("--vector-size", "100001"), ("--window", "0"), ("--min-count", "0"), ("--negative", "0"),
        ("--epochs", "0"), ("--workers", "0"), ("--seed", "-1"), ("--seed", str(2**31)),
    ]],
    ("embed", ["--remove", "signatures"], "--remove"),
    *[("train-ae", [option, value], option) for option, value in [
        ("--seq-len", "0"), ("--seq-len", "1001"), ("--latent", "0"), ("--latent", "8193"),
        ("--vocab-cap", "2"), ("--epochs", "0"), ("--batch-size", "0"), ("--lr", "0"),
        ("--lr", "-1"), ("--lr", "inf"), ("--lr", "nan"), ("--momentum", "1"),
        ("--momentum", "-0.1"), ("--clipnorm", "-1"), ("--patience", "-1"),
        ("--max-sentences", "0"), ("--val-sentences", "0"), ("--seed", "-1"),
        ("--max-time", "0"), ("--max-time", "inf"), ("--clip-scope", "layer"),
    ]],
    ("train-ae", ["--max-time", "10", "--strategy", "multi-worker"], "--max-time"),
    ("train-ae", ["--loss", "mse", "--kind", "classic"], "--loss"),
    ("train-ae", ["--nesterov"], "--nesterov"),
    ("train-ae", ["--nesterov", "--optimizer", "adam"], "--nesterov"),
    ("train-ae", ["--loss", "ce", "--kind", "embedding"], "--loss"),
    ("train-ae", ["--loss", "cosine", "--kind", "onehot"], "--loss"),
    ("train-ae", ["--loss", "mse", "--kind", "onehot"], "--loss"),
    ("reconstruct", ["--top-k", "0", "a man"], "--top-k"),
    ("reconstruct", ["--top-k", "101", "a man"], "--top-k"),
    ("neighbours", ["--k", "0", "a man"], "--k"),
    ("interpolate", ["--steps", "0", "a man", "a cat"], "--steps"),
    ("interpolate", ["--steps", "1", "a man", "a cat"], "--steps"),
    ("encode", ["--split", "dev", "out.npy"], "--split"),
    ("compare", ["--eval-sentences", "0"], "--eval-sentences"),
    ("compare", ["--seed", "-1"], "--seed"),
    *[("run", [option, value], option) for option, value in [
        ("--w2v-epochs", "0"), ("--vector-size", "0"), ("--min-count", "0"), ("--seq-len", "0"),
        ("--latent", "0"), ("--vocab-cap", "2"), ("--epochs", "0"), ("--lr", "nan"),
        ("--batch-size", "0"), ("--eval-sentences", "0"), ("--max-docs", "0"),
    ]],
    ("run", ["--nesterov"], "--nesterov"),
    *[("study", [option, value], option) for option, value in [
        ("--budget", "0"), ("--budget", "nan"), ("--max-time", "-1"), ("--patience", "0"),
        ("--seq-len", "0"), ("--models", "onehot-ce"), ("--eval-sentences", "0"),
    ]],
    ("study", ["--budget", "100", "--max-time", "50"], "--max-time"),
]


@pytest.mark.parametrize("command, args, fragment", BAD,
                         ids=[f"{c} {' '.join(a)}" for c, a, _ in BAD])
def test_bad_option_is_one_error_line(tmp_path, command, args, fragment):
    corpus = (["--corpus", str(tmp_path / "missing")] if command in ("embed", "run", "study")
              else [])
    result = invoke(command, "--run", tmp_path / "run", *corpus, *args)
    assert_clean_error(result, fragment)
