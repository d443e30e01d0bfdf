"""The step-level trace of a training run: ``RUN/models/NAME/steps.csv``.

A row every ``every`` steps of an epoch and at its last step: the epoch, the step within it,
the sentences seen since training began, the seconds of training, the token-mean training loss
and the mean gradient norm over the steps since the previous row, and the learning rate; on the
rows where ``--eval-every`` measured it, the code-reliance columns of
:mod:`~autoencoder.training.reliance` (:data:`RELIANCE_FIELDS`: ``val_loss``,
``val_loss_swapped``, ``code_free``, ``code_zeroed``, ``gap_low``, ``gap_high``), empty
elsewhere. A trace written before the last three columns existed still reads (their cells are
None), and a run resumed on it rewrites it under the current header. Rows
wait in memory until the trainer commits a checkpoint, then are appended in one write; the file
size at that commit is recorded in ``state.json`` (``trace_bytes``), and a resumed run first
cuts the file back to it. Rows after the last commit are recomputed by the replay, so the trace
of an interrupted and resumed run has the rows of an uninterrupted one, none twice. Memory
holds one epoch's rows at most; the file grows by about 60 bytes a row (about 200 on a measured
one).
"""

from __future__ import annotations

import csv
import io
import logging
import os
from collections.abc import Iterable
from pathlib import Path

from autoencoder.training.reliance import FIELDS as RELIANCE_FIELDS
from embeddings.store.errors import SeqaeError
from embeddings.store.files import atomic_open, open_artifact

log = logging.getLogger(__name__)

STEP_FIELDS = ("epoch", "step", "sentences", "train_s", "train_loss", "grad_norm", "lr",
               *RELIANCE_FIELDS)
# Headers seqae wrote before: before the network's own code-free loss and the gap's interval.
OLDER_HEADERS = (STEP_FIELDS[:STEP_FIELDS.index("code_free") + 1],)


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
        new = not self.path.exists() or self.path.stat().st_size == 0
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(_csv_text(self.pending, header=new))
            handle.flush()
            os.fsync(handle.fileno())
        self.pending = []
        return self.path.stat().st_size

    def restore(self, committed_bytes: int, upto: tuple[float, float]) -> bool:
        """Make the file what the checkpoint being resumed committed, and say whether it
        changed: cut back to ``committed_bytes`` (0: a new run, or a checkpoint from before
        traces), since the rows after it are replayed. A file edited or cut by hand since (its
        committed part is shorter or no longer parses) is rebuilt from the rows of it that parse
        and come at or before ``upto``, the checkpoint's (epoch, step), with a warning."""
        self._check_regular()
        size = self.path.stat().st_size if self.path.exists() else 0
        header, rows = self._committed(committed_bytes) if size >= committed_bytes > 0 else \
            (None, [])
        if committed_bytes == 0 or header == list(STEP_FIELDS):
            if size == committed_bytes:
                return False
            os.truncate(self.path, committed_bytes)
            return True
        if header in [list(h) for h in OLDER_HEADERS]:  # written before the newest columns
            log.info("%s: rewritten under the current header (%d committed rows; the new "
                     "columns are empty on them)", self.path, len(rows))
            with atomic_open(self.path) as handle:
                handle.write(_csv_text(rows, header=True))
            return True
        rows, bad = _parse_rows(self.path) if size else ([], 0)
        kept = [row for row in rows if (row["epoch"], row["step"]) <= upto]
        log.warning("%s was changed by hand since its checkpoint (%d bytes, %d committed; %d "
                    "row(s) did not parse): rebuilt from the %d row(s) that did; the rest of the "
                    "trace before the checkpoint is lost", self.path, size, committed_bytes, bad,
                    len(kept))
        with atomic_open(self.path) as handle:
            handle.write(_csv_text(kept, header=True))
        return True

    def _committed(self, committed_bytes: int) -> tuple[list[str] | None, list[dict]]:
        """The header and rows of the file's first ``committed_bytes`` when they are whole rows
        every one of which parses, else (None, [])."""
        with open_artifact(self.path) as handle:
            head = handle.read(committed_bytes)
        if not head.endswith(b"\n"):
            return None, []
        fields, rows, bad = _parse(head.decode("utf-8", errors="replace").splitlines())
        return (fields, rows) if bad == 0 else (None, [])

    def _check_regular(self) -> None:
        """Write only a regular file of the model folder, never through a link."""
        if self.path.is_symlink() or (self.path.exists() and not self.path.is_file()):
            raise SeqaeError(f"{self.path} is not a regular file seqae wrote (a link, folder or "
                             "special file): it is left alone; remove it to train this model")


