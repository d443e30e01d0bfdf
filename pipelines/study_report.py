"""The study's ``report.md``: the sweep, the tables over seeds with their intervals and the
gaps that hold, the seed model's fate, the optimizer answer, the vMF runs and a reading of the
curves in plain words, all from the figures of ``report.json``."""

from __future__ import annotations

from autoencoder.training.checkpoints import training_time
from pipelines import curve
from pipelines.study_config import SCORED, StudyConfig

# The columns of the tables over seeds: (title, figure of compare, format of one value).
_FIGURES = (("token acc", "token_accuracy", "{:.1%}"), ("exact", "exact_sentence_rate", "{:.1%}"),
            ("BLEU", "bleu4", "{:.3f}"))


def markdown(report: dict) -> str:
    config, models, runs = report["config"], report["models"], report["runs"]
    hw, summary = report["hardware"], report["summary"]
    parts = [
        f"# seqae study: {report['run']}", "",
        f"`{report['command'] or 'run_study(...)'}`", "",
        f"Hardware: {hw['processor'] or hw['machine']}, {hw['usable_cpus']} usable CPU cores, "
        f"Keras backend {hw['backend']} on {', '.join(hw['devices'])}; the study took "
        f"{report['study_wall_s'] / 60:.0f} min of training and scoring. Versions: "
        + ", ".join(f"{k} {v}" for k, v in report["versions"].items()) + ".", "",
        f"Architecture: seq-len {config['seq_len']}, latent {config['latent']}, batch "
        f"{config['batch_size']}; {report['train_sentences']:,} training sentences an epoch; "
        f"word vectors and corpus as recorded in `config.json` (embed: "
        f"{_corpus_line(report.get('corpus'))}). Every run is scored on the same held-out test "
        "sentences against the original words (a word outside a model's vocabulary, or an UNK "
        "output, counts as wrong).", "",
        "## The rules", "",
        f"- The axis is sentence-passes (optimizer steps x {config['batch_size']} sentences), "
        f"equal for every model: each trains {config['budget']:,} of them with no early "
        "stopping, and is scored (the equal budget). Wall time is reported beside it: "
        "sentences/s over the epochs that compiled nothing (each phase's first epoch compiles "
        "its steps again), the compiling epochs' extra time apart.",
        f"- Seeds {', '.join(map(str, config['seeds']))}: each seed draws the training "
        "subsample and order and initialises the weights; tables give the mean over seeds and "
        "its 95% t interval, gaps are paired by seed.",
        "- Checkpoints (best.keras, what is scored) are chosen by validation token accuracy.",
        _sweep_rule(config),
        _converge_rule(config, report["train_sentences"]), "",
    ]
    if any(e["sweep"] for e in models.values()):
        parts += ["## The learning-rate sweep", "", *sweep_table(models, config), ""]
    for phase in SCORED if config["converge"] else SCORED[:1]:
        # Convergence, or the --max-passes cap first: the column `stopped` says which.
        title = ("At the equal budget" if phase == "budget" else "After training on")
        shown = {n: e for n, e in models.items()
                 if any((runs.get(r) or {}).get(phase) for r in e["runs"])}
        parts += [f"## {title}", "", *summary_table(shown, summary, runs, phase), ""]
        gaps = report["differences"].get(phase) or []
        if gaps:
            parts += [f"Gaps in token accuracy between the main models, {title.lower()} "
                      "(row minus column model, paired by seed):", "", *gaps_table(gaps), ""]
    if "classic-seed" in models and models["classic-seed"]["runs"]:
        seed_run = runs.get(models["classic-seed"]["runs"][0])
        if seed_run:
            parts += ["## The seed's model", "",
                      *_seed_section(models["classic-seed"], seed_run, config["batch_size"]), ""]
    optimizers = {n: e for n, e in models.items()
                  if e["group"] == "optimizers" or n == "embedding-cosine"}
    if len(optimizers) > 1:
        parts += ["## Which optimizer", "", *_optimizer_section(optimizers, summary), "",
                  "![optimizers](optimizers.png)", ""]
    vmf = {n: e for n, e in models.items() if e["group"] == "vmf" or n == "embedding-cosine"}
    if any(e["group"] == "vmf" for e in vmf.values()):
        parts += ["## The von Mises-Fisher loss", "", *vmf_table(vmf, runs), ""]
    parts += ["## Reading the curves", "", *_curves_section(models, runs), "",
              "![loss, codes zeroed and swapped, and the share the code explains, on each step "
              "trace (first seed)](trace.png)", "",
              "![accuracy and loss against sentence-passes (first seed)](curves.png)", ""]
    parts += ["## Samples (first seed, after training on where it did)", "",
              *_samples(models, runs), ""]
    return "\n".join(parts)


