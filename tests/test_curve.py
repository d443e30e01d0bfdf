"""Reading a step trace: plateaus, sharp drops and the code-reliance gap around them."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from pipelines import curve
from pipelines.curve import describe, find_events, gap, network_floor, verdict


def trace(losses, every=1.0, reliance=None):
    """Rows of a steps.csv with these training losses, one a second; ``reliance(i)`` gives the
    validation fields of row ``i`` (None: not measured there)."""
    rows = []
    for i, loss in enumerate(losses):
        row = {"train_s": i * every, "train_loss": float(loss)}
        row.update((reliance(i) if reliance else None) or {})
        rows.append(row)
    return rows


PLATEAU_THEN_DROP = ([5.0 - 0.1 * i for i in range(10)] + [4.0] * 40
                     + [4.0 - 0.15 * i for i in range(1, 11)] + [2.5] * 20)


def measured(opens: bool, before=(None, None), after=(None, None), **extra):
    """Validation fields every 5th row: the code explains 1% on the plateau and, if ``opens``,
    40% after the drop; ``before``/``after``: the gap's interval there (None: an old trace's
    row, without one); ``extra``: more fields (``code_zeroed``, ``code_free``)."""
    def fields(i):
        if i % 5:
            return None
        own = PLATEAU_THEN_DROP[i]
        explained = 0.01 if i < 50 or not opens else 0.4
        low, high = before if i < 50 else after
        return {"val_loss": own, "val_loss_swapped": own / (1 - explained), "code_free": 4.05,
                "gap_low": low, "gap_high": high, **extra}
    return fields


def dropped(reliance):
    return next(e for e in find_events(trace(PLATEAU_THEN_DROP, reliance=reliance)) if e.dropped)


def test_a_plateau_at_the_floor_then_a_drop_as_the_gap_opens_is_found_and_held():
    events = find_events(trace(PLATEAU_THEN_DROP, reliance=measured(opens=True)))
    assert len(events) >= 1
    event = next(e for e in events if e.dropped)
    assert 8 <= event.start_s <= 12 and 45 <= event.end_s <= 51 and event.level == 4.0
    assert 51 <= event.drop_end_s <= 56
    held, facts = verdict(event)
    assert held, facts
    assert gap(event.before) < 0.05 < gap(event.later)


def test_a_drop_without_the_gap_opening_does_not_hold():
    event = next(e for e in find_events(trace(PLATEAU_THEN_DROP, reliance=measured(opens=False)))
                 if e.dropped)
    held, _ = verdict(event)
    assert not held
    text = " ".join(describe("m", trace(PLATEAU_THEN_DROP, reliance=measured(opens=False))))
    assert "did not hold" in text and "Not a local minimum" in text


def test_a_steadily_falling_curve_has_no_plateau():
    rows = trace(5.0 * np.exp(-np.arange(200) / 40.0))
    assert find_events(rows) == []
    assert "no plateau" in describe("m", rows)[0]
    # With the code-reliance measure, it says what was seen instead: the gap at both ends.
    line = describe("m", trace(5.0 * np.exp(-np.arange(80) / 20.0), reliance=measured(True)))[0]
    assert "At the first measurement" in line and "at the last" in line


def test_a_slow_steady_descent_is_not_a_chain_of_plateaus():
    rows = trace(np.linspace(5.2, 4.5, 400))
    assert all(not e.dropped and e.end_s == rows[-1]["train_s"] for e in find_events(rows))
    assert len(find_events(rows)) <= 1


def test_a_plateau_that_never_ends_is_reported_without_a_drop():
    rows = trace([5.0 - 0.2 * i for i in range(10)] + [3.0] * 60)
    events = find_events(rows)
    assert events and not events[-1].dropped
    assert "no sharp drop" in describe("m", rows)[-1]


def test_without_the_code_reliance_measure_the_verdict_says_so():
    event = next(e for e in find_events(trace(PLATEAU_THEN_DROP)) if e.dropped)
    held, facts = verdict(event)
    assert not held and "--eval-every" in facts


def test_a_loss_that_creeps_up_on_its_plateau_has_not_left_it():
    rows = trace([5.0 - 0.2 * i for i in range(10)] + [3.0 + 0.003 * i for i in range(100)])
    events = find_events(rows)
    assert len(events) == 1 and not events[0].dropped
    assert events[0].start_s <= 11 and events[0].end_s == rows[-1]["train_s"]


def test_the_curve_is_read_on_the_validation_rows_when_there_are_enough():
    """Length-bucketed batches make the training loss swing from step to step; the fixed
    validation sample shows the plateau and the drop that the training loss hides."""
    noisy = [0.2 if i % 2 else 8.0 for i in range(len(PLATEAU_THEN_DROP))]
    rows = trace(noisy, reliance=lambda i: {"val_loss": PLATEAU_THEN_DROP[i],
                                            "val_loss_swapped": PLATEAU_THEN_DROP[i] * 1.01,
                                            "code_free": 4.05})
    assert any(e.dropped for e in find_events(rows))
    assert not any(e.dropped for e in find_events(trace(noisy)))


def test_at_the_floor_is_tighter_than_a_sharp_drop():
    """A loss a whole sharp drop above its floor must not count as sitting on it."""
    assert curve.NEAR_FLOOR < curve.SHARP_FALL


def test_the_floor_is_the_networks_not_the_word_statistics_estimate():
    """The estimate (code_free) is only quoted: a plateau right on it but well above what the
    network says with its codes zeroed is not at the floor; one far from the estimate but on the
    network's floor is."""
    above = dropped(measured(True, code_zeroed=3.5, code_free=4.0))
    assert network_floor(above.before) == 3.5
    held, facts = verdict(above)
    assert not held and "floor of 3.5 (its loss with the codes zeroed" in facts
    assert "word-statistics estimate 4" in facts
    on = dropped(measured(True, code_zeroed=4.1, code_free=6.0))
    assert network_floor(on.before) == pytest.approx(4.0 / 0.99)  # the swapped loss is lower
    held, facts = verdict(on)
    assert held and "(its loss with the codes swapped; word-statistics estimate 6)" in facts
    old = dropped(measured(True, code_free=6.0))  # a trace from before code_zeroed
    assert network_floor(old.before) == pytest.approx(4.0 / 0.99)
    assert "(its loss with the codes swapped; code_free as recorded 6)" in verdict(old)[1]


