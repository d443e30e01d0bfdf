"""Generated blocks in README.md and docs/*.md: figures rendered from committed result files,
and docs/usage.md's reference of the ``pipe`` commands rendered from their ``--help``.

``python -m benchmarks.figures`` rewrites every region between a marker pair

    <!-- figures: NAME -->
    ...
    <!-- /figures -->

with block NAME rendered from its source (a committed ``report.json``, or for a block
``pipe-COMMAND`` what ``pipe COMMAND --help`` prints);
``python -m benchmarks.figures --check`` rewrites nothing and exits 1, listing the stale
blocks, when any region differs from what its source renders. A block whose source file does
not exist yet is skipped and its region left as it is. The study's tables come from
:mod:`pipelines.study_report`, as in its report.md.

The command reference is a block kind of this writer rather than a writer of its own: the
markers, the check (and the test that runs it) and the atomic rewrite are the same for a table
of figures and for a command's help, so they stay in one place. Its source is the CLI as
imported (this checkout's, whatever ``--root``), which starts neither Keras backend.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STUDY = "benchmarks/results/converged-cpu/report.json"
# What `pipe run` writes as RUN/compare/report.json, committed as the demo's result.
DEMO = "benchmarks/results/demo/report.json"
# The referee study (docs/study.md "A comparison a referee would accept") and its vMF runs.
REFEREE = "benchmarks/results/referee-cpu/report.json"
VMF = "benchmarks/results/vmf-cpu/report.json"

# The `pipe` command reference: block ``pipe-COMMAND`` is ``pipe COMMAND --help`` at HELP_WIDTH
# columns (fixed, so that the text does not follow the terminal of whoever rewrites it).
COMMAND_BLOCK = "pipe-"
HELP_WIDTH = 80

OPEN = re.compile(r"<!-- figures: ([A-Za-z0-9_.-]+) -->")
CLOSE = "<!-- /figures -->"


class FiguresError(Exception):
    """A marker without its end, or a block name that no renderer knows."""


# --- formatting ------------------------------------------------------------------------------

def pct(value) -> str:
    return "-" if value is None else value if isinstance(value, str) else f"{value:.1%}"


def num(value, digits: int = 0) -> str:
    """A figure with thousands separators; ``-`` for None, text (``nan``) as it is."""
    return "-" if value is None else value if isinstance(value, str) else f"{value:,.{digits}f}"


def table(header: list[str], rows: list[list[str]], right: set[int] = frozenset()) -> str:
    align = ["---:" if i in right else "---" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def seconds(value: float) -> str:
    return f"{value:g} s"


# --- the converged study (an earlier pipe study's report.json: one seed, equal time) ---------

def converges(settings: dict) -> bool:
    """Whether a model of that report was trained on past the budget (reports from before side
    models stopped at the budget have no ``converge``: every model was)."""
    return settings.get("converge", True)


# That study's time settings under one name each: its budget in seconds is ``budget_s`` (as it
# first saved it; a later pipe study's ``budget`` is in sentence-passes), its cap ``max_time``.
_RENAMED = {"budget": "budget_s", "max_time_s": "max_time"}


def _final(entry: dict) -> dict:
    """The figures after training on (the study's ``converged`` phase), or at the equal time for
    a side model that is trained to it only; empty for a model that blew up before either."""
    return entry["converged"] or entry["budget"] or {}


def _optimizer(settings: dict) -> str:
    """``Adam(lr=0.001), global clipnorm 1`` and the like, from a model's settings."""
    if settings["optimizer"] == "sgd":
        extra = ""
        if settings.get("momentum"):
            extra += f", momentum={settings['momentum']:g}"
        if settings.get("nesterov"):
            extra += ", nesterov"
        label = f"SGD(lr={settings['lr']:g}{extra})"
    else:
        label = f"Adam(lr={settings['lr']:g})"
    if settings.get("clipnorm"):
        scope = "global clipnorm" if settings.get("clip_scope") == "global" else "clipnorm"
        label += f", {scope} {settings['clipnorm']:g}"
    return label


def _after(report: dict) -> str:
    """The second phase's column title: ``at convergence`` when some model stopped early, else
    ``at 300 s`` (the time cap that stopped them all)."""
    cap = report["config"].get("max_time")
    early = any(e["stopped"] == "early-stop" for e in report["models"].values())
    return f"at {seconds(cap)}" if cap and not early else "at convergence"


def _sentences(value, what: str) -> str:
    return f"all {what} sentences" if value is None else f"{value:,} {what} sentences"


def _stops(report: dict) -> str:
    why, side = {}, []
    for name, entry in report["models"].items():
        if converges(entry["settings"]):
            why.setdefault(entry["stopped"], []).append(name)
        else:
            side.append(name)
    cap = report["config"].get("max_time")
    if set(why) == {"time"} and cap:
        text = f"every model stopped at the {seconds(cap)} cap, none by early stopping"
    else:
        text = "stopped by " + "; ".join(f"{reason}: {', '.join(names)}"
                                         for reason, names in why.items())
    return text + (f"; {', '.join(side)} trained to the equal time only" if side else "")


def _nan(report: dict) -> str:
    blown = [n for n, e in report["models"].items()
             if e["non_finite"] or (e["budget"] or {}).get("nan_events")
             or _final(e).get("nan_events")]
    return ("no model had a non-finite step" if not blown
            else f"non-finite steps: {', '.join(blown)}")


def study_setup(report: dict) -> str:
    """The study's configuration, hardware and duration, as recorded."""
    config, corpus, hw = report["config"], report["corpus"], report["hardware"]
    devices = ", ".join(hw.get("devices") or [])
    return "\n".join([
        f"- Command: `{report['command']}`",
        f"- Hardware: {hw['processor']}, {hw['usable_cpus']} usable CPU cores, Keras backend "
        f"{hw['backend']} on {devices or 'the CPU'}; the whole study took "
        f"{report['study_wall_s'] / 60:.0f} min.",
        f"- Corpus: `{Path(corpus['source']).name}`, {corpus['vector_size']}-d word2vec "
        f"vectors (min-count {corpus['min_count']}, {corpus['epochs']} epochs); "
        + ("all training sentences" if config["max_sentences"] is None else
           f"a seeded subsample of {config['max_sentences']:,} training sentences")
        + f", {_sentences(config['val_sentences'], 'validation')} and "
        f"{_sentences(config['eval_sentences'], 'test')}.",
        f"- Models: seq-len {config['seq_len']}, latent {config['latent']}, batch "
        f"{config['batch_size']}.",
        f"- Time: {seconds(config['budget_s'])} of training per model for the equal-time "
        f"column; then trained on to early stopping (patience {config['patience']}), "
        f"{config['epochs']} epochs"
        + (f" or {seconds(config['max_time'])} of training in all (budget included)"
           if config.get("max_time") else "")
        + f"; {_stops(report)}; {_nan(report)}.",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items()) + ".",
    ])


