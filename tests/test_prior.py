"""The KL to a general diagonal Gaussian prior, the learned per-class variance, the CVAE over it.

Formula tests against the closed form ``log(s2 / s1) + (s1**2 + (mu1 - mu2)**2) / (2 s2**2) - 1/2``
and a seeded Monte-Carlo estimate; `ClassMeanPrior(learn_variance=True)` learns the
moment-matched prior; `CVAE(learn_prior_variance=True)` trains, saves, loads in safe mode and
serves ``mu_y + sigma_y * eps``. Runs on the TensorFlow, JAX and torch legs.
"""

import json
import zipfile

import keras
import numpy as np
import pytest
from conftest import to_numpy
from keras.src import testing

from keras_vae import CVAE, InvalidInputError, architectures, losses
from keras_vae.layers import ClassMeanPrior, KLDivergenceRegularizer
from keras_vae.models.base import standard_normal

DIM, LATENT, CLASSES = 12, 2, 3


def issue_kl(mu1, log_var1, mu2, log_var2):
    """The issue's formula, per element, in float64."""
    s1, s2 = np.exp(0.5 * np.float64(log_var1)), np.exp(0.5 * np.float64(log_var2))
    return np.log(s2 / s1) + (s1**2 + (np.float64(mu1) - mu2) ** 2) / (2 * s2**2) - 0.5


def gaussians(rng, shape):
    """Random posterior and prior parameters (float32); prior log-variances in [-2, 2]."""
    draw = [rng.normal(size=shape), rng.normal(0.0, 1.0, shape), rng.normal(size=shape)]
    draw.append(rng.uniform(-2.0, 2.0, shape))
    return [d.astype("float32") for d in draw]


# --------------------------------------------------------------------------- the formula
def test_gaussian_kl_is_the_closed_form_of_two_diagonal_gaussians(rng):
    mu, log_var, prior_mean, prior_log_var = gaussians(rng, (16, 5))
    expected = issue_kl(mu, log_var, prior_mean, prior_log_var)
    got = to_numpy(losses.gaussian_kl(mu, log_var, prior_mean, prior_log_var))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    scalar = to_numpy(losses.kl_divergence(mu, log_var, prior_mean, prior_log_var=prior_log_var))
    np.testing.assert_allclose(scalar, expected.sum(axis=1).mean(), rtol=1e-5)
    weights = np.linspace(0.0, 2.0, 16).astype("float32")
    weighted = losses.kl_divergence(
        mu, log_var, prior_mean, sample_weight=weights, prior_log_var=prior_log_var
    )
    np.testing.assert_allclose(
        to_numpy(weighted), np.sum(weights * expected.sum(axis=1)) / 16, rtol=1e-5
    )


def test_gaussian_kl_matches_a_monte_carlo_estimate(rng):
    mu, log_var = np.array([0.7, -1.2, 0.1], "float32"), np.log([0.3, 2.0, 1.0]).astype("float32")
    prior_mean = np.array([-0.5, 0.4, 0.0], "float32")
    prior_log_var = np.log([1.5, 0.25, 4.0]).astype("float32")
    n = 200_000
    z = mu + np.exp(0.5 * log_var) * rng.standard_normal((n, 3))

    def log_density(mean, variance_log):
        return -0.5 * ((z - mean) ** 2 / np.exp(variance_log) + np.log(2 * np.pi) + variance_log)

    samples = log_density(mu, log_var) - log_density(prior_mean, prior_log_var)  # (n, 3)
    estimate, error = samples.mean(axis=0), samples.std(axis=0) / np.sqrt(n)
    closed = to_numpy(losses.gaussian_kl(mu, log_var, prior_mean, prior_log_var))
    assert np.all(np.abs(closed - estimate) < 4 * error), (closed, estimate, error)
    total = samples.sum(axis=1)
    scalar = float(
        to_numpy(
            losses.kl_divergence(
                mu[None], log_var[None], prior_mean[None], prior_log_var=prior_log_var[None]
            )
        )
    )
    assert abs(scalar - total.mean()) < 4 * total.std() / np.sqrt(n)
    assert error.max() < 0.03  # the check is sharp: a wrong term would be off by far more


