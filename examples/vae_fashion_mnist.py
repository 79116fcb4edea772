"""A variational autoencoder on Fashion-MNIST, with pictures of its latent space.

Trains `keras_vae.VAE` with an MLP encoder/decoder (`architectures.mlp`) and a Bernoulli
likelihood, then writes:

- ``samples.png``: decoded draws from the prior N(0, I);
- ``reconstructions.png``: test images above their reconstructions;
- ``latent_scatter.png``: the test set's posterior means, coloured by class (PCA when the
  latent space has more than two dimensions);
- ``latent_manifold.png``: a 15 x 15 grid of decoded latent codes (2-D latent space only);
- ``loss_curves.png``: training and validation ELBO terms per epoch.

Run:

    python examples/vae_fashion_mnist.py                    # 2-D latent space, ~3 min on 2 cores
    python examples/vae_fashion_mnist.py --latent-dim 16    # sharper; scatter through PCA
    python examples/vae_fashion_mnist.py --epochs 1 --limit 512 --out /tmp/vae   # smoke test
"""

import argparse
import os

import keras

from keras_vae import VAE, architectures, data, evaluation, plotting


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latent-dim", type=int, default=2, help="2 draws a latent manifold")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--limit", type=int, default=None, help="use the first N training images")
    parser.add_argument("--out", default=os.path.join("examples", "output", "vae_fashion_mnist"))
    return parser.parse_args()


def main():
    args = parse_args()
    keras.utils.set_random_seed(0)
    train_split = "train" if args.limit is None else f"train[:{args.limit}]"
    # Fresh binary draws of the images every epoch (dynamic binarisation), shuffled; the test
    # split, binarised once with a fixed seed, serves as validation data here.
    train = data.load(
        "fashion_mnist", train_split, batch_size=args.batch_size, binarize="dynamic", seed=0
    )
    x_test, y_test = data.load_numpy("fashion_mnist", "test")  # grey levels, for pictures
    x_bin, _ = evaluation.load_test_arrays("fashion_mnist")
    class_names = data.info("fashion_mnist").class_names  # "T-shirt/top", "Trouser", ...
    if args.limit is not None:
        x_test, y_test, x_bin = x_test[: args.limit], y_test[: args.limit], x_bin[: args.limit]

    # The encoder returns [z_mean, z_log_var]; the decoder returns logits for the Bernoulli loss.
    encoder, decoder = architectures.mlp(
        (28, 28, 1), latent_dim=args.latent_dim, hidden_units=(512, 256)
    )
    vae = VAE(encoder, decoder, reconstruction_loss="bernoulli", seed=0)
    vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    # shuffle=False: data.load already reshuffles every epoch (fit cannot shuffle a dataset).
    history = vae.fit(train, epochs=args.epochs, validation_data=(x_bin,), verbose=2, shuffle=False)
    metrics = vae.evaluate(x_bin, batch_size=512, return_dict=True, verbose=0)
    print("test negative ELBO: {loss:.1f} nats (KL {kl_loss:.1f})".format(**metrics))
    nll = -vae.log_likelihood(x_bin[:1000], num_samples=1000, seed=0).mean()
    print(f"test NLL (importance-weighted, K=1000, first 1,000 images): {nll:.1f} nats")

    os.makedirs(args.out, exist_ok=True)
    out = args.out
    plotting.sample_grid(
        vae.generate(64, seed=0), ncols=8, path=f"{out}/samples.png", title="Samples"
    )
    plotting.reconstruction_pairs(
        x_test[:10], vae.reconstruct(x_test[:10]), n=10, path=f"{out}/reconstructions.png"
    )
    z_mean, _ = vae.encode(x_test)  # posterior means (and log-variances)
    plotting.latent_scatter(
        z_mean, labels=y_test, class_names=class_names, path=f"{out}/latent_scatter.png"
    )
    if args.latent_dim == 2:
        plotting.latent_manifold(vae, n=15, extent=3.0, path=f"{out}/latent_manifold.png")
    plotting.loss_curves(history, path=f"{out}/loss_curves.png")
    print(f"pictures in {out}/")


if __name__ == "__main__":
    main()
