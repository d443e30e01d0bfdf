"""The error a user sees: one line, a non-zero exit, no traceback."""

from __future__ import annotations


class SeqaeError(Exception):
    """A user-facing error: bad input, missing artifact, option out of range.

    The CLI turns it into one line on stderr and a non-zero exit, without a traceback.
    """
