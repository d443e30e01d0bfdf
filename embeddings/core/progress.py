"""Progress bars: one rule for when they show, for every long step of every stage."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from tqdm.auto import tqdm


def progress_bar(iterable: Iterable | None = None, *, show: bool = True, **kwargs: Any) -> tqdm:
    """A tqdm bar (``kwargs`` are tqdm's) on stderr, shown only where it helps: when stderr is
    a terminal, ``show`` is true (a worker that is not the chief passes False), and logging was
    not set above INFO (``pipe -q``) by whoever configured it."""
    root = logging.getLogger()
    quiet = bool(root.handlers) and not root.isEnabledFor(logging.INFO)
    return tqdm(iterable, disable=True if quiet or not show else None, **kwargs)
