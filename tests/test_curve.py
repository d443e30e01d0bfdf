"""Reading a step trace: plateaus, sharp drops and the code-reliance gap around them."""

from __future__ import annotations

import numpy as np

from pipelines.curve import describe, find_events, gap, verdict


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


def measured(opens: bool):
    def fields(i):
        if i % 5:
            return None
        own = PLATEAU_THEN_DROP[i]
        explained = 0.01 if i < 50 or not opens else 0.4
        return {"val_loss": own, "val_loss_swapped": own / (1 - explained), "code_free": 4.05}
    return fields


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
