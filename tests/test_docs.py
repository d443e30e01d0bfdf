"""README.md and docs/*.md: links and anchors resolve, generated figures are current, the
README stays a front page with the test command CI runs. Fast: no training, no Keras."""

from __future__ import annotations

import ast
import json
import re
import shutil
from pathlib import Path

import pytest

from benchmarks import figures

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TEST_COMMAND = ("python3 -m venv .venv && .venv/bin/pip install -e '.[test,jax]' "
                "&& .venv/bin/pytest")

FENCE = re.compile(r"^\s*(```|~~~)")
LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
INLINE_CODE = re.compile(r"(`+)(.+?)\1")


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: inline markup dropped, lower case, punctuation other
    than '-' and '_' removed, each space a '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links and images: their text
    text = INLINE_CODE.sub(lambda m: m.group(2), text)
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a Markdown file, duplicates numbered as GitHub numbers them."""
    seen: dict[str, int] = {}
    found = set()
    for line in prose_lines(path.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def links(path: Path) -> list[str]:
    """Link and image targets outside code (fenced blocks and inline code spans)."""
    targets = []
    for line in prose_lines(path.read_text(encoding="utf-8")):
        targets += LINK.findall(INLINE_CODE.sub("", line))
    return targets


def test_slug_follows_github_rules():
    assert slug("Keras backends: TensorFlow or JAX") == "keras-backends-tensorflow-or-jax"
    assert slug("What `pipe run` uses by default") == "what-pipe-run-uses-by-default"
    assert slug("The seed's model") == "the-seeds-model"
    assert slug("Bucketed vs fixed-width batches (embedding kind, V = 20,000)") == \
        "bucketed-vs-fixed-width-batches-embedding-kind-v--20000"
    assert slug("snake_case stays") == "snake_case-stays"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_and_anchors_resolve(doc: Path):
    broken = []
    for target in links(doc):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
            continue
        file_part, _, anchor = target.partition("#")
        dest = (doc.parent / file_part).resolve() if file_part else doc
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading with that anchor in {dest.name}")
    assert not broken, f"{doc.relative_to(ROOT)}: " + "; ".join(broken)


def test_docs_exist_and_are_linked_from_the_readme():
    readme_links = {t.partition("#")[0] for t in links(ROOT / "README.md")}
    pages = {f"docs/{p.name}" for p in DOCS[1:]}
    assert {"docs/study.md", "docs/usage.md", "docs/design.md", "docs/reliability.md",
            "docs/benchmarks.md"} <= pages
    assert pages <= readme_links


def test_readme_is_a_front_page_with_the_ci_test_command():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 260
    assert TEST_COMMAND in text.splitlines()


def test_generated_figures_are_current():
    stale, _ = figures.run(ROOT, check=True)
    assert not stale, ("stale generated figures (run `python -m benchmarks.figures`): "
                       + ", ".join(stale))


def test_every_marker_names_a_known_block():
    from pipelines.cli import main

    for doc in DOCS:
        for name in figures.OPEN.findall(doc.read_text(encoding="utf-8")):
            command = name.removeprefix(figures.COMMAND_BLOCK)
            assert name in figures.BLOCKS or (command != name and command in main.commands), \
                f"{doc.name}: unknown block {name}"


def test_the_usage_page_has_one_help_block_per_command():
    """A new command gets its reference in docs/usage.md, a removed one loses it."""
    from pipelines.cli import main

    names = [n for n in figures.OPEN.findall((ROOT / "docs" / "usage.md").read_text(encoding="utf-8"))
             if n.startswith(figures.COMMAND_BLOCK)]
    assert sorted(names) == sorted(figures.COMMAND_BLOCK + c for c in main.commands)


def test_check_reports_a_help_block_that_differs_from_the_help(monkeypatch):
    """A hand-edited default is stale; the text does not follow the writer's terminal width."""
    monkeypatch.setenv("COLUMNS", "200")
    text = (ROOT / "docs" / "usage.md").read_text(encoding="utf-8")
    start = text.index("<!-- figures: pipe-train-ae -->")
    altered = text[:start] + text[start:].replace("[default: 64;", "[default: 128;", 1)
    assert altered != text
    new, stale, _ = figures.rewrite(altered, ROOT)
    assert stale == ["pipe-train-ae"]
    assert new == text
    assert figures.render("pipe-export").startswith("```text\nUsage: pipe export [OPTIONS] PATH\n")


