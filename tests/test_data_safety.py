"""Never lose a user's data: hostile names and paths, failures halfway, bad inputs.

Each test that expects a refusal also checks what the refusal leaves behind: every artifact
that was valid before the command is byte-for-byte the same after it, and nothing outside the
run directory was touched.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import threading
from pathlib import Path

import pytest

from embeddings.store.errors import SeqaeError
from embeddings.store.jsonfile import write_json
from tests.conftest import assert_clean_error, invoke, read_json, snapshot, tiny_ae, unchanged_but_lock

# -- model names --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", [".", "..", "../escape", "a/b", "", ".hidden", "x" * 101,
                                  "space name", "ABSOLUTE"])
def test_a_name_that_is_not_a_plain_name_is_refused_and_deletes_nothing(trained, tmp_path, name):
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "thesis.tex").write_text("years of work")
    name = str(outside) if name == "ABSOLUTE" else name
    before = snapshot(trained)
    result = invoke("train-ae", "--run", trained, "--name", name, "--force", *tiny_ae(1))
    assert_clean_error(result, "not a plain name")
    assert unchanged_but_lock(before, snapshot(trained))
    assert (outside / "thesis.tex").read_text() == "years of work"
    assert not (tmp_path / "escape").exists()


def test_the_library_checks_names_too(trained):
    from autoencoder import AutoencoderConfig, TrainConfig
    from pipelines import train_autoencoder

    with pytest.raises(SeqaeError, match="not a plain name"):
        train_autoencoder(trained, AutoencoderConfig(seq_len=8, latent=8), TrainConfig(epochs=1),
                          name="..", force=True)
    assert (trained / "models" / "embedding-cosine" / "best.keras").is_file()


@pytest.mark.parametrize("command", [["reconstruct", "--model", "..", "a man"],
                                     ["neighbours", "--model", "..", "a man"],
                                     ["interpolate", "--model", "../x", "a man", "a cat"],
                                     ["encode", "--model", "..", "--split", "test", "out.npy"],
                                     ["compare", "--models", "embedding-cosine,../x"]])
def test_readers_refuse_path_names(trained, command):
    assert_clean_error(invoke(command[0], "--run", trained, *command[1:]), "not a plain name")


def test_force_never_removes_a_folder_seqae_did_not_write(trained):
    mine = trained / "models" / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    write_json(mine / "state.json", {"epoch": 1})  # looks trained, but has no model manifest
    result = invoke("train-ae", "--run", trained, "--name", "mine", "--force", *tiny_ae(1))
    assert_clean_error(result, "not a model folder seqae wrote")
    assert (mine / "notes.txt").read_text() == "mine"


def test_force_through_a_symlinked_model_folder_is_refused(trained, tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "keep.txt").write_text("keep")
    (trained / "models" / "linked").symlink_to(target)
    result = invoke("train-ae", "--run", trained, "--name", "linked", "--force", *tiny_ae(1))
    assert_clean_error(result, "not a model folder seqae wrote")
    assert (target / "keep.txt").read_text() == "keep"


# -- failures that must not break what was good ---------------------------------------------------

NAN_GUARD = ["--optimizer", "sgd", "--lr", "1000000", "--loss", "mse", "--clipnorm", "0"]


def test_a_forced_retrain_that_fails_first_keeps_the_old_model(trained):
    model = trained / "models" / "embedding-cosine"
    before = snapshot(model)
    result = invoke("train-ae", "--run", trained, "--name", "embedding-cosine", "--force",
                    *tiny_ae(1), *NAN_GUARD)
    assert_clean_error(result, "non-finite loss")
    assert snapshot(model) == before
    assert not [p for p in model.parent.iterdir() if p.name.startswith(".")]
    assert invoke("reconstruct", "--run", trained, "a man").exit_code == 0


def test_a_failed_resume_leaves_the_model_usable(trained):
    model = trained / "models" / "embedding-cosine"
    state = read_json(model / "state.json")
    write_json(model / "state.json", {"epoch": "one"})
    damaged = snapshot(model)
    run_config = (trained / "config.json").read_bytes()
    result = invoke("train-ae", "--run", trained, *tiny_ae(2), "--lr", "0.5", "--resume")
    assert_clean_error(result, "state.json")
    assert snapshot(model) == damaged  # config.json and manifest untouched
    assert (trained / "config.json").read_bytes() == run_config
    write_json(model / "state.json", state)
    assert invoke("compare", "--run", trained).exit_code == 0


def test_compare_skips_and_names_a_model_without_a_finished_epoch(trained):
    result = invoke("train-ae", "--run", trained, "--name", "diverged", *tiny_ae(1), *NAN_GUARD)
    assert_clean_error(result, "non-finite loss")
    assert (trained / "models" / "diverged" / "state.json").is_file()
    result = invoke("compare", "--run", trained)
    assert result.exit_code == 0, result.output
    assert "skipped (no finished epoch): diverged" in result.output
    report = read_json(trained / "compare" / "report.json")
    assert report["skipped"] == ["diverged"] and list(report["models"]) == ["embedding-cosine"]


def test_reembedding_a_run_with_models_needs_force(trained):
    corpus = read_json(trained / "corpus" / "stats.json")["config"]["source"]
    args = ["--corpus", corpus, "--vector-size", "12", "--min-count", "1", "--epochs", "2",
            "--workers", "1"]
    before = snapshot(trained)
    result = invoke("embed", "--run", trained, *args)
    assert_clean_error(result, "embedding-cosine", "--force")
    assert unchanged_but_lock(before, snapshot(trained))
    result = invoke("embed", "--run", trained, *args, "--force")
    assert result.exit_code == 0, result.output
    assert read_json(trained / "embeddings" / "meta.json")["dimensions"] == 12


def test_a_failed_embed_leaves_the_previous_run_valid(trained):
    """word2vec refuses (no word left at this min-count) after the corpus would have changed:
    the old corpus and vectors stay, and the models still load."""
    corpus = read_json(trained / "corpus" / "stats.json")["config"]["source"]
    before = snapshot(trained)
    result = invoke("embed", "--run", trained, "--corpus", corpus, "--seed", "3",
                    "--min-count", "100000", "--force")
    assert_clean_error(result, "min_count")
    assert unchanged_but_lock(before, snapshot(trained))
    assert invoke("reconstruct", "--run", trained, "a man").exit_code == 0


# -- output paths -------------------------------------------------------------------------------

def test_export_writes_through_a_device_and_keeps_it_a_device(trained):
    result = invoke("export", "--run", trained, "/dev/null")
    assert result.exit_code == 0, result.output
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_export_to_a_full_device_is_one_line(trained):
    result = invoke("export", "--run", trained, "/dev/full")
    assert_clean_error(result, "No space left on device")
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_export_writes_what_a_symlink_points_to(trained, tmp_path):
    target = tmp_path / "real.bin"
    target.write_text("old")
    link = tmp_path / "link.bin"
    link.symlink_to(target)
    assert invoke("export", "--run", trained, link).exit_code == 0
    assert link.is_symlink() and target.read_bytes() != b"old"


def test_export_writes_through_a_fifo(trained, tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    assert invoke("export", "--run", trained, fifo).exit_code == 0
    reader.join(30)
    assert received and received[0].split(b"\n")[0].split()[1] == b"16"  # header: words, dim
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


@pytest.mark.parametrize("target", ["embeddings/vectors.npy", "config.json",
                                    "models/embedding-cosine/best.keras", "corpus/train.txt"])
def test_export_never_overwrites_the_runs_own_files(trained, target):
    before = snapshot(trained)
    result = invoke("export", "--run", trained, trained / target)
    assert_clean_error(result, "seqae's own files")
    assert unchanged_but_lock(before, snapshot(trained))


# -- inputs -------------------------------------------------------------------------------------

def test_a_fifo_corpus_is_refused_without_hanging(tmp_path):
    fifo = tmp_path / "corpus"
    os.mkfifo(fifo)
    assert_clean_error(invoke("embed", "--run", tmp_path / "run", "--corpus", fifo),
                       "not a regular file or folder")


@pytest.mark.parametrize("option", ["--run", "--corpus"])
def test_empty_paths_are_refused(tmp_path, option):
    args = {"--run": tmp_path / "run", "--corpus": "default", option: ""}
    result = invoke("embed", *[x for pair in args.items() for x in pair])
    assert_clean_error(result, "empty string")


def test_a_one_document_corpus_is_refused_at_embed(tmp_path):
    corpus = tmp_path / "one.txt"
    corpus.write_text("One sentence here. And another one.\n")
    result = invoke("embed", "--run", tmp_path / "run", "--corpus", corpus)
    assert_clean_error(result, "no sentence in the val and test splits")
    assert not (tmp_path / "run" / "corpus").exists()


@pytest.mark.parametrize("option, value", [
    ("--negative", "101"), ("--window", "1001"), ("--workers", "257"), ("--epochs", "1001"),
    ("--vector-size", "100001"), ("--min-count", str(2**31)),
])
def test_word2vec_options_beyond_what_gensim_handles_are_refused(tmp_path, option, value):
    result = invoke("embed", "--run", tmp_path / "run", option, value)
    assert_clean_error(result, option)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("option", ["--clipnorm", "--lr", "--momentum"])
@pytest.mark.parametrize("value", ["nan", "inf"])
def test_non_finite_numbers_are_refused(tiny_run, option, value):
    result = invoke("train-ae", "--run", tiny_run, option, value, *tiny_ae(1))
    assert_clean_error(result, option)
    assert "not a finite number" in result.output or "not in the range" in result.output


def test_compare_does_not_create_a_missing_run(tmp_path):
    assert_clean_error(invoke("compare", "--run", tmp_path / "missing"), "no run directory")
    assert not (tmp_path / "missing").exists()


# -- operating-system errors --------------------------------------------------------------------

@pytest.mark.parametrize("code", [errno.EROFS, errno.ENOSPC, errno.EACCES])
def test_os_errors_while_writing_are_one_line_naming_the_path(trained, monkeypatch, code):
    import embeddings.store.files

    real_replace = os.replace

    def failing_replace(src, dst):
        if str(dst).endswith("report.json"):
            raise OSError(code, os.strerror(code), str(dst))
        return real_replace(src, dst)

    monkeypatch.setattr(embeddings.store.files.os, "replace", failing_replace)
    result = invoke("compare", "--run", trained)
    assert_clean_error(result, os.strerror(code), "report.json")


# -- long sentences -----------------------------------------------------------------------------

def test_reconstruct_says_where_a_long_sentence_is_cut(trained, caplog):
    result = invoke("reconstruct", "--run", trained, " ".join(["the cat sees the dog"] * 4))
    assert result.exit_code == 0, result.output
    assert "reads the first 8" in caplog.text


def test_embed_never_replaces_a_folder_it_did_not_write(tmp_path):
    """``--run`` pointed at a source tree that has its own ``embeddings/`` package."""
    tree = tmp_path / "project"
    (tree / "embeddings").mkdir(parents=True)
    (tree / "embeddings" / "__init__.py").write_text("# my code\n")
    before = snapshot(tree / "embeddings")
    result = invoke("embed", "--run", tree, "--corpus", "default", "--vector-size", "8")
    assert_clean_error(result, "not a folder seqae wrote")
    assert snapshot(tree / "embeddings") == before
    assert not (tree / "corpus").exists()


# -- cases from a hostile review ----------------------------------------------------------------

def test_encode_never_writes_over_its_input(trained, tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("the cat sees the dog .\n")
    for output in (source, tmp_path / "in.npy"):
        if output.suffix == ".npy":
            source = source.rename(tmp_path / "in.tsv")
        result = invoke("encode", "--run", trained, source, output)
        assert_clean_error(result, "would overwrite it")
        assert source.read_text() == "the cat sees the dog .\n"


@pytest.mark.parametrize("planted", ["compare/report.md", "embeddings/meta.json", ".lock",
                                     "config.json"])
def test_files_of_yours_where_seqae_writes_are_refused_and_kept(tmp_path, planted):
    run = tmp_path / "mine"
    (run / planted).parent.mkdir(parents=True, exist_ok=True)
    (run / planted).write_text('{"mine": true}\n')
    before = snapshot(run)
    command = ["compare"] if planted.startswith("compare") else [
        "embed", "--corpus", "default", "--vector-size", "8", "--epochs", "1"]
    result = invoke(command[0], "--run", run, *command[1:])
    assert_clean_error(result, "left alone")
    after = snapshot(run)
    assert after == before if planted == ".lock" else unchanged_but_lock(before, after)


def test_a_symlinked_models_folder_is_refused(trained, tmp_path):
    other = shutil.copytree(trained, tmp_path / "other")
    shutil.rmtree(trained / "models")
    (trained / "models").symlink_to(other / "models")
    before = snapshot(other / "models")
    result = invoke("train-ae", "--run", trained, "--force", *tiny_ae(1))
    assert_clean_error(result, "symbolic link")
    assert snapshot(other / "models") == before


def test_an_export_through_a_symlink_loop_is_one_line(trained, tmp_path):
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    assert_clean_error(invoke("export", "--run", trained, tmp_path / "loop"), "loop")
    assert_clean_error(invoke("export", "--run", trained, tmp_path / "no" / "such" / "x.bin"),
                       "no folder")
    assert not (tmp_path / "no").exists()


def test_a_model_left_aside_by_a_killed_force_is_put_back(trained):
    from embeddings.store.rundir import ModelDir

    model = trained / "models" / "embedding-cosine"
    before = snapshot(model)
    token = "0123456789abcdef"
    (model / ModelDir.REPLACED_TOKEN).write_text(token)  # what --force writes before moving it aside
    os.replace(model, model.with_name(f".embedding-cosine.replaced-{token}"))
    model.mkdir()  # what a kill before the new model's first checkpoint leaves
    result = invoke("train-ae", "--run", trained, "--name", "embedding-cosine", "--force",
                    *tiny_ae(1), *NAN_GUARD)
    assert_clean_error(result, "non-finite")
    assert snapshot(model) == before
    assert not list(model.parent.glob(".*"))


def test_a_folder_named_like_a_model_put_aside_but_not_seqaes_is_left_alone(trained):
    yours = trained / "models" / ".embedding-cosine.replaced-mine"
    shutil.copytree(trained / "models" / "embedding-cosine", yours)  # a backup of your own
    before = snapshot(yours)
    result = invoke("train-ae", "--run", trained, "--name", "embedding-cosine", "--force",
                    *tiny_ae(1))
    assert result.exit_code == 0, result.output
    assert snapshot(yours) == before


def test_embed_clears_staging_left_by_a_kill_and_pairs_corpus_with_vectors(trained):
    stale = trained / ".staging-killed" / "corpus"
    stale.mkdir(parents=True)
    meta = read_json(trained / "embeddings" / "meta.json")
    write_json(trained / "embeddings" / "meta.json", dict(meta, key={**meta["key"], "corpus": "x"}))
    from embeddings.store.manifests import write_manifest
    manifest = read_json(trained / "embeddings" / "manifest.json")
    write_manifest(trained / "embeddings", tuple(manifest["files"]), manifest["options"])
    # The vectors no longer claim the run's corpus: every reader refuses them.
    assert_clean_error(invoke("reconstruct", "--run", trained, "a man"), "rerun `pipe embed`")
    corpus = read_json(trained / "corpus" / "stats.json")["config"]["source"]
    result = invoke("embed", "--run", trained, "--corpus", corpus, "--vector-size", "16",
                    "--min-count", "1", "--epochs", "2", "--workers", "1", "--force")
    assert result.exit_code == 0, result.output
    assert not (trained / ".staging-killed").exists()


def test_compare_with_an_empty_model_list_is_refused(trained):
    assert_clean_error(invoke("compare", "--run", trained, "--models", ",,,"), "--models")


# -- ownership, schemas and readers (one reader per file kind, proven ownership) ----------------

# A folder of the name a study gives its first run of embedding-cosine (at its default rates
# and seeds): `pipe train-ae --name` can make one.
STUDY_RUN = "embedding-cosine-lr0.001-seed0"


def test_a_study_never_retrains_a_model_it_did_not_create(trained):
    os.rename(trained / "models" / "embedding-cosine", trained / "models" / STUDY_RUN)
    before = snapshot(trained)
    result = invoke("study", "--run", trained, "--models", "embedding-cosine")
    assert_clean_error(result, STUDY_RUN, "no study of this run trained", "--force")
    assert unchanged_but_lock(before, snapshot(trained))  # nor the vectors, nor config.json


def test_study_force_checks_the_study_folder_before_re_embedding(trained):
    (trained / "study").mkdir()
    (trained / "study" / "notes.txt").write_text("mine")
    before = snapshot(trained)
    result = invoke("study", "--run", trained, "--models", "embedding-cosine", "--force")
    assert_clean_error(result, "study", "not a folder seqae wrote")
    assert unchanged_but_lock(before, snapshot(trained))


def test_the_code_index_is_never_written_through_a_link(trained, tmp_path):
    yours = tmp_path / "yours"
    yours.mkdir()
    (yours / "codes.npy").write_text("mine")
    os.symlink(yours, trained / "models" / "embedding-cosine" / "index")
    result = invoke("neighbours", "--run", trained, "the cat")
    assert_clean_error(result, "symbolic link")
    assert (yours / "codes.npy").read_text() == "mine"
    assert sorted(p.name for p in yours.iterdir()) == ["codes.npy"]


@pytest.mark.parametrize("planted", ["file", "dangling link", "folder of yours"])
def test_an_index_path_that_is_not_seqaes_is_one_line(trained, tmp_path, planted):
    index = trained / "models" / "embedding-cosine" / "index"
    if planted == "file":
        index.write_text("mine")
    elif planted == "dangling link":
        os.symlink(tmp_path / "nowhere", index)
    else:
        index.mkdir()
        (index / "notes.txt").write_text("mine")
    result = invoke("neighbours", "--run", trained, "the cat")
    assert_clean_error(result, str(index))
    assert not (tmp_path / "nowhere").exists()


def test_a_manifest_that_lists_nothing_verifies_nothing(trained):
    model = trained / "models" / "embedding-cosine"
    manifest = read_json(model / "manifest.json")
    write_json(model / "manifest.json", {**manifest, "files": {}})
    vocab = (model / "vocab.txt").read_text().splitlines()
    vocab[2:4] = vocab[3:1:-1]  # two words swapped: the model would print the other one
    (model / "vocab.txt").write_text("\n".join(vocab) + "\n")
    result = invoke("reconstruct", "--run", trained, "the cat")
    assert_clean_error(result, "does not list", "vocab.txt")


@pytest.mark.parametrize("file, content", [
    ("models/embedding-cosine/manifest.json", {"options": {}}),
    ("models/embedding-cosine/manifest.json", {"files": [], "options": {}}),
    ("models/embedding-cosine/manifest.json", {"files": {"config.json": 3}, "options": {}}),
    ("models/embedding-cosine/manifest.json", {"files": None, "options": {}}),
    ("models/embedding-cosine/manifest.json", [1]),
    ("models/embedding-cosine/manifest.json",
     {"files": {"../../config.json": {"size": 1, "sha256": "x"}}, "options": {}}),
    ("embeddings/meta.json", []),
    ("embeddings/manifest.json", {"files": {"vectors.npy": {"size": "big", "sha256": "x"}},
                                  "options": {}}),
    ("corpus/meta.json", {"digest": 7}),
])
def test_seqaes_own_json_of_the_wrong_shape_is_one_line(trained, file, content):
    write_json(trained / file, content)
    result = invoke("reconstruct", "--run", trained, "the cat")
    assert_clean_error(result, Path(file).name)


@pytest.mark.parametrize("content", [[1], {"epoch": 1}, None, {"epoch": True}])
def test_a_damaged_state_is_one_line_for_every_reader(trained, content):
    state = trained / "models" / "embedding-cosine" / "state.json"
    write_json(state, content)
    shutil.copytree(state.parent, trained / "models" / STUDY_RUN)  # what the study reads
    for command in (["compare"], ["train-ae", *tiny_ae(2), "--resume"],
                    ["study", "--models", "embedding-cosine"]):
        assert_clean_error(invoke(command[0], "--run", trained, *command[1:]), "state.json")


def test_a_study_progress_of_the_wrong_shape_is_one_line(trained):
    (trained / "study").mkdir()
    write_json(trained / "study" / "progress.json", {"config": [], "models": {}})
    from embeddings.store.manifests import write_manifest

    write_manifest(trained / "study", ("progress.json",), {"stage": "study"})
    result = invoke("study", "--run", trained, "--models", "opt-adam")
    assert_clean_error(result, "progress.json", "$.config")


def test_a_checkpoint_of_another_architecture_is_refused(trained, tmp_path):
    from embeddings.store.manifests import write_manifest

    other = invoke("train-ae", "--run", trained, "--name", "wide", *tiny_ae(1), "--latent", "12")
    assert other.exit_code == 0, other.output
    model = trained / "models" / "embedding-cosine"
    shutil.copyfile(trained / "models" / "wide" / "best.keras", model / "best.keras")
    manifest = read_json(model / "manifest.json")
    write_manifest(model, tuple(manifest["files"]), manifest["options"])  # matching manifest
    result = invoke("reconstruct", "--run", trained, "--model", "embedding-cosine", "the cat")
    assert_clean_error(result, "best.keras", "encoder units 12 (expected 8)")


@pytest.mark.parametrize("damage", ["latent", "nan", "offsets short", "offsets out of range",
                                    "object dtype"])
def test_an_index_with_changed_arrays_is_rebuilt_not_trusted(trained, damage, caplog):
    import numpy as np

    from embeddings.store.manifests import write_manifest

    assert invoke("neighbours", "--run", trained, "the cat").exit_code == 0
    expected = invoke("neighbours", "--run", trained, "the cat").stdout
    index = trained / "models" / "embedding-cosine" / "index"
    codes = np.load(index / "codes.npy")
    offsets = np.load(index / "offsets.npy")
    if damage == "latent":
        np.save(index / "codes.npy", codes[:, :-1])
    elif damage == "nan":
        codes[0] = np.nan
        np.save(index / "codes.npy", codes)
    elif damage == "offsets short":
        np.save(index / "offsets.npy", offsets[:-1])
    elif damage == "offsets out of range":
        np.save(index / "offsets.npy", offsets + 10**9)
    else:
        np.save(index / "offsets.npy", offsets.astype(object), allow_pickle=True)
    manifest = read_json(index / "manifest.json")
    write_manifest(index, tuple(manifest["files"]), manifest["options"])  # matches the damage
    result = invoke("neighbours", "--run", trained, "the cat")
    assert result.exit_code == 0, result.output
    assert result.stdout == expected
    assert "rebuilding the code index" in caplog.text


def test_encode_never_replaces_a_sentences_file_of_yours(trained, tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("the cat sees the dog .\n")
    (tmp_path / "user.tsv").write_text("my own table\n")
    result = invoke("encode", "--run", trained, source, tmp_path / "user.npy")
    assert_clean_error(result, "user.tsv", "left alone")
    assert (tmp_path / "user.tsv").read_text() == "my own table\n"
    assert not (tmp_path / "user.npy").exists()
    (tmp_path / "user.tsv").unlink()
    for _ in range(2):  # its own pair it replaces
        assert invoke("encode", "--run", trained, source, tmp_path / "user.npy").exit_code == 0


def test_encode_never_writes_into_another_runs_files(trained, trained_once, tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("the cat sees the dog .\n")
    other = Path(shutil.copytree(trained_once, tmp_path / "other"))
    before = snapshot(other)
    target = other / "models" / "embedding-cosine" / "best.npy"
    result = invoke("encode", "--run", trained, source, target)
    assert_clean_error(result, "seqae's own files")
    assert snapshot(other) == before


@pytest.mark.parametrize("kind", ["link", "fifo"])
def test_a_lock_file_that_is_not_seqaes_is_refused_and_kept(trained, tmp_path, kind):
    lock = trained / ".lock"
    lock.unlink()
    target = tmp_path / "target"
    if kind == "link":
        target.write_text("mine\n")
        os.symlink(target, lock)
    else:
        os.mkfifo(lock)
    result = invoke("compare", "--run", trained)
    assert_clean_error(result, ".lock", "not a regular file")
    assert lock.is_symlink() if kind == "link" else stat.S_ISFIFO(os.lstat(lock).st_mode)
    if kind == "link":
        assert target.read_text() == "mine\n"


def test_a_refused_command_leaves_no_new_lock_or_run(tmp_path):
    mine = tmp_path / "mine"
    (mine / "embeddings").mkdir(parents=True)
    (mine / "embeddings" / "notes.txt").write_text("mine")
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("a b c\n\nd e f\n\ng h i\n")
    result = invoke("embed", "--run", mine, "--corpus", corpus)
    assert_clean_error(result, "not a folder seqae wrote")
    assert sorted(p.name for p in mine.iterdir()) == ["embeddings"]
    result = invoke("embed", "--run", tmp_path / "new", "--corpus", tmp_path / "missing.txt")
    assert_clean_error(result, "missing.txt")
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("planted", ["fifo token", "empty name and token", "token of a link"])
def test_a_replaced_folder_is_touched_only_with_its_token(trained, tmp_path, planted):
    from embeddings.store.rundir import ModelDir

    models = trained / "models"
    suffix = "" if planted == "empty name and token" else "0123456789abcdef"
    yours = models / f".embedding-cosine.replaced-{suffix}"
    yours.mkdir()
    (yours / "precious.txt").write_text("mine")
    if planted == "fifo token":
        os.mkfifo(yours / ModelDir.REPLACED_TOKEN)  # reading it would block for ever
    elif planted == "empty name and token":
        (yours / ModelDir.REPLACED_TOKEN).write_text("")
    else:
        (tmp_path / "elsewhere").write_text(suffix)
        os.symlink(tmp_path / "elsewhere", yours / ModelDir.REPLACED_TOKEN)
    result = invoke("train-ae", "--run", trained, "--force", *tiny_ae(1))
    assert result.exit_code == 0, result.output
    assert (yours / "precious.txt").read_text() == "mine"


def test_outputs_never_go_into_a_damaged_run_either(trained, trained_once, tmp_path):
    other = Path(shutil.copytree(trained_once, tmp_path / "other"))
    (other / "embeddings" / "manifest.json").write_text("{}")  # damaged: still seqae's folder
    before = snapshot(other)
    source = tmp_path / "in.txt"
    source.write_text("the cat sees the dog .\n")
    result = invoke("encode", "--run", trained, source, other / "embeddings" / "vectors.npy")
    assert_clean_error(result, "seqae's own files")
    assert snapshot(other) == before


@pytest.mark.parametrize("state", [
    '{"epoch": 1' + "0" * 5000 + "}",  # past Python's int-conversion limit
    '{"epoch": 1, "best_val_loss": NaN, "best_epoch": 1, "wait": 0, "nan_events": 0, '
    '"stopped": null, "last_sha256": null}',
    '{"epoch": 1000000000000000000, "best_val_loss": 1.0, "best_epoch": 1, "wait": 0, '
    '"nan_events": 0, "stopped": null, "last_sha256": null}',
    '{"epoch": 1, "best_val_loss": 1.0, "best_epoch": 1, "wait": 0, "nan_events": 0, '
    '"stopped": null, "last_sha256": null, "partial": {"step": 1000000000000000, '
    '"loss_sum": Infinity, "tokens": -1, "norm_sum": NaN, "wall_s": -1e308}}',
])
def test_a_state_seqae_could_not_have_written_is_refused_before_any_write(trained, state):
    model = trained / "models" / "embedding-cosine"
    (model / "state.json").write_text(state)
    before = snapshot(trained)
    for command in (["train-ae", *tiny_ae(2), "--resume"], ["compare"]):
        assert_clean_error(invoke(command[0], "--run", trained, *command[1:]), "state.json")
        assert unchanged_but_lock(before, snapshot(trained))


def test_a_misshapen_evaluation_is_one_line(trained):
    from embeddings.store.manifests import write_manifest

    folder = trained / "embeddings"
    write_json(folder / "eval.json", {"wordsim353": 5, "analogy": [1]})
    manifest = read_json(folder / "manifest.json")
    write_manifest(folder, tuple(manifest["files"]), manifest["options"])
    corpus = read_json(trained / "corpus" / "stats.json")["config"]["source"]
    result = invoke("embed", "--run", trained, "--corpus", corpus,
                    "--vector-size", "16", "--min-count", "1", "--epochs", "2", "--workers", "1")
    assert_clean_error(result, "eval.json")


def test_a_refused_resume_changes_no_file(trained):
    model = trained / "models" / "embedding-cosine"
    os.mkfifo(model / ".update.lock.fifo")
    os.replace(model / ".update.lock.fifo", model / ".update.lock")
    before = snapshot(trained)
    result = invoke("train-ae", "--run", trained, *tiny_ae(2), "--resume")
    assert_clean_error(result, ".update.lock")
    assert unchanged_but_lock(before, snapshot(trained))


def test_a_failed_command_removes_every_folder_it_made(tmp_path):
    result = invoke("embed", "--run", tmp_path / "a" / "b" / "c", "--corpus", tmp_path / "none.txt")
    assert_clean_error(result, "none.txt")
    assert list(tmp_path.iterdir()) == []


def test_a_manifest_json_of_another_project_far_up_does_not_block_outputs(trained, tmp_path):
    project = tmp_path / "web"
    (project / "out" / "codes").mkdir(parents=True)
    (project / "manifest.json").write_text('{"name": "a web app"}')  # not seqae's
    source = tmp_path / "in.txt"
    source.write_text("the cat sees the dog .\n")
    result = invoke("encode", "--run", trained, source, project / "out" / "codes" / "c.npy")
    assert result.exit_code == 0, result.output
