"""The study: every model of the question trained on one run, at an equal wall-clock budget and
to convergence, scored by :func:`compare_models` on the same held-out sentences.

The models (:data:`STUDY_MODELS`) are the proposal (embedding input and output, cosine and MSE
losses), the one-hot baseline done right (softmax and cross-entropy over a capped vocabulary,
and over the whole word2vec vocabulary), the seed's own model exactly as written (``classic``:
tanh ``LSTM(cap)`` output, Keras's ``categorical_crossentropy``, Nesterov SGD), and the three
optimizers the question tried, on embedding-cosine.

Each model is trained in two phases on the same checkpoint: first until ``budget`` seconds of
training (:attr:`TrainConfig.max_time`), then scored; then resumed until early stopping (or
``max_time``), and scored again. Progress is kept in ``RUN/study/progress.json`` after every
phase, so an interrupted study resumes where it stopped. A model that produces a non-finite
loss is stopped by the trainer's guard; the study records the event and goes on.
"""

from __future__ import annotations

import logging
import os
import platform
import time
from dataclasses import fields
from pathlib import Path

from autoencoder.backends import current_name
from autoencoder.training.checkpoints import read_history, read_state
from autoencoder.training.trace import STEPS_FILE, read_steps
from pipelines.compare import compare_models
from pipelines.curve import describe
from pipelines.plots import plot_study, plot_traces
from pipelines.models import MODEL_CONFIG_SCHEMA, model_status
from pipelines.train import train_autoencoder
from pipelines.study_config import PHASES, STUDY_MODELS, StudyConfig, StudyModel
from autoencoder.training.trainer import NonFiniteLossError
from embeddings.core.io import (
    SeqaeError, atomic_open, cpu_model, library_versions, portable_path, read_json, write_json,
    write_manifest,
)
from embeddings.core.params import check_type
from embeddings.core.rundir import RunDir, check_replaceable, is_seqae_model, writes_run
from embeddings.core.schema import Fields, ListOf, MapOf

log = logging.getLogger(__name__)

STUDY_DIR = "study"
STUDY_FILES = ("progress.json", "report.json", "report.md", "curves.png", "optimizers.png")
PROGRESS_SCHEMA = Fields({"config": dict, "models": MapOf(dict)}, {"created": ListOf(str)},
                         name="study progress")


@writes_run()
def run_study(run_dir: Path, config: StudyConfig, force: bool = False,
              command: str | None = None) -> dict:
    """Train and score every model of ``config`` on the run's corpus and vectors; write
    ``RUN/study/`` and return the report (see :func:`write_study`).

    A study of the same configuration already in ``RUN/study/progress.json`` is continued
    (finished phases are not redone, an interrupted model resumes) unless ``force``.
    ``command`` is the command line recorded in the report.
    """
    run_dir = Path(run_dir)
    check_type("config", config, StudyConfig)
    progress = check_study(run_dir, config, force)
    RunDir(run_dir).record("study", {**config.to_dict(), "backend": current_name()})
    out = run_dir / STUDY_DIR
    chosen = [m for m in STUDY_MODELS if m.name in config.models]
    for model in chosen:
        if model.name not in progress["created"]:  # recorded before its folder is made
            progress["created"].append(model.name)
            _save_progress(out, progress)
        record = progress["models"].setdefault(model.name, {})
        for phase in model.phases:
            if phase in record or record.get("non_finite"):
                continue
            started = time.perf_counter()
            event, scoreable = _train_phase(run_dir, config, model, phase,
                                            fresh=force and phase == "budget")
            if event is not None:
                record["non_finite"] = event
            record[phase] = _score(run_dir, model.name, config) if scoreable else None
            # Training and scoring, in the process that finished the phase.
            record[f"{phase}_wall_s"] = time.perf_counter() - started
            _save_progress(out, progress)
    report = study_report(run_dir, config, progress, chosen, command)
    write_study(report, run_dir)
    return report


