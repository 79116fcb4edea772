"""ContractiveAE and keras_vae.backends.jacobian on the current backend: the penalty against
closed forms, its gradient, the random-projection estimate, training and bad config."""

import keras
import numpy as np
import pytest
from conftest import to_numpy

from keras_vae import ContractiveAE, InvalidInputError, architectures
from keras_vae.models.contractive import MAX_PROJECTIONS

DIM, LATENT = 6, 3


def sigmoid_model(seed=0, contractive_weight=1.0, jacobian="exact", decoder_kernel=None):
    """A CAE whose encoder is one sigmoid layer h = sigmoid(Wx + b), with known weights."""
    rng = np.random.default_rng(seed)
    x_in = keras.Input((DIM,))
    encoder = keras.Model(x_in, keras.layers.Dense(LATENT, activation="sigmoid")(x_in))
    z_in = keras.Input((LATENT,))
    decoder = keras.Model(z_in, keras.layers.Dense(DIM)(z_in))
    encoder.set_weights([rng.normal(size=(DIM, LATENT)), rng.normal(size=LATENT)])
    if decoder_kernel is not None:
        decoder.set_weights([decoder_kernel, np.zeros(DIM)])
    return ContractiveAE(
        encoder, decoder, contractive_weight=contractive_weight, jacobian=jacobian, seed=0
    )


def sigmoid_penalty(weights, bias, x):
    """The closed form sum_j (h_j (1 - h_j))^2 sum_i W_ij^2 per example, in float64."""
    h = 1.0 / (1.0 + np.exp(-(x.astype("float64") @ weights + bias)))
    return ((h * (1.0 - h)) ** 2 * np.sum(np.square(weights), axis=0)).sum(axis=1)


def encoder_weights(model):
    return [to_numpy(w).astype("float64") for w in model.encoder.weights]


def data(n=64, dim=DIM, seed=1):
    return np.random.default_rng(seed).random((n, dim)).astype("float32")


# ------------------------------------------------------------------- the penalty
def test_the_penalty_of_a_sigmoid_layer_is_its_closed_form():
    model = sigmoid_model()
    x = data(n=32)
    expected = sigmoid_penalty(*encoder_weights(model), x)
    np.testing.assert_allclose(model.jacobian_norm(x), expected, rtol=1e-5)
    np.testing.assert_allclose(model.jacobian_norm(x, batch_size=5), expected, rtol=1e-5)
    # The loss term of the model: the batch mean, weighted like the reconstruction.
    _, terms = model.compute_loss_terms(keras.ops.convert_to_tensor(x))
    np.testing.assert_allclose(to_numpy(terms["contractive_loss"]), expected.mean(), rtol=1e-5)
    weights = np.linspace(0.0, 2.0, len(x)).astype("float32")
    _, terms = model.compute_loss_terms(
        keras.ops.convert_to_tensor(x), sample_weight=keras.ops.convert_to_tensor(weights)
    )
    np.testing.assert_allclose(
        to_numpy(terms["contractive_loss"]), (weights * expected).mean(), rtol=1e-5
    )
    np.testing.assert_allclose(
        to_numpy(terms["loss"]),
        to_numpy(terms["reconstruction_loss"]) + (weights * expected).mean(),
        rtol=1e-5,
    )


def test_the_exact_penalty_of_a_deeper_encoder_is_the_frobenius_norm_of_its_jacobian():
    # Two tanh layers on (2, 3)-shaped inputs: J = W2^T diag(1 - h1^2) W1^T, flattened input.
    rng = np.random.default_rng(3)
    encoder, decoder = architectures.mlp(
        (2, 3), latent_dim=4, hidden_units=(5,), activation="tanh", variational=False
    )
    model = ContractiveAE(encoder, decoder)
    w1, b1, w2, b2 = [rng.normal(size=w.shape) for w in encoder.weights]
    encoder.set_weights([w1, b1, w2, b2])
    x = rng.random((7, 2, 3)).astype("float32")
    flat = x.reshape(7, 6).astype("float64")
    slope = 1.0 - np.tanh(flat @ w1 + b1) ** 2
    jacobians = np.einsum("ih,bh,hj->bij", w1, slope, w2)
    expected = np.square(jacobians).sum(axis=(1, 2))
    np.testing.assert_allclose(model.jacobian_norm(x), expected, rtol=1e-5)


