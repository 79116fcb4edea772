"""Trains the four pre-trained models on Fashion-MNIST and exports them for serving.

Writes ``saved_models/<name>/1/`` (a TensorFlow SavedModel; ``1`` is the version folder
TensorFlow Serving expects) for ``vae``, ``cvae``, ``dae`` and ``ae``, and
``saved_models/metrics.json`` with the test-set metrics, the training settings and each
export's signatures. Seeded and deterministic (TensorFlow op determinism), so a rerun gives the
same weights on the same machine and library versions.

Every model is a small MLP, 784-128-16-128-784 (the CVAE also feeds the one-hot label to the
encoder and the decoder), with a Bernoulli likelihood on the grey levels (binary cross-entropy
in nats per image, summed over the 784 pixels), trained with Adam on the 60,000 training
images and evaluated on the 10,000 test images.

Usage (from the repository root; ``make saved-models`` runs the same):

    .venv/bin/python saved_models/build.py
    .venv/bin/python saved_models/build.py --epochs 2 --out /tmp/saved_models  # a quick try
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time

MODELS = ("vae", "cvae", "dae", "ae")
SEED = 0
LATENT_DIM = 16
HIDDEN_UNITS = (128,)
EPOCHS = 8
BATCH_SIZE = 128
LEARNING_RATE = 1e-3
DAE_NOISE_STDDEV = 0.3
NUM_CLASSES = 10
CHECK_IMAGES = 256  # the first test images whose served reconstructions tests re-check
HERE = os.path.dirname(os.path.abspath(__file__))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=HERE, help="output folder (default: saved_models/)")
    parser.add_argument("--epochs", type=int, default=EPOCHS, help="epochs per model")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated subset")
    parser.add_argument(
        "--backend",
        default="tensorflow",
        choices=("tensorflow", "jax"),
        help="Keras backend that trains and exports (default: tensorflow)",
    )
    args = parser.parse_args(argv)
    args.models = [name for name in args.models.split(",") if name]
    unknown = sorted(set(args.models) - set(MODELS))
    if unknown:
        parser.error(f"unknown models {unknown}; choose from {list(MODELS)}")
    return args


def build_model(name):
    from keras_vae import AE, CVAE, DAE, VAE, architectures

    shape = (28, 28, 1)
    arch = {"latent_dim": LATENT_DIM, "hidden_units": HIDDEN_UNITS}
    if name == "vae":
        return VAE(*architectures.mlp(shape, **arch), seed=SEED, name="vae")
    if name == "cvae":
        pair = architectures.mlp(shape, num_classes=NUM_CLASSES, **arch)
        return CVAE(
            *pair,
            num_classes=NUM_CLASSES,
            condition_encoder=True,
            condition_decoder=True,
            seed=SEED,
            name="cvae",
        )
    pair = architectures.mlp(shape, variational=False, **arch)
    if name == "dae":
        return DAE(
            *pair,
            noise="gaussian",
            noise_stddev=DAE_NOISE_STDDEV,
            reconstruction_loss="bernoulli",
            seed=SEED,
            name="dae",
        )
    return AE(*pair, reconstruction_loss="bernoulli", name="ae")


def served_metrics(path, x, labels, batch_size=1000):
    """Reconstruction errors of the exported ``serving_default`` on ``x`` (nats and MSE)."""
    import numpy as np
    import tensorflow as tf

    signature = tf.saved_model.load(path).signatures["serving_default"]
    takes_labels = "labels" in signature.structured_input_signature[1]
    bce, squared = [], []
    for start in range(0, len(x), batch_size):
        feed = {"x": tf.constant(x[start : start + batch_size])}
        if takes_labels:
            feed["labels"] = tf.constant(labels[start : start + batch_size])
        p = signature(**feed)["reconstruction"].numpy().astype("float64")
        target = x[start : start + batch_size].astype("float64")
        p = np.clip(p, 1e-7, 1 - 1e-7)
        per_pixel = -(target * np.log(p) + (1 - target) * np.log1p(-p))
        bce.append(per_pixel.reshape(len(p), -1).sum(axis=1))
        squared.append(((p - target) ** 2).reshape(len(p), -1).mean(axis=1))
    bce, squared = np.concatenate(bce), np.concatenate(squared)
    return {
        "reconstruction_bce": round(float(bce.mean()), 3),
        "reconstruction_mse": round(float(squared.mean()), 6),
        f"reconstruction_bce_first_{CHECK_IMAGES}": round(float(bce[:CHECK_IMAGES].mean()), 3),
        f"reconstruction_mse_first_{CHECK_IMAGES}": round(float(squared[:CHECK_IMAGES].mean()), 6),
    }


def describe_signatures(path):
    """``{signature: {"inputs": {name: [dtype, shape]}, "outputs": {...}}}`` of an export."""
    import tensorflow as tf

    loaded = tf.saved_model.load(path)
    described = {}
    for name in sorted(loaded.signatures):
        fn = loaded.signatures[name]

        def spec(s):
            return [s.dtype.name, [None if d is None else int(d) for d in s.shape]]

        described[name] = {
            "inputs": {k: spec(s) for k, s in sorted(fn.structured_input_signature[1].items())},
            "outputs": {k: spec(s) for k, s in sorted(fn.structured_outputs.items())},
        }
    return described


def remove_empty_folders(path):
    """Git keeps no empty folder (the empty ``assets/``): make the tree what a clone gets."""
    for root, folders, files in os.walk(path, topdown=False):
        if not folders and not files and root != path:
            os.rmdir(root)


def folder_bytes(path):
    return sum(
        os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path) for f in files
    )


def main(argv=None):
    args = parse_args(argv)
    os.environ["KERAS_BACKEND"] = args.backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    import keras
    import numpy as np
    import tensorflow as tf

    from keras_vae.data import load_numpy

    keras.utils.set_random_seed(SEED)
    if args.backend == "tensorflow":
        tf.config.experimental.enable_op_determinism()

    started = time.time()
    x_train, y_train = load_numpy("fashion_mnist", "train", download=False)
    x_test, y_test = load_numpy("fashion_mnist", "test", download=False)
    print(f"Fashion-MNIST: train {x_train.shape}, test {x_test.shape}", flush=True)

    metrics_path = os.path.join(args.out, "metrics.json")
    metrics = {"models": {}}
    if os.path.exists(metrics_path):  # keep the models this run does not rebuild
        with open(metrics_path) as file:
            metrics["models"] = json.load(file).get("models", {})
    for name in args.models:
        keras.utils.set_random_seed(SEED)
        model = build_model(name)
        model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE))
        targets = (y_train,) if model.conditional else ()
        tic = time.time()
        history = model.fit(
            x_train, *targets, batch_size=BATCH_SIZE, epochs=args.epochs, shuffle=True, verbose=2
        )
        train_seconds = time.time() - tic
        test_targets = (y_test,) if model.conditional else ()
        test = model.evaluate(x_test, *test_targets, batch_size=1000, verbose=0, return_dict=True)

        path = os.path.join(args.out, name, "1")
        shutil.rmtree(os.path.join(args.out, name), ignore_errors=True)
        model.export(path, verbose=False)
        remove_empty_folders(os.path.join(args.out, name))

        metrics["models"][name] = {
            "model": type(model).__name__,
            "architecture": (
                f"mlp 784-{'-'.join(map(str, HIDDEN_UNITS))}-{LATENT_DIM}"
                + (" (one-hot label into encoder and decoder)" if name == "cvae" else "")
            ),
            "parameters": int(model.count_params()),
            "reconstruction_loss": "bernoulli (binary cross-entropy, nats per image)",
            "epochs": args.epochs,
            "train_seconds": round(train_seconds, 1),
            "final_train": {k: round(float(v[-1]), 3) for k, v in history.history.items()},
            "test": {k: round(float(v), 3) for k, v in test.items()},
            "served_test": served_metrics(path, x_test, y_test),
            "export": os.path.relpath(path, args.out),
            "export_bytes": folder_bytes(os.path.join(args.out, name)),
            "signatures": describe_signatures(path),
        }
        if name == "dae":
            metrics["models"][name]["noise"] = f"gaussian, stddev {DAE_NOISE_STDDEV}"
        print(f"{name}: test {metrics['models'][name]['test']}", flush=True)

    metrics.update(
        {
            "data": "Fashion-MNIST (train 60,000 / test 10,000 images, grey levels in [0, 1])",
            "command": " ".join(
                ["python saved_models/build.py", *(argv if argv is not None else sys.argv[1:])]
            ),
            "seed": SEED,
            "batch_size": BATCH_SIZE,
            "learning_rate": LEARNING_RATE,
            "backend": args.backend,
            "versions": {
                "python": platform.python_version(),
                "keras": keras.__version__,
                "tensorflow": tf.__version__,
                "numpy": np.__version__,
            },
            "build_seconds": round(time.time() - started, 1),
        }
    )
    os.makedirs(args.out, exist_ok=True)
    with open(metrics_path, "w") as file:
        json.dump(metrics, file, indent=2)
        file.write("\n")
    print(f"Wrote {metrics_path} in {metrics['build_seconds']} s", flush=True)


if __name__ == "__main__":
    main()
