"""The study's models and sizes: small frozen dataclasses, the single source of the study's
defaults and choices (``pipe study`` reads them). Nothing here imports Keras."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar

from autoencoder.config import AutoencoderConfig, TrainConfig
from embeddings.core.io import SeqaeError
from embeddings.core.params import Number, check_params
from embeddings.stats import ONE_HOT_CAP

PHASES = ("budget", "converged")


@dataclass(frozen=True)
class StudyModel:
    """One model of the study: its architecture kind and how it is optimised.

    ``vocab_cap`` None means the whole word2vec vocabulary (onehot only); ``group`` is
    ``models`` (the main comparison) or ``optimizers`` (the optimizer question, embedding-cosine
    each time). ``converge`` False: trained to the equal budget only (the side questions: the
    seed's model and the optimizers), not on to early stopping. Settings not given are seqae's
    defaults (Adam 0.001, global clipnorm 1.0). ``decoder``: ``repeat`` (the question's) or
    ``autoregressive`` (the code and the previous word at each step), with ``word_dropout``.
    """

    name: str
    kind: str
    loss: str
    description: str
    group: str = "models"
    vocab_cap: int | None = ONE_HOT_CAP
    softmax: str | None = None
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.0
    nesterov: bool = False
    clipnorm: float = 1.0
    clip_scope: str = "global"
    converge: bool = True
    decoder: str = "repeat"
    word_dropout: float | None = None

    @property
    def phases(self) -> tuple[str, ...]:
        """The study phases this model is trained through (:data:`PHASES`)."""
        return PHASES if self.converge else PHASES[:1]


STUDY_MODELS = (
    StudyModel("embedding-cosine", "embedding", "cosine",
               "word2vec in and out, cosine loss, nearest-neighbour decoding (the proposal)"),
    StudyModel("embedding-mse", "embedding", "mse", "the same with a mean squared error loss"),
    StudyModel("embedding-vmf", "embedding", "vmf",
               "the same with the von Mises-Fisher NLL (Kumar & Tsvetkov 2019), reg. 1 at 0.02"),
    StudyModel("onehot-2000", "onehot", "ce",
               "one-hot over the 1,998 most frequent words, softmax, cross-entropy"),
    StudyModel("onehot-full", "onehot", "ce",
               "one-hot over the whole word2vec vocabulary, softmax, cross-entropy",
               vocab_cap=None, softmax="full"),
    StudyModel("onehot-sampled", "onehot", "ce",
               "one-hot over the whole word2vec vocabulary, trained with sampled softmax (1,024 "
               "log-uniform negatives a step), scored with the full softmax",
               vocab_cap=None, softmax="sampled"),
    StudyModel("embedding-cosine-ar", "embedding", "cosine",
               "embedding-cosine with the autoregressive decoder (the code and the previous "
               "word at each step; greedy decoding)", decoder="autoregressive"),
    StudyModel("embedding-mse-ar", "embedding", "mse",
               "embedding-mse with the autoregressive decoder", decoder="autoregressive"),
    StudyModel("onehot-sampled-ar", "onehot", "ce",
               "onehot-sampled with the autoregressive decoder (the previous word's row of the "
               "one-hot projection at each step)", vocab_cap=None, softmax="sampled",
               decoder="autoregressive"),
    StudyModel("classic-seed", "classic", "ce",
               "the seed's model as written: LSTM(2000) tanh output, categorical_crossentropy, "
               "SGD(lr=0.04, momentum=0.9, nesterov=True, clipnorm=1.0)",
               optimizer="sgd", lr=0.04, momentum=0.9, nesterov=True, clip_scope="tensor",
               converge=False),
    StudyModel("opt-sgd", "embedding", "cosine", "embedding-cosine with SGD(lr=0.01)",
               group="optimizers", optimizer="sgd", lr=0.01, clipnorm=0.0, converge=False),
    StudyModel("opt-sgd-nesterov", "embedding", "cosine",
               "embedding-cosine with SGD(lr=0.04, momentum=0.9, nesterov=True, clipnorm=1.0)",
               group="optimizers", optimizer="sgd", lr=0.04, momentum=0.9, nesterov=True,
               clip_scope="tensor", converge=False),
    StudyModel("opt-adam", "embedding", "cosine", "embedding-cosine with Adam(lr=0.001)",
               group="optimizers", clipnorm=0.0, converge=False),
)
MODEL_NAMES = tuple(m.name for m in STUDY_MODELS)


def converges(settings: dict) -> bool:
    """Whether a report's model (its recorded ``settings``) was trained on past the budget;
    reports from before side models stopped at the budget have no ``converge``: every model
    was."""
    return settings.get("converge", True)


@dataclass(frozen=True)
class StudyConfig:
    """Sizes and limits of a study; defaults are the reference setup of the question.

    Parameters
    ----------
    models : names from :data:`MODEL_NAMES` to train, in that order.
    seq_len, latent : the architecture (tokens per sentence; LSTM units).
    batch_size : sentences per step, 64 as in the question, for every model.
    budget : the equal training time: seconds of training (validation not counted) after which
        every model is scored.
    max_time : the most seconds of training a model gets in all, the budget phase's included,
        as ``TrainConfig.max_time`` (None: early stopping and ``epochs`` only).
    epochs, patience : the convergence phase ends after ``epochs`` epochs or ``patience``
        epochs without a lower validation loss.
    max_sentences : train on a seeded subsample of this many sentences (None: all).
    val_sentences : validation sentences per epoch (early stopping, curves).
    eval_sentences : test sentences scored (None: the whole test split).
    eval_every : steps between code-reliance measurements on the step trace
        (``TrainConfig.eval_every``: own-code, swapped-code and code-free losses on 200
        validation sentences), which the report reads the curve with; None: never.
    seed : one seed for sampling, shuffling and initialisation.
    """

    models: tuple[str, ...] = MODEL_NAMES
    seq_len: int = 50
    latent: int = 256
    batch_size: int = 64
    budget: float = 70.0
    max_time: float | None = None
    epochs: int = 100
    patience: int = 3
    max_sentences: int | None = None
    val_sentences: int | None = 2000
    eval_sentences: int | None = None
    eval_every: int | None = 100
    seed: int = 0

    # Each field's type and bounds: the models' own where the study passes a value on to them.
    PARAMS: ClassVar[dict] = {
        **{name: AutoencoderConfig.PARAMS[name] for name in ("seq_len", "latent")},
        **{name: TrainConfig.PARAMS[name] for name in (
            "batch_size", "max_time", "epochs", "max_sentences", "val_sentences", "eval_every",
            "seed")},
        "budget": Number(float, 0, low_open=True),
        "patience": Number(int, 1),
        "eval_sentences": Number(int, 1, optional=True),
    }

    def __post_init__(self) -> None:
        check_params(self, self.PARAMS)
        if isinstance(self.models, str) or not all(isinstance(m, str) for m in self.models):
            raise SeqaeError(f"models (--models) must be a tuple of model names, got {self.models!r}")
        object.__setattr__(self, "models", tuple(self.models))
        unknown = [m for m in self.models if m not in MODEL_NAMES]
        if unknown or not self.models:
            raise SeqaeError(f"--models takes names from {', '.join(MODEL_NAMES)}; "
                             f"got {', '.join(unknown) or 'none'}")
        if self.max_time is not None and self.max_time < self.budget:
            raise SeqaeError(f"--max-time ({self.max_time:g} s) must not be below --budget "
                             f"({self.budget:g} s)")

    def configs(self, model: StudyModel, phase: str) -> tuple:
        """The ``AutoencoderConfig`` and ``TrainConfig`` of ``model`` in ``phase``
        (``budget`` or ``converged``)."""
        ae = AutoencoderConfig(kind=model.kind, loss=model.loss, seq_len=self.seq_len,
                               latent=self.latent, vocab_cap=model.vocab_cap,
                               softmax=model.softmax, decoder=model.decoder,
                               word_dropout=model.word_dropout)
        train = TrainConfig(
            epochs=self.epochs, batch_size=self.batch_size, optimizer=model.optimizer,
            lr=model.lr, momentum=model.momentum, nesterov=model.nesterov,
            clipnorm=model.clipnorm, clip_scope=model.clip_scope,
            patience=self.patience, seed=self.seed, max_sentences=self.max_sentences,
            val_sentences=self.val_sentences, eval_every=self.eval_every,
            max_time=self.budget if phase == "budget" else self.max_time)
        return ae, train

    def to_dict(self) -> dict:
        return {**asdict(self), "models": list(self.models)}

    @staticmethod
    def upgrade(saved: dict) -> dict:
        """A study config as an earlier version saved it (``budget_s``, ``max_time_s``), with
        today's names; other keys as they are."""
        return {_RENAMED.get(key, key): value for key, value in saved.items()}


# Names of the time settings before they took TrainConfig's one name for the training-time cap.
_RENAMED = {"budget_s": "budget", "max_time_s": "max_time"}