def test_the_penalty_trains_the_encoder_by_its_closed_form_gradient():
    # A zero decoder kernel: the reconstruction gives the encoder no gradient in the first
    # step, so one SGD step moves W by -lr * weight * d penalty / d W (double backprop).
    model = sigmoid_model(contractive_weight=2.0, decoder_kernel=np.zeros((LATENT, DIM)))
    weights, bias = encoder_weights(model)
    x = data(n=16)
    step = 1e-3
    expected_gradient = np.zeros_like(weights)
    for index in np.ndindex(weights.shape):  # central differences of the closed form
        shifted = [weights.copy(), weights.copy()]
        shifted[0][index] += 1e-6
        shifted[1][index] -= 1e-6
        up, down = (sigmoid_penalty(w, bias, x).mean() for w in shifted)
        expected_gradient[index] = (up - down) / 2e-6
    model.compile(optimizer=keras.optimizers.SGD(step))
    model.fit(x, epochs=1, batch_size=len(x), shuffle=False, verbose=0)
    moved = (weights - encoder_weights(model)[0]) / step
    np.testing.assert_allclose(moved, 2.0 * expected_gradient, rtol=1e-3, atol=1e-4)


# ----------------------------------------------------------- the projection estimate
def test_the_projection_estimate_is_unbiased_and_its_error_falls_with_projections():
    model = sigmoid_model()
    weights, bias = encoder_weights(model)
    x = np.repeat(data(n=1), 2000, axis=0)  # one example: 2000 independent estimates of it
    exact = sigmoid_penalty(weights, bias, x[:1])[0]
    # For v ~ N(0, I): Var(||J^T v||^2) = 2 ||J J^T||_F^2, so the relative error of the mean
    # of m projections is sqrt(2 ||J J^T||_F^2 / m) / ||J||_F^2.
    h = 1.0 / (1.0 + np.exp(-(x[0].astype("float64") @ weights + bias)))
    jacobian = weights * (h * (1.0 - h))  # (DIM, LATENT): d h_j / d x_i
    gram = jacobian.T @ jacobian
    errors = {}
    for projections in (1, 4, 16):
        estimates = model.jacobian_norm(x, projections=projections, seed=projections)
        relative = estimates / exact - 1.0
        predicted = np.sqrt(2.0 * np.sum(gram**2) / projections) / exact
        errors[projections] = np.sqrt(np.mean(relative**2))
        # Unbiased: the mean of 2000 lies within 4 standard errors of the exact value.
        assert abs(relative.mean()) < 4 * predicted / np.sqrt(len(x))
        np.testing.assert_allclose(errors[projections], predicted, rtol=0.1)
    assert errors[1] > 1.8 * errors[4] > 3.2 * errors[16]  # ~ 1 / sqrt(m): 2x per 4x


def test_training_projections_are_seeded_and_fresh_each_step():
    x = data(n=32)

    def contractive_losses():
        model = sigmoid_model(jacobian=2)
        model.compile(optimizer="sgd")
        return [
            model.evaluate(x, batch_size=32, verbose=0, return_dict=True)["contractive_loss"]
            for _ in range(3)
        ]

    first, again = contractive_losses(), contractive_losses()
    np.testing.assert_allclose(first, again, rtol=1e-6)  # the same seed: the same draws
    assert len(set(np.round(first, 6))) == 3  # a new draw at every step


