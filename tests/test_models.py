"""AE, DAE, VAE and CVAE on the current backend: losses, fit/evaluate/predict, saving."""

import json
import os

import keras
import numpy as np
import pytest
from conftest import BACKEND, run_python, to_numpy

from keras_vae import AE, CVAE, DAE, VAE, InvalidInputError, architectures
from keras_vae.backends import AUTO_STEPS_PER_EXECUTION
from keras_vae.callbacks import KLWarmup, SampleGrid

DIM = 12


def binary_data(n=256, dim=DIM, seed=0):
    """Binary vectors from 4 prototypes with flipped bits: learnable in a few epochs."""
    rng = np.random.default_rng(seed)
    prototypes = rng.random((4, dim)) > 0.5
    labels = rng.integers(0, 4, n)
    flips = rng.random((n, dim)) < 0.05
    return (prototypes[labels] ^ flips).astype("float32"), labels


def make(kind, dim=DIM, latent_dim=2, **kwargs):
    variational = kind in ("vae", "cvae")
    encoder, decoder = architectures.mlp(
        (dim,), latent_dim=latent_dim, hidden_units=(16,), variational=variational
    )
    model = {"ae": AE, "dae": DAE, "vae": VAE}.get(kind)
    if kind == "cvae":
        return CVAE(encoder, decoder, num_classes=4, seed=0, **kwargs)
    defaults = {"reconstruction_loss": "bernoulli"} if kind != "vae" else {"seed": 0}
    if kind == "dae":
        defaults["seed"] = 0
    return model(encoder, decoder, **{**defaults, **kwargs})


def fit_args(kind, x, labels):
    return (x, labels) if kind == "cvae" else (x,)


METRICS = {
    "ae": {"loss", "reconstruction_loss"},
    "dae": {"loss", "reconstruction_loss"},
    "vae": {"loss", "reconstruction_loss", "kl_loss"},
    "cvae": {"loss", "reconstruction_loss", "kl_loss"},
}


# ------------------------------------------------------- exact loss terms
def _set_known_weights(model, rng):
    for variable in model.trainable_variables:
        variable.assign(rng.normal(scale=0.5, size=variable.shape).astype("float32"))


def _dense_forward(model_part, inputs):
    """Numpy forward pass of an mlp() encoder/decoder (Dense layers, relu hidden)."""
    weights = {layer.name: [to_numpy(w) for w in layer.weights] for layer in model_part.layers}
    return weights


def _bce_logits(x, logits):
    return np.sum(np.maximum(logits, 0) - logits * x + np.log1p(np.exp(-np.abs(logits))), axis=1)


def _relu(v):
    return np.maximum(v, 0)


def _mlp_numpy(model_part, inputs, heads):
    w = _dense_forward(model_part, inputs)
    (dense,) = [name for name in w if name.endswith("dense_0")]
    hidden = _relu(inputs @ w[dense][0] + w[dense][1])
    return [hidden @ w[h][0] + w[h][1] for h in heads]


@pytest.mark.parametrize("beta", [1.0, 0.25])
def test_vae_loss_terms_equal_the_hand_computed_elbo(beta, rng):
    x, _ = binary_data(8)
    model = make("vae", beta=beta)
    _set_known_weights(model, rng)
    eps = rng.standard_normal((8, 2)).astype("float32")
    sample_weight = np.linspace(0.0, 2.0, 8).astype("float32")
    _, terms = model.compute_loss_terms(x, noise=eps, training=True, sample_weight=sample_weight)
    z_mean, z_log_var = _mlp_numpy(model.encoder, x, ["z_mean", "z_log_var"])
    z = z_mean + np.exp(0.5 * z_log_var) * eps
    (logits,) = _mlp_numpy(model.decoder, z, ["outputs"])
    reconstruction = np.sum(sample_weight * _bce_logits(x, logits)) / 8
    kl_per_example = 0.5 * np.sum(z_mean**2 + np.exp(z_log_var) - z_log_var - 1, axis=1)
    kl = np.sum(sample_weight * kl_per_example) / 8
    np.testing.assert_allclose(to_numpy(terms["reconstruction_loss"]), reconstruction, rtol=1e-5)
    np.testing.assert_allclose(to_numpy(terms["kl_loss"]), kl, rtol=1e-5)
    np.testing.assert_allclose(to_numpy(terms["loss"]), reconstruction + beta * kl, rtol=1e-5)


def test_cvae_loss_terms_use_the_class_mean_prior(rng):
    x, labels = binary_data(8)
    model = make("cvae")
    _set_known_weights(model, rng)
    eps = rng.standard_normal((8, 2)).astype("float32")
    _, terms = model.compute_loss_terms(x, labels, noise=eps, training=True)
    z_mean, z_log_var = _mlp_numpy(model.encoder, x, ["z_mean", "z_log_var"])
    means = model.class_means()[labels]
    z = z_mean + np.exp(0.5 * z_log_var) * eps
    (logits,) = _mlp_numpy(model.decoder, z, ["outputs"])
    kl = np.mean(0.5 * np.sum((z_mean - means) ** 2 + np.exp(z_log_var) - z_log_var - 1, axis=1))
    np.testing.assert_allclose(to_numpy(terms["kl_loss"]), kl, rtol=1e-5)
    np.testing.assert_allclose(
        to_numpy(terms["reconstruction_loss"]), np.mean(_bce_logits(x, logits)), rtol=1e-5
    )


