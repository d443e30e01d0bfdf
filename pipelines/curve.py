"""Reading a training curve on its step trace (``steps.csv``): plateaus, sharp drops, and what
the decoder's use of the code did around them.

The question behind seqae asks why the loss sits on a plateau and then falls sharply. The
explanation tested here: the decoder first learns what it can say without the code (the loss
rests near the best code-free loss, and swapping two sentences' codes barely changes it), then
falls when the code starts to carry the words (the swapped-code loss pulls away from the own-code
loss). The rule reads the validation loss with each sentence's own code on the rows that
``--eval-every`` measured (a fixed sample: its curve is free of the batch-to-batch noise of the
training loss, which length-bucketed batches make large), or the training loss where fewer than
:data:`MIN_VALIDATION_ROWS` rows were measured; smoothed by a running median of :data:`SMOOTH`
rows:

* a **plateau** is a run of at least :data:`PLATEAU_SHARE` of the rows (and
  :data:`MIN_PLATEAU_ROWS`) whose smoothed loss falls no more than :data:`PLATEAU_BAND`
  (relative) below the run's first value (a loss that creeps up stays on it);
* a **sharp drop** follows it when the smoothed loss falls :data:`SHARP_FALL` (relative) below
  the plateau's level within no more rows than the plateau lasted (and at least the next
  :data:`DROP_SHARE` of the rows, :data:`MIN_DROP_ROWS`): faster than it sat still. A run that
  leaves its band without such a drop is part of a slow descent, not a plateau, unless it lasts
  to the end of the trace.

At the last validation row of the plateau and the first one after the drop (rows that
``--eval-every`` measured), the **code-reliance gap** is ``(swapped - own) / |swapped|``: the
share of the loss that the sentence's own code explains (defined for a positive swapped-code
loss; one that can be negative, like the von Mises-Fisher NLL, gets no share), with its 95%
bootstrap interval over the sample's sentences (``gap_low``..``gap_high``; a trace written
before the intervals has none, and its point gap stands for both ends).

The **floor** the plateau is compared with is the network's own: the lower of its loss with
every code zeroed (``code_zeroed``) and with the codes swapped (``val_loss_swapped``) at the
plateau's validation row, what the network says without the sentence's code. A zero code is
one no sentence has (on 20 Newsgroups the one-hot model's zeroed-code loss sat 19% above its
plateau), so the swapped loss is often the lower, and then the floor test says what the gap
test says; a trace written before ``code_zeroed`` has the swapped loss alone. The statistical estimate ``code_free``
(position unigrams or mean vectors) is reported beside it, never tested: it is an estimate the
observed loss can fall below, so it bounds nothing the network can reach.

The explanation **held** when all three hold:

* the plateau's validation loss is within :data:`NEAR_FLOOR` (relative) of the network's floor;
* the gap before the drop is small: its interval's upper bound is at most :data:`SMALL_GAP`;
* the gap opened after the drop: the point gap after is above :data:`SMALL_GAP` and at least
  twice the one before, and the after-drop interval's lower bound is above the before
  interval's upper bound (the two intervals do not overlap).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

SMOOTH = 5
PLATEAU_BAND = 0.02
PLATEAU_SHARE, MIN_PLATEAU_ROWS = 0.05, 5
DROP_SHARE, MIN_DROP_ROWS = 0.05, 3
SHARP_FALL = 0.10
# Half the drop threshold: "at the floor" must be tighter than the fall that ends a plateau,
# else a loss a whole sharp drop above its floor would still count as sitting on it.
NEAR_FLOOR = 0.05
SMALL_GAP = 0.05
MIN_VALIDATION_ROWS = 20


@dataclass(frozen=True)
class Event:
    """A plateau (rows ``start``..``end``) and, when one followed, a sharp drop ending at row
    ``drop_end``; times in seconds of training, losses smoothed."""

    start_s: float
    end_s: float
    level: float
    drop_end_s: float | None
    after: float | None
    before: dict | None  # the last validation row of the plateau
    later: dict | None  # the first validation row after the drop

    @property
    def dropped(self) -> bool:
        return self.drop_end_s is not None


def smoothed(losses: Sequence[float], width: int = SMOOTH) -> np.ndarray:
    """A centred running median of ``width`` values (shorter at the ends)."""
    values, half = np.asarray(losses, dtype=np.float64), width // 2
    return np.array([np.median(values[max(0, i - half): i + half + 1]) for i in range(len(values))])


def gap(row: dict | None) -> float | None:
    """The share of the loss the own code explains at a validation row, or None."""
    if not row or row.get("val_loss") is None or not (row.get("val_loss_swapped") or 0) > 0:
        return None
    return (row["val_loss_swapped"] - row["val_loss"]) / abs(row["val_loss_swapped"])


def gap_bounds(row: dict | None) -> tuple[float, float] | None:
    """The 95% bootstrap interval of the gap at a validation row, ``(low, high)``; the point
    gap at both ends on a row without one (a trace written before the intervals); None where
    there is no gap."""
    share = gap(row)
    if share is None:
        return None
    if row.get("gap_low") is None or row.get("gap_high") is None:
        return share, share
    return row["gap_low"], row["gap_high"]


def network_floor(row: dict | None) -> float | None:
    """The network's own code-free loss at a validation row: the lower of its loss with every
    code zeroed and with the codes swapped (those the row has), or None. A zero code is one no
    sentence has, so the swapped loss is often the lower; then the floor test says what the gap
    test says, and the zeroed loss is what adds to it when it is the lower."""
    losses = [row.get(k) for k in ("code_zeroed", "val_loss_swapped")] if row else []
    losses = [v for v in losses if v is not None]
    return min(losses) if losses else None


def near_floor(row: dict | None) -> bool:
    """Whether the validation loss at ``row`` is within :data:`NEAR_FLOOR` of the network's
    floor."""
    floor = network_floor(row)
    return (floor is not None and row.get("val_loss") is not None
            and abs(row["val_loss"] - floor) <= NEAR_FLOOR * abs(floor))


def find_events(rows: Sequence[dict]) -> list[Event]:
    """The plateaus of a trace and the sharp drops that followed them (the module's rule)."""
    checked = [r for r in rows if r.get("val_loss") is not None]
    key = "val_loss" if len(checked) >= MIN_VALIDATION_ROWS else "train_loss"
    rows = [r for r in rows if r.get(key) is not None]
    if len(rows) < MIN_PLATEAU_ROWS + MIN_DROP_ROWS:
        return []
    loss, times = smoothed([r[key] for r in rows]), [r["train_s"] for r in rows]
    long = max(MIN_PLATEAU_ROWS, int(PLATEAU_SHARE * len(rows)))
    least = max(MIN_DROP_ROWS, int(DROP_SHARE * len(rows)))
    events, i = [], 0
    while i < len(rows):
        end = i
        # One-sided: a loss that creeps up (overfitting on the plateau) has not left it.
        while end + 1 < len(rows) and loss[i] - loss[end + 1] <= PLATEAU_BAND * abs(loss[i]):
            end += 1
        if end - i + 1 < long:
            i += 1
            continue
        level = float(loss[i])  # where it sat down: a loss creeping up does not raise the bar
        window = max(least, end - i + 1)  # a drop is faster than the plateau was long
        falls = [k for k in range(end + 1, min(len(rows), end + 1 + window))
                 if loss[k] <= level - SHARP_FALL * abs(level)]
        drop = falls[0] if falls else None
        if drop is None and end < len(rows) - 1:  # left the band slowly: a descent, no plateau
            i = end + 1
            continue
        events.append(Event(
            times[i], times[end], level, times[drop] if drop is not None else None,
            float(loss[drop]) if drop is not None else None,
            next((r for r in reversed(checked) if r["train_s"] <= times[end]), None),
            next((r for r in checked if r["train_s"] >= times[drop]), None)
            if drop is not None else None))
        i = end + 1
    return events


def verdict(event: Event) -> tuple[bool, str]:
    """Whether the explanation held at ``event``, and what was measured, in words."""
    before, after = gap(event.before), gap(event.later)
    if event.before is None or (event.dropped and event.later is None):
        return False, "no code-reliance measure around it (train with --eval-every)"
    if before is None or (event.dropped and after is None):
        return False, (f"validation loss {event.before['val_loss']:.4g} on the plateau, "
                       + _explained(event.before).replace(" of it", ""))
    val = event.before["val_loss"]
    facts = [f"validation loss {val:.4g} on the plateau" + _floors(event.before),
             f"code explains {_share(event.before)} of the loss there"]
    high = gap_bounds(event.before)[1]
    opened = False
    if event.dropped:
        facts.append(f"{_share(event.later)} after the drop")
        opened = (after > SMALL_GAP and after >= 2 * max(before, 0.0)
                  and gap_bounds(event.later)[0] > high)
    held = near_floor(event.before) and high <= SMALL_GAP and opened
    return held, "; ".join(facts)


def _share(row: dict) -> str:
    """The gap at a validation row as a percentage, with its interval where the row has one:
    "3.1% (95% CI 1.2-4.9%)"."""
    share = gap(row)
    if row.get("gap_low") is None or row.get("gap_high") is None:
        return f"{share:.1%}"
    low, high = (round(100 * row[k], 1) + 0.0 for k in ("gap_low", "gap_high"))  # no "-0.0"
    return f"{share:.1%} (95% CI {low:.1f}{' to ' if low < 0 else '-'}{high:.1f}%)"


def _floors(row: dict) -> str:
    """The floors at a validation row, in words: the network's, with the statistical estimate
    beside it ('' if neither). On a row from before ``code_zeroed`` the ``code_free`` figure is
    quoted as recorded: then it was the zeroed-code loss for the autoregressive decoder."""
    floor, estimate = network_floor(row), row.get("code_free")
    zeroed = row.get("code_zeroed") is not None
    aside = ("" if estimate is None else
             f"word-statistics estimate {estimate:.4g}" if zeroed else
             f"code_free as recorded {estimate:.4g}")
    if floor is None:
        return f" against a {aside}" if aside else ""
    which = "codes zeroed" if zeroed and floor == row["code_zeroed"] else "codes swapped"
    return (f" against the network's code-free floor of {floor:.4g} (its loss with the {which}"
            + (f"; {aside})" if aside else ")"))


def _ends(rows: Sequence[dict]) -> str:
    """What the first and the last code-reliance measurements saw, in words ('' if none)."""
    checked = [r for r in rows if r.get("val_loss") is not None
               and r.get("val_loss_swapped") is not None]
    if not checked:
        return ""
    said = []
    for label, row in (("At the first measurement", checked[0]), ("at the last", checked[-1])):
        said.append(f"{label} ({row['train_s']:.0f} s) validation loss {row['val_loss']:.4g}"
                    + _floors(row) + ", " + _explained(row))
    return " " + "; ".join(said) + "."


def _read(rows: Sequence[dict]) -> str:
    """Which curve the rule read, and how many rows of it."""
    checked = sum(r.get("val_loss") is not None for r in rows)
    if checked >= MIN_VALIDATION_ROWS:
        return f"{checked} validation rows"
    return f"{sum(r.get('train_loss') is not None for r in rows)} training-loss rows"


def _explained(row: dict) -> str:
    """What the own code explains at a validation row, in words."""
    if gap(row) is not None:
        return f"the code explaining {_share(row)} of it"
    if row.get("val_loss_swapped") is None:
        return "no swapped-code loss measured"
    return (f"{row['val_loss_swapped']:.4g} with the codes swapped (a loss that can be "
            "negative: no share)")


def describe(name: str, rows: Sequence[dict]) -> list[str]:
    """Plain-words lines on ``name``'s trace: each plateau and drop, whether the explanation
    held, and whether the plateau was a local minimum."""
    events = find_events(rows)
    if not events:
        return [f"- **{name}**: no plateau on the step trace ({_read(rows)}); the loss kept "
                "falling or the trace is too short to tell." + _ends(rows)]
    lines = []
    for event in events:
        held, facts = verdict(event)
        where = f"a plateau from {event.start_s:.0f} s to {event.end_s:.0f} s at loss {event.level:.4g}"
        if event.dropped:
            lines.append(
                f"- **{name}**: {where}, then a sharp drop to {event.after:.4g} by "
                f"{event.drop_end_s:.0f} s; {facts}. The explanation "
                + ("held: the plateau sat at the network's code-free floor and the drop came "
                   "as the code began to carry the words." if held
                   else "did not hold as stated here.")
                + " Not a local minimum: training left it with nothing changed (same learning "
                  "rate, same data), so it was a flat region the optimizer crossed.")
        else:
            bounds = gap_bounds(event.before)
            stuck = bounds is not None and near_floor(event.before) and bounds[1] <= SMALL_GAP
            lines.append(f"- **{name}**: {where}, to the end of the trace, with no sharp drop "
                         f"after it; {facts}. "
                         + ("The decoder never came to use its code: training stopped while it "
                            "still said what it can say without one. " if stuck else "")
                         + "Training ended on it (early stopping, or the time or epoch limit); "
                           "whether it is a local minimum the trace cannot say.")
    return lines
