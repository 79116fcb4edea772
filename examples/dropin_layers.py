"""A VAE from plain Keras parts: `Sampling` and `KLDivergenceRegularizer` as drop-in layers.

No keras_vae model class here: an ordinary functional model, compiled with an ordinary
reconstruction loss, becomes a VAE by adding two layers between encoder and decoder:

    z_mean, z_log_var = KLDivergenceRegularizer(weight)([z_mean, z_log_var])  # adds the KL loss
    z = Sampling()([z_mean, z_log_var])                                       # reparameterised

``fit`` then minimises reconstruction loss + weight * KL. Keras' binary cross-entropy is a mean
over the 784 pixels, while the KL is a sum over latent dimensions per image, so the KL weight is
1 / 784: the same balance as the ELBO (sum over pixels + KL), divided by 784.

Writes ``samples.png`` (decoded prior draws), ``reconstructions.png`` and ``loss_curves.png``.

Run:

    python examples/dropin_layers.py                        # ~3 min on 2 CPU cores
    python examples/dropin_layers.py --epochs 1 --limit 512 --out /tmp/dropin
"""

import argparse
import os

import keras
import numpy as np
from keras import layers

from keras_vae import data, plotting
from keras_vae.layers import KLDivergenceRegularizer, Sampling

PIXELS = 28 * 28


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latent-dim", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--limit", type=int, default=None, help="use the first N training images")
    parser.add_argument("--out", default=os.path.join("examples", "output", "dropin_layers"))
    return parser.parse_args()


def build_vae(latent_dim):
    """Returns (vae, decoder): the decoder is shared, so it can also decode prior draws."""
    decoder = keras.Sequential(
        [
            keras.Input((latent_dim,)),
            layers.Dense(256, activation="relu"),
            layers.Dense(512, activation="relu"),
            layers.Dense(PIXELS),  # logits
            layers.Reshape((28, 28, 1)),
        ],
        name="decoder",
    )
    x = keras.Input((28, 28, 1), name="x")
    h = layers.Dense(512, activation="relu")(layers.Flatten()(x))
    h = layers.Dense(256, activation="relu")(h)
    z_mean = layers.Dense(latent_dim, name="z_mean")(h)
    z_log_var = layers.Dense(latent_dim, name="z_log_var")(h)
    z_mean, z_log_var = KLDivergenceRegularizer(weight=1.0 / PIXELS, name="kl")([z_mean, z_log_var])
    z = Sampling(seed=0, name="z")([z_mean, z_log_var])
    vae = keras.Model(x, decoder(z), name="dropin_vae")
    return vae, decoder


def main():
    args = parse_args()
    keras.utils.set_random_seed(0)
    split = "train" if args.limit is None else f"train[:{args.limit}]"
    # One seeded binary draw of each image: the summed cross-entropy is then a likelihood bound.
    x_train, _ = data.load_numpy("fashion_mnist", split, binarize="dynamic", seed=0)
    x_test, _ = data.load_numpy("fashion_mnist", "test", binarize="dynamic", seed=1)
    x_test = x_test[: args.limit]

    vae, decoder = build_vae(args.latent_dim)
    vae.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
    )
    # The layer logs the unweighted KL as "kl_divergence" (0 on JAX's stock train step).
    history = vae.fit(
        x_train,
        x_train,
        epochs=args.epochs,
        batch_size=args.batch_size,
        validation_data=(x_test, x_test),
        verbose=2,
    )
    loss = vae.evaluate(x_test, x_test, batch_size=512, verbose=0)
    loss = loss[0] if isinstance(loss, list) else loss
    print(f"test negative ELBO: {loss * PIXELS:.1f} nats per image")

    def to_images(logits):
        return keras.ops.convert_to_numpy(keras.ops.sigmoid(logits))

    out = args.out
    os.makedirs(out, exist_ok=True)
    prior_draws = np.random.default_rng(0).standard_normal((64, args.latent_dim))
    plotting.sample_grid(
        to_images(decoder.predict(prior_draws.astype("float32"), verbose=0)),
        ncols=8,
        path=f"{out}/samples.png",
        title="Samples",
    )
    # predict() draws z from the posterior; the mean would be sharper, the draw is honest.
    reconstructions = to_images(vae.predict(x_test[:10], verbose=0))
    plotting.reconstruction_pairs(
        x_test[:10], reconstructions, n=10, path=f"{out}/reconstructions.png"
    )
    plotting.loss_curves(history, path=f"{out}/loss_curves.png", keys=["loss"])
    print(f"pictures in {out}/")


if __name__ == "__main__":
    main()