def test_overlapping_intervals_do_not_hold_where_the_point_gaps_would_have():
    points = dropped(measured(True))
    assert verdict(points)[0]  # 1% before, 40% after: held on point values alone
    overlapping = measured(True, before=(0.0, 0.04), after=(0.03, 0.7), code_zeroed=4.1)
    held, facts = verdict(dropped(overlapping))
    assert not held
    assert "1.0% (95% CI 0.0-4.0%)" in facts and "40.0% (95% CI 3.0-70.0%) after" in facts
    text = " ".join(describe("m", trace(PLATEAU_THEN_DROP, reliance=overlapping)))
    assert "did not hold" in text
    # A before interval reaching past SMALL_GAP is no small gap, whatever the point says.
    wide = measured(True, before=(-0.03, 0.06), after=(0.3, 0.5), code_zeroed=4.1)
    held, facts = verdict(dropped(wide))
    assert not held and "95% CI -3.0 to 6.0%" in facts
    apart = measured(True, before=(0.0, 0.03), after=(0.3, 0.5), code_zeroed=4.1)
    assert verdict(dropped(apart))[0]
    assert "held: the plateau" in " ".join(describe("m", trace(PLATEAU_THEN_DROP, reliance=apart)))


OLD_HEADER = ["epoch", "step", "sentences", "train_s", "train_loss", "grad_norm", "lr",
              "val_loss", "val_loss_swapped", "code_free"]


def _write_old_trace(path, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, OLD_HEADER, lineterminator="\n")
        writer.writeheader()
        for i, row in enumerate(rows):
            writer.writerow({"epoch": 1, "step": i + 1, "sentences": 32 * (i + 1),
                             "grad_norm": 0.5, "lr": 0.001,
                             **{k: "" if row.get(k) is None else row[k] for k in OLD_HEADER
                                if k in row}})


def test_a_trace_from_before_the_network_floor_and_intervals_still_reads_and_describes(tmp_path):
    from autoencoder.training.trace import read_steps

    path = tmp_path / "steps.csv"
    rows = trace(PLATEAU_THEN_DROP, reliance=measured(True))
    _write_old_trace(path, rows)
    read = read_steps(path)
    assert len(read) == len(rows)
    assert all(r["code_zeroed"] is None and r["gap_low"] is None and r["gap_high"] is None
               for r in read)
    assert read[0]["code_free"] == 4.05 and read[1]["code_free"] is None
    text = " ".join(describe("m", read))
    assert "The explanation held" in text  # point gaps, and the swapped loss as the floor
    assert "95% CI" not in text and "code_free as recorded 4.05" in text


def test_a_run_resumed_on_an_old_trace_rewrites_it_under_the_current_header(tmp_path):
    from autoencoder.training.trace import STEP_FIELDS, StepTrace, read_steps

    path = tmp_path / "steps.csv"
    _write_old_trace(path, trace([3.0, 2.5], reliance=lambda i: {
        "val_loss": 2.0, "val_loss_swapped": 2.2, "code_free": 2.4}))
    steps = StepTrace(path, every=1)
    assert steps.restore(path.stat().st_size, (1, 2))
    assert path.read_text().splitlines()[0] == ",".join(STEP_FIELDS)
    steps.step(1, 3, 2.0, 10.0, 0.4, last=True, sentences=96, train_s=3.0, lr=0.001,
               validation={"val_loss": 1.9, "val_loss_swapped": 2.3, "code_free": 2.4,
                           "code_zeroed": 2.5, "gap_low": 0.1, "gap_high": 0.2})
    size = steps.commit()
    read = read_steps(path)
    assert [r["step"] for r in read] == [1, 2, 3]
    assert read[0]["code_free"] == 2.4 and read[0]["code_zeroed"] is None
    assert (read[2]["code_zeroed"], read[2]["gap_low"], read[2]["gap_high"]) == (2.5, 0.1, 0.2)
    assert not StepTrace(path, every=1).restore(size, (1, 3))  # intact under the new header
