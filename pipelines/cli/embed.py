"""``pipe embed`` and ``pipe export``: click wiring over :mod:`embeddings`."""

from __future__ import annotations

from pathlib import Path

import click

from embeddings.corpus import REMOVABLE, check_remove
from embeddings.evaluate import format_evaluation
from embeddings.prepare import CorpusConfig
from embeddings.pretrained import FORMATS, PretrainedVectors
from embeddings.stats import format_stats
from embeddings.store.errors import SeqaeError
from embeddings.store.rundir import RunDir, seqae_owns
from embeddings.word2vec import Word2VecConfig, export_word2vec
from pipelines.cli.options import (
    config_option,
    force_option,
    option_group,
    read_run_option,
    run_option,
    seed_option,
    verbosity,
)
from pipelines.embed import EmbedResult, load_embeddings, run_embed


class _RemoveList(click.ParamType):
    """A comma list of newsgroup parts, or ``none``."""

    name = "PARTS"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        if value.strip().lower() == "none":
            return ()
        try:
            return check_remove(part.strip() for part in value.split(",") if part.strip())
        except SeqaeError as exc:
            self.fail(str(exc), param, ctx)


def embed_options(epochs_flag: str = "--epochs"):
    """Corpus and word2vec options, shared by ``embed`` and ``run`` (where ``--epochs`` belongs
    to the autoencoder, so word2vec's is ``--w2v-epochs``)."""
    return option_group(
        click.option("--corpus", "source", default=CorpusConfig.source, show_default=True,
                     help="'default' (gensim's Lee corpus), 'wiki' (gensim's Wikipedia "
                          "excerpt), '20news' (scikit-learn's cache), a 20news-bydate .tar.gz "
                          "or folder, a MediaWiki .xml.bz2 dump, a folder of .txt files, or one "
                          "text file."),
        click.option("--remove", type=_RemoveList(), default=None,
                     help=f"Newsgroup parts to strip: comma list of {','.join(REMOVABLE)}, or "
                          "'none'. Default: all for 20 Newsgroups, none otherwise."),
        config_option(CorpusConfig, "unit",
                      help="Sentences (Punkt) or groups of --paragraph-lines lines."),
        config_option(CorpusConfig, "paragraph_lines", help="Non-empty lines per paragraph unit."),
        config_option(CorpusConfig, "max_docs",
                      help="Use a seeded sample of this many documents.  [default: all]"),
        config_option(Word2VecConfig, "vector_size", help="word2vec dimensions."),
        config_option(Word2VecConfig, "window", help="word2vec context window (words each side)."),
        config_option(Word2VecConfig, "min_count", help="Ignore train words rarer than this."),
        config_option(Word2VecConfig, "negative", help="Negative samples per positive example."),
        config_option(Word2VecConfig, "epochs", epochs_flag, dest="w2v_epochs",
                      help="word2vec passes over the train split."),
        config_option(Word2VecConfig, "sg", "--sg/--cbow", help="Skip-gram or CBOW."),
        config_option(Word2VecConfig, "workers",
                      help="Processes for tokenizing and threads for word2vec; 'none' (the "
                           "default): all cores."),
    )


def embed_configs(seed: int, *, source, remove, unit, paragraph_lines, max_docs, vector_size,
                  window, min_count, negative, w2v_epochs, sg, workers
                  ) -> tuple[CorpusConfig, Word2VecConfig]:
    """The stage-one configs from the command's options (checked, before anything runs)."""
    return (CorpusConfig(source=source, remove=remove, unit=unit, paragraph_lines=paragraph_lines,
                         max_docs=max_docs, seed=seed),
            Word2VecConfig(vector_size=vector_size, window=window, min_count=min_count,
                           negative=negative, epochs=w2v_epochs, sg=sg, workers=workers, seed=seed))


def print_embedded(result: EmbedResult) -> None:
    """Stage one's corpus statistics and vector evaluation, on stdout."""
    click.echo(format_stats(result.corpus.stats))
    click.echo()
    if result.pretrained:
        record = result.pretrained
        click.echo(f"vectors: {record['kept']:,} of the {record['words']:,} words of the file "
                   f"({record['dimensions']:,} dimensions); {record['dropped']:,} not in the train "
                   f"split dropped, {record['unknown']:,} train words without a vector")
        click.echo()
    click.echo(format_evaluation(result.evaluation))


