"""Token <-> id vocabularies with the two reserved ids every model shares.

Id 0 is padding (masked everywhere) and id 1 stands for any word outside the vocabulary.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from embeddings.store.errors import SeqaeError
from embeddings.store.files import atomic_open

log = logging.getLogger(__name__)

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1


class Vocabulary:
    """An ordered word list; ``words[i]`` has id ``i``, with ``<pad>`` = 0 and ``<unk>`` = 1.

    Parameters
    ----------
    words : the real words, most frequent first; they get ids 2, 3, ...
    """

    def __init__(self, words: Iterable[str]):
        self.words: tuple[str, ...] = (PAD, UNK, *words)
        self.index = {word: i for i, word in enumerate(self.words)}
        if len(self.index) != len(self.words):
            raise SeqaeError("vocabulary has duplicate words")

    @classmethod
    def capped(cls, counts: Sequence[tuple[str, int]], cap: int) -> Vocabulary:
        """The ``cap - 2`` most frequent words plus PAD and UNK (the classic one-hot baseline).

        A corpus with fewer words than the cap gets a smaller vocabulary, with a warning.
        """
        if cap < 3:
            raise SeqaeError(f"--vocab-cap must be at least 3 (PAD, UNK and one word), got {cap}")
        if len(counts) < cap - 2:
            log.warning("the train vocabulary has %d words, fewer than --vocab-cap %d: "
                        "shrinking the cap to %d", len(counts), cap, len(counts) + 2)
        return cls(word for word, _ in counts[: cap - 2])

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self.index

    def encode(self, tokens: Sequence[str], seq_len: int) -> np.ndarray:
        """Ids of ``tokens`` truncated / right-padded to ``seq_len``; shape (seq_len,), int32."""
        ids = np.zeros(seq_len, dtype=np.int32)
        ids[: len(tokens)] = [self.index.get(t, UNK_ID) for t in tokens[:seq_len]]
        return ids

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Words of ``ids``, stopping at nothing: padding shows as ``<pad>``."""
        return [self.words[i] for i in ids]

    def save(self, path: Path) -> None:
        """One word per line, id order, reserved tokens included."""
        with atomic_open(path) as handle:
            handle.writelines(f"{word}\n" for word in self.words)

    @classmethod
    def load(cls, path: Path) -> Vocabulary:
        try:
            words = Path(path).read_text(encoding="utf-8").split("\n")[:-1]
        except FileNotFoundError:
            raise SeqaeError(f"missing vocabulary file: {path}") from None
        if words[:2] != [PAD, UNK]:
            raise SeqaeError(f"corrupt vocabulary file (no {PAD}/{UNK} header): {path}")
        return cls(words[2:])
