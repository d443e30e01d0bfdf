"""The ``pipe`` command line: thin click wiring over the ``embeddings`` and ``autoencoder`` APIs."""

from __future__ import annotations

import click

from embeddings.store.errors import SeqaeError


class _Group(click.Group):
    """A group that turns library errors into one clean line and a non-zero exit."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except SeqaeError as exc:
            error = click.ClickException(str(exc))
            error.exit_code = getattr(exc, "exit_code", error.exit_code)
            raise error from None
        except MemoryError:
            raise click.ClickException("out of memory: lower --vector-size, --batch-size or "
                                       "--latent, or use a smaller corpus (--max-docs)") from None
        except OSError as exc:  # read-only folder, full disk, permissions: name the path
            where = f": {exc.filename}" if exc.filename else ""
            raise click.ClickException(f"{exc.strerror or exc}{where}") from None


# Every option can also come from the environment: SEQAE_<COMMAND>_<OPTION>, e.g.
# SEQAE_TRAIN_AE_EPOCHS=5 (click's auto_envvar_prefix); the command line wins.
@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"],
                                           "auto_envvar_prefix": "SEQAE"})
@click.version_option(package_name="seqae")
def main() -> None:
    """seqae: sentence autoencoders on word2vec inputs, against a capped one-hot baseline.

    \b
    Stages (each reads and writes one run directory, --run DIR):
      embed      read a corpus, tokenize it, train word2vec vectors (or read yours)
      export     write the run's word vectors in word2vec format
      train-ae   train an LSTM autoencoder (embedding kind or one-hot baseline)
      compare    score every trained model on held-out sentences
      run        all of the above, end to end
      study      the models of the question: equal sentence-passes, seeds, converged

    \b
    Using a trained model:
      reconstruct   autoencode one sentence
      encode        every sentence of a file (or a split) to its code, into a .npy
      neighbours    the train sentences whose codes are nearest to a sentence's
      interpolate   decode codes on the line between two sentences' codes

    \b
    Every option can also be set in the environment as SEQAE_<COMMAND>_<OPTION>,
    e.g. SEQAE_TRAIN_AE_EPOCHS=5, SEQAE_COMPARE_RUN_DIR=runs/mine (--run is
    RUN_DIR); the command line wins.
    """


def _register() -> None:
    from pipelines.cli.codes import encode, interpolate, neighbours
    from pipelines.cli.compare import compare
    from pipelines.cli.embed import embed, export
    from pipelines.cli.run import run
    from pipelines.cli.study import study
    from pipelines.cli.train import reconstruct, train_ae

    for command in (embed, export, train_ae, reconstruct, encode, neighbours, interpolate, compare,
                    run, study):
        main.add_command(command)


_register()