def test_the_kl_to_the_standard_normal_is_unchanged(rng):
    mu, log_var, _, _ = gaussians(rng, (8, 4))
    old = 0.5 * (mu**2 + np.exp(log_var) - log_var - 1.0)
    zeros = np.zeros_like(mu)
    for prior_mean, prior_log_var in [(None, None), (zeros, None), (None, zeros), (zeros, zeros)]:
        got = to_numpy(losses.gaussian_kl(mu, log_var, prior_mean, prior_log_var))
        np.testing.assert_allclose(got, old, rtol=1e-6, atol=1e-7)
    layer = KLDivergenceRegularizer()
    layer([mu, log_var])
    np.testing.assert_allclose(to_numpy(layer.losses[0]), old.sum(axis=1).mean(), rtol=1e-6)


def test_free_bits_floor_each_dimension_under_a_prior_variance(rng):
    mu, log_var, prior_mean, prior_log_var = gaussians(rng, (8, 4))
    per_dimension = issue_kl(mu, log_var, prior_mean, prior_log_var).mean(axis=0)
    free_bits = float(np.median(per_dimension))  # floors about half of the dimensions
    assert (per_dimension < free_bits).any() and (per_dimension > free_bits).any()
    got = losses.kl_divergence(
        mu, log_var, prior_mean, free_bits=free_bits, prior_log_var=prior_log_var
    )
    expected = np.maximum(per_dimension, free_bits).sum()
    np.testing.assert_allclose(to_numpy(got), expected, rtol=1e-5)
    layer = KLDivergenceRegularizer(weight=0.5, free_bits=free_bits)
    layer([mu, log_var, prior_mean, prior_log_var])
    np.testing.assert_allclose(to_numpy(layer.losses[0]), 0.5 * expected, rtol=1e-5)


# ------------------------------------------------------------------ the regularizer's inputs
def test_the_regularizer_takes_a_prior_log_variance(rng):
    mu, log_var, prior_mean, prior_log_var = gaussians(rng, (16, 5))
    layer = KLDivergenceRegularizer(weight=0.25)
    outputs = layer([mu, log_var, prior_mean, prior_log_var])
    assert len(outputs) == 2
    np.testing.assert_array_equal(to_numpy(outputs[0]), mu)
    np.testing.assert_array_equal(to_numpy(outputs[1]), log_var)
    expected = issue_kl(mu, log_var, prior_mean, prior_log_var).sum(axis=1).mean()
    np.testing.assert_allclose(to_numpy(layer.losses[0]), 0.25 * expected, rtol=1e-5)
    np.testing.assert_allclose(to_numpy(layer.kl_tracker.result()), expected, rtol=1e-5)
    three = KLDivergenceRegularizer()
    three([mu, log_var, prior_mean])
    expected = issue_kl(mu, log_var, prior_mean, 0.0).sum(axis=1).mean()
    np.testing.assert_allclose(to_numpy(three.losses[0]), expected, rtol=1e-5)


def test_the_regularizer_names_a_bad_input():
    z = np.zeros((2, 3), "float32")
    with pytest.raises(ValueError, match=r"prior_log_var must have the shape of z_mean \(2, 3\)"):
        KLDivergenceRegularizer(name="kl")([z, z, z, np.zeros((2, 4), "float32")])
    with pytest.raises(ValueError, match=r"prior_mean must have the shape of z_mean"):
        KLDivergenceRegularizer()([z, z, np.zeros((3,), "float32"), z])
    with pytest.raises(ValueError, match=r"prior_log_var\]; received .*\(5 inputs\)"):
        KLDivergenceRegularizer()([z] * 5)
    with pytest.raises(ValueError, match=r"expects a list \[z_mean, z_log_var\], "):
        KLDivergenceRegularizer()(z)
    layer = KLDivergenceRegularizer(name="kl")
    layer([z, z])
    # Built on two inputs; a later call is checked all the same.
    with pytest.raises(ValueError, match="Layer 'kl': prior_log_var must have the shape"):
        layer([z, z, z, np.zeros((2, 1), "float32")])
    with pytest.raises(ValueError, match="z_log_var must have the shape"):
        KLDivergenceRegularizer().compute_output_shape([(None, 3), (None, 4)])
    assert KLDivergenceRegularizer().compute_output_shape([(None, 3)] * 4) == [(None, 3)] * 2


