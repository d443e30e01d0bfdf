"""The losses, one registry: each loss is declared once, as a :class:`Loss` in :data:`LOSSES`.

The config reads it for the values ``loss`` may take, each kind's default and the fields only one
loss reads (the vMF regularisers); the command line for ``--loss``'s choices and help and those
fields' options; the network for the per-position loss and the fewest vector dimensions; the
code-reliance measure (:mod:`autoencoder.training.reliance`) for the constant output a decoder
without the code does best with. Adding a loss is one entry.

The config reads this module before the command line has chosen the Keras backend, so nothing
here imports Keras at import time: each function imports ``keras.ops`` where it computes.

The von Mises-Fisher NLL
------------------------
Kumar & Tsvetkov (2019, "Von Mises-Fisher Loss for Training Sequence to Sequence Models with
Continuous Outputs") read the output vector ``ê`` as a von Mises-Fisher distribution on the unit
sphere of R^m, with mean direction ``ê / |ê|`` and concentration ``kappa = |ê|``, and train with
the negative log-likelihood of the target word's unit vector ``e``::

    NLLvMF(ê; e) = -log C_m(|ê|) - lambda2 * ê.e + lambda1 * |ê|

where ``C_m(kappa) = kappa^(m/2-1) / ((2 pi)^(m/2) I_(m/2-1)(kappa))`` and ``I_v`` is the
modified Bessel function of the first kind. ``lambda1`` (their reg. 1, 0.02) keeps the
concentration from growing without bound; ``lambda2`` (their reg. 2, 0.1 when used) scales the
likelihood term; ``lambda1 = 0, lambda2 = 1`` is the plain NLL.

``log C_m`` is evaluated with the uniform asymptotic (Debye) expansion of ``I_v(v z)`` in the
order ``v = m/2 - 1`` to the fourth Debye term (Abramowitz & Stegun 9.7.7, DLMF 10.41.3),
written so that ``log kappa`` cancels analytically: finite and smooth at every ``kappa >= 0``.
Against scipy over kappa from 1e-3 to 1e5 (tests/test_losses.py), in float64, the largest
relative error is 1.8e-5 at m = 8 (the smallest m allowed), 7e-7 at m = 16, 3e-9 at m = 32 and
at rounding level (1e-15) for m = 300 and 2,000. Gradients come from the backend's
autodiff through the same expression. Only ``keras.ops``: it runs on TensorFlow and JAX inside
the compiled train step.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from autoencoder.config import AutoencoderConfig

MIN_VMF_DIM = 8  # below, the expansion in the order v = m/2 - 1 loses accuracy (4e-3 at m = 4)
# The von Mises-Fisher NLL's regularisers (AutoencoderConfig's defaults): Kumar & Tsvetkov's
# reg. 1 (0.02 |ê|) on, reg. 2 off (the likelihood term at full weight).
VMF_LAMBDA1 = 0.02
VMF_LAMBDA2 = 1.0


def l2_normalize(x):
    """``x`` scaled to unit length along the last axis, as ``tf.math.l2_normalize`` does (a
    zero row stays zero)."""
    from keras import ops

    return x * ops.rsqrt(ops.maximum(ops.sum(ops.square(x), axis=-1, keepdims=True), 1e-12))


def cosine_distance(outputs, targets, config: AutoencoderConfig):
    """``1 - cos(output, target)`` per position: (..., m) outputs, (..., m) unit targets."""
    from keras import ops

    return 1.0 - ops.sum(l2_normalize(outputs) * targets, axis=-1)


def squared_error(outputs, targets, config: AutoencoderConfig):
    """The mean over the m dimensions of the squared error per position: (..., m) both."""
    from keras import ops

    return ops.mean(ops.square(outputs - targets), axis=-1)


def cross_entropy(outputs, ids, config: AutoencoderConfig):
    """Cross-entropy per position of (..., V) outputs against (...) ids: sparse, of the softmax
    (onehot kind); Keras's categorical one as the seed compiled it (classic kind), which divides
    the tanh outputs by their sum and clips the quotient."""
    import keras

    if config.kind == "classic":
        return keras.losses.categorical_crossentropy(
            keras.ops.one_hot(ids, outputs.shape[-1]), outputs)
    return keras.losses.sparse_categorical_crossentropy(ids, outputs)


def _debye_sum(t, v):
    """``1 + u1(t)/v + ... + u4(t)/v^4``: the Debye polynomials of the expansion."""
    t2 = t * t
    u1 = t * (3.0 - 5.0 * t2) / 24.0
    u2 = t2 * (81.0 + t2 * (-462.0 + t2 * 385.0)) / 1152.0
    u3 = t * t2 * (30375.0 + t2 * (-369603.0 + t2 * (765765.0 - 425425.0 * t2))) / 414720.0
    u4 = t2 * t2 * (4465125.0 + t2 * (-94121676.0 + t2 * (349922430.0 + t2 * (
        -446185740.0 + 185910725.0 * t2)))) / 39813120.0
    return 1.0 + (u1 + (u2 + (u3 + u4 / v) / v) / v) / v


def log_vmf_normalizer(kappa, m: int):
    """``log C_m(kappa)``, elementwise, for a tensor of concentrations ``kappa >= 0`` and the
    dimension ``m >= 8`` of the sphere's ambient space.

    With ``v = m/2 - 1``, ``z = kappa / v`` and ``s = sqrt(1 + z^2)``::

        log C_m = v log v - v s + v log(1 + s) - (v + 1) log(2 pi) + log(2 pi v) / 2
                  + log(s) / 2 - log(1 + u1/v + ... + u4/v^4)   (t = 1/s in the u_k)
    """
    from keras import ops

    if m < MIN_VMF_DIM:
        raise ValueError(f"the vMF loss needs vectors of at least {MIN_VMF_DIM} dimensions, got {m}")
    v = m / 2.0 - 1.0
    z = kappa / v
    s = ops.sqrt(1.0 + z * z)
    constant = v * math.log(v) - (v + 1.0) * math.log(2.0 * math.pi) + 0.5 * math.log(2.0 * math.pi * v)
    return (constant - v * s + v * ops.log1p(s) + 0.5 * ops.log(s)
            - ops.log(_debye_sum(1.0 / s, v)))


def vmf_nll(outputs, targets, lambda1: float = VMF_LAMBDA1, lambda2: float = VMF_LAMBDA2):
    """Per-position NLLvMF: ``outputs`` (..., m) the predicted vectors ``ê``, ``targets``
    (..., m) unit word vectors; returns shape (...)."""
    from keras import ops

    # The epsilon keeps the gradient finite at a zero output (d|x|/dx is 0/0 there).
    kappa = ops.sqrt(ops.sum(ops.square(outputs), axis=-1) + 1e-12)
    return (-log_vmf_normalizer(kappa, int(outputs.shape[-1]))
            - lambda2 * ops.sum(outputs * targets, axis=-1) + lambda1 * kappa)


def _vmf(outputs, targets, config: AutoencoderConfig):
    return vmf_nll(outputs, targets, config.vmf_lambda1, config.vmf_lambda2)


def vmf_best_scale(means: np.ndarray, lambda1: float, lambda2: float) -> np.ndarray:
    """(seq_len,) factors: per position, the length of the output along the mean target
    ``means`` (seq_len, m) that minimises the expected vMF NLL over the targets,
    ``-log C_m(k) - k (lambda2 |mean| - lambda1)``, over the mean's length. Found on a log grid
    of lengths (its step is 0.5%: the floor is that close to the best)."""
    from keras import ops

    kappas = np.geomspace(1e-3, 1e6, 4000)
    log_c = ops.convert_to_numpy(log_vmf_normalizer(ops.convert_to_tensor(kappas), means.shape[1]))
    pull = lambda2 * np.linalg.norm(means, axis=1) - lambda1  # (seq_len,)
    expected = -log_c[None, :] - kappas[None, :] * pull[:, None]
    best = kappas[expected.argmin(axis=1)]
    return best / np.maximum(np.linalg.norm(means, axis=1), 1e-12)


def _vmf_floor(means: np.ndarray, config: AutoencoderConfig) -> np.ndarray:
    scale = vmf_best_scale(means, config.vmf_lambda1, config.vmf_lambda2)
    return (means * scale[:, None]).astype(np.float32)


def _mean_itself(means: np.ndarray, config: AutoencoderConfig) -> np.ndarray:
    return means


@dataclass(frozen=True)
class Loss:
    """One loss.

    name : the ``--loss`` value, as a model's ``config.json`` records it.
    kinds : the model kinds (``AutoencoderConfig.kind``) it trains; a kind's default loss is
        the first of :data:`LOSSES` that lists it.
    help : one line of ``--loss``'s help.
    token : the per-position loss, ``token(outputs, targets, config)``: ``outputs`` (..., out)
        the model's, ``targets`` what the model read (the autoencoder's targets are its
        inputs): (..., m) unit word vectors for the embedding kind, (...) ids for the others;
        ``config`` the ``AutoencoderConfig`` (for ``params``). Returns shape (...). Only
        ``keras.ops``: it runs inside the compiled train step.
    params : the ``AutoencoderConfig`` fields only this loss reads, each with its ``--help``
        line: numbers for this loss, cleared to None for the others.
    min_dim : the fewest word-vector dimensions the loss is defined for.
    floor : the code-reliance measure's code-free output (embedding kind): from (seq_len, m)
        float32 mean targets, one a position, and the config, the (seq_len, m) float32 constant
        outputs that do best against the targets. The mean itself by default: MSE's best
        constant, and the best direction is all the cosine loss reads.
    """

    name: str
    kinds: tuple[str, ...]
    help: str
    token: Callable
    params: dict[str, str] = field(default_factory=dict)
    min_dim: int = 1
    floor: Callable[[np.ndarray, AutoencoderConfig], np.ndarray] = _mean_itself


LOSSES: dict[str, Loss] = {loss.name: loss for loss in (
    Loss("cosine", ("embedding",), "1 - the cosine of output and target vector", cosine_distance),
    Loss("mse", ("embedding",), "mean squared error of output and target vector", squared_error),
    Loss("vmf", ("embedding",), "the von Mises-Fisher NLL of Kumar & Tsvetkov 2019", _vmf,
         params={"vmf_lambda1": "weight of the |output| penalty (the paper's reg. 1).",
                 "vmf_lambda2": "weight of the likelihood term (the paper's reg. 2: 0.1)."},
         min_dim=MIN_VMF_DIM, floor=_vmf_floor),
    Loss("ce", ("onehot", "classic"), "cross-entropy over the vocabulary", cross_entropy),
)}
# Every loss's own AutoencoderConfig fields.
LOSS_PARAMS = tuple(name for loss in LOSSES.values() for name in loss.params)


def losses_for(kind: str) -> tuple[str, ...]:
    """The names of the losses that train ``kind``, its default first."""
    return tuple(name for name, loss in LOSSES.items() if kind in loss.kinds)
