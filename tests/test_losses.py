"""The loss registry read by the config and the command line, and the von Mises-Fisher NLL: log
C_m against scipy, its derivative, and a model trained with it."""

from __future__ import annotations

import math

import numpy as np
import pytest
from keras import ops
from scipy.special import gammaln, ive, logsumexp

from autoencoder.data.vocab import PAD_ID
from autoencoder.model.losses import LOSSES, log_vmf_normalizer, vmf_nll
from tests.conftest import SEQ_LEN, TINY_AE, invoke, make_ae

KAPPAS = np.logspace(-3, 5, 33)
DIMS = [8, 16, 300, 2000]
# The largest relative error allowed (measured: 1.8e-5, 7.2e-7, 9e-16, 2e-15).
TOLERANCE = {8: 3e-5, 16: 1e-6, 300: 1e-12, 2000: 1e-12}


def log_iv(v: float, x: float) -> float:
    """log I_v(x) in float64: scipy's scaled Bessel function where it does not underflow, else
    the power series (x small against the order), summed in the log domain."""
    scaled = ive(v, x)
    if scaled > 1e-280:
        return math.log(scaled) + x
    k = np.arange(2000.0)
    return float(logsumexp((2 * k + v) * math.log(x / 2) - gammaln(k + 1) - gammaln(k + v + 1)))


def log_c_reference(m: int, kappa: float) -> float:
    v = m / 2 - 1
    return v * math.log(kappa) - (m / 2) * math.log(2 * math.pi) - log_iv(v, kappa)


def ours(kappa, m: int) -> np.ndarray:
    return ops.convert_to_numpy(log_vmf_normalizer(ops.convert_to_tensor(kappa), m))


@pytest.mark.backend
@pytest.mark.parametrize("m", DIMS)
def test_log_normalizer_matches_scipy(m):
    reference = np.array([log_c_reference(m, k) for k in KAPPAS])
    got = ours(KAPPAS.astype(np.float64), m)
    error = np.abs(got - reference) / np.maximum(1.0, np.abs(reference))
    # JAX computes in float32 unless x64 is enabled: then float32 rounding (~3e-7) is the floor.
    tolerance = TOLERANCE[m] if got.dtype == np.float64 else max(TOLERANCE[m], 1e-6)
    assert error.max() < tolerance, (m, got.dtype, KAPPAS[error.argmax()], error.max())


@pytest.mark.parametrize("m", DIMS)
def test_log_normalizer_is_finite_in_float32_from_zero_to_1e5(m):
    kappa = np.concatenate([[0.0], KAPPAS]).astype(np.float32)
    got = ours(kappa, m)
    assert np.isfinite(got).all()
    # C_m falls as the concentration grows (up to float32 rounding where it is flat).
    assert (np.diff(got) <= 4 * np.finfo(np.float32).eps * np.abs(got[1:])).all()


@pytest.mark.parametrize("m", DIMS)
def test_its_derivative_is_the_bessel_ratio(m):
    """d/dkappa log C_m(kappa) = -I_{m/2}(kappa) / I_{m/2-1}(kappa) (checked by central
    differences of the float64 expression, where the ratio is computable from scipy)."""
    if ours(np.array([1.0]), m).dtype != np.float64:
        pytest.skip("central differences need float64 (JAX without x64 computes in float32)")
    v = m / 2 - 1
    for kappa in (0.5, 10.0, 300.0, 5000.0):
        h = 1e-5 * kappa
        slope = (ours(np.array([kappa + h]), m)[0] - ours(np.array([kappa - h]), m)[0]) / (2 * h)
        ratio = math.exp(log_iv(v + 1, kappa) - log_iv(v, kappa))
        assert slope == pytest.approx(-ratio, rel=max(1e-6, 10 * TOLERANCE[m]), abs=1e-7), (m, kappa)


