"""Options and helpers shared by every ``pipe`` command, defined once."""

from __future__ import annotations

import functools
import logging
import os
import sys
from pathlib import Path
from typing import Any, Callable

import click

from embeddings.io import library_versions, read_json, run_lock, write_json

log = logging.getLogger("seqae")


class _StderrHandler(logging.StreamHandler):
    """Logs to whatever ``sys.stderr`` is at the time (test runners swap it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value):
        pass


def _configure_logging(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    verbose = ctx.params.get("verbose", 0) if param.name == "quiet" else value
    quiet = value if param.name == "quiet" else ctx.params.get("quiet", 0)
    level = logging.INFO - 10 * (verbose or 0) + 10 * (quiet or 0)
    root = logging.getLogger()
    root.setLevel(level)
    if not any(isinstance(h, _StderrHandler) for h in root.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname).1s %(message)s", "%H:%M:%S"))
        root.addHandler(handler)
    # TensorFlow's start-up chatter and per-step collective notices, and gensim's per-batch lines,
    # drown the progress lines unless asked for with -v (gensim) or -vv (TensorFlow).
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if level < logging.DEBUG else "3")
    logging.getLogger("gensim").setLevel(level if level < logging.INFO else max(level, logging.WARNING))
    logging.getLogger("tensorflow").setLevel(max(level + 10, logging.WARNING))
    return value


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
        callback=_configure_logging, help="More logging (repeatable).",
    )(func)


read_run_option = click.option(
    "--run", "run_dir", type=click.Path(file_okay=False, path_type=Path),
    default=Path("runs/default"), show_default=True,
    help="Run directory holding every artifact of this run.",
)


def lock_run(run_dir: Path):
    """Hold ``RUN/.lock`` for the current command: a second writer on the run refuses at once."""
    return run_lock(run_dir, click.get_current_context().command_path)


def run_option(func: Callable) -> Callable:
    """``--run`` for commands that write the run directory: the command body holds ``RUN/.lock``
    (taken after option parsing, so a bad option never leaves the lock held)."""

    @functools.wraps(func)
    def locked(*args, run_dir: Path, **kwargs):
        with lock_run(run_dir):
            return func(*args, run_dir=run_dir, **kwargs)

    return read_run_option(locked)


seed_option = click.option(
    "--seed", type=click.IntRange(0, 2**31 - 1), default=0, show_default=True,
    help="Random seed for splits, sampling and initialisation.",
)
force_option = click.option(
    "--force", is_flag=True, help="Recompute even if a finished result for these options exists.",
)


def record_config(run_dir: Path, stage: str, options: dict[str, Any]) -> None:
    """Merge one stage's resolved options into ``RUN/config.json`` with the library versions."""
    path = run_dir / "config.json"
    config = read_json(path) if path.exists() else {"stages": {}}
    config["stages"][stage] = {k: (str(v) if isinstance(v, Path) else v) for k, v in options.items()}
    config["versions"] = library_versions()
    write_json(path, config)


def option_names(decorator: Callable) -> tuple[str, ...]:
    """Parameter names a shared-options decorator adds, to route a command's kwargs by stage."""
    return tuple(p.name for p in decorator(lambda **_: None).__click_params__)
