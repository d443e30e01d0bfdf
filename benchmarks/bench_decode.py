"""Benchmark 3: nearest-neighbour decoding of output vectors to words.

``NearestNeighbourDecoder.kneighbors`` (one GEMM per chunk of queries, then an argmax) against
gensim's per-token ``KeyedVectors.most_similar`` loop, and against the machine's own float32
GEMM of the same shape, (batch x dim) @ (dim x V), timed in the same run. A decoder that reaches
the GEMM rate has no overhead left to remove on the CPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from gensim.models import KeyedVectors

from autoencoder.model.decode import NearestNeighbourDecoder, top_k
from benchmarks.report import Section, Target
from benchmarks.timing import alternate, median, seconds, timed

# Optional packages, checked before this module is imported (a missing one skips the section).
REQUIRES: tuple[str, ...] = ()

GEMM_TARGET = 0.70  # decoder throughput as a share of the GEMM rate, at batch >= 256
GEMM_TARGET_BATCH = 256
LOOP_TARGET = 5.0  # decoder speed-up over the per-token loop, at the largest V


@dataclass(frozen=True)
class Settings:
    """Vocabulary sizes V and query batch sizes to time, ``loop_tokens`` tokens through the
    per-token loop (its rate is extrapolated from them), ``verify_queries`` queries checked
    against the brute-force reference, and ``repeats`` rounds."""

    vocab_sizes: tuple[int, ...] = (22_000, 100_000)
    batch_sizes: tuple[int, ...] = (256, 4096)
    dim: int = 2000
    loop_tokens: int = 32
    verify_queries: int = 512
    repeats: int = 3


FULL = Settings()
# A 4096-query batch against 100k words is 1.6 TFLOP (over 10 s on 2 cores): quick times the
# smallest batch the GEMM target covers, 256, against the GEMM and the loop, at V up to 50k.
QUICK = Settings(vocab_sizes=(22_000, 50_000), batch_sizes=(256,), loop_tokens=8, verify_queries=256,
                 repeats=2)


def brute_force_top1(table: np.ndarray, queries: np.ndarray, chunk_rows: int = 8192) -> np.ndarray:
    """Exact index of the row of ``table`` with the largest cosine to each query.

    Float64 throughout, in chunks of ``chunk_rows`` table rows; shape (len(queries),) int64.
    """
    unit_queries = queries.astype(np.float64)
    unit_queries /= np.maximum(np.linalg.norm(unit_queries, axis=1, keepdims=True), 1e-300)
    best = np.full(len(queries), -np.inf)
    best_ids = np.zeros(len(queries), dtype=np.int64)
    for start in range(0, len(table), chunk_rows):
        rows = table[start:start + chunk_rows].astype(np.float64)
        rows /= np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-300)
        sims = unit_queries @ rows.T
        local = sims.argmax(axis=1)
        scores = sims[np.arange(len(queries)), local]
        better = scores > best
        best[better], best_ids[better] = scores[better], local[better] + start
    return best_ids


def decode_breakdown(decoder: NearestNeighbourDecoder, queries: np.ndarray) -> dict[str, float]:
    """Seconds of each step of one ``kneighbors`` chunk, redone by hand: query normalisation,
    the GEMM, and the argmax with the id lookup; ``rows`` is the chunk's number of queries."""
    block = queries[: decoder.chunk_rows]

    def normalise() -> np.ndarray:
        return block / np.maximum(np.linalg.norm(block, axis=1, keepdims=True), 1e-12)

    unit = normalise()
    sims = unit @ decoder.unit_.T
    return {"rows": len(block), "normalise": seconds(normalise),
            "GEMM": seconds(lambda: unit @ decoder.unit_.T),
            "argmax": seconds(lambda: top_k(sims, 1)[0])}


def most_similar_loop(kv: KeyedVectors, queries: np.ndarray) -> np.ndarray:
    """Top-1 row index per query, one ``KeyedVectors.most_similar`` call per token."""
    return np.array([int(kv.most_similar(positive=[query], topn=1)[0][0]) for query in queries])


