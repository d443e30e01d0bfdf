"""The study's ``report.md``: its tables, the seed model's fate, the optimizer answer and a
reading of the curves in plain words, all from the figures of ``report.json``."""

from __future__ import annotations

from autoencoder.training.checkpoints import training_time
from pipelines import curve
from pipelines.study_config import StudyConfig, converges

# A plateau: epochs whose validation loss falls by less than this share of its value...
PLATEAU_FALL = 0.02
# ... at least this many in a row; then a sharp drop: one epoch falling by at least this share.
PLATEAU_EPOCHS = 2
SHARP_FALL = 0.05

_COLUMNS = (("token acc", "token_accuracy", "{:.1%}"), ("exact", "exact_sentence_rate", "{:.1%}"),
            ("BLEU-4", "bleu4", "{:.3f}"), ("in-cap acc", "token_accuracy_in_cap", "{:.1%}"),
            ("out-cap acc", "token_accuracy_out_of_cap", "{:.1%}"),
            ("epochs", "epochs", "{}"), ("train s", "train_wall_s", "{:.0f}"),
            ("sent/s", "train_sentences_per_s", "{:.0f}"))


def markdown(report: dict) -> str:
    config, models = StudyConfig.upgrade(report["config"]), report["models"]
    hw = report["hardware"]
    converging = {n: e for n, e in models.items() if converges(e["settings"])}
    parts = [
        f"# seqae study: {report['run']}", "",
        f"`{report['command'] or 'run_study(...)'}`", "",
        f"Hardware: {hw['processor'] or hw['machine']}, {hw['usable_cpus']} usable CPU cores, "
        f"Keras backend {hw['backend']} on {', '.join(hw['devices'])}; the study took "
        f"{report['study_wall_s'] / 60:.0f} min of training and scoring. Versions: "
        + ", ".join(f"{k} {v}" for k, v in report["versions"].items()) + ".", "",
        f"Architecture: seq-len {config['seq_len']}, latent {config['latent']}, batch "
        f"{config['batch_size']}; word vectors and corpus as recorded in `config.json` "
        f"(embed: {_corpus_line(report.get('corpus'))}). Every model is scored on the same "
        f"held-out test sentences against the original words (a word outside a model's "
        f"vocabulary, or an UNK output, counts as wrong).", "",
        f"## At an equal training time ({config['budget']:g} s each)", "",
        *_table(models, "budget"), "",
        "## At convergence", "",
        f"Trained on from the budget checkpoint until {config['patience']} epochs without a lower "
        f"validation loss, {config['epochs']} epochs"
        + (f" or {config['max_time']:g} s of training" if config["max_time"] else "")
        + " (column `stopped`); scored at the best validation epoch."
        + (" The side models (the seed's model, the optimizer variants) are trained to the equal "
           "time only." if len(converging) < len(models) else ""), "",
        *_table(converging, "converged", stopped=True), "",
    ]
    if "classic-seed" in models:
        parts += ["## The seed's model", "",
                  *_seed_section(models["classic-seed"], config["batch_size"]), ""]
    optimizers = {n: e for n, e in models.items()
                  if e["group"] == "optimizers" or n == "embedding-cosine"}
    if len(optimizers) > 1:
        parts += ["## Which optimizer", "", *_optimizer_section(optimizers), "",
                  "![optimizers](optimizers.png)", ""]
    parts += ["## Reading the curves", "", *_curves_section(models), "",
              "![loss, code-free floor and the share the code explains, on each step trace]"
              "(trace.png)", "",
              "![accuracy and loss against training time](curves.png)", ""]
    parts += ["## Samples (at convergence; side models at the equal time)", "",
              *_samples(models), ""]
    return "\n".join(parts)


def _corpus_line(embed: dict | None) -> str:
    if not embed:
        return "not recorded"
    keys = ("source", "max_docs", "vector_size", "min_count", "epochs")
    return ", ".join(f"{k} {embed[k]}" for k in keys if k in embed)


def _cell(figures: dict | None, key: str, fmt: str) -> str:
    value = None if figures is None else figures.get(key)
    return "-" if value is None else fmt.format(value)


def _table(models: dict, phase: str, stopped: bool = False) -> list[str]:
    titles = [t for t, _, _ in _COLUMNS] + (["stopped"] if stopped else [])
    lines = ["| model | " + " | ".join(titles) + " |", "|" + "---|" * (len(titles) + 1)]
    for name, entry in models.items():
        figures = entry[phase]
        cells = [_cell(figures, key, fmt) for _, key, fmt in _COLUMNS]
        if stopped:
            cells.append(str(entry["stopped"] or "-"))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def _seed_section(entry: dict, batch_size: int) -> list[str]:
    lines = [f"{entry['description'][0].upper()}{entry['description'][1:]}.", ""]
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
    figures = entry["converged"] or entry["budget"]
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


