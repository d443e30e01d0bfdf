"""The whole story in one call, as ``pipe run``: embed, train each model (reusing a finished
one, resuming an interrupted one), compare them on the same held-out sentences."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from autoencoder.config import AutoencoderConfig, TrainConfig
from embeddings.core.params import check_type
from embeddings.prepare import CorpusConfig
from embeddings.pretrained import PretrainedVectors
from embeddings.store.errors import SeqaeError
from embeddings.store.rundir import RunDir, writes_run
from embeddings.word2vec import Word2VecConfig
from pipelines.compare import run_compare
from pipelines.embed import EmbedResult, run_embed
from pipelines.models import model_status
from pipelines.params import CompareParams
from pipelines.train import train_autoencoder

log = logging.getLogger(__name__)

_ACTIONS = {"finished": "reusing the finished model", "partial": "resuming", "absent": "training"}


@dataclass(frozen=True)
class RunResult:
    """What :func:`run_pipeline` did: the embedding stage, each model's status before it
    (``absent``, ``partial`` or ``finished``), and the comparison report and its folder."""

    embedded: EmbedResult
    statuses: dict[str, str]
    report: dict
    report_dir: Path


@writes_run(create=True)
def run_pipeline(run: RunDir, corpus: CorpusConfig,
                 word2vec: Word2VecConfig | PretrainedVectors,
                 models: Sequence[tuple[AutoencoderConfig, TrainConfig]], *,
                 split: str = CompareParams.split,
                 eval_sentences: int | None = CompareParams.eval_sentences,
                 seed: int = CompareParams.seed, force: bool = False,
                 on_embedded: Callable[[EmbedResult], None] | None = None) -> RunResult:
    """Embed (word2vec, or ``PretrainedVectors`` read from a file: :func:`run_embed`), train
    ``models`` (named ``KIND-LOSS``) and compare them on ``split``.

    A finished model trained with these options is reused and an interrupted one resumed,
    unless ``force``; a model trained with other options (perhaps for hours) is refused, never
    silently replaced, before anything is written. ``on_embedded`` is called with the stage
    one result before training starts (the command line prints its statistics there).
    """
    CompareParams(split=split, eval_sentences=eval_sentences, seed=seed)  # before hours of work
    for ae, train in models:  # every model checked before the embedding runs
        check_type("a model's AutoencoderConfig", ae, AutoencoderConfig)
        check_type("a model's TrainConfig", train, TrainConfig)
    log.info("stage 1/3: embed")
    embedded = run_embed(run, corpus, word2vec, force=force)
    if on_embedded is not None:
        on_embedded(embedded)
    names = [ae.default_name for ae, _ in models]
    statuses = {name: "absent" if force else model_status(run, name, *configs)
                for name, configs in zip(names, models, strict=True)}
    stale = [name for name, status in statuses.items() if status == "stale"]
    if stale:
        raise SeqaeError(f"model {', '.join(stale)} in {run} was trained with other options; "
                         "retrain it with --force (force=True), or use another --run")
    for step, (name, (ae, train)) in enumerate(zip(names, models, strict=True), 1):
        log.info("stage 2/3: train-ae %s (%d of %d): %s", name, step, len(models),
                 _ACTIONS[statuses[name]])
        if statuses[name] != "finished":
            train_autoencoder(run, ae, train, name=name, resume=statuses[name] == "partial",
                              force=True)
    log.info("stage 3/3: compare")
    report, out = run_compare(run, names, split=split, eval_sentences=eval_sentences, seed=seed)
    return RunResult(embedded, statuses, report, out)