def run(settings: Settings, workdir: Path) -> Section:
    """Tokens/s of the decoder, the GEMM and the per-token loop per V and batch; the checks."""
    rng = np.random.default_rng(0)
    dim = settings.dim
    section = Section(
        f"Nearest-neighbour decoding (dim {dim}, synthetic random vectors)",
        ["V", "batch", "decoder tok/s", "decoder GFLOP/s", "GEMM GFLOP/s", "decoder/GEMM",
         "loop tok/s", "decoder/loop"],
    )
    gemm_shares, loop_gains, mismatches, notes = [], [], [], []
    for vocab_size in settings.vocab_sizes:
        table = rng.standard_normal((vocab_size, dim), dtype=np.float32)
        decoder, build_s = timed(lambda table=table: NearestNeighbourDecoder(table))
        kv = KeyedVectors(dim)
        kv.add_vectors([str(i) for i in range(vocab_size)], table)
        kv.fill_norms()  # gensim's lazy first-call work, kept out of the timing
        queries = {batch: rng.standard_normal((batch, dim), dtype=np.float32)
                   for batch in settings.batch_sizes}
        loop_queries = rng.standard_normal((settings.loop_tokens, dim), dtype=np.float32)
        contenders = {"loop": lambda kv=kv, tokens=loop_queries: seconds(
            lambda: most_similar_loop(kv, tokens))}
        for batch, block in queries.items():
            contenders[f"gemm {batch}"] = lambda block=block, unit=decoder.unit_: seconds(
                lambda: block @ unit.T)
            contenders[f"decoder {batch}"] = lambda block=block, decoder=decoder: seconds(
                lambda: decoder.kneighbors(block))
        samples = alternate(contenders, settings.repeats)
        loop_rate = settings.loop_tokens / median(samples["loop"])
        for batch in settings.batch_sizes:
            decoder_s, gemm_s = median(samples[f"decoder {batch}"]), median(samples[f"gemm {batch}"])
            flop = 2 * batch * dim * vocab_size
            share, gain = gemm_s / decoder_s, batch / decoder_s / loop_rate
            if batch >= GEMM_TARGET_BATCH:
                gemm_shares.append((share, vocab_size, batch))
            if vocab_size == max(settings.vocab_sizes):
                loop_gains.append((gain, batch))
            section.rows.append([
                f"{vocab_size:,}", f"{batch:,}", f"{batch / decoder_s:,.0f}",
                f"{flop / decoder_s / 1e9:.0f}", f"{flop / gemm_s / 1e9:.0f}", f"{share:.0%}",
                f"{loop_rate:,.1f}", f"{gain:.1f}x",
            ])
        verify = rng.standard_normal((settings.verify_queries, dim), dtype=np.float32)
        wrong = int((decoder.kneighbors(verify)[0][:, 0] != brute_force_top1(table, verify)).sum())
        wrong_loop = int((decoder.kneighbors(loop_queries)[0][:, 0]
                          != most_similar_loop(kv, loop_queries)).sum())
        mismatches.append((vocab_size, wrong, wrong_loop))
        parts = decode_breakdown(decoder, queries[max(settings.batch_sizes)])
        spent = parts["normalise"] + parts["GEMM"] + parts["argmax"]
        notes.append(
            f"V = {vocab_size:,}: one {parts['rows']}-query chunk spends "
            + ", ".join(f"{100 * parts[step] / spent:.1f}% in {step}"
                        for step in ("normalise", "GEMM", "argmax"))
            + f"; building the decoder (one normalised copy of the table) took {build_s:.1f} s.")
        del decoder, kv, table, contenders  # the contenders hold the decoder and kv too

    if gemm_shares:
        lowest = min(gemm_shares)
        section.targets.append(Target(
            f"decoder >= {GEMM_TARGET:.0%} of the float32 GEMM rate at batch >= {GEMM_TARGET_BATCH}",
            lowest[0] >= GEMM_TARGET,
            f"lowest {lowest[0]:.0%} at V = {lowest[1]:,}, batch {lowest[2]:,}"))
    gain = min(loop_gains)
    section.targets.append(Target(
        f"decoder >= {LOOP_TARGET:.0f}x the per-token most_similar loop at V = {max(settings.vocab_sizes):,}",
        gain[0] >= LOOP_TARGET, f"lowest {gain[0]:.1f}x at batch {gain[1]:,}"))
    section.targets.append(Target(
        "decoder top-1 equals the brute-force reference (float64 argmax of normalised dot products)",
        all(wrong == 0 and wrong_loop == 0 for _, wrong, wrong_loop in mismatches),
        "; ".join(f"V = {v:,}: {settings.verify_queries - wrong}/{settings.verify_queries} equal to "
                  f"brute force, {settings.loop_tokens - wrong_loop}/{settings.loop_tokens} to the loop"
                  for v, wrong, wrong_loop in mismatches)))
    section.notes += [
        f"Random float32 table of V x {dim} (20 Newsgroups has ~22k words at min_count 5) and random "
        f"queries; {settings.repeats} rounds alternating loop, GEMM and decoder, median. FLOP = "
        f"2 x batch x {dim} x V; the GEMM is a plain numpy matmul (batch x {dim}) @ ({dim} x V) "
        "on the decoder's own candidate matrix.",
        f"The per-token loop (gensim KeyedVectors.most_similar, topn=1) is timed on "
        f"{settings.loop_tokens} tokens and its rate extrapolated.",
        *notes,
    ]
    return section
