"""The settings of one autoencoder: its architecture and its optimisation.

Plain frozen dataclasses, checked on construction and free of Keras, so that the command line
can build and check them before it starts a backend. They are the one source of the defaults.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, ClassVar

from autoencoder.model.losses import LOSS_PARAMS, LOSSES, VMF_LAMBDA1, VMF_LAMBDA2, losses_for
from embeddings.core.params import DEFAULT_SEED, SEED, Flag, Number, OneOf, check_params, flag

# ONE_HOT_CAP: the one-hot kind's default vocabulary cap (AutoencoderConfig.vocab_cap), which
# every user outside stage one reads from here. It is defined with the corpus statistics
# (embeddings.stats), which report the share of tokens outside it and cannot import this package.
from embeddings.stats import ONE_HOT_CAP
from embeddings.store.errors import SeqaeError

if TYPE_CHECKING:
    import keras

KINDS = ("embedding", "onehot", "classic")
# Negatives a step: about 5% of 20 Newsgroups' 22,000 words (Jean et al. used 15k-50k of 500k).
NEGATIVES = 1024
# The one-hot kind's output: the exact softmax, or sampled softmax in training (autoencoder.model.
# sampled); by default sampled above SAMPLED_ABOVE words, 8x the negatives: there the full
# softmax's output layer costs 8x the sampled one's (on `pipe run`'s 18,757 words sampled
# softmax also scored higher than the 2,000-word cap: docs/study.md).
SOFTMAXES = ("full", "sampled")
SAMPLED_ABOVE = 8 * NEGATIVES
# The decoder: every word from the code alone (RepeatVector, the question's model), or from the
# code and the previous word (teacher forcing in training, greedy decoding at inference).
DECODERS = ("repeat", "autoregressive")


@dataclass(frozen=True)
class AutoencoderConfig:
    """Architecture of one autoencoder.

    Parameters
    ----------
    kind : ``embedding`` (word2vec in, vectors out), ``onehot`` (capped baseline, softmax) or
        ``classic`` (the seed's capped model: tanh ``LSTM(cap)`` output).
    loss : a loss of the registry :data:`autoencoder.model.losses.LOSSES` that fits ``kind``:
        ``cosine``, ``mse`` or ``vmf`` (the von Mises-Fisher NLL of Kumar & Tsvetkov 2019) for
        the embedding kind; ``ce`` (cross-entropy) otherwise. None: the first of its kind
        (cosine, ce).
    seq_len : positions per sentence (truncate / right-pad), 50 in the reference setup.
    latent : LSTM units of the encoder (each direction; directions are summed) and the decoder.
    vocab_cap : onehot and classic vocabulary size including PAD and UNK (1,998 words + 2 by
        default); None: the whole word2vec vocabulary (and always for the embedding kind).
    softmax : onehot kind: ``full`` or ``sampled`` softmax in training (scoring is always
        exact); None: sampled when the vocabulary has more than :data:`SAMPLED_ABOVE` entries.
    negatives : onehot kind, sampled softmax: ids drawn a step (K), at most the vocabulary.
    center : embedding kind: subtract the mean word vector before normalising. word2vec vectors
        share a common direction (on small corpora random pairs have cosine ~0.9), which lets a
        cosine loss be low while every output decodes to the same few words; centring removes it
        (Mu & Viswanath 2018, "All-but-the-top"). None for onehot.
    vmf_lambda1, vmf_lambda2 : the vMF loss's regularisers, ``+ lambda1 |ê|`` and
        ``- lambda2 ê.e`` (reg. 1 and reg. 2 of the paper, which used 0.02 and 0.1); None for
        the other losses.
    decoder : ``repeat`` (the code repeated at every position, the question's model) or
        ``autoregressive`` (at step t the code and the input vector of word t-1, a zero vector
        at t = 0; :mod:`autoencoder.model.network`). The classic kind is ``repeat`` only.
    word_dropout : autoregressive decoder: the share of previous words replaced by UNK in
        training (Bowman et al. 2016), so that the decoder leans on the code; None for repeat.
    init_from_vectors : onehot kind: start the one-hot input projection (vocabulary x dim) from the
        run's word2vec vectors, unit length and centred as the embedding kind reads them (still
        trained), so that the baseline gets the same pretraining as the vector models; False:
        Keras's uniform initialisation. None for the other kinds.
    """

    kind: str = "embedding"
    loss: str | None = None
    seq_len: int = 50
    latent: int = 256
    vocab_cap: int | None = ONE_HOT_CAP
    center: bool | None = True
    vmf_lambda1: float | None = VMF_LAMBDA1
    vmf_lambda2: float | None = VMF_LAMBDA2
    softmax: str | None = None
    negatives: int | None = NEGATIVES
    decoder: str = "repeat"
    word_dropout: float | None = 0.0
    init_from_vectors: bool | None = False

    # Each field's type and bounds (the command line's options are built from them).
    PARAMS: ClassVar[dict] = {
        "kind": OneOf(KINDS),
        "loss": OneOf(tuple(LOSSES), optional=True),
        "seq_len": Number(int, 1, 1000),
        "latent": Number(int, 1, 8192),
        "vocab_cap": Number(int, 3, optional=True),
        "center": Flag(optional=True),
        "vmf_lambda1": Number(float, 0, optional=True),
        "vmf_lambda2": Number(float, 0, optional=True),
        "softmax": OneOf(SOFTMAXES, optional=True),
        "negatives": Number(int, 1, optional=True),
        "decoder": OneOf(DECODERS),
        "word_dropout": Number(float, 0, 1, high_open=True, optional=True),
        "init_from_vectors": Flag(optional=True),
    }

    def __post_init__(self) -> None:
        check_params(self, self.PARAMS)
        fits = losses_for(self.kind)
        if self.loss is None:
            object.__setattr__(self, "loss", fits[0])
        if self.loss not in fits:
            raise SeqaeError(f"loss (--loss) {self.loss} does not fit kind (--kind) {self.kind}; "
                             f"use {' or '.join(fits)}")
        # Options of the other kind are cleared, so they never tell two models apart.
        if self.kind == "embedding":
            object.__setattr__(self, "vocab_cap", None)
        else:
            object.__setattr__(self, "center", None)
        if self.kind != "onehot":
            object.__setattr__(self, "init_from_vectors", None)
        elif self.init_from_vectors is None:
            object.__setattr__(self, "init_from_vectors", False)
        self._check_loss_params()
        self._check_softmax()
        if self.decoder == "repeat":
            object.__setattr__(self, "word_dropout", None)
        elif self.kind == "classic":
            raise SeqaeError("decoder (--decoder) autoregressive does not apply to kind classic, "
                             "the seed's model as written")
        elif self.word_dropout is None:
            object.__setattr__(self, "word_dropout", 0.0)

    @property
    def autoregressive(self) -> bool:
        return self.decoder == "autoregressive"

    def _check_loss_params(self) -> None:
        """The loss's own fields (its registry entry's ``params``) are numbers; the other
        losses' are cleared, so they never tell two models apart."""
        own = LOSSES[self.loss].params
        for name in LOSS_PARAMS:
            if name not in own:
                object.__setattr__(self, name, None)
        if any(getattr(self, name) is None for name in own):
            raise SeqaeError(f"{' and '.join(own)} ({', '.join(map(flag, own))}) are numbers "
                             f"for loss {self.loss}, not None")

    def _check_softmax(self) -> None:
        if self.kind != "onehot":
            if self.softmax is not None:
                raise SeqaeError(f"softmax (--softmax) {self.softmax} applies to kind onehot only")
            object.__setattr__(self, "negatives", None)
            return
        if self.negatives is None:
            raise SeqaeError("negatives (--negatives) is a number for kind onehot, not None")

    def softmax_for(self, vocab_size: int) -> str | None:
        """The softmax a onehot model over ``vocab_size`` ids trains with (None: no softmax)."""
        if self.kind != "onehot":
            return None
        return self.softmax or ("sampled" if vocab_size > SAMPLED_ABOVE else "full")

    @property
    def default_name(self) -> str:
        return f"{self.kind}-{self.loss}"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_saved(cls, saved: dict) -> AutoencoderConfig | None:
        """The config a model's ``config.json`` records, options added since then taking their
        defaults; None when it cannot be one (unknown keys, values refused)."""
        try:
            return cls(**saved)
        except (TypeError, OverflowError, SeqaeError):
            return None


