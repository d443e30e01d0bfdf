"""The step-level trace of a training run: ``RUN/models/NAME/steps.csv``.

A row every ``every`` steps of an epoch and at its last step: the epoch, the step within it,
the sentences seen since training began, the seconds of training, the token-mean training loss
and the mean gradient norm over the steps since the previous row, and the learning rate. Rows
wait in memory until the trainer commits a checkpoint, then are appended in one write; the file
size at that commit is recorded in ``state.json`` (``trace_bytes``), and a resumed run first
cuts the file back to it. Rows after the last commit are recomputed by the replay, so the trace
of an interrupted and resumed run has the rows of an uninterrupted one, none twice. Memory
holds one epoch's rows at most; the file grows by about 60 bytes a row.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from pathlib import Path

from autoencoder.training.reliance import FIELDS as RELIANCE_FIELDS
from embeddings.core.io import SeqaeError

log = logging.getLogger(__name__)

STEPS_FILE = "steps.csv"
STEP_FIELDS = ("epoch", "step", "sentences", "train_s", "train_loss", "grad_norm", "lr",
               *RELIANCE_FIELDS)


def default_every(steps: int) -> int:
    """Rows every 1% of an epoch of ``steps`` steps, and at least every 50 steps."""
    return max(1, min(50, steps // 100))


class StepTrace:
    """Accumulates steps and emits rows (see the module docstring).

    ``accumulated`` is what a mid-epoch checkpoint keeps (:meth:`state`) so that a resumed
    epoch emits the same rows as an uninterrupted one.
    """

    def __init__(self, path: Path, every: int):
        if every < 1:
            raise SeqaeError(f"--trace-every must be at least 1, got {every}")
        self.path = Path(path)
        self.every = every
        self.pending: list[dict] = []
        self.reset()

    def reset(self, accumulated: dict | None = None) -> None:
        """Start a row's window: empty, or as a mid-epoch checkpoint left it."""
        self.loss_sum, self.tokens, self.norm_sum, self.steps = (
            (accumulated["loss_sum"], accumulated["tokens"], accumulated["norm_sum"],
             accumulated["steps"]) if accumulated else (0.0, 0.0, 0.0, 0))

    def state(self) -> dict:
        return {"loss_sum": self.loss_sum, "tokens": self.tokens, "norm_sum": self.norm_sum,
                "steps": self.steps}

    def step(self, epoch: int, step: int, loss: float, tokens: float, norm: float, *,
             last: bool, sentences: int, train_s: float, lr: float,
             validation: dict | None = None) -> None:
        """Count one step; emit a row at every ``every``-th step of the epoch, at its last, and
        wherever ``validation`` (the :mod:`~autoencoder.training.reliance` losses) was measured."""
        self.loss_sum += loss * tokens
        self.tokens += tokens
        self.norm_sum += norm
        self.steps += 1
        if step % self.every == 0 or last or validation is not None:
            self.pending.append({
                "epoch": epoch, "step": step, "sentences": sentences, "train_s": train_s,
                "train_loss": self.loss_sum / self.tokens if self.tokens else None,
                "grad_norm": self.norm_sum / self.steps, "lr": lr, **(validation or {})})
            self.reset()

    def commit(self) -> int:
        """Append the pending rows to the file (with a header when new) and return its size in
        bytes, for ``state.json``."""
        self._check_regular()
        text = io.StringIO()
        writer = csv.DictWriter(text, STEP_FIELDS, lineterminator="\n")
        if not self.path.exists() or self.path.stat().st_size == 0:
            writer.writeheader()
        writer.writerows({k: ("" if v is None else v) for k, v in row.items()}
                         for row in self.pending)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(text.getvalue())
            handle.flush()
            os.fsync(handle.fileno())
        self.pending = []
        return self.path.stat().st_size

    def restore(self, committed_bytes: int) -> bool:
        """Cut the file back to its size at the commit being resumed (0: a new run, or a
        checkpoint from before traces); whether it changed."""
        self._check_regular()
        size = self.path.stat().st_size if self.path.exists() else 0
        if size < committed_bytes:
            log.warning("%s is shorter than its last checkpoint recorded (%d < %d bytes): rows "
                        "are missing from it", self.path, size, committed_bytes)
        if size <= committed_bytes:
            return False
        os.truncate(self.path, committed_bytes)
        return True

    def _check_regular(self) -> None:
        """Write only a regular file of the model folder, never through a link."""
        if self.path.is_symlink() or (self.path.exists() and not self.path.is_file()):
            raise SeqaeError(f"{self.path} is not a regular file seqae wrote (a link, folder or "
                             "special file): it is left alone; remove it to train this model")


def read_steps(path: Path) -> list[dict]:
    """Rows of ``steps.csv`` with numbers parsed (empty cells become None)."""
    if not Path(path).exists():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        return [{k: None if v in ("", None) else (int(v) if k in ("epoch", "step", "sentences")
                                                   else float(v)) for k, v in row.items()}
                for row in csv.DictReader(handle)]