@pytest.mark.parametrize("noise", ["gaussian", "dropout"])
def test_dae_scores_the_corrupted_reconstruction_against_the_clean_input(noise, rng):
    x, _ = binary_data(8)
    model = make("dae", noise=noise, noise_stddev=0.3, dropout_rate=0.25, reconstruction_loss="mse")
    _set_known_weights(model, rng)
    draw = rng.standard_normal(x.shape) if noise == "gaussian" else rng.random(x.shape) > 0.25
    draw = draw.astype("float32")
    noisy = x + 0.3 * draw if noise == "gaussian" else x * draw / 0.75
    _, terms = model.compute_loss_terms(x, noise=draw, training=True)
    (code,) = _mlp_numpy(model.encoder, noisy, ["code"])
    (output,) = _mlp_numpy(model.decoder, code, ["outputs"])
    expected = np.mean(np.sum((output - x) ** 2, axis=1))
    np.testing.assert_allclose(to_numpy(terms["loss"]), expected, rtol=1e-5)
    # Evaluation does not corrupt.
    _, clean_terms = model.compute_loss_terms(x, training=False)
    (code,) = _mlp_numpy(model.encoder, x, ["code"])
    (output,) = _mlp_numpy(model.decoder, code, ["outputs"])
    np.testing.assert_allclose(
        to_numpy(clean_terms["loss"]), np.mean(np.sum((output - x) ** 2, axis=1)), rtol=1e-5
    )
    np.testing.assert_allclose(model.corrupt(x, seed=1), model.corrupt(x, seed=1))


@pytest.mark.parametrize("loss", ["gaussian", "mse"])
def test_ae_gaussian_and_mse_losses(loss, rng):
    x, _ = binary_data(8)
    model = make("ae", reconstruction_loss=loss)
    _set_known_weights(model, rng)
    _, terms = model.compute_loss_terms(x, training=False)
    (code,) = _mlp_numpy(model.encoder, x, ["code"])
    (output,) = _mlp_numpy(model.decoder, code, ["outputs"])
    squared = np.sum((output - x) ** 2, axis=1)
    expected = squared if loss == "mse" else 0.5 * squared + 0.5 * DIM * np.log(2 * np.pi)
    np.testing.assert_allclose(to_numpy(terms["loss"]), expected.mean(), rtol=1e-5)


# ------------------------------------------------------------ fit & co.
@pytest.mark.parametrize("kind", ["ae", "dae", "vae", "cvae"])
def test_fit_lowers_the_loss_and_logs_the_right_names(kind):
    x, labels = binary_data(512)
    model = make(kind)
    model.compile(optimizer=keras.optimizers.Adam(0.01), metrics=["mae"])
    history = model.fit(
        *fit_args(kind, x, labels),
        epochs=8,
        batch_size=64,
        verbose=0,
        validation_data=fit_args(kind, x[:128], labels[:128]),
    ).history
    expected = METRICS[kind] | {"mae"}
    assert set(history) == expected | {f"val_{name}" for name in expected}
    assert history["loss"][-1] < history["loss"][0] - 1.0  # nats per example
    assert np.all(np.isfinite(history["val_loss"]))
    results = model.evaluate(*fit_args(kind, x[:128], labels[:128]), verbose=0, return_dict=True)
    assert set(results) == expected
    if kind in ("vae", "cvae"):
        assert results["loss"] == pytest.approx(
            results["reconstruction_loss"] + results["kl_loss"], rel=1e-4
        )


@pytest.mark.parametrize("kind", ["ae", "vae", "cvae"])
def test_predict_is_the_deterministic_reconstruction(kind):
    x, labels = binary_data(300)
    model = make(kind)
    model.compile(optimizer="adam")
    model.fit(*fit_args(kind, x, labels), epochs=1, batch_size=64, verbose=0)
    inputs = [x, labels] if kind == "cvae" else x
    predicted = model.predict(inputs, batch_size=64, verbose=0)
    again = model.predict(inputs, batch_size=128, verbose=0)
    assert predicted.shape == x.shape
    np.testing.assert_allclose(predicted, again, rtol=1e-5, atol=1e-6)
    reconstructed = model.reconstruct(x, labels) if kind == "cvae" else model.reconstruct(x)
    np.testing.assert_allclose(predicted, reconstructed, rtol=1e-5, atol=1e-6)
    assert predicted.min() >= 0 and predicted.max() <= 1  # Bernoulli means