# ---------------------------------------------------------------------- training
@pytest.mark.parametrize("jacobian", ["exact", 4])
def test_fit_lowers_the_loss_and_logs_the_contractive_loss(jacobian):
    encoder, decoder = architectures.mlp((12,), latent_dim=3, hidden_units=(16,), variational=False)
    model = ContractiveAE(encoder, decoder, contractive_weight=0.1, jacobian=jacobian, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    history = model.fit(data(n=128, dim=12), epochs=5, batch_size=32, verbose=0).history
    assert list(history) == ["contractive_loss", "loss", "reconstruction_loss"]
    assert history["loss"][-1] < 0.7 * history["loss"][0]
    assert all(np.all(np.isfinite(values)) for values in history.values())
    assert min(history["contractive_loss"]) > 0


def test_the_contractive_weight_lowers_the_jacobian_norm():
    x, x_test = data(n=256, dim=12, seed=4), data(n=128, dim=12, seed=5)
    norms, errors = {}, {}
    for weight in (0.0, 0.3):
        keras.utils.set_random_seed(7)
        encoder, decoder = architectures.mlp(
            (12,), latent_dim=4, hidden_units=(32,), variational=False
        )
        model = ContractiveAE(encoder, decoder, contractive_weight=weight)
        model.compile(optimizer=keras.optimizers.Adam(0.01))
        model.fit(x, epochs=20, batch_size=64, verbose=0)
        norms[weight] = model.jacobian_norm(x_test).mean()
        errors[weight] = np.mean(np.square(model.reconstruct(x_test) - x_test))
    # Measured 0.04-0.09 of the norm for 1.07-1.24 times the error on the three backends.
    assert norms[0.3] < 0.2 * norms[0.0]
    assert errors[0.3] < 1.4 * errors[0.0]


def test_encoder_side_effects_happen_once_with_the_penalty():
    # Dropout (a seed generator) and an activity regularizer in the encoder: on JAX the
    # Jacobian's second evaluation must neither leak its state nor drop or repeat the loss.
    x_in = keras.Input((DIM,))
    hidden = keras.layers.Dropout(0.2, seed=1)(keras.layers.Dense(8, activation="tanh")(x_in))
    code = keras.layers.Dense(2, activity_regularizer=keras.regularizers.L2(0.01))(hidden)
    encoder = keras.Model(x_in, code)
    _, decoder = architectures.mlp((DIM,), latent_dim=2, hidden_units=(8,), variational=False)
    model = ContractiveAE(encoder, decoder, contractive_weight=0.5)
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    x = data()
    history = model.fit(x, epochs=2, batch_size=16, verbose=0).history
    assert all(np.all(np.isfinite(values)) for values in history.values())
    scores = model.evaluate(x, batch_size=len(x), verbose=0, return_dict=True)
    activity = 0.01 * np.sum(np.square(model.encode(x))) / len(x)  # Keras: per example
    np.testing.assert_allclose(
        scores["loss"] - scores["reconstruction_loss"] - 0.5 * scores["contractive_loss"],
        activity,
        rtol=1e-3,
    )


# ------------------------------------------------------------- serving, bad input
def test_it_serves_as_an_ae_and_refuses_bad_input_before_training():
    model = sigmoid_model()
    assert list(model.serving_endpoints()) == ["serving_default", "encode", "decode"]
    model.compile(optimizer="sgd")
    x = data(n=8)
    x[3, 2] = np.nan
    with pytest.raises(InvalidInputError, match="x"):
        model.fit(x, epochs=1, verbose=0)
    assert int(to_numpy(model.optimizer.iterations)) == 0
    with pytest.raises(InvalidInputError, match="shape"):
        model.jacobian_norm(data(n=2, dim=DIM + 1))


# -------------------------------------------------------------------- bad config
@pytest.mark.parametrize(
    "name, bad",
    [
        ("contractive_weight", -0.1),
        ("contractive_weight", float("nan")),
        ("contractive_weight", "0.1"),
        ("jacobian", "approximate"),
        ("jacobian", 0),
        ("jacobian", MAX_PROJECTIONS + 1),
        ("jacobian", 2.0),
        ("jacobian", True),
        ("jacobian", None),
        ("seed", -1),
    ],
)
def test_bad_config_values_are_refused_naming_the_argument(name, bad):
    encoder, decoder = architectures.mlp((DIM,), latent_dim=2, variational=False)
    with pytest.raises(ValueError, match=f"`{name}` must be .*received {bad!r}"):
        ContractiveAE(encoder, decoder, **{name: bad})
    model = ContractiveAE(encoder, decoder)
    with pytest.raises(ValueError, match="`projections` must be an int in"):
        model.jacobian_norm(data(n=2), projections=0)
