"""Using the codes: sentences to codes, files of codes, a cached index of the training codes.

A code is what the encoder makes of a sentence: the two directions' last LSTM states summed,
shape (latent,) float32 (:meth:`SentenceAutoencoder.encode
<autoencoder.model.network.SentenceAutoencoder.encode>`). Files are encoded once into ids
(:class:`~autoencoder.data.sentences.EncodedSentences`) and run in length-bucketed batches
(:func:`~autoencoder.data.batches.plan_epoch`, file order within each window); codes are written by
windows into a ``.npy`` file, so memory stays flat in the number of sentences.

The index of a model (``RUN/models/NAME/index``) holds the unit-length codes of the train split
(``codes.npy``) and the byte offset of each sentence's line (``offsets.npy``), with a manifest
recording the sha256 of the checkpoint and split it was made from: a retrained model or a new
corpus rebuilds it. Only Keras and numpy here, so it runs on any Keras backend.
"""

from __future__ import annotations

import itertools
import logging
import os
from pathlib import Path

import numpy as np

from autoencoder.data.batches import EVAL_BATCH, Bucketing, batch_ids, plan_epoch
from autoencoder.data.sentences import ENCODE_CHUNK, EncodedSentences, count_lines, line_tokens
from autoencoder.data.vocab import UNK_ID
from autoencoder.model.decode import NearestNeighbourDecoder
from autoencoder.model.network import SentenceAutoencoder
from embeddings import load_corpus
from embeddings.core.progress import progress_bar
from embeddings.store.errors import SeqaeError
from embeddings.store.files import (
    atomic_open,
    atomic_path,
    check_input_file,
    output_path,
    resolve_path,
    sha256_file,
)
from embeddings.store.locks import run_lock
from embeddings.store.manifests import MANIFEST, verify_manifest, write_manifest
from embeddings.store.rundir import RunDir, seqae_owns
from pipelines.models import load_run_model
from pipelines.params import EncodeParams, InterpolateParams, NeighboursParams
from pipelines.reconstruct import sentence_ids, tokenize_sentence

log = logging.getLogger(__name__)

INDEX_FILES = (CODES, OFFSETS) = ("codes.npy", "offsets.npy")  # in RUN/models/NAME/index
INDEX_SPLIT = "train"


