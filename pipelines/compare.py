"""``compare``: every model of a run scored on the same held-out sentences, with its costs."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from autoencoder.backends import current_name
from autoencoder.config import ONE_HOT_CAP
from autoencoder.data.sentences import count_lines, sample_mask
from autoencoder.data.vocab import Vocabulary
from autoencoder.scoring import score_autoencoder
from autoencoder.training.checkpoints import read_history, read_state, training_seconds
from embeddings import load_corpus
from embeddings.store.errors import SeqaeError
from embeddings.store.files import atomic_open
from embeddings.store.jsonfile import write_json
from embeddings.store.manifests import write_manifest
from embeddings.store.rundir import (
    COMPARE,
    ModelDir,
    RunDir,
    check_replaceable,
    list_models,
    writes_run,
)
from pipelines.embed import load_embeddings
from pipelines.models import load_autoencoder
from pipelines.params import CompareParams
from pipelines.plots import plot_accuracy_by_length, plot_losses

log = logging.getLogger(__name__)

TABLE_COLUMNS = (
    ("token acc", "token_accuracy", "{:.1%}"), ("in-cap acc", "token_accuracy_in_cap", "{:.1%}"),
    ("out-cap acc", "token_accuracy_out_of_cap", "{:.1%}"),
    ("exact", "exact_sentence_rate", "{:.1%}"), ("BLEU", "bleu4", "{:.3f}"),
    ("coverage", "coverage", "{:.1%}"), ("cosine", "mean_cosine", "{:.3f}"),
    ("top-5", "top5_accuracy", "{:.1%}"), ("params", "parameters", "{:,}"),
    ("train s", "train_wall_s", "{:.0f}"), ("sent/s", "train_sentences_per_s", "{:.0f}"),
    ("peak MiB", "train_peak_rss_mb", "{:.0f}"), ("eval tok/s", "eval_tokens_per_s", "{:.0f}"),
    ("epochs", "epochs", "{}"), ("NaN", "nan_events", "{}"),
)


@writes_run()
def run_compare(run: RunDir, names: list[str] | None = None, split: str = CompareParams.split,
                eval_sentences: int | None = CompareParams.eval_sentences,
                seed: int = CompareParams.seed) -> tuple[dict, Path]:
    """The compare stage: score the models (:func:`compare_models`), record the options in
    ``RUN/config.json`` and write ``RUN/compare/``; returns the report and that folder."""
    report = compare_models(run, names, split=split, eval_sentences=eval_sentences, seed=seed)
    run.record("compare", {"backend": current_name(), "models": names, "split": split,
                           "eval_sentences": eval_sentences, "seed": seed})
    return report, _write_report(run, report)


def training_costs(model_dir: ModelDir) -> dict:
    """Cost figures of a model's training, from its ``history.csv`` and ``state.json``."""
    rows = [r for r in read_history(model_dir.history) if r["status"] == "ok"]
    state = read_state(model_dir.state)
    return {
        "train_wall_s": training_seconds(rows),
        "train_sentences_per_s": float(np.mean([r["sentences_per_s"] for r in rows])) if rows else None,
        "train_peak_rss_mb": max((r["peak_rss_mb"] for r in rows), default=None),
        "epochs": state["epoch"],
        "best_epoch": state["best_epoch"],
        "stopped": state["stopped"],
        "nan_events": state["nan_events"],
    }


def finished_an_epoch(folder: ModelDir) -> bool:
    """Whether ``state.json`` records a finished epoch (so there is a checkpoint to score; a
    damaged or missing one is then an error, not a reason to skip)."""
    if not folder.state.exists():
        return False
    return read_state(folder.state)["epoch"] >= 1


