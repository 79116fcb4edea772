"""The five layers: Keras' layer harness, values, statistics, serialization."""

import os

import keras
import numpy as np
import pytest
from conftest import to_numpy
from keras import ops
from keras.src import testing

from keras_vae import losses
from keras_vae.layers import (
    ClassMeanPrior,
    KLDivergenceRegularizer,
    MaxPoolingWithArgmax2D,
    MaxUnpooling2D,
    Sampling,
    SubPixelConv2DTranspose,
)


def _round_trip(model, tmp_path, *inputs):
    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    return loaded


class HarnessTest(testing.TestCase):
    def test_sampling(self):
        self.run_layer_test(
            Sampling,
            init_kwargs={"seed": 3},
            input_shape=[(2, 3), (2, 3)],
            expected_output_shape=(2, 3),
            expected_num_trainable_weights=0,
            expected_num_seed_generators=1,
            run_training_check=False,
        )

    def test_kl_divergence_regularizer(self):
        self.run_layer_test(
            KLDivergenceRegularizer,
            init_kwargs={"weight": 0.5, "free_bits": 0.1},
            input_shape=[(2, 3), (2, 3)],
            expected_output_shape=[(2, 3), (2, 3)],
            expected_num_trainable_weights=0,
            expected_num_non_trainable_weights=1,
            expected_num_losses=1,
            run_training_check=False,
        )

    def test_class_mean_prior(self):
        self.run_layer_test(
            ClassMeanPrior,
            init_kwargs={"num_classes": 4, "latent_dim": 3},
            input_data=np.array([0, 1, 3, 2]),
            expected_output_shape=(4, 3),
            expected_num_trainable_weights=1,
            run_training_check=False,
        )

    def test_max_pooling_with_argmax(self):
        self.run_layer_test(
            MaxPoolingWithArgmax2D,
            init_kwargs={"pool_size": 2, "padding": "same"},
            input_shape=(2, 5, 5, 3),
            expected_output_shape=((2, 3, 3, 3), (2, 3, 3, 3)),
            run_training_check=False,
            run_mixed_precision_check=False,
        )

    def test_max_unpooling(self):
        self.run_layer_test(
            MaxUnpooling2D,
            init_kwargs={"pool_size": 2},
            input_data=[
                np.random.rand(2, 3, 3, 4).astype("float32"),
                np.random.randint(0, 6 * 6 * 4, size=(2, 3, 3, 4)).astype("int32"),
            ],
            expected_output_shape=(2, 6, 6, 4),
            run_training_check=False,
            run_mixed_precision_check=False,
        )

    def test_subpixel_conv2d_transpose(self):
        self.run_layer_test(
            SubPixelConv2DTranspose,
            init_kwargs={
                "filters": 3,
                "kernel_size": 3,
                "strides": 2,
                "padding": "same",
                "implementation": "subpixel",
            },
            input_shape=(2, 5, 4, 2),
            expected_output_shape=(2, 10, 8, 3),
            expected_num_trainable_weights=2,
        )


# ------------------------------------------------------------------- Sampling
def test_sampling_moments_match_the_posterior(rng):
    z_mean = np.array([[1.5, -2.0, 0.0]], "float32").repeat(20000, axis=0)
    z_log_var = np.log(np.array([[0.25, 4.0, 1.0]], "float32")).repeat(20000, axis=0)
    z = to_numpy(Sampling(seed=7)([z_mean, z_log_var]))
    # Standard error of the mean is sigma / sqrt(n) < 0.015; of the variance about var*0.01.
    np.testing.assert_allclose(z.mean(axis=0), [1.5, -2.0, 0.0], atol=0.06)
    np.testing.assert_allclose(z.var(axis=0), [0.25, 4.0, 1.0], rtol=0.05)


def test_sampling_same_seed_same_draws_and_fresh_draws_each_call():
    z_mean, z_log_var = np.zeros((4, 5), "float32"), np.zeros((4, 5), "float32")
    first, second = Sampling(seed=11), Sampling(seed=11)
    a1, b1 = to_numpy(first([z_mean, z_log_var])), to_numpy(second([z_mean, z_log_var]))
    a2 = to_numpy(first([z_mean, z_log_var]))
    np.testing.assert_array_equal(a1, b1)
    assert not np.allclose(a1, a2)


