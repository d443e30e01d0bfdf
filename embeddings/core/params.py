"""Each option's type and bounds, stated once.

The config dataclasses (``CorpusConfig``, ``Word2VecConfig``, ``AutoencoderConfig``,
``TrainConfig``, ``StudyConfig``, and the small ones of the library calls in
:mod:`pipelines.params`) declare their fields' rules in a ``PARAMS`` mapping (the idea of
scikit-learn's ``_parameter_constraints``) and check them with :func:`check_params` at
construction, before anything is written; the command line builds each option's click type from
the same rule (:func:`pipelines.cli.options.click_type`), so Python and ``pipe`` accept and refuse
the same values. A refusal is one :class:`SeqaeError` naming the keyword and its option::

    seq_len (--seq-len) must be an integer from 1 to 1,000, got 2.5

Nothing here imports click or Keras.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from embeddings.store.errors import SeqaeError


def flag(name: str) -> str:
    """The command-line option of keyword ``name``: ``seq_len`` -> ``--seq-len``."""
    return "--" + name.replace("_", "-")


def _number(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


@dataclass(frozen=True)
class Number:
    """An ``int`` or a finite ``float`` from ``low`` to ``high`` (either open when
    ``low_open``/``high_open``; None: unbounded); ``optional``: None is allowed too (its meaning is
    the field's: all, none, automatic). ``why`` says why the upper bound is there (``--help``)."""

    kind: type = int
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    optional: bool = False
    why: str | None = None

    def describe(self) -> str:
        what = "an integer" if self.kind is int else "a finite number"
        low = None if self.low is None else ("above " if self.low_open else "at least ") + _number(self.low)
        high = None if self.high is None else ("below " if self.high_open else "at most ") + _number(self.high)
        bounds = " and ".join(part for part in (low, high) if part)
        return f"{what} {bounds}" if bounds else what

    def check(self, name: str, value: Any) -> Any:
        if value is None and self.optional:
            return None
        ok = (not isinstance(value, bool) and
              isinstance(value, numbers.Integral if self.kind is int else numbers.Real))
        if ok:
            try:  # numpy scalars become Python's, as JSON writes them
                value = self.kind(value)
                # An integer is finite however long (math.isfinite overflows past 1e308).
                finite = self.kind is int or math.isfinite(value)
            except OverflowError:  # a 400-digit integer for a float
                finite = False
            ok = (finite
                  and (self.low is None or value > self.low or (value == self.low and not self.low_open))
                  and (self.high is None or value < self.high or (value == self.high and not self.high_open)))
        if not ok:
            raise _refusal(name, self.describe() + (" or None" if self.optional else ""), value)
        return value


@dataclass(frozen=True)
class OneOf:
    """One of ``choices`` (strings); ``optional``: None is allowed too."""

    choices: tuple[str, ...]
    optional: bool = False

    def describe(self) -> str:
        return "one of " + ", ".join(self.choices)

    def check(self, name: str, value: Any) -> Any:
        if (value is None and self.optional) or (isinstance(value, str) and value in self.choices):
            return value
        raise _refusal(name, self.describe(), value)


@dataclass(frozen=True)
class Flag:
    """True or False; ``optional``: None is allowed too (the option does not apply)."""

    optional: bool = False

    def describe(self) -> str:
        return "True or False"

    def check(self, name: str, value: Any) -> Any:
        if (value is None and self.optional) or isinstance(value, bool):
            return value
        raise _refusal(name, self.describe(), value)


@dataclass(frozen=True)
class Several:
    """A non-empty list (or tuple) of distinct values, each checked by ``item``; stored as a
    tuple. A string is not a list of names."""

    item: Number | OneOf

    def describe(self) -> str:
        return f"a list of distinct values, at least one, each {self.item.describe()}"

    def check(self, name: str, value: Any) -> Any:
        if isinstance(value, str | bytes) or not isinstance(value, Iterable):
            raise _refusal(name, self.describe(), value)
        values = tuple(self.item.check(name, v) for v in value)
        if not values or len(set(values)) != len(values):
            raise _refusal(name, self.describe(), values)
        return values


# The seed of every config and call that takes one.
SEED = Number(int, 0, 2**31 - 1)
DEFAULT_SEED = 0
# Tokenizer processes (:func:`pipelines.run_embed`) and word2vec threads; None: all cores.
WORKERS = Number(int, 1, 256, optional=True, why="one process or thread each")


def _refusal(name: str, wanted: str, value: Any) -> SeqaeError:
    shown = repr(value)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    return SeqaeError(f"{name} ({flag(name)}) must be {wanted}, got {shown}")


def check_type(name: str, value: Any, kind: type | tuple[type, ...]) -> Any:
    """``value`` if it is a ``kind`` (a config object a library call takes; or one of several),
    else one-line :class:`SeqaeError` naming the argument."""
    if not isinstance(value, kind):
        kinds = kind if isinstance(kind, tuple) else (kind,)
        wanted = " or ".join(f"a {k.__name__}(...)" for k in kinds)
        raise SeqaeError(f"{name} must be {wanted}, got {type(value).__name__}")
    return value


def check_params(obj: Any, params: Mapping[str, Number | OneOf | Flag | Several]) -> None:
    """Check every field of the frozen dataclass ``obj`` that ``params`` names against its rule,
    storing the value as checked (``numpy.int64(5)`` becomes ``5``); the first refusal raises."""
    for name, rule in params.items():
        object.__setattr__(obj, name, rule.check(name, getattr(obj, name)))
