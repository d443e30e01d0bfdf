"""``pipe study``: the question answered with evidence, in one resumable command."""

from __future__ import annotations

import logging
import shlex
import sys
from pathlib import Path

import click

from embeddings.core.io import portable_path
from pipelines.study_config import MODEL_NAMES, StudyConfig
from pipelines.cli.options import (
    backend_option, config_option, force_option, lock_run, option_names, read_run_option,
    seed_option, verbosity,
)
from pipelines.cli.embed import embed_options, run_embed_stage

log = logging.getLogger("seqae")

_STUDY = StudyConfig()


class _ModelList(click.ParamType):
    """A comma list of study model names."""

    name = "NAMES"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        names = tuple(n.strip() for n in value.split(",") if n.strip())
        unknown = [n for n in names if n not in MODEL_NAMES]
        if unknown or not names:
            self.fail(f"choose from {', '.join(MODEL_NAMES)}; got {', '.join(unknown) or 'none'}",
                      param, ctx)
        return names


@click.command()
@read_run_option
@embed_options("--w2v-epochs")
@click.option("--models", type=_ModelList(), default=",".join(_STUDY.models), show_default=True,
              help="Study models to train, comma-separated.")
@config_option(StudyConfig, "seq_len", help="Tokens per sentence (truncate / right-pad).")
@config_option(StudyConfig, "latent", help="LSTM units of encoder and decoder.")
@config_option(StudyConfig, "batch_size", help="Sentences per step, every model.")
@config_option(StudyConfig, "budget", metavar="SECONDS",
               help="The equal wall-clock budget: seconds of training per model.")
@config_option(StudyConfig, "max_time", metavar="SECONDS",
               help="Cap on each model's total training time when training to convergence  "
                    "[default: none, early stopping decides]")
@config_option(StudyConfig, "epochs", help="Most epochs of a model.")
@config_option(StudyConfig, "patience",
               help="Convergence: epochs without a lower validation loss before stopping.")
@config_option(StudyConfig, "max_sentences",
               help="Train on a seeded subsample of this many sentences  [default: all]")
@config_option(StudyConfig, "val_sentences", help="Validation sentences per epoch.")
@config_option(StudyConfig, "eval_every", metavar="STEPS",
               help="Measure how much the decoder uses the code every STEPS steps (the step "
                    "trace's own-code, swapped-code and code-free losses), read in the report.")
@config_option(StudyConfig, "eval_sentences",
               help="Test sentences scored  [default: the whole test split]")
@force_option
@seed_option
@backend_option
@verbosity
def study(run_dir: Path, force: bool, seed: int, **options) -> None:
    """Train every model of the question on one corpus and score them on the same test
    sentences, at an equal training time and at convergence.

    \b
    Models (--models): embedding-cosine, embedding-mse and embedding-vmf (word2vec in and
    out; the last with the von Mises-Fisher NLL); onehot-2000 and onehot-full (softmax over
    the 1,998 most frequent words, or over the whole vocabulary); onehot-sampled (the whole
    vocabulary, trained with sampled softmax); classic-seed (the seed's Keras model as written: LSTM(2000) tanh
    output, categorical_crossentropy, Nesterov SGD 0.04; its blow-up is recorded, the study
    goes on); opt-sgd, opt-sgd-nesterov and opt-adam (the question's three optimizers on
    embedding-cosine).

    \b
    Each model trains --budget seconds and is scored; the main models then resume until
    early stopping (--patience, --epochs, --max-time) and are scored again (the seed's model
    and the optimizers answer at the equal time). Writes RUN/study/: report.md (tables, the
    seed model's failure, the optimizer answer, the curves read in plain words), report.json
    (every figure, the command, hardware and versions), trace.png (each step trace: loss,
    code-free floor, the share the code explains), curves.png and optimizers.png (accuracy
    and loss against training time). Rerunning the same command
    continues an interrupted study (--models may change: each model's phases are kept);
    --force starts it over, the embedding included. Training time counts compiling the
    step for each batch width, as the user's clock does. Defaults are the reference
    setup (2000-d vectors, seq-len 50, latent 256, 70 s per model), sized for a GPU.
    """
    from pipelines.study import check_study, run_study

    embed_opts = {k: options.pop(k) for k in option_names(embed_options())}
    config = StudyConfig(seed=seed, **options)  # checked before the run is created or locked
    with lock_run(run_dir, create=True):
        check_study(run_dir, config, force)  # before the embedding or RUN/config.json changes
        log.info("study 1/2: embed")
        run_embed_stage(run_dir, seed, force, **embed_opts)
        log.info("study 2/2: %d models", len(config.models))
        report = run_study(run_dir, config, force=force,
                           command=shlex.join(["pipe", *map(portable_path, sys.argv[1:])]))
    for name, entry in report["models"].items():
        scores = [entry[phase] and entry[phase].get("token_accuracy") for phase in
                  ("budget", "converged")]
        cells = ["-" if s is None else f"{s:.1%}" for s in scores]
        click.echo(f"{name:18s} at budget {cells[0]:>6s}   converged {cells[1]:>6s}   "
                   f"{entry['epochs'] or 0} epochs" +
                   ("   NON-FINITE" if entry["non_finite"] else ""))
    click.echo(f"\nreport: {Path(run_dir) / 'study' / 'report.md'}")
