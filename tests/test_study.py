"""``pipe study`` end to end at a tiny size, and the reading of its curves."""

from __future__ import annotations

import json
import os

import pytest

from embeddings.store.errors import SeqaeError
from pipelines.compare import compare_models
from pipelines.study_config import MODEL_NAMES, StudyConfig
from tests.conftest import assert_clean_error, invoke

TINY_STUDY = ["--vector-size", "16", "--min-count", "1", "--w2v-epochs", "2", "--workers", "1",
              "--seq-len", "8", "--latent", "8", "--batch-size", "32", "--seeds", "0,1",
              "--lrs", "0.001,0.01", "--sweep", "100", "--budget", "200", "--patience", "100",
              "--min-passes", "300", "--max-passes", "400", "--val-sentences", "20",
              "--eval-sentences", "10"]
# Enough for every section of the report; the slow test trains all of MODEL_NAMES.
SOME_MODELS = ("embedding-cosine", "onehot-full", "classic-seed", "opt-sgd-nesterov")


def tiny_study(root, models, extra=()):
    from tests.conftest import write_tiny_corpus

    corpus = write_tiny_corpus(root / "corpus")
    args = ["study", "--run", root / "run", "--corpus", corpus, *TINY_STUDY, *extra,
            "--models", ",".join(models)]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return root / "run", args, result.output


@pytest.fixture(scope="module")
def study_run(tmp_path_factory):
    return tiny_study(tmp_path_factory.mktemp("study"), SOME_MODELS)


@pytest.mark.slow
@pytest.mark.long  # every model
def test_study_of_every_model(tmp_path):
    run, _, output = tiny_study(tmp_path, MODEL_NAMES)
    check_study(run, output, MODEL_NAMES)


def test_study_trains_and_scores_every_model_on_every_seed(study_run):
    check_study(study_run[0], study_run[2], SOME_MODELS)


def check_study(run, output, models):
    report = json.loads((run / "study" / "report.json").read_text())
    assert list(report["models"]) == list(models)
    epoch = report["train_sentences"]
    for name, model in report["models"].items():
        side = model["group"] != "models" or not model["settings"]["converge"]
        sweep = model["sweep"]
        # The main Adam models sweep the rates on validation and keep the best one.
        assert (sweep is None) == (side or model["settings"]["optimizer"] != "adam"), name
        if sweep:
            scores = sweep["val_token_accuracy"]
            assert set(scores) == {"0.001", "0.01"}
            assert scores[f"{sweep['chosen']:g}"] == max(v for v in scores.values() if v is not None)
            assert model["settings"]["lr"] == sweep["chosen"]
        assert [report["runs"][r]["seed"] for r in model["runs"]] == [0, 1], name
        for run_name in model["runs"]:
            entry = report["runs"][run_name]
            assert run_name in output or name in output
            if entry["non_finite"]:  # the seed's model may blow up even at this size
                assert name == "classic-seed"
                continue
            budget, converged = entry["budget"], entry["converged"]
            assert 0 <= budget["token_accuracy"] <= 1
            assert (converged is None) == side, run_name
            last = budget if side else converged
            # What the study recorded is what the run scores: compared afresh, same sentences.
            fresh = compare_models(run, [run_name], split="test", eval_sentences=10, seed=0)
            for figure in ("token_accuracy", "exact_sentence_rate", "bleu4", "mean_cosine"):
                expected = fresh["models"][run_name][figure]
                assert last[figure] == (expected if expected is None
                                        else pytest.approx(expected, abs=1e-9)), (run_name, figure)
            seen = [row["sentences"] for row in entry["history"]]
            if side:  # exactly the budget: the epoch that crosses it ends at that step
                assert entry["stopped"] == "seen" and 200 <= sum(seen) < 200 + 32
                continue
            assert entry["stopped"] in ("early-stop", "seen", "epochs")
            assert sum(seen) >= 300 or entry["stopped"] == "epochs"  # --min-passes
            assert sum(seen) < 400 + 32  # --max-passes
            # best.keras is the epoch of the best validation token accuracy.
            accuracies = [row["val_token_accuracy"] for row in entry["history"]]
            assert accuracies[entry["best_epoch"] - 1] == max(accuracies)
    summary = report["summary"]["embedding-cosine"]["budget"]["token_accuracy"]
    assert summary["n"] == 2 and summary["low"] <= summary["mean"] <= summary["high"]
    assert [(d["a"], d["b"]) for d in report["differences"]["budget"]] == [
        ("embedding-cosine", "onehot-full")]
    assert epoch == 280
    assert report["hardware"]["backend"] in ("tensorflow", "jax")
    markdown = (run / "study" / "report.md").read_text()
    for heading in ("The rules", "The learning-rate sweep", "At the equal budget",
                    "After training on", "The seed's model", "Which optimizer", "Reading the curves"):
        assert heading in markdown
    assert (run / "study" / "curves.png").stat().st_size > 0
    assert (run / "study" / "optimizers.png").stat().st_size > 0
    config = json.loads((run / "config.json").read_text())
    assert config["stages"]["study"]["models"] == list(models)