OPTIMIZERS = ("adam", "sgd")
MAX_EPOCHS = 100_000  # the most epochs a model trains (state.json's epoch is checked against it)
# TrainConfig fields that change what is written about training, not the weights it makes.
OUTPUT_ONLY = ("trace_every", "eval_every", "eval_sample")
# The learning rate each optimizer gets unless one is given.
DEFAULT_LR = {"adam": 1e-3, "sgd": 1e-2}
# What early stopping and best.keras follow: the lowest validation loss, or the highest validation
# token accuracy (the figure a model is compared by; loss under-reports the softmax models).
MONITORS = ("val_loss", "val_token_accuracy")
# Global: one norm over all gradients (tf.clip_by_global_norm, Keras's ``global_clipnorm``);
# tensor: each gradient tensor on its own (Keras's ``clipnorm``, what the seed's SGD used).
CLIP_SCOPES = ("global", "tensor")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings.

    Parameters
    ----------
    epochs : maximum number of passes over the training sentences.
    batch_size : global batch size in sentences (split across replicas).
    optimizer : ``adam`` or ``sgd`` (with ``momentum`` and ``nesterov``).
    lr : learning rate; None: the optimizer's default in :data:`DEFAULT_LR` (Adam 1e-3, the
        Kingma & Ba default; SGD 1e-2, Keras's).
    clipnorm : clip the gradient norm to this value; 0 disables clipping.
    clip_scope : ``global`` (one norm over every gradient, Keras's ``global_clipnorm``) or
        ``tensor`` (each weight's gradient on its own, Keras's ``clipnorm``).
    patience : stop after this many epochs without a better ``monitor``; 0 never stops early.
    monitor : ``val_loss`` (lowest) or ``val_token_accuracy`` (highest): what early stopping
        waits for and which epoch ``best.keras`` keeps.
    min_seen : no early stopping before this many sentence-passes (training sentences times the
        passes over them, counted over every epoch) in all; None: from the first epoch.
    max_seen : stop once this many sentence-passes have been trained in all: the epoch in
        progress ends at the step that crosses it, is validated and checkpointed (as with
        ``max_time``; an equal amount of training for models of any speed). None: no limit.
    scale_lr : multiply ``lr`` by the number of replicas in sync (the linear scaling rule of
        Goyal et al. 2017, for a global batch that grows with the replicas).
    seed : shuffling and sampling seed.
    max_sentences : train on a seeded subsample of this many sentences (None: all).
    val_sentences : validate on a seeded subsample of this many sentences (None: all).
    trace_every : a row of the step trace (``steps.csv``) every this many steps of an epoch, and
        at its last step; None: 1% of an epoch, at least every 50 steps.
    eval_every : also measure how much the decoder relies on the code
        (:mod:`autoencoder.training.reliance`) every this many steps and at each epoch's end, on the
        first ``eval_sample`` validation sentences, into the trace's rows; None: never.
    max_time : stop once training has run this many seconds in all (validation and
        checkpoints not counted; a resumed run counts its earlier epochs): the epoch in
        progress ends at the step that crosses it, is validated and checkpointed. None: no
        limit. One process only (the clocks of several workers would disagree).
    """

    epochs: int = 20
    batch_size: int = 64
    optimizer: str = "adam"
    lr: float | None = None
    momentum: float = 0.0
    nesterov: bool = False
    clipnorm: float = 1.0
    patience: int = 3
    scale_lr: bool = False
    seed: int = DEFAULT_SEED
    max_sentences: int | None = None
    val_sentences: int | None = 1000
    clip_scope: str = "global"
    max_time: float | None = None
    trace_every: int | None = None
    eval_every: int | None = None
    eval_sample: int = 200
    monitor: str = "val_loss"
    min_seen: int | None = None
    max_seen: int | None = None

    # Each field's type and bounds (the command line's options are built from them).
    PARAMS: ClassVar[dict] = {
        "epochs": Number(int, 1, MAX_EPOCHS),
        "batch_size": Number(int, 1, 1 << 20),
        "optimizer": OneOf(OPTIMIZERS),
        "lr": Number(float, 0, 1e6, low_open=True, optional=True),
        "momentum": Number(float, 0, 1, high_open=True),
        "nesterov": Flag(),
        "clipnorm": Number(float, 0),
        "patience": Number(int, 0),
        "scale_lr": Flag(),
        "seed": SEED,
        "max_sentences": Number(int, 1, optional=True),
        "val_sentences": Number(int, 1, optional=True),
        "clip_scope": OneOf(CLIP_SCOPES),
        "max_time": Number(float, 0, low_open=True, optional=True),
        "trace_every": Number(int, 1, optional=True),
        "eval_every": Number(int, 1, optional=True),
        "eval_sample": Number(int, 1),
        "monitor": OneOf(MONITORS),
        "min_seen": Number(int, 0, optional=True),
        "max_seen": Number(int, 1, optional=True),
    }

    def __post_init__(self) -> None:
        check_params(self, self.PARAMS)
        if self.lr is None:
            object.__setattr__(self, "lr", DEFAULT_LR[self.optimizer])
        if self.nesterov and self.optimizer != "sgd":
            raise SeqaeError("nesterov (--nesterov) applies to optimizer sgd only")

    def check_multi_worker(self) -> None:
        """Refuse the settings one process measures, for a run that spans several."""
        for name in ("max_time", "eval_every"):
            if getattr(self, name) is not None:
                raise SeqaeError(f"--{name.replace('_', '-')} is measured by one process; it does "
                                 "not apply to --strategy multi-worker")

    def learning_rate(self, replicas: int = 1) -> float:
        """The learning rate used with ``replicas`` replicas in sync."""
        return float(self.lr * (replicas if self.scale_lr else 1))

    def make_optimizer(self, replicas: int = 1) -> keras.optimizers.Optimizer:
        import keras  # here, so that the configs can be built and checked before Keras starts

        lr = self.learning_rate(replicas)
        if self.optimizer == "adam":
            return keras.optimizers.Adam(learning_rate=lr)
        return keras.optimizers.SGD(learning_rate=lr, momentum=self.momentum,
                                    nesterov=self.nesterov)