def test_vae_numpy_api_shapes_and_seeds():
    x, _ = binary_data(300)
    model = make("vae", latent_dim=3)
    z_mean, z_log_var = model.encode(x)
    assert z_mean.shape == z_log_var.shape == (300, 3)
    assert model.decode(z_mean).shape == x.shape
    samples = model.generate(5, seed=3)
    assert samples.shape == (5, DIM)
    np.testing.assert_allclose(samples, model.generate(5, seed=3))
    assert not np.allclose(samples, model.generate(5, seed=4))
    assert model.interpolate(x[0], x[1], steps=7).shape == (7, DIM)
    assert model.interpolate(x[:3], x[3:6], steps=4).shape == (3, 4, DIM)
    with pytest.raises(ValueError, match=r"`x` must have shape \(n, 12\)"):
        model.encode(np.zeros((2, 5)))
    with pytest.raises(ValueError, match=r"z must have shape \(batch, 3\)"):
        model.decode(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="positive integer"):
        model.generate(0)


# ------------------------------------------- numpy API: one signature on every model
@pytest.mark.parametrize("kind", ["ae", "dae", "vae"])
def test_models_without_labels_refuse_them(kind):
    x, labels = binary_data(8)
    model = make(kind)
    codes = model.encode(x)
    z = codes[0] if isinstance(codes, tuple) else codes
    calls = {
        "encode": lambda: model.encode(x, labels),
        "decode": lambda: model.decode(z, labels),
        "reconstruct": lambda: model.reconstruct(x, labels),
        "interpolate": lambda: model.interpolate(x[:2], x[2:4], steps=3, labels=labels[:2]),
    }
    name = type(model).__name__
    for method, call in calls.items():
        shape = r"\(2,\)" if method == "interpolate" else r"\(8,\)"
        with pytest.raises(InvalidInputError, match=rf"{name} takes no labels; .* shape {shape}"):
            call()
    # The same keyword arguments everywhere; batch_size changes nothing.
    np.testing.assert_allclose(
        model.reconstruct(x, batch_size=3), model.reconstruct(x), rtol=1e-6, atol=1e-6
    )
    np.testing.assert_allclose(
        model.decode(z, labels=None, batch_size=3), model.decode(z), rtol=1e-6, atol=1e-6
    )


@pytest.mark.parametrize("kind", ["vae", "cvae"])
def test_interpolate_decodes_the_line_between_posterior_means(kind):
    x, labels = binary_data(4)
    model = make(kind)
    _set_known_weights(model, np.random.default_rng(4))
    pair_labels = labels[:2] if kind == "cvae" else None  # the CVAE checks them, needs none
    path = model.interpolate(x[:2], x[2:4], steps=3, labels=pair_labels, batch_size=2)
    z_mean, _ = model.encode(x)
    middle = 0.5 * (z_mean[:2] + z_mean[2:4])
    assert path.shape == (2, 3, DIM)
    for step, z in [(0, z_mean[:2]), (1, middle), (2, z_mean[2:4])]:
        np.testing.assert_allclose(path[:, step], model.decode(z), rtol=1e-5, atol=1e-6)
    single = model.interpolate(x[0], x[2], steps=3, labels=None if kind == "vae" else labels[0])
    np.testing.assert_allclose(single, path[0], rtol=1e-5, atol=1e-6)


def test_cvae_takes_labels_where_it_is_conditioned():
    x, labels = binary_data(16)
    plain = make("cvae")  # the label shapes only the prior
    _set_known_weights(plain, np.random.default_rng(5))
    # Not needed where nothing is conditioned; given, they are checked and change nothing.
    np.testing.assert_allclose(plain.reconstruct(x), plain.reconstruct(x, labels), rtol=1e-6)
    np.testing.assert_allclose(plain.encode(x)[0], plain.encode(x, labels)[0], rtol=1e-6)
    with pytest.raises(InvalidInputError, match=r"`labels` must lie in \[0, 4\)"):
        plain.encode(x, labels + 4)
    with pytest.raises(InvalidInputError, match=r"one label per example \(16\)"):
        plain.decode(plain.encode(x)[0], labels[:3])

    encoder, decoder = architectures.mlp((DIM,), latent_dim=2, hidden_units=(16,), num_classes=4)
    both = CVAE(encoder, decoder, 4, condition_encoder=True, condition_decoder=True, seed=0)
    _set_known_weights(both, np.random.default_rng(6))
    z_mean, _ = both.encode(x, labels)
    for call, message in [
        (lambda: both.encode(x), r"conditions its encoder: encode\(x, labels\)"),
        (lambda: both.decode(z_mean), r"conditions its decoder: decode\(z, labels\)"),
        (lambda: both.reconstruct(x), r"conditions on the label: reconstruct\(x, labels\)"),
    ]:
        with pytest.raises(InvalidInputError, match=message):
            call()
    reconstruction = both.reconstruct(x, labels, batch_size=5)
    np.testing.assert_allclose(both.decode(z_mean, labels), reconstruction, rtol=1e-5, atol=1e-6)
    other = both.reconstruct(x, (labels + 1) % 4)
    assert np.abs(other - reconstruction).mean() > 1e-3  # the label reaches the output
    with pytest.raises(ValueError, match=r"interpolate\(\) is defined for CVAEs without label"):
        both.interpolate(x[0], x[1], labels=labels[0])