def _csv_text(rows: list[dict], header: bool) -> str:
    text = io.StringIO()
    writer = csv.DictWriter(text, STEP_FIELDS, lineterminator="\n")
    if header:
        writer.writeheader()
    writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in rows)
    return text.getvalue()


_COUNTS = ("epoch", "step", "sentences")
_REQUIRED = (*_COUNTS, "train_s")


def _parse_row(row: dict) -> dict | None:
    """A row of ``steps.csv`` with numbers parsed (empty cells become None), or None if it is
    not one seqae wrote: a cell too many or too few, a required cell empty, a word for a
    number."""
    if None in row or None in row.values() or any(row.get(k, "") == "" for k in _REQUIRED):
        return None
    try:  # only seqae's columns: a column added by hand is dropped
        return {k: None if row.get(k) in ("", None) else
                (int(row[k]) if k in _COUNTS else float(row[k])) for k in STEP_FIELDS}
    except ValueError:
        return None


# steps.csv: a row is under 350 bytes (13 numbers), and a run writes at most 100 a epoch;
# 64 MiB is over 190,000 rows. A longer line is no row seqae wrote.
MAX_STEPS_BYTES = 64 << 20
_MAX_LINE = 4096


def _parse(lines: Iterable[str]) -> tuple[list[str] | None, list[dict], int]:
    """The header of CSV ``lines``, the rows that parse (in order) and how many did not. Each
    line is read on its own (seqae writes no line breaks inside a cell), so a stray quote or an
    overlong cell costs its own line, never the rest of the file."""
    lines = iter(lines)
    header = _cells(next(lines, ""))
    rows, bad = [], 0
    for line in lines:
        cells = _cells(line)
        row = None if cells is None or header is None or len(cells) != len(header) else \
            _parse_row(dict(zip(header, cells)))
        if row is None:
            bad += 1
        else:
            rows.append(row)
    return header, rows, bad


def _cells(line: str) -> list[str] | None:
    """The cells of one CSV line, or None for one seqae could not have written."""
    if len(line) > _MAX_LINE:
        return None
    try:
        return next(csv.reader([line]), [])
    except csv.Error:
        return None


def _parse_rows(path: Path) -> tuple[list[dict], int]:
    """The rows of ``path`` that parse, in file order, and how many did not; the file is read
    only if it is a regular file (not a link) of at most :data:`MAX_STEPS_BYTES`."""
    with open_artifact(path, MAX_STEPS_BYTES) as handle:
        text = handle.read(MAX_STEPS_BYTES + 1).decode("utf-8", errors="replace")
    _, rows, bad = _parse(text.splitlines())
    return rows, bad


def read_steps(path: Path) -> list[dict]:
    """Rows of ``steps.csv`` with numbers parsed (empty cells become None); rows that do not
    parse (a file edited by hand) are left out with a warning. No file: no rows; a link, a
    special or an oversized file is a one-line :class:`SeqaeError`."""
    try:
        rows, bad = _parse_rows(Path(path))
    except FileNotFoundError:
        return []
    if bad:
        log.warning("%s: %d row(s) that do not parse left out (edited by hand?)", path, bad)
    return rows
