"""``pipe encode``, ``pipe neighbours`` and ``pipe interpolate``: using a model's codes."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from embeddings.store.files import check_input_file
from embeddings.store.rundir import RunDir, resolve_model
from pipelines.cli.options import (
    backend_option,
    config_option,
    model_option,
    read_run_option,
    verbosity,
)
from pipelines.params import EncodeParams, InterpolateParams, NeighboursParams

log = logging.getLogger(__name__)


@click.command()
@read_run_option
@model_option
@config_option(EncodeParams, "split",
               help="Encode this split of the run's corpus instead of an INPUT file.")
@click.argument("paths", nargs=-1, metavar="[INPUT] OUTPUT")
@backend_option
@verbosity
def encode(run_dir: RunDir, name: str | None, split: str | None, paths: tuple[str, ...]) -> None:
    """Write the code of every sentence of INPUT (or of --split) to OUTPUT.

    \b
    INPUT: a text file, one sentence a line, tokenized as `reconstruct` tokenizes
    (lines with no token are skipped). OUTPUT: a .npy array, N x latent float32, one
    row per sentence in input order; beside it OUTPUT with .tsv holds the sentences
    (tokens joined by spaces), line i for row i. Both are replaced whole once done,
    never inside seqae's own files; an existing OUTPUT.tsv is replaced only when it is
    the sentences file of the existing OUTPUT (else it is yours, and refused).
    """
    if len(paths) != (1 if split else 2):
        raise click.UsageError("give INPUT and OUTPUT, or --split SPLIT and OUTPUT")
    name = resolve_model(run_dir, name)  # every check that needs no Keras, before starting it
    if not split:
        check_input_file(paths[0])
    from pipelines.codes import encode_file

    summary = encode_file(run_dir, Path(paths[-1]), source=None if split else Path(paths[0]),
                          split=split, name=name)
    if summary["skipped"]:
        log.warning("%d lines had no token and were skipped", summary["skipped"])
    if summary["truncated"]:
        log.warning("%d of %d sentences were longer than model %s's --seq-len: their codes are "
                    "of their first words only", summary["truncated"], summary["sentences"],
                    summary["model"])
    if summary["unknown"]:
        log.warning("%d sentences have only words unknown to model %s: their codes mean nothing",
                    summary["unknown"], summary["model"])
    click.echo(f"{summary['model']}: {summary['sentences']} codes of {summary['latent']} "
               f"-> {summary['codes']}, sentences -> {summary['sentences_file']}")


@click.command()
@read_run_option
@model_option
@config_option(NeighboursParams, "top_k", help="Sentences to show.")
# The old spelling, kept working but not advertised: reconstruct already said --top-k.
@config_option(NeighboursParams, "top_k", "--k", dest="k_alias", default=None, hidden=True)
@click.argument("sentence")
@backend_option
@verbosity
def neighbours(run_dir: RunDir, name: str | None, top_k: int, k_alias: int | None,
               sentence: str) -> None:
    """The train sentences whose codes are nearest (cosine) to SENTENCE's.

    Prints one "cosine<TAB>sentence" line per neighbour, best first. The first call builds the
    model's index of the train codes, cached in RUN/models/NAME/index and rebuilt when the
    model or the corpus changes.
    """
    name = resolve_model(run_dir, name)
    from pipelines.codes import nearest_sentences

    top_k = top_k if k_alias is None else k_alias
    for text, score in nearest_sentences(run_dir, sentence, name=name, top_k=top_k):
        click.echo(f"{score:.4f}\t{text}")


@click.command()
@read_run_option
@model_option
@config_option(InterpolateParams, "steps",
               help="Codes on the line from A to B, both ends included.")
@click.argument("first", metavar="A")
@click.argument("last", metavar="B")
@backend_option
@verbosity
def interpolate(run_dir: RunDir, name: str | None, steps: int, first: str, last: str) -> None:
    """Decode codes evenly spaced from sentence A's code to sentence B's, one per line.

    The model has no end of sentence: the length of each decoded sentence goes linearly from
    A's to B's.
    """
    name = resolve_model(run_dir, name)
    from pipelines.codes import interpolate as interpolate_codes

    for words in interpolate_codes(run_dir, first, last, name=name, steps=steps):
        click.echo(" ".join(words))