def test_study_rerun_reuses_every_finished_phase(study_run):
    run, args, _ = study_run
    histories = {p: p.read_bytes() for p in (run / "models").glob("*/history.csv")}
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert {p: p.read_bytes() for p in histories} == histories


def test_study_refuses_bad_options_before_writing(tmp_path):
    run = tmp_path / "run"
    assert_clean_error(invoke("study", "--run", run, "--models", "embedding-cosine,bogus"),
                       "bogus")
    assert_clean_error(invoke("study", "--run", run, "--budget", "1000", "--sweep", "100",
                              "--max-passes", "500"),
                       "--max-passes")
    assert_clean_error(invoke("study", "--run", run, "--lrs", "0.001,x"), "--lrs")
    assert_clean_error(invoke("study", "--run", run, "--seeds", "1,1"), "distinct")
    assert not run.exists()


def test_study_config_checks_its_models():
    with pytest.raises(SeqaeError, match="bogus"):
        StudyConfig(models=("bogus",))


def _history(losses, accuracies=None):
    accuracies = accuracies or [0.1] * len(losses)
    return [{"status": "ok", "wall_s": 10.0, "val_loss": loss, "val_token_accuracy": acc}
            for loss, acc in zip(losses, accuracies)]


def test_summary_intervals_and_paired_gaps_match_scipy():
    from scipy import stats

    from pipelines.study_stats import interval, paired, timing

    values = [0.40, 0.45, 0.47]
    got = interval(values)
    low, high = stats.t.interval(0.95, 2, loc=sum(values) / 3, scale=stats.sem(values))
    assert got["low"] == pytest.approx(low) and got["high"] == pytest.approx(high)
    assert interval([0.5])["low"] is None and interval([]) is None
    gap = paired({0: 0.5, 1: 0.6, 2: 0.55}, {0: 0.4, 1: 0.42, 2: 0.41})
    assert gap["significant"] and gap["low"] > 0
    assert gap["p"] == pytest.approx(stats.ttest_rel([0.5, 0.6, 0.55], [0.4, 0.42, 0.41]).pvalue)
    assert not paired({0: 0.5, 1: 0.4}, {0: 0.45, 1: 0.45})["significant"]
    assert paired({0: 0.5}, {0: 0.4}) is None  # one common seed: no interval
    rows = [{"status": "ok", "wall_s": 12.0, "sentences": 1000},
            {"status": "ok", "wall_s": 5.0, "sentences": 1000},
            {"status": "ok", "wall_s": 5.0, "sentences": 1000}]
    assert timing(rows) == {"sentences_per_s": 200.0, "compile_s": 7.0, "train_s": 22.0}
    # A phase that started a new process compiles again: its first epoch is not timed either.
    rows[2]["wall_s"] = 9.0
    assert timing(rows, {0, 2}) == {"sentences_per_s": 200.0, "compile_s": 5.5, "train_s": 26.0}


