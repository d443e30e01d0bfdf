"""Smoke test of the benchmark suite at toy sizes: it runs, renders, and the decoder it
benchmarks answers exactly what brute force does."""

from __future__ import annotations

import sys

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from benchmarks import __main__ as runner  # noqa: E402
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


def test_greedy_benchmark_runs_at_toy_size(tmp_path):
    from benchmarks import bench_greedy

    section = bench_greedy.run(bench_greedy.Settings(
        vocab_size=200, dim=8, seq_len=8, latent=4, sentences=40, repeats=1), tmp_path)
    assert len(section.rows) == 1 and len(section.targets) == 1
    assert float(section.rows[0][4].replace(",", "")) > 0
    assert float(section.rows[0][5].replace(",", "")) > 0


@pytest.mark.slow  # trains a model and encodes in several processes: about a minute
@pytest.mark.long
def test_codes_benchmark_runs_at_toy_size(tmp_path):
    from benchmarks import bench_codes

    section = bench_codes.run(bench_codes.Settings(
        corpus_sentences=200, vocab_size=200, dim=8, seq_len=8, latent=4, train_sentences=100,
        sentences=40, loop_sentences=2, repeats=1), tmp_path)
    assert len(section.rows) == 4 and len(section.targets) == 2
    assert all(float(row[2].replace(",", "")) > 0 for row in section.rows)


@pytest.mark.slow  # three spawned trainings
def test_trace_benchmark_runs_at_toy_size(tmp_path):
    from benchmarks import bench_trace

    section = bench_trace.run(bench_trace.Settings(
        vocab_size=100, dim=8, seq_len=6, latent=4, batch_size=16, sentences=200,
        val_sentences=20, epochs=3, repeats=1), tmp_path)
    assert [row[0] for row in section.rows] == list(bench_trace.CONTENDERS)
    assert all(float(row[1]) > 0 for row in section.rows) and len(section.targets) == 2
    # The eval contender measured code reliance; the trace-off one wrote no rows.
    from autoencoder.training.trace import read_steps
    assert not read_steps(tmp_path / "trace-0-0" / "steps.csv")
    assert any(r["val_loss"] is not None for r in read_steps(tmp_path / "trace-0-2" / "steps.csv"))


# The runner (python -m benchmarks) on fake benchmark modules: no training, well under a second.

@pytest.fixture
def fake_benchmark(tmp_path, monkeypatch):
    """``fake_benchmark(name, source)``: BENCHMARKS becomes ``{name: module}``, a module of that
    source in tmp_path; the machine is not probed."""
    from benchmarks import report

    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(report, "machine_description", lambda: {"CPU": "test"})
    modules = []

    def fake(name: str, source: str) -> None:
        modules.append(f"seqae_fake_bench_{len(modules)}")
        (tmp_path / f"{modules[-1]}.py").write_text(source, encoding="utf-8")
        monkeypatch.setattr(runner, "BENCHMARKS", {name: modules[-1]})

    yield fake
    for module in modules:
        sys.modules.pop(module, None)


def test_a_missing_requirement_skips_its_section_and_the_run_succeeds(fake_benchmark, tmp_path, capsys):
    # Importing the module would raise: the requirement is read from its source, not by import.
    fake_benchmark("needs-missing", 'REQUIRES = ("seqae_no_such_package",)\n'
                                    'raise ImportError("seqae_no_such_package")\n')
    out = tmp_path / "BENCH.md"
    assert runner.main(["--quick", "--out", str(out)]) == 0
    report = out.read_text(encoding="utf-8")
    assert "## needs-missing: skipped" in report
    assert "skipped: seqae_no_such_package is not installed (pip install seqae_no_such_package)" in report
    assert "skipped: needs-missing" in capsys.readouterr().out
    # The JAX benchmark declares its extra, and the hint names it.
    assert runner.declared_requirements("benchmarks.bench_backends") == ("jax",)
    assert runner.not_installed(["jax"]) == "jax is not installed (pip install -e '.[jax]')"


def test_a_failed_section_leaves_the_report_as_it_was(fake_benchmark, tmp_path, capsys):
    fake_benchmark("broken", "REQUIRES = ()\nQUICK = FULL = None\n\n"
                             "def run(settings, workdir):\n    raise RuntimeError('boom')\n")
    out = tmp_path / "BENCH.md"
    before = b"# an earlier report\r\n\x00 kept byte for byte\n"
    out.write_bytes(before)
    assert runner.main(["--quick", "--out", str(out)]) == 1
    assert out.read_bytes() == before
    partial = tmp_path / "BENCH.partial.md"
    assert "## broken: FAILED" in partial.read_text(encoding="utf-8")
    assert "boom" in partial.read_text(encoding="utf-8")
    printed = capsys.readouterr().out
    assert f"{out} left as it was" in printed and str(partial) in printed
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # no temporary left

    fake_benchmark("fixed", "REQUIRES = ()\nQUICK = FULL = None\n\n"
                            "def run(settings, workdir):\n"
                            "    from benchmarks.report import Section\n"
                            "    return Section('fixed', ['figure'], [['1']])\n")
    assert runner.main(["--out", str(out)]) == 0
    assert "## fixed" in out.read_text(encoding="utf-8") and not partial.exists()


def test_without_the_bench_extra_the_run_stops_with_one_line(tmp_path, monkeypatch, capsys):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: None if name == "psutil" else find_spec(name, *args))
    out = tmp_path / "BENCH.md"
    assert runner.main(["--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and not out.exists()
    assert captured.err.count("\n") == 1 and "pip install -e '.[bench]'" in captured.err
