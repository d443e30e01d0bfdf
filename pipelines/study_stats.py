"""The study's statistics: each figure's mean and 95% interval over seeds, the paired
differences between models (same seed, same sentences), and training speed with compilation
apart. Student's t throughout: with three seeds the interval is wide (t = 4.30), which is the
point: a gap whose interval holds zero is not a finding."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
from scipy import stats

from pipelines.study_config import SCORED

# The figures summarised over seeds (``compare``'s keys, and the timing's).
FIGURES = ("token_accuracy", "exact_sentence_rate", "bleu4")
CONFIDENCE = 0.95


def interval(values: list[float]) -> dict | None:
    """``mean``, ``low``, ``high`` (the t interval at :data:`CONFIDENCE`; None for one
    value), ``n`` and the ``values``; None when there are none."""
    values = [float(v) for v in values if v is not None]
    if not values:
        return None
    mean = float(np.mean(values))
    if len(values) < 2:
        return {"mean": mean, "low": None, "high": None, "n": 1, "values": values}
    half = (stats.t.ppf(0.5 + CONFIDENCE / 2, len(values) - 1)
            * np.std(values, ddof=1) / math.sqrt(len(values)))
    return {"mean": mean, "low": mean - float(half), "high": mean + float(half),
            "n": len(values), "values": values}


def paired(a: dict[int, float], b: dict[int, float]) -> dict | None:
    """The difference ``a - b`` over the seeds both have (same seed: same training sentences
    and order, same test sentences): its :func:`interval`, the paired t-test's ``p`` and
    ``significant`` (the interval leaves out zero); None below two common seeds."""
    seeds = sorted(set(a) & set(b))
    if len(seeds) < 2:
        return None
    diff = interval([a[s] - b[s] for s in seeds])
    with warnings.catch_warnings():  # equal differences: scipy warns, and p is 0 or nan
        warnings.simplefilter("ignore", RuntimeWarning)
        p = float(stats.ttest_rel([a[s] for s in seeds], [b[s] for s in seeds]).pvalue)
    return {**diff, "p": None if math.isnan(p) else p,
            "significant": diff["low"] > 0 or diff["high"] < 0}


def timing(history: list[dict], restarts: set[int] = frozenset({0})) -> dict:
    """Training speed of a run from its history: ``sentences_per_s`` over the epochs that did
    not start a training process (``restarts``: indices of the finished epochs that did, whose
    steps compile, one per batch width), ``compile_s`` (the mean time of a starting epoch beyond
    that speed: compilation and warm-up), and ``train_s`` in all."""
    rows = [r for r in history if r.get("status") == "ok" and r.get("wall_s")]
    timed = [r for i, r in enumerate(rows) if i not in restarts]
    starts = [r for i, r in enumerate(rows) if i in restarts]
    speed = (sum(r["sentences"] for r in timed) / sum(r["wall_s"] for r in timed)
             if timed else None)
    compile_s = (float(np.mean([max(0.0, r["wall_s"] - r["sentences"] / speed) for r in starts]))
                 if speed and starts else None)
    return {"sentences_per_s": speed, "compile_s": compile_s,
            "train_s": sum(r["wall_s"] for r in rows)}


def summarise(models: dict, runs: dict) -> dict:
    """``summary``: per model, per scored phase, each of :data:`FIGURES` over its seeds, and
    ``sentences_per_s`` and ``compile_s``; ``differences``: per phase, every pair of the main
    models (group ``models``, the seed's model left out) on token accuracy, paired by seed."""
    summary, by_seed = {}, {}
    for name, entry in models.items():
        mine = [runs[r] for r in entry["runs"] if r in runs]
        summary[name] = {"seeds": sum(bool(r.get("budget")) for r in mine), **{
            key: interval([r["timing"][key] for r in mine])
            for key in ("sentences_per_s", "compile_s")}}
        for phase in SCORED:
            scored = [r for r in mine if r.get(phase)]
            summary[name][phase] = {f: interval([r[phase][f] for r in scored]) for f in FIGURES}
            by_seed[name, phase] = {r["seed"]: r[phase]["token_accuracy"] for r in scored}
    main = [n for n, e in models.items()
            if e["group"] == "models" and e["settings"].get("converge", True)]
    differences = {phase: [{"a": a, "b": b, **gap}
                           for a, b in itertools.combinations(main, 2)
                           if (gap := paired(by_seed[a, phase], by_seed[b, phase]))]
                   for phase in SCORED}
    return {"summary": summary, "differences": differences}
