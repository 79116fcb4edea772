"""Train the same VAE on the JAX or PyTorch backend.

Keras reads its backend once, when it is first imported, from the environment variable
``KERAS_BACKEND``. So this script parses its flags, sets the variable, and only then imports
keras and keras_vae. The models' train steps live in `keras_vae.backends` (one small module per
backend); the model code is the same on TensorFlow, JAX and PyTorch.

Writes ``samples.png`` and ``loss_curves.png``, and prints the backend, the time per epoch and
the test loss. The same from the command line: ``keras-vae train --backend jax ...``.

Run:

    python examples/other_backends.py --backend jax        # ~1.5 min on 2 CPU cores
    python examples/other_backends.py --backend torch
    python examples/other_backends.py --backend torch --epochs 1 --limit 512 --out /tmp/torch
"""

import argparse
import os
import time


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["jax", "torch", "tensorflow"], default="jax")
    parser.add_argument("--latent-dim", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--limit", type=int, default=None, help="use the first N training images")
    parser.add_argument("--out", default=None, help="default: examples/output/other_backends/NAME")
    return parser.parse_args()


def main():
    args = parse_args()
    # Must happen before the first `import keras` anywhere in the process.
    os.environ["KERAS_BACKEND"] = args.backend

    import keras

    from keras_vae import VAE, architectures, data, plotting

    print(f"Keras {keras.__version__} on the {keras.backend.backend()} backend")
    keras.utils.set_random_seed(0)
    split = "train" if args.limit is None else f"train[:{args.limit}]"
    # NumPy arrays work on every backend (tf.data pipelines do too; Keras converts them).
    # One seeded binary draw of each image, so the loss is a likelihood bound in nats.
    x_train, _ = data.load_numpy("fashion_mnist", split, binarize="dynamic", seed=0)
    x_test, _ = data.load_numpy("fashion_mnist", "test", binarize="dynamic", seed=1)
    x_test = x_test[: args.limit]

    encoder, decoder = architectures.mlp(
        (28, 28, 1), latent_dim=args.latent_dim, hidden_units=(512, 256)
    )
    vae = VAE(encoder, decoder, reconstruction_loss="bernoulli", seed=0)
    vae.compile(optimizer=keras.optimizers.Adam(1e-3))  # jit: XLA on JAX, eager on torch
    start = time.perf_counter()
    history = vae.fit(x_train, epochs=args.epochs, batch_size=args.batch_size, verbose=2)
    seconds = (time.perf_counter() - start) / args.epochs
    metrics = vae.evaluate(x_test, batch_size=512, return_dict=True, verbose=0)
    print(
        f"{keras.backend.backend()}: {seconds:.1f} s per epoch, "
        f"test negative ELBO {metrics['loss']:.1f} nats"
    )

    out = args.out or os.path.join("examples", "output", "other_backends", args.backend)
    os.makedirs(out, exist_ok=True)
    plotting.sample_grid(
        vae.generate(64, seed=0),  # numpy noise: the same seed gives the same draws everywhere
        ncols=8,
        path=f"{out}/samples.png",
        title=f"Samples ({keras.backend.backend()} backend)",
    )
    plotting.loss_curves(history, path=f"{out}/loss_curves.png")
    vae.save(f"{out}/vae.keras")  # loads on any backend
    print(f"pictures and vae.keras in {out}/")


if __name__ == "__main__":
    main()