def _train_phase(run_dir: Path, config: StudyConfig, model: StudyModel,
                 phase: str, fresh: bool) -> tuple[dict | None, bool]:
    """Train ``model`` through ``phase``: the budget phase starts from scratch (or resumes an
    interrupted one), the convergence phase resumes the budget phase's checkpoint.

    Returns the non-finite event that stopped it (None if none), and whether the model folder
    holds a checkpoint of this study to score: a blow-up in the first epoch of a model trained
    from scratch leaves none (and a model it replaced is put back, not to be scored).
    """
    ae, train = config.configs(model, phase)
    status = "absent" if fresh else model_status(run_dir, model.name, ae, train)
    if status == "finished":
        return None, True
    resume = status == "partial" or phase == "converged"
    log.info("study: %s, %s phase (%s)", model.name, phase,
             "resuming" if resume else "training from scratch")
    try:
        train_autoencoder(run_dir, ae, train, name=model.name, resume=resume, force=not resume)
    except NonFiniteLossError as exc:
        log.warning("study: %s stopped: %s", model.name, exc)
        return exc.event, resume or exc.event["epoch"] > 1
    return None, True


def _score(run_dir: Path, name: str, config: StudyConfig) -> dict:
    """``compare``'s figures for model ``name`` on the test split, with its reconstructions of
    the sample sentences."""
    report = compare_models(run_dir, [name], split="test", max_sentences=config.eval_sentences,
                            seed=config.seed)
    figures = report["models"][name]
    figures.pop("accuracy_by_length", None)
    figures["samples"] = [{"original": s["original"], "reconstruction": s[name]}
                          for s in report["samples"]]
    figures["test_sentences"] = report["sentences"]
    return figures


def check_study(run_dir: Path, config: StudyConfig, force: bool = False) -> dict:
    """Check, before anything is written, that the study may write ``RUN/study`` and every model
    folder of ``config``; return the progress to continue (see :func:`run_study`).

    A model folder of a study model's name that no study of this run created (your own
    ``embedding-cosine``, say) is refused without ``force``, naming it."""
    run_dir = Path(run_dir)
    check_replaceable(run_dir, (STUDY_DIR,))
    progress = _load_progress(run_dir / STUDY_DIR, config, force)
    present = [name for name in config.models
               if RunDir(run_dir).model(name).exists() or RunDir(run_dir).model(name).is_symlink()]
    foreign = [name for name in present if not is_seqae_model(RunDir(run_dir).model(name))]
    if foreign:  # never replaced, even with --force
        raise SeqaeError(f"{RunDir(run_dir).models} holds {', '.join(foreign)}, not model folders "
                         "seqae wrote: they are left alone; move them away or use another --run")
    if not force:  # (--force retrains them whatever their records say)
        for name in present:  # a damaged record is refused now, not after the embedding
            folder = RunDir(run_dir).model(name)
            if (folder / "state.json").exists():
                read_state(folder / "state.json")
            if (folder / "config.json").exists():
                read_json(folder / "config.json", MODEL_CONFIG_SCHEMA)
        theirs = [name for name in present if name not in progress["created"]]
        if theirs:
            raise SeqaeError(f"{RunDir(run_dir).models} already holds {', '.join(theirs)}, which no "
                             "study of this run trained: the study would replace them; leave them "
                             "out (--models, models=), replace them (--force, force=True) or give "
                             "the study a run of its own (--run; run_embed, then run_study)")
    return progress


def _load_progress(out: Path, config: StudyConfig, force: bool) -> dict:
    """The recorded phases of an earlier study with these options (``--models`` may differ:
    each model's phases are its own), or a fresh record. ``created`` lists the models a study
    of this run made, kept when the options change (those folders are the study's to
    replace), dropped by ``force``."""
    path = out / "progress.json"
    fresh = {"config": config.to_dict(), "models": {}, "created": []}
    if force or not path.exists():
        return fresh
    progress = read_json(path, PROGRESS_SCHEMA)
    created = progress.get("created", list(progress["models"]))  # older records lack it
    saved = StudyConfig.upgrade(progress["config"])
    if {**saved, "models": None} == {**config.to_dict(), "models": None}:
        return {**progress, "config": config.to_dict(), "created": created}
    log.info("study: options changed since %s; starting over", path)
    return {**fresh, "created": created}