def compare_models(run_dir: str | os.PathLike | RunDir, names: list[str] | None = None,
                   split: str = CompareParams.split,
                   eval_sentences: int | None = CompareParams.eval_sentences,
                   seed: int = CompareParams.seed, n_samples: int = 5) -> dict:
    """Score the named models (default: all of ``RUN/models``) on one split (on a seeded
    subsample of ``eval_sentences`` of its sentences; None: all); returns the report."""
    CompareParams(split=split, eval_sentences=eval_sentences, seed=seed)
    run = RunDir.of(run_dir)
    if isinstance(names, str):  # a list of letters otherwise
        raise SeqaeError(f"names takes a list of model names, not the string {names!r}: "
                         f"write [{names!r}]")
    check_replaceable(run, (COMPARE,))  # before scoring: the report goes there
    available = list_models(run)
    names = names or available
    if not names:
        raise SeqaeError(f"no models in {run.models}: train some with `pipe train-ae`")
    missing = [n for n in names if n not in available]
    if missing:
        raise SeqaeError(f"no model named {', '.join(missing)} in {run.models}")
    unfinished = [n for n in names if not finished_an_epoch(run.model(n))]
    if unfinished:
        log.warning("skipping %s: no finished epoch (training stopped before its first "
                    "checkpoint)", ", ".join(unfinished))
    names = [n for n in names if n not in unfinished]
    if not names:
        raise SeqaeError(f"no model in {run.models} has finished an epoch: "
                         "train one with `pipe train-ae`")
    corpus = load_corpus(run)
    path = corpus.split_path(split)
    n_lines = count_lines(path)
    if n_lines == 0:
        raise SeqaeError(f"the {split} split of {run} has no sentences")
    keep = sample_mask(n_lines, eval_sentences, seed)
    n_eval = n_lines if keep is None else int(keep.sum())
    rng = np.random.default_rng(seed)
    sample_rows = tuple(sorted(rng.choice(n_eval, size=min(n_samples, n_eval), replace=False).tolist()))
    cap_vocab = Vocabulary.capped(corpus.vocab_counts(), ONE_HOT_CAP)
    kv = load_embeddings(run)

    report = {"run": str(run), "split": split, "sentences": n_eval, "seed": seed,
              "baseline_cap": ONE_HOT_CAP, "models": {}, "skipped": unfinished, "samples": []}
    reconstructions = {}
    for name in names:
        ae, config = load_autoencoder(run, name, kv.vectors)
        log.info("scoring %s on %d %s sentences", name, n_eval, split)
        metrics, reconstructions[name] = score_autoencoder(
            ae, path, cap_vocab, keep=keep, sample_rows=sample_rows)
        report["models"][name] = {
            "kind": ae.config.kind, "loss": ae.config.loss, "vocab_size": len(ae.vocab),
            "parameters": ae.model.count_params(), **metrics, **training_costs(run.model(name)),
        }
    originals = _sample_originals(path, keep, sample_rows)
    for row, original in zip(sample_rows, originals):
        report["samples"].append({"original": " ".join(original), **{
            name: " ".join(reconstructions[name][row]) for name in names}})
    return report


def _sample_originals(path: Path, keep: np.ndarray | None, rows: tuple[int, ...]) -> list[list[str]]:
    """The original sentences at evaluation positions ``rows`` (file order, ``keep`` applied)."""
    wanted, found, position = set(rows), {}, 0
    with open(path, encoding="utf-8") as handle:
        lines = (line for line in handle if line.strip())
        for i, line in enumerate(lines):
            if keep is not None and not keep[i]:
                continue
            if position in wanted:
                found[position] = line.split()
            position += 1
    return [found[r] for r in rows]


