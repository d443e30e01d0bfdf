"""The declared structure of seqae's own JSON files, checked by the one reader of them.

A schema is a plain Python value that says what a JSON value must be:

- a type: ``int`` (not a bool), ``float`` (an int is accepted), ``str``, ``bool``, ``dict``
  (any object), ``list`` (any array), or ``None`` (``null``);
- a tuple of schemas: any one of them (``(int, None)``: a number or null);
- :data:`ANY`: anything;
- :class:`Fields`: an object with these keys (more are allowed: a newer seqae may add some);
- :class:`MapOf` / :class:`ListOf`: an object with any keys / an array, every value checked.

:func:`check` raises :class:`SchemaError` with the JSON path of the first mismatch, which the
reader (:func:`embeddings.store.jsonfile.read_json`) turns into one line naming the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ANY = object()  # any JSON value


@dataclass(frozen=True)
class Fields:
    """A JSON object with the keys of ``required`` (each value checked against its schema)
    and, when present, those of ``optional``. ``name`` says what the file is, for messages."""

    required: Mapping[str, Any]
    optional: Mapping[str, Any] = field(default_factory=dict)
    name: str = "object"


@dataclass(frozen=True)
class MapOf:
    """A JSON object with any keys, every value matching ``value``."""

    value: Any


@dataclass(frozen=True)
class ListOf:
    """A JSON array, every item matching ``item``."""

    item: Any


class SchemaError(ValueError):
    """A JSON value that does not match its schema; ``where`` is its JSON path (``$.files``)."""

    def __init__(self, where: str, problem: str):
        super().__init__(f"{where} {problem}")
        self.where, self.problem = where, problem


_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
               dict: "an object", list: "an array", None: "null"}


def describe(schema: Any) -> str:
    """What ``schema`` wants, in words: ``an integer or null``."""
    if isinstance(schema, tuple):
        return " or ".join(describe(s) for s in schema)
    if isinstance(schema, Fields | MapOf):
        return "an object"
    if isinstance(schema, ListOf):
        return "an array"
    return _TYPE_NAMES.get(schema, "anything")


def _matches_type(value: Any, schema: Any) -> bool:
    if schema is None:
        return value is None
    if schema is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if schema is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, schema)


def check(value: Any, schema: Any, where: str = "$") -> None:
    """Raise :class:`SchemaError` at the first part of ``value`` that ``schema`` does not allow."""
    if schema is ANY:
        return
    if isinstance(schema, tuple):
        errors = []
        for option in schema:
            try:
                check(value, option, where)
                return
            except SchemaError as exc:
                errors.append(exc)
        # A value of the right container type failed inside it: that error says more.
        deeper = [e for e in errors if e.where != where]
        if deeper:
            raise deeper[0]
        raise SchemaError(where, f"is {_shown(value)}, not {describe(schema)}")
    if isinstance(schema, Fields | MapOf):
        if not isinstance(value, dict):
            raise SchemaError(where, f"is {_shown(value)}, not an object")
        if isinstance(schema, MapOf):
            for key, item in value.items():
                check(item, schema.value, f"{where}.{key}")
            return
        missing = [key for key in schema.required if key not in value]
        if missing:
            raise SchemaError(where, f"has no {', '.join(map(repr, missing))}")
        for key, sub in (*schema.required.items(), *schema.optional.items()):
            if key in value:
                check(value[key], sub, f"{where}.{key}")
        return
    if isinstance(schema, ListOf):
        if not isinstance(value, list):
            raise SchemaError(where, f"is {_shown(value)}, not an array")
        for i, item in enumerate(value):
            check(item, schema.item, f"{where}[{i}]")
        return
    if not _matches_type(value, schema):
        raise SchemaError(where, f"is {_shown(value)}, not {describe(schema)}")


def _shown(value: Any) -> str:
    """A JSON value named by its type, as a message shows it (never its whole content)."""
    for kind in (None, bool, int, float, str, list, dict):
        if _matches_type(value, kind):
            return _TYPE_NAMES[kind]
    return type(value).__name__
