"""A model folder's checkpoint and history files: ``last.keras``, ``history.csv``, ``state.json``.

``state.json`` is written last after each epoch: it is the commit point that ``--resume``
trusts, naming the sha256 of the ``last.keras`` it goes with.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from autoencoder.config import MAX_EPOCHS
from embeddings.store.errors import SeqaeError
from embeddings.store.files import atomic_open, read_text, sha256_file
from embeddings.store.jsonfile import read_json
from embeddings.store.rundir import ModelDir
from embeddings.store.schema import Fields

if TYPE_CHECKING:
    import keras

HISTORY_FIELDS = (
    "epoch", "train_loss", "val_loss", "val_token_accuracy", "grad_norm", "wall_s",
    "sentences", "sentences_per_s", "padding_share", "peak_rss_mb", "status",
)
# The commit point of training, written after every epoch (and on a non-finite stop).
STATE_SCHEMA = Fields(
    {"epoch": int, "best_val_loss": (float, None), "best_epoch": (int, None), "wait": int,
     "nan_events": int, "stopped": (str, None), "last_sha256": (str, None)},
    {"partial": Fields({"step": int, "loss_sum": float, "tokens": float, "norm_sum": float,
                        "wall_s": float},
                       {"trace": Fields({"loss_sum": float, "tokens": float, "norm_sum": float,
                                         "steps": int})}),
     "non_finite": dict, "trace_bytes": int, "best_val_accuracy": (float, None)},
    name="training state (state.json)")



@dataclass
class EpochProgress:
    """How far an epoch has come: steps trained and the sums behind its means (token-weighted
    loss, gradient norms), and its training seconds; kept in ``state.json`` as ``partial``
    when Ctrl-C stops training inside an epoch. ``trace``: the step trace's open row."""

    step: int = 0
    loss_sum: float = 0.0
    tokens: float = 0.0
    norm_sum: float = 0.0
    wall_s: float = 0.0
    trace: dict | None = None

    def add(self, loss: float, tokens: float, norm: float) -> None:
        self.step += 1
        self.loss_sum += loss * tokens
        self.tokens += tokens
        self.norm_sum += norm

    def to_dict(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclass
class TrainingState:
    """``state.json``: where training stands after the last committed checkpoint.

    ``stopped`` is why it stopped (``epochs``, ``early-stop``, ``time``, ``seen``,
    ``non-finite``) or None while it may go on; ``best_epoch`` and ``wait`` (epochs since it)
    follow the training's ``monitor``; ``trace_bytes``
    is the length of ``steps.csv`` that goes with the checkpoint.
    """

    epoch: int = 0
    best_val_loss: float | None = None
    best_val_accuracy: float | None = None
    best_epoch: int | None = None
    wait: int = 0
    nan_events: int = 0
    stopped: str | None = None
    last_sha256: str | None = None
    trace_bytes: int = 0
    partial: EpochProgress | None = None
    non_finite: dict | None = field(default=None, repr=False)

    @classmethod
    def from_dict(cls, state: dict) -> TrainingState:
        known = {f.name for f in dataclasses.fields(cls)} - {"partial"}  # later keys: ignored
        partial = state.get("partial")
        return cls(**{k: v for k, v in state.items() if k in known},
                   partial=EpochProgress(**partial) if partial else None)

    def to_dict(self) -> dict:
        state = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        state["partial"] = self.partial.to_dict() if self.partial else None
        return {k: v for k, v in state.items() if v is not None or k not in ("partial", "non_finite")}


def state_problem(state: dict) -> str | None:
    """What makes a ``state.json`` of the right shape impossible for seqae to have written
    (a count out of range, a non-finite loss, a position past any epoch), or None."""
    epoch, best = state["epoch"], state["best_epoch"]
    if not 0 <= epoch <= MAX_EPOCHS:
        return f"epoch {epoch} is not in 0..{MAX_EPOCHS}"
    if best is not None and not 1 <= best <= epoch:
        return f"best_epoch {best} is not in 1..{epoch}"
    loss = state["best_val_loss"]
    if loss is not None and not math.isfinite(loss):
        return f"best_val_loss {loss} is not a finite number"
    accuracy = state.get("best_val_accuracy")
    if accuracy is not None and not 0 <= accuracy <= 1:
        return f"best_val_accuracy {accuracy} is not in 0..1"
    if state["wait"] < 0 or state["nan_events"] < 0 or state.get("trace_bytes", 0) < 0:
        return "a negative count"
    partial = state.get("partial")
    if partial is not None:
        if not 1 <= partial["step"] <= 1 << 40:
            return f"partial step {partial['step']} is out of range"
        numbers = [partial[key] for key in ("loss_sum", "tokens", "norm_sum", "wall_s")]
        if not all(math.isfinite(x) for x in numbers) or min(numbers[1:]) < 0:
            return "a partial epoch with non-finite or negative sums"
    return None


def read_state(path: Path) -> dict:
    """A model's ``state.json``, checked for shape (:data:`STATE_SCHEMA`) and for values seqae
    could have written (:func:`state_problem`); else one-line :class:`SeqaeError`."""
    state = read_json(path, STATE_SCHEMA)
    problem = state_problem(state)
    if problem:
        raise SeqaeError(f"damaged training state {path}: {problem}; retrain the model "
                         "(--force) if its checkpoints are no longer needed")
    return state


def resume_point(model_dir: ModelDir) -> tuple[dict, Path]:
    """``state.json`` and the checkpoint it commits, checked without writing anything.

    The checkpoint is ``last.keras``, or its predecessor kept aside when a kill came between
    renaming a new ``last.keras`` into place and committing it. Raises :class:`SeqaeError`
    when there is nothing to resume, ``state.json`` is damaged, or no file matches its sha256.
    """
    state_path, last = model_dir.state, model_dir.last
    if not state_path.is_file() or not last.is_file():
        raise SeqaeError(f"nothing to resume in {model_dir}: no checkpoint yet")
    state = read_state(state_path)
    if sha256_file(last) == state["last_sha256"]:
        return state, last
    previous = model_dir.previous
    if previous.is_file() and sha256_file(previous) == state["last_sha256"]:
        return state, previous
    raise SeqaeError(f"checkpoint {last} does not match state.json (corrupt, truncated or "
                     "replaced); train again without --resume")


def weights_finite(model: keras.Model) -> bool:
    return all(np.isfinite(w).all() for w in model.get_weights())


def weights_sha256(model: keras.Model) -> str:
    """A digest of every weight's bytes, to check that workers ended with the same model."""
    digest = hashlib.sha256()
    for weights in model.get_weights():
        digest.update(np.ascontiguousarray(weights).tobytes())
    return digest.hexdigest()


def write_history(path: Path, rows: list[dict]) -> None:
    with atomic_open(path, newline="") as handle:
        writer = csv.DictWriter(handle, HISTORY_FIELDS)
        writer.writeheader()
        writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in rows)