def _optimizer_section(models: dict) -> list[str]:
    lines = ["The question's three optimizers on embedding-cosine, batch 64, same data and "
             "training time; `embedding-cosine` is seqae's default (Adam 0.001, global clipnorm "
             "1.0).", "", "| model | optimizer | token acc at the equal time | epochs in it |",
             "|---|---|---|---|"]
    for name, entry in models.items():
        lines.append(f"| {name} | {_optimizer(entry['settings'])} | "
                     f"{_cell(entry['budget'], 'token_accuracy', '{:.1%}')} | "
                     f"{_cell(entry['budget'], 'epochs', '{}')} |")
    # Compared at the equal time: the optimizer variants are not trained on past it.
    scored = {n: (e["budget"] or {}).get("token_accuracy") for n, e in models.items()}
    scored = {n: a for n, a in scored.items() if a is not None}
    if scored:
        best = max(scored, key=scored.get)
        worst = min(scored, key=scored.get)
        lines += ["", f"Answer: **{best}** ({_optimizer(models[best]['settings'])}) "
                      f"reconstructs best at an equal training time, {scored[best]:.1%} against "
                      f"{scored[worst]:.1%} for {worst}."]
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


def plateau_then_drop(history: list[dict]) -> dict | None:
    """The first plateau followed by a sharp drop in a validation-loss curve, if any:
    ``{"from_s", "to_s", "epochs", "fall", "accuracy_before", "accuracy_after"}`` (times in
    seconds of training, ``fall`` the drop's share of the loss)."""
    points = [(t, r) for t, r in training_time(history) if r.get("val_loss")]
    flat = 0
    for i in range(1, len(points)):
        previous, current = points[i - 1][1], points[i][1]
        # |loss|: a vMF NLL can be negative; its fall is still a share of its size.
        fall = (previous["val_loss"] - current["val_loss"]) / abs(previous["val_loss"])
        if fall >= SHARP_FALL and flat >= PLATEAU_EPOCHS:
            return {"from_s": points[i - 1 - flat][0], "to_s": points[i - 1][0], "epochs": flat,
                    "fall": fall, "accuracy_before": previous["val_token_accuracy"],
                    "accuracy_after": current["val_token_accuracy"]}
        flat = flat + 1 if fall < PLATEAU_FALL else 0
    return None


def _curves_section(models: dict) -> list[str]:
    lines = []
    for name, entry in models.items():
        points = training_time(entry["history"])
        if not points:
            lines.append(f"- **{name}**: no finished epoch.")
            continue
        if entry.get("curve"):  # read on the step trace (reports before it read epochs only)
            lines += entry["curve"]
            continue
        found = plateau_then_drop(entry["history"])
        if found:
            lines.append(
                f"- **{name}**: validation loss on a plateau for {found['epochs']} epochs "
                f"({found['from_s']:.0f}-{found['to_s']:.0f} s), then down {found['fall']:.0%} "
                f"in one epoch; token accuracy {found['accuracy_before']:.1%} -> "
                f"{found['accuracy_after']:.1%}.")
        else:
            accuracies = [r["val_token_accuracy"] for _, r in points
                          if r.get("val_token_accuracy") is not None]
            trend = (f"validation accuracy {accuracies[0]:.1%} after the first epoch, "
                     f"{max(accuracies):.1%} at best" if accuracies else "no validation figures")
            lines.append(f"- **{name}**: no plateau followed by a sharp drop at epoch resolution; "
                         f"{trend} ({len(points)} epochs, {points[-1][0]:.0f} s).")
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
        "Read on each model's step trace (steps.csv, trace.png) by the rule of "
        f"pipelines/curve.py, on the validation loss of the rows that --eval-every measured "
        "(the training loss where there are few): a plateau is a stretch of at least "
        f"{curve.PLATEAU_SHARE:.0%} of the rows that falls no more than "
        f"{curve.PLATEAU_BAND:.0%} below its start, a sharp drop a fall of "
        f"{curve.SHARP_FALL:.0%} below its level in no more rows than the plateau lasted; the "
        "code explains (swapped - own) / swapped of the loss at the validation rows around "
        "them. A plateau that lasts to the end of a converged model's trace is where early "
        "stopping found its minimum. "
        f"(Reports without a trace read epochs: a plateau is {PLATEAU_EPOCHS}+ epochs falling "
        f"less than {PLATEAU_FALL:.0%} each; a sharp drop one epoch falling {SHARP_FALL:.0%} or "
        "more.)"]
    return lines


def _samples(models: dict) -> list[str]:
    first = next((e for e in models.values() if (e["converged"] or e["budget"])), None)
    if first is None:
        return ["No model has a checkpoint to show."]
    lines = []
    for i, sample in enumerate((first["converged"] or first["budget"])["samples"]):
        lines.append(f"- **original**: {sample['original']}")
        for name, entry in models.items():
            figures = entry["converged"] or entry["budget"]
            if figures and i < len(figures["samples"]):
                lines.append(f"  - *{name}*: {figures['samples'][i]['reconstruction']}")
    return lines
