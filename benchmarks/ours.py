"""keras_vae's rows: `keras_vae.VAE` on the `keras_vae.architectures` builders.

- ``mlp``: ``VAE(*architectures.mlp((784,), latent_dim=20, hidden_units=(400,)))``, the
  architecture of PyTorch's example;
- ``conv``: ``VAE(*architectures.conv((28, 28, 1), latent_dim=2))``, the Keras example's;
  ``deconv_implementation="native"`` gives it the backend's own transposed convolutions (what
  the Keras peers use) where ``"auto"`` picks the sub-pixel rewrite (JAX on CPU).

Both use the default Bernoulli likelihood from logits and ``Adam(1e-3)``.
"""

import keras
from keras import ops

import keras_vae
from keras_vae import architectures


def build(arch="mlp", seed=None, deconv_implementation="auto"):
    """Returns ``(model, encode, decode, output)`` for the benchmark worker."""
    if arch == "mlp":
        encoder, decoder = architectures.mlp((784,), latent_dim=20, hidden_units=(400,))
    else:
        encoder, decoder = architectures.conv(
            (28, 28, 1), latent_dim=2, deconv_implementation=deconv_implementation
        )
    model = keras_vae.VAE(encoder, decoder, seed=seed)

    def encode(x):
        z_mean, z_log_var = model.encoder(x, training=False)
        return ops.convert_to_numpy(z_mean), ops.convert_to_numpy(z_log_var)

    def decode(z):
        return ops.convert_to_numpy(model.decoder(z, training=False))

    return model, encode, decode, "logits"


def compile_model(model, jit_compile="auto", steps_per_execution="auto"):
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        jit_compile=jit_compile,
        steps_per_execution=steps_per_execution,
    )