def test_check_reports_an_altered_block():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("<!-- figures: referee-budget -->")
    altered = text[:start] + text[start:].replace("| embedding-cosine |", "| embedding-cosine* |", 1)
    assert altered != text
    new, stale, _ = figures.rewrite(altered, ROOT)
    assert stale == ["referee-budget"]
    assert new == text  # rewriting restores the generated text


def test_check_and_rewrite_on_a_copy(tmp_path: Path):
    (tmp_path / "docs").mkdir()
    source = tmp_path / figures.STUDY
    source.parent.mkdir(parents=True)
    shutil.copy(ROOT / figures.STUDY, source)
    doc = tmp_path / "docs" / "page.md"
    doc.write_text("intro\n<!-- figures: study-optimizers -->\nold\n<!-- /figures -->\nend\n")
    assert figures.main(["--check", "--root", str(tmp_path)]) == 1
    assert "old" in doc.read_text()  # --check writes nothing
    assert figures.main(["--root", str(tmp_path)]) == 0
    assert "| opt-adam |" in doc.read_text() and "old" not in doc.read_text()
    assert doc.read_text().endswith("<!-- /figures -->\nend\n")
    assert figures.main(["--check", "--root", str(tmp_path)]) == 0
    assert [p.name for p in (tmp_path / "docs").iterdir()] == ["page.md"]  # no temporary left


def test_a_block_without_its_source_is_skipped_and_left_as_is(tmp_path: Path):
    text = "a\n<!-- figures: demo-table -->\n<!-- /figures -->\nb\n"
    new, stale, skipped = figures.rewrite(text, tmp_path)
    assert (new, stale, skipped) == (text, [], ["demo-table"])


def test_unclosed_or_unknown_blocks_are_errors(tmp_path: Path):
    with pytest.raises(figures.FiguresError):
        figures.rewrite("<!-- figures: study-table -->\nno end\n", ROOT)
    with pytest.raises(figures.FiguresError):
        figures.rewrite("<!-- figures: no-such-block -->\n<!-- /figures -->\n", ROOT)
    with pytest.raises(figures.FiguresError, match="unknown command 'no-such'"):
        figures.rewrite("<!-- figures: pipe-no-such -->\n<!-- /figures -->\n", ROOT)


def test_environment_variables_in_the_docs_name_real_options():
    """Every ``SEQAE_<COMMAND>_<OPTION>`` the docs spell out is a parameter of that command
    (click's auto_envvar_prefix; conftest imports the CLI anyway)."""
    import click

    from pipelines.cli import main

    commands = {name.upper().replace("-", "_"): cmd for name, cmd in main.commands.items()}
    wrong = []
    for doc in DOCS:
        for var in re.findall(r"SEQAE_([A-Z0-9_]+)", doc.read_text(encoding="utf-8")):
            command = next((c for c in sorted(commands, key=len, reverse=True)
                            if var.startswith(c + "_")), None)
            if command is None:  # benchmarks/gpu.sh's own variables (SEQAE_SECONDS ...)
                continue
            params = {p.name.upper() for p in commands[command].params
                      if isinstance(p, click.Option)}
            if var[len(command) + 1:] not in params:
                wrong.append(f"{doc.name}: SEQAE_{var}")
    assert not wrong, ", ".join(wrong)


def _compare_report() -> dict:
    """A report with the keys of pipelines.compare's report.json (what `pipe run` writes as
    RUN/compare/report.json; the committed demo report may not exist yet)."""
    model = {"kind": "embedding", "loss": "cosine", "vocab_size": 100, "parameters": 10,
             "token_accuracy": 0.163, "token_accuracy_in_cap": 0.219, "exact_sentence_rate": 0.021,
             "bleu4": 0.0101, "coverage": 0.909, "train_wall_s": 73.2,
             "train_sentences_per_s": 726.4, "epochs": 2, "mean_cosine": None}
    return {"run": "runs/default", "split": "test", "sentences": 659, "seed": 0,
            "baseline_cap": 2000, "skipped": [],
            "models": {"embedding-cosine": model,
                       "onehot-ce": {**model, "token_accuracy": 0.022, "kind": "onehot"}},
            "samples": [{"original": "the cat sat on the mat .", "embedding-cosine": "the cat cat .",
                         "onehot-ce": "<unk> <unk> . ."}]}


def test_demo_block_renders_compare_report():
    text = figures.demo_table(_compare_report())
    assert "| embedding-cosine | 16.3% | 21.9% | 2.1% | 0.010 | 90.9% | 73 | 726 | 2 |" in text
    assert "| onehot-ce | 2.2% |" in text
    assert "659 held-out sentences of the `test` split." in text
    assert "original:         the cat sat on ...\n" in text  # cut where the models stop
    assert "onehot-ce:        <unk> <unk> . .\n" in text


