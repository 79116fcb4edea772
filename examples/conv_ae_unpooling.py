"""A convolutional autoencoder with SegNet-style max-unpooling, built by hand.

`MaxPoolingWithArgmax2D` pools and also returns where each maximum came from;
`MaxUnpooling2D` puts values back at those places (Badrinarayanan et al., SegNet, 2017). The
encoder below returns the code *and* the pooling indices ("switches"), the decoder takes both.
It is an ordinary Keras functional model compiled with binary cross-entropy: the layers work
without any keras_vae model class (``architectures.segnet`` builds the same kind of pair for
`keras_vae.AE`/`DAE`).

Writes:

- ``reconstructions.png``: test images above their reconstructions;
- ``switches.png``: each test image's code decoded with the switches of its neighbour (rows:
  code from, switches from, decoded): the indices carry where edges are, the code what is there;
- ``loss_curves.png``.

Run:

    python examples/conv_ae_unpooling.py                    # ~3 min on 2 CPU cores
    python examples/conv_ae_unpooling.py --limit 60000 --epochs 5   # better, ~15 min
    python examples/conv_ae_unpooling.py --epochs 1 --limit 512 --out /tmp/unpool
"""

import argparse
import os

import keras
import numpy as np
from keras import layers

from keras_vae import data, plotting
from keras_vae.layers import MaxPoolingWithArgmax2D, MaxUnpooling2D


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latent-dim", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    # Pooling with argmax and unpooling are gathers/scatters, slow on a CPU: 15k images suffice.
    parser.add_argument("--limit", type=int, default=15000, help="use the first N training images")
    parser.add_argument("--out", default=os.path.join("examples", "output", "conv_ae_unpooling"))
    return parser.parse_args()


def build_autoencoder(latent_dim):
    """Encoder x -> [code, argmax_1, argmax_2]; decoder [code, argmax_1, argmax_2] -> logits."""
    x = keras.Input((28, 28, 1), name="x")
    h = layers.Conv2D(16, 3, padding="same", activation="relu")(x)  # 28x28x16
    h, argmax_1 = MaxPoolingWithArgmax2D(pool_size=2, name="pool_1")(h)  # 14x14x16
    h = layers.Conv2D(32, 3, padding="same", activation="relu")(h)  # 14x14x32
    h, argmax_2 = MaxPoolingWithArgmax2D(pool_size=2, name="pool_2")(h)  # 7x7x32
    code = layers.Dense(latent_dim, name="code")(layers.Flatten()(h))
    encoder = keras.Model(x, [code, argmax_1, argmax_2], name="encoder")

    code_in = keras.Input((latent_dim,), name="code")
    argmax_1_in = keras.Input((14, 14, 16), dtype="int32", name="argmax_1")
    argmax_2_in = keras.Input((7, 7, 32), dtype="int32", name="argmax_2")
    h = layers.Reshape((7, 7, 32))(layers.Dense(7 * 7 * 32, activation="relu")(code_in))
    h = MaxUnpooling2D(pool_size=2, name="unpool_2")([h, argmax_2_in])  # 14x14x32
    h = layers.Conv2D(16, 3, padding="same", activation="relu")(h)  # 14x14x16
    h = MaxUnpooling2D(pool_size=2, name="unpool_1")([h, argmax_1_in])  # 28x28x16, sparse
    h = layers.Conv2D(16, 3, padding="same", activation="relu")(h)  # fills the zeros in
    logits = layers.Conv2D(1, 3, padding="same", name="logits")(h)
    decoder = keras.Model([code_in, argmax_1_in, argmax_2_in], logits, name="decoder")

    autoencoder = keras.Model(x, decoder(encoder(x)), name="unpooling_autoencoder")
    return encoder, decoder, autoencoder


def main():
    args = parse_args()
    keras.utils.set_random_seed(0)
    split = "train" if args.limit is None else f"train[:{args.limit}]"
    x_train, _ = data.load_numpy("fashion_mnist", split)
    x_test, _ = data.load_numpy("fashion_mnist", "test")
    x_test = x_test[: min(2000, args.limit or 2000)]  # a small validation set: this is slow

    encoder, decoder, autoencoder = build_autoencoder(args.latent_dim)
    autoencoder.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
    )
    history = autoencoder.fit(
        x_train,
        x_train,
        epochs=args.epochs,
        batch_size=args.batch_size,
        validation_data=(x_test, x_test),
        verbose=2,
    )

    def to_images(logits):
        return keras.ops.convert_to_numpy(keras.ops.sigmoid(logits))

    out = args.out
    os.makedirs(out, exist_ok=True)
    x = x_test[:10]
    plotting.reconstruction_pairs(
        x, to_images(autoencoder.predict(x, verbose=0)), n=10, path=f"{out}/reconstructions.png"
    )
    # Swap the switches: each code decoded with the pooling indices of the next image.
    code, argmax_1, argmax_2 = encoder.predict(x, verbose=0)
    swapped = decoder.predict(
        [code, np.roll(argmax_1, 1, axis=0), np.roll(argmax_2, 1, axis=0)], verbose=0
    )
    plotting.sample_grid(
        np.concatenate([x, np.roll(x, 1, axis=0), to_images(swapped)]),
        ncols=10,
        path=f"{out}/switches.png",
        title="Rows: code from, switches from, decoded",
    )
    plotting.loss_curves(history, path=f"{out}/loss_curves.png")
    print(f"pictures in {out}/")


if __name__ == "__main__":
    main()
