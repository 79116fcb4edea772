"""AdversarialAE: its two training phases step the weights they should by the numbers, both
optimizers are saved, loaded and restored, its endpoints serve, and on Fashion-MNIST its codes
follow the prior where a plain AE's do not."""

import os

import keras
import numpy as np
import pytest
from conftest import BACKEND, to_numpy

from keras_vae import AE, AdversarialAE, architectures, backends, data
from keras_vae.callbacks import BackupAndRestore

FASHION_MNIST = "/usr/share/datasets/fashion-mnist"


def linear_model(seed=5):
    """x (3) -> code W x (2) -> V code (3); the discriminator a . code + c. No biases but c."""
    encoder = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, use_bias=False)])
    decoder = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3, use_bias=False)])
    discriminator = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    rng = np.random.default_rng(0)
    encoder.set_weights([rng.normal(size=(3, 2)).astype("float32")])
    decoder.set_weights([rng.normal(size=(2, 3)).astype("float32")])
    discriminator.set_weights(
        [rng.normal(size=(2, 1)).astype("float32"), np.array([0.3], "float32")]
    )
    return AdversarialAE(encoder, decoder, discriminator, reconstruction_loss="mse", seed=seed)


def _sigmoid(t):
    return 1.0 / (1.0 + np.exp(-t))


def expected_step(W, V, a, c, x, prior, lr_reconstruction, lr_regularization):
    """One batch by hand, SGD: the reconstruction phase (sum of squared errors, batch mean) on
    W and V, then the regularisation phase at the new W: a and c on the discriminator loss,
    W on the generator loss against the discriminator before its step."""
    n = len(x)
    codes = x @ W
    residual = 2.0 * (codes @ V - x) / n
    W1 = W - lr_reconstruction * x.T @ (residual @ V.T)
    V1 = V - lr_reconstruction * codes.T @ residual
    codes = x @ W1
    real, fake = prior @ a + c, codes @ a + c
    d_real, d_fake = -_sigmoid(-real) / n, _sigmoid(fake) / n  # d loss / d logits
    a2 = a - lr_regularization * (prior.T @ d_real + codes.T @ d_fake)
    c2 = c - lr_regularization * (d_real.sum() + d_fake.sum())
    d_generator = -_sigmoid(-fake) / n
    W2 = W1 - lr_regularization * x.T @ (d_generator @ a.T)
    return W2, V1, a2, c2


@pytest.mark.parametrize("rates", [(0.1, 0.0), (0.0, 0.2), (0.1, 0.2)], ids=str)
def test_each_phase_steps_its_weights_by_hand_computed_gradients(rates):
    lr_reconstruction, lr_regularization = rates
    model = linear_model()
    x = np.random.default_rng(1).normal(size=(8, 3)).astype("float32")
    (W,), (V,), (a, c) = (
        [w.astype("float64") for w in layer.get_weights()]
        for layer in (model.encoder, model.decoder, model.discriminator)
    )
    # The one prior draw of the step: the model's seed generator starts where this one does.
    prior = to_numpy(backends.random_normal((8, 2), keras.random.SeedGenerator(5)))
    model.compile(
        optimizer=keras.optimizers.SGD(lr_reconstruction),
        discriminator_optimizer=keras.optimizers.SGD(lr_regularization),
    )
    model.fit(x, batch_size=8, epochs=1, shuffle=False, verbose=0)
    W2, V1, a2, c2 = expected_step(W, V, a, c, x.astype("float64"), prior.astype("float64"), *rates)
    for got, want in [
        (model.encoder.get_weights()[0], W2),
        (model.decoder.get_weights()[0], V1),
        (model.discriminator.get_weights()[0], a2),
        (model.discriminator.get_weights()[1], c2),
    ]:
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # Where a phase's rate is 0 its own weights stay exactly as they were.
    if lr_reconstruction == 0:
        np.testing.assert_array_equal(model.decoder.get_weights()[0], V.astype("float32"))
    if lr_regularization == 0:
        np.testing.assert_array_equal(model.discriminator.get_weights()[1], c.astype("float32"))
    for optimizer in (model.optimizer, model.discriminator_optimizer):
        assert int(to_numpy(optimizer.iterations)) == 1


def small_model(seed=0, **kwargs):
    encoder, decoder = architectures.mlp((12,), latent_dim=2, hidden_units=(16,), variational=False)
    return AdversarialAE(encoder, decoder, seed=seed, **kwargs)