def test_demo_block_is_filled_once_its_source_exists(tmp_path: Path):
    source = tmp_path / figures.DEMO
    source.parent.mkdir(parents=True)
    source.write_text(json.dumps(_compare_report()))
    (tmp_path / "README.md").write_text("a\n<!-- figures: demo-table -->\n<!-- /figures -->\nb\n")
    assert figures.main(["--check", "--root", str(tmp_path)]) == 1
    assert figures.main(["--root", str(tmp_path)]) == 0
    assert "| onehot-ce | 2.2% |" in (tmp_path / "README.md").read_text()
    assert figures.main(["--check", "--root", str(tmp_path)]) == 0


def test_python_api_example_uses_real_names_and_arguments():
    """The README's Python example imports names the packages export and passes keyword
    arguments that the functions and config classes accept (read from the source, no import
    of Keras or gensim)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    code = re.search(r"## Python API.*?```python\n(.*?)```", text, re.S).group(1)
    tree = ast.parse(code)
    imported = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            package = __import__(node.module)
            for alias in node.names:
                assert alias.name in package.__all__, f"{node.module} has no {alias.name}"
                imported[alias.name] = _defining_module(node.module, alias.name)
    assert imported, "no imports in the README's Python example"
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id in imported:
            accepted = _parameters(imported[node.func.id], node.func.id)
            for keyword in node.keywords:
                assert keyword.arg in accepted, f"{node.func.id} takes no {keyword.arg}="


def _defining_module(package: str, name: str) -> Path:
    init = (ROOT / package / "__init__.py").read_text(encoding="utf-8")
    exports = ast.literal_eval(re.search(r"_EXPORTS = (\{.*?\n\})", init, re.S).group(1))
    module = next(m for m, names in exports.items() if name in names)
    return ROOT / (module.replace(".", "/") + ".py")


def _parameters(module: Path, name: str) -> set[str]:
    for node in ast.parse(module.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            args = node.args
            return {a.arg for a in args.posonlyargs + args.args + args.kwonlyargs}
        if isinstance(node, ast.ClassDef) and node.name == name:
            return {s.target.id for s in node.body
                    if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)
                    and "ClassVar" not in ast.unparse(s.annotation)}
    raise AssertionError(f"{name} not defined in {module}")


# -- every runnable example runs ------------------------------------------------------------------

RUNNABLE = re.compile(r"<!-- runnable -->\n```python\n(.*?)```", re.S)
# The sizes a runnable example is run at here (the reader's text stays as it is): keyword
# arguments of these names take these values, and gensim's Wikipedia excerpt is the tiny corpus.
TINY_SIZES = {"vector_size": "16", "min_count": "1", "epochs": "1", "max_time": "3",
              "budget": "64", "sweep": "32", "val_sentences": "20", "seq_len": "8",
              "latent": "8"}


def _runnable_examples() -> list:
    found = []
    for path in (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))):
        for i, match in enumerate(RUNNABLE.finditer(path.read_text(encoding="utf-8"))):
            found.append(pytest.param(match.group(1), id=f"{path.name}-{i + 1}"))
    return found


def shrink(code: str, corpus: Path) -> str:
    """``code`` at the tiny sizes of :data:`TINY_SIZES`, on ``corpus``."""
    code = re.sub(rf"\b({'|'.join(TINY_SIZES)})=[0-9.]+",
                  lambda m: f"{m.group(1)}={TINY_SIZES[m.group(1)]}", code)
    return code.replace('source="wiki"', f"source={str(corpus)!r}")


def test_the_readme_and_the_usage_page_have_runnable_examples():
    assert {p.id.split("-")[0] for p in _runnable_examples()} >= {"README.md", "usage.md"}


@pytest.mark.slow
@pytest.mark.parametrize("code", _runnable_examples())
def test_every_runnable_example_runs_as_written(code, trained_once, tmp_path, monkeypatch,
                                                capsys):
    """In a fresh folder holding a trained run at ``RUN`` (for the examples that read one)."""
    shutil.copytree(trained_once, tmp_path / "RUN")
    monkeypatch.chdir(tmp_path)
    exec(compile(shrink(code, trained_once.parent / "tiny_corpus"), "<example>", "exec"), {})
    assert capsys.readouterr().out.strip() or "print(" not in code
