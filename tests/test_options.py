"""Every numeric option out of range, and every inconsistent combination, is one ``Error`` line.

Each case runs against a missing corpus or an empty run directory: an option that slipped
through validation would fail later with another message (corpus not found, run `pipe embed`
first), which the expected fragment catches, and no case ever reaches heavy work.
"""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest
from click.testing import CliRunner

from pipelines.cli import main
from tests.conftest import assert_clean_error, invoke

# (command, arguments, a fragment of the error)
BAD = [
    *[("embed", [option, value], option) for option, value in [
        ("--paragraph-lines", "0"), ("--max-docs", "0"), ("--vector-size", "0"),
        ("--vector-size", "100001"), ("--window", "0"), ("--min-count", "0"), ("--negative", "0"),
        ("--epochs", "0"), ("--workers", "0"), ("--seed", "-1"), ("--seed", str(2**31)),
    ]],
    ("embed", ["--remove", "signatures"], "--remove"),
    ("embed", ["--format", "glove"], "--format"),
    ("embed", ["--vectors", "v.txt", "--format", "text"], "--format"),
    ("embed", ["--vectors", "v.txt", "--window", "3"], "--window"),
    *[("train-ae", [option, value], option) for option, value in [
        ("--seq-len", "0"), ("--seq-len", "1001"), ("--latent", "0"), ("--latent", "8193"),
        ("--vocab-cap", "2"), ("--epochs", "0"), ("--batch-size", "0"), ("--lr", "0"),
        ("--lr", "-1"), ("--lr", "inf"), ("--lr", "nan"), ("--momentum", "1"),
        ("--momentum", "-0.1"), ("--clipnorm", "-1"), ("--patience", "-1"),
        ("--max-sentences", "0"), ("--val-sentences", "0"), ("--seed", "-1"),
        ("--max-time", "0"), ("--max-time", "inf"), ("--clip-scope", "layer"),
    ]],
    ("train-ae", ["--max-time", "10", "--strategy", "multi-worker"], "--max-time"),
    ("train-ae", ["--eval-every", "10", "--strategy", "multi-worker"], "--eval-every"),
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
    ("study", ["--budget", "100", "--sweep", "10", "--max-passes", "50"], "--max-passes"),
    ("study", ["--budget", "100"], "--sweep"),  # the sweep's best run goes on to the budget
]


@pytest.mark.parametrize("command, args, fragment", BAD,
                         ids=[f"{c} {' '.join(a)}" for c, a, _ in BAD])
def test_bad_option_is_one_error_line(tmp_path, command, args, fragment):
    corpus = (["--corpus", str(tmp_path / "missing")] if command in ("embed", "run", "study")
              else [])
    result = invoke(command, "--run", tmp_path / "run", *corpus, *args)
    assert_clean_error(result, fragment)


def test_sgd_gets_the_same_learning_rate_from_python_and_the_command_line():
    from autoencoder.config import DEFAULT_LR, TrainConfig
    from pipelines.cli.train import AE_OPTIONS, make_configs, train_ae

    defaults = {p.name: p.default for p in train_ae.params
                if p.name in {*TrainConfig.__dataclass_fields__, *AE_OPTIONS} and p.name != "seed"}
    _, from_cli = make_configs("embedding", None, 0, **{**defaults, "optimizer": "sgd"})
    assert TrainConfig(optimizer="sgd").lr == from_cli.lr == DEFAULT_LR["sgd"] == 1e-2
    assert TrainConfig().lr == DEFAULT_LR["adam"] == 1e-3


@pytest.mark.parametrize("args, message", [
    (["train-ae", "--nesterov"], "nesterov (--nesterov) applies to optimizer sgd only"),
    (["train-ae"], "no run directory"),
    (["reconstruct", "a sentence"], "no run directory"),
    (["encode", "in.txt", "out.npy"], "no run directory"),
    (["neighbours", "a sentence"], "no run directory"),
    (["interpolate", "a", "b"], "no run directory"),
])
def test_inputs_are_checked_before_keras_starts(tmp_path, args, message):
    """A bad option and a missing run are refused by a process that never imports Keras (so
    never waits for TensorFlow's start-up)."""
    argv = [args[0], "--run", str(tmp_path / "nope"), *args[1:]]
    code = ("import sys\nfrom pipelines.cli import main\n"
            f"try:\n    main({argv!r})\n"
            "except SystemExit as exc:\n    code = exc.code\n"
            "assert 'keras' not in sys.modules, 'keras started'\n"
            "sys.exit(code)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("flags, level", [
    ([], logging.INFO), (["-v"], logging.DEBUG), (["-vv"], logging.NOTSET), (["-q"], logging.WARNING),
    (["-v", "-q"], logging.INFO), (["-q", "-vv"], logging.DEBUG), (["-qq", "-v"], logging.WARNING),
])
def test_v_and_q_set_the_log_level_in_any_order(flags, level):
    import click

    from pipelines.cli.options import verbosity

    @click.command()
    @verbosity
    def probe():
        click.echo(logging.getLogger().getEffectiveLevel())

    root = logging.getLogger()
    handlers, before = root.handlers[:], root.level
    try:
        result = CliRunner().invoke(probe, flags)
    finally:
        root.handlers[:] = handlers
        root.setLevel(before)
    assert result.exit_code == 0 and result.output.strip() == str(level)


def test_options_are_read_from_seqae_environment_variables(tmp_path):
    missing = tmp_path / "from-env"
    result = CliRunner().invoke(main, ["compare"], env={"SEQAE_COMPARE_RUN_DIR": str(missing)})
    assert_clean_error(result, str(missing))
    given = CliRunner().invoke(main, ["compare", "--run", str(tmp_path / "given")],
                               env={"SEQAE_COMPARE_RUN_DIR": str(missing)})
    assert_clean_error(given, str(tmp_path / "given"))  # the command line wins


def test_train_options_take_their_defaults_and_choices_from_the_configs():
    from dataclasses import fields

    from autoencoder.config import CLIP_SCOPES, KINDS, OPTIMIZERS, SOFTMAXES, AutoencoderConfig, TrainConfig
    from pipelines.cli.train import train_ae

    params = {p.name: p for p in train_ae.params}
    for config in (AutoencoderConfig, TrainConfig):
        for field in fields(config):
            if field.name in params and field.name not in ("seed", "loss"):
                assert params[field.name].default == field.default, field.name
    assert tuple(params["kind"].type.choices) == KINDS
    assert tuple(params["optimizer"].type.choices) == OPTIMIZERS
    assert tuple(params["clip_scope"].type.choices) == CLIP_SCOPES
    assert tuple(params["softmax"].type.choices) == SOFTMAXES


def test_every_run_default_names_an_option_of_run():
    """click ignores a default_map key that names no parameter: a misspelt one would be lost."""
    from pipelines.cli.run import RUN_DEFAULTS, run

    assert set(RUN_DEFAULTS) <= {p.name for p in run.params}
