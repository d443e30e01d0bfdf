"""The keyword arguments of the library calls that take no config object, declared once.

Each call reads its defaults from its small frozen dataclass here and checks its arguments by
building one (one :class:`~embeddings.store.errors.SeqaeError` line naming the keyword and its
option, before any work); ``pipe`` builds the same options from the same declarations
(:func:`pipelines.cli.options.config_option`). Nothing here imports Keras.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from autoencoder.backends import STRATEGIES
from embeddings.core.params import DEFAULT_SEED, SEED, Number, OneOf, check_params
from embeddings.prepare import SPLITS


@dataclass(frozen=True)
class _Checked:
    PARAMS: ClassVar[dict] = {}

    def __post_init__(self) -> None:
        check_params(self, self.PARAMS)


@dataclass(frozen=True)
class CompareParams(_Checked):
    """:func:`~pipelines.compare.compare_models`, ``run_compare`` and ``run_pipeline``: the
    split scored, a seeded subsample of ``eval_sentences`` of its sentences (None: all) and the
    seed of that subsample and of the sample reconstructions."""

    split: str = "test"
    eval_sentences: int | None = None
    seed: int = DEFAULT_SEED

    PARAMS: ClassVar[dict] = {"split": OneOf(SPLITS),
                              "eval_sentences": Number(int, 1, optional=True), "seed": SEED}


@dataclass(frozen=True)
class ReconstructParams(_Checked):
    """:func:`~pipelines.reconstruct.reconstruct_sentence`: candidates per position."""

    top_k: int = 1

    PARAMS: ClassVar[dict] = {"top_k": Number(int, 1, 100)}


@dataclass(frozen=True)
class NeighboursParams(_Checked):
    """:func:`~pipelines.codes.nearest_sentences`: sentences returned."""

    top_k: int = 5

    PARAMS: ClassVar[dict] = {"top_k": Number(int, 1, 10_000)}


@dataclass(frozen=True)
class InterpolateParams(_Checked):
    """:func:`~pipelines.codes.interpolate`: codes on the line, both ends included."""

    steps: int = 5

    PARAMS: ClassVar[dict] = {"steps": Number(int, 2, 1000)}


@dataclass(frozen=True)
class EncodeParams(_Checked):
    """:func:`~pipelines.codes.encode_file`: the run's split to encode (None: a file)."""

    split: str | None = None

    PARAMS: ClassVar[dict] = {"split": OneOf(SPLITS, optional=True)}


@dataclass(frozen=True)
class DistributeParams(_Checked):
    """Where ``pipe train-ae`` trains: the ``strategy`` (one of :data:`STRATEGIES`), the
    devices it mirrors over (``replicas``, None: every GPU, else one CPU) and the local workers
    of ``--cluster-demo`` (None: no demo)."""

    strategy: str = "default"
    replicas: int | None = None
    cluster_demo: int | None = None

    PARAMS: ClassVar[dict] = {"strategy": OneOf(STRATEGIES),
                              "replicas": Number(int, 1, 64, optional=True),
                              "cluster_demo": Number(int, 1, 64, optional=True)}
