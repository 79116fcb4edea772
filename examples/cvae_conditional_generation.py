"""Class-conditional generation with a conditional VAE on Fashion-MNIST.

`keras_vae.CVAE` trains on ``(image, label)`` pairs. Its prior is a learned mean per class,
N(mu_y, I), and here the encoder and decoder also see the one-hot label
(``architectures.mlp(..., num_classes=10)`` with ``condition_encoder=condition_decoder=True``,
the CVAE of Sohn et al. 2015), so ``generate(labels)`` draws clothes of the class asked for.

Writes:

- ``class_conditional.png``: one row of samples per class;
- ``samples_per_class_mean.png``: each class mean decoded, the class's "average" item;
- ``latent_scatter.png``: test posterior means coloured by class (PCA of the latent space);
  the class-mean prior keeps each class in its own region.

Run:

    python examples/cvae_conditional_generation.py           # ~3 min on 2 CPU cores
    python examples/cvae_conditional_generation.py --epochs 1 --limit 512 --out /tmp/cvae
"""

import argparse
import os

import keras
import numpy as np

from keras_vae import CVAE, architectures, data, evaluation, plotting


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latent-dim", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--limit", type=int, default=None, help="use the first N training images")
    parser.add_argument(
        "--out", default=os.path.join("examples", "output", "cvae_conditional_generation")
    )
    return parser.parse_args()


def main():
    args = parse_args()
    keras.utils.set_random_seed(0)
    train_split = "train" if args.limit is None else f"train[:{args.limit}]"
    # with_labels=True: the dataset yields (images, int32 labels), which CVAE.fit expects.
    # binarize="dynamic": fresh binary draws every epoch, so the loss is a likelihood bound.
    train = data.load(
        "fashion_mnist",
        train_split,
        batch_size=args.batch_size,
        with_labels=True,
        binarize="dynamic",
        seed=0,
    )
    x_test, y_test = evaluation.load_test_arrays("fashion_mnist")  # binarised once, seeded
    class_names = data.info("fashion_mnist").class_names  # "T-shirt/top", "Trouser", ...
    if args.limit is not None:
        x_test, y_test = x_test[: args.limit], y_test[: args.limit]

    # With num_classes the encoder takes [x, one_hot] and the decoder [z, one_hot].
    encoder, decoder = architectures.mlp(
        (28, 28, 1), latent_dim=args.latent_dim, hidden_units=(512, 256), num_classes=10
    )
    cvae = CVAE(
        encoder,
        decoder,
        num_classes=10,
        condition_encoder=True,
        condition_decoder=True,
        reconstruction_loss="bernoulli",
        seed=0,
    )
    cvae.compile(optimizer=keras.optimizers.Adam(1e-3))
    # shuffle=False: data.load already reshuffles every epoch (fit cannot shuffle a dataset).
    cvae.fit(train, epochs=args.epochs, validation_data=(x_test, y_test), verbose=2, shuffle=False)
    metrics = cvae.evaluate(x_test, y_test, batch_size=512, return_dict=True, verbose=0)
    print("test negative ELBO: {loss:.1f} nats (KL {kl_loss:.1f})".format(**metrics))

    out = args.out
    os.makedirs(out, exist_ok=True)
    # Each class repeated 8 times: generate(labels) decodes mu_y + eps for every label.
    plotting.class_conditional_grid(
        cvae, n_per_class=8, seed=0, class_names=class_names, path=f"{out}/class_conditional.png"
    )
    classes = np.arange(10)
    means = cvae.class_means()  # (10, latent_dim), the learned prior centres
    plotting.sample_grid(
        cvae.decode(means, classes),
        ncols=10,
        title="Decoded class means",
        path=f"{out}/samples_per_class_mean.png",
    )
    z_mean, _ = cvae.encode(x_test, y_test)
    plotting.latent_scatter(
        z_mean, labels=y_test, class_names=class_names, path=f"{out}/latent_scatter.png"
    )
    print(f"pictures in {out}/")


if __name__ == "__main__":
    main()