def _sweep_rule(config: dict) -> str:
    if len(config["lrs"]) < 2:
        return f"- Learning rate: {config['lrs'][0]:g} for the main Adam models (no sweep)."
    return (f"- Learning rate: the main Adam models each tried {', '.join(f'{lr:g}' for lr in config['lrs'])} "
            f"for {config['sweep']:,} sentence-passes on seed {config['seeds'][0]}; the rate with "
            "the best validation token accuracy is the one every seed trains with (the chosen "
            "rate's run goes on to the budget). Side models keep the settings they stand for.")


def _converge_rule(config: dict, epoch: int) -> str:
    if not config["converge"]:
        return "- No convergence phase: every figure is at the equal budget."
    epochs = StudyConfig(**config).patience_epochs(epoch)
    return (f"- Convergence: on from the budget checkpoint until {config['patience']:,} "
            f"sentence-passes ({epochs} epoch(s)) without a better validation token accuracy, "
            f"never before {config['min_passes']:,} in all"
            + (f", at most {config['max_passes']:,}" if config.get("max_passes") else "")
            + (f" or {config['max_time']:g} s of training" if config.get("max_time") else "")
            + "; the main models only.")


def sweep_table(models: dict, config: dict) -> list[str]:
    lrs = [f"{lr:g}" for lr in config["lrs"]]
    lines = ["Validation token accuracy after the sweep's sentence-passes:", "",
             "| model | " + " | ".join(f"lr {lr}" for lr in lrs) + " | chosen |",
             "|---|" + "---:|" * len(lrs) + "---|"]
    for name, entry in models.items():
        sweep = entry["sweep"]
        if not sweep:
            continue
        cells = [_fmt((sweep.get("val_token_accuracy") or {}).get(lr), "{:.1%}") for lr in lrs]
        chosen = sweep.get("chosen")
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {_fmt(chosen, '{:g}')} |")
    return lines


def _fmt(value, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def _spread(stat: dict | None, fmt: str) -> str:
    """A mean with its 95% interval: ``48.5% [46.1, 50.9]``; one value alone."""
    if stat is None:
        return "-"
    if stat["low"] is None:
        return fmt.format(stat["mean"])
    scale = 100 if fmt.endswith("%}") else 1
    if scale == 1:
        return f"{fmt.format(stat['mean'])} [{fmt.format(stat['low'])}, {fmt.format(stat['high'])}]"
    return f"{fmt.format(stat['mean'])} [{stat['low'] * 100:.1f}, {stat['high'] * 100:.1f}]"


def summary_table(models: dict, summary: dict, runs: dict, phase: str) -> list[str]:
    converged = phase == "converged"
    titles = [t for t, _, _ in _FIGURES] + ["lr", "seeds", "sent/s", "compile s"] + (
        ["stopped"] if converged else [])
    lines = ["| model | " + " | ".join(titles) + " |", "|---|" + "---:|" * len(titles)]
    for name, entry in models.items():
        stats = summary[name]
        cells = [_spread(stats[phase][key], fmt) for _, key, fmt in _FIGURES]
        stopped = sorted({str((runs.get(r) or {}).get("stopped") or "-") for r in entry["runs"]
                          if r in runs})
        cells += [_fmt(entry["settings"]["lr"], "{:g}"),
                  str(stats["seeds"]), _spread(stats["sentences_per_s"], "{:.0f}"),
                  _spread(stats["compile_s"], "{:.0f}")] + ([", ".join(stopped)] if converged else [])
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Each cell: the mean over seeds [95% interval]; sent/s: training sentences a "
              "second over the epochs that compiled nothing; compile s: a compiling epoch's time "
              "beyond that speed (each phase compiles its steps again, one per batch width)."]
    return lines