def test_sampling_with_given_noise_is_exact_for_any_rank():
    z_mean = np.full((2, 3, 4), 1.0, "float32")
    z_log_var = np.full((2, 3, 4), np.log(4.0), "float32")
    eps = np.random.default_rng(0).standard_normal((2, 3, 4)).astype("float32")
    z = to_numpy(Sampling()([z_mean, z_log_var], eps=eps))
    np.testing.assert_allclose(z, 1.0 + 2.0 * eps, rtol=1e-6)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_sampling_low_precision(dtype):
    layer = Sampling(seed=0, dtype=dtype)
    z = layer([np.zeros((8, 2)), np.full((8, 2), -20.0)])
    assert keras.backend.standardize_dtype(z.dtype) == dtype
    assert np.all(np.isfinite(to_numpy(ops.cast(z, "float32"))))


def test_sampling_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="z_log_var must have the shape of z_mean"):
        Sampling()([np.zeros((2, 3)), np.zeros((2, 4))])
    with pytest.raises(ValueError, match=r"expects a list \[z_mean, z_log_var\]"):
        Sampling().compute_output_shape((2, 3))


# ------------------------------------------------------------------------- KL
def _closed_form_kl(mu, log_var, prior=0.0):
    return 0.5 * np.sum((mu - prior) ** 2 + np.exp(log_var) - log_var - 1.0, axis=-1).mean()


def test_kl_matches_closed_form_and_is_added_as_a_loss(rng):
    mu = rng.normal(size=(16, 5)).astype("float32")
    log_var = rng.normal(size=(16, 5)).astype("float32")
    prior = rng.normal(size=(16, 5)).astype("float32")
    layer = KLDivergenceRegularizer(weight=0.5)
    outputs = layer([mu, log_var, prior])
    np.testing.assert_allclose(to_numpy(outputs[0]), mu)
    np.testing.assert_allclose(to_numpy(outputs[1]), log_var)
    assert len(layer.losses) == 1
    np.testing.assert_allclose(
        to_numpy(layer.losses[0]), 0.5 * _closed_form_kl(mu, log_var, prior), rtol=1e-5
    )
    np.testing.assert_allclose(
        to_numpy(layer.kl_tracker.result()), _closed_form_kl(mu, log_var, prior), rtol=1e-5
    )


def test_kl_matches_monte_carlo_estimate(rng):
    mu = np.array([[0.7, -1.2]], "float32")
    log_var = np.array([[np.log(0.3), np.log(2.0)]], "float32")
    sigma = np.exp(0.5 * log_var)
    z = mu + sigma * rng.standard_normal((400000, 2))
    log_q = -0.5 * (((z - mu) / sigma) ** 2 + np.log(2 * np.pi) + log_var)
    log_p = -0.5 * (z**2 + np.log(2 * np.pi))
    monte_carlo = np.mean(np.sum(log_q - log_p, axis=1))
    closed = float(to_numpy(losses.kl_divergence(mu, log_var)))
    np.testing.assert_allclose(closed, monte_carlo, atol=0.01)


def test_free_bits_floor_each_dimension(rng):
    mu = np.zeros((8, 3), "float32")
    mu[:, 0] = 2.0  # KL of dimension 0 is 2.0 nats; the others are 0
    log_var = np.zeros((8, 3), "float32")
    plain = float(to_numpy(losses.kl_divergence(mu, log_var)))
    floored = float(to_numpy(losses.kl_divergence(mu, log_var, free_bits=0.5)))
    assert plain == pytest.approx(2.0)
    assert floored == pytest.approx(2.0 + 0.5 + 0.5)
    layer = KLDivergenceRegularizer(free_bits=0.5)
    layer([mu, log_var])
    assert float(to_numpy(layer.losses[0])) == pytest.approx(3.0)


def test_kl_validation():
    with pytest.raises(ValueError, match="weight"):
        KLDivergenceRegularizer(weight=-1)
    with pytest.raises(ValueError, match="free_bits"):
        KLDivergenceRegularizer(free_bits=-0.1)
    with pytest.raises(ValueError, match="prior_mean must have the shape"):
        KLDivergenceRegularizer()([np.zeros((2, 3)), np.zeros((2, 3)), np.zeros((2, 4))])


