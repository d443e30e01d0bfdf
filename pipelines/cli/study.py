"""``pipe study``: the question answered with evidence, in one resumable command."""

from __future__ import annotations

import logging
import shlex
import sys

import click

from embeddings.corpus import resolve_source
from embeddings.store.files import portable_path
from embeddings.store.rundir import RunDir
from pipelines.cli.embed import embed_options, run_embed_stage
from pipelines.cli.options import (
    backend_option,
    config_option,
    force_option,
    lock_run,
    option_names,
    read_run_option,
    seed_option,
    verbosity,
)
from pipelines.study_config import SCORED, StudyConfig

log = logging.getLogger("seqae")


@click.command()
@read_run_option
@embed_options("--w2v-epochs")
@config_option(StudyConfig, "models", metavar="NAMES", help="Study models to train, comma-separated.")
@config_option(StudyConfig, "seq_len", help="Tokens per sentence (truncate / right-pad).")
@config_option(StudyConfig, "latent", help="LSTM units of encoder and decoder.")
@config_option(StudyConfig, "batch_size", help="Sentences per step, every model.")
@config_option(StudyConfig, "seeds", metavar="SEEDS",
               help="Train every model once per seed (subsample, order, initialisation).")
@config_option(StudyConfig, "lrs", metavar="RATES",
               help="Learning-rate sweep of the main Adam models, chosen on validation token "
                    "accuracy; one rate: no sweep.")
@config_option(StudyConfig, "sweep", metavar="SENTENCES",
               help="Sentence-passes of each sweep run (first seed).")
@config_option(StudyConfig, "budget", metavar="SENTENCES",
               help="The equal budget: sentence-passes (steps x batch) every model trains, "
                    "with no early stopping, before it is scored.")
@config_option(StudyConfig, "converge", "--converge/--no-converge",
               help="Train the main models on from the budget to convergence and score again.")
@config_option(StudyConfig, "patience", metavar="SENTENCES",
               help="Convergence: sentence-passes without a better validation token accuracy "
                    "before stopping (rounded up to whole epochs).")
@config_option(StudyConfig, "min_passes", metavar="SENTENCES",
               help="Convergence: no stopping before this many sentence-passes in all.")
@config_option(StudyConfig, "max_passes", metavar="SENTENCES",
               help="The most sentence-passes of a model in all  [default: no limit]")
@config_option(StudyConfig, "max_time", metavar="SECONDS",
               help="Convergence: stop a run once it has trained this long in all, earlier "
                    "phases included  [default: no cap]")
@config_option(StudyConfig, "epochs", help="Most epochs of a model.")
@config_option(StudyConfig, "max_sentences",
               help="Train on a seeded subsample of this many sentences  [default: all]")
@config_option(StudyConfig, "val_sentences", help="Validation sentences per epoch.")
@config_option(StudyConfig, "eval_every", metavar="STEPS",
               help="Measure how much the decoder uses the code every STEPS steps (the step "
                    "trace's own-code, swapped-code and zeroed-code losses), read in the report.")
@config_option(StudyConfig, "eval_sentences",
               help="Test sentences scored, the same for every run  [default: the whole test "
                    "split]")
@force_option
@seed_option
@backend_option
@verbosity
def study(run_dir: RunDir, force: bool, seed: int, **options) -> None:
    """Train the models of the question on one corpus for an equal number of sentence-passes,
    on several seeds, and score them on the same test sentences, at the equal budget and at
    convergence.

    \b
    Models (--models): embedding-cosine and embedding-cosine-ar (word2vec in and out, cosine
    loss; the repeat decoder or the autoregressive one), embedding-mse(-ar), embedding-vmf;
    onehot-2000, onehot-full, onehot-sampled(-ar) (softmax over 1,998 words or the whole
    vocabulary, sampled in training); onehot-sampled-w2v and onehot-sampled-ar-w2v (the same
    with the input projection started from the word2vec vectors); vmf-lambda* (the vMF NLL
    as its paper ran it); classic-seed (the seed's Keras model as written); opt-sgd,
    opt-sgd-nesterov and opt-adam (the question's optimizers on embedding-cosine).

    \b
    Each main Adam model first sweeps --lrs (--sweep sentence-passes, first seed) and keeps
    the rate with the best validation token accuracy; then every model trains --budget
    sentence-passes per seed with no early stopping and is scored; the main models then go on
    to convergence (--patience, --min-passes, --max-passes) and are scored again. Checkpoints
    are chosen by validation token accuracy. Writes RUN/study/: report.md (the rules, the
    sweep, tables of means with 95% intervals over seeds, the gaps that hold, the seed
    model's failure, the optimizer answer, the vMF runs, the curves read in plain words),
    report.json (every figure, command, hardware, versions), trace.png, curves.png and
    optimizers.png. Rerunning the same command continues an interrupted study; --force
    starts it over, the embedding included. --seed is the embedding's. Defaults are the
    reference setup (--vector-size, --seq-len, --latent), sized for a GPU.
    """
    embed_opts = {k: options.pop(k) for k in option_names(embed_options())}
    config = StudyConfig(**options)  # checked before the run is created or locked
    resolve_source(embed_opts["source"])  # and the corpus found, before Keras starts
    from pipelines.study import check_study, run_study

    with lock_run(run_dir, create=True):
        check_study(run_dir, config, force)  # before the embedding or RUN/config.json changes
        log.info("study 1/2: embed")
        run_embed_stage(run_dir, seed, force, **embed_opts)
        log.info("study 2/2: %d models", len(config.models))
        report = run_study(run_dir, config, force=force,
                           command=shlex.join(["pipe", *map(portable_path, sys.argv[1:])]))
    for name, entry in report["models"].items():
        stats = report["summary"][name]
        cells = [(stats[phase]["token_accuracy"] or {}).get("mean") for phase in SCORED]
        cells = ["-" if c is None else f"{c:.1%}" for c in cells]
        click.echo(f"{name:22s} lr {entry['settings']['lr'] or 0:<7g} at budget {cells[0]:>6s}   "
                   f"converged {cells[1]:>6s}   ({stats['seeds']} seeds, mean)")
    click.echo(f"\nreport: {run_dir.study / 'report.md'}")