def test_compile_rejects_a_loss():
    with pytest.raises(ValueError, match="pass reconstruction_loss="):
        make("vae").compile(optimizer="adam", loss="mse")


def test_constructor_validation():
    encoder, decoder = architectures.mlp((4,), 2)
    with pytest.raises(ValueError, match="reconstruction_loss"):
        VAE(encoder, decoder, reconstruction_loss="laplace")
    with pytest.raises(ValueError, match="`encoder` must be a Keras layer"):
        VAE("encoder", decoder)
    with pytest.raises(ValueError, match="noise"):
        DAE(*architectures.mlp((4,), 2, variational=False), noise="salt")
    with pytest.raises(ValueError, match="num_classes"):
        CVAE(encoder, decoder, num_classes=1)


# ------------------------------------------------------------ data forms
def _generator(batches):
    def gen():
        while True:
            yield from batches

    return gen()


def test_fit_accepts_datasets_generators_and_sample_weights():
    import tensorflow as tf

    x, labels = binary_data(256)
    clean, noisy = x, np.clip(x + 0.1, 0, 1)
    model = make("ae")
    model.compile(optimizer="adam")
    model.fit(tf.data.Dataset.from_tensor_slices(x).batch(64), epochs=1, verbose=0)
    model.fit(tf.data.Dataset.from_tensor_slices((noisy, clean)).batch(64), epochs=1, verbose=0)
    model.fit(noisy, clean, batch_size=64, epochs=1, verbose=0)
    batches = [x[i : i + 64] for i in range(0, 256, 64)]
    for form in (
        [b for b in batches],
        [(b,) for b in batches],
        [(b, b) for b in batches],
        [(b, b, np.ones(len(b), "float32")) for b in batches],
    ):
        history = model.fit(_generator(form), steps_per_epoch=4, epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"][0])

    # Weights: zero weight on half the examples == that half left out (times 1/2).
    weights = np.r_[np.ones(128), np.zeros(128)].astype("float32")
    weighted = model.evaluate(
        x, x, sample_weight=weights, batch_size=256, verbose=0, return_dict=True
    )["loss"]
    half = model.evaluate(x[:128], x[:128], batch_size=128, verbose=0, return_dict=True)["loss"]
    assert weighted == pytest.approx(half / 2, rel=1e-5)

    cvae = make("cvae")
    cvae.compile(optimizer="adam")
    dataset = tf.data.Dataset.from_tensor_slices((x, labels)).batch(64)
    assert np.isfinite(cvae.fit(dataset, epochs=1, verbose=0).history["loss"][0])
    pairs = [(x[i : i + 64], labels[i : i + 64]) for i in range(0, 256, 64)]
    assert np.isfinite(
        cvae.fit(_generator(pairs), steps_per_epoch=4, epochs=1, verbose=0).history["loss"][0]
    )


def test_cvae_needs_labels_in_range():
    x, labels = binary_data(64)
    model = make("cvae")
    model.compile(optimizer="adam")
    with pytest.raises(ValueError, match="CVAE needs labels"):
        model.fit(x, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"`labels` must lie in \[0, 4\)"):
        model.generate(np.array([0, 4]))
    with pytest.raises(ValueError, match=r"one label per example \(64\)"):
        model.reconstruct(x, labels[:10])


# --------------------------------------------------- compile options
# torch.compile takes about a minute per model on 2 CPU cores: one model suffices there.
@pytest.mark.slow
@pytest.mark.parametrize("kind", ["vae"] if BACKEND == "torch" else ["dae", "vae"])
def test_jit_compile_and_steps_per_execution(kind):
    x, labels = binary_data(512)
    model = make(kind)
    # Keras allows steps_per_execution > 1 on TensorFlow and JAX only.
    steps = 1 if BACKEND == "torch" else 4
    model.compile(
        optimizer=keras.optimizers.Adam(0.01), jit_compile=True, steps_per_execution=steps
    )
    history = model.fit(x, epochs=3, batch_size=64, verbose=0).history
    assert history["loss"][-1] < history["loss"][0]


# compile(steps_per_execution="auto"): several batches per call unless a callback needs each.
AUTO = AUTO_STEPS_PER_EXECUTION  # 32 on TensorFlow, 1 on JAX and torch


class _BatchLog(keras.callbacks.Callback):
    """Records the batch indices fit shows it, and the model's steps per execution."""

    def __init__(self, needs_every_batch=None):
        super().__init__()
        if needs_every_batch is not None:
            self.needs_every_batch = needs_every_batch
        self.batches = []

    def on_train_batch_end(self, batch, logs=None):
        self.batches.append((batch, self.model.steps_per_execution))


def test_auto_steps_per_execution_resolves_per_call():
    x, _ = binary_data(320)
    model = make("vae")
    model.compile(optimizer="adam")  # steps_per_execution="auto"
    assert model.get_compile_config()["steps_per_execution"] == "auto"
    model.fit(x, epochs=1, batch_size=4, verbose=0)  # 80 batches
    assert model.steps_per_execution == AUTO
    model.evaluate(x, batch_size=4, verbose=0)
    assert model.steps_per_execution == AUTO
    assert model.predict(x[:8], batch_size=4, verbose=0).shape == (8, DIM)
    assert model.steps_per_execution == 1  # predict: one batch per call

    # A callback with a batch hook sees every batch, as with Keras' default.
    log = _BatchLog()
    model.fit(x, epochs=1, batch_size=4, verbose=0, callbacks=[log])
    assert log.batches == [(b, 1) for b in range(80)]
    lambda_seen = []
    model.fit(
        x,
        epochs=1,
        batch_size=4,
        verbose=0,
        callbacks=[
            keras.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: lambda_seen.append(b))
        ],
    )
    assert lambda_seen == list(range(80))
    # ... unless it says it does not need to.
    tolerant = _BatchLog(needs_every_batch=False)
    model.fit(x, epochs=1, batch_size=4, verbose=0, callbacks=[tolerant])
    assert len(tolerant.batches) == -(-80 // AUTO)  # called once per call of AUTO batches
    assert {steps for _, steps in tolerant.batches} == {AUTO}
    # An integer is Keras' own setting: used as given.
    model.compile(optimizer="adam", steps_per_execution=1)
    model.fit(x, epochs=1, batch_size=4, verbose=0)
    assert model.steps_per_execution == 1


@pytest.mark.parametrize(
    "callback, every_batch",
    [
        (lambda d: keras.callbacks.EarlyStopping(monitor="loss"), False),
        (lambda d: keras.callbacks.CSVLogger(os.path.join(d, "log.csv")), False),
        (lambda d: keras.callbacks.TerminateOnNaN(), False),
        (lambda d: keras.callbacks.ModelCheckpoint(os.path.join(d, "m.keras")), False),
        (lambda d: keras.callbacks.ModelCheckpoint(os.path.join(d, "m.keras"), save_freq=3), True),
        (lambda d: keras.callbacks.BackupAndRestore(os.path.join(d, "b")), False),
        (lambda d: keras.callbacks.BackupAndRestore(os.path.join(d, "b"), save_freq=3), True),
        (lambda d: KLWarmup(2, per_batch=False), False),
        (lambda d: KLWarmup(2), True),
        (lambda d: SampleGrid(os.path.join(d, "g"), every=5), False),
    ],
    ids=[
        "early_stopping",
        "csv_logger",
        "terminate_on_nan",
        "checkpoint_per_epoch",
        "checkpoint_per_3_batches",
        "backup_per_epoch",
        "backup_per_3_batches",
        "kl_warmup_per_epoch",
        "kl_warmup_per_batch",
        "sample_grid",
    ],
)
def test_auto_steps_per_execution_reads_each_callbacks_needs(callback, every_batch, tmp_path):
    x, _ = binary_data(128)
    model = make("vae")
    model.compile(optimizer="adam")
    model.fit(x, epochs=1, batch_size=4, verbose=0, callbacks=[callback(str(tmp_path))])
    assert model.steps_per_execution == (1 if every_batch else AUTO)


def test_auto_steps_per_execution_trains_the_same_weights():
    """Many batches per call changes how often Python runs, not the training: same weights,
    same optimizer state, same logged losses as one batch per call."""
    x, _ = binary_data(200)
    results = []
    for steps in (1, "auto"):
        keras.utils.set_random_seed(5)
        model = make("vae")
        model.compile(optimizer=keras.optimizers.Adam(0.01), steps_per_execution=steps)
        history = model.fit(x, epochs=2, batch_size=8, shuffle=False, verbose=0).history
        score = model.evaluate(x, batch_size=8, verbose=0, return_dict=True)
        weights = [to_numpy(v) for v in model.trainable_variables + model.optimizer.variables]
        results.append((weights, history["loss"], score["loss"]))
    assert model.steps_per_execution == AUTO
    (w1, h1, s1), (w2, h2, s2) = results
    for a, b in zip(w1, w2):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h1, h2, rtol=1e-5)
    np.testing.assert_allclose(s1, s2, rtol=1e-5)