def _functional_vae(input_dim=8, latent_dim=2, weight=1.0, seed=0):
    inputs = keras.Input((input_dim,))
    hidden = keras.layers.Dense(16, activation="relu")(inputs)
    z_mean = keras.layers.Dense(latent_dim)(hidden)
    z_log_var = keras.layers.Dense(latent_dim)(hidden)
    z_mean, z_log_var = KLDivergenceRegularizer(weight=weight, name="kl")([z_mean, z_log_var])
    z = Sampling(seed=seed)([z_mean, z_log_var])
    outputs = keras.layers.Dense(input_dim, activation="sigmoid")(z)
    return keras.Model(inputs, outputs)


def test_weight_changed_by_a_callback_takes_effect_without_recompiling(rng):
    x = rng.random((64, 8)).astype("float32")
    model = _functional_vae(weight=1.0)
    model.compile(optimizer="adam", loss="mse", metrics=["mse"])
    kl_layer = model.get_layer("kl")

    class ZeroWeightInSecondEpoch(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                kl_layer.kl_weight.assign(0.0)

    # One batch per epoch: the logged loss is exactly mse + weight * KL of that batch.
    history = model.fit(
        x, x, epochs=2, batch_size=64, verbose=0, callbacks=[ZeroWeightInSecondEpoch()]
    ).history
    assert float(to_numpy(kl_layer.kl_weight)) == 0.0
    assert history["loss"][0] > history["mse"][0] + 1e-3
    assert history["loss"][1] == pytest.approx(history["mse"][1], rel=1e-5)
    if keras.backend.backend() != "jax":  # Keras' default JAX step keeps no layer metric state
        assert history["loss"][0] == pytest.approx(
            history["mse"][0] + history["kl_divergence"][0], rel=1e-5
        )


def test_functional_vae_from_layers_alone_trains_and_round_trips(tmp_path, rng):
    x = (rng.random((256, 8)) > 0.5).astype("float32")
    model = _functional_vae()
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy")
    history = model.fit(x, x, epochs=8, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    if keras.backend.backend() != "jax":  # Keras' default JAX step keeps no layer metric state
        assert history.history["kl_divergence"][-1] > 0
    loaded = _round_trip(model, tmp_path)
    sample = x[:4]
    inputs = keras.Input((8,))
    # The deterministic part (everything before Sampling) must agree exactly.
    np.testing.assert_allclose(
        to_numpy(keras.Model(model.inputs, model.layers[2].output)(sample)),
        to_numpy(keras.Model(loaded.inputs, loaded.layers[2].output)(sample)),
        rtol=1e-6,
    )
    assert loaded.get_layer("kl").weight == 1.0
    del inputs


# ----------------------------------------------------------- ClassMeanPrior
def test_class_mean_prior_indices_and_one_hot_agree():
    prior = ClassMeanPrior(num_classes=4, latent_dim=3)
    labels = np.array([3, 0, 2])
    by_index = to_numpy(prior(labels))
    by_column = to_numpy(prior(labels[:, None]))
    by_one_hot = to_numpy(prior(np.eye(4, dtype="float32")[labels]))
    table = to_numpy(prior.class_means)
    np.testing.assert_allclose(by_index, table[labels], rtol=1e-6)
    np.testing.assert_allclose(by_column, table[labels], rtol=1e-6)
    np.testing.assert_allclose(by_one_hot, table[labels], rtol=1e-6)


def test_class_mean_prior_with_kl_gives_the_cvae_loss(rng):
    prior = ClassMeanPrior(num_classes=3, latent_dim=2)
    labels = np.array([0, 2, 1, 2])
    mu = rng.normal(size=(4, 2)).astype("float32")
    log_var = rng.normal(size=(4, 2)).astype("float32")
    layer = KLDivergenceRegularizer()
    layer([mu, log_var, prior(labels)])
    means = to_numpy(prior.class_means)[labels]
    expected = np.mean(0.5 * np.sum((mu - means) ** 2 + np.exp(log_var) - log_var - 1.0, axis=1))
    np.testing.assert_allclose(to_numpy(layer.losses[0]), expected, rtol=1e-5)


def test_class_mean_prior_validation():
    with pytest.raises(ValueError, match="num_classes"):
        ClassMeanPrior(num_classes=0, latent_dim=2)
    with pytest.raises(ValueError, match="one-hot labels of shape"):
        ClassMeanPrior(num_classes=4, latent_dim=2)(np.zeros((2, 3), "float32"))


# --------------------------------------------------------------- Unpooling
def _keep_max_zero_rest(x, pool, stride, padding):
    """Reference: per window, keep the (first) max at its position, zero elsewhere."""
    batch, height, width, channels = x.shape
    if padding == "same":
        out_h, out_w = -(-height // stride), -(-width // stride)
        top = max((out_h - 1) * stride + pool - height, 0) // 2
        left = max((out_w - 1) * stride + pool - width, 0) // 2
    else:
        out_h, out_w = (height - pool) // stride + 1, (width - pool) // stride + 1
        top = left = 0
    result = np.zeros_like(x)
    for b in range(batch):
        for i in range(out_h):
            for j in range(out_w):
                for c in range(channels):
                    y0, x0 = i * stride - top, j * stride - left
                    ys = range(max(y0, 0), min(y0 + pool, height))
                    xs = range(max(x0, 0), min(x0 + pool, width))
                    best = max(
                        ((x[b, y, xx, c], y, xx) for y in ys for xx in xs), key=lambda t: t[0]
                    )
                    result[b, best[1], best[2], c] += best[0]
    return result


@pytest.mark.parametrize(
    "shape,pool,stride,padding",
    [
        ((2, 6, 6, 3), 2, 2, "valid"),
        ((3, 7, 5, 2), 2, 2, "valid"),
        ((1, 7, 9, 4), 2, 2, "same"),
        ((2, 5, 5, 1), 3, 2, "same"),
        ((4, 8, 6, 2), 3, 3, "valid"),
    ],
)
def test_pool_then_unpool_keeps_the_max_and_zeros_the_rest(shape, pool, stride, padding, rng):
    x = rng.standard_normal(shape).astype("float32")
    pooled, argmax = MaxPoolingWithArgmax2D(pool, stride, padding)(x)
    restored = to_numpy(MaxUnpooling2D(pool, stride, padding)([pooled, argmax, x]))
    assert restored.shape == x.shape
    np.testing.assert_allclose(restored, _keep_max_zero_rest(x, pool, stride, padding), rtol=1e-6)
    sized = MaxUnpooling2D(pool, stride, padding, output_size=shape[1:3])([pooled, argmax])
    np.testing.assert_allclose(to_numpy(sized), restored, rtol=1e-6)


@pytest.mark.parametrize(
    "shape,pool,stride,padding",
    [((2, 6, 6, 3), 2, 2, "valid"), ((3, 7, 5, 2), 2, 2, "same"), ((2, 9, 9, 4), 3, 2, "valid")],
)
def test_matches_tensorflow_max_pool_with_argmax(shape, pool, stride, padding, rng):
    import tensorflow as tf

    x = rng.standard_normal(shape).astype("float32")
    pooled, argmax = MaxPoolingWithArgmax2D(pool, stride, padding)(x)
    tf_pooled, tf_argmax = tf.nn.max_pool_with_argmax(
        x, pool, stride, padding.upper(), include_batch_in_index=False
    )
    np.testing.assert_allclose(to_numpy(pooled), tf_pooled.numpy())
    np.testing.assert_array_equal(to_numpy(argmax), tf_argmax.numpy())
    # Unpooling TensorFlow's own indices puts every value back where it came from.
    restored = to_numpy(
        MaxUnpooling2D(pool, stride, padding)([tf_pooled.numpy(), tf_argmax.numpy(), x])
    )
    np.testing.assert_allclose(restored, _keep_max_zero_rest(x, pool, stride, padding), rtol=1e-6)


def test_unpooling_output_shape_follows_tensorflow_addons():
    updates = np.ones((2, 3, 4, 5), "float32")
    argmax = np.zeros((2, 3, 4, 5), "int32")
    assert tuple(MaxUnpooling2D(2)([updates, argmax]).shape) == (2, 6, 8, 5)
    assert tuple(MaxUnpooling2D(3, 2)([updates, argmax]).shape) == (2, 7, 9, 5)
    assert tuple(MaxUnpooling2D(2, padding="same")([updates, argmax]).shape) == (2, 6, 8, 5)
    assert MaxUnpooling2D(3, 2).compute_output_shape([(None, 3, 4, 5), (None, 3, 4, 5)]) == (
        None,
        7,
        9,
        5,
    )


def test_unpooling_gradient_flows_to_updates(rng):
    x = rng.standard_normal((2, 4, 4, 2)).astype("float32")
    pooled, argmax = MaxPoolingWithArgmax2D()(x)
    pooled = to_numpy(pooled)
    weights = rng.standard_normal((2, 4, 4, 2)).astype("float32")
    unpool = MaxUnpooling2D()
    weights_tensor = ops.convert_to_tensor(weights)
    gradient = _gradient(lambda u: ops.sum(unpool([u, argmax]) * weights_tensor), pooled)
    # d/du sum(w * unpool(u)) = w at the position each value goes to.
    flat_w = weights.reshape(2, -1)
    expected = np.take_along_axis(flat_w, to_numpy(argmax).reshape(2, -1), axis=1)
    np.testing.assert_allclose(gradient.reshape(2, -1), expected, rtol=1e-6)


def _gradient(fn, value):
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        variable = tf.Variable(value)
        with tf.GradientTape() as tape:
            out = fn(variable)
        return tape.gradient(out, variable).numpy()
    if backend == "jax":
        import jax

        return np.asarray(jax.grad(fn)(value))
    import torch

    tensor = torch.tensor(value, requires_grad=True)
    fn(tensor).backward()
    return tensor.grad.numpy()


def test_unpooling_validation():
    with pytest.raises(ValueError, match="padding"):
        MaxUnpooling2D(padding="full")
    with pytest.raises(ValueError, match="argmax must have the shape of updates"):
        MaxUnpooling2D()([np.zeros((1, 2, 2, 1)), np.zeros((1, 2, 3, 1), "int32")])
    with pytest.raises(ValueError, match="4-D"):
        MaxPoolingWithArgmax2D()(np.zeros((2, 4, 4)))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_unpooling_low_precision(dtype, rng):
    x = rng.standard_normal((1, 4, 4, 2)).astype("float32")
    pooled, argmax = MaxPoolingWithArgmax2D(dtype=dtype)(x)
    restored = MaxUnpooling2D(dtype=dtype)([pooled, argmax])
    assert keras.backend.standardize_dtype(restored.dtype) == dtype


# ------------------------------------------------------- SubPixelConv2DTranspose
def _native_and_subpixel(rng, input_shape, **kwargs):
    native = keras.layers.Conv2DTranspose(padding="same", **kwargs)
    subpixel = SubPixelConv2DTranspose(padding="same", implementation="subpixel", **kwargs)
    native.build(input_shape)
    subpixel.build(input_shape)
    native.set_weights([rng.standard_normal(w.shape).astype("float32") for w in native.weights])
    subpixel.set_weights(native.get_weights())
    assert subpixel.uses_subpixel
    return native, subpixel


@pytest.mark.parametrize("kernel_size", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("strides", [2, 3, (2, 3)])
@pytest.mark.parametrize("size", [(7, 7), (5, 6)])
def test_subpixel_equals_keras_conv2d_transpose(kernel_size, strides, size, rng):
    x = rng.standard_normal((2, *size, 3)).astype("float32")
    native, subpixel = _native_and_subpixel(
        rng, x.shape, filters=4, kernel_size=kernel_size, strides=strides, activation="relu"
    )
    expected, actual = to_numpy(native(x)), to_numpy(subpixel(x))
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, atol=2e-5)


def test_subpixel_gradients_equal_the_native_ones(rng):
    x = rng.standard_normal((3, 7, 7, 5)).astype("float32")
    native, subpixel = _native_and_subpixel(rng, x.shape, filters=4, kernel_size=3, strides=2)
    target = rng.standard_normal((3, 14, 14, 4)).astype("float32")
    gradients = []
    for layer in (native, subpixel):
        model = keras.Sequential([keras.Input(x.shape[1:]), layer])
        model.compile(optimizer=keras.optimizers.SGD(1.0), loss="mse")
        before = [to_numpy(w) for w in model.weights]
        model.train_on_batch(x, target)
        gradients.append([b - to_numpy(w) for b, w in zip(before, model.weights)])
    for expected, actual in zip(*gradients):
        np.testing.assert_allclose(actual, expected, atol=1e-5)


def test_subpixel_implementation_choice():
    layer = SubPixelConv2DTranspose(4, 3, strides=2, padding="same")
    native_is_slow = keras.backend.backend() == "jax" and _jax_on_cpu()
    assert layer.uses_subpixel is native_is_slow
    assert not SubPixelConv2DTranspose(
        4, 3, 2, padding="same", implementation="native"
    ).uses_subpixel
    # Configurations the rewrite does not cover run the native op whatever is asked.
    for kwargs in (
        {"padding": "valid"},
        {"strides": 1},
        {"output_padding": 1},
        {"dilation_rate": 2, "strides": 1},
    ):
        options = {"strides": 2, "padding": "same", **kwargs}
        layer = SubPixelConv2DTranspose(4, 3, implementation="subpixel", **options)
        assert not layer.uses_subpixel, kwargs
    with pytest.raises(ValueError, match="implementation"):
        SubPixelConv2DTranspose(4, 3, implementation="fast")


def _jax_on_cpu():
    import jax

    return jax.default_backend() == "cpu"


@pytest.mark.parametrize("dtype", ["mixed_float16", "mixed_bfloat16"])
def test_subpixel_mixed_precision(dtype, rng):
    x = rng.standard_normal((2, 4, 4, 3)).astype("float32")
    native, subpixel = _native_and_subpixel(rng, x.shape, filters=2, kernel_size=3, strides=2)
    layer = SubPixelConv2DTranspose(
        2, 3, strides=2, padding="same", dtype=dtype, implementation="subpixel"
    )
    layer.build(x.shape)
    layer.set_weights(native.get_weights())
    y = layer(x)
    assert keras.backend.standardize_dtype(y.dtype) == dtype.split("_")[1]
    np.testing.assert_allclose(
        to_numpy(ops.cast(y, "float32")), to_numpy(native(x)), atol=0.1, rtol=0.02
    )


# ---------------------------------------------------------- serialization
def test_every_layer_round_trips_through_a_keras_file(tmp_path, rng):
    image = keras.Input((6, 6, 2))
    pooled, argmax = MaxPoolingWithArgmax2D(name="pool")(image)
    unpooled = MaxUnpooling2D(name="unpool")([pooled, argmax])
    flat = keras.layers.Flatten()(unpooled)
    labels = keras.Input((), dtype="int32")
    z_mean = keras.layers.Dense(3)(flat)
    z_log_var = keras.layers.Dense(3)(flat)
    prior = ClassMeanPrior(5, 3, name="prior")(labels)
    z_mean, z_log_var = KLDivergenceRegularizer(0.3, 0.05, name="kl")([z_mean, z_log_var, prior])
    z = Sampling(seed=5, name="sampling")([z_mean, z_log_var])
    upsampled = SubPixelConv2DTranspose(
        2, 3, strides=2, padding="same", implementation="subpixel", name="deconv"
    )(unpooled)
    model = keras.Model([image, labels], [z_mean, z_log_var, z, unpooled, upsampled])
    x = [rng.random((4, 6, 6, 2)).astype("float32"), np.array([0, 4, 2, 1])]
    loaded = _round_trip(model, tmp_path)
    for original, restored in zip(model(x)[:2] + model(x)[3:], loaded(x)[:2] + loaded(x)[3:]):
        np.testing.assert_allclose(to_numpy(original), to_numpy(restored), rtol=1e-6)
    for name in ("pool", "unpool", "prior", "kl", "sampling", "deconv"):
        assert loaded.get_layer(name).get_config() == model.get_layer(name).get_config()
    assert loaded.get_layer("kl").free_bits == 0.05
    np.testing.assert_allclose(
        to_numpy(loaded.get_layer("prior").class_means),
        to_numpy(model.get_layer("prior").class_means),
    )
