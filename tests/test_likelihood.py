"""The likelihood estimators against closed forms, on the current backend.

A linear-Gaussian VAE (linear decoder, N(outputs, I) likelihood, N(0, I) prior) has the exact
marginal ``p(x) = N(b, W W^T + I)``; a CVAE with class means ``mu_y`` has
``p(x | y) = N(W mu_y + b, W W^T + I)``. Their encoders are deliberately imperfect (the exact
posterior is not what they output), so the importance weights matter. A numpy float64 copy of
the estimator, drawing the same numpy noise, pins the numbers: each backend reproduces it.
"""

import math

import keras
import numpy as np
import pytest

from keras_vae import AE, CVAE, VAE, InvalidInputError, architectures, backends, likelihood, losses
from keras_vae.backends import _shared

DATA, LATENT, CLASSES = 4, 2, 3


def linear_gaussian(seed=0):
    """(W, b): a decoder x = W z + b + noise."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(DATA, LATENT)), rng.normal(size=DATA) * 0.5


def posterior(w):
    """Exact posterior covariance and the matrix A of its mean A (x - b - W m) + m."""
    covariance = np.linalg.inv(np.eye(LATENT) + w.T @ w)
    return covariance, covariance @ w.T


def exact_log_px(x, w, b, means=None):
    """log N(x; W m + b, W W^T + I) per example (m = 0 without class means)."""
    centre = b if means is None else means @ w.T + b
    covariance = w @ w.T + np.eye(DATA)
    centred = x - centre
    solved = np.linalg.solve(covariance, centred.T).T
    _, logdet = np.linalg.slogdet(covariance)
    return -0.5 * (DATA * math.log(2 * math.pi) + logdet + np.sum(centred * solved, axis=1))


def decoder_network(w, b):
    decoder = keras.Sequential([keras.Input((LATENT,)), keras.layers.Dense(DATA)])
    decoder.layers[-1].set_weights([w.T.astype("float32"), b.astype("float32")])
    return decoder


def imperfect_vae(w, b, mean_scale=0.7, log_var_shift=0.4):
    """A VAE whose encoder outputs a shrunk posterior mean and a too-wide diagonal variance."""
    covariance, a = posterior(w)
    inputs = keras.Input((DATA,))
    mean = keras.layers.Dense(LATENT, name="mean")(inputs)
    log_var = keras.layers.Dense(LATENT, name="log_var")(inputs)
    encoder = keras.Model(inputs, [mean, log_var])
    kernel = (mean_scale * a).T
    encoder.get_layer("mean").set_weights([kernel, -b @ kernel])
    encoder.get_layer("log_var").set_weights(
        [np.zeros((DATA, LATENT)), np.log(np.diag(covariance)) + log_var_shift]
    )
    return VAE(encoder, decoder_network(w, b), reconstruction_loss="gaussian", seed=0)


def imperfect_cvae(w, b, class_means, mean_scale=0.7, log_var_shift=0.4):
    """A CVAE (encoder sees the one-hot label) with the prior N(mu_y, I)."""
    covariance, a = posterior(w)
    x_in, y_in = keras.Input((DATA,)), keras.Input((CLASSES,))
    from_x = keras.layers.Dense(LATENT, name="from_x")(x_in)
    from_y = keras.layers.Dense(LATENT, use_bias=False, name="from_y")(y_in)
    mean = keras.layers.Add()([from_x, from_y])
    log_var = keras.layers.Dense(LATENT, name="log_var")(x_in)
    encoder = keras.Model([x_in, y_in], [mean, log_var])
    kernel = (mean_scale * a).T
    encoder.get_layer("from_x").set_weights([kernel, -b @ kernel])
    # The exact mean is A (x - b) + (I - A W) mu_y; this one scales both parts.
    encoder.get_layer("from_y").set_weights([mean_scale * class_means @ (np.eye(LATENT) - a @ w).T])
    encoder.get_layer("log_var").set_weights(
        [np.zeros((DATA, LATENT)), np.log(np.diag(covariance)) + log_var_shift]
    )
    cvae = CVAE(
        encoder,
        decoder_network(w, b),
        num_classes=CLASSES,
        condition_encoder=True,
        reconstruction_loss="gaussian",
        seed=0,
    )
    cvae.prior.class_means.assign(class_means.astype("float32"))
    return cvae


def model_samples(w, b, n, seed, means=None):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, LATENT)) + (0 if means is None else means)
    return (z @ w.T + b + rng.normal(size=(n, DATA))).astype("float32")


@pytest.fixture(scope="module")
def linear_model():
    w, b = linear_gaussian()
    return imperfect_vae(w, b), w, b, model_samples(w, b, 64, seed=1)


def test_linear_gaussian_vae_matches_the_closed_form_within_005_nats(linear_model):
    vae, w, b, x = linear_model
    estimate = vae.log_likelihood(x, num_samples=5000, seed=0)
    exact = exact_log_px(x.astype("float64"), w, b)
    assert estimate.shape == (64,) and estimate.dtype == np.float64
    assert np.max(np.abs(estimate - exact)) < 0.05
    # The encoder is imperfect: the ELBO is clearly below log p(x), the estimate is not.
    gap = exact - vae.elbo(x, num_samples=100, seed=0)
    assert gap.mean() > 0.1


def test_the_estimate_is_at_least_the_elbo_and_rises_with_k():
    # A poor encoder (a narrow posterior far from the exact one): the bound tightens slowly.
    w, b = linear_gaussian()
    vae = imperfect_vae(w, b, mean_scale=0.3, log_var_shift=-0.7)
    x = model_samples(w, b, 256, seed=1)
    elbo = vae.elbo(x, num_samples=1000, seed=1)
    by_k = [vae.log_likelihood(x, num_samples=k, seed=2) for k in (1, 10, 100, 1000)]
    assert np.all(by_k[-1] >= elbo)
    means = [estimate.mean() for estimate in by_k]
    assert all(later >= earlier for earlier, later in zip(means, means[1:])), means
    assert means[-1] - means[0] > 0.1


def numpy_estimate(x, w, b, kernel, bias, log_var, num_samples, seed, batch_size):
    """The estimator in float64 numpy, drawing the noise as keras_vae.likelihood does."""
    rng = np.random.default_rng(seed)
    out = []
    for start in range(0, len(x), batch_size):
        batch = x[start : start + batch_size].astype("float64")
        mean = batch @ kernel + bias
        lv = np.broadcast_to(log_var, mean.shape)
        eps = rng.standard_normal((num_samples, len(batch), LATENT), dtype=np.float32)
        eps = eps.transpose(1, 0, 2).astype("float64")
        z = mean[:, None] + np.exp(0.5 * lv)[:, None] * eps
        outputs = z @ w.T + b
        log_px_z = -0.5 * np.sum((batch[:, None] - outputs) ** 2 + math.log(2 * math.pi), -1)
        log_pz = -0.5 * np.sum(z**2 + math.log(2 * math.pi), -1)
        log_qz = -0.5 * np.sum(eps**2 + lv[:, None] + math.log(2 * math.pi), -1)
        log_w = log_px_z + log_pz - log_qz
        top = log_w.max(axis=1, keepdims=True)
        out.append(top[:, 0] + np.log(np.mean(np.exp(log_w - top), axis=1)))
    return np.concatenate(out)


def test_a_seed_gives_the_numpy_reference_on_every_backend(linear_model):
    vae, w, b, x = linear_model
    kernel, bias = (v.astype("float64") for v in vae.encoder.get_layer("mean").get_weights())
    log_var = vae.encoder.get_layer("log_var").get_weights()[1].astype("float64")
    expected = numpy_estimate(x, w, b, kernel, bias, log_var, 200, seed=7, batch_size=16)
    estimate = vae.log_likelihood(x, num_samples=200, seed=7, batch_size=16)
    np.testing.assert_allclose(estimate, expected, atol=2e-4)
    again = vae.log_likelihood(x, num_samples=200, seed=7, batch_size=16)
    np.testing.assert_array_equal(estimate, again)
    other = vae.log_likelihood(x, num_samples=200, seed=8, batch_size=16)
    assert np.max(np.abs(other - estimate)) > 1e-4


def test_the_samples_do_not_depend_on_the_chunking(linear_model):
    vae, _, _, x = linear_model
    encode = lambda batch: vae._encode_tensor(batch)  # noqa: E731
    whole = likelihood.log_likelihood(
        encode, vae.decoder, x, "gaussian", num_samples=50, batch_size=16, seed=3
    )
    log_px = likelihood.log_px_function("gaussian")
    chunked = likelihood.estimate(
        encode, vae.decoder, log_px, x, num_samples=50, batch_size=16, seed=3, sample_chunk=7
    )["log_likelihood"]
    np.testing.assert_allclose(chunked, whole, atol=1e-4)
    # A batch that does not divide the data (the last one is padded, then cut).
    kernel, bias = (v.astype("float64") for v in vae.encoder.get_layer("mean").get_weights())
    log_var = vae.encoder.get_layer("log_var").get_weights()[1].astype("float64")
    w = vae.decoder.layers[-1].get_weights()[0].T.astype("float64")
    b = vae.decoder.layers[-1].get_weights()[1].astype("float64")
    expected = numpy_estimate(x[:21], w, b, kernel, bias, log_var, 50, seed=3, batch_size=16)
    estimate = vae.log_likelihood(x[:21], num_samples=50, batch_size=16, seed=3)
    np.testing.assert_allclose(estimate, expected, atol=2e-4)
    np.testing.assert_allclose(estimate[:16], whole[:16], atol=1e-4)


def test_cvae_with_its_class_mean_prior_matches_the_closed_form():
    w, b = linear_gaussian(seed=3)
    class_means = np.random.default_rng(4).normal(size=(CLASSES, LATENT))
    cvae = imperfect_cvae(w, b, class_means, mean_scale=0.85, log_var_shift=0.2)
    labels = np.arange(48) % CLASSES
    x = model_samples(w, b, 48, seed=5, means=class_means[labels])
    exact = exact_log_px(x.astype("float64"), w, b, class_means[labels])
    estimate = cvae.log_likelihood(x, labels=labels, num_samples=5000, seed=0)
    assert np.max(np.abs(estimate - exact)) < 0.05
    elbo = cvae.elbo(x, labels=labels, num_samples=200, seed=1)
    assert np.all(estimate >= elbo)
    means = [cvae.log_likelihood(x, labels, num_samples=k, seed=2).mean() for k in (1, 10, 100)]
    assert means[0] <= means[1] <= means[2]
    # The KL per dimension is to the class prior, and sums to the ELBO's KL term.
    kl = cvae.kl_per_dimension(x, labels=labels)
    z_mean, z_log_var = cvae.encode(x, labels)
    closed = 0.5 * ((z_mean - class_means[labels]) ** 2 + np.exp(z_log_var) - z_log_var - 1)
    np.testing.assert_allclose(kl, closed.mean(axis=0), rtol=1e-5)
    with pytest.raises(InvalidInputError, match="labels"):
        cvae.log_likelihood(x)


def test_kl_per_dimension_and_active_units_on_known_codes(linear_model):
    vae, w, _, x = linear_model
    z_mean, z_log_var = vae.encode(x)
    closed = 0.5 * (z_mean**2 + np.exp(z_log_var) - z_log_var - 1)
    np.testing.assert_allclose(vae.kl_per_dimension(x), closed.mean(axis=0), rtol=1e-5)
    variances = z_mean.var(axis=0)
    assert vae.active_units(x) == int(np.sum(variances > 0.01)) == LATENT
    assert vae.active_units(x, threshold=float(variances.max()) + 1) == 0
    # A unit whose mean never moves is inactive.
    kernel, bias = vae.encoder.get_layer("mean").get_weights()
    kernel[:, 1] = 0.0
    vae.encoder.get_layer("mean").set_weights([kernel, bias])
    try:
        assert vae.active_units(x) == 1
    finally:
        kernel[:, 1] = (posterior(w)[1].T * 0.7)[:, 1]
        vae.encoder.get_layer("mean").set_weights([kernel, bias])


def bernoulli_vae():
    return VAE(*architectures.mlp((12,), latent_dim=2, hidden_units=(8,)), seed=0)


def test_bernoulli_needs_binary_data_and_mse_is_no_density():
    vae = bernoulli_vae()
    x = (np.random.default_rng(0).random((8, 12)) > 0.5).astype("float32")
    assert np.all(
        vae.log_likelihood(x, num_samples=50, seed=0) >= vae.elbo(x, num_samples=50, seed=0)
    )
    grey = x.copy()
    grey[3, 4] = 0.5
    with pytest.raises(InvalidInputError, match=r"`x` must be binary .* 0.5 at index \(3, 4\)"):
        vae.log_likelihood(grey)
    with pytest.raises(InvalidInputError, match="binary"):
        vae.elbo(grey)
    mse = VAE(*architectures.mlp((12,), latent_dim=2, hidden_units=(8,)), reconstruction_loss="mse")
    with pytest.raises(ValueError, match="'mse' is a squared error"):
        mse.log_likelihood(x)


@pytest.mark.parametrize("pixels", [1, 7, 17, 30, 784])
def test_the_backends_bernoulli_kernel_is_the_per_pixel_sum(pixels):
    """Every backend's kernel, and the shared grouped form, equal sum_d x l - softplus(l) in
    float64, for grey x too and logits from -60 to 60 (where exp(-|l|) underflows 1 + e)."""
    rng = np.random.default_rng(pixels)
    logits = rng.normal(0.0, 6.0, (3, 5, pixels)).astype("float32")
    logits[0, 0, :] = np.linspace(-60.0, 60.0, pixels)
    x = rng.random((3, 1, pixels)).astype("float32")
    x[1] = np.round(x[1])
    expected = np.sum(x * logits - np.logaddexp(0.0, logits.astype("float64")), axis=-1)
    for kernel in (backends.bernoulli_log_prob_sum, _shared.bernoulli_log_prob_sum):
        got = keras.ops.convert_to_numpy(kernel(keras.ops.array(x), keras.ops.array(logits)))
        assert got.shape == (3, 5)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)
    assert [_shared.bernoulli_group(n) for n in (1, 7, 17, 30, 784)] == [1, 7, 1, 15, 16]


def test_the_inference_kernel_gives_the_training_log_weights():
    """log_weights(inference=True), the estimators' path, equals the path IWAE trains on."""
    vae = bernoulli_vae()
    rng = np.random.default_rng(1)
    x = (rng.random((4, 12)) > 0.5).astype("float32")
    z_mean, z_log_var = (keras.ops.array(a) for a in vae.encode(x))
    eps = keras.ops.array(rng.standard_normal((4, 6, 2)).astype("float32"))
    log_px = likelihood.log_px_function("bernoulli")
    assert log_px.summed is backends.bernoulli_log_prob_sum
    outputs = [
        likelihood.log_weights(keras.ops.array(x), z_mean, z_log_var, eps, vae.decoder, log_px,
                               inference=inference)[:2]
        for inference in (False, True)
    ]  # fmt: skip
    for trained, inferred in zip(*outputs):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(inferred), keras.ops.convert_to_numpy(trained), atol=1e-4
        )