def format_table(report: dict) -> str:
    """The comparison as a Markdown table (readable on a terminal too)."""
    header = "| model | " + " | ".join(title for title, _, _ in TABLE_COLUMNS) + " |"
    lines = [header, "|" + "---|" * (len(TABLE_COLUMNS) + 1)]
    for name, figures in report["models"].items():
        cells = ["-" if figures.get(key) is None else fmt.format(figures[key])
                 for _, key, fmt in TABLE_COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


REPORT_FILES = ("report.json", "report.md", "loss.png", "accuracy_by_length.png")


def write_report(report: dict, run_dir: str | os.PathLike | RunDir) -> Path:
    """Write ``RUN/compare/``: report.json, report.md, loss.png, accuracy_by_length.png."""
    with RunDir.of(run_dir).writing("write_report()") as run:  # the lock names the public call
        return _write_report(run, report)


def _write_report(run: RunDir, report: dict) -> Path:
    """:func:`write_report`, for a caller that holds the run's lock."""
    out = run.compare
    write_json(out / "report.json", report)
    histories = {name: read_history(run.model(name).history) for name in report["models"]}
    plot_losses(histories, out / "loss.png")
    plot_accuracy_by_length(
        {name: figures["accuracy_by_length"] for name, figures in report["models"].items()},
        out / "accuracy_by_length.png")
    with atomic_open(out / "report.md") as handle:
        handle.write(_markdown(report))
    write_manifest(out, REPORT_FILES, {"split": report["split"], "models": list(report["models"])})
    return out


def _bleu_note(report: dict) -> str:
    """The line under the table that says which BLEU it is (sacreBLEU's signature, once)."""
    signatures = sorted({f["bleu_signature"] for f in report["models"].values()
                         if f.get("bleu_signature")})
    named = ("signature " + ", ".join(f"`{s}`" for s in signatures)) if signatures else "no signature recorded"
    return ("BLEU: sacreBLEU corpus BLEU / 100 of each reconstruction (at most seq-len words) against "
            f"the whole original sentence, so truncation pays the brevity penalty; {named}.")


def _output_vectors(report: dict) -> list[str]:
    """A table of the embedding models' output vectors: their mean norm (the vMF concentration)
    and how their top-1 words spread (hubness); nothing when no model has the figures."""
    rows = {name: f for name, f in report["models"].items() if f.get("mean_output_norm") is not None}
    if not rows:
        return []
    lines = ["## Output vectors (embedding models)", "",
             "| model | mean output norm | distinct outputs | top output (share) | hubness skew |",
             "|---|---|---|---|---|"]
    for name, f in rows.items():
        share = f.get("top_output_share")
        top = "-" if share is None else f"`{f.get('top_output')}` ({share:.1%})"
        skewness = "-" if f.get("hubness_skew") is None else f"{f['hubness_skew']:.2f}"
        lines.append(f"| {name} | {f['mean_output_norm']:.3f} | {f.get('distinct_outputs', '-')} | "
                     f"{top} | {skewness} |")
    lines += ["", "Mean L2 norm of the raw output vectors at real tokens (for the vMF loss, the "
              "concentration); hubness skew: skewness of how often each vocabulary word is the "
              "top-1 output (N_1, zeros included; Radovanovic et al. 2010).", ""]
    return lines


def _markdown(report: dict) -> str:
    parts = [
        f"# seqae comparison: {report['run']}",
        f"{report['sentences']} held-out sentences from the `{report['split']}` split, scored "
        "against the original words (UNK outputs and words outside a model's vocabulary count as "
        f"errors; the cap split uses the {report['baseline_cap'] - 2:,} most frequent train words).",
        "", format_table(report), "", _bleu_note(report), "",
    ]
    parts += _output_vectors(report)
    if report.get("skipped"):
        parts += [f"Skipped (no finished epoch): {', '.join(report['skipped'])}.", ""]
    parts += ["## Accuracy by sentence length (tokens)", ""]
    buckets = next(iter(report["models"].values()))["accuracy_by_length"]
    parts.append("| model | " + " | ".join(buckets) + " |")
    parts.append("|" + "---|" * (len(buckets) + 1))
    for name, figures in report["models"].items():
        cells = ["-" if v is None else f"{v:.1%}" for v in figures["accuracy_by_length"].values()]
        parts.append(f"| {name} | " + " | ".join(cells) + " |")
    parts += ["", "## Samples", ""]
    for sample in report["samples"]:
        parts.append(f"- **original**: {sample['original']}")
        parts += [f"  - *{name}*: {sample[name]}" for name in report["models"]]
    parts += ["", "![losses](loss.png)", "", "![accuracy by length](accuracy_by_length.png)", ""]
    return "\n".join(parts)
