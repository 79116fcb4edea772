"""Denoising autoencoder: remove Gaussian noise from Fashion-MNIST images.

`keras_vae.DAE` corrupts each training batch with fresh noise (``x + noise_stddev * eps``) and
learns to reconstruct the clean image; evaluation and ``reconstruct`` see the input as given,
so we corrupt the test images ourselves with ``dae.corrupt(x, seed=...)``, the same noise the
model saw in training.

Writes:

- ``denoising.png``: clean test images, their noisy copies and the denoised outputs;
- ``noise_levels.png``: one image denoised at growing noise levels (top: noisy, bottom: output);
- ``loss_curves.png``.

Run:

    python examples/dae_denoising.py                        # ~3 min on 2 CPU cores
    python examples/dae_denoising.py --noise-stddev 0.5     # harder
    python examples/dae_denoising.py --epochs 1 --limit 512 --out /tmp/dae
"""

import argparse
import os

import keras
import numpy as np

from keras_vae import DAE, architectures, data, plotting


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--noise-stddev", type=float, default=0.4)
    parser.add_argument("--latent-dim", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--limit", type=int, default=None, help="use the first N training images")
    parser.add_argument("--out", default=os.path.join("examples", "output", "dae_denoising"))
    return parser.parse_args()


def psnr(clean, estimate):
    """Peak signal-to-noise ratio in dB, for images in [0, 1]."""
    return 10 * np.log10(1.0 / np.mean(np.square(np.clip(estimate, 0, 1) - clean)))


def main():
    args = parse_args()
    keras.utils.set_random_seed(0)
    train_split = "train" if args.limit is None else f"train[:{args.limit}]"
    train = data.load("fashion_mnist", train_split, batch_size=args.batch_size, seed=0)
    x_test, _ = data.load_numpy("fashion_mnist", "test")
    if args.limit is not None:
        x_test = x_test[: args.limit]

    # variational=False: the encoder returns one code; logits out, Bernoulli loss on clean x.
    encoder, decoder = architectures.mlp(
        (28, 28, 1), latent_dim=args.latent_dim, hidden_units=(512, 256), variational=False
    )
    dae = DAE(
        encoder,
        decoder,
        noise="gaussian",
        noise_stddev=args.noise_stddev,
        reconstruction_loss="bernoulli",
        seed=0,
    )
    dae.compile(optimizer=keras.optimizers.Adam(1e-3))
    # shuffle=False: data.load already reshuffles every epoch (fit cannot shuffle a dataset).
    history = dae.fit(
        train, epochs=args.epochs, validation_data=(x_test,), verbose=2, shuffle=False
    )

    noisy = dae.corrupt(x_test, seed=1)
    denoised = dae.reconstruct(noisy)
    print(
        f"test PSNR: noisy {psnr(x_test, noisy):.1f} dB -> denoised {psnr(x_test, denoised):.1f} dB"
    )

    out = args.out
    os.makedirs(out, exist_ok=True)
    plotting.reconstruction_pairs(
        x_test[:10],
        denoised[:10],
        noisy=noisy[:10],
        n=10,
        path=f"{out}/denoising.png",
        title=f"Denoising (noise stddev {args.noise_stddev})",
    )
    # The same image under more and more noise: where does the denoiser give up?
    levels = np.linspace(0.0, 1.0, 8, dtype="float32")
    eps = np.random.default_rng(2).standard_normal((1, 28, 28, 1)).astype("float32")
    ramp = x_test[:1] + levels[:, None, None, None] * eps
    plotting.reconstruction_pairs(
        ramp,
        dae.reconstruct(ramp),
        n=len(levels),
        path=f"{out}/noise_levels.png",
        title="Noise stddev 0 to 1, left to right",
    )
    plotting.loss_curves(history, path=f"{out}/loss_curves.png")
    print(f"pictures in {out}/")


if __name__ == "__main__":
    main()