@keras.saving.register_keras_serializable(package="test_likelihood")
def unmarked_nll(x, outputs):
    return keras.ops.square(x - outputs)


@keras.saving.register_keras_serializable(package="test_likelihood")
@losses.normalized_nll
def marked_gaussian_nll(x, outputs):
    return 0.5 * keras.ops.square(x - outputs) + 0.5 * math.log(2 * math.pi)


def test_a_callable_likelihood_must_be_marked_normalised(linear_model):
    base, _, _, x = linear_model
    refused = VAE(base.encoder, base.decoder, reconstruction_loss=unmarked_nll)
    with pytest.raises(ValueError, match="normalized_nll"):
        refused.log_likelihood(x)
    marked = VAE(base.encoder, base.decoder, reconstruction_loss=marked_gaussian_nll)
    np.testing.assert_allclose(
        marked.log_likelihood(x, num_samples=100, seed=0),
        base.log_likelihood(x, num_samples=100, seed=0),
        atol=1e-4,
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_samples": 0}, r"`num_samples` must be"),
        ({"num_samples": 2.5}, r"`num_samples` must be"),
        ({"seed": -1}, r"`seed` must be"),
        ({"batch_size": 0}, r"`batch_size` must be"),
    ],
)
def test_bad_arguments_are_refused_naming_them(linear_model, kwargs, match):
    vae, _, _, x = linear_model
    with pytest.raises(ValueError, match=match):
        vae.log_likelihood(x, **kwargs)


