"""seqae's JSON files: written atomically, read back bounded and checked against a schema."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from embeddings.store.errors import SeqaeError
from embeddings.store.files import atomic_open, read_text
from embeddings.store.schema import Fields, SchemaError, check


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_open(path) as handle:
        json.dump(obj, handle, indent=2, sort_keys=False, default=_json_default)
        handle.write("\n")


# seqae's JSON files are small (a report with every model's history is well under a megabyte);
# the bounds keep a planted file from exhausting memory or the parser's recursion.
MAX_JSON_BYTES = 64 << 20


def read_json(path: str | os.PathLike, schema: Any) -> Any:
    """Read one of seqae's JSON files and check it against its declared ``schema``
    (:mod:`embeddings.store.schema`). A missing, oversized, corrupt or misshapen file, or one
    that is a link or no regular file, is a :class:`SeqaeError` of one line naming the file and
    what is wrong."""
    path = Path(path)
    what = schema.name if isinstance(schema, Fields) else "JSON file"
    try:
        value = json.loads(read_text(path, MAX_JSON_BYTES, what))
    except FileNotFoundError:
        raise SeqaeError(f"missing file: {path}") from None
    except ValueError as exc:  # JSONDecodeError, or a 5,000-digit number
        raise SeqaeError(f"corrupt JSON in {path}: {exc}") from None
    except RecursionError:
        raise SeqaeError(f"corrupt JSON in {path}: nested too deeply") from None
    try:
        check(value, schema)
    except SchemaError as exc:
        raise SeqaeError(f"damaged {what} {path}: {exc} (seqae did not write it so)") from None
    return value


def _json_default(obj: Any) -> Any:
    # numpy scalars and paths show up in configs and metrics.
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def options_digest(options: dict[str, Any]) -> str:
    """A short stable hash of a JSON-able options dict, used as a cache key."""
    blob = json.dumps(options, sort_keys=True, default=_json_default).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