def test_auto_steps_per_execution_keeps_compiled_functions_until_recompile():
    x, _ = binary_data(64)
    model = make("vae")
    model.compile(optimizer="adam")
    model.fit(x, epochs=1, batch_size=8, verbose=0)
    first = model.train_function
    model.fit(x, epochs=1, batch_size=8, verbose=0, callbacks=[_BatchLog()])  # 1 per call
    model.fit(x, epochs=1, batch_size=8, verbose=0)
    assert model.train_function is first  # no new trace for switching back
    model.compile(optimizer="adam")
    model.fit(x, epochs=1, batch_size=8, verbose=0)
    assert model.train_function is not first


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "fast", None, np.array([4])])
def test_compile_rejects_a_bad_steps_per_execution(bad):
    model = make("vae")
    with pytest.raises(ValueError, match="steps_per_execution.*must be 'auto' or a positive"):
        model.compile(optimizer="adam", steps_per_execution=bad)
    assert not model.compiled
    model.compile(optimizer="adam", steps_per_execution=np.int64(3))  # numpy ints are fine
    assert model.steps_per_execution == 3


def test_auto_steps_per_execution_survives_saving(tmp_path):
    x, _ = binary_data(64)
    model = make("vae")
    model.compile(optimizer="adam")
    model.fit(x, epochs=1, batch_size=8, verbose=0)
    path = os.path.join(tmp_path, "vae.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert loaded.get_compile_config()["steps_per_execution"] == "auto"
    loaded.fit(x, epochs=1, batch_size=8, verbose=0)
    assert loaded.steps_per_execution == AUTO


# TensorFlow: with jit_compile="auto" on a CPU the optimizer update alone runs under XLA.
OPTIMIZERS = {
    "adam": lambda: keras.optimizers.Adam(0.01),
    "adamw_amsgrad": lambda: keras.optimizers.AdamW(0.01, weight_decay=0.1, amsgrad=True),
    "sgd_nesterov_clipvalue": lambda: keras.optimizers.SGD(
        0.01, momentum=0.9, nesterov=True, clipvalue=0.01
    ),
    "rmsprop_centered": lambda: keras.optimizers.RMSprop(0.001, momentum=0.5, centered=True),
    "lion_global_clipnorm": lambda: keras.optimizers.Lion(0.001, global_clipnorm=0.5),
    "adam_ema": lambda: keras.optimizers.Adam(0.01, use_ema=True, ema_overwrite_frequency=2),
    "adam_accumulation": lambda: keras.optimizers.Adam(0.01, gradient_accumulation_steps=2),
    "adam_schedule": lambda: keras.optimizers.Adam(
        keras.optimizers.schedules.ExponentialDecay(0.01, 2, 0.5)
    ),
    "loss_scale": lambda: keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam(0.01)),
}


