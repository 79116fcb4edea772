"""Contractive autoencoder: codes that barely move when the input is perturbed, against an AE.

Trains `keras_vae.AE` and `keras_vae.ContractiveAE` (the same MLP, initial weights and data
order; the CAE adds ``contractive_weight * ||d code / d x||_F^2`` to the Bernoulli
reconstruction loss) on Fashion-MNIST, then perturbs the test images with Gaussian noise of
growing size and measures how far each model's code moves, relative to the code's own size
(a linear code can also shrink as a whole, which the ratio does not reward). It prints the
exact Jacobian norms (``jacobian_norm``, measured for the AE by wrapping its trained networks
in a ContractiveAE) and writes:

- ``sensitivity.png``: mean ``||code(x + s * eps) - code(x)|| / ||code(x)||`` against ``s``;
- ``noisy_reconstructions.png``: clean test images, noisy copies (s = 0.2), and the AE's and
  the CAE's reconstructions of the noisy copies;
- ``loss_curves.png``: the CAE's loss terms.

Run:

    python examples/contractive_ae.py                          # ~3 min on 2 CPU cores
    python examples/contractive_ae.py --jacobian 4             # the 4-projection estimate
    python examples/contractive_ae.py --epochs 1 --limit 512 --out /tmp/cae   # smoke test
"""

import argparse
import os

import keras
import numpy as np

from keras_vae import AE, ContractiveAE, architectures, data, plotting

NOISE_LEVELS = (0.02, 0.05, 0.1, 0.2, 0.3)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--contractive-weight", type=float, default=1.0)
    parser.add_argument(
        "--jacobian", default="exact", help='"exact" or a number of random projections'
    )
    parser.add_argument("--latent-dim", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--limit", type=int, default=None, help="use the first N training images")
    parser.add_argument("--out", default=os.path.join("examples", "output", "contractive_ae"))
    return parser.parse_args()


def train(args, contractive):
    keras.utils.set_random_seed(0)  # the same initial weights and data order for both
    split = "train" if args.limit is None else f"train[:{args.limit}]"
    train_data = data.load("fashion_mnist", split, batch_size=args.batch_size, seed=0)
    encoder, decoder = architectures.mlp(
        (28, 28, 1), latent_dim=args.latent_dim, hidden_units=(512, 256), variational=False
    )
    if contractive:
        jacobian = args.jacobian if args.jacobian == "exact" else int(args.jacobian)
        model = ContractiveAE(
            encoder,
            decoder,
            contractive_weight=args.contractive_weight,
            reconstruction_loss="bernoulli",
            jacobian=jacobian,
            seed=0,
        )
    else:
        model = AE(encoder, decoder, reconstruction_loss="bernoulli")
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit(train_data, epochs=args.epochs, verbose=2, shuffle=False)
    return model, history


def relative_code_change(model, x, level, seed=1):
    eps = np.random.default_rng(seed).standard_normal(x.shape).astype("float32")
    code, moved = model.encode(x), model.encode(x + level * eps)
    return float(np.mean(np.linalg.norm(moved - code, axis=1) / np.linalg.norm(code, axis=1)))


def main():
    args = parse_args()
    x_test, _ = data.load_numpy("fashion_mnist", "test")
    x_test = x_test[: min(len(x_test), args.limit or 2000)]
    ae, _ = train(args, contractive=False)
    cae, history = train(args, contractive=True)
    models = {"AE": ae, f"CAE (weight {args.contractive_weight:g})": cae}

    curves = {}
    for name, model in models.items():
        # Any encoder's Jacobian: wrap the trained networks (weight 0, nothing is trained).
        meter = ContractiveAE(model.encoder, model.decoder, contractive_weight=0.0)
        norm = meter.jacobian_norm(x_test).mean()
        scale = np.mean(np.sum(np.square(model.encode(x_test)), axis=1))
        error = np.mean(np.square(model.reconstruct(x_test) - x_test))
        curves[name] = [relative_code_change(model, x_test, level) for level in NOISE_LEVELS]
        print(
            f"{name}: ||J||_F^2 {norm:.2f}, ||code||^2 {scale:.1f} (ratio {norm / scale:.4f}), "
            f"pixel MSE {error:.4f}, code moved {curves[name][3]:.3f} of its norm at noise 0.2"
        )

    out = args.out
    os.makedirs(out, exist_ok=True)
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    for name, curve in curves.items():
        axis.plot(NOISE_LEVELS, curve, "o-", label=name)
    axis.set_xlabel("stddev s of the input noise (pixels in [0, 1])")
    axis.set_ylabel("mean ||code(x + s eps) - code(x)|| / ||code(x)||")
    axis.set_title(f"Code sensitivity on {len(x_test)} test images")
    axis.legend()
    figure.tight_layout()
    figure.savefig(f"{out}/sensitivity.png", dpi=100)
    plt.close(figure)

    eps = np.random.default_rng(2).standard_normal((10, 28, 28, 1)).astype("float32")
    noisy = np.clip(x_test[:10] + 0.2 * eps, 0.0, 1.0)
    rows = [x_test[:10], noisy, ae.reconstruct(noisy), cae.reconstruct(noisy)]
    plotting.sample_grid(
        np.concatenate(rows),
        ncols=10,
        path=f"{out}/noisy_reconstructions.png",
        title="Clean / noisy (s = 0.2) / AE / CAE reconstruction of the noisy image",
    )
    plotting.loss_curves(
        history,
        path=f"{out}/loss_curves.png",
        keys=["loss", "reconstruction_loss", "contractive_loss"],
    )
    print(f"pictures in {out}/")


if __name__ == "__main__":
    main()
