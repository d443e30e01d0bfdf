"""Every numeric option out of range, and every inconsistent combination, is one ``Error`` line.

Each case runs against a missing corpus or an empty run directory: an option that slipped
through validation would fail later with another message (corpus not found, run `pipe embed`
first), which the expected fragment catches, and no case ever reaches heavy work.
"""

from __future__ import annotations

import logging
import math
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from autoencoder.config import AutoencoderConfig, TrainConfig
from embeddings.core.params import Flag, OneOf, Several
from embeddings.pretrained import PretrainedVectors
from embeddings.store.errors import SeqaeError
from pipelines.cli import main
from pipelines.cli.options import DeclaredOption
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


def test_every_run_default_names_an_option_of_run():
    """click ignores a default_map key that names no parameter: a misspelt one would be lost;
    a value its option refuses would fail every `pipe run`."""
    from pipelines.cli.run import RUN_DEFAULTS, run

    params = {p.name: p for p in run.params}
    assert set(RUN_DEFAULTS) <= set(params)
    for name, value in RUN_DEFAULTS.items():  # and each is a value its option takes
        params[name].type.convert(value, params[name], None)


# -- every declared option: `pipe` and the dataclass accept and refuse the same values ---------

def _probes(rule) -> list:
    """Values just below, at and above each bound of ``rule``, a wrong type, None, each choice
    and a non-choice; for a list, each of its item's probes alone, none and a repeat."""
    if isinstance(rule, Several):
        items = _probes(rule.item)
        accepted = next(v for v in items if _accepts(rule.item.check, "item", v))
        return [(v,) for v in items] + [(), (accepted, accepted)]
    if isinstance(rule, OneOf):
        return [*rule.choices, "nonsense", 3, None]
    step = 1 if rule.kind is int else 0.5
    around = [b + d for b in (rule.low, rule.high) if b is not None for d in (-step, 0, step)]
    wrong = [2.5, 10**400] if rule.kind is int else []  # a fraction; finite however long
    return [*around, *wrong, "abc", None, math.nan, math.inf]


def _accepts(make, *args, **kwargs) -> bool:
    try:
        make(*args, **kwargs)
    except SeqaeError:
        return False
    return True


def _text(value) -> str:
    """A value as the command line writes it."""
    if isinstance(value, tuple):
        return ",".join(map(_text, value))
    return "none" if value is None else str(value)


# What each command is given besides the probed option, so that it gets as far as looking for
# its input (which is missing: the error that names it means every option was accepted).
_POSITIONAL = {"reconstruct": ["a man"], "neighbours": ["a man"],
               "interpolate": ["a man", "a cat"], "encode": ["out.npy"]}


def _declared_options(command):
    return [p for p in command.params if isinstance(p, DeclaredOption)]


@pytest.mark.parametrize("name", sorted(n for n, c in main.commands.items() if _declared_options(c)))
def test_python_and_pipe_accept_and_refuse_the_same_values(tmp_path, monkeypatch, name):
    """For every option built from a declaration, each probe is accepted by ``pipe NAME
    --option VALUE`` (up to looking for the missing run or corpus) exactly when the dataclass
    takes it; ``pipe run`` builds a one-hot model, so its architecture is probed as one."""
    import pipelines.cli.train

    missing = [tmp_path / "no-run", tmp_path / "no-corpus", tmp_path / "no-vectors.txt"]
    monkeypatch.setattr(pipelines.cli.train, "_cluster_demo",  # never start workers
                        lambda *_: (_ for _ in ()).throw(SeqaeError(str(missing[0]))))
    command = main.commands[name]
    inputs = ["--run", missing[0]]
    if name in ("embed", "run", "study"):
        inputs += ["--corpus", missing[1]]
    mismatches = []
    for param in _declared_options(command):
        config, field = param.declared
        rule = config.PARAMS[field]
        context = {**({"kind": "onehot"} if (name, config) == ("run", AutoencoderConfig) else {}),
                   **({"path": "v.txt"} if config is PretrainedVectors else {})}
        extra = ["--vectors", missing[2]] if config is PretrainedVectors else []
        if isinstance(rule, Flag):
            cases = [(opt, True, [opt]) for opt in param.opts]
            cases += [(opt, False, [opt]) for opt in param.secondary_opts]
        else:
            cases = [(param.opts[0], v, [param.opts[0], _text(v)]) for v in _probes(rule)]
        for opt, value, given in cases:
            positional = _POSITIONAL.get(name, [])
            if name == "encode" and value is None:
                positional = ["in.txt", *positional]  # no --split: an INPUT file
            result = CliRunner().invoke(main, [name, *map(str, [*inputs, *extra, *given]),
                                               *positional])
            assert isinstance(result.exception, SystemExit), (opt, value, result.output)
            pipe_ok = any(str(path) in result.output for path in missing)
            python_ok = _accepts(config, **context, **{field: value})
            if pipe_ok != python_ok:
                mismatches.append(f"{opt} {_text(value)}: pipe {pipe_ok}, Python {python_ok}: "
                                  f"{result.output.strip()[-120:]}")
    assert not mismatches, "\n".join(mismatches)


def test_declared_options_take_the_declared_defaults():
    for command in main.commands.values():
        for param in _declared_options(command):
            if param.hidden:  # an old spelling: None says it was not given
                continue
            config, field = param.declared
            default = (None if param.default is None
                       else param.type.convert(param.default, param, None))
            assert default == config.__dataclass_fields__[field].default, (command.name, param.name)


def test_no_command_restates_a_declared_rule():
    """An option with bounds or choices, or named as a declared field, comes from the
    declaration (``config_option``), not from a hand-made click type."""
    from embeddings.prepare import CorpusConfig
    from embeddings.word2vec import Word2VecConfig
    from pipelines import params
    from pipelines.study_config import StudyConfig

    declared = {name for config in (CorpusConfig, Word2VecConfig, PretrainedVectors,
                                    AutoencoderConfig, TrainConfig, StudyConfig,
                                    *(getattr(params, n) for n in dir(params) if n.endswith("Params")))
                for name in config.PARAMS}
    own = {("compare", "models")}  # the run's models by name, not the study's
    for command in main.commands.values():
        for param in command.params:
            if isinstance(param, DeclaredOption) or not isinstance(param, click.Option) or param.count:
                continue
            where = (command.name, param.name)
            assert not isinstance(param.type, click.types._NumberRangeBase | click.Choice), where
            assert param.name not in declared or where in own, where