def _fit_weights(kind, make_optimizer, jit_compile):
    x, labels = binary_data(96)
    keras.utils.set_random_seed(3)
    model = make(kind)
    model.compile(optimizer=make_optimizer(), jit_compile=jit_compile)
    history = model.fit(
        *fit_args(kind, x, labels), batch_size=16, epochs=2, shuffle=False, verbose=0
    )
    weights = [to_numpy(v) for v in model.trainable_variables + model.optimizer.variables]
    return model, weights, history.history["loss"]


@pytest.mark.skipif(BACKEND != "tensorflow", reason="the XLA optimizer update is TensorFlow's")
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_tf_xla_optimizer_update_equals_keras_update(name):
    fused, fused_weights, fused_loss = _fit_weights("vae", OPTIMIZERS[name], "auto")
    plain, plain_weights, plain_loss = _fit_weights("vae", OPTIMIZERS[name], False)
    assert fused.compiles_optimizer_update() and not plain.compiles_optimizer_update()
    assert "_keras_vae_compiled_update" in fused.__dict__
    assert "_keras_vae_compiled_update" not in plain.__dict__
    iterations = [int(to_numpy(m.optimizer.iterations)) for m in (fused, plain)]
    assert iterations[0] == iterations[1] == (6 if "accumulation" in name else 12)
    np.testing.assert_allclose(fused_loss, plain_loss, rtol=1e-5)
    for a, b in zip(fused_weights, plain_weights):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(BACKEND != "tensorflow", reason="the XLA optimizer update is TensorFlow's")
def test_tf_xla_optimizer_update_takes_sparse_gradients_and_mixed_precision():
    # The CVAE's class-mean prior is gathered by label: its gradient is tf.IndexedSlices.
    fused, fused_weights, _ = _fit_weights("cvae", OPTIMIZERS["adam"], "auto")
    _, plain_weights, _ = _fit_weights("cvae", OPTIMIZERS["adam"], False)
    assert fused.compiles_optimizer_update()
    for a, b in zip(fused_weights, plain_weights):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    keras.config.set_dtype_policy("mixed_float16")
    model, weights, losses = _fit_weights("vae", OPTIMIZERS["adam"], "auto")
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert model.compiles_optimizer_update()
    assert all(np.all(np.isfinite(w)) for w in weights) and losses[-1] < losses[0]


@pytest.mark.skipif(BACKEND != "tensorflow", reason="the XLA optimizer update is TensorFlow's")
def test_tf_xla_optimizer_update_only_where_it_is_safe():
    class HomeMadeSGD(keras.optimizers.SGD):  # not Keras' own: may use ops XLA lacks
        pass

    model = make("vae")
    for kwargs, expected in [
        ({}, True),
        ({"jit_compile": "auto"}, True),
        ({"jit_compile": False}, False),  # explicit: no XLA anywhere
        ({"jit_compile": True}, False),  # the whole step is XLA already
        ({"run_eagerly": True}, False),
        ({"optimizer": HomeMadeSGD(0.01)}, False),
        ({"optimizer": keras.optimizers.LossScaleOptimizer(HomeMadeSGD(0.01))}, False),
    ]:
        model.compile(**{"optimizer": "adam", **kwargs})
        assert model.compiles_optimizer_update() is expected, kwargs
    # A recompile with another optimizer gets its own compiled update, and it trains.
    x, _ = binary_data(64)
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    model.fit(x, batch_size=32, epochs=1, verbose=0)
    first = model.__dict__["_keras_vae_compiled_update"]
    model.compile(optimizer=keras.optimizers.SGD(0.01))
    losses = model.fit(x, batch_size=32, epochs=4, verbose=0).history["loss"]
    assert model.__dict__["_keras_vae_compiled_update"] is not first
    assert int(to_numpy(model.optimizer.iterations)) == 8 and losses[-1] < losses[0]