def test_a_time_stop_is_finished_only_for_its_own_budget(tiny_run):
    """A model stopped by --max-time is finished for that budget; once a longer one has been
    asked for (a convergence phase killed before its first checkpoint), it is to be resumed."""
    from autoencoder import AutoencoderConfig, TrainConfig
    from embeddings.store.jsonfile import write_json
    from pipelines import model_status, train_autoencoder
    from tests.conftest import read_json

    ae = AutoencoderConfig(seq_len=8, latent=8)
    timed = TrainConfig(epochs=3, batch_size=32, val_sentences=20, max_time=1e-6)
    assert train_autoencoder(tiny_run, ae, timed, name="m").state_.stopped == "time"
    assert model_status(tiny_run, "m", ae, timed) == "finished"
    config_path = tiny_run / "models" / "m" / "config.json"
    config = read_json(config_path)
    write_json(config_path, {**config, "train": {**config["train"], "max_time": None}})
    untimed = TrainConfig(epochs=3, batch_size=32, val_sentences=20)
    assert model_status(tiny_run, "m", ae, untimed) == "partial"
    del config["train"]["clip_scope"], config["train"]["max_time"]  # saved by an older seqae
    write_json(config_path, config)
    assert model_status(tiny_run, "m", ae, untimed) == "partial"


def test_text_curves_print_accuracy_against_cumulative_training_time():
    from pipelines.plots import text_curves

    history = _history([0.9, 0.8], [0.05, 0.2]) + [{"status": "non-finite at step 3",
                                                    "wall_s": 5.0}]
    lines = text_curves({"a": history, "b": history[:1]}, width=20).splitlines()
    assert lines[1].split()[:3] == ["a", "10", "s"] and lines[1].endswith(" " + "#" * 5)
    assert lines[2].split()[:3] == ["20", "s", "20.0%"] and lines[2].endswith(" " + "#" * 20)
    assert lines[3].split()[0] == "b" and len(lines) == 4


def test_embed_train_compare_and_study_run_from_python_without_the_command_line(tmp_path):
    """The pipelines as a notebook calls them: embed, train two models and compare them
    (run_pipeline), then a tiny study on the same run; no click anywhere."""
    from autoencoder import AutoencoderConfig, TrainConfig
    from embeddings import CorpusConfig
    from pipelines import RunDir, StudyConfig, run_pipeline, run_study
    from tests.conftest import TINY_W2V, write_tiny_corpus

    corpus = write_tiny_corpus(tmp_path / "corpus")
    train = TrainConfig(epochs=2, batch_size=32, val_sentences=20)
    models = [(AutoencoderConfig(kind=kind, seq_len=8, latent=8, vocab_cap=30), train)
              for kind in ("embedding", "onehot")]
    result = run_pipeline(tmp_path / "run", CorpusConfig(source=str(corpus)), TINY_W2V, models)
    assert result.statuses == {"embedding-cosine": "absent", "onehot-ce": "absent"}
    assert set(result.report["models"]) == {"embedding-cosine", "onehot-ce"}
    assert (result.report_dir / "report.md").exists()
    run = RunDir(tmp_path / "run")
    assert {"embed", "train-ae:embedding-cosine", "train-ae:onehot-ce", "compare"} <= set(
        run.config()["stages"])  # the library records its options; no command line ran
    again = run_pipeline(run.path, CorpusConfig(source=str(corpus)), TINY_W2V, models)
    assert set(again.statuses.values()) == {"finished"} and again.embedded.reused

    config = StudyConfig(models=("opt-adam",), seq_len=8, latent=8, batch_size=32, budget=64,
                         seeds=(0,), epochs=2, val_sentences=20, eval_sentences=10)
    report = run_study(run.path, config)
    # As the report shows it: no absolute path of the machine it ran on.
    assert report["corpus"]["source"] == os.path.relpath(corpus)
    assert 0 <= report["runs"]["opt-adam-lr0.001-seed0"]["budget"]["token_accuracy"] <= 1
    assert (run / "study" / "report.md").exists()
