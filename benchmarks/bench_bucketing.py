"""Benchmark 8: length-bucketed vs fixed-width batches, on real 20 Newsgroups sentence lengths.

Both LSTMs run as many steps as a batch is wide. With fixed-width batches every batch is
``seq_len`` wide; bucketed batches (the Trainer's default) group sentences of similar length and
are padded only to one of a few widths. Both contenders are the Trainer's own step and batch
stream, in two processes alternating epoch by epoch; only ``bucket`` differs between them.

Sentence lengths come from the 20 Newsgroups archive (a seeded sample of train posts, headers,
footers and quotes stripped and tokenized as ``pipe embed`` does); the words are synthetic (Zipf),
since the speed of a step depends on the lengths, not on which words fill them.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from benchmarks.report import Section
from benchmarks.timing import alternate, median_of
from benchmarks.training_worker import ModelShape, TrainingWorker, write_zipf_sentences

# Optional packages, checked before this module is imported (a missing one skips the section).
REQUIRES: tuple[str, ...] = ()

ROOT = Path(__file__).resolve().parents[1]
ARCHIVE = ROOT.parent / "shared" / "data" / "20news-bydate.tar.gz"
CONTENDERS = {"fixed width": False, "bucketed": True}


@dataclass(frozen=True)
class Settings(ModelShape):
    """The model shape, ``sentences`` per timed epoch over a vocabulary of ``vocab_size``
    words, and ``documents`` train posts of ``archive`` whose sentence lengths are drawn from."""

    vocab_size: int = 20_000
    sentences: int = 2048
    documents: int = 2000
    archive: Path = ARCHIVE


FULL = Settings()
# Quick narrows the model, and seq-len to 32 (still twice the median sentence): the bucketed
# worker traces a step per batch width before timing, 8 widths instead of 13.
QUICK = Settings(vocab_size=2000, sentences=512, documents=150, dim=512, seq_len=32, latent=128,
                 repeats=2)


def newsgroup_sentence_lengths(archive: Path, documents: int, seed: int = 0) -> np.ndarray:
    """Token counts of the sentences of a seeded sample of ``documents`` 20 Newsgroups train
    posts, tokenized as ``pipe embed`` does (Punkt trained on the sample, lowercased)."""
    from embeddings.corpus import read_corpus
    from embeddings.store.errors import SeqaeError
    from embeddings.tokenize import TokenizeConfig, Tokenizer, train_punkt

    if not Path(archive).exists():
        raise SeqaeError(f"no 20 Newsgroups archive at {archive}")
    docs, _ = read_corpus(str(archive))
    train = [doc for doc in docs if doc.split == "train"]
    rng = np.random.default_rng(seed)
    texts = [train[i].text for i in rng.choice(len(train), size=min(documents, len(train)),
                                                 replace=False)]
    tokenizer = Tokenizer(TokenizeConfig(), train_punkt(texts))
    return np.array([len(unit) for text in texts for unit in tokenizer(text)])


def run(settings: Settings, workdir: Path) -> Section:
    """Sentences/s and padding share of fixed-width and bucketed batches, and their ratio."""
    from autoencoder.data.batches import Bucketing, padding_share, plan_epoch

    lengths = newsgroup_sentence_lengths(settings.archive, settings.documents)
    path = write_zipf_sentences(Path(workdir) / "bucketing.txt", settings.vocab_size,
                                settings.sentences, lengths=lengths)
    base = settings.train_spec("embedding", settings.vocab_size, settings.sentences)
    with contextlib.ExitStack() as stack:
        workers = {name: stack.enter_context(TrainingWorker(replace(base, bucket=bucket), path))
                   for name, bucket in CONTENDERS.items()}
        for worker in workers.values():
            worker.wait()
        samples = alternate({name: (lambda w=worker: w.epoch("stream"))
                             for name, worker in workers.items()}, settings.repeats)
    speed = {name: median_of(samples[name], "sentences_per_s") for name in CONTENDERS}
    padding = {name: median_of(samples[name], "padding_share") for name in CONTENDERS}
    section = Section(f"Bucketed vs fixed-width batches (embedding kind, V = {settings.vocab_size:,})",
                      ["batches", "sentences/s", "padding share", "vs fixed width"])
    for name in CONTENDERS:
        section.rows.append([name, f"{speed[name]:.1f}", f"{padding[name]:.1%}",
                             f"{speed[name] / speed['fixed width']:.2f}x"])
    truncated = np.minimum(lengths, settings.seq_len)
    at_scale = {bucket: padding_share(plan_epoch(truncated, settings.batch_size, settings.seq_len,
                                                 seed=0, bucketing=Bucketing() if bucket else None),
                                      truncated)
                for bucket in (False, True)}
    section.notes += [
        f"{settings.sentences} sentences per epoch with lengths drawn from the {len(lengths):,} "
        f"sentences of {settings.documents} 20 Newsgroups train posts (median "
        f"{np.median(lengths):.0f} tokens, {np.mean(lengths > settings.seq_len):.1%} longer than "
        f"seq-len); synthetic Zipf words; {base.shape_note()}; {settings.repeats} epochs per "
        "contender, alternating, median. Each contender is the Trainer's own step and batch "
        f"stream (bucketing: windows of {Bucketing().window} batches sorted by length, widths "
        f"rounded up to a multiple of {Bucketing().multiple}); the first epoch's widths are "
        "traced before timing.",
        f"Padding share over all {len(lengths):,} sampled sentences: {at_scale[False]:.1%} fixed "
        f"width, {at_scale[True]:.1%} bucketed; an epoch of only {settings.sentences} sentences "
        "has fewer batches per window to sort, so more of it is padding.",
    ]
    return section
