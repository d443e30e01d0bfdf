"""``pipe study`` end to end at a tiny size, and the reading of its curves."""

from __future__ import annotations

import json
import os

import pytest

from pipelines.compare import compare_models
from pipelines.study_config import MODEL_NAMES, StudyConfig
from pipelines.study_report import plateau_then_drop
from embeddings.core.io import SeqaeError
from tests.conftest import assert_clean_error, invoke

TINY_STUDY = ["--vector-size", "16", "--min-count", "1", "--w2v-epochs", "2", "--workers", "1",
              "--seq-len", "8", "--latent", "8", "--batch-size", "32", "--budget", "0.01",
              "--epochs", "2", "--patience", "1", "--val-sentences", "20",
              "--eval-sentences", "10"]
# Enough for every section of the report; the slow test trains all of MODEL_NAMES.
SOME_MODELS = ("embedding-cosine", "onehot-full", "embedding-cosine-ar", "classic-seed",
               "opt-sgd-nesterov")


def tiny_study(root, models):
    from tests.conftest import write_tiny_corpus

    corpus = write_tiny_corpus(root / "corpus")
    args = ["study", "--run", root / "run", "--corpus", corpus, *TINY_STUDY,
            "--models", ",".join(models)]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return root / "run", args, result.output


@pytest.fixture(scope="module")
def study_run(tmp_path_factory):
    return tiny_study(tmp_path_factory.mktemp("study"), SOME_MODELS)


@pytest.mark.slow
@pytest.mark.long  # eight models
def test_study_of_every_model(tmp_path):
    run, _, output = tiny_study(tmp_path, MODEL_NAMES)
    check_study(run, output, MODEL_NAMES)


def test_study_trains_and_scores_every_model_twice(study_run):
    check_study(study_run[0], study_run[2], SOME_MODELS)


def check_study(run, output, models):
    report = json.loads((run / "study" / "report.json").read_text())
    assert list(report["models"]) == list(models)
    for name, entry in report["models"].items():
        if entry["non_finite"]:  # the seed's model may blow up even at this size
            assert name == "classic-seed"
            continue
        budget, converged = entry["budget"], entry["converged"]
        assert 0 <= budget["token_accuracy"] <= 1
        side = name == "classic-seed" or name.startswith("opt-")
        # The side questions are answered at the equal time; the main models train on.
        assert (converged is None) == side, name
        last = budget if side else converged
        # What the study recorded is what the model scores: compare it afresh, same sentences.
        fresh = compare_models(run, [name], split="test", max_sentences=10, seed=0)
        for figure in ("token_accuracy", "exact_sentence_rate", "bleu4", "mean_cosine"):
            expected = fresh["models"][name][figure]
            assert last[figure] == (expected if expected is None
                                    else pytest.approx(expected, abs=1e-9)), (name, figure)
        assert budget["test_sentences"] == last["test_sentences"] == 10
        assert name in output
        if side:
            assert entry["stopped"] == "time"
            continue
        assert entry["stopped"] in ("early-stop", "epochs")
        assert entry["epochs"] >= 2  # the budget's cut epoch, then at least one more
        assert entry["history"][0]["sentences"] < entry["history"][-1]["sentences"]
    vocab_sizes = {n: e["converged"]["vocab_size"] for n, e in report["models"].items()
                   if e["converged"]}
    assert vocab_sizes["onehot-full"] == vocab_sizes["embedding-cosine"]  # the whole vocabulary
    assert report["hardware"]["backend"] in ("tensorflow", "jax")
    assert report["config"]["budget"] == 0.01
    markdown = (run / "study" / "report.md").read_text()
    for heading in ("At an equal training time (0.01 s each)", "At convergence", "The seed's model",
                    "Which optimizer", "Reading the curves"):
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
    assert_clean_error(invoke("study", "--run", run, "--budget", "10", "--max-time", "5"),
                       "--max-time")
    assert not run.exists()


def test_study_config_checks_its_models():
    with pytest.raises(SeqaeError, match="bogus"):
        StudyConfig(models=("bogus",))


def _history(losses, accuracies=None):
    accuracies = accuracies or [0.1] * len(losses)
    return [{"status": "ok", "wall_s": 10.0, "val_loss": loss, "val_token_accuracy": acc}
            for loss, acc in zip(losses, accuracies)]


def test_plateau_then_drop_is_found_and_only_then():
    found = plateau_then_drop(_history([1.0, 0.8, 0.795, 0.79, 0.787, 0.6],
                                       [0.0, 0.05, 0.05, 0.05, 0.06, 0.2]))
    assert found["epochs"] == 3 and found["fall"] == pytest.approx(1 - 0.6 / 0.787)
    assert (found["from_s"], found["to_s"]) == (20.0, 50.0)
    assert (found["accuracy_before"], found["accuracy_after"]) == (0.06, 0.2)
    assert plateau_then_drop(_history([1.0, 0.8, 0.6, 0.45, 0.35])) is None  # steady fall
    assert plateau_then_drop(_history([1.0, 0.99, 0.985, 0.98])) is None  # plateau only


def test_a_time_stop_is_finished_only_for_its_own_budget(tiny_run):
    """A model stopped by --max-time is finished for that budget; once a longer one has been
    asked for (a convergence phase killed before its first checkpoint), it is to be resumed."""
    from autoencoder import AutoencoderConfig, TrainConfig
    from pipelines import model_status, train_autoencoder
    from embeddings.core.io import write_json
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

    config = StudyConfig(models=("opt-adam",), seq_len=8, latent=8, batch_size=32, budget=0.01,
                         epochs=2, patience=1, val_sentences=20, eval_sentences=10)
    report = run_study(run.path, config)
    # As the report shows it: no absolute path of the machine it ran on.
    assert report["corpus"]["source"] == os.path.relpath(corpus)
    assert 0 <= report["models"]["opt-adam"]["budget"]["token_accuracy"] <= 1
    assert (run / "study" / "report.md").exists()