@pytest.mark.skipif(BACKEND == "tensorflow", reason="TensorFlow's case is tested above")
def test_jax_and_torch_never_compile_the_update_apart():
    model = make("vae")
    model.compile(optimizer="adam")
    assert model.compiles_optimizer_update() is False


@pytest.mark.skipif(BACKEND != "jax", reason="Keras' per-step JAX state")
def test_jax_loop_state_is_stored_untracked_and_still_syncs_into_callbacks():
    # keras_vae stores the state Keras' JAX loop hands back after every batch as a plain dict
    # (Keras' tracker walked it each step); a callback that reads the model must still see
    # each step's weights.
    x, _ = binary_data(128)
    model = make("vae")
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    seen = []

    class Spy(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            state = self._model._jax_state  # before `self.model`, which syncs it
            assert type(state) is dict and type(state["trainable_variables"]) is list
            seen.append(to_numpy(self.model.trainable_variables[0]).copy())

    model.fit(x, batch_size=32, epochs=1, verbose=0, callbacks=[Spy()], shuffle=False)
    assert len(seen) == 4
    assert all(not np.allclose(a, b) for a, b in zip(seen, seen[1:]))
    np.testing.assert_array_equal(seen[-1], to_numpy(model.trainable_variables[0]))
    assert model._jax_state is None  # Keras drops it after fit, as before


def _mixed_policy():
    return "mixed_bfloat16" if BACKEND == "jax" else "mixed_float16"


@pytest.mark.parametrize("kind", ["ae", "vae", "cvae"])
def test_mixed_precision_trains_and_moves_the_weights(kind):
    keras.config.set_dtype_policy(_mixed_policy())
    x, labels = binary_data(256)
    model = make(kind)
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    if _mixed_policy() == "mixed_float16":
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    before = [to_numpy(v).copy() for v in model.trainable_variables]
    history = model.fit(*fit_args(kind, x, labels), epochs=3, batch_size=64, verbose=0).history
    after = [to_numpy(v) for v in model.trainable_variables]
    assert all(np.all(np.isfinite(h)) for h in history.values())
    assert all(not np.allclose(a, b) for a, b in zip(before, after))
    assert history["loss"][-1] < history["loss"][0]


def test_seed_generator_state_advances_and_metrics_thread_through_steps():
    x, _ = binary_data(128)
    model = make("vae")
    model.compile(optimizer="adam")
    state = model.sampler.seed_generator.state
    before = to_numpy(state).copy()
    model.fit(x, epochs=1, batch_size=32, verbose=0)
    after_one = to_numpy(state).copy()
    model.fit(x, epochs=1, batch_size=32, verbose=0)
    assert not np.array_equal(before, after_one)
    assert not np.array_equal(after_one, to_numpy(state))
    # Two evaluations of one batch draw different noise, so the loss differs.
    first = model.evaluate(x, batch_size=128, verbose=0)
    second = model.evaluate(x, batch_size=128, verbose=0)
    assert first != second


# ---------------------------------------------------------- callbacks
def test_stock_callbacks_work(tmp_path):
    x, _ = binary_data(256)
    model = make("vae")
    model.compile(optimizer="adam")
    checkpoint = os.path.join(tmp_path, "best.keras")
    callbacks = [
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=1, restore_best_weights=True),
        keras.callbacks.ModelCheckpoint(
            checkpoint, monitor="val_kl_loss", mode="min", save_best_only=True
        ),
        keras.callbacks.BackupAndRestore(os.path.join(tmp_path, "backup")),
        keras.callbacks.TerminateOnNaN(),
        keras.callbacks.CSVLogger(os.path.join(tmp_path, "log.csv")),
    ]
    if BACKEND == "tensorflow":
        callbacks.append(keras.callbacks.TensorBoard(os.path.join(tmp_path, "tb")))
    model.fit(x, epochs=3, batch_size=64, verbose=0, validation_split=0.25, callbacks=callbacks)
    assert keras.saving.load_model(checkpoint).latent_shape == (2,)
    header = open(os.path.join(tmp_path, "log.csv")).readline().strip().split(",")
    assert {"kl_loss", "val_kl_loss", "reconstruction_loss"} <= set(header)
    if BACKEND == "tensorflow":
        assert os.listdir(os.path.join(tmp_path, "tb"))