def study_models(report: dict) -> str:
    """What each model of the study is."""
    lines = []
    for name, entry in report["models"].items():
        optimizer = "" if "(lr=" in entry["description"] else f"; {_optimizer(entry['settings'])}"
        lines.append(f"- `{name}`: {entry['description']}{optimizer}.")
    return "\n".join(lines)


def study_table(report: dict) -> str:
    """docs/study.md: every figure of the two phases that the write-up reads."""
    config = report["config"]
    budget, after = seconds(config["budget_s"]), _after(report)
    header = ["model", f"token acc at {budget}", after, "exact", "BLEU-4", "out-of-cap acc",
              "vocabulary", "sent/s", "epochs", "distinct outputs", "top output (share)"]
    rows = []
    for name, entry in report["models"].items():
        final = _final(entry)
        rows.append([
            name, pct((entry["budget"] or {}).get("token_accuracy")),
            pct(final["token_accuracy"]) if entry["converged"] else "-",
            pct(final.get("exact_sentence_rate")), num(final.get("bleu4"), 3),
            pct(final.get("token_accuracy_out_of_cap")), num(final.get("vocab_size")),
            num(final.get("train_sentences_per_s")), str(entry["epochs"]),
            num(final.get("distinct_outputs")),
            f"`{final['top_output']}` ({final['top_output_share']:.0%})" if final else "-",
        ])
    share = next((_final(e)["out_of_cap_share"] for e in report["models"].values() if _final(e)),
                 0.0)
    caps = [e["settings"]["vocab_cap"] for e in report["models"].values()
            if e["settings"]["kind"] == "onehot" and e["settings"]["vocab_cap"]]
    cap_words = f"the {caps[0] - 2:,} most frequent train words" if caps else "the cap"
    lead = ""
    models = report["models"]
    if "embedding-cosine" in models and "onehot-2000" in models:
        a, b = models["embedding-cosine"], models["onehot-2000"]
        lead = (" Lead of embedding-cosine over onehot-2000 in token accuracy: "
                f"{100 * (a['budget']['token_accuracy'] - b['budget']['token_accuracy']):+.1f} "
                f"points at {budget}, "
                f"{100 * (_final(a)['token_accuracy'] - _final(b)['token_accuracy']):+.1f} "
                f"{after}.")
    return "\n".join([
        table(header, rows, right=set(range(1, 10))), "",
        f"Every column but the first token accuracy is {after} (side models, `-` in it: at the "
        f"equal time). Out-of-cap accuracy is on the "
        f"{share:.0%} of test tokens outside {cap_words}, which a capped model cannot write. "
        "Vocabulary: words a model can write (its softmax outputs, PAD and UNK included, or the "
        "word2vec vocabulary it decodes to). Sent/s: training sentences per second. Top output: "
        f"the commonest word the model writes and its share of the positions.{lead}",
    ])