# ------------------------------------------------------------------------ ClassMeanPrior
class HarnessTest(testing.TestCase):
    def test_class_mean_prior_with_variance(self):
        self.run_layer_test(
            ClassMeanPrior,
            init_kwargs={"num_classes": 4, "latent_dim": 3, "learn_variance": True},
            input_data=np.array([0, 1, 3, 2]),
            expected_output_shape=((4, 3), (4, 3)),
            expected_num_trainable_weights=2,
            run_training_check=False,
        )


def test_class_mean_prior_with_variance_gives_means_and_soft_clipped_log_variances():
    prior = ClassMeanPrior(4, 3, learn_variance=True, log_variance_bound=5.0)
    labels = np.array([3, 0, 2])
    means, log_vars = prior(labels)
    np.testing.assert_array_equal(to_numpy(log_vars), np.zeros((3, 3)))  # unit variance at first
    np.testing.assert_allclose(to_numpy(means), to_numpy(prior.class_means)[labels], rtol=1e-6)
    raw = np.array([[0.5, -2.0, 1e6], [-1e6, 0.0, 3.0], [40.0, -40.0, 1.0], [7.0, 0.1, -0.1]])
    prior.raw_class_log_variances.assign(raw.astype("float32"))
    table = to_numpy(prior.log_variances())
    np.testing.assert_allclose(table, 5.0 * np.tanh(raw / 5.0), rtol=1e-6, atol=1e-6)
    assert np.all(np.abs(table) <= 5.0) and np.isfinite(table).all()
    by_index = to_numpy(prior(labels)[1])
    by_one_hot = to_numpy(prior(np.eye(4, dtype="float32")[labels])[1])
    np.testing.assert_allclose(by_index, table[labels], rtol=1e-6)
    np.testing.assert_allclose(by_one_hot, table[labels], rtol=1e-6, atol=1e-6)
    soft = np.array([[0.5, 0.5, 0.0, 0.0]], "float32")  # one Gaussian: the weighted average
    np.testing.assert_allclose(to_numpy(prior(soft)[1])[0], table[:2].mean(axis=0), rtol=1e-5)


def test_class_mean_prior_without_variance_is_as_before():
    prior = ClassMeanPrior(4, 3)
    means = prior(np.array([1, 2]))
    assert not isinstance(means, (list, tuple)) and tuple(means.shape) == (2, 3)
    assert [w.name for w in prior.weights] == ["class_means"]
    np.testing.assert_array_equal(to_numpy(prior.log_variances()), np.zeros((4, 3)))
    old_config = {"name": "prior", "num_classes": 4, "latent_dim": 3}  # before learn_variance
    restored = ClassMeanPrior.from_config(old_config)
    assert (restored.learn_variance, restored.log_variance_bound) == (False, 10.0)
    config = ClassMeanPrior(4, 3, learn_variance=True, log_variance_bound=2.5).get_config()
    assert (config["learn_variance"], config["log_variance_bound"]) == (True, 2.5)
    assert ClassMeanPrior.from_config(config).get_config() == config


@pytest.mark.parametrize(
    "name, bad",
    [("log_variance_bound", bad) for bad in [0.0, 0.05, 31.0, float("nan"), "1", True, None]]
    + [("learn_variance", bad) for bad in (1, 0, "false", float("nan"), None)],
)
def test_bad_prior_settings_are_refused_naming_the_argument(name, bad):
    # As tests/test_safe_loading.py does for the other arguments: refused by our checks.
    with pytest.raises(ValueError, match=f"`{name}` must be .*received") as error:
        ClassMeanPrior(3, 2, **{name: bad})
    assert error.traceback[-1].path.name == "_config_checks.py"


def _prior_fit_model():
    """Only the KL of fixed posteriors to a learned class prior: its optimum is known."""
    z_mean, z_log_var = keras.Input((LATENT,)), keras.Input((LATENT,))
    labels = keras.Input((), dtype="int32")
    prior = ClassMeanPrior(CLASSES, LATENT, learn_variance=True, name="prior")
    prior_mean, prior_log_var = prior(labels)
    outputs = KLDivergenceRegularizer(name="kl")([z_mean, z_log_var, prior_mean, prior_log_var])
    return keras.Model([z_mean, z_log_var, labels], outputs[0])


