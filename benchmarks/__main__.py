"""``python -m benchmarks [--quick] [--out BENCHMARKS.md] [--only NAME ...]``

Runs every benchmark (or the ``--only`` ones), prints each table as it finishes, and writes a
Markdown report: the machine, the library versions, the exact command, and every figure with
its ratio. ``--quick`` takes about 3.5 minutes on an idle 2-core machine (3 min 32 s and 3 min 29 s,
twice in a row; a busy one can double it); the full sizes take under an hour.

A benchmark module declares the optional packages it needs in ``REQUIRES`` (a tuple of import
names, read from its source without importing it); when one is missing its section is skipped
with a note. The report replaces ``--out`` only when the whole run completes and every section
succeeded, atomically; after a failed section a partial report is written beside it instead.
"""

from __future__ import annotations

import argparse
import ast
import datetime
import importlib
import importlib.util
import os
import re
import shlex
import sys
import tempfile
import time
import tomllib
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from benchmarks.report import Section

ROOT = Path(__file__).resolve().parents[1]
# Run order matters: stage one forks its tokenizer pool, so it runs before anything loads
# TensorFlow into this process (the decoder benchmark does); training runs in spawned children.
# The modules are imported only when run, so spawned children (which re-import this module)
# stay lean.
BENCHMARKS = {
    "stage1": "benchmarks.bench_stage1",
    "output-layer": "benchmarks.bench_output_layer",
    "sampled": "benchmarks.bench_sampled",
    "memory": "benchmarks.bench_memory",
    "input": "benchmarks.bench_input",
    "decode": "benchmarks.bench_decode",
    "greedy": "benchmarks.bench_greedy",
    "end-to-end": "benchmarks.bench_end_to_end",
    "distributed": "benchmarks.bench_distributed",
    "xla": "benchmarks.bench_xla",
    "bucketing": "benchmarks.bench_bucketing",
    "codes": "benchmarks.bench_codes",
    "backends": "benchmarks.bench_backends",
    "trace": "benchmarks.bench_trace",
}
OK, SKIPPED, FAILED = "ok", "skipped", "FAILED"  # a section's outcome
# What benchmarks/report.py imports for the machine description: the `bench` extra.
REPORT_REQUIRES = ("psutil", "threadpoolctl")
METHOD = [
    "Every benchmark alternates its contenders (A B A B ...) over several rounds and reports "
    "the median; ratios are of medians.",
    "Training contenders each run in their own spawned process, so every peak RSS (VmHWM, "
    "which unlike ru_maxrss does not inherit the parent's) is that contender's alone.",
    "The machine may be shared: the load averages at start and end say how busy it was, and "
    "timings on a loaded machine are lower and noisier than on an idle one.",
]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[1])
    parser.add_argument("--quick", action="store_true",
                        help="small sizes and 1-3 repeats: about 3.5 minutes on 2 idle cores")
    parser.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md",
                        help="Markdown report to write when the run completes (default: "
                             "BENCHMARKS.md at the repo root); left as it was if a section fails")
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), metavar="NAME",
                        help=f"run only these benchmarks: {', '.join(BENCHMARKS)}")
    return parser.parse_args(argv)


def missing_modules(names: tuple[str, ...] | list[str]) -> list[str]:
    """The top-level packages of ``names`` that cannot be imported (not installed)."""
    return [name for name in names if importlib.util.find_spec(name.split(".")[0]) is None]


def declared_requirements(module_name: str) -> tuple[str, ...]:
    """A benchmark module's ``REQUIRES``, read from its source without importing it (so a
    module whose own imports need a missing package is still only skipped); the attribute of
    an already imported module."""
    loaded = sys.modules.get(module_name)
    if loaded is not None:
        return tuple(getattr(loaded, "REQUIRES", ()))
    spec = importlib.util.find_spec(module_name)
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return ()  # not found: importing it reports that as the section's failure
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"), spec.origin)
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else (
            [node.target] if isinstance(node, ast.AnnAssign) and node.value is not None else [])
        if any(isinstance(target, ast.Name) and target.id == "REQUIRES" for target in targets):
            return tuple(ast.literal_eval(node.value))
    return ()


