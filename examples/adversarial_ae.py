"""Adversarial autoencoder: a discriminator pushes Fashion-MNIST codes to a N(0, I) prior.

`keras_vae.AdversarialAE` trains like an `AE` (reconstruction phase) and, on every batch,
lets a discriminator tell prior draws from codes while the encoder learns to fool it
(regularisation phase, its own optimizer). Its codes then fill the prior, so decoding prior
draws (``aae.generate``) gives images; a plain `AE` trained the same way puts its codes
wherever reconstruction likes, and the same draws decode to smudges. Both learning rates decay
(cosine): at a constant rate the codes keep circling around the prior, as in other GANs.

Writes:

- ``codes.png``: the 2-D codes of test images, AAE and AE, with the prior's 1 and 2 sigma
  circles;
- ``samples.png``: prior draws decoded by the AAE; ``ae_samples.png``: the same draws decoded
  by the AE;
- ``loss_curves.png``: the AAE's reconstruction, discriminator and generator losses.

Run:

    python examples/adversarial_ae.py                       # ~3 min on 2 CPU cores
    python examples/adversarial_ae.py --prior uniform       # codes in the square [-1, 1]^2
    python examples/adversarial_ae.py --epochs 1 --limit 512 --out /tmp/aae
"""

import argparse
import os

import keras
import numpy as np

from keras_vae import AE, AdversarialAE, architectures, data, plotting


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prior", choices=("normal", "uniform"), default="normal")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--limit", type=int, default=None, help="use the first N training images")
    parser.add_argument("--out", default=os.path.join("examples", "output", "adversarial_ae"))
    return parser.parse_args()


def decaying_adam(steps):
    return keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(2e-3, steps, alpha=0.02))


def codes_figure(panels, labels, class_names, prior, path):
    """One scatter per model of its test codes, coloured by class, over the prior's shape."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Circle, Rectangle

    fig = Figure(figsize=(5 * len(panels), 5), layout="constrained")
    for index, (title, codes) in enumerate(panels.items()):
        ax = fig.add_subplot(1, len(panels), index + 1)
        points = ax.scatter(codes[:, 0], codes[:, 1], c=labels, cmap="tab10", s=3, alpha=0.6)
        shapes = (
            [Rectangle((-1, -1), 2, 2)]
            if prior == "uniform"
            else [Circle((0, 0), r) for r in (1, 2)]
        )
        for shape in shapes:
            shape.set(fill=False, color="black", linestyle="--")
            ax.add_patch(shape)
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_title(title)
    handles, _ = points.legend_elements()
    fig.legend(handles, class_names, loc="outside right center", fontsize="small")
    plotting.save_png(fig, path)


def code_moments(codes):
    return f"mean {np.round(codes.mean(0), 2)}, std {np.round(codes.std(0), 2)}"


def main():
    args = parse_args()
    train_split = "train" if args.limit is None else f"train[:{args.limit}]"
    x_train, _ = data.load_numpy("fashion_mnist", train_split)
    x_test, y_test = data.load_numpy("fashion_mnist", "test")
    if args.limit is not None:
        x_test, y_test = x_test[: args.limit], y_test[: args.limit]
    steps = args.epochs * -(-len(x_train) // args.batch_size)

    models = {}
    for name, cls in [("AdversarialAE", AdversarialAE), ("AE", AE)]:
        keras.utils.set_random_seed(0)
        encoder, decoder = architectures.mlp(
            (28, 28, 1), latent_dim=2, hidden_units=(512, 256), variational=False
        )
        if cls is AdversarialAE:
            model = AdversarialAE(
                encoder, decoder, prior=args.prior, reconstruction_loss="bernoulli", seed=0
            )
            model.compile(
                optimizer=decaying_adam(steps), discriminator_optimizer=decaying_adam(steps)
            )
        else:
            model = AE(encoder, decoder, reconstruction_loss="bernoulli")
            model.compile(optimizer=decaying_adam(steps))
        print(f"training the {name}")
        history = model.fit(x_train, epochs=args.epochs, batch_size=args.batch_size, verbose=2)
        models[name] = (model, history)

    aae, history = models["AdversarialAE"]
    ae, _ = models["AE"]
    codes = {name: model.encode(x_test) for name, (model, _) in models.items()}
    for name, value in codes.items():
        print(f"{name} test codes: {code_moments(value)}")

    out = args.out
    os.makedirs(out, exist_ok=True)
    class_names = data.info("fashion_mnist").class_names or [str(k) for k in range(10)]
    codes_figure(codes, y_test, class_names, args.prior, f"{out}/codes.png")
    draws = aae.sample_prior(64, seed=1)
    plotting.sample_grid(
        aae.decode(draws),
        path=f"{out}/samples.png",
        title=f"AdversarialAE: {args.prior} prior draws decoded",
    )
    plotting.sample_grid(
        ae.decode(draws), path=f"{out}/ae_samples.png", title="AE: the same draws decoded"
    )
    plotting.loss_curves(
        history,
        keys=["reconstruction_loss", "discriminator_loss", "generator_loss"],
        path=f"{out}/loss_curves.png",
    )
    print(f"pictures in {out}/")


if __name__ == "__main__":
    main()
