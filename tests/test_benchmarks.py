"""Smoke test of the benchmark suite at toy sizes: it runs, renders, and the decoder it
benchmarks answers exactly what brute force does."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from benchmarks import bench_decode, bench_input  # noqa: E402
from benchmarks.report import format_markdown, format_text  # noqa: E402
from benchmarks.timing import alternate  # noqa: E402


def test_alternate_runs_contenders_round_robin():
    calls = []
    results = alternate({"a": lambda: calls.append("a") or 1, "b": lambda: calls.append("b") or 2}, 3)
    assert calls == ["a", "b"] * 3
    assert results == {"a": [1, 1, 1], "b": [2, 2, 2]}


def test_benchmarks_run_at_toy_sizes_and_decoder_equals_brute_force(tmp_path):
    table = np.random.default_rng(0).standard_normal((300, 8)).astype(np.float32)
    queries = np.random.default_rng(1).standard_normal((50, 8)).astype(np.float32)
    unit = table / np.linalg.norm(table, axis=1, keepdims=True)
    assert bench_decode.brute_force_top1(table, queries, chunk_rows=64).tolist() == (
        (queries @ unit.T).argmax(axis=1).tolist())

    decode = bench_decode.run(bench_decode.Settings(
        vocab_sizes=(500, 900), batch_sizes=(256,), dim=16, loop_tokens=4, verify_queries=64,
        repeats=1), tmp_path)
    assert len(decode.rows) == 2
    verification = [t for t in decode.targets if "brute-force" in t.claim]
    assert len(verification) == 1 and verification[0].met, verification

    starvation = bench_input.run(bench_input.Settings(
        vocab_size=200, sentences=40, dim=8, seq_len=6, latent=4, batch_size=16, repeats=1), tmp_path)
    assert len(starvation.rows) == 3 and all(float(row[1]) > 0 for row in starvation.rows)
    for section in (decode, starvation):
        assert section.title in format_text(section) and section.title in format_markdown(section)


@pytest.mark.slow  # trains a model and encodes in several processes: about a minute
def test_codes_benchmark_runs_at_toy_size(tmp_path):
    from benchmarks import bench_codes

    section = bench_codes.run(bench_codes.Settings(
        corpus_sentences=200, vocab_size=200, dim=8, seq_len=8, latent=4, train_sentences=100,
        sentences=40, loop_sentences=2, repeats=1), tmp_path)
    assert len(section.rows) == 4 and len(section.targets) == 2
    assert all(float(row[2].replace(",", "")) > 0 for row in section.rows)