def _save_progress(out: Path, progress: dict) -> None:
    write_json(out / "progress.json", progress)
    _write_manifest(out)


def _write_manifest(out: Path) -> None:
    write_manifest(out, tuple(f for f in STUDY_FILES if (out / f).exists()), {"stage": "study"})


def hardware() -> dict:
    """What the study ran on: machine, cores and the backend's devices."""

    backend = current_name()
    if backend == "jax":
        import jax

        devices = [f"{d.platform}:{d.device_kind}" for d in jax.devices()]
    else:
        import tensorflow as tf

        devices = [f"{d.device_type}:{d.name}" for d in tf.config.list_logical_devices()]
    return {"machine": platform.machine(), "processor": cpu_model(),
            "system": platform.system(), "cpu_count": os.cpu_count(),
            "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
            else None, "backend": backend, "devices": devices}


def study_report(run_dir: Path, config: StudyConfig, progress: dict,
                 models: list[StudyModel], command: str | None = None) -> dict:
    """The study's figures: per model its description, settings, scores at the budget and at
    convergence, training history and any non-finite event."""
    entries = {}
    for model in models:
        folder = RunDir(run_dir).model(model.name)
        record = progress["models"].get(model.name, {})
        state = (read_state(folder / "state.json") if (folder / "state.json").exists()
                 else {})
        entries[model.name] = {
            "description": model.description, "group": model.group,
            "settings": {f.name: getattr(model, f.name) for f in fields(model)
                         if f.name not in ("name", "description", "group")},
            **{phase: record.get(phase) for phase in PHASES},
            "non_finite": record.get("non_finite"), "stopped": state.get("stopped"),
            "epochs": state.get("epoch"), "best_epoch": state.get("best_epoch"),
            "history": read_history(folder / "history.csv"),
            "curve": describe(model.name, read_steps(folder / STEPS_FILE)),
        }
    wall = sum(record.get(f"{phase}_wall_s", 0.0) for record in progress["models"].values()
               for phase in PHASES)
    corpus = RunDir(run_dir).stage_options("embed")
    if corpus and isinstance(corpus.get("source"), str):
        corpus = {**corpus, "source": portable_path(corpus["source"])}
    return {"run": portable_path(str(run_dir)), "command": command,
            "study_wall_s": wall,
            "config": config.to_dict(), "hardware": hardware(), "versions": library_versions(),
            "corpus": corpus,
            "models": entries}


def write_study(report: dict, run_dir: Path) -> Path:
    """Write ``RUN/study/``: report.json, report.md, curves.png (accuracy and loss against
    training time, every model), optimizers.png (the optimizer question) and trace.png (each
    model's step trace: loss, code-free floor and code-reliance gap)."""
    with RunDir(run_dir).writing("write_study()"):
        return _write_study(report, Path(run_dir))


def _write_study(report: dict, run_dir: Path) -> Path:
    from pipelines.study_report import markdown

    out = run_dir / STUDY_DIR
    write_json(out / "report.json", report)
    histories = {name: entry["history"] for name, entry in report["models"].items()}
    plot_study(histories, out / "curves.png")
    optimizers = {n: h for n, h in histories.items()
                  if report["models"][n]["group"] == "optimizers" or n == "embedding-cosine"}
    plot_study(optimizers, out / "optimizers.png")
    plot_traces({name: read_steps(RunDir(run_dir).model(name) / STEPS_FILE)
                 for name in report["models"]}, out / "trace.png")
    with atomic_open(out / "report.md") as handle:
        handle.write(markdown(report))
    _write_manifest(out)
    return out

