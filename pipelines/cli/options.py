"""Options and helpers shared by every ``pipe`` command, defined once."""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import sys
from collections.abc import Callable
from typing import Any

import click

from autoencoder.backends import BACKENDS, quiet_start, requested_backend, select_backend
from autoencoder.config import TrainConfig
from embeddings.core.params import Flag, Number, OneOf, Several, flag
from embeddings.store.errors import SeqaeError
from embeddings.store.rundir import RunDir, check_model_name

log = logging.getLogger("seqae")


class _StderrHandler(logging.StreamHandler):
    """Logs to whatever ``sys.stderr`` is at the time (test runners swap it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value):
        pass


_VERBOSE = "seqae.verbose"  # the -v count, kept in the context for -q's callback


def _count_verbose(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    ctx.meta[_VERBOSE] = value or 0
    return value


def _configure_logging(ctx: click.Context, param: click.Parameter, quiet: Any) -> Any:
    """-q's callback, which click runs after -v's (an eager option's) whether either is given
    or not: the log level from both counts."""
    level = logging.INFO - 10 * ctx.meta.get(_VERBOSE, 0) + 10 * (quiet or 0)
    root = logging.getLogger()
    root.setLevel(level)
    if not any(isinstance(h, _StderrHandler) for h in root.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname).1s %(message)s", "%H:%M:%S"))
        root.addHandler(handler)
    # TensorFlow's start-up chatter and per-step collective notices, gensim's per-batch lines and
    # JAX's notes on the platforms it tried ("Unable to initialize backend 'tpu'") drown the
    # progress lines unless asked for with -v (gensim, JAX) or -vv (TensorFlow; its native
    # start-up lines: backend_option). Not the "jax" logger itself: JAX takes its level at
    # import for its own handler and C++ log level.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if native_logs(level) else "3")
    for name in ("gensim", "jax._src.xla_bridge"):
        logging.getLogger(name).setLevel(level if level < logging.INFO else max(level, logging.WARNING))
    logging.getLogger("tensorflow").setLevel(max(level + 10, logging.WARNING))
    return quiet


def native_logs(level: int) -> bool:
    """Whether the backends' native logs are shown at this log level: from ``-vv`` on."""
    return level < logging.DEBUG


def verbosity_flags() -> list[str]:
    """The ``-v``/``-q`` flags that reproduce the current log level in a child ``pipe``."""
    steps = (logging.getLogger().getEffectiveLevel() - logging.INFO) // 10
    return ["-q"] * steps if steps > 0 else ["-v"] * -steps


def verbosity(func: Callable) -> Callable:
    """``-v/--verbose`` and ``-q/--quiet``: logs go to stderr, results to stdout."""
    func = click.option(
        "-q", "--quiet", count=True, expose_value=False, callback=_configure_logging,
        help="Less logging (repeatable).",
    )(func)
    return click.option(
        "-v", "--verbose", count=True, expose_value=False, is_eager=True,
        callback=_count_verbose, help="More logging (repeatable).",
    )(func)


def _library_check(check: Callable[[Any], Any]) -> Callable:
    """A click callback running one of the library's own checks (one rule, one place)."""

    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is None:
            return value
        try:
            return check(value)
        except SeqaeError as exc:
            raise click.BadParameter(str(exc), ctx, param) from None

    return callback


read_run_option = click.option(
    # Read as a string, so that the check sees "" before it becomes Path("") == Path("."); the
    # command gets the RunDir every library call takes.
    "--run", "run_dir", type=click.Path(file_okay=False, path_type=str),
    default="runs/default", show_default=True, callback=_library_check(RunDir),
    help="Run directory holding every artifact of this run.",
)


def model_name_option(*flags: str, help: str) -> Callable:
    """A model name option (``--name``, ``--model``): one plain path component, checked here
    and again by the library."""
    return click.option(*flags, "name", default=None, callback=_library_check(check_model_name),
                        help=help)


model_option = model_name_option(
    "--model", help="Model name under RUN/models  [default: the only one, or embedding-cosine]")


def require_run_dir(run_dir: RunDir) -> None:
    """Refuse a missing run directory (before anything would create it)."""
    if not run_dir.path.is_dir():
        raise SeqaeError(f"no run directory {run_dir}: run `pipe embed` first")


@contextlib.contextmanager
def lock_run(run_dir: RunDir, create: bool = False):
    """Hold ``RUN/.lock`` for the current command: a second writer on the run refuses at once.
    A missing run directory is refused (nothing is created) unless ``create``; so is a
    ``RUN/config.json`` that seqae did not write, before any work is done."""
    with run_dir.writing(click.get_current_context().command_path, create=create):
        yield


def run_option(create: bool = False) -> Callable:
    """``--run`` for commands that write the run directory: the command body holds ``RUN/.lock``
    (taken after option parsing, so a bad option never leaves the lock held). Only a command
    that starts a run (``create``) may make the folder."""

    def decorate(func: Callable) -> Callable:
        @functools.wraps(func)
        def locked(*args, run_dir: RunDir, **kwargs):
            with lock_run(run_dir, create):
                return func(*args, run_dir=run_dir, **kwargs)

        return read_run_option(locked)

    return decorate


class FiniteFloatRange(click.FloatRange):
    """A float range that also refuses ``nan`` and ``inf`` (which compare false to any bound)."""

    def convert(self, value, param, ctx):
        value = super().convert(value, param, ctx)
        if not math.isfinite(value):
            self.fail(f"{value} is not a finite number", param, ctx)
        return value


class NoneOr:
    """Mixed into a click type: the word ``none`` is taken too, as the field's None (all,
    never, automatic: the field says)."""

    def convert(self, value, param, ctx):
        if value is None or (isinstance(value, str) and value.lower() == "none"):
            return None
        return super().convert(value, param, ctx)

    def get_metavar(self, param, ctx):
        shown = super().get_metavar(param, ctx) or self.name.upper()
        return f"{shown[:-1]}|none]" if shown.startswith("[") else f"{shown}|none"


# Each click type of a rule, and the same taking "none" for an optional rule.
_OR_NONE = {base: type(f"NoneOr{base.__name__}", (NoneOr, base), {})
            for base in (click.Choice, click.IntRange, FiniteFloatRange)}


class CommaList(click.ParamType):
    """A comma list for a :class:`~embeddings.core.params.Several` rule: each item of its
    item's click type, the whole checked by the rule (distinct, at least one)."""

    name = "list"

    def __init__(self, rule: Several):
        self.rule, self.item = rule, click_type(rule.item)

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        items = tuple(self.item.convert(part.strip(), param, ctx)
                      for part in str(value).split(",") if part.strip())
        try:
            return self.rule.check(param.name if param else "value", items)
        except SeqaeError as exc:
            self.fail(str(exc), param, ctx)


def click_type(rule: Number | OneOf | Several) -> click.ParamType:
    """The click type of a config field's rule (:mod:`embeddings.core.params`): the command line
    accepts what the dataclass accepts (an optional rule's None as the word ``none``)."""
    if isinstance(rule, Several):
        return CommaList(rule)
    if isinstance(rule, OneOf):
        base, args, bounds = click.Choice, (rule.choices,), {}
    else:
        base = click.IntRange if rule.kind is int else FiniteFloatRange
        args, bounds = (rule.low, rule.high), {"min_open": rule.low_open, "max_open": rule.high_open}
    return (_OR_NONE[base] if rule.optional else base)(*args, **bounds)


class DeclaredOption(click.Option):
    """An option built by :func:`config_option`; ``declared``: the config dataclass and the
    field it stands for (what a test of every command's options reads)."""

    def __init__(self, *args: Any, declared: tuple[type, str], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.declared = declared


def config_option(config: type, name: str, *decls: str, dest: str | None = None,
                  **kwargs: Any) -> Callable:
    """``--NAME`` (or ``decls``) for field ``name`` of the config dataclass ``config``: type,
    default and the reason for an upper bound from the dataclass (its ``PARAMS`` rule and its
    field's default), never restated; ``dest``: the parameter's name when not ``name``."""
    rule = config.PARAMS[name]
    default = config.__dataclass_fields__[name].default
    if isinstance(rule, Flag):
        if not any("/" in decl for decl in decls):  # --center/--no-center names both sides
            kwargs.setdefault("is_flag", True)
    else:
        kwargs["type"] = click_type(rule)  # the rule's, never one made by hand
    if isinstance(rule, Several):  # shown, and read back, as the command line writes it
        default = ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in default)
    if getattr(rule, "why", None):
        kwargs["help"] = f"{kwargs.get('help', '')} At most {rule.high:,}: {rule.why}.".lstrip()
    kwargs.setdefault("default", default)
    kwargs.setdefault("show_default", kwargs["default"] is not None)
    return click.option(*(decls or (flag(name),)), dest or name, cls=DeclaredOption,
                        declared=(config, name), **kwargs)


seed_option = config_option(TrainConfig, "seed",
                            help="Random seed for splits, sampling and initialisation.")


def _backend_callback(ctx: click.Context, param: click.Parameter, value: str) -> str:
    source = ctx.get_parameter_source(param.name)
    from_env = source is click.core.ParameterSource.DEFAULT and os.environ.get("KERAS_BACKEND")
    try:
        return select_backend(value, source="KERAS_BACKEND" if from_env else "--backend")
    except SeqaeError as exc:
        if from_env:  # the user never gave --backend: say which setting is wrong
            message = str(exc) if "KERAS_BACKEND" in str(exc) else f"KERAS_BACKEND={value}: {exc}"
            raise click.UsageError(message, ctx) from None
        raise click.BadParameter(str(exc), ctx, param) from None


_backend = click.option(
    # Eager and applied at once: KERAS_BACKEND must be set before anything imports Keras. A
    # plain string, checked by the library, so that a bad KERAS_BACKEND is named as such.
    "--backend", type=click.STRING, default=requested_backend, is_eager=True,
    expose_value=False, callback=_backend_callback, metavar="[" + "|".join(BACKENDS) + "]",
    help="Keras backend  [default: KERAS_BACKEND, else tensorflow]",
)


def backend_option(func: Callable) -> Callable:
    """``--backend`` for a command that runs a model; the command runs under
    :func:`~autoencoder.backends.quiet_start` (the backend's native start-up lines, which no
    log level stops, are not printed) unless ``-vv``. Its body imports Keras where it needs
    it, after its own checks, so a bad input is still refused before the backend starts."""

    @functools.wraps(func)
    def quietly(*args, **kwargs):
        shown = native_logs(logging.getLogger().getEffectiveLevel())
        with contextlib.nullcontext() if shown else quiet_start():
            return func(*args, **kwargs)

    return _backend(quietly)
force_option = click.option(
    "--force", is_flag=True, help="Recompute even if a finished result for these options exists.",
)


def option_group(*options: Callable) -> Callable:
    """One decorator for ``options`` (click option decorators), which ``--help`` lists in this
    order: the options a few commands share."""

    def decorate(func: Callable) -> Callable:
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


def option_names(decorator: Callable) -> tuple[str, ...]:
    """Parameter names a shared-options decorator adds, to route a command's kwargs by stage."""
    return tuple(p.name for p in decorator(lambda **_: None).__click_params__)