def test_the_learned_prior_is_the_moment_matched_gaussian(tmp_path, rng):
    # argmin over (m, s2) of mean_i KL(N(mu_i, v_i) || N(m, s2)): m = mean(mu), s2 = mean(v +
    # (mu - m)**2), per class and dimension.
    n = 300
    labels = np.arange(n) % CLASSES
    spread = np.array([0.3, 1.0, 2.0])[labels, None]
    mu = rng.normal(size=(CLASSES, LATENT))[labels] + spread * rng.normal(size=(n, LATENT))
    log_var = np.log(rng.uniform(0.1, 0.6, (n, LATENT)))
    mu, log_var = mu.astype("float32"), log_var.astype("float32")
    means = np.stack([mu[labels == k].mean(axis=0) for k in range(CLASSES)])
    variances = np.stack(
        [(np.exp(log_var) + (mu - means[k]) ** 2)[labels == k].mean(axis=0) for k in range(CLASSES)]
    )
    model = _prior_fit_model()
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    repeats = 400
    inputs = [np.tile(mu, (repeats, 1)), np.tile(log_var, (repeats, 1)), np.tile(labels, repeats)]
    model.fit(inputs, batch_size=n, epochs=1, shuffle=False, verbose=0)
    prior = model.get_layer("prior")
    np.testing.assert_allclose(to_numpy(prior.class_means), means, atol=0.02)
    np.testing.assert_allclose(to_numpy(prior.log_variances()), np.log(variances), atol=0.02)
    # The learned variances span a factor of ~10: far from the unit start.
    assert np.ptp(np.log(variances)) > 2.0
    kl = KLDivergenceRegularizer()
    kl([mu, log_var, *[to_numpy(t) for t in prior(labels)]])
    learned = to_numpy(prior.log_variances())[labels]
    expected = issue_kl(mu, log_var, to_numpy(prior.class_means)[labels], learned)
    np.testing.assert_allclose(to_numpy(kl.losses[0]), expected.sum(axis=1).mean(), rtol=1e-5)

    path = tmp_path / "prior.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    restored = loaded.get_layer("prior")
    assert restored.get_config() == prior.get_config()
    np.testing.assert_array_equal(
        to_numpy(restored.raw_class_log_variances), to_numpy(prior.raw_class_log_variances)
    )


# ------------------------------------------------------------------------------------ CVAE
def binary_data(n=192, seed=0):
    """Binary vectors from one prototype per class with flipped bits."""
    data_rng = np.random.default_rng(seed)
    prototypes = data_rng.random((CLASSES, DIM)) > 0.5
    labels = np.arange(n) % CLASSES
    flips = data_rng.random((n, DIM)) < 0.05
    return (prototypes[labels] ^ flips).astype("float32"), labels


def networks():
    encoder, decoder = architectures.mlp((DIM,), latent_dim=LATENT, hidden_units=(16,))
    return encoder, decoder


@pytest.fixture(scope="module")
def trained():
    """A CVAE with a learned prior variance, fitted a few epochs."""
    keras.utils.set_random_seed(7)
    x, labels = binary_data()
    model = CVAE(*networks(), num_classes=CLASSES, learn_prior_variance=True, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(0.02))
    history = model.fit(x, labels, batch_size=32, epochs=6, verbose=0).history
    return model, history


def test_a_cvae_with_a_learned_prior_variance_fits(trained):
    model, history = trained
    assert history["loss"][-1] < 0.8 * history["loss"][0], history["loss"]
    log_vars = model.class_log_variances()
    assert log_vars.shape == (CLASSES, LATENT) and np.isfinite(log_vars).all()
    assert np.abs(log_vars).max() > 0.05  # trained away from the unit start
    assert len(model.prior.trainable_weights) == 2


def test_the_cvae_kl_is_the_closed_form_on_the_learned_prior(trained, rng):
    model, _ = trained
    x, labels = binary_data(24, seed=1)
    z_mean, z_log_var = model.encode(x)
    prior_mean = model.class_means()[labels]
    prior_log_var = model.class_log_variances()[labels]
    _, terms = model.compute_loss_terms(x, labels, noise=rng.standard_normal((24, LATENT)))
    expected = issue_kl(z_mean, z_log_var, prior_mean, prior_log_var).sum(axis=1).mean()
    np.testing.assert_allclose(to_numpy(terms["kl_loss"]), expected, rtol=1e-5)
    unit = issue_kl(z_mean, z_log_var, prior_mean, 0.0).sum(axis=1).mean()
    assert abs(unit - expected) > 1e-3  # the learned variance is what the loss used


