"""The backend-agnostic Keras 3 way to write a VAE: a functional model and ``add_loss``.

What a Keras user writes without a custom ``train_step``: a small sampling layer, a layer that
adds the closed-form KL with ``self.add_loss`` and passes its inputs through, a decoder ending
in a sigmoid, and ``compile(loss=summed_binary_crossentropy)`` (binary cross-entropy summed over
the pixels, so together with the KL the loss is the negative ELBO per example). Keras' default
``train_step`` trains it on every backend; ``fit(x, x)``. Two architectures: the MLP of PyTorch's
example (784-400-20) and the convolutional model of the Keras example (latent 2).
"""

import keras
from keras import layers, ops


class Sampling(layers.Layer):
    """z = z_mean + exp(z_log_var / 2) * eps, eps ~ N(0, I)."""

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        epsilon = keras.random.normal(ops.shape(z_mean), seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * epsilon


class KLDivergence(layers.Layer):
    """Adds KL(N(z_mean, exp(z_log_var)) || N(0, I)), batch mean, as a loss; returns its inputs."""

    def call(self, inputs):
        z_mean, z_log_var = inputs
        kl = -0.5 * ops.sum(1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=-1)
        self.add_loss(ops.mean(kl))
        return z_mean, z_log_var


def summed_binary_crossentropy(y_true, y_pred):
    """Binary cross-entropy summed over every pixel: shape (batch,), nats per example."""
    bce = ops.binary_crossentropy(y_true, y_pred)
    return ops.sum(ops.reshape(bce, (ops.shape(bce)[0], -1)), axis=-1)


def mlp_encoder_decoder(input_dim=784, hidden=400, latent_dim=20):
    x = keras.Input((input_dim,))
    h = layers.Dense(hidden, activation="relu")(x)
    encoder = keras.Model(x, [layers.Dense(latent_dim)(h), layers.Dense(latent_dim)(h)])
    z = keras.Input((latent_dim,))
    h = layers.Dense(hidden, activation="relu")(z)
    decoder = keras.Model(z, layers.Dense(input_dim, activation="sigmoid")(h))
    return encoder, decoder


def conv_encoder_decoder(latent_dim=2):
    x = keras.Input((28, 28, 1))
    h = layers.Conv2D(32, 3, strides=2, padding="same", activation="relu")(x)
    h = layers.Conv2D(64, 3, strides=2, padding="same", activation="relu")(h)
    h = layers.Dense(16, activation="relu")(layers.Flatten()(h))
    encoder = keras.Model(x, [layers.Dense(latent_dim)(h), layers.Dense(latent_dim)(h)])
    z = keras.Input((latent_dim,))
    h = layers.Reshape((7, 7, 64))(layers.Dense(7 * 7 * 64, activation="relu")(z))
    h = layers.Conv2DTranspose(64, 3, strides=2, padding="same", activation="relu")(h)
    h = layers.Conv2DTranspose(32, 3, strides=2, padding="same", activation="relu")(h)
    out = layers.Conv2DTranspose(1, 3, padding="same", activation="sigmoid")(h)
    decoder = keras.Model(z, out)
    return encoder, decoder


def build(arch="mlp"):
    """Returns ``(model, encode, decode, output)`` for the benchmark worker."""
    encoder, decoder = mlp_encoder_decoder() if arch == "mlp" else conv_encoder_decoder()
    x = keras.Input(encoder.inputs[0].shape[1:])
    z_mean, z_log_var = KLDivergence()(encoder(x))
    z = Sampling()([z_mean, z_log_var])
    model = keras.Model(x, decoder(z), name="vae")

    def encode(batch):
        z_mean, z_log_var = encoder(batch, training=False)
        return ops.convert_to_numpy(z_mean), ops.convert_to_numpy(z_log_var)

    def decode(z):
        return ops.convert_to_numpy(decoder(z, training=False))

    return model, encode, decode, "probabilities"


def compile_model(model, jit_compile="auto", steps_per_execution=1):
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=summed_binary_crossentropy,
        jit_compile=jit_compile,
        steps_per_execution=steps_per_execution,
    )


def scorer(model):
    """``(encode, decode, from_logits)`` on backend tensors, for `keras_vae.likelihood`.

    The encoder and decoder are the two nested models of ``model`` (in call order); ``decode``
    is the decoder with its pre-sigmoid logits as output (`benchmarks.peers.logits_decoder`),
    a Keras model, so the estimator sizes its batches by its layers.
    """
    from benchmarks.peers import logits_decoder

    encoder, decoder = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    return encoder, logits_decoder(decoder), True