def study_optimizers(report: dict) -> str:
    """The optimizer question: embedding-cosine under each optimizer."""
    config = report["config"]
    names = ["embedding-cosine"] + [n for n, e in report["models"].items()
                                    if e["group"] == "optimizers"]
    models = report["models"]
    at = {n: models[n]["budget"] or {} for n in names if n in models}
    rows = [[n, _optimizer(models[n]["settings"]), pct(at[n].get("token_accuracy")),
             pct(at[n].get("exact_sentence_rate")), num(at[n].get("train_sentences_per_s")),
             str(at[n].get("epochs", "-"))]
            for n in at]
    return table(["model", "optimizer", f"token acc at {seconds(config['budget_s'])}", "exact",
                  "sent/s", "epochs"], rows, right={2, 3, 4, 5})


HISTORY_POINTS = 8  # columns of the validation-accuracy table: epochs spread over the run


def study_history(report: dict) -> str:
    """Validation token accuracy at a few epochs spread over each model's run, and at its
    best validation loss."""
    rows = []
    for name, entry in report["models"].items():
        history = [h for h in entry["history"] if h.get("val_token_accuracy") is not None]
        if not history:
            rows.append([name, "-", "-", "-"])
            continue
        picks = sorted({round(i * (len(history) - 1) / (HISTORY_POINTS - 1))
                        for i in range(HISTORY_POINTS)})
        best = min(history, key=lambda h: h["val_loss"])
        rows.append([name, ", ".join(f"{history[i]['epoch']}: {pct(history[i]['val_token_accuracy'])}"
                                     for i in picks),
                     f"{best['epoch']}: {pct(best['val_token_accuracy'])}", str(len(history))])
    return table(["model", "epoch: val token acc", "best val loss at", "epochs"], rows,
                 right={3})