def test_generate_and_the_generate_endpoint_decode_mu_plus_sigma_eps(trained):
    model, _ = trained
    labels = np.array([0, 2, 1, 2, 0], "int32")
    eps = standard_normal((5, LATENT), seed=3)
    sigma = np.exp(0.5 * model.class_log_variances()[labels])
    expected = model.decode(model.class_means()[labels] + sigma * eps, labels)
    np.testing.assert_allclose(model.generate(labels, seed=3), expected, rtol=1e-5, atol=1e-6)
    one_hot = np.eye(CLASSES, dtype="float32")[labels]
    np.testing.assert_allclose(model.generate(one_hot, seed=3), expected, rtol=1e-5, atol=1e-6)
    generate, specs = model.serving_endpoints()["generate"]
    assert [spec.name for spec in specs] == ["labels", "eps"]
    served = generate(keras.ops.convert_to_tensor(labels), keras.ops.convert_to_tensor(eps))
    np.testing.assert_allclose(to_numpy(served["x"]), expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(InvalidInputError, match=r"`labels` must lie in \[0, 3\)"):
        model.generate(np.array([0, 3]))
    with pytest.raises(InvalidInputError, match="`labels`"):
        model.generate(np.array([0.0, np.nan]))


def test_a_cvae_with_a_learned_prior_variance_round_trips_in_safe_mode(trained, tmp_path):
    model, _ = trained
    path = tmp_path / "cvae.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert loaded.learn_prior_variance is True
    own = [key for key in model.get_config() if key not in ("encoder", "decoder")]
    assert {k: loaded.get_config()[k] for k in own} == {k: model.get_config()[k] for k in own}
    np.testing.assert_array_equal(loaded.class_log_variances(), model.class_log_variances())
    np.testing.assert_array_equal(loaded.class_means(), model.class_means())
    labels = np.array([1, 0, 2])
    np.testing.assert_allclose(loaded.generate(labels, seed=5), model.generate(labels, seed=5))


def test_a_cvae_saved_before_learn_prior_variance_loads(tmp_path):
    model = CVAE(*networks(), num_classes=CLASSES, seed=0)
    assert model.get_config()["learn_prior_variance"] is False
    assert [w.name for w in model.prior.weights] == ["class_means"]  # the weights of old files
    np.testing.assert_array_equal(model.class_log_variances(), np.zeros((CLASSES, LATENT)))
    model.save(tmp_path / "new.keras")
    # An older file: the same archive without the key in its config.
    with (
        zipfile.ZipFile(tmp_path / "new.keras") as new,
        zipfile.ZipFile(tmp_path / "old.keras", "w") as old,
    ):
        for name in new.namelist():
            data = new.read(name)
            if name == "config.json":
                config = json.loads(data)
                del config["config"]["learn_prior_variance"]
                data = json.dumps(config)
            old.writestr(name, data)
    loaded = keras.saving.load_model(tmp_path / "old.keras", safe_mode=True)
    assert loaded.learn_prior_variance is False
    np.testing.assert_array_equal(loaded.class_means(), model.class_means())
    labels = np.array([2, 1])
    np.testing.assert_allclose(loaded.generate(labels, seed=1), model.generate(labels, seed=1))
    eps = standard_normal((2, LATENT), seed=1)  # sigma = 1: mu + eps, as before
    np.testing.assert_allclose(
        model.generate(labels, seed=1), model.decode(model.class_means()[labels] + eps), rtol=1e-6
    )


@pytest.mark.slow
def test_the_exported_generate_signature_serves_mu_plus_sigma_eps(trained, tmp_path):
    # On torch a TensorFlow process exports a .keras copy: the config round trip is tested too.
    tf = pytest.importorskip("tensorflow")
    model, _ = trained
    path = str(tmp_path / "export")
    model.export(path, verbose=False)
    served = tf.saved_model.load(path)
    labels = np.array([0, 2, 1], "int32")
    eps = standard_normal((3, LATENT), seed=4)
    got = served.signatures["generate"](labels=tf.constant(labels), eps=tf.constant(eps))["x"]
    sigma = np.exp(0.5 * model.class_log_variances()[labels])
    expected = model.decode(model.class_means()[labels] + sigma * eps)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-5)
