"""IWAE against VAE on dynamically binarised Fashion-MNIST: test log-likelihood by K, samples.

Trains `keras_vae.VAE` and `keras_vae.IWAE` (the k-sample importance-weighted bound, k=5 by
default) with the same MLP networks, epochs and data order, on fresh Bernoulli draws of the
training images every epoch, then scores both on the test images binarised once (seed 0)
with `log_likelihood` (importance-weighted, K samples per image) and `elbo`, and writes:

- ``log_likelihood_by_k.png``: the mean test estimate of log p(x) for K = 1, 10, 100, ...
  (it rises with K towards log p(x); the ELBO is drawn as a line);
- ``samples.png``: prior samples of the VAE (top) and the IWAE (bottom).

Run:

    python examples/iwae_likelihood.py                  # ~4 min on 2 cores
    python examples/iwae_likelihood.py --k 50           # the tighter bound, slower steps
    python examples/iwae_likelihood.py --epochs 1 --limit 512 --out /tmp/iwae   # smoke test
"""

import argparse
import os

import keras
import numpy as np

from keras_vae import IWAE, VAE, architectures, data, plotting

TEST_SEED = 0  # the one Bernoulli draw of the test images


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--k", type=int, default=5, help="samples of the IWAE's training bound")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--limit", type=int, default=None, help="use the first N images")
    parser.add_argument("--num-samples", type=int, default=1000, help="largest K evaluated")
    parser.add_argument("--out", default=os.path.join("examples", "output", "iwae_likelihood"))
    return parser.parse_args()


def train(model_class, args, **kwargs):
    keras.utils.set_random_seed(0)  # the same initial weights and data order for both
    split = "train" if args.limit is None else f"train[:{args.limit}]"
    train_data = data.load(
        "fashion_mnist", split, batch_size=args.batch_size, binarize="dynamic", seed=0
    )
    encoder, decoder = architectures.mlp((28, 28, 1), latent_dim=20, hidden_units=(400,))
    model = model_class(encoder, decoder, seed=0, **kwargs)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(train_data, epochs=args.epochs, verbose=2, shuffle=False)
    return model


def main():
    args = parse_args()
    x_test, _ = data.load_numpy("fashion_mnist", "test", binarize="dynamic", seed=TEST_SEED)
    x_test = x_test[: min(len(x_test), args.limit or 2000)]
    models = {"VAE": train(VAE, args), f"IWAE (k={args.k})": train(IWAE, args, num_samples=args.k)}

    ks = [k for k in (1, 10, 100, 1000, 5000) if k <= args.num_samples]
    curves, elbos = {}, {}
    for name, model in models.items():
        curves[name] = [model.log_likelihood(x_test, num_samples=k, seed=0).mean() for k in ks]
        elbos[name] = model.elbo(x_test, num_samples=10, seed=0).mean()
        print(
            f"{name}: test NLL (K={ks[-1]}) {-curves[name][-1]:.2f} nats, "
            f"-ELBO {-elbos[name]:.2f} nats, active units {model.active_units(x_test)} of 20"
        )

    os.makedirs(args.out, exist_ok=True)
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    for (name, curve), color in zip(curves.items(), ("tab:blue", "tab:orange")):
        axis.plot(ks, curve, "o-", color=color, label=f"{name}: log-likelihood estimate")
        axis.axhline(elbos[name], color=color, linestyle=":", label=f"{name}: ELBO")
    axis.set_xscale("log")
    axis.set_xlabel("K, importance samples per test image")
    axis.set_ylabel("mean log p(x), nats")
    axis.set_title(f"{len(x_test)} dynamically binarised test images")
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(f"{args.out}/log_likelihood_by_k.png", dpi=100)
    plt.close(figure)

    samples = np.concatenate([model.generate(10, seed=0) for model in models.values()])
    plotting.sample_grid(
        samples, ncols=10, path=f"{args.out}/samples.png", title=" / ".join(models)
    )
    print(f"pictures in {args.out}/")


if __name__ == "__main__":
    main()