def training_time(history: list[dict]) -> list[tuple[float, dict]]:
    """The finished epochs of a history, each with the training time at its end: seconds of
    training (each row's ``wall_s``; validation and checkpoints not counted) since the start."""
    elapsed, points = 0.0, []
    for row in history:
        if row.get("status") == "ok":
            elapsed += row["wall_s"]
            points.append((elapsed, row))
    return points


def sentence_passes(history: list[dict]) -> list[tuple[int, dict]]:
    """The finished epochs of a history, each with the sentence-passes at its end (training
    sentences of every finished epoch so far)."""
    seen, points = 0, []
    for row in history:
        if row.get("status") == "ok":
            seen += int(row["sentences"])
            points.append((seen, row))
    return points


def sentences_seen(history: list[dict]) -> int:
    """Sentence-passes of the finished epochs of a history, what ``max_seen`` limits."""
    points = sentence_passes(history)
    return points[-1][0] if points else 0


def training_seconds(history: list[dict]) -> float:
    """Seconds of training in a history, what ``max_time`` limits."""
    points = training_time(history)
    return points[-1][0] if points else 0.0



# history.csv has a row an epoch (about 150 bytes): 16 MiB is over 100,000 epochs.
MAX_HISTORY_BYTES = 16 << 20


def read_history(path: Path) -> list[dict]:
    """Rows of ``history.csv`` with numbers parsed (empty cells become None); none if there is
    no file. A file seqae could not have written (a link, a special or oversized file, a byte
    that is not UTF-8, a word for a number) is a one-line :class:`SeqaeError`."""
    remedy = "restore it, or retrain the model (--force)"
    try:
        text = read_text(path, MAX_HISTORY_BYTES, "training history")
    except FileNotFoundError:
        return []
    except SeqaeError as exc:
        raise SeqaeError(f"{exc}; {remedy}") from None
    lines = text.splitlines()
    try:
        return [{k: _parse(k, v) for k, v in row.items()} for row in csv.DictReader(lines)]
    except (ValueError, TypeError, csv.Error) as exc:
        raise SeqaeError(f"damaged training history {path}: {str(exc)[:80]} (seqae did not "
                         f"write it so); {remedy}") from None


def _parse(key: str, value: str | None):
    if key is None or value is None:  # a cell too many or too few
        raise ValueError("a row of another length than the header")
    if key == "status":
        return value
    if value == "":
        return None
    return int(value) if key in ("epoch", "sentences") else float(value)
