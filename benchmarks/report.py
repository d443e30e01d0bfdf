"""What a benchmark returns (a :class:`Section`), how it is rendered, and the machine it ran on."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from embeddings.store.machine import cpu_model


@dataclass(frozen=True)
class Target:
    """A performance claim checked by a benchmark: ``met`` or not, with the figure behind it."""

    claim: str
    met: bool
    detail: str


@dataclass
class Section:
    """One benchmark's results: a table of pre-formatted cells, notes and checked targets."""

    title: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)


def numeric_columns(section: Section) -> list[bool]:
    """Per column, whether every non-empty cell starts with a digit (right-aligned)."""
    return [all(not row[i] or row[i][0].isdigit() for row in section.rows)
            for i in range(len(section.headers))]


def format_text(section: Section) -> str:
    """The section as aligned plain text, for the terminal."""
    table = [section.headers, *section.rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(section.headers))]
    numeric = numeric_columns(section)
    lines = [section.title, "=" * len(section.title)]
    for number, row in enumerate(table):
        lines.append("  ".join(cell.rjust(width) if right else cell.ljust(width)
                               for cell, width, right in zip(row, widths, numeric)))
        if number == 0:
            lines.append("  ".join("-" * width for width in widths))
    lines.extend(f"* {note}" for note in section.notes)
    lines.extend(f"[{'met' if t.met else 'MISSED'}] {t.claim}: {t.detail}" for t in section.targets)
    return "\n".join(lines)


def format_markdown(section: Section) -> str:
    """The section as Markdown: a heading, a table, then notes and targets as lists."""
    rule = "|" + "|".join(" ---: " if right else " --- " for right in numeric_columns(section)) + "|"
    lines = [f"## {section.title}", "", "| " + " | ".join(section.headers) + " |", rule]
    lines.extend("| " + " | ".join(row) + " |" for row in section.rows)
    if section.notes:
        lines.append("")
        lines.extend(f"- {note}" for note in section.notes)
    if section.targets:
        lines.append("")
        lines.extend(f"- **{'met' if t.met else 'MISSED'}**: {t.claim} ({t.detail})"
                     for t in section.targets)
    return "\n".join(lines)


def machine_description() -> dict[str, str]:
    """CPU model, core counts, RAM, BLAS (from threadpoolctl) and the current load average.

    Needs the ``bench`` extra (psutil, threadpoolctl), imported here so that the rest of this
    module (sections and their rendering) works without it; ``python -m benchmarks`` checks
    for both before it starts.
    """
    import psutil
    from threadpoolctl import threadpool_info

    blas = [f"{Path(pool['filepath']).name}: {pool.get('internal_api')} {pool.get('version')} "
            f"({pool.get('threading_layer')}, {pool.get('num_threads')} threads, "
            f"{pool.get('architecture')})"
            for pool in threadpool_info() if pool.get("user_api") == "blas"]
    return {
        "CPU": cpu_model() or "unknown",
        "cores": f"{psutil.cpu_count(logical=False)} physical, {os.cpu_count()} logical",
        "RAM": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "OS": f"{platform.system()} {platform.release()} ({platform.machine()})",
        "BLAS (threadpoolctl)": "; ".join(blas) or f"none found (numpy {np.__version__})",
        "load average at start (1/5/15 min)": load_average(),
    }


def load_average() -> str:
    """The 1, 5 and 15 minute load averages: other users' work competes for the same cores."""
    return " / ".join(f"{load:.2f}" for load in os.getloadavg())
