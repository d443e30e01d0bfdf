"""Training curves, drawn headless and written atomically.

Figures are plain :class:`matplotlib.figure.Figure` objects, never pyplot's: importing or
plotting leaves the process's matplotlib backend (a notebook's, say) as it was.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from matplotlib.figure import Figure

from autoencoder.training.checkpoints import sentence_passes, training_time
from embeddings.store.files import atomic_path
from embeddings.store.rundir import ModelDir
from pipelines.curve import SMOOTH, gap, smoothed


def plot_losses(histories: Mapping[str, Sequence[dict]], path: Path) -> None:
    """Train (solid) and validation (dashed) loss per epoch, one colour per model.

    Losses of different kinds live on different scales (cosine distance, MSE, cross-entropy), so
    with several models each gets its own panel.
    """
    names = list(histories)
    fig = Figure(figsize=(5 * len(names), 3.6))
    axes = fig.subplots(1, len(names), squeeze=False)
    for ax, name in zip(axes[0], names):
        rows = [r for r in histories[name] if r.get("status") == "ok"]
        epochs = [r["epoch"] for r in rows]
        ax.plot(epochs, [r["train_loss"] for r in rows], "o-", label="train")
        val = [(r["epoch"], r["val_loss"]) for r in rows if r.get("val_loss") is not None]
        if val:
            ax.plot(*zip(*val), "s--", label="validation")
        ax.set(title=name, xlabel="epoch", ylabel="loss")
        ax.grid(alpha=0.3)
        ax.legend()
    _save(fig, path)


def draw_model_losses(model_dir: ModelDir, history: Sequence[dict]) -> None:
    """``MODEL/loss.png``: the model's own curves, redrawn after each checkpoint (a trainer hook)."""
    plot_losses({model_dir.name: history}, model_dir.loss_plot)


def plot_accuracy_by_length(accuracies: Mapping[str, Mapping[str, float | None]], path: Path) -> None:
    """Token accuracy per sentence-length bucket, one line per model."""
    fig = Figure(figsize=(6.5, 3.8))
    ax = fig.subplots()
    for name, buckets in accuracies.items():
        ax.plot(list(buckets), [float("nan") if v is None else v for v in buckets.values()],
                "o-", label=name)
    ax.set(xlabel="sentence length (tokens)", ylabel="token accuracy", ylim=(0, 1))
    ax.grid(alpha=0.3)
    ax.legend()
    _save(fig, path)


def text_curves(histories: Mapping[str, Sequence[dict]], width: int = 40) -> str:
    """Validation token accuracy against training time as text, one bar per epoch and model
    (``width`` characters for the best accuracy shown): the curve a terminal can print."""
    rows = [(name, t, r["val_token_accuracy"]) for name, history in histories.items()
            for t, r in training_time(history) if r.get("val_token_accuracy") is not None]
    if not rows:
        return "no validation accuracy recorded"
    top = max(acc for _, _, acc in rows) or 1.0
    label = max(len(name) for name, _, _ in rows)
    lines = ["validation token accuracy against training time"]
    previous = None
    for name, t, acc in rows:
        shown = name if name != previous else ""
        previous = name
        lines.append(f"  {shown:<{label}} {t:6.0f} s {acc:6.1%} {'#' * round(width * acc / top)}")
    return "\n".join(lines)


def plot_study(histories: Mapping[str, Sequence[dict]], path: Path) -> None:
    """Validation token accuracy and validation loss against sentence-passes (the training
    sentences of every epoch so far, the study's equal axis), one line per model. Losses of
    different kinds differ in scale, so each model's loss is shown relative to its value after
    the first epoch, ``1 + (loss - first) / |first|`` (1.0 = where it started;
    ``loss / first`` for a positive loss), on a logarithmic axis when all stay positive."""
    fig = Figure(figsize=(12, 4.2))
    acc_ax, loss_ax = fig.subplots(1, 2)
    positive = True
    for name, history in histories.items():
        points = [(t, r) for t, r in sentence_passes(history) if r.get("val_loss") is not None]
        if not points:
            continue
        times = [t for t, _ in points]
        line, = acc_ax.plot(times, [r["val_token_accuracy"] for _, r in points], "o-",
                            markersize=3, label=name)
        first = points[0][1]["val_loss"] or 1.0
        relative = [1.0 + (r["val_loss"] - first) / abs(first) for _, r in points]
        positive = positive and min(relative) > 0
        loss_ax.plot(times, relative, "o-", markersize=3, color=line.get_color(), label=name)
    acc_ax.set(xlabel="sentence-passes", ylabel="validation token accuracy", ylim=(0, None))
    # A vMF NLL can be negative and fall below zero relative change: then a linear axis.
    loss_ax.set(xlabel="sentence-passes", ylabel="validation loss relative to epoch 1",
                yscale="log" if positive else "linear")
    for ax in (acc_ax, loss_ax):
        ax.grid(alpha=0.3)
    acc_ax.legend(fontsize=8)
    _save(fig, path)


def plot_traces(traces: Mapping[str, Sequence[dict]], path: Path) -> None:
    """One panel a model, against seconds of training: the training loss of the step trace,
    the validation loss with each sentence's own code, with the codes swapped and with every
    code zeroed, the word-statistics estimate of the code-free floor, and (right axis) the gap's
    share of the loss, the part the code explains, shaded over its 95% interval where the
    trace has one."""
    names = [name for name, rows in traces.items() if rows] or list(traces)[:1]
    fig = Figure(figsize=(5 * max(1, min(len(names), 3)), 3.6 * math.ceil(len(names) / 3)))
    axes = fig.subplots(math.ceil(len(names) / 3), min(len(names), 3), squeeze=False).ravel()
    for ax, name in zip(axes, names):
        rows = [r for r in traces.get(name, []) if r.get("train_loss") is not None]
        # Running median: a length-bucketed batch's loss swings with its sentences' length.
        ax.plot([r["train_s"] for r in rows], smoothed([r["train_loss"] for r in rows],
                                                       max(SMOOTH, len(rows) // 100 * 2 + 1)),
                lw=1, label="training loss (running median)")
        checked = [r for r in rows if r.get("val_loss") is not None]
        times = [r["train_s"] for r in checked]
        for key, style, label in (("val_loss", "o-", "validation, own code"),
                                  ("val_loss_swapped", "s--", "codes swapped"),
                                  ("code_zeroed", "-.", "codes zeroed"),
                                  ("code_free", ":", "code-free estimate")):
            ax.plot(times, _values(checked, key), style, markersize=2, label=label)
        share = ax.twinx()
        share.plot(times, [gap(r) for r in checked], "-", color="grey", alpha=0.6)
        if any(r.get("gap_low") is not None for r in checked):
            share.fill_between(times, _values(checked, "gap_low"), _values(checked, "gap_high"),
                               color="grey", alpha=0.2, linewidth=0)
        share.set(ylabel="share the code explains", ylim=(0, 1))
        ax.set(title=name, xlabel="training time (s)", ylabel="loss")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    for ax in axes[len(names):]:
        ax.set_visible(False)
    _save(fig, path)


def _values(rows: Sequence[dict], key: str) -> list[float]:
    """``key`` of each row, NaN where it is missing (matplotlib leaves a gap)."""
    return [float("nan") if r.get(key) is None else r[key] for r in rows]


def _save(fig: Figure, path: Path) -> None:
    fig.tight_layout()
    with atomic_path(path, suffix=".tmp.png") as tmp:
        fig.savefig(tmp, dpi=110)
