"""The parts of a Usenet post that a corpus may drop: headers, signature footer, quoted lines.

The rules are those of scikit-learn's ``fetch_20newsgroups(remove=...)``, so a corpus read
from the archive with ``--remove`` matches the one scikit-learn gives; they are written here
because scikit-learn keeps them in a private module.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

REMOVABLE = ("headers", "footers", "quotes")
"""Parts of a newsgroup post that ``remove`` may strip, in the order they are stripped."""

# A line that quotes or introduces a quote ("In article <...> x writes:", "> ...", "| ...").
_QUOTE = re.compile(r"(writes in|writes:|wrote:|says:|said:|^In article|^Quoted from|^\||^>)")


def strip_header(text: str) -> str:
    """Everything after the first blank line (the header block ends there)."""
    return text.partition("\n\n")[2]


def strip_footer(text: str) -> str:
    """``text`` without its signature: the last line that is blank or only dashes, and every
    line after it. Kept whole when that line is the first (no body would be left)."""
    lines = text.strip().split("\n")
    for cut in range(len(lines) - 1, 0, -1):
        if not lines[cut].strip().strip("-"):
            return "\n".join(lines[:cut])
    return text


def strip_quotes(text: str) -> str:
    """``text`` without the lines that quote another post or introduce a quote."""
    return "\n".join(line for line in text.split("\n") if not _QUOTE.search(line))


_STRIPPERS = {"headers": strip_header, "footers": strip_footer, "quotes": strip_quotes}


def strip_newsgroup_parts(text: str, remove: Iterable[str]) -> str:
    """``text`` less the ``remove`` parts (names from :data:`REMOVABLE`), stripped in that order."""
    remove = set(remove)
    for part in REMOVABLE:
        if part in remove:
            text = _STRIPPERS[part](text)
    return text
