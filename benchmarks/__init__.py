"""Performance benchmarks of seqae: ``python -m benchmarks [--quick]`` writes BENCHMARKS.md.

One module per benchmark (``bench_*``), each with ``QUICK`` and ``FULL`` settings, a
``run(settings, workdir)`` returning a :class:`benchmarks.report.Section`, and ``REQUIRES``: the
optional packages it needs (import names), without which its section is skipped.
"""
