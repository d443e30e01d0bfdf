"""The study's models and sizes: small frozen dataclasses, the single source of the study's
defaults and choices (``pipe study`` reads them). Nothing here imports Keras."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import ClassVar

from autoencoder.config import DEFAULT_LR, AutoencoderConfig, TrainConfig
from autoencoder.model.losses import LOSS_PARAMS
from embeddings.core.params import SEED, Flag, Number, OneOf, Several, check_params
from embeddings.store.errors import SeqaeError

# The phases of a run: the learning-rate sweep (seed 0 of every rate, a short equal budget), the
# equal budget, and training on to convergence.
PHASES = ("sweep", "budget", "converged")
SCORED = PHASES[1:]  # the sweep is chosen on validation, never on the test split


@dataclass(frozen=True)
class StudyModel:
    """One model of the study: its architecture kind and how it is optimised.

    ``vocab_cap`` None means the whole word2vec vocabulary (onehot only); ``group`` is
    ``models`` (the main comparison) or ``optimizers`` (the optimizer question, embedding-cosine
    each time). ``converge`` False: trained to the equal budget only (the side questions: the
    seed's model and the optimizers), not on to early stopping. Settings not given are seqae's
    defaults (:class:`AutoencoderConfig`'s and :class:`TrainConfig`'s, read from them).
    ``decoder``: ``repeat`` (the question's) or ``autoregressive`` (the code and the previous
    word at each step), with ``word_dropout``.
    ``init_from_vectors``: the one-hot input projection starts from the run's word2vec vectors.
    ``vmf_lambda1``, ``vmf_lambda2``: the vMF loss's regularisers (None: seqae's defaults).
    """

    name: str
    kind: str
    loss: str
    description: str
    group: str = "models"
    vocab_cap: int | None = AutoencoderConfig.vocab_cap
    softmax: str | None = AutoencoderConfig.softmax
    optimizer: str = TrainConfig.optimizer
    lr: float = DEFAULT_LR[TrainConfig.optimizer]
    momentum: float = TrainConfig.momentum
    nesterov: bool = TrainConfig.nesterov
    clipnorm: float = TrainConfig.clipnorm
    clip_scope: str = TrainConfig.clip_scope
    converge: bool = True
    decoder: str = AutoencoderConfig.decoder
    word_dropout: float | None = None
    init_from_vectors: bool = AutoencoderConfig.init_from_vectors
    vmf_lambda1: float | None = None
    vmf_lambda2: float | None = None

    @property
    def sweeps(self) -> bool:
        """Whether the learning-rate sweep chooses this model's ``lr`` (the main comparison's
        Adam models; the side models keep the settings they stand for)."""
        return self.group == "models" and self.optimizer == "adam"


# The fair vMF runs' reg. 1 weights: the paper's 0.02, a quarter and five times it.
VMF_LAMBDA1S = (0.005, 0.02, 0.1)

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
    StudyModel("onehot-sampled-w2v", "onehot", "ce",
               "onehot-sampled with its input projection started from the run's word2vec "
               "vectors (the vector models' pretraining)", vocab_cap=None, softmax="sampled",
               init_from_vectors=True),
    StudyModel("onehot-sampled-ar-w2v", "onehot", "ce",
               "onehot-sampled-ar with its input projection started from the word2vec vectors",
               vocab_cap=None, softmax="sampled", decoder="autoregressive",
               init_from_vectors=True),
    *(StudyModel(f"vmf-lambda{lambda1:g}", "embedding", "vmf",
                 f"the vMF NLL as Kumar & Tsvetkov ran it (reg. 1 at {lambda1:g}, reg. 2 at 0.1), "
                 "global clipnorm 5 (the earlier 100-d vMF model's gradient norms were about "
                 "20)", group="vmf",
                 vmf_lambda1=lambda1, vmf_lambda2=0.1, clipnorm=5.0, converge=False)
      for lambda1 in VMF_LAMBDA1S),
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


# The models a study trains unless told otherwise: both decoders, vectors against the one-hot
# baseline over the whole vocabulary, with and without the same pretraining.
MAIN_MODELS = ("embedding-cosine", "embedding-cosine-ar", "onehot-sampled-w2v",
               "onehot-sampled-ar-w2v", "onehot-sampled-ar")


@dataclass(frozen=True)
class StudyConfig:
    """Sizes and rules of a study; the axis every model is compared on is sentence-passes
    (optimizer steps x batch size), equal for all, with wall time reported beside it.

    Parameters
    ----------
    models : names from :data:`MODEL_NAMES` to train, in that order.
    seq_len, latent : the architecture (tokens per sentence; LSTM units).
    batch_size : sentences per step, 64 as in the question, for every model.
    seeds : every model is trained once per seed (data subsample, order, initialisation); the
        tables give the mean and a 95% interval over them.
    lrs : the learning-rate sweep of the Adam models of the main comparison: each rate trains
        ``sweep`` sentence-passes on the first seed, and the one with the best validation token
        accuracy is every seed's rate (one rate: no sweep). The side models keep their own.
    sweep : sentence-passes of a sweep run; the chosen rate's run goes on to ``budget``.
    budget : sentence-passes every model trains before it is scored at the equal budget, with
        no early stopping inside it.
    converge : go on from the budget to convergence and score again (the main models).
    patience, min_passes : convergence ends after ``patience`` sentence-passes without a
        better validation token accuracy (rounded up to whole epochs), never before
        ``min_passes`` in all; or at ``max_passes``, ``epochs`` or ``max_time``.
    max_passes : the most sentence-passes of a model in all (None: no limit).
    max_time : the convergence phase's safety cap: it ends once a run has trained this many
        seconds in all, its earlier phases included (None: no cap).
    max_sentences : train on a seeded subsample of this many sentences (None: all).
    val_sentences : validation sentences per epoch (early stopping, checkpoints, the sweep).
    eval_sentences : test sentences scored, the same for every run (None: the whole split).
    eval_every : steps between code-reliance measurements on the step trace
        (``TrainConfig.eval_every``); None: never.
    """

    models: tuple[str, ...] = MAIN_MODELS
    seq_len: int = AutoencoderConfig.seq_len
    latent: int = AutoencoderConfig.latent
    batch_size: int = TrainConfig.batch_size
    seeds: tuple[int, ...] = (0, 1, 2)
    lrs: tuple[float, ...] = (3e-4, 1e-3, 3e-3)
    sweep: int = 100_000
    budget: int = 300_000
    converge: bool = True
    patience: int = 200_000
    min_passes: int = 600_000
    max_passes: int | None = None
    epochs: int = 1000
    max_time: float | None = TrainConfig.max_time
    max_sentences: int | None = TrainConfig.max_sentences
    val_sentences: int | None = 2000
    eval_sentences: int | None = None
    eval_every: int | None = 100

    # Each field's type and bounds: the models' own where the study passes a value on to them
    # (a rate or a seed, never None inside a list: the rate rule's None is the optimizer's own).
    PARAMS: ClassVar[dict] = {
        "models": Several(OneOf(MODEL_NAMES)),
        "seeds": Several(SEED),
        "lrs": Several(replace(TrainConfig.PARAMS["lr"], optional=False)),
        **{name: AutoencoderConfig.PARAMS[name] for name in ("seq_len", "latent")},
        **{name: TrainConfig.PARAMS[name] for name in (
            "batch_size", "max_time", "epochs", "max_sentences", "val_sentences", "eval_every")},
        "sweep": Number(int, 1),
        "budget": Number(int, 1),
        "converge": Flag(),
        "patience": Number(int, 1),
        "min_passes": Number(int, 0),
        "max_passes": Number(int, 1, optional=True),
        "eval_sentences": Number(int, 1, optional=True),
    }

    def __post_init__(self) -> None:
        check_params(self, self.PARAMS)
        sweeping = any(m.sweeps for m in self.study_models)
        if self.sweep > self.budget and len(self.lrs) > 1 and sweeping:
            raise SeqaeError(f"--sweep ({self.sweep:,}) must not be above --budget "
                             f"({self.budget:,}): the chosen rate's run goes on to the budget")
        if self.max_passes is not None and self.max_passes < self.budget:
            raise SeqaeError(f"--max-passes ({self.max_passes:,}) must not be below --budget "
                             f"({self.budget:,})")

    @property
    def study_models(self) -> tuple[StudyModel, ...]:
        """The :data:`STUDY_MODELS` that ``models`` names, in that table's order."""
        return tuple(m for m in STUDY_MODELS if m.name in self.models)

    def run_name(self, model: str, lr: float, seed: int) -> str:
        """The model folder of one run: ``MODEL-lrLR-seedSEED``, a plain model name (a rate
        from 999,999.5 on is written ``1e06``, not ``1e+06``)."""
        return f"{model}-lr{lr:g}-seed{seed}".replace("+", "")

    def lrs_of(self, model: StudyModel) -> tuple[float, ...]:
        """The rates ``model`` may train with: the sweep's, or its own."""
        return self.lrs if model.sweeps else (model.lr,)

    def configs(self, model: StudyModel, phase: str, lr: float, seed: int,
                train_sentences: int) -> tuple:
        """The ``AutoencoderConfig`` and ``TrainConfig`` of one run of ``model`` in ``phase``
        (:data:`PHASES`); ``train_sentences``: the sentences of an epoch, which turns the
        patience in sentence-passes into epochs."""
        ae = AutoencoderConfig(
            kind=model.kind, loss=model.loss, seq_len=self.seq_len, latent=self.latent,
            vocab_cap=model.vocab_cap, softmax=model.softmax, decoder=model.decoder,
            word_dropout=model.word_dropout, init_from_vectors=model.init_from_vectors,
            **{k: getattr(model, k) for k in LOSS_PARAMS if getattr(model, k) is not None})
        limits = {"sweep": dict(max_seen=self.sweep, patience=0),
                  "budget": dict(max_seen=self.budget, patience=0),
                  "converged": dict(max_seen=self.max_passes, min_seen=self.min_passes,
                                    patience=self.patience_epochs(train_sentences),
                                    max_time=self.max_time)}[phase]
        train = TrainConfig(
            epochs=self.epochs, batch_size=self.batch_size, optimizer=model.optimizer,
            lr=lr, momentum=model.momentum, nesterov=model.nesterov,
            clipnorm=model.clipnorm, clip_scope=model.clip_scope, seed=seed,
            max_sentences=self.max_sentences, val_sentences=self.val_sentences,
            eval_every=self.eval_every, monitor="val_token_accuracy", **limits)
        return ae, train

    def patience_epochs(self, train_sentences: int) -> int:
        """``patience`` in whole epochs of ``train_sentences`` (rounded up): validation runs
        at each epoch's end."""
        return -(-self.patience // max(train_sentences, 1))

    def to_dict(self) -> dict:
        return {**asdict(self), **{k: list(getattr(self, k)) for k in ("models", "seeds", "lrs")}}
