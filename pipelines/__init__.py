"""The pipelines of seqae as a library: each works from Python without the command line.

``embed`` (stage one into RUN/), ``train`` (a model folder under RUN/models: train, resume,
replace safely), ``compare`` (every model on the same held-out sentences), ``run`` (all three, as
``pipe run``), ``study`` (every model of the question), ``codes`` (sentence codes and the
sentence index), ``models`` (the model folder's files), ``plots`` and ``study_report``;
``params`` declares the keyword arguments of the calls that take no config object.
The click commands in ``pipelines.cli`` only parse, call these and print.
"""

from embeddings.core.lazy import lazy_exports

_EXPORTS = {
    "pipelines.embed": ("EmbedResult", "load_embeddings", "run_embed"),
    "pipelines.train": ("train_autoencoder",),
    "pipelines.models": ("load_autoencoder", "load_run_model", "model_status"),
    "pipelines.reconstruct": ("reconstruct_sentence",),
    "pipelines.compare": ("compare_models", "format_table", "write_report"),
    "pipelines.run": ("RunResult", "run_pipeline"),
    "pipelines.study": ("run_study",),
    "pipelines.study_config": ("StudyConfig",),
    "pipelines.codes": ("encode_file", "interpolate", "nearest_sentences"),
    "embeddings.store.rundir": ("ModelDir", "RunDir", "list_models"),
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
