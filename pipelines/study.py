"""The study: the models of the question trained on one run for an equal number of
sentence-passes, on several seeds, to convergence, and scored by :func:`compare_models` on the
same held-out sentences against the original words.

The models (:data:`STUDY_MODELS`) are the proposal (word2vec in and out, cosine loss, either
decoder), the one-hot baseline over the whole vocabulary (sampled softmax; with and without its
input projection started from the same word2vec vectors), the fair vMF runs, the seed's own model
and the three optimizers the question tried.

Each run (a model, a learning rate, a seed: ``RUN/models/MODEL-lrLR-seedSEED``) goes through
the phases of :data:`PHASES`: the sweep (the main Adam models, first seed, each rate of
``lrs``, ``sweep`` sentence-passes; the rate with the best validation token accuracy is every
seed's), the equal budget (``budget`` sentence-passes, no early stopping; scored), and training
on to convergence (patience in sentence-passes, a minimum; scored again). Every checkpoint is
chosen by validation token accuracy. Progress is kept in ``RUN/study/progress.json`` after
every phase, so an interrupted study resumes where it stopped; a model that produces a
non-finite loss is stopped by the trainer's guard, and the study records it and goes on.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, fields
from pathlib import Path

from autoencoder.backends import current_name, hardware
from autoencoder.data.sentences import count_lines
from autoencoder.training.checkpoints import (
    read_history,
    read_state,
    sentence_passes,
    sentences_seen,
)
from autoencoder.training.trace import read_steps
from autoencoder.training.trainer import NonFiniteLossError
from embeddings.core.params import check_type
from embeddings.prepare import load_corpus
from embeddings.store.errors import SeqaeError
from embeddings.store.files import atomic_open, portable_path
from embeddings.store.jsonfile import read_json, write_json
from embeddings.store.machine import library_versions
from embeddings.store.manifests import write_manifest
from embeddings.store.rundir import (
    STUDY,
    ModelDir,
    RunDir,
    check_replaceable,
    is_seqae_model,
    writes_run,
)
from embeddings.store.schema import Fields, ListOf, MapOf
from pipelines.compare import compare_models
from pipelines.curve import describe
from pipelines.models import MODEL_CONFIG_SCHEMA, model_status
from pipelines.plots import plot_study, plot_traces
from pipelines.study_config import PHASES, SCORED, StudyConfig, StudyModel
from pipelines.study_stats import summarise, timing
from pipelines.train import train_autoencoder

log = logging.getLogger(__name__)

STUDY_FILES = ("progress.json", "report.json", "report.md", "curves.png", "optimizers.png",
               "trace.png")
PROGRESS_SCHEMA = Fields({"config": dict},
                         {"runs": MapOf(dict), "sweep": MapOf(dict), "created": ListOf(str),
                          "models": MapOf(dict)},  # (models: the runs of earlier versions)
                         name="study progress")


@writes_run()
def run_study(run: RunDir, config: StudyConfig, force: bool = False,
              command: str | None = None) -> dict:
    """Train and score every model of ``config`` on the run's corpus and vectors; write
    ``RUN/study/`` and return the report (see :func:`write_study`).

    A study of the same configuration already in ``RUN/study/progress.json`` is continued
    (finished phases are not redone, an interrupted run resumes) unless ``force``.
    ``command`` is the command line recorded in the report.
    """
    check_type("config", config, StudyConfig)
    progress = check_study(run, config, force)
    run.record("study", {**config.to_dict(), "backend": current_name()})
    study = _Study(run, config, progress, train_sentences(run, config), force)
    for model in config.study_models:
        lr = study.sweep(model)
        for seed in config.seeds if lr is not None else ():
            for phase in SCORED if config.converge and model.converge else SCORED[:1]:
                study.run_phase(model, lr, seed, phase)
    report = study_report(run, config, progress, study.epoch, command)
    _write_study(run, report)
    return report


def train_sentences(run_dir: str | os.PathLike | RunDir, config: StudyConfig) -> int:
    """Training sentences of an epoch: the train split, or its ``max_sentences`` subsample."""
    count = count_lines(load_corpus(run_dir).split_path("train"))
    return min(count, config.max_sentences or count)


@dataclass
class _Study:
    """A study under way on ``run``: its options, the progress it records in
    ``RUN/study/progress.json``, the sentences of an epoch and whether ``force`` retrains."""

    run: RunDir
    config: StudyConfig
    progress: dict
    epoch: int
    force: bool

    def sweep(self, model: StudyModel) -> float | None:
        """The learning rate of ``model``: the sweep's best by validation token accuracy (each
        rate's run on the first seed trained ``config.sweep`` sentence-passes; a run that blew
        up is out), or its own; None when every rate blew up."""
        config, progress = self.config, self.progress
        rates = config.lrs_of(model)
        if len(rates) == 1:
            return rates[0]
        sweep = progress["sweep"].setdefault(model.name, {"val_token_accuracy": {}})
        for lr in rates:
            name = config.run_name(model.name, lr, config.seeds[0])
            self.run_phase(model, lr, config.seeds[0], "sweep")
            if f"{lr:g}" not in sweep["val_token_accuracy"]:  # read once: the chosen run goes on
                history = read_history(self.run.model(name).history)
                scores = [row["val_token_accuracy"] for row in history
                          if row.get("val_token_accuracy") is not None]
                # A rate that blew up is out of the running, whatever it reached before.
                usable = scores and not progress["runs"][name].get("non_finite")
                sweep["val_token_accuracy"][f"{lr:g}"] = max(scores) if usable else None
        scored = {lr: sweep["val_token_accuracy"][f"{lr:g}"] for lr in rates}
        best = max((lr for lr in rates if scored[lr] is not None), key=scored.get, default=None)
        sweep["chosen"] = best
        self.save()
        if best is None:
            log.warning("study: no rate of the sweep trained %s to a finite validation figure; "
                        "the model is left out", model.name)
            return None
        log.info("study: %s learns best at lr %g (validation token accuracy %s)", model.name,
                 best, ", ".join(f"{lr:g}: {'-' if a is None else f'{a:.1%}'}"
                                 for lr, a in scored.items()))
        return best

    def run_phase(self, model: StudyModel, lr: float, seed: int, phase: str) -> None:
        """Train one run through ``phase`` (unless recorded) and score it (the scored phases)."""
        name = self.config.run_name(model.name, lr, seed)
        if name not in self.progress["created"]:  # recorded before its folder is made
            self.progress["created"].append(name)
            self.save()
        record = self.progress["runs"].setdefault(name, {"model": model.name, "lr": lr,
                                                         "seed": seed})
        if phase in record or record.get("non_finite"):
            return
        started = time.perf_counter()
        event, scoreable = self._train(model, lr, seed, phase, earlier=self._goes_on(name, record))
        if event is not None:
            record["non_finite"] = event
        record[phase] = (self._score(name) if scoreable else None) if phase in SCORED else {}
        # Training and scoring, in the process that finished the phase.
        record[f"{phase}_wall_s"] = time.perf_counter() - started
        self.save()

    def _goes_on(self, name: str, record: dict) -> bool:
        """Whether a run goes on from its earlier phase's checkpoint: when one is recorded and
        it ended on an epoch's end (a limit inside an epoch would skip the rest of that epoch's
        batches, so that the run's data order would not be its seed's; then it starts over)."""
        if not any(p in record for p in PHASES):
            return False
        seen = sentences_seen(read_history(self.run.model(name).history))
        return seen % self.epoch == 0 or "budget" in record

    def _train(self, model: StudyModel, lr: float, seed: int, phase: str,
               earlier: bool) -> tuple[dict | None, bool]:
        """Train one run through ``phase``: from scratch when no earlier phase of it is recorded
        (or to resume an interrupted one), else on from the earlier phase's checkpoint.

        Returns the non-finite event that stopped it (None if none), and whether the model
        folder holds a checkpoint of this study to score: a blow-up in the first epoch of a
        model trained from scratch leaves none (and a model it replaced is put back, not to be
        scored).
        """
        name = self.config.run_name(model.name, lr, seed)
        ae, train = self.config.configs(model, phase, lr, seed, self.epoch)
        status = ("absent" if self.force and not earlier
                  else model_status(self.run, name, ae, train))
        if status == "finished":
            return None, True
        resume = status == "partial" or earlier
        log.info("study: %s, %s phase (%s)", name, phase,
                 "resuming" if resume else "training from scratch")
        try:
            train_autoencoder(self.run, ae, train, name=name, resume=resume, force=not resume)
        except NonFiniteLossError as exc:
            log.warning("study: %s stopped: %s", name, exc)
            return exc.event, resume or exc.event["epoch"] > 1
        return None, True

    def _score(self, name: str) -> dict:
        """``compare``'s figures for run ``name`` on the test split (the same sentences for
        every run), with its reconstructions of the sample sentences."""
        report = compare_models(self.run, [name], split="test",
                                eval_sentences=self.config.eval_sentences,
                                seed=self.config.seeds[0])
        figures = report["models"][name]
        figures.pop("accuracy_by_length", None)
        figures["samples"] = [{"original": s["original"], "reconstruction": s[name]}
                              for s in report["samples"]]
        figures["test_sentences"] = report["sentences"]
        return figures

    def save(self) -> None:
        _save_progress(self.run.study, self.progress)


def check_study(run_dir: str | os.PathLike | RunDir, config: StudyConfig,
                force: bool = False) -> dict:
    """Check, before anything is written, that the study may write ``RUN/study`` and every model
    folder of ``config``; return the progress to continue (see :func:`run_study`).

    A model folder of a run's name that no study of this run created (your own
    ``embedding-cosine-lr0.001-seed0``, say) is refused without ``force``, naming it."""
    run = RunDir.of(run_dir)
    check_replaceable(run, (STUDY,))
    progress = _load_progress(run.study, config, force)
    folders = {name: run.model(name) for name in (
        config.run_name(model.name, lr, seed) for model in config.study_models
        for lr in config.lrs_of(model) for seed in config.seeds)}
    present = {name: folder for name, folder in folders.items()
               if folder.path.exists() or folder.path.is_symlink()}
    foreign = [name for name, folder in present.items() if not is_seqae_model(folder)]
    if foreign:  # never replaced, even with --force
        raise SeqaeError(f"{run.models} holds {', '.join(foreign)}, not model folders "
                         "seqae wrote: they are left alone; move them away or use another --run")
    if not force:  # (--force retrains them whatever their records say)
        for folder in present.values():  # a damaged record is refused now, not after embedding
            if folder.state.exists():
                read_state(folder.state)
            if folder.config.exists():
                read_json(folder.config, MODEL_CONFIG_SCHEMA)
        theirs = [name for name in present if name not in progress["created"]]
        if theirs:
            raise SeqaeError(f"{run.models} already holds {', '.join(theirs)}, which no "
                             "study of this run trained: the study would replace them; leave them "
                             "out (--models, models=), replace them (--force, force=True) or give "
                             "the study a run of its own (--run; run_embed, then run_study)")
    return progress


def _load_progress(out: Path, config: StudyConfig, force: bool) -> dict:
    """The recorded phases of an earlier study with these options (``--models`` may differ:
    each model's phases are its own), or a fresh record. ``created`` lists the models a study
    of this run made, kept when the options change (those folders are the study's to
    replace), kept by ``force`` too."""
    path = out / "progress.json"
    fresh = {"config": config.to_dict(), "runs": {}, "sweep": {}, "created": []}
    if not path.exists():
        return fresh
    progress = read_json(path, PROGRESS_SCHEMA)
    created = progress.get("created", list(progress.get("models", {})))  # older records lack it
    if force:  # the folders an earlier study made stay the study's to replace
        return {**fresh, "created": created}
    # The models, and whether to go on to convergence, are each run's own phases: not a change.
    free = dict.fromkeys(("models", "converge"))
    if {**progress["config"], **free} == {**config.to_dict(), **free}:
        return {**fresh, **progress, "config": config.to_dict(), "created": created}
    log.info("study: options changed since %s; starting over", path)
    return {**fresh, "created": created}


def _save_progress(out: Path, progress: dict) -> None:
    write_json(out / "progress.json", progress)
    _write_manifest(out)


def _write_manifest(out: Path) -> None:
    write_manifest(out, tuple(f for f in STUDY_FILES if (out / f).exists()), {"stage": "study"})


def study_report(run_dir: str | os.PathLike | RunDir, config: StudyConfig, progress: dict,
                 epoch: int, command: str | None = None) -> dict:
    """The study's figures: per run (``runs``) its model, rate and seed, scores at the budget
    and at convergence, training history, timing, curve reading and any non-finite event; per
    model (``models``) its description and settings, the sweep, and the mean and 95% interval
    over seeds of each figure; the paired differences between models (``differences``).
    ``epoch``: the training sentences of an epoch (:func:`train_sentences`)."""
    run = RunDir.of(run_dir)
    runs, entries = {}, {}
    for model in config.study_models:
        lr = (progress["sweep"].get(model.name, {}).get("chosen")
              if len(config.lrs_of(model)) > 1 else model.lr)
        entries[model.name] = {
            "description": model.description, "group": model.group,
            "settings": {f.name: getattr(model, f.name) for f in fields(model)
                         if f.name not in ("name", "description", "group")} | {"lr": lr},
            "sweep": progress["sweep"].get(model.name),
            "runs": [config.run_name(model.name, lr, seed) for seed in config.seeds]
            if lr is not None else []}
        for name in entries[model.name]["runs"]:
            if name in progress["runs"]:
                runs[name] = _run_entry(run.model(name), config, progress["runs"][name])
    wall = sum(record.get(f"{phase}_wall_s", 0.0) for record in progress["runs"].values()
               for phase in PHASES)
    corpus = run.stage_options("embed")
    if corpus and isinstance(corpus.get("source"), str):
        corpus = {**corpus, "source": portable_path(corpus["source"])}
    return {"run": portable_path(str(run)), "command": command,
            "study_wall_s": wall,
            "config": config.to_dict(), "hardware": hardware(), "versions": library_versions(),
            "corpus": corpus, "train_sentences": epoch,
            "models": entries, "runs": runs, **summarise(entries, runs)}


def _run_entry(folder: ModelDir, config: StudyConfig, record: dict) -> dict:
    state = read_state(folder.state) if folder.state.exists() else {}
    history = read_history(folder.history)
    # Each phase compiles its steps again: the first epoch after each phase's end is not timed.
    recorded = [phase for phase in PHASES if phase in record]
    seen = [passes for passes, _ in sentence_passes(history)]
    restarts = {0} | {next((i + 1 for i, s in enumerate(seen) if s >= getattr(config, phase)), 0)
                      for phase in recorded[:-1]}
    return {"model": record["model"], "lr": record["lr"], "seed": record["seed"],
            **{phase: record.get(phase) for phase in SCORED},
            "non_finite": record.get("non_finite"), "stopped": state.get("stopped"),
            "epochs": state.get("epoch"), "best_epoch": state.get("best_epoch"),
            "timing": timing(history, restarts), "history": history,
            "curve": describe(folder.name, read_steps(folder.steps))}


def write_study(report: dict, run_dir: str | os.PathLike | RunDir) -> Path:
    """Write ``RUN/study/``: report.json, report.md, curves.png (accuracy and loss against
    sentence-passes, each model's first seed), optimizers.png (the optimizer question) and
    trace.png (each model's step trace: loss, codes zeroed and swapped, code-reliance gap)."""
    with RunDir.of(run_dir).writing("write_study()") as run:  # the lock names the public call
        return _write_study(run, report)


def _write_study(run: RunDir, report: dict) -> Path:
    """:func:`write_study`, for a caller that holds the run's lock."""
    from pipelines.study_report import markdown

    out = run.study
    write_json(out / "report.json", report)
    # The figures show each model's first seed.
    first = {model: entry["runs"][0] for model, entry in report["models"].items()
             if entry["runs"] and entry["runs"][0] in report["runs"]}
    histories = {model: report["runs"][name]["history"] for model, name in first.items()}
    plot_study(histories, out / "curves.png")
    optimizers = {n: h for n, h in histories.items()
                  if report["models"][n]["group"] == "optimizers" or n == "embedding-cosine"}
    plot_study(optimizers, out / "optimizers.png")
    plot_traces({model: read_steps(run.model(name).steps)
                 for model, name in first.items()}, out / "trace.png")
    with atomic_open(out / "report.md") as handle:
        handle.write(markdown(report))
    _write_manifest(out)
    return out

