"""The official Keras VAE example (keras.io/examples/generative/vae, by fchollet).

Re-implemented from its published code (Keras 3 version): a convolutional encoder
``Conv2D(32, 3, s2) -> Conv2D(64, 3, s2) -> Flatten -> Dense(16)`` with ``z_mean`` /
``z_log_var`` heads (latent 2) and a `Sampling` layer, a decoder
``Dense(7*7*64) -> Reshape -> Conv2DTranspose(64, 3, s2) -> Conv2DTranspose(32, 3, s2) ->
Conv2DTranspose(1, 3, sigmoid)``, and a `keras.Model` subclass whose ``train_step`` uses
``tf.GradientTape``: loss = batch mean of the per-image sum of ``binary_crossentropy`` plus the
Gaussian KL summed over the latent and averaged over the batch. Adam with its defaults, batch 128.
TensorFlow backend only (the step uses ``tf.GradientTape``).
"""

import keras
import tensorflow as tf
from keras import layers, ops

LATENT_DIM = 2


class Sampling(layers.Layer):
    """Uses (z_mean, z_log_var) to sample z, the vector encoding a digit."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(1337)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        batch = ops.shape(z_mean)[0]
        dim = ops.shape(z_mean)[1]
        epsilon = keras.random.normal(shape=(batch, dim), seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * epsilon


def build_encoder():
    encoder_inputs = keras.Input(shape=(28, 28, 1))
    x = layers.Conv2D(32, 3, activation="relu", strides=2, padding="same")(encoder_inputs)
    x = layers.Conv2D(64, 3, activation="relu", strides=2, padding="same")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(16, activation="relu")(x)
    z_mean = layers.Dense(LATENT_DIM, name="z_mean")(x)
    z_log_var = layers.Dense(LATENT_DIM, name="z_log_var")(x)
    z = Sampling()([z_mean, z_log_var])
    return keras.Model(encoder_inputs, [z_mean, z_log_var, z], name="encoder")


def build_decoder():
    latent_inputs = keras.Input(shape=(LATENT_DIM,))
    x = layers.Dense(7 * 7 * 64, activation="relu")(latent_inputs)
    x = layers.Reshape((7, 7, 64))(x)
    x = layers.Conv2DTranspose(64, 3, activation="relu", strides=2, padding="same")(x)
    x = layers.Conv2DTranspose(32, 3, activation="relu", strides=2, padding="same")(x)
    decoder_outputs = layers.Conv2DTranspose(1, 3, activation="sigmoid", padding="same")(x)
    return keras.Model(latent_inputs, decoder_outputs, name="decoder")


class VAE(keras.Model):
    def __init__(self, encoder, decoder, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.total_loss_tracker = keras.metrics.Mean(name="total_loss")
        self.reconstruction_loss_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")

    @property
    def metrics(self):
        return [
            self.total_loss_tracker,
            self.reconstruction_loss_tracker,
            self.kl_loss_tracker,
        ]

    def train_step(self, data):
        if isinstance(data, tuple):  # Keras 3 passes fit(x) batches as (x,)
            data = data[0]
        with tf.GradientTape() as tape:
            z_mean, z_log_var, z = self.encoder(data)
            reconstruction = self.decoder(z)
            reconstruction_loss = ops.mean(
                ops.sum(keras.losses.binary_crossentropy(data, reconstruction), axis=(1, 2))
            )
            kl_loss = -0.5 * (1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))
            kl_loss = ops.mean(ops.sum(kl_loss, axis=1))
            total_loss = reconstruction_loss + kl_loss
        grads = tape.gradient(total_loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        self.total_loss_tracker.update_state(total_loss)
        self.reconstruction_loss_tracker.update_state(reconstruction_loss)
        self.kl_loss_tracker.update_state(kl_loss)
        return {
            "loss": self.total_loss_tracker.result(),
            "reconstruction_loss": self.reconstruction_loss_tracker.result(),
            "kl_loss": self.kl_loss_tracker.result(),
        }


def build(arch="conv"):
    """Returns ``(model, encode, decode, output)`` for the benchmark worker."""
    if arch != "conv":
        raise ValueError(f"The Keras example is a convolutional VAE; received arch={arch!r}")
    model = VAE(build_encoder(), build_decoder())

    def encode(x):
        z_mean, z_log_var, _ = model.encoder(x, training=False)
        return ops.convert_to_numpy(z_mean), ops.convert_to_numpy(z_log_var)

    def decode(z):
        return ops.convert_to_numpy(model.decoder(z, training=False))

    return model, encode, decode, "probabilities"


def compile_model(model, jit_compile="auto", steps_per_execution=1):
    model.compile(
        optimizer=keras.optimizers.Adam(),
        jit_compile=jit_compile,
        steps_per_execution=steps_per_execution,
    )


def scorer(model):
    """``(encode, decode, from_logits)`` on backend tensors, for `keras_vae.likelihood`.

    ``encode`` keeps the encoder's ``z_mean`` and ``z_log_var`` (not its sampled ``z``);
    ``decode`` is the decoder with its pre-sigmoid logits as output
    (`benchmarks.peers.logits_decoder`), a Keras model, so the estimator sizes its batches by
    its layers (a conv decoder's activations are large).
    """
    from benchmarks.peers import logits_decoder

    def encode(x):
        z_mean, z_log_var, _ = model.encoder(x, training=False)
        return z_mean, z_log_var

    return encode, logits_decoder(model.decoder), True