def test_bad_data_is_refused_before_anything_runs(linear_model):
    vae, _, _, x = linear_model
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InvalidInputError, match="finite"):
        vae.log_likelihood(bad)
    with pytest.raises(InvalidInputError, match="empty"):
        vae.elbo(x[:0])
    with pytest.raises(InvalidInputError, match="shape"):
        vae.kl_per_dimension(x[:, :3])
    with pytest.raises(InvalidInputError, match="at least 2 examples"):
        vae.active_units(x[:1])
    with pytest.raises(InvalidInputError, match="takes no labels"):
        vae.log_likelihood(x, labels=np.zeros(len(x)))
    tf = pytest.importorskip("tensorflow")
    with pytest.raises(InvalidInputError, match="received a .*Dataset.*as_numpy_iterator"):
        vae.log_likelihood(tf.data.Dataset.from_tensor_slices(x).batch(8))


def test_models_without_a_likelihood_say_so():
    ae = AE(*architectures.mlp((12,), latent_dim=2, hidden_units=(8,), variational=False))
    assert not ae.has_likelihood and not hasattr(ae, "log_likelihood")
    assert VAE.has_likelihood and CVAE.has_likelihood


def test_memory_is_bounded_by_the_decoders_activations():
    _, mlp_decoder = architectures.mlp((28, 28, 1), latent_dim=20, hidden_units=(400,))
    _, conv_decoder = architectures.conv((28, 28, 1), latent_dim=20)
    assert likelihood.rows_for(mlp_decoder) == likelihood.default_rows()
    per_row = sum(math.prod(layer.output.shape[1:]) for layer in conv_decoder.layers)
    rows = likelihood.rows_for(conv_decoder)
    assert rows * per_row <= likelihood.MEMORY_ELEMENTS < (rows + 1) * per_row
    assert likelihood.rows_for(lambda z: z) == likelihood.default_rows()


