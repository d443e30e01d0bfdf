"""``pipe compare``."""

from __future__ import annotations

from pathlib import Path

import click

from embeddings.store.rundir import RunDir, check_model_name, resolve_model
from pipelines.cli.options import (
    backend_option,
    config_option,
    option_group,
    run_option,
    verbosity,
)
from pipelines.params import CompareParams


# Options of the comparison, shared by ``compare`` and ``run``.
compare_options = option_group(
    config_option(CompareParams, "split", help="Held-out split to score on."),
    config_option(CompareParams, "eval_sentences",
                  help="Score a seeded subsample of this many sentences  [default: all]"),
)


def print_report(report: dict, out: Path) -> None:
    """The comparison table, the models skipped and where the report is (shared by ``compare``
    and ``run``)."""
    from pipelines import format_table

    click.echo(format_table(report))
    if report["skipped"]:
        click.echo(f"\nskipped (no finished epoch): {', '.join(report['skipped'])}")
    click.echo(f"\nreport: {out / 'report.md'}")


@click.command()
@run_option()
@click.option("--models", default=None,
              help="Comma-separated model names  [default: every model in RUN/models]")
@compare_options
@config_option(CompareParams, "seed", help="Random seed of the subsample and of the sample "
               "reconstructions.")
@backend_option
@verbosity
def compare(run_dir: RunDir, models: str | None, split: str, eval_sentences: int | None,
            seed: int) -> None:
    """Score trained models on the same held-out sentences, against the original words.

    \b
    Writes RUN/compare/: report.md (tables and sample reconstructions), report.json (every
    figure), loss.png (all models' curves) and accuracy_by_length.png; prints the table.
    """
    names = None
    if models is not None:
        names = [check_model_name(m.strip()) for m in models.split(",") if m.strip()]
        if not names:
            raise click.BadParameter("name at least one model", param_hint="--models")
        for name in names:  # before starting Keras
            resolve_model(run_dir, name)
    from pipelines.compare import run_compare

    print_report(*run_compare(run_dir, names, split, eval_sentences, seed))