def test_vmf_nll_is_the_papers_formula():
    rng = np.random.default_rng(0)
    outputs = rng.standard_normal((3, 5, 16)) * 4
    targets = rng.standard_normal((3, 5, 16))
    targets /= np.linalg.norm(targets, axis=-1, keepdims=True)
    got = ops.convert_to_numpy(vmf_nll(ops.convert_to_tensor(outputs), ops.convert_to_tensor(targets),
                                       lambda1=0.02, lambda2=0.1))
    kappa = np.linalg.norm(outputs, axis=-1)
    expected = (-np.vectorize(lambda k: log_c_reference(16, k))(kappa)
                - 0.1 * (outputs * targets).sum(-1) + 0.02 * kappa)
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_the_nll_is_lowest_at_a_concentration_that_grows_with_the_cosine():
    """For an output along a direction at cosine c to the target, the best |ê| is where the
    Bessel ratio equals c (no regulariser): higher for a closer direction."""
    best = []
    for cosine in (0.3, 0.6, 0.9):
        kappas = np.linspace(0.1, 200, 4000)
        loss = -ours(kappas, 16) - kappas * cosine
        best.append(kappas[loss.argmin()])
    assert best[0] < best[1] < best[2]


@pytest.mark.backend
def test_a_model_trains_with_the_vmf_loss_and_reconstructs(tiny_run):
    result = invoke("train-ae", "--run", tiny_run, "--loss", "vmf", *TINY_AE)
    assert result.exit_code == 0, result.output
    assert (tiny_run / "models" / "embedding-vmf" / "best.keras").exists()
    result = invoke("reconstruct", "--run", tiny_run, "--model", "embedding-vmf", "the cat")
    assert result.exit_code == 0, result.output
    assert "nan" not in result.output.lower()


@pytest.mark.backend
@pytest.mark.parametrize("scale", [0.0, 1e25])
def test_a_vmf_output_norm_that_underflows_trains_and_one_that_overflows_is_an_event(
        vectors, splits, tmp_path, scale, monkeypatch):
    """Output norm 0 (kappa at its floor): the loss stays finite and training goes on. Output
    norm beyond float32 (|x|^2 overflows): the step is a non-finite event, recorded like any
    other, and the checkpoint before it stays as it was."""
    import keras

    from autoencoder import NonFiniteLossError, Trainer
    from tests.conftest import fit, make_ae, read_json

    ae = make_ae(vectors, loss="vmf")
    fit(ae, splits, tmp_path / "m", epochs=1)
    saved = (tmp_path / "m" / "last.keras").read_bytes()
    real = Trainer._make_train_step

    def scaled_output(self, *args, **kwargs):  # after --resume has loaded last.keras
        output = next(layer for layer in reversed(self.autoencoder.model.layers)
                      if layer.weights)
        output.set_weights([w * scale for w in output.get_weights()])
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "_make_train_step", scaled_output)
    if scale == 0.0:
        trainer = fit(ae, splits, tmp_path / "m", epochs=2, resume=True)
        assert np.isfinite(trainer.history_[-1]["train_loss"])
        return
    with pytest.raises(NonFiniteLossError):
        fit(ae, splits, tmp_path / "m", epochs=2, resume=True)
    state = read_json(tmp_path / "m" / "state.json")
    assert state["stopped"] == "non-finite" and state["non_finite"]["epoch"] == 2
    assert (tmp_path / "m" / "last.keras").read_bytes() == saved
    last = keras.saving.load_model(tmp_path / "m" / "last.keras", safe_mode=True, compile=False)
    assert all(np.isfinite(w).all() for w in last.get_weights())


def test_the_config_and_the_command_line_take_their_losses_from_the_registry():
    from autoencoder.config import KINDS, AutoencoderConfig
    from pipelines.cli.train import train_ae

    options = {p.name: p for p in train_ae.params}
    assert (set(AutoencoderConfig.PARAMS["loss"].choices) == set(options["loss"].type.choices)
            == set(LOSSES))
    assert {kind for loss in LOSSES.values() for kind in loss.kinds} == set(KINDS)
    for name, loss in LOSSES.items():
        assert f"{name} ({', '.join(loss.kinds)}): {loss.help}" in options["loss"].help
        assert set(loss.params) <= set(options)


@pytest.mark.backend
@pytest.mark.parametrize("name, kind", [(name, kind) for name, loss in LOSSES.items()
                                        for kind in loss.kinds])
def test_every_registered_loss_builds_and_gives_a_finite_loss(vectors, name, kind):
    ae = make_ae(vectors, kind=kind, loss=name)
    ids = np.random.default_rng(0).integers(2, 20, size=(3, SEQ_LEN)).astype(np.int32)
    ids[:, -2:] = PAD_ID
    loss = ops.convert_to_numpy(ae.token_loss(ids, ae.model(ae.model_inputs(ids))))
    assert loss.shape == ids.shape and np.isfinite(loss).all() and (loss[:, :-2] != 0).all()
