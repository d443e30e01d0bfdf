"""The measuring discipline every benchmark follows: contenders alternate, medians are reported.

Running A A A B B B lets drift (thermal state, another user's load, page cache) favour one side;
A B A B ... spreads it evenly, and the median of the repeats discards the odd outlier.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from typing import TypeVar

T = TypeVar("T")


def alternate(contenders: Mapping[str, Callable[[], T]], repeats: int) -> dict[str, list[T]]:
    """Call every contender once per round, in the mapping's order, for ``repeats`` rounds.

    Returns each contender's results (one per round, in round order).
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    results: dict[str, list[T]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, contender in contenders.items():
            results[name].append(contender())
    return results


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    """The result of one call of ``fn`` and its wall-clock seconds (``time.perf_counter``)."""
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def seconds(fn: Callable[[], object]) -> float:
    """Wall-clock seconds (``time.perf_counter``) of one call of ``fn``."""
    return timed(fn)[1]


def plural(count: int, noun: str) -> str:
    """``1 round``, ``2 rounds``: a count for a table note."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def median(values: list[float]) -> float:
    """Median of a non-empty list."""
    return float(statistics.median(values))


def median_of(samples: list[dict], key: str) -> float:
    """Median of ``sample[key]`` over a list of result dicts."""
    return median([sample[key] for sample in samples])