def gaps_table(gaps: list[dict]) -> list[str]:
    """The paired gaps; each is its own test (no correction for the several made: with the
    Bonferroni-Holm rule fewer would hold)."""
    lines = ["| models | difference | 95% interval | p (paired t) | holds |",
             "|---|---:|---|---:|---|"]
    for g in gaps:
        lines.append(f"| {g['a']} - {g['b']} | {g['mean'] * 100:+.1f} pts | "
                     f"[{g['low'] * 100:+.1f}, {g['high'] * 100:+.1f}] | {_fmt(g['p'], '{:.3f}')} "
                     f"| {'yes' if g['significant'] else 'no: the interval holds 0'} |")
    return lines


def _corpus_line(embed: dict | None) -> str:
    if not embed:
        return "not recorded"
    keys = ("source", "max_docs", "vector_size", "min_count", "epochs")
    return ", ".join(f"{k} {embed[k]}" for k in keys if k in embed)


def _seed_section(model: dict, entry: dict, batch_size: int) -> list[str]:
    """The seed's model (``model``, its report entry) on its first run (``entry``)."""
    lines = [f"{model['description'][0].upper()}{model['description'][1:]}.", ""]
    event = entry["non_finite"]
    if event:
        before = event.get("before") or []
        lines.append(
            f"**It blew up at epoch {event['epoch']}, step {event['step']}**: loss "
            f"{_number(event['loss'])}, gradient norm {_number(event['grad_norm'])}. The "
            "trainer's NaN guard restored the epoch's starting weights and stopped it; the study "
            "went on.")
        if before:
            lines += ["", "The steps before it (loss, global gradient norm before clipping):", "",
                      "| step | loss | gradient norm |", "|---|---|---|"]
            lines += [f"| {b['step']} | {_number(b['loss'])} | {_number(b['grad_norm'])} |"
                      for b in before[-8:]]
    else:
        points = training_time(entry["history"])
        steps = sum(-(-r["sentences"] // batch_size) for _, r in points)
        accuracies = ", ".join(f"{r['val_token_accuracy']:.1%}" for _, r in points
                               if r.get("val_token_accuracy") is not None)
        lines.append(f"It produced no non-finite step in {steps} steps ({entry['epochs'] or 0} "
                     "epochs; each gradient is clipped to norm 1, which keeps a huge but finite "
                     f"gradient finite). Validation token accuracy at each epoch: "
                     f"{accuracies or 'none'}.")
    figures = entry.get("converged") or entry["budget"]
    if figures:
        lines += ["", f"Scored at its best checkpoint: {figures['token_accuracy']:.1%} token "
                      f"accuracy. It writes {figures['distinct_outputs']:,} distinct word(s) over "
                      f"{figures['tokens']:,} test tokens; its commonest output, "
                      f"`{figures['top_output']}`, fills {figures['top_output_share']:.0%} of "
                      "the positions.", "", "What it writes:", ""]
        lines += [f"- {s['original']}\n  - *{s['reconstruction']}*"
                  for s in figures["samples"][:3]]
    lines += [
        "", "Why: Keras's `categorical_crossentropy` expects probabilities. Given the 2,000 tanh "
        "outputs of `LSTM(VOCAB)` at a position, it divides them by their sum and clips the "
        "quotient to [1e-7, 1 - 1e-7] before the log. Tanh outputs lie in [-1, 1], so the sum "
        "can be negative or close to zero: where it is near zero the quotient and its gradient "
        "(which grows as 1 / sum^2) explode, and at zero they are infinite, which is the NaN. "
        "Where the sum is negative, or the target's output negative, the quotient is clipped and "
        "its gradient is zero, so those positions stop learning. A softmax output (the onehot "
        "models) or a vector output with a cosine or MSE loss (the embedding models) has "
        "neither problem."]
    return lines


def _number(value) -> str:
    """A recorded loss or norm: a float, or ``nan``/``inf`` kept as text."""
    return value if isinstance(value, str) else f"{value:.4g}"


def _optimizer_section(models: dict, summary: dict) -> list[str]:
    lines = ["The question's three optimizers on embedding-cosine, batch 64, same data and "
             "sentence-passes; `embedding-cosine` is seqae's default (Adam, global clipnorm "
             "1.0, its rate from the sweep).", "",
             "| model | optimizer | token acc at the equal budget |", "|---|---|---|"]
    for name, entry in models.items():
        lines.append(f"| {name} | {_optimizer(entry['settings'])} | "
                     f"{_spread(summary[name]['budget']['token_accuracy'], '{:.1%}')} |")
    scored = {n: (summary[n]["budget"]["token_accuracy"] or {}).get("mean") for n in models}
    scored = {n: a for n, a in scored.items() if a is not None}
    if scored:
        best, worst = max(scored, key=scored.get), min(scored, key=scored.get)
        lines += ["", f"Best at the equal budget: **{best}** "
                      f"({_optimizer(models[best]['settings'])}), {scored[best]:.1%} against "
                      f"{scored[worst]:.1%} for {worst} (means over seeds; see the intervals)."]
    return lines


def vmf_table(models: dict, runs: dict) -> list[str]:
    lines = ["The vMF NLL as Kumar & Tsvetkov ran it (reg. 2 at 0.1, a sweep of reg. 1), beside "
             "embedding-cosine, on the first seed at the equal budget. The output norm is the "
             "vMF's concentration; hubness is the skew of how often each word is the nearest "
             "neighbour (0: even; large: a few hub words take the outputs).", "",
             "| model | token acc | mean output norm | hubness (skew) | commonest output, share |",
             "|---|---:|---:|---:|---|"]
    for name, entry in models.items():
        run = runs.get(entry["runs"][0]) if entry["runs"] else None
        figures = (run or {}).get("budget")
        if not figures:
            continue
        lines.append(f"| {name} | {_fmt(figures.get('token_accuracy'), '{:.1%}')} | "
                     f"{_fmt(figures.get('mean_output_norm'), '{:.3g}')} | "
                     f"{_fmt(figures.get('hubness_skew'), '{:.1f}')} | "
                     f"`{figures.get('top_output')}`, {_fmt(figures.get('top_output_share'), '{:.0%}')} |")
    return lines


def _optimizer(settings: dict) -> str:
    if settings["optimizer"] == "adam":
        text = f"Adam(lr={settings['lr']:g})"
    else:
        text = f"SGD(lr={settings['lr']:g}" + (
            f", momentum={settings['momentum']:g}" if settings["momentum"] else "") + (
            ", nesterov" if settings["nesterov"] else "") + ")"
    if settings["clipnorm"]:
        scope = "global_clipnorm" if settings["clip_scope"] == "global" else "clipnorm"
        text += f", {scope} {settings['clipnorm']:g}"
    return text


def _curves_section(models: dict, runs: dict) -> list[str]:
    lines = []
    for name, entry in models.items():
        run = runs.get(entry["runs"][0]) if entry["runs"] else None
        points = training_time(run["history"]) if run else []
        if not points:
            lines.append(f"- **{name}**: no finished epoch.")
            continue
        lines += run["curve"]
    lines += [
        "", "What a plateau then a sharp drop means here: an autoencoder's decoder first learns "
        "what it can say without the code, the words that are frequent at each position (a "
        "softmax model predicts the unigram distribution; a vector model the mean direction of "
        "the words), and the loss rests there while the code still carries little of the "
        "sentence. When the encoder's code starts to carry the words, and the decoder to read "
        "them out, the loss falls quickly and token accuracy jumps with it. What it is not: "
        "overfitting (training and validation loss fall together), a learning rate to lower (the "
        "loss did not diverge), or convergence: stopping on the plateau (a small early-stopping "
        "patience, a short budget) reports a model that had not yet learned to use its code. "
        "Read on each model's step trace (steps.csv, trace.png; the first seed) by the rule of "
        "pipelines/curve.py, on the validation loss of the rows that --eval-every measured "
        "(the training loss where there are few): a plateau is a stretch of at least "
        f"{curve.PLATEAU_SHARE:.0%} of the rows that falls no more than "
        f"{curve.PLATEAU_BAND:.0%} below its start, a sharp drop a fall of "
        f"{curve.SHARP_FALL:.0%} below its level in no more rows than the plateau lasted; the "
        "code explains (swapped - own) / swapped of the loss at the validation rows around "
        "them, with a bootstrap interval over the measured sentences."]
    return lines


def _samples(models: dict, runs: dict) -> list[str]:
    def figures(entry):
        run = runs.get(entry["runs"][0]) if entry["runs"] else None
        return run and (run.get("converged") or run.get("budget"))

    first = next((figures(e) for e in models.values() if figures(e)), None)
    if first is None:
        return ["No model has a checkpoint to show."]
    lines = []
    for i, sample in enumerate(first["samples"]):
        lines.append(f"- **original**: {sample['original']}")
        for name, entry in models.items():
            mine = figures(entry)
            if mine and i < len(mine["samples"]):
                lines.append(f"  - *{name}*: {mine['samples'][i]['reconstruction']}")
    return lines
