"""``pipe run``: the whole story in one command."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from embeddings.io import SeqaeError
from pipelines.common import backend_option, force_option, option_names, run_option, seed_option, verbosity
from pipelines.compare import compare_options, run_compare
from pipelines.embed import embed_options, run_embed_stage
from pipelines.train import autoencoder_options, make_configs, training_options

log = logging.getLogger("seqae")

# Sized so that the whole run (gensim's Wikipedia excerpt, ~26,000 train sentences) takes under
# five minutes on 2 cores and its models visibly learn (docs/study.md, "What `pipe run` uses by
# default" says why each); every one can be overridden on the command line.
RUN_DEFAULTS = {
    "source": "wiki", "vector_size": 300, "min_count": 2, "w2v_epochs": 20,
    "seq_len": 16, "latent": 128, "lr": 0.004, "epochs": 2, "max_time": 100.0, "patience": 3,
    "val_sentences": 500,
}
MODELS = (("embedding", "cosine"), ("onehot", "ce"))


@click.command(context_settings={"default_map": RUN_DEFAULTS})
@run_option(create=True)
@embed_options("--w2v-epochs")
@autoencoder_options
@training_options
@compare_options
@force_option
@seed_option
@backend_option
@verbosity
def run(run_dir: Path, force: bool, seed: int, **options) -> None:
    """Run everything: embed, train the embedding model and the one-hot baseline, compare.

    \b
    1. embed     corpus -> sentences -> word2vec vectors (RUN/corpus, RUN/embeddings)
    2. train-ae  embedding-cosine, then the onehot-ce baseline (RUN/models/...)
    3. compare   both on the held-out test sentences (RUN/compare/report.md), then
                 print validation accuracy against training time
    Finished stages are reused when their options are unchanged (an interrupted model is
    resumed) unless --force; a model trained with other options is replaced only with
    --force. Defaults are sized for gensim's Wikipedia excerpt (--corpus wiki)
    in under five minutes on 2 cores: each model trains 2 epochs or 100 s, whichever comes
    first; pass any stage option (--corpus, --epochs, --max-time, --seq-len, ...) to change them.
    """
    from autoencoder import model_status, train_autoencoder
    from autoencoder.checkpoints import read_history
    from autoencoder.plots import text_curves
    from embeddings.rundir import model_dir

    embed_opts = {k: options.pop(k) for k in option_names(embed_options())}
    compare_opts = {k: options.pop(k) for k in option_names(compare_options)}
    # Built before embedding, so an inconsistent option fails in a second, not after stage one.
    configs = [make_configs(kind, loss, seed, **dict(options)) for kind, loss in MODELS]
    log.info("stage 1/3: embed")
    run_embed_stage(run_dir, seed, force, **embed_opts)
    names = [ae_config.default_name for ae_config, _ in configs]
    statuses = ["absent" if force else model_status(run_dir, name, *config)
                for name, config in zip(names, configs, strict=True)]
    stale = [name for name, status in zip(names, statuses, strict=True) if status == "stale"]
    if stale:  # trained with other options, perhaps for hours: replaced only when asked
        raise SeqaeError(f"model {', '.join(stale)} in {run_dir} was trained with other options; "
                         "retrain it with --force, or use another --run")
    for step, (name, status, (ae_config, train_config)) in enumerate(
            zip(names, statuses, configs, strict=True), 1):
        log.info("stage 2/3: train-ae %s (%d of %d): %s", name, step, len(MODELS),
                 {"finished": "reusing the finished model", "partial": "resuming"}.get(
                     status, "training"))
        if status != "finished":
            train_autoencoder(run_dir, ae_config, train_config, name=name,
                              resume=status == "partial", force=True)
    log.info("stage 3/3: compare")
    run_compare(run_dir, names, seed=seed, **compare_opts)
    click.echo("\n" + text_curves({name: read_history(model_dir(run_dir, name) / "history.csv")
                                    for name in names}))
