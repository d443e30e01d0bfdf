"""Training curves, drawn headless (Agg) and written atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from embeddings.io import atomic_path  # noqa: E402


def plot_losses(histories: Mapping[str, Sequence[dict]], path: Path) -> None:
    """Train (solid) and validation (dashed) loss per epoch, one colour per model.

    Losses of different kinds live on different scales (cosine distance, MSE, cross-entropy), so
    with several models each gets its own panel.
    """
    names = list(histories)
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.6), squeeze=False)
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


def plot_accuracy_by_length(accuracies: Mapping[str, Mapping[str, float | None]], path: Path) -> None:
    """Token accuracy per sentence-length bucket, one line per model."""
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for name, buckets in accuracies.items():
        ax.plot(list(buckets), [float("nan") if v is None else v for v in buckets.values()],
                "o-", label=name)
    ax.set(xlabel="sentence length (tokens)", ylabel="token accuracy", ylim=(0, 1))
    ax.grid(alpha=0.3)
    ax.legend()
    _save(fig, path)


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    with atomic_path(path, suffix=".tmp.png") as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