def write_codes(ae: SentenceAutoencoder, sentences: EncodedSentences, path: Path, *,
                unit: bool = False, batch_size: int = EVAL_BATCH,
                bucketing: Bucketing = Bucketing()) -> None:
    """Write the codes of ``sentences`` to the ``.npy`` file ``path``: (N, latent) float32,
    row ``i`` the code of sentence ``i`` (``unit``: scaled to unit length).

    Batches are bucketed by length within windows of ``bucketing.window`` batches of file
    order, and each window fills one contiguous block of rows, mapped only while it is
    written: memory holds one window's codes, whatever N.
    """
    n, latent = len(sentences), ae.config.latent
    header = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, latent))
    offset = header.offset
    del header
    plan = plan_epoch(sentences.lengths, batch_size, ae.config.seq_len, bucketing=bucketing)
    # With no shuffling, window w's batches are consecutive and hold rows w*span ... (w+1)*span-1.
    span = bucketing.window * batch_size
    batches = itertools.groupby(zip(plan, batch_ids(sentences, plan)),
                                key=lambda pair: int(pair[0].rows[0]) // span)
    with progress_bar(total=n, unit="sentence", desc="encoding") as bar:
        for window, group in batches:
            start = window * span
            block = np.memmap(path, np.float32, "r+", offset=offset + start * latent * 4,
                              shape=(min(span, n - start), latent))
            for batch, ids in group:
                block[batch.rows - start] = ae.encode(ids)
                bar.update(len(batch.rows))
            if unit:
                block /= np.maximum(np.linalg.norm(block, axis=1, keepdims=True), 1e-12)
            block.flush()
            del block


def unknown_rows(sentences: EncodedSentences) -> int:
    """How many sentences have only words unknown to the vocabulary (every id UNK)."""
    count = 0
    for start in range(0, len(sentences), ENCODE_CHUNK):
        unknown = (np.asarray(sentences.ids[start:start + ENCODE_CHUNK]) == UNK_ID).sum(axis=1)
        count += int((unknown == sentences.lengths[start:start + ENCODE_CHUNK]).sum())
    return count


def code_outputs(output: Path, run_dir: str | os.PathLike | RunDir,
                 source: Path | None = None) -> tuple[Path, Path]:
    """The codes file ``output`` and its sentences file (``output`` with ``.tsv``), checked:
    regular files (or new ones) outside seqae's own files, neither of them the input
    ``source``, and the sentences file new or the one written with ``output``."""
    output = Path(output)
    if output.suffix == ".tsv":
        raise SeqaeError(f"{output} ends in .tsv, the name of its sentences file: "
                         "name the codes file .npy")
    paths = (output, output.with_suffix(".tsv"))
    for path in paths:
        target = resolve_path(path)
        if seqae_owns(path, run_dir):
            raise SeqaeError(f"{path} is one of seqae's own files (of run {run_dir} or another "
                             "run): write elsewhere")
        if target.is_dir():
            raise SeqaeError(f"cannot write {path}: it is a folder")
        if target.exists() and not target.is_file():
            raise SeqaeError(f"cannot write {path}: codes are written in place, so it must be "
                             "a regular file, not a device or a pipe")
    if source is not None and any(resolve_path(p) == resolve_path(source) for p in paths):
        raise SeqaeError(f"{source} is the INPUT: writing {output} would overwrite it")
    if paths[1].exists() and not _is_sentences_file(*paths):
        raise SeqaeError(f"{paths[1]} exists and is not the sentences file seqae wrote beside "
                         f"{output} (one line per row of it): it is left alone; move it away "
                         "or name another OUTPUT")
    return paths


def _is_sentences_file(codes: Path, tsv: Path) -> bool:
    """Whether ``tsv`` is the sentences file an earlier ``encode`` wrote with ``codes``: the
    codes file is a 2-D float32 array with one row per line of ``tsv``."""
    try:
        rows = np.load(codes, mmap_mode="r", allow_pickle=False)
        return rows.dtype == np.float32 and rows.ndim == 2 and count_lines(tsv) == len(rows)
    except (OSError, ValueError):
        return False


def copy_sentences(source: Path, dest: Path, tokenize: bool) -> int:
    """Write the sentences of ``source`` (one a line) to ``dest`` as tokens joined by spaces,
    tokenized as ``reconstruct`` does when ``tokenize`` (else split on white space, for the
    run's already tokenized splits). Lines with no token are skipped; returns their number."""
    skipped = 0
    with open(source, encoding="utf-8", errors="replace") as lines, \
            open(dest, "w", encoding="utf-8") as out:
        for line in lines:
            tokens = tokenize_sentence(line) if tokenize else line.split()
            if tokens:
                out.write(" ".join(tokens) + "\n")
            else:
                skipped += bool(line.strip())
    return skipped


def encode_file(run_dir: str | os.PathLike | RunDir, output: Path, source: Path | None = None,
                split: str | None = EncodeParams.split, name: str | None = None) -> dict:
    """Encode every sentence of ``source`` (a text file, one sentence a line, tokenized as
    ``reconstruct`` tokenizes) or of the run's ``split`` with model ``name``.

    Writes ``output`` (N x latent float32 ``.npy``, rows in input order) and the line-aligned
    ``output`` with ``.tsv`` (each sentence's tokens joined by spaces, not cut), each replaced
    whole only once complete. Returns ``{"model", "sentences", "latent", "codes", "sentences_file",
    "truncated", "unknown", "skipped"}``.
    """
    EncodeParams(split=split)
    run = RunDir.of(run_dir)
    if (source is None) == (split is None):
        raise SeqaeError("give either an INPUT file or --split")
    codes_path, tsv_path = code_outputs(output, run, source)
    if split is not None:
        source = load_corpus(run).split_path(split)
    else:
        check_input_file(source)
    name, ae = load_run_model(run, name)
    with output_path(tsv_path) as tsv_tmp:
        skipped = copy_sentences(source, tsv_tmp, tokenize=split is None)
        sentences = EncodedSentences.encode(tsv_tmp, ae.vocab, ae.config.seq_len)
        if not len(sentences):
            raise SeqaeError(f"{source} has no sentences to encode")
        summary = {"model": name, "sentences": len(sentences), "latent": ae.config.latent,
                   "codes": codes_path, "sentences_file": tsv_path,
                   "truncated": sentences.truncated, "unknown": unknown_rows(sentences),
                   "skipped": skipped}
        with output_path(codes_path) as codes_tmp:
            write_codes(ae, sentences, codes_tmp)
    return summary


def sentence_code(ae: SentenceAutoencoder, sentence: str,
                  name: str) -> tuple[list[str], np.ndarray]:
    """The tokens model ``name`` reads of ``sentence`` and its code, shape (latent,) float32;
    a sentence with no token, or only unknown words, is refused."""
    tokens, ids = sentence_ids(ae, sentence, name, known=True)
    return tokens, ae.encode(ids[None, : len(tokens)])[0]


def interpolate(run_dir: str | os.PathLike | RunDir, first: str, last: str,
                name: str | None = None,
                steps: int = InterpolateParams.steps) -> list[list[str]]:
    """The decoded sentences at ``steps`` evenly spaced codes from ``first``'s code to
    ``last``'s, both included. Lengths (which a code does not carry) go linearly, rounded,
    from one sentence's to the other's."""
    InterpolateParams(steps=steps)
    name, ae = load_run_model(run_dir, name)
    (tokens_a, a), (tokens_b, b) = (sentence_code(ae, s, name) for s in (first, last))
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
    codes = a + t * (b - a)  # exactly a (and b) at the ends
    lengths = np.rint(len(tokens_a) + t[:, 0] * (len(tokens_b) - len(tokens_a))).astype(int)
    return ae.decode_codes(codes, lengths)


class CodeIndex:
    """The unit-length codes of a split's sentences, searched by cosine.

    Attributes
    ----------
    codes : (N, latent) float32 unit rows, memory-mapped read-only.
    offsets : (N,) int64 byte offset of each sentence's line in ``path``.
    path : the split file the sentences are read back from.
    """

    def __init__(self, folder: Path, path: Path):
        self.codes = np.load(Path(folder) / CODES, mmap_mode="r", allow_pickle=False)
        self.offsets = np.load(Path(folder) / OFFSETS, allow_pickle=False)
        self.path = Path(path)
        self.search = NearestNeighbourDecoder(self.codes, unit_rows=True)

    def __len__(self) -> int:
        return len(self.offsets)

    def nearest(self, code: np.ndarray, k: int) -> list[tuple[str, float]]:
        """The ``k`` sentences whose codes have the largest cosine to ``code`` ((latent,)
        float32), best first, as (tokens joined by spaces, cosine)."""
        rows, scores = self.search.kneighbors(code[None], k)
        lines = line_tokens(self.path, self.offsets[rows[0]])
        return [(" ".join(tokens), float(score)) for tokens, score in zip(lines, scores[0])]


def code_index(run: RunDir, name: str, ae: SentenceAutoencoder) -> CodeIndex:
    """Model ``name``'s index of the train split's codes, built (once) when missing, damaged,
    or made from another checkpoint or split."""
    model_dir = run.model(name)
    folder = model_dir.index
    split = load_corpus(run).split_path(INDEX_SPLIT)
    made_from = {"checkpoint_sha256": sha256_file(model_dir.best),
                 "split": INDEX_SPLIT, "split_sha256": sha256_file(split)}
    _check_index_folder(folder)
    if not _is_current(folder, made_from, ae.config.latent, split):
        with run_lock(run, f"index of model {name}"):
            _build_index(ae, name, split, folder, made_from)
    return CodeIndex(folder, split)


def _check_index_folder(folder: Path) -> None:
    """Refuse an ``index`` that seqae would not write into: a link (it would write through it
    into a folder of yours), a file, or a folder holding files that are not the index's."""
    if folder.is_symlink():
        raise SeqaeError(f"{folder} is a symbolic link: seqae writes a model's code index only "
                         "into a folder of its own; remove the link")
    if folder.exists() and not folder.is_dir():
        raise SeqaeError(f"{folder} is not a folder: seqae keeps the model's code index there; "
                         "move it away")
    if folder.is_dir():
        ours = (*INDEX_FILES, MANIFEST)
        temporary = tuple(f".{name}." for name in ours)  # what atomic writes leave after a kill
        others = sorted(p.name for p in folder.iterdir()
                        if p.name not in ours and not p.name.startswith(temporary))
        if others:
            raise SeqaeError(f"{folder} holds {', '.join(others[:3])}, which seqae did not write: "
                             "it is left alone; move them away")


def _is_current(folder: Path, made_from: dict, latent: int, split: Path) -> bool:
    """Whether the index in ``folder`` was made from ``made_from`` and its arrays are sound."""
    if not (folder / MANIFEST).is_file():
        return False
    try:
        if verify_manifest(folder, INDEX_FILES)["options"] != made_from:
            return False
        problem = index_problem(folder, latent, split.stat().st_size)
    except SeqaeError as exc:
        problem = str(exc)
    if problem:
        log.warning("rebuilding the code index in %s: %s", folder, problem)
        return False
    return True


def index_problem(folder: Path, latent: int, split_bytes: int) -> str | None:
    """What is wrong with the index arrays in ``folder`` for codes of size ``latent`` and a
    split file of ``split_bytes`` bytes, or None: codes (N, latent) float32, finite;
    offsets (N,) int64, increasing, inside the file."""
    try:
        codes = np.load(folder / CODES, mmap_mode="r", allow_pickle=False)
        offsets = np.load(folder / OFFSETS, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        return f"unreadable array: {exc}"
    if codes.dtype != np.float32 or codes.ndim != 2 or codes.shape[1] != latent:
        return f"codes.npy is {codes.dtype} {codes.shape}, not (N, {latent}) float32"
    if offsets.dtype != np.int64 or offsets.shape != (len(codes),):
        return f"offsets.npy is {offsets.dtype} {offsets.shape}, not ({len(codes)},) int64"
    if len(offsets) and (offsets[0] < 0 or offsets[-1] >= split_bytes
                         or (np.diff(offsets) <= 0).any()):
        return "offsets.npy does not point at the lines of the split, in order"
    for start in range(0, len(codes), ENCODE_CHUNK):  # in chunks: memory flat in N
        if not np.isfinite(codes[start:start + ENCODE_CHUNK]).all():
            return "codes.npy holds non-finite codes"
    return None


def _build_index(ae: SentenceAutoencoder, name: str, split: Path, folder: Path,
                 made_from: dict) -> None:
    _check_index_folder(folder)  # again, under the lock
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MANIFEST).unlink(missing_ok=True)  # no manifest: never taken for a finished index
    sentences = EncodedSentences.encode(split, ae.vocab, ae.config.seq_len)
    if not len(sentences):
        raise SeqaeError(f"{split} has no sentences to index")
    log.info("indexing the codes of %d %s sentences with model %s (once: kept in %s)",
             len(sentences), INDEX_SPLIT, name, folder)
    with atomic_path(folder / CODES, suffix=".npy") as tmp:
        write_codes(ae, sentences, tmp, unit=True)
    with atomic_open(folder / OFFSETS, "wb") as handle:
        np.save(handle, sentences.offsets, allow_pickle=False)
    write_manifest(folder, INDEX_FILES, made_from)


def nearest_sentences(run_dir: str | os.PathLike | RunDir, sentence: str,
                      name: str | None = None,
                      top_k: int = NeighboursParams.top_k) -> list[tuple[str, float]]:
    """The ``top_k`` train sentences whose codes are nearest (cosine) to ``sentence``'s, best
    first, as (sentence, cosine)."""
    NeighboursParams(top_k=top_k)
    run = RunDir.of(run_dir)
    name, ae = load_run_model(run, name)
    _, code = sentence_code(ae, sentence, name)
    return code_index(run, name, ae).nearest(code, top_k)