def install_hint(packages: list[str]) -> str:
    """``pip install -e '.[EXTRA]'`` for the optional-dependency extras of pyproject.toml that
    provide ``packages``; ``pip install NAME`` for any that none provides."""
    try:
        with open(ROOT / "pyproject.toml", "rb") as handle:
            extras = tomllib.load(handle)["project"]["optional-dependencies"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        extras = {}

    def canonical(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    wanted, plain = [], []
    for package in packages:
        extra = next((extra for extra, requirements in extras.items()
                      if any(canonical(re.split(r"[\s\[<>=!~;@]", requirement, maxsplit=1)[0])
                             == canonical(package) for requirement in requirements)), None)
        if extra is None:
            plain.append(package)
        elif extra not in wanted:
            wanted.append(extra)
    commands = ([f"pip install -e '.[{','.join(wanted)}]'"] if wanted else []) + (
        [f"pip install {' '.join(plain)}"] if plain else [])
    return " and ".join(commands)


def not_installed(packages: list[str]) -> str:
    """``jax is not installed (pip install -e '.[jax]')``, for one or more packages."""
    verb = "is" if len(packages) == 1 else "are"
    return f"{' and '.join(packages)} {verb} not installed ({install_hint(packages)})"


def run_benchmark(name: str, quick: bool, workdir: Path) -> tuple[Section, str]:
    """One benchmark's section and its outcome: OK; SKIPPED (a package it declares in
    ``REQUIRES`` is missing: a one-row note); FAILED (it raised: a one-row error table)."""
    from benchmarks.report import Section

    started = time.perf_counter()
    try:
        missing = missing_modules(declared_requirements(BENCHMARKS[name]))
        if missing:  # before the import, which could need the missing package
            return (Section(f"{name}: skipped", ["reason"], [[f"skipped: {not_installed(missing)}"]]),
                    SKIPPED)
        module = importlib.import_module(BENCHMARKS[name])
        section, outcome = module.run(module.QUICK if quick else module.FULL, workdir), OK
    except Exception as exc:  # report it and carry on with the other benchmarks
        traceback.print_exc()
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        section, outcome = Section(f"{name}: FAILED", ["error"], [[first_line]]), FAILED
    section.notes.append(f"Benchmark wall time: {time.perf_counter() - started:.0f} s.")
    return section, outcome


def render_report(command: str, quick: bool, seconds: float, machine: dict[str, str],
                  sections: list[Section], failed: list[str]) -> str:
    """The Markdown report: header, machine, versions, method, targets summary, sections."""
    from benchmarks.report import format_markdown, load_average
    from embeddings.store.machine import library_versions

    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# seqae benchmarks", "",
        f"Generated by `{command}` on {now} in {seconds / 60:.1f} min "
        f"({'quick sizes' if quick else 'full sizes'}).", "",
    ]
    if failed:
        lines += [f"**Partial report: {', '.join(failed)} FAILED.**", ""]
    lines += [
        "## Machine", "", "| | |", "| --- | --- |",
        *(f"| {key} | {value} |" for key, value in machine.items()),
        f"| load average at end (1/5/15 min) | {load_average()} |", "",
        "## Library versions", "", "| library | version |", "| --- | --- |",
        *(f"| {name} | {version} |" for name, version in library_versions().items()), "",
        "## Method", "", *(f"- {line}" for line in METHOD), "",
        "## Targets", "",
    ]
    targets = [(section.title, target) for section in sections for target in section.targets]
    lines += [f"- **{'met' if target.met else 'MISSED'}**: {target.claim} ({target.detail})"
              for _, target in targets] or ["- none checked"]
    for section in sections:
        lines += ["", format_markdown(section)]
    return "\n".join(lines) + "\n"


def partial_path(out: Path) -> Path:
    """Where the report of a run with a failed section goes: ``BENCHMARKS.partial.md`` beside
    ``BENCHMARKS.md``, which is left as it was."""
    return out.with_name(f"{out.stem}.partial{out.suffix or '.md'}")


def write_atomically(path: Path, text: str) -> None:
    """``text`` to ``path`` through a temporary file in the same folder and one rename."""
    from embeddings.store.files import atomic_open

    with atomic_open(path) as handle:
        handle.write(text)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    missing = missing_modules(REPORT_REQUIRES)
    if missing:  # benchmarks/report.py imports them for every section and the machine table
        verb = "is" if len(missing) == 1 else "are"
        print(f"python -m benchmarks: {' and '.join(missing)} {verb} not installed "
              "(pip install -e '.[bench]')", file=sys.stderr)
        return 2
    if args.out.exists() and not args.out.is_file():
        print(f"python -m benchmarks: --out {args.out} is not a regular file", file=sys.stderr)
        return 2
    from benchmarks.report import format_text, machine_description

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # inherited by every child process
    command = shlex.join(["python", "-m", "benchmarks", *(sys.argv[1:] if argv is None else argv)])
    machine = machine_description()
    started = time.perf_counter()
    sections, outcomes = [], {}
    with tempfile.TemporaryDirectory(prefix="seqae-bench-") as workdir:
        for name in [name for name in BENCHMARKS if not args.only or name in args.only]:
            print(f"[{name}] running ...", file=sys.stderr, flush=True)
            section, outcomes[name] = run_benchmark(name, args.quick, Path(workdir))
            sections.append(section)
            print(format_text(section) + "\n", flush=True)
    seconds = time.perf_counter() - started
    failed = [name for name, outcome in outcomes.items() if outcome == FAILED]
    skipped = [name for name, outcome in outcomes.items() if outcome == SKIPPED]
    report = render_report(command, args.quick, seconds, machine, sections, failed)
    # A link is followed, so the report replaces what it points to and the link stays.
    out = args.out.resolve() if args.out.is_symlink() else args.out
    took = f"{seconds / 60:.1f} min"
    if failed:
        partial = partial_path(out)
        write_atomically(partial, report)
        print(f"FAILED: {', '.join(failed)}; {args.out} left as it was, partial report written "
              f"to {partial} ({took})")
        return 1
    write_atomically(out, report)
    partial_path(out).unlink(missing_ok=True)  # a failed run's, now out of date
    print(f"wrote {args.out} ({took})" + (f"; skipped: {', '.join(skipped)}" if skipped else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
