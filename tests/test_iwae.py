"""IWAE: its loss is the k-sample importance-weighted bound, the same one log_likelihood uses."""

import math

import keras
import numpy as np
import pytest
from test_likelihood import DATA, LATENT, imperfect_vae, linear_gaussian, model_samples

from keras_vae import VAE, architectures
from keras_vae.models.iwae import IWAE


def linear_iwae(num_samples):
    """The linear-Gaussian networks of test_likelihood, trained as an IWAE."""
    w, b = linear_gaussian()
    vae = imperfect_vae(w, b)
    iwae = IWAE(vae.encoder, vae.decoder, num_samples=num_samples, reconstruction_loss="gaussian")
    return iwae, w, b


def numpy_bound(x, w, b, z_mean, z_log_var, eps):
    """log (1/k) sum_k N(x; W z_k + b, I) N(z_k; 0, I) / q(z_k | x), float64, per example."""
    z = z_mean[:, None] + np.exp(0.5 * z_log_var)[:, None] * eps
    log_px_z = -0.5 * np.sum((x[:, None] - (z @ w.T + b)) ** 2 + math.log(2 * math.pi), -1)
    log_pz = -0.5 * np.sum(z**2 + math.log(2 * math.pi), -1)
    log_qz = -0.5 * np.sum(eps**2 + z_log_var[:, None] + math.log(2 * math.pi), -1)
    log_w = log_px_z + log_pz - log_qz
    top = log_w.max(axis=1)
    return top + np.log(np.mean(np.exp(log_w - top[:, None]), axis=1)), log_px_z


@pytest.mark.parametrize("k", [1, 5])
def test_the_loss_is_the_k_sample_bound(k):
    iwae, w, b = linear_iwae(k)
    x = model_samples(w, b, 16, seed=1)
    eps = np.random.default_rng(2).standard_normal((16, k, LATENT)).astype("float32")
    _, terms = iwae.compute_loss_terms(keras.ops.convert_to_tensor(x), noise=eps)
    z_mean, z_log_var = (a.astype("float64") for a in iwae.encode(x))
    bound, log_px_z = numpy_bound(x.astype("float64"), w, b, z_mean, z_log_var, eps)
    terms = {name: float(keras.ops.convert_to_numpy(v)) for name, v in terms.items()}
    assert terms["loss"] == pytest.approx(-bound.mean(), abs=1e-4)
    assert terms["reconstruction_loss"] == pytest.approx(-log_px_z.mean(), abs=1e-4)
    kl = 0.5 * (z_mean**2 + np.exp(z_log_var) - z_log_var - 1).sum(axis=1)
    assert terms["kl_loss"] == pytest.approx(kl.mean(), abs=1e-4)


def test_the_training_bound_is_what_log_likelihood_estimates():
    iwae, w, b = linear_iwae(50)
    x = model_samples(w, b, 256, seed=3)
    iwae.compile(optimizer="adam")
    loss = iwae.evaluate(x, batch_size=256, verbose=0, return_dict=True)["loss"]
    estimate = iwae.log_likelihood(x, num_samples=50, seed=0)
    # Two independent 50-sample estimates of the same bound: equal up to their noise.
    assert loss == pytest.approx(-estimate.mean(), abs=0.02)
    assert -loss > iwae.elbo(x, num_samples=50, seed=0).mean() + 0.05


def test_training_raises_the_bound_on_binary_data():
    rng = np.random.default_rng(0)
    prototypes = rng.random((4, 24)) > 0.5
    x = (prototypes[rng.integers(0, 4, 512)] ^ (rng.random((512, 24)) < 0.05)).astype("float32")
    iwae = IWAE(*architectures.mlp((24,), latent_dim=2, hidden_units=(32,)), num_samples=5, seed=0)
    iwae.compile(optimizer=keras.optimizers.Adam(0.01))
    before = iwae.log_likelihood(x[:128], num_samples=100, seed=0).mean()
    history = iwae.fit(x, epochs=5, batch_size=64, verbose=0).history
    after = iwae.log_likelihood(x[:128], num_samples=100, seed=0).mean()
    assert history["loss"][-1] < history["loss"][0]
    assert after > before + 2.0
    assert np.isfinite(history["kl_loss"]).all()


def test_config_round_trip_and_bounds():
    iwae, _, _ = linear_iwae(7)
    config = iwae.get_config()
    assert config["num_samples"] == 7 and "beta" not in config and "free_bits" not in config
    assert IWAE.from_config(config).num_samples == 7
    encoder, decoder = architectures.mlp((DATA,), latent_dim=LATENT, hidden_units=(4,))
    for bad in (0, 5001, 2.5, True, None):
        with pytest.raises(ValueError, match="`num_samples` must be"):
            IWAE(encoder, decoder, num_samples=bad)
    with pytest.raises(ValueError, match="IWAE's `reconstruction_loss`.*'mse'"):
        IWAE(encoder, decoder, reconstruction_loss="mse")
    assert IWAE.has_likelihood and IWAE.generative and issubclass(IWAE, VAE)