def test_strangers_inputs_to_the_estimators():
    vae = bernoulli_vae()
    weights = [w.copy() for w in vae.get_weights()]
    pixels = np.random.default_rng(1).integers(0, 256, (8, 12)).astype("uint8")
    with pytest.raises(InvalidInputError, match="must be binary"):
        vae.log_likelihood(pixels)  # 8-bit images are refused, not rescaled
    binary = (pixels > 127).astype("uint8")  # 0/1 in uint8 is binary data
    np.testing.assert_allclose(
        vae.log_likelihood(binary, num_samples=20, seed=0),
        vae.log_likelihood(binary.astype("float32"), num_samples=20, seed=0),
    )
    w, b = linear_gaussian(seed=3)
    cvae = imperfect_cvae(w, b, np.zeros((CLASSES, LATENT)))
    x = model_samples(w, b, 6, seed=5)
    for bad in (np.array([0, 1, 2, 3, 0, 1]), np.array([0, 1, 2, -1, 0, 1])):
        with pytest.raises(InvalidInputError, match=r"must lie in \[0, 3\)"):
            cvae.log_likelihood(x, labels=bad)
    with pytest.raises(InvalidInputError, match="whole class indices"):
        cvae.elbo(x, labels=np.array([0, 1, 2, 0.5, 0, 1]))
    for before, after in zip(weights, vae.get_weights()):
        np.testing.assert_array_equal(before, after)
