"""``pipe run``: the whole story in one command."""

from __future__ import annotations

import logging

import click

from autoencoder.training.checkpoints import read_history
from embeddings.corpus import resolve_source
from embeddings.store.rundir import RunDir
from pipelines.cli.compare import compare_options, print_report
from pipelines.cli.embed import embed_configs, embed_options, print_embedded
from pipelines.cli.options import backend_option, force_option, option_names, run_option, seed_option, verbosity
from pipelines.cli.train import autoencoder_options, make_configs, training_options

log = logging.getLogger("seqae")

# Sized so that the whole run (gensim's Wikipedia excerpt, ~26,000 train sentences) takes under
# five minutes on 2 cores and its models visibly learn (docs/study.md, "What `pipe run` uses by
# default" says why each); every one can be overridden on the command line. The one-hot
# baseline is the strongest that fits that time: the whole word2vec vocabulary (sampled softmax
# by default above 8,192 words), measured above the 2,000-word cap there; the decoder is the
# one that measured best in that time (docs/study.md).
RUN_DEFAULTS = {
    "source": "wiki", "vector_size": 300, "min_count": 2, "w2v_epochs": 20,
    "seq_len": 16, "latent": 128, "lr": 0.004, "epochs": 20, "max_time": 90.0, "patience": 3,
    "val_sentences": 500, "vocab_cap": "none", "decoder": "repeat",
}
# What ``pipe run`` trains: the vector model, then the one-hot baseline it is measured against.
RUN_MODELS = (("embedding", "cosine"), ("onehot", "ce"))


def _for_kind(kind: str, options: dict) -> dict:
    """The options as the model of ``kind`` takes them: the one-hot softmax settings go to the
    one-hot model only."""
    return dict(options) if kind == "onehot" else {**options, "softmax": None}


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
def run(run_dir: RunDir, force: bool, seed: int, **options) -> None:
    """Run everything: embed, train the embedding model and the one-hot baseline, compare.

    \b
    1. embed     corpus -> sentences -> word2vec vectors (RUN/corpus, RUN/embeddings)
    2. train-ae  embedding-cosine, then the onehot-ce baseline over the whole word2vec
                 vocabulary (sampled softmax on a large one: --softmax) (RUN/models/...)
    3. compare   both on the held-out test sentences (RUN/compare/report.md), then
                 print validation accuracy against training time
    Finished stages are reused when their options are unchanged (an interrupted model is
    resumed) unless --force; a model trained with other options is replaced only with
    --force. Defaults are sized for gensim's Wikipedia excerpt (--corpus wiki)
    in under five minutes on 2 cores: each model trains --epochs epochs or --max-time seconds,
    whichever comes first; pass any stage option (--corpus, --seq-len, ...) to change them.
    """
    embed_opts = {k: options.pop(k) for k in option_names(embed_options())}
    compare_opts = {k: options.pop(k) for k in option_names(compare_options)}
    # Built, and the corpus found, before Keras starts and before embedding, so an inconsistent
    # option or a missing corpus fails in a second, not after stage one.
    corpus, word2vec = embed_configs(seed, **embed_opts)
    models = [make_configs(kind, loss, seed, **_for_kind(kind, options)) for kind, loss in RUN_MODELS]
    resolve_source(corpus.source)
    from pipelines.plots import text_curves
    from pipelines.run import run_pipeline

    result = run_pipeline(run_dir, corpus, word2vec, models, seed=seed, force=force,
                          split=compare_opts["split"], eval_sentences=compare_opts["eval_sentences"],
                          on_embedded=print_embedded)
    print_report(result.report, result.report_dir)
    click.echo("\n" + text_curves({name: read_history(run_dir.model(name).history)
                                    for name in result.statuses}))