def run_embed_stage(run_dir: RunDir, seed: int, force: bool, export_path: Path | None = None,
                    vectors: PretrainedVectors | None = None, **options) -> None:
    """Run stage one from the command's options (``vectors``: read instead of trained) and
    print what it made."""
    corpus_config, w2v_config = embed_configs(seed, **options)
    if export_path is not None:
        check_export_path(export_path, run_dir)
    result = run_embed(run_dir, corpus_config, vectors or w2v_config, workers=w2v_config.workers,
                       force=force)
    print_embedded(result)
    if export_path is not None:
        export_word2vec(result.vectors, export_path)


# The embed options that only word2vec training reads: refused with --vectors, never ignored.
_TRAINING_ONLY = ("vector_size", "window", "min_count", "negative", "w2v_epochs", "sg")


def pretrained_vectors(path: str | None, format: str) -> PretrainedVectors | None:
    """``--vectors`` and ``--format`` as a config (None without ``--vectors``); a word2vec
    training option given with ``--vectors``, or ``--format`` without it, is a usage error."""
    ctx = click.get_current_context()
    given = {param.name: "/".join(param.opts + param.secondary_opts) for param in ctx.command.params
             if ctx.get_parameter_source(param.name) not in (None, click.core.ParameterSource.DEFAULT)}
    if path is None:
        if "format" in given:
            raise click.UsageError("--format applies to --vectors FILE only", ctx)
        return None
    training = [hint for name, hint in given.items() if name in _TRAINING_ONLY]
    if training:
        raise click.UsageError(f"{', '.join(training)}: word2vec training options, which do "
                               "not apply to --vectors (the file's vectors are used as they are)",
                               ctx)
    return PretrainedVectors(path=path, format=format)


@click.command()
@embed_options()
@click.option("--vectors", "vectors_path", type=click.Path(dir_okay=False, path_type=str),
              default=None, metavar="FILE",
              help="Your pretrained word vectors instead of training word2vec: the words of FILE "
                   "that the train split has are kept, most frequent first.")
@config_option(PretrainedVectors, "format",
               help=f"Format of --vectors: {', '.join(FORMATS[:2])} (the word2vec tool's text "
                    "and binary), glove (text without the header line), fasttext (.vec).")
@click.option("--export-word2vec", "export_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Also write the vectors here in binary word2vec format.")
@seed_option
@force_option
@run_option(create=True)
@verbosity
def embed(run_dir: RunDir, seed: int, force: bool, vectors_path: str | None, format: str,
          **options) -> None:
    """Read a corpus, tokenize and split it, train word2vec on the train split (or read your
    vectors: --vectors FILE), evaluate.

    Writes RUN/corpus (split files, vocabulary, statistics) and RUN/embeddings (vectors.npy,
    vocab.tsv, eval.json); prints the corpus statistics and the evaluation. Finished results
    are reused when the options (and the --vectors file's content) are unchanged, unless --force.
    """
    run_embed_stage(run_dir, seed, force, vectors=pretrained_vectors(vectors_path, format),
                    **options)


@click.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--text", is_flag=True, help="Text format instead of binary.")
@read_run_option
@verbosity
def export(path, text, run_dir):
    """Write the run's word2vec vectors to PATH in the original word2vec format.

    PATH may be a new or existing file (replaced whole, never half-written), a device or a
    pipe (written through), or a symbolic link (what it points to is written); never one of
    the run's own files.
    """
    check_export_path(path, run_dir)
    export_word2vec(load_embeddings(run_dir), path, binary=not text)


def check_export_path(path: Path, run_dir: RunDir) -> None:
    """Refuse an export that would overwrite one of the run's own artifacts."""
    if seqae_owns(path, run_dir):
        raise SeqaeError(f"{path} is one of seqae's own files (of run {run_dir} or another run): "
                         "export elsewhere")