def study_seed(report: dict) -> str:
    """The seed's model (classic-seed), epoch by epoch."""
    entry = report["models"].get("classic-seed")
    if entry is None:
        return "(the study has no classic-seed model)"
    batch = report["config"]["batch_size"]
    rows, steps = [], 0
    for h in entry["history"]:
        n = -(-h["sentences"] // batch)
        steps += n
        rows.append([str(h["epoch"]), str(n), num(h.get("train_loss"), 1),
                     num(h.get("val_loss"), 1), num(h.get("grad_norm")),
                     pct(h.get("val_token_accuracy")), num(h.get("sentences_per_s")),
                     h["status"]])
    final = _final(entry)
    events = "no non-finite step" if not entry["non_finite"] else "a non-finite step"
    return "\n".join([
        table(["epoch", "steps", "train loss", "val loss", "gradient norm", "val acc", "sent/s",
               "status"], rows, right=set(range(0, 7))), "",
        f"{events.capitalize()} in {steps} steps. The gradient norm is the global norm before "
        + (f"clipping. It writes {num(final['distinct_outputs'])} distinct word(s); its "
           f"commonest output, `{final['top_output']}`, fills {final['top_output_share']:.0%} of "
           "the positions." if final else "clipping. No checkpoint of it was scored."),
    ])


# --- the referee study (pipe study's report.json: seeds, sentence-passes) ---------------------
# Rendered by the study report's own tables, so that README and report.md cannot disagree.

def referee_sweep(report: dict) -> str:
    from pipelines.study_report import sweep_table

    return "\n".join(sweep_table(report["models"], report["config"]))


def referee_budget(report: dict) -> str:
    from pipelines.study_report import gaps_table, summary_table

    config = report["config"]
    lines = summary_table(report["models"], report["summary"], report["runs"], "budget")
    lines += ["", f"{config['budget']:,} sentence-passes per model, no early stopping; seeds "
              f"{', '.join(map(str, config['seeds']))}; {report['train_sentences']:,} training "
              f"sentences of 20 Newsgroups; {config['eval_sentences']:,} held-out test sentences, "
              "the same for every run. Gaps in token accuracy, paired by seed:", "",
              *gaps_table(report["differences"]["budget"])]
    return "\n".join(lines)


def referee_converged(report: dict) -> str:
    from pipelines.study_report import gaps_table, summary_table

    config = report["config"]
    lines = summary_table(report["models"], report["summary"], report["runs"], "converged")
    lines += ["", f"On from the budget until {config['patience']:,} sentence-passes without a "
              f"better validation token accuracy, never before {config['min_passes']:,} in all"
              + (f", at most {config['max_passes']:,}" if config.get("max_passes") else "")
              + ". Gaps in token accuracy, paired by seed:", "",
              *gaps_table(report["differences"]["converged"])]
    return "\n".join(lines)


def referee_vmf(report: dict) -> str:
    from pipelines.study_report import vmf_table

    config = report["config"]
    return "\n".join(vmf_table(report["models"], report["runs"])[2:] + [
        "", f"{report['corpus']['vector_size']}-d word2vec vectors; {config['budget']:,} "
        f"sentence-passes each, seed {config['seeds'][0]}."])


# --- the demo (pipe run's RUN/compare/report.json) -------------------------------------------

DEMO_COLUMNS = (
    ("token acc", "token_accuracy", pct), ("in-cap acc", "token_accuracy_in_cap", pct),
    ("exact", "exact_sentence_rate", pct), ("BLEU-4", "bleu4", lambda v: f"{v:.3f}"),
    ("coverage", "coverage", pct), ("train s", "train_wall_s", num),
    ("sent/s", "train_sentences_per_s", num), ("epochs", "epochs", str),
)


def demo_table(report: dict) -> str:
    """`pipe run`'s comparison, as compare's report.json has it."""
    rows = [[name] + ["-" if figures.get(key) is None else fmt(figures[key])
                      for _, key, fmt in DEMO_COLUMNS]
            for name, figures in report["models"].items()]
    parts = [table(["model"] + [title for title, _, _ in DEMO_COLUMNS], rows,
                   right=set(range(1, len(DEMO_COLUMNS) + 1))), "",
             f"{report['sentences']:,} held-out sentences of the `{report['split']}` split."]
    if report.get("skipped"):
        parts[-1] += f" Skipped (no finished epoch): {', '.join(report['skipped'])}."
    if report.get("samples"):
        sample = report["samples"][0]
        names = [name for name in report["models"] if name in sample]
        # A model reads the first seq-len tokens: show as much of the original as they decode.
        shown = max((len(sample[name].split()) for name in names), default=0)
        original = sample["original"].split()
        text = " ".join(original[:shown]) + (" ..." if len(original) > shown else "")
        width = max(len(name) for name in ["original", *names]) + 1
        lines = [f"{'original:':<{width}} {text}"]
        lines += [f"{name + ':':<{width}} {sample[name]}" for name in names]
        parts += ["", "A held-out sentence and its reconstructions:", "", "```text", *lines, "```"]
    return "\n".join(parts)


BLOCKS: dict[str, tuple[str, Callable[[dict], str]]] = {
    "study-setup": (STUDY, study_setup),
    "study-models": (STUDY, study_models),
    "study-table": (STUDY, study_table),
    "study-optimizers": (STUDY, study_optimizers),
    "study-history": (STUDY, study_history),
    "study-seed": (STUDY, study_seed),
    "demo-table": (DEMO, demo_table),
    "referee-sweep": (REFEREE, referee_sweep),
    "referee-budget": (REFEREE, referee_budget),
    "referee-converged": (REFEREE, referee_converged),
    "referee-vmf": (VMF, referee_vmf),
}


# --- the command reference (docs/usage.md) ---------------------------------------------------

def command_help(command: str) -> str:
    """What ``pipe COMMAND --help`` prints at :data:`HELP_WIDTH` columns, in a fenced block:
    click's own formatting through the real entry point (the group's context settings, such as
    ``-h``, included). Fast: ``--help`` imports neither Keras backend."""
    from click.testing import CliRunner

    from pipelines.cli import main

    if command not in main.commands:
        raise FiguresError(f"unknown command {command!r} in block {COMMAND_BLOCK}{command} "
                           f"(commands: {', '.join(main.commands)})")
    result = CliRunner().invoke(main, [command, "--help"], prog_name="pipe",
                                terminal_width=HELP_WIDTH)
    if result.exit_code != 0:
        raise FiguresError(f"pipe {command} --help failed: {result.output.strip()}")
    return f"```text\n{result.stdout}```"


# --- rewriting -------------------------------------------------------------------------------

def documents(root: Path = ROOT) -> list[Path]:
    """README.md and docs/*.md."""
    found = [root / "README.md"] if (root / "README.md").exists() else []
    return found + sorted((root / "docs").glob("*.md"))


def render(name: str, root: Path = ROOT, _cache: dict | None = None) -> str | None:
    """Block ``name`` rendered from its source, or None when the source does not exist yet."""
    if name.startswith(COMMAND_BLOCK):
        return command_help(name.removeprefix(COMMAND_BLOCK))
    if name not in BLOCKS:
        raise FiguresError(f"unknown block {name!r} (known: {', '.join(BLOCKS)}, "
                           f"{COMMAND_BLOCK}COMMAND)")
    source, renderer = BLOCKS[name]
    cache = {} if _cache is None else _cache
    if source not in cache:
        path = root / source
        cache[source] = json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
        if source == STUDY and cache[source] is not None:  # saved before the time settings' renaming
            cache[source]["config"] = {_RENAMED.get(key, key): value
                                       for key, value in cache[source]["config"].items()}
    data = cache[source]
    return None if data is None else renderer(data).strip("\n")


def rewrite(text: str, root: Path = ROOT, _cache: dict | None = None
            ) -> tuple[str, list[str], list[str]]:
    """``text`` with every marked region rendered; also the names of the regions that changed
    (stale) and of those whose source does not exist (skipped, left as they are)."""
    cache = {} if _cache is None else _cache
    out, stale, skipped, position = [], [], [], 0
    for match in OPEN.finditer(text):
        if match.start() < position:
            raise FiguresError(f"block {match.group(1)!r} opens inside another block")
        end = text.find(CLOSE, match.end())
        if end < 0:
            raise FiguresError(f"block {match.group(1)!r} has no {CLOSE}")
        following = OPEN.search(text, match.end(), end)
        if following:
            raise FiguresError(f"block {match.group(1)!r} has no {CLOSE} before "
                               f"block {following.group(1)!r}")
        name, current = match.group(1), text[match.end():end]
        body = render(name, root, cache)
        if body is None:
            skipped.append(name)
            new = current
        else:
            new = "\n\n" + body + "\n\n"
            if new != current:
                stale.append(name)
        out += [text[position:match.end()], new, CLOSE]
        position = end + len(CLOSE)
    out.append(text[position:])
    return "".join(out), stale, skipped


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` through a temporary file in the same folder."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def run(root: Path = ROOT, check: bool = False) -> tuple[list[str], list[str]]:
    """Render every document under ``root``; write the changed ones unless ``check``.
    Returns ``path: block`` for the stale blocks and for the skipped ones."""
    cache: dict = {}
    stale, skipped, writes = [], [], []
    for path in documents(root):  # every document is rendered before any is written
        text = path.read_text(encoding="utf-8")
        try:
            new, changed, missing = rewrite(text, root, cache)
        except FiguresError as exc:
            raise FiguresError(f"{path.relative_to(root)}: {exc}") from None
        stale += [f"{path.relative_to(root)}: {name}" for name in changed]
        skipped += [f"{path.relative_to(root)}: {name} ({BLOCKS[name][0]} does not exist)"
                    for name in missing]
        if changed:
            writes.append((path, new))
    if not check:
        for path, new in writes:
            write_atomic(path, new)
    return stale, skipped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.figures", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true",
                        help="rewrite nothing; exit 1 listing the stale blocks")
    parser.add_argument("--root", type=Path, default=ROOT,
                        help="repository root (default: this checkout)")
    args = parser.parse_args(argv)
    try:
        stale, skipped = run(args.root, check=args.check)
    except FiguresError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for line in skipped:
        print(f"skipped: {line}", file=sys.stderr)
    if args.check:
        for line in stale:
            print(f"stale: {line}")
        if stale:
            print("run `python -m benchmarks.figures` to regenerate them", file=sys.stderr)
        return 1 if stale else 0
    for line in stale:
        print(f"rewrote: {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