def binary_data(n=96, seed=0):
    return (np.random.default_rng(seed).random((n, 12)) < 0.3).astype("float32")


def test_fit_logs_every_term_and_evaluate_updates_nothing():
    model = small_model()
    # Two batches per compiled call where the backend runs several (Keras' torch loop: one).
    model.compile(
        optimizer=keras.optimizers.Adam(0.01), steps_per_execution=1 if BACKEND == "torch" else 2
    )
    assert isinstance(model.discriminator_optimizer, keras.optimizers.Adam)  # a copy
    assert model.discriminator_optimizer is not model.optimizer
    assert float(to_numpy(model.discriminator_optimizer.learning_rate)) == pytest.approx(0.01)
    history = model.fit(binary_data(), epochs=3, batch_size=32, verbose=0).history
    for optimizer in (model.optimizer, model.discriminator_optimizer):
        assert int(to_numpy(optimizer.iterations)) == 9
    assert sorted(history) == sorted(["loss", *AdversarialAE.loss_terms])
    assert all(np.all(np.isfinite(values)) for values in history.values())
    assert history["reconstruction_loss"][-1] < history["reconstruction_loss"][0]
    np.testing.assert_allclose(
        history["loss"],
        np.sum([history[name] for name in AdversarialAE.loss_terms], axis=0),
        rtol=1e-5,
    )
    state = [to_numpy(v) for v in model.weights + model.discriminator_optimizer.variables]
    scores = model.evaluate(binary_data(seed=1), batch_size=32, verbose=0, return_dict=True)
    assert set(scores) == set(history) and all(np.isfinite(list(scores.values())))
    for before, after in zip(state, model.weights + model.discriminator_optimizer.variables):
        np.testing.assert_array_equal(to_numpy(after), before)


def _optimizer_state(optimizer):
    return [to_numpy(v) for v in optimizer.variables]