def test_terminate_on_nan_stops_a_diverging_run():
    # NaN input is refused before training (tests/test_inputs.py); a run whose loss diverges
    # (a learning rate of 1e30) is still stopped.
    x, _ = binary_data(256)
    model = make("vae")
    model.compile(optimizer=keras.optimizers.SGD(1e30))
    history = model.fit(
        x, epochs=3, batch_size=32, verbose=0, callbacks=[keras.callbacks.TerminateOnNaN()]
    )
    assert len(history.history["loss"]) == 1
    assert not np.isfinite(history.history["loss"][0])


# ------------------------------------------------------------ saving
@pytest.mark.slow
@pytest.mark.parametrize("kind", ["dae", "cvae"])
def test_saved_model_loads_in_a_fresh_process_and_resumes_training(kind, tmp_path):
    x, labels = binary_data(256)
    model = make(kind)
    model.compile(optimizer="adam", metrics=["mae"])
    model.fit(*fit_args(kind, x, labels), epochs=2, batch_size=64, verbose=0)
    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    inputs = [x[:16], labels[:16]] if kind == "cvae" else x[:16]
    np.savez(os.path.join(tmp_path, "data.npz"), x=x, labels=labels)
    expected = model.predict(inputs, verbose=0)
    iterations = int(to_numpy(model.optimizer.iterations))
    out = run_python(
        f"""
        import json, keras, numpy as np, keras_vae
        data = np.load({os.path.join(tmp_path, "data.npz")!r})
        model = keras.saving.load_model({path!r}, safe_mode=True)
        x, labels = data["x"], data["labels"]
        inputs = [x[:16], labels[:16]] if {kind!r} == "cvae" else x[:16]
        np.save({os.path.join(tmp_path, "predicted.npy")!r}, model.predict(inputs, verbose=0))
        iterations = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
        args = (x, labels) if {kind!r} == "cvae" else (x,)
        history = model.fit(*args, epochs=1, batch_size=64, verbose=0).history
        print(json.dumps({{"iterations": iterations, "history": history,
            "after": int(keras.ops.convert_to_numpy(model.optimizer.iterations))}}))
        """
    )
    report = json.loads(out.strip().splitlines()[-1])
    np.testing.assert_allclose(
        np.load(os.path.join(tmp_path, "predicted.npy")), expected, rtol=1e-6, atol=1e-6
    )
    assert report["iterations"] == iterations
    assert report["after"] == iterations + 4
    assert set(report["history"]) == METRICS[kind] | {"mae"}


# ---------------------------------------------------------- architectures
def test_segnet_autoencoder_trains_and_refuses_bare_decoding():
    rng = np.random.default_rng(0)
    images = (rng.random((128, 8, 8, 1)) > 0.5).astype("float32")
    model = AE(*architectures.segnet((8, 8, 1), latent_dim=4, filters=(4, 8)), "bernoulli")
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    history = model.fit(images, epochs=4, batch_size=32, verbose=0).history
    assert history["loss"][-1] < history["loss"][0]
    assert model.reconstruct(images[:3]).shape == (3, 8, 8, 1)
    with pytest.raises(ValueError, match="argmax"):
        model.decode(np.zeros((1, 4)))


def test_conv_one_liner_matches_the_keras_example():
    encoder, decoder = architectures.conv(input_shape=(28, 28, 1), latent_dim=2)
    assert [tuple(t.shape) for t in encoder.outputs] == [(None, 2), (None, 2)]
    assert encoder.count_params() == 69076  # the Keras example's encoder, without Sampling
    assert decoder.count_params() == 65089
    model = VAE(encoder, decoder)
    assert model.latent_shape == (2,) and model.data_shape == (28, 28, 1)


# ------------------------------------------------------------ CVAE quality
@pytest.mark.slow
def test_cvae_learns_distinct_class_means_and_generation_follows_the_label():
    rng = np.random.default_rng(0)
    num_classes, dim, n = 4, 16, 2000
    prototypes = np.zeros((num_classes, dim), "float32")
    for c in range(num_classes):
        prototypes[c, c * 4 : (c + 1) * 4] = 1.0
    labels = rng.integers(0, num_classes, n)
    x = np.clip(prototypes[labels] + (rng.random((n, dim)) < 0.03), 0, 1).astype("float32")
    encoder, decoder = architectures.mlp((dim,), latent_dim=2, hidden_units=(32,))
    model = CVAE(encoder, decoder, num_classes=num_classes, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    model.fit(x, labels, epochs=15, batch_size=100, verbose=0)
    means = model.class_means()
    distances = np.linalg.norm(means[:, None] - means[None], axis=-1)
    assert distances[~np.eye(num_classes, dtype=bool)].min() > 0.5
    generated = model.generate(np.repeat(np.arange(num_classes), 50), seed=0)
    # Each class's samples light up mostly that class's block of 4 pixels.
    for c in range(num_classes):
        block_mass = generated[c * 50 : (c + 1) * 50].reshape(50, num_classes, 4).mean(axis=(0, 2))
        assert np.argmax(block_mass) == c