def test_a_keras_file_keeps_both_optimizers_and_training_resumes_exactly(tmp_path):
    x = binary_data()
    model = small_model()
    model.compile(
        optimizer=keras.optimizers.Adam(0.01),
        discriminator_optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
    )
    model.fit(x, epochs=1, batch_size=32, shuffle=False, verbose=0)
    path = os.path.join(tmp_path, "aae.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)  # safe_mode=True
    optimizer = loaded.discriminator_optimizer
    assert isinstance(optimizer, keras.optimizers.SGD) and optimizer.momentum == 0.9
    assert float(to_numpy(optimizer.learning_rate)) == pytest.approx(0.05)
    for original, restored in [
        (model.optimizer, loaded.optimizer),
        (model.discriminator_optimizer, loaded.discriminator_optimizer),
    ]:
        assert int(to_numpy(restored.iterations)) == 3
        for want, got in zip(_optimizer_state(original), _optimizer_state(restored), strict=True):
            np.testing.assert_array_equal(got, want)
    # A .keras file holds no seed generator state (as Keras saves them): given the same prior
    # draws, both go on from the same state, to the same weights after one more epoch.
    loaded.prior_seed_generator.state.assign(to_numpy(model.prior_seed_generator.state))
    for each in (model, loaded):
        each.fit(x, epochs=1, batch_size=32, shuffle=False, verbose=0)
    for want, got in zip(model.weights, loaded.weights, strict=True):
        np.testing.assert_allclose(to_numpy(got), to_numpy(want), rtol=1e-5, atol=1e-6)
    assert int(to_numpy(loaded.discriminator_optimizer.iterations)) == 6


def test_a_backup_restores_both_optimizers(tmp_path):
    x = binary_data()
    model = small_model()
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    backup_dir = tmp_path / "backup"
    model.fit(
        x, epochs=2, batch_size=32, verbose=0, callbacks=[BackupAndRestore(backup_dir, False)]
    )
    fresh = small_model(seed=1)
    fresh.compile(optimizer=keras.optimizers.Adam(0.01))
    fresh.fit(  # resumes after epoch 2 of 2: restores, trains nothing
        x, epochs=2, batch_size=32, verbose=0, callbacks=[BackupAndRestore(backup_dir, False)]
    )
    for original, restored in [
        (model.optimizer, fresh.optimizer),
        (model.discriminator_optimizer, fresh.discriminator_optimizer),
    ]:
        assert int(to_numpy(restored.iterations)) == 6
        for want, got in zip(_optimizer_state(original), _optimizer_state(restored), strict=True):
            np.testing.assert_array_equal(got, want)
    for want, got in zip(model.weights, fresh.weights, strict=True):
        np.testing.assert_array_equal(to_numpy(got), to_numpy(want))


@pytest.mark.parametrize("prior", ["normal", "uniform"])
def test_generate_decodes_numpy_prior_draws(prior):
    model = small_model(prior=prior)
    draws = model.sample_prior(2000, seed=3)
    assert draws.shape == (2000, 2)
    if prior == "uniform":
        assert draws.min() >= -1 and draws.max() <= 1
        np.testing.assert_allclose(draws.std(0), 1 / np.sqrt(3), atol=0.03)
    else:
        np.testing.assert_allclose(draws.std(0), 1.0, atol=0.05)
    np.testing.assert_array_equal(draws, model.sample_prior(2000, seed=3))
    np.testing.assert_allclose(
        model.generate(5, seed=3), model.decode(draws[:5]), rtol=1e-6, atol=1e-6
    )
    assert model.generative and not model.has_likelihood


def test_bad_arguments_are_refused_naming_them():
    with pytest.raises(ValueError, match="`prior` must be one of"):
        small_model(prior="laplace")
    with pytest.raises(ValueError, match="`discriminator` must be a Keras layer"):
        small_model(discriminator="mlp")
    wide = keras.Sequential([keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="one logit per example, shape \\(batch, 1\\)"):
        small_model(discriminator=wide)
    model = small_model()
    optimizer = keras.optimizers.Adam()
    with pytest.raises(ValueError, match="`discriminator_optimizer` must be another optimizer"):
        model.compile(optimizer=optimizer, discriminator_optimizer=optimizer)
    with pytest.raises(ValueError, match="`discriminator_optimizer` must be a Keras optimizer"):
        model.compile(discriminator_optimizer="no-such-optimizer")
    with pytest.raises(ValueError, match="`optimizer` must be an optimizer without use_ema"):
        model.compile(optimizer=keras.optimizers.Adam(use_ema=True))
    assert not model.compiled  # refused before compiling
    model.compile(optimizer="adam", discriminator_optimizer="adam")  # two optimizers of a name
    assert model.optimizer is not model.discriminator_optimizer


@pytest.mark.parametrize("policy", ["mixed_float16", "float32"])
def test_a_model_built_by_fit_and_mixed_precision_train_both_phases(policy):
    """Keras builds ``optimizer`` on every trainable variable where fit builds the model (its
    phase passes no gradient for the discriminator); Keras wraps it in a LossScaleOptimizer
    under mixed_float16, and the discriminator's optimizer too."""
    keras.config.set_dtype_policy(policy)
    model = small_model()
    x = binary_data()
    if policy == "float32":  # an encoder without an input shape: built by fit
        encoder = keras.Sequential([keras.layers.Dense(16, "relu"), keras.layers.Dense(2)])
        model = AdversarialAE(encoder, model.decoder, seed=0)
        assert not model.built
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    wrapped = policy == "mixed_float16"
    assert isinstance(model.discriminator_optimizer, keras.optimizers.LossScaleOptimizer) is wrapped
    model.fit(x, epochs=1, batch_size=32, verbose=0)
    discriminator = [to_numpy(v) for v in model.discriminator.weights]
    history = model.fit(x, epochs=2, batch_size=32, verbose=0).history
    assert all(np.all(np.isfinite(values)) for values in history.values())
    if not wrapped:  # a loss-scaled step that overflows is skipped, and not counted
        for optimizer in (model.optimizer, model.discriminator_optimizer):
            assert int(to_numpy(optimizer.iterations)) == 9
    assert all(np.all(np.isfinite(to_numpy(v))) for v in model.weights)
    assert any(
        not np.array_equal(before, to_numpy(after))
        for before, after in zip(discriminator, model.discriminator.weights)
    )
    if not wrapped:  # the one-phase default trains such a model too
        encoder = keras.Sequential([keras.layers.Dense(16, "relu"), keras.layers.Dense(2)])
        ae = AE(encoder, model.decoder)
        ae.compile(optimizer=keras.optimizers.Adam(0.01))
        losses = ae.fit(x, epochs=3, batch_size=32, verbose=0).history["loss"]
        assert losses[-1] < losses[0] and int(to_numpy(ae.optimizer.iterations)) == 9


@pytest.mark.slow  # from PyTorch a TensorFlow process writes it
def test_the_savedmodel_serves_generate_encode_and_decode(tmp_path):
    from keras_vae.export import SAVED_MODEL_BACKENDS

    if BACKEND not in SAVED_MODEL_BACKENDS:
        pytest.skip(f"no SavedModel export from {BACKEND}")
    import tensorflow as tf

    model = small_model()
    model.compile(optimizer="adam")
    model.fit(binary_data(), epochs=1, batch_size=32, verbose=0)
    path = os.path.join(tmp_path, "aae", "1")
    model.export(path, verbose=False)
    signatures = tf.saved_model.load(path).signatures
    assert set(signatures) == {"serving_default", "encode", "decode", "generate"}
    eps = model.sample_prior(4, seed=0)
    x = binary_data(4, seed=2)
    served = {
        "generate": signatures["generate"](eps=tf.constant(eps))["x"],
        "decode": signatures["decode"](z=tf.constant(eps))["x"],
        "encode": signatures["encode"](x=tf.constant(x))["code"],
    }
    for name, want in [
        ("generate", model.generate(4, seed=0)),
        ("decode", model.decode(eps)),
        ("encode", model.encode(x)),
    ]:
        np.testing.assert_allclose(served[name].numpy(), want, rtol=1e-5, atol=1e-5)


def _code_moments(model, x):
    codes = model.encode(x)
    return codes.mean(0), codes.std(0)


def _distance_to_prior(mean, std):
    """Root mean square over code units of the mean's and the std's distance to N(0, 1)'s."""
    return float(np.sqrt(np.mean(np.square(mean) + np.square(std - 1.0))))


@pytest.mark.slow
@pytest.mark.skipif(
    not os.path.isfile(os.path.join(FASHION_MNIST, "train-images-idx3-ubyte.gz")),
    reason="needs Debian's dataset-fashion-mnist",
)
def test_on_fashion_mnist_the_codes_follow_the_prior_and_a_plain_aes_do_not():
    """4096 training images, 30 epochs of batches of 64 (1920 steps), a 4-unit code; codes of
    1000 test images. The learning rates decay (cosine from 1e-3 to 2 % of it): at a constant
    rate the codes' means keep swinging around the prior's, by up to about 1, as the encoder
    and the discriminator chase each other (as in other GANs). Seeds 0-5 on TensorFlow: every
    |mean| <= 0.10 and |std - 1| <= 0.12 (half as many steps: |std - 1| up to 0.28); the AE's
    codes are 10-20 from N(0, 1)."""
    x, _ = data.load_numpy("fashion_mnist", "train[:4096]", idx_dir=FASHION_MNIST, flatten=True)
    x_test, _ = data.load_numpy("fashion_mnist", "test[:1000]", idx_dir=FASHION_MNIST, flatten=True)
    epochs, batch_size = 30, 64
    steps = epochs * len(x) // batch_size

    def adam():
        schedule = keras.optimizers.schedules.CosineDecay(1e-3, steps, alpha=0.02)
        return keras.optimizers.Adam(schedule)

    moments = {}
    for name, cls in [("aae", AdversarialAE), ("ae", AE)]:
        keras.utils.set_random_seed(0)
        encoder, decoder = architectures.mlp(
            (784,), latent_dim=4, hidden_units=(128,), variational=False
        )
        options = {"seed": 0} if cls is AdversarialAE else {}
        model = cls(encoder, decoder, reconstruction_loss="bernoulli", **options)
        model.compile(optimizer=adam(), **({"discriminator_optimizer": adam()} if options else {}))
        model.fit(x, epochs=epochs, batch_size=batch_size, verbose=0)
        moments[name] = _code_moments(model, x_test)
    mean, std = moments["aae"]
    assert np.all(np.abs(mean) < 0.3), mean
    assert np.all(np.abs(std - 1.0) < 0.3), std
    aae_distance = _distance_to_prior(*moments["aae"])
    ae_distance = _distance_to_prior(*moments["ae"])
    assert aae_distance < 0.05 * ae_distance, (aae_distance, ae_distance)
