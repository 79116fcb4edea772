"""How good the models are: test log-likelihood of keras_vae's models and of the peers.

    python -m benchmarks.quality                 # every row, writes results/quality.{md,json}
    python -m benchmarks.quality --quick         # tiny settings, writes results/quality_quick.*
    python -m benchmarks.quality --rows 'vae/' --epochs 2 --name quality_try

Every row trains on dynamically binarised Fashion-MNIST (Burda et al. 2015): each epoch is a
fresh permutation of the 60,000 training images with fresh Bernoulli(pixel) draws, from numpy
with ``(DATA_SEED, epoch)``, the same for every row and backend (`epoch_data`). The test images
are binarised once, with `keras_vae.evaluation.TEST_BINARIZE_SEED`. Each row runs in its own
process (``--worker ROW``: a Keras backend is fixed per process), is scored on the same test
subset by the same estimator, `keras_vae.likelihood` (the keras_vae models through their own
``log_likelihood`` / ``elbo`` / ``active_units``, the peers through their ``scorer`` adapters,
from pre-sigmoid logits), and prints JSON; this process writes the report. See
benchmarks/README.md for what is measured.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import importlib.metadata
import importlib.util
import json
import math
import os
import re
import subprocess
import sys
import time
import traceback
from pathlib import Path

import numpy as np

from benchmarks import common

RESULTS = Path(__file__).resolve().parent / "results"
DATA_SEED = 0  # the training epochs: permutation and binarisation from (DATA_SEED, epoch)
MODEL_SEED = 0  # initial weights and the models' own sampling noise
NUM_CLASSES = 10
LATENT_DIM = 20
HIDDEN = 400
EVAL_NOISE_SEED = common.EVAL_SEED  # numpy seed of the estimators' importance samples
ELBO_SAMPLES = 10  # Monte-Carlo samples of the ELBO's reconstruction term
ACTIVE_UNIT_THRESHOLD = 0.01  # Burda et al. 2015
GENERATED_PER_CLASS = 100  # generated images per class scored for conditional accuracy
GENERATE_SEED = 7
# Where keras_vae.evaluation's reference classifier is cached (trained once, then loaded).
CLASSIFIER_CACHE = Path(
    os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "keras_vae", "benchmarks"
)


@dataclasses.dataclass(frozen=True)
class Settings:
    """What every row shares: epochs, data, the test subset and the estimator's K."""

    epochs: int = 10
    train_size: int | None = None  # None: all 60,000 (59,904 per epoch, 468 batches of 128)
    eval_size: int = 1000  # the first eval_size binarised test images score every row
    num_samples: int = 1000  # K of the importance-weighted estimate
    full_test: bool = True  # rows marked full_test are also scored on all 10,000 test images
    # Rows marked curve: the NLL after these epochs too, trained on past `epochs` up to the
    # last one (the equal-time comparison with the peers that take longer per epoch).
    checkpoints: tuple[int, ...] = (1, 2, 5, 15, 20, 30)
    synthetic: bool = False  # random data of the right shapes instead of Fashion-MNIST

    def arguments(self) -> list[str]:
        args = ["--epochs", str(self.epochs), "--eval-size", str(self.eval_size)]
        args += ["--num-samples", str(self.num_samples)]
        args += ["--checkpoints", ",".join(map(str, self.checkpoints)) or "none"]
        args += ["--train-size", str(self.train_size or 0)]
        args += [] if self.full_test else ["--no-full-test"]
        return args + (["--synthetic"] if self.synthetic else [])


QUICK = Settings(
    epochs=1, train_size=1024, eval_size=64, num_samples=20, full_test=False, checkpoints=()
)


@dataclasses.dataclass(frozen=True)
class Row:
    key: str  # what --rows matches
    label: str  # the report's name of the row
    impl: str  # "keras_vae", or a module of benchmarks/peers
    backend: str
    arch: str  # "mlp" (784-400-20) or "conv"
    model: str = "vae"  # keras_vae rows: a name in keras_vae.models.MODELS
    options: tuple = ()  # keras_vae rows: more model arguments, ((name, value), ...)
    latent_dim: int = LATENT_DIM  # keras_vae rows: the size of the latent space
    hidden_units: tuple = (HIDDEN,)  # keras_vae MLP rows: the hidden widths, encoder order
    full_test: bool = False  # also scored on all 10,000 test images (Settings.full_test)
    curve: bool = False  # also scored after Settings.checkpoints epochs (equal-time comparison)
    default: bool = True  # in the plan without --rows (False: over the 30-minute budget)

    @property
    def peer(self) -> bool:
        return self.impl != "keras_vae"

    def frameworks(self) -> set[str]:
        needs = {self.backend}
        if self.impl == "keras_example":
            needs.add("tensorflow")
        return needs


# Models whose default reconstruction loss is "mse": the Bernoulli likelihood of binary pixels.
BERNOULLI = (("reconstruction_loss", "bernoulli"),)

# The CVAE rows: a 4-dimensional latent and two hidden layers (800, 400), the label given to
# both networks (Sohn et al. 2015's q(z | x, y) and p(x | z, y)) beside the class-mean prior
# alone. With the MLP 784-400-20 of the other rows the classifier gave 76.9 % of the
# decoder-conditioned CVAE's images their label, and the sweep of benchmarks/README.md (issue
# 13) found the small latent and the second layer to matter most: prior draws of a small
# latent decode to fewer blurs between neighbouring classes.
CVAE_LATENT_DIM = 4
CVAE_HIDDEN = (800, 400)
CVAE_CONDITIONED = (("condition_encoder", True), ("condition_decoder", True))

# keras_vae rows on the backend that trains them fastest on 2 CPU cores (benchmarks/README.md:
# JAX for the MLP, TensorFlow for convolutions); the peers on theirs (the Keras example's step
# needs TensorFlow; PyTorch's example is plain PyTorch, scored under KERAS_BACKEND=torch).
ROWS = (
    Row("vae/mlp", "keras_vae VAE, MLP 784-400-20", "keras_vae", "jax", "mlp",
        full_test=True, curve=True),
    Row("vae/conv", "keras_vae VAE, conv (latent 20)", "keras_vae", "tensorflow", "conv"),
    Row("cvae-prior/mlp", "keras_vae CVAE, class-mean prior only, MLP 784-800-400-4",
        "keras_vae", "jax", "mlp", "cvae", latent_dim=CVAE_LATENT_DIM,
        hidden_units=CVAE_HIDDEN),
    Row("cvae-decoder/mlp", "keras_vae CVAE, label to decoder and encoder, MLP 784-800-400-4",
        "keras_vae", "jax", "mlp", "cvae", CVAE_CONDITIONED, latent_dim=CVAE_LATENT_DIM,
        hidden_units=CVAE_HIDDEN),
    Row("iwae-k5/mlp", "keras_vae IWAE k=5, MLP 784-400-20", "keras_vae", "jax", "mlp", "iwae",
        (("num_samples", 5),)),
    Row("iwae-k50/mlp", "keras_vae IWAE k=50, MLP 784-400-20", "keras_vae", "jax", "mlp",
        "iwae", (("num_samples", 50),), default=False),
    Row("ae/mlp", "keras_vae AE (reference for CAE/AAE), MLP 784-400-20", "keras_vae", "jax",
        "mlp", "ae", BERNOULLI),
    Row("cae/mlp", "keras_vae ContractiveAE, MLP 784-400-20", "keras_vae", "jax", "mlp", "cae",
        BERNOULLI),
    Row("aae/mlp", "keras_vae AdversarialAE, MLP 784-400-20", "keras_vae", "jax", "mlp", "aae",
        BERNOULLI),
    Row("pytorch_example/mlp", "PyTorch example, MLP 784-400-20", "pytorch_example", "torch",
        "mlp"),
    Row("keras_add_loss/mlp", "Keras add_loss VAE, MLP 784-400-20", "keras_add_loss", "jax",
        "mlp"),
    Row("keras_example/conv", "Keras example, conv (latent 2)", "keras_example", "tensorflow",
        "conv"),
)  # fmt: skip


def select(pattern: str | None, rows=ROWS) -> list[Row]:
    """The rows whose key matches ``pattern``; without one, the default plan."""
    if pattern is None:
        return [row for row in rows if row.default]
    return [row for row in rows if re.search(pattern, row.key)]


# --------------------------------------------------------------------------------------- data
def train_images(train_size: int | None, synthetic: bool):
    """Grey-level training images float32 ``(N, 28, 28, 1)``, int32 labels, and their source."""
    directory = None if synthetic else common.data_dir()
    if directory is None:
        count = train_size or 60000
        rng = np.random.default_rng(0)
        images = rng.random((count, 28, 28, 1), dtype=np.float32)
        return images, rng.integers(0, NUM_CLASSES, count).astype("int32"), "SYNTHETIC"
    from keras_vae.data import load_numpy

    images, labels = load_numpy("fashion_mnist", "train", idx_dir=directory, download=False)
    if train_size:
        images, labels = images[:train_size], labels[:train_size]
    return images, labels, f"fashion_mnist:{directory}"


def test_set(synthetic: bool):
    """The 10,000 test images binarised once (`keras_vae.evaluation.load_test_arrays`, seed
    `keras_vae.evaluation.TEST_BINARIZE_SEED`), and their labels."""
    directory = None if synthetic else common.data_dir()
    if directory is None:
        rng = np.random.default_rng(1)
        images = (rng.random((10000, 28, 28, 1)) < 0.3).astype("float32")
        return images, rng.integers(0, NUM_CLASSES, 10000).astype("int32")
    from keras_vae import evaluation

    return evaluation.load_test_arrays("fashion_mnist", idx_dir=directory, download=False)


def real_test_images(synthetic: bool):
    """The grey-level test images ``(N, 28, 28, 1)`` and labels (what the classifier learnt)."""
    if synthetic:
        return train_images(256, True)[:2]
    from keras_vae import evaluation

    return evaluation.load_test_arrays(binarize=None, idx_dir=common.data_dir(), download=False)


def test_binarize_seed(synthetic: bool):
    from keras_vae import evaluation

    return "synthetic data" if synthetic else evaluation.TEST_BINARIZE_SEED


def epoch_data(images, labels, epoch: int):
    """Epoch ``epoch``'s training data: a fresh permutation of ``images``, binarised afresh.

    Drawn by numpy from ``(DATA_SEED, epoch)`` alone, so every row and backend trains on the
    same examples in the same order. Cut to a multiple of the batch size (59,904 of 60,000, a
    different 96 left out each epoch), so no row re-compiles for a smaller last batch.
    """
    rng = np.random.default_rng([DATA_SEED, epoch])
    count = len(images) - len(images) % common.BATCH_SIZE
    order = rng.permutation(len(images))[:count]
    chosen = images[order]
    binary = (rng.random(chosen.shape, dtype=np.float32) < chosen).astype(np.float32)
    return binary, labels[order]


def shaped(x, arch):
    return common.flatten(x) if arch == "mlp" else x


# ------------------------------------------------------------------------------- the models
class Skip(Exception):
    """The row cannot run here: a model not registered yet, a framework not installed."""


def build_keras_vae(row: Row):
    """The keras_vae model of ``row``, from `keras_vae.models.MODELS`, compiled with Adam(1e-3).

    MLP 784-400-20 (`architectures.mlp`) or `architectures.conv` with latent 20 and a
    400-unit dense layer, or the latent size and MLP widths the row names (``latent_dim``,
    ``hidden_units``); the label goes to the encoder / decoder as the row's options say.
    """
    import keras

    from keras_vae import architectures
    from keras_vae.models import MODELS
    from keras_vae.runs import accepts

    if row.model not in MODELS:
        raise Skip(f"{row.model!r} is not in keras_vae.models.MODELS yet")
    model_class = MODELS[row.model]
    options = dict(row.options)
    variational = model_class.num_latent_outputs == 2

    def networks(num_classes):
        if row.arch == "mlp":
            return architectures.mlp(
                (784,), row.latent_dim, row.hidden_units, variational=variational,
                num_classes=num_classes,
            )  # fmt: skip
        return architectures.conv(
            (28, 28, 1), row.latent_dim, hidden_units=HIDDEN, variational=variational,
            num_classes=num_classes,
        )  # fmt: skip

    encoder, _ = networks(NUM_CLASSES if options.get("condition_encoder") else None)
    _, decoder = networks(NUM_CLASSES if options.get("condition_decoder") else None)
    if model_class.conditional:
        options["num_classes"] = NUM_CLASSES
    if accepts(model_class, "seed"):
        options["seed"] = MODEL_SEED
    model = model_class(encoder, decoder, **options)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model


def build(row: Row):
    if row.impl == "keras_vae":
        return build_keras_vae(row)
    peer = importlib.import_module(f"benchmarks.peers.{row.impl}")
    if row.impl == "pytorch_example":
        import torch

        torch.set_num_threads(common.cpu_count())
        return peer.build(row.arch)[0]
    model = peer.build(row.arch)[0]
    peer.compile_model(model)
    return model


def train(
    row: Row, model, images, labels, epochs: int, after_epoch=None, first_epoch: int = 0
) -> dict:
    """Trains ``model`` for ``epochs`` on `epoch_data`, each implementation with its own loop.

    Keras models: one ``fit(..., epochs=1, shuffle=False)`` per epoch (the optimizer state
    carries over; ``first_epoch`` > 0 goes on training a model trained that far);
    PyTorch's example: its own loop, given the epochs' data in their order.
    ``after_epoch(epoch, seconds)`` runs between epochs, outside the timed span (``seconds``:
    this call's training so far). The time to draw the epochs' data is not counted.
    """
    if row.impl == "pytorch_example":
        from benchmarks.peers import pytorch_example

        drawing = []

        def data(epoch):
            start = time.perf_counter()
            x, _ = epoch_data(images, labels, epoch)
            x = shaped(x, row.arch)
            drawing.append(time.perf_counter() - start)
            return x

        clock = common.StepClock()
        loss = pytorch_example.train(
            model, None, epochs, common.BATCH_SIZE, clock, seed=MODEL_SEED, epoch_data=data
        )
        seconds = clock.end - clock.start - sum(drawing)
        return {"train_seconds": seconds, "final_train_loss": float(loss)}

    from keras import ops

    fit = {"batch_size": common.BATCH_SIZE, "epochs": 1, "shuffle": False, "verbose": 0}
    conditional = row.impl == "keras_vae" and model.conditional
    epoch_seconds = []
    for epoch in range(first_epoch, epochs):
        x, y = epoch_data(images, labels, epoch)
        x = shaped(x, row.arch)
        start = time.perf_counter()
        if row.impl == "keras_add_loss":
            history = model.fit(x, x, **fit)  # its compiled loss compares output and target
        else:
            history = model.fit(x, y if conditional else None, **fit)
        ops.convert_to_numpy(model.trainable_variables[-1])  # waits for JAX's async steps
        epoch_seconds.append(time.perf_counter() - start)
        if after_epoch is not None:
            after_epoch(epoch + 1, sum(epoch_seconds))
    return {
        "train_seconds": sum(epoch_seconds),
        "epoch_seconds": epoch_seconds,
        "final_train_loss": float(history.history["loss"][-1]),
    }


# ------------------------------------------------------------------------------------ scoring
def _peer_estimates(row: Row, model, x, num_samples: int) -> dict:
    """log p(x), the ELBO and the posterior means of a peer, by `keras_vae.likelihood`."""
    from keras import ops

    from keras_vae import likelihood

    peer = importlib.import_module(f"benchmarks.peers.{row.impl}")
    encode, decode, from_logits = peer.scorer(model)
    common_args = {"likelihood": "bernoulli", "from_logits": from_logits, "seed": EVAL_NOISE_SEED}
    log_px = likelihood.log_likelihood(encode, decode, x, num_samples=num_samples, **common_args)
    elbo = likelihood.elbo(encode, decode, x, num_samples=ELBO_SAMPLES, **common_args)
    means = [
        ops.convert_to_numpy(encode(ops.convert_to_tensor(x[i : i + 500]))[0])
        for i in range(0, len(x), 500)
    ]
    return {"log_px": log_px, "elbo": elbo, "z_mean": np.concatenate(means)}


def nll_summary(log_px) -> dict:
    log_px = np.asarray(log_px, dtype=np.float64)
    return {
        "nll": float(-log_px.mean()),
        "nll_sem": float(log_px.std(ddof=1) / math.sqrt(len(log_px))) if len(log_px) > 1 else 0.0,
    }


def log_likelihood(row: Row, model, x, labels, num_samples: int) -> np.ndarray:
    """Per-example log p(x) (log p(x | y) for a conditional model), float64 numpy."""
    if row.peer:
        from keras_vae import likelihood

        peer = importlib.import_module(f"benchmarks.peers.{row.impl}")
        encode, decode, from_logits = peer.scorer(model)
        return likelihood.log_likelihood(
            encode, decode, x, "bernoulli", from_logits, num_samples, seed=EVAL_NOISE_SEED
        )
    given = {"labels": labels} if model.conditional else {}
    return model.log_likelihood(x, num_samples=num_samples, seed=EVAL_NOISE_SEED, **given)


def score(row: Row, model, x, labels, num_samples: int, classifier=None, real=None) -> dict:
    """Every metric of the report that applies to ``row``, on ``x`` (binary) and ``labels``."""
    if row.peer:
        estimates = _peer_estimates(row, model, x, num_samples)
        variances = estimates["z_mean"].var(axis=0)
        return {
            **nll_summary(estimates["log_px"]),
            "log_px": estimates["log_px"],
            "neg_elbo": float(-estimates["elbo"].mean()),
            "active_units": int(np.sum(variances > ACTIVE_UNIT_THRESHOLD)),
            "latent_dim": int(variances.size),
        }
    given = {"labels": labels} if model.conditional else {}
    result = {}
    if getattr(model, "has_likelihood", False):
        log_px = log_likelihood(row, model, x, labels, num_samples)
        elbo = model.elbo(x, num_samples=ELBO_SAMPLES, seed=EVAL_NOISE_SEED, **given)
        kl = model.kl_per_dimension(x, **given)
        result.update(nll_summary(log_px), log_px=log_px, neg_elbo=float(-elbo.mean()))
        result.update(kl=float(kl.sum()), latent_dim=int(kl.size))
        result["active_units"] = model.active_units(x, threshold=ACTIVE_UNIT_THRESHOLD, **given)
    else:
        result.update(reconstruction_metrics(model, x, labels))
    if model.conditional and model.generative and classifier is not None:
        result.update(conditional_accuracy(model, classifier, real))
    if model.num_latent_outputs == 1:
        result.update(code_statistics(model, x))
    return result


def reconstruction_metrics(model, x, labels) -> dict:
    """Models without a likelihood: the reconstruction's Bernoulli cross-entropy and PSNR.

    `keras_vae.evaluation.reconstruction_metrics`: the model's own ``reconstruction_loss``
    (here the Bernoulli likelihood of the binary pixels, nats per image) and the mean PSNR.
    """
    from keras_vae import evaluation

    metrics = evaluation.reconstruction_metrics(model, x, labels, seed=EVAL_NOISE_SEED)
    return {"reconstruction_ce": metrics["reconstruction_loss"], "psnr": metrics["psnr_db"]}


def code_statistics(model, x) -> dict:
    """Per-dimension mean and standard deviation of the codes, against the prior N(0, 1)."""
    codes = np.asarray(model.encode(x), dtype=np.float64)
    mean, std = codes.mean(axis=0), codes.std(axis=0)
    return {
        "code_mean_abs_max": float(np.abs(mean).max()),
        "code_std_min": float(std.min()),
        "code_std_max": float(std.max()),
        "code_std_mean": float(std.mean()),
    }


def reference_classifier(synthetic: bool):
    """`keras_vae.evaluation.reference_classifier` of Fashion-MNIST, cached in CLASSIFIER_CACHE
    (trained on the real grey-level training split the first time, ~91 % test accuracy)."""
    from keras_vae import evaluation

    if synthetic:  # the fast test: an untrained classifier of the right shape will do
        return evaluation.ReferenceClassifier(
            evaluation.train_classifier(*train_images(256, True)[:2], epochs=1)
        )
    return evaluation.reference_classifier(
        "fashion_mnist",
        CLASSIFIER_CACHE,
        idx_dir=common.data_dir(),
        download=False,
        report=lambda line: print(line, file=sys.stderr),
    )


def conditional_accuracy(model, classifier, real=None) -> dict:
    """Share of ``generate(labels)`` images (100 per class) the classifier gives their label.

    `keras_vae.evaluation.conditional_accuracy`; a model of flat data (the MLP rows) has its
    images reshaped to the classifier's 28x28x1 first. ``real``: ``{name: (images, labels)}``
    of test images on which the classifier's own accuracy per class is reported beside
    (``classifier_<name>_accuracy_per_class``).
    """
    from keras_vae import evaluation

    class FlatImages:  # the classifier of 28x28x1 images, given the MLP rows' 784-vectors
        input_shape = (None, *model.data_shape)

        def predict(self, images, batch_size=None, verbose=0):
            images = np.reshape(images, (len(images), 28, 28, 1))
            return classifier.predict(images, batch_size=batch_size, verbose=verbose)

    adapter = FlatImages() if len(model.data_shape) == 1 else classifier
    scored = evaluation.conditional_accuracy(
        model, adapter, GENERATED_PER_CLASS, seed=GENERATE_SEED
    )
    accuracy = getattr(classifier, "test_accuracy", None)
    binary = getattr(classifier, "binarized_test_accuracy", None)
    result = {
        "conditional_accuracy": scored["accuracy"],
        "conditional_accuracy_per_class": scored["per_class"],
        "classifier": "keras_vae.evaluation.reference_classifier"
        + (", trained on grey-level and dynamically binarised images" if binary else "")
        + " (test accuracy "
        + (f"{100 * accuracy:.1f} %" if accuracy is not None else "not measured")
        + (f" on the grey-level images, {100 * binary:.1f} % binarised" if binary else "")
        + ")",
    }
    if real is not None:  # the classifier's own accuracy per class, on real test images
        for key, (images, labels) in real.items():
            predicted = np.argmax(classifier.predict(images, batch_size=512), axis=-1)
            result[f"classifier_{key}_accuracy_per_class"] = [
                float(np.mean(predicted[labels == c] == c)) for c in range(NUM_CLASSES)
            ]
    return result


# ------------------------------------------------------------------------------------ a row
def measure(row: Row, settings: Settings, backend: str) -> dict:
    """Trains and scores ``row`` in this process (on its Keras backend); the row's JSON."""
    started = time.perf_counter()
    common.seed_everything(MODEL_SEED, backend)
    images, labels, source = train_images(settings.train_size, settings.synthetic)
    x_test, y_test = test_set(settings.synthetic)
    x_test = shaped(x_test, row.arch)
    x_eval, y_eval = x_test[: settings.eval_size], y_test[: settings.eval_size]
    model = build(row)
    curve = []

    def checkpoint(epoch, seconds, before=0.0):
        if row.curve and epoch in settings.checkpoints and epoch != settings.epochs:
            log_px = log_likelihood(row, model, x_eval, y_eval, settings.num_samples)
            curve.append([epoch, before + seconds, nll_summary(log_px)["nll"]])

    training = train(row, model, images, labels, settings.epochs, checkpoint)
    eval_start = time.perf_counter()
    classifier = None
    if row.impl == "keras_vae" and model.conditional and model.generative:
        classifier = reference_classifier(settings.synthetic)
    real = None
    if classifier is not None:  # the real test images, grey and binarised (as x_test)
        real = {"real": real_test_images(settings.synthetic)}
        real["binarized"] = (np.reshape(x_test, (len(x_test), 28, 28, 1)), y_test)
    scores = score(row, model, x_eval, y_eval, settings.num_samples, classifier, real)
    result = {
        "key": row.key,
        "label": row.label,
        "impl": row.impl,
        "model": row.model if not row.peer else row.impl,
        "backend": backend,
        "arch": row.arch,
        "options": dict(row.options),
        "epochs": settings.epochs,
        "train_examples_per_epoch": len(images) - len(images) % common.BATCH_SIZE,
        "data_source": source,
        "test_binarize_seed": test_binarize_seed(settings.synthetic),
        "eval_size": len(x_eval),
        "num_samples": settings.num_samples,
        "scored_from": "logits" if row.peer else "the model's own outputs (logits)",
        **training,
        **scores,
    }
    if row.full_test and settings.full_test and "nll" in scores:
        full = log_likelihood(row, model, x_test, y_test, settings.num_samples)
        result.update({f"full_test_{k}": v for k, v in nll_summary(full).items()})
        result["full_test_size"] = len(x_test)
    result["eval_seconds"] = time.perf_counter() - eval_start
    if row.curve:  # then trained on past the row's epochs, for the equal-time comparison
        curve.append([settings.epochs, training["train_seconds"], scores["nll"]])
        longest = max(settings.checkpoints, default=0)
        if longest > settings.epochs:
            done = training["train_seconds"]
            train(
                row, model, images, labels, longest,
                lambda epoch, seconds: checkpoint(epoch, seconds, done), settings.epochs,
            )  # fmt: skip
        result["nll_curve"] = sorted(curve)
    result["peak_rss_mb"] = common.peak_rss_mb()
    result["process_seconds"] = time.perf_counter() - started
    if "log_px" in result:  # per example, for paired comparisons of rows (0.01 nats)
        result["log_px"] = [round(float(v), 2) for v in result["log_px"]]
    return result


def worker(key: str, settings: Settings, out: str | None) -> int:
    import os

    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    (row,) = [row for row in ROWS if row.key == key]
    try:
        result = measure(row, settings, backend)
    except Skip as reason:
        result = {"key": key, "label": row.label, "skipped": str(reason)}
    except Exception as error:  # the report shows the row's error; the traceback goes to stderr
        traceback.print_exc()
        result = {"key": key, "label": row.label, "error": f"{type(error).__name__}: {error}"}
    common.dump(result, out)
    return 0


def run_row(row: Row, settings: Settings) -> dict:
    """``row`` in a fresh process on its backend (`common.run_module`).

    As `benchmarks.run` does, a row that starts on a busy machine (other processes using more
    than 0.3 cores) runs with ``OMP_WAIT_POLICY=PASSIVE``: spinning OpenMP threads (PyTorch)
    otherwise lose several times over when another process holds a core.
    """
    from benchmarks import run

    missing = sorted(name for name in row.frameworks() if importlib.util.find_spec(name) is None)
    if missing:
        return {"key": row.key, "label": row.label, "skipped": f"{', '.join(missing)} missing"}
    load = run.other_load(0.5)
    env = {"OMP_WAIT_POLICY": "PASSIVE"} if load > 0.3 else {}
    arguments = ["--worker", row.key, *settings.arguments()]
    try:
        result = common.run_module("benchmarks.quality", row.backend, arguments, env)
    except subprocess.CalledProcessError as error:
        return {"key": row.key, "label": row.label, "error": f"exit status {error.returncode}"}
    result.update(load_before=load, omp_wait_policy=env.get("OMP_WAIT_POLICY"))
    return result


def prepare_classifier(rows: list[Row], settings: Settings) -> dict | None:
    """Trains (or finds cached) the reference classifier before the rows that need it.

    In its own TensorFlow process where TensorFlow is installed: its convolutions train
    several times faster there than under JAX on a CPU, and the cached ``.keras`` file loads
    on every backend.
    """
    needs = [row for row in rows if row.impl == "keras_vae" and row.model == "cvae"]
    if not needs or settings.synthetic:
        return None
    backend = "tensorflow" if importlib.util.find_spec("tensorflow") else needs[0].backend
    start = time.perf_counter()
    try:
        result = common.run_module("benchmarks.quality", backend, ["--classifier"])
    except subprocess.CalledProcessError as error:
        return {"error": f"exit status {error.returncode}"}
    return {**result, "backend": backend, "seconds": time.perf_counter() - start}


# --------------------------------------------------------------------------------- the report
def _by_key(rows):
    return {r["key"]: r for r in rows if "nll" in r or "reconstruction_ce" in r}


def _paired(a: dict, b: dict):
    """Mean of b's NLL minus a's over the same test images, and its standard error."""
    if not a.get("log_px") or len(a["log_px"]) != len(b.get("log_px") or ()):
        return None, None
    difference = np.asarray(a["log_px"]) - np.asarray(b["log_px"])
    return float(difference.mean()), float(difference.std(ddof=1) / math.sqrt(len(difference)))


def targets(rows: list[dict]) -> list[dict]:
    """Each target of issues 13 and 15 that the rows can decide: met, not met, or not run."""
    found = _by_key(rows)
    ours = [r for r in found.values() if r["impl"] == "keras_vae" and r["model"] == "vae"]
    peers = [r for r in found.values() if r["impl"] != "keras_vae" and "nll" in r]
    out = []
    if ours and peers:
        best = min(ours, key=lambda r: r["nll"])
        best_peer = min(peers, key=lambda r: r["nll"])
        lines = []
        for peer in sorted(peers, key=lambda r: r["nll"]):
            gain, sem = _paired(best, peer)
            paired = f", paired difference {gain:.2f} ± {sem:.2f}" if gain is not None else ""
            lines.append(f"{peer['label']} {peer['nll']:.2f}{paired}")
        out.append(
            {
                "target": "keras_vae's best VAE has a lower test NLL than every peer at equal "
                "epochs",
                "met": best["nll"] < best_peer["nll"],
                "figures": f"{best['label']}: {best['nll']:.2f} nats after {best['epochs']} "
                f"epochs; peers: " + "; ".join(lines),
            }
        )
        out.append(equal_time(found, peers))
    conditioned = [r for r in found.values() if r.get("options", {}).get("condition_decoder")]
    prior_only = [
        r
        for r in found.values()
        if r["model"] == "cvae" and not r.get("options", {}).get("condition_decoder")
    ]
    for row in conditioned:
        if "conditional_accuracy" not in row:
            continue
        beside = "; ".join(
            f"{r['label']}: {100 * r['conditional_accuracy']:.1f} %"
            for r in prior_only
            if "conditional_accuracy" in r
        )
        out.append(
            {
                "target": "decoder-conditioned CVAE >= 90 % conditional accuracy",
                "met": row["conditional_accuracy"] >= 0.9,
                "figures": f"{row['label']}: {100 * row['conditional_accuracy']:.1f} %"
                + (f" (beside it, {beside})" if beside else "")
                + f"; classifier: {row.get('classifier')}",
            }
        )
    vae_mlp = found.get("vae/mlp")
    for row in found.values():
        if row["model"] != "iwae" or vae_mlp is None or "nll" not in row:
            continue
        gain, sem = _paired(row, vae_mlp)
        out.append(
            {
                "target": f"{row['label']} has a lower test NLL than the VAE of the same "
                "architecture and epochs",
                "met": row["nll"] < vae_mlp["nll"],
                "figures": f"{row['nll']:.2f} vs {vae_mlp['nll']:.2f} nats"
                + (f" (paired difference {gain:.2f} ± {sem:.2f})" if gain is not None else ""),
            }
        )
    return out


def equal_time(found: dict, peers: list[dict]) -> dict:
    """keras_vae's VAEs against each peer within the peer's own training time.

    The points of keras_vae's VAE rows: each row's final (epochs, training seconds, NLL) and
    the NLL curve of the rows that have one. For each peer, the best NLL keras_vae reached at
    a point no later than the peer's whole training run: a conservative comparison (a row
    faster than the peer is compared as it was, not trained on for the time it had left).
    """
    target = "... and at equal training time"
    ours = [r for r in found.values() if r["impl"] == "keras_vae" and r["model"] == "vae"]
    points = []  # (seconds, nll, epochs, label)
    for row in ours:
        curve = row.get("nll_curve") or [[row["epochs"], row["train_seconds"], row["nll"]]]
        points += [(seconds, nll, epoch, row["label"]) for epoch, seconds, nll in curve]
    if not points:
        return {"target": target, "met": None, "figures": "no keras_vae VAE row ran"}
    verdicts, lines = [], []
    for peer in sorted(peers, key=lambda r: r["train_seconds"]):
        within = [p for p in points if p[0] <= peer["train_seconds"]]
        if not within:
            first = min(points)
            verdicts.append(False)
            lines.append(
                f"{peer['label']} {peer['nll']:.2f} after {peer['train_seconds']:.0f} s; "
                f"keras_vae's first scored point came later ({first[3]}, {first[0]:.0f} s)"
            )
            continue
        seconds, nll, epoch, label = min(within, key=lambda p: p[1])
        verdicts.append(nll < peer["nll"])
        lines.append(
            f"{peer['label']} {peer['nll']:.2f} after {peer['train_seconds']:.0f} s; keras_vae "
            f"{nll:.2f} ({label}, {epoch} epochs, {seconds:.0f} s)"
        )
    return {"target": target, "met": all(verdicts), "figures": "; ".join(lines)}


def _load(row):
    if row.get("load_before") is None:
        return ""
    return f"{row['load_before']:.1f}" + (" P" if row.get("omp_wait_policy") else "")


def _classifier_note(report):
    prepared = report.get("classifier_preparation") or {}
    if "seconds" not in prepared:
        return ""
    how = "trained" if prepared.get("trained") else "loaded from its cache"
    return f" ({prepared['seconds']:.0f} s of it: the reference classifier, {how})"


def _fmt(value, spec="", suffix=""):
    return "" if value is None else format(value, spec) + suffix


def markdown(report: dict) -> str:
    settings = report["settings"]
    rows = report["rows"]
    device = report["device"]
    lines = [
        f"# keras_vae quality report ({report['mode']})",
        "",
        f"- Date: {report['date']}; {device['cpu']}, {device['cores']} cores; "
        f"{report.get('versions', '')}",
        f"- Data: {report.get('data_source')}; dynamically binarised training images (a fresh "
        f"permutation and fresh Bernoulli draws each epoch from numpy seed ({DATA_SEED}, epoch),"
        f" the same for every row), {settings['epochs']} epochs of "
        f"{_fmt(report.get('train_examples_per_epoch'), ',')} examples in batches of "
        f"{common.BATCH_SIZE}; Adam(1e-3) everywhere.",
        f"- Scored on the first {settings['eval_size']:,} test images binarised once (numpy "
        f"seed {report.get('test_binarize_seed')}, `keras_vae.evaluation.TEST_BINARIZE_SEED`), the same for every row: test NLL = -mean log p(x) "
        f"by the importance-weighted estimate with K={settings['num_samples']:,} (numpy seed "
        f"{EVAL_NOISE_SEED}), ± its standard error over the images; -ELBO with "
        f"{ELBO_SAMPLES} samples of the reconstruction term and the closed-form KL; active "
        f"units: Var_x E[z_u | x] > {ACTIVE_UNIT_THRESHOLD}. keras_vae rows through the "
        "models' own `log_likelihood` / `elbo` / `active_units`, the peers through "
        "`keras_vae.likelihood` on encode/decode adapters that return the decoder's "
        "pre-sigmoid logits (their training is unchanged).",
        f"- Wall time {report['wall_seconds'] / 60:.1f} min{_classifier_note(report)}"
        + (
            f" (rows rerun with --update: {', '.join(report['updated_rows'])})"
            if report.get("updated_rows")
            else ""
        )
        + "; load: "
        "cores used by other processes just before each row (P: run with "
        "OMP_WAIT_POLICY=PASSIVE).",
        "",
        "| row | backend | epochs | train s | test NLL | -ELBO | active units | cond. acc. | "
        "recon. CE | PSNR dB | full test NLL | peak RSS MB | load |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        if "skipped" in row or "error" in row:
            why = row.get("skipped") or row.get("error")
            word = "skipped" if "skipped" in row else "error"
            lines.append(f"| {row['label']} | {word}: {why[:160]} ||||||||||||")
            continue
        nll = _fmt(row.get("nll"), ".2f")
        if nll and row.get("nll_sem") is not None:
            nll += f" ± {row['nll_sem']:.2f}"
        if nll and row["model"] == "cvae":
            nll += " (log p(x\\|y))"
        units = f"{row['active_units']} / {row['latent_dim']}" if "active_units" in row else ""
        accuracy = row.get("conditional_accuracy")
        full = _fmt(row.get("full_test_nll"), ".2f")
        if full:
            full += f" ± {row['full_test_nll_sem']:.2f}"
        lines.append(
            f"| {row['label']} | {row['backend']} | {row['epochs']} | "
            f"{row['train_seconds']:.0f} | {nll} | {_fmt(row.get('neg_elbo'), '.2f')} | {units} | "
            f"{_fmt(None if accuracy is None else 100 * accuracy, '.1f', ' %')} | "
            f"{_fmt(row.get('reconstruction_ce'), '.2f')} | {_fmt(row.get('psnr'), '.2f')} | "
            f"{full} | {row['peak_rss_mb']:,.0f} | {_load(row)} |"
        )
    lines += ["", "## Targets", ""]
    for target in report["targets"]:
        verdict = {True: "**met**", False: "**not met**", None: "not decided"}[target["met"]]
        lines.append(f"- {target['target']}: {verdict}. {target['figures']}.")
    if not report["targets"]:
        lines.append("- (none of the rows a target needs ran)")
    extra = [row for row in rows if row.get("conditional_accuracy_per_class")]
    if extra:
        lines += ["", "## Conditional accuracy per class", ""]
        for row in extra:
            per_class = ", ".join(
                f"{c}: {100 * a:.0f}" for c, a in enumerate(row["conditional_accuracy_per_class"])
            )
            lines.append(f"- {row['label']}: {per_class} (%)")
        for key, what in (("real", "real"), ("binarized", "binarised real")):
            field = f"classifier_{key}_accuracy_per_class"
            real = next((r for r in extra if r.get(field)), None)
            if real:
                per_class = ", ".join(f"{c}: {100 * a:.0f}" for c, a in enumerate(real[field]))
                lines.append(f"- the classifier itself on the {what} test images: {per_class} (%)")
        lines.append(f"- classifier: {extra[0]['classifier']}")
    curves = [row for row in rows if row.get("nll_curve")]
    if curves:
        lines += ["", "## NLL by training time (the equal-time comparison)", ""]
        for row in curves:
            points = ", ".join(f"{e} ({t:.0f} s): {nll:.2f}" for e, t, nll in row["nll_curve"])
            lines.append(f"- {row['label']}, epochs (training seconds): NLL: {points}")
    codes = [row for row in rows if "code_std_mean" in row]
    if codes:
        lines += ["", "## Codes against the prior N(0, 1)", ""]
        for row in codes:
            lines.append(
                f"- {row['label']}: max |mean| {row['code_mean_abs_max']:.3f}, std from "
                f"{row['code_std_min']:.3f} to {row['code_std_max']:.3f} "
                f"(mean {row['code_std_mean']:.3f})"
            )
    lines += [
        "",
        "train s: wall seconds in the training loop (compilation included; drawing the epochs' "
        "data not); cond. acc.: share of `generate(labels)` images (100 per class) that the "
        "classifier assigns to their label; recon. CE / PSNR: models without a likelihood, "
        "Bernoulli cross-entropy (nats per image) and PSNR of the reconstruction; a CVAE's NLL "
        "is -log p(x | y), given the true label, not comparable with the unconditional rows.",
    ]
    return "\n".join(lines) + "\n"


def write_report(
    name: str,
    mode: str,
    settings: Settings,
    rows: list[dict],
    started,
    folder=None,
    classifier=None,
    updated=None,
) -> str:
    """Writes ``folder/<name>.md`` and ``.json`` (default `RESULTS`); returns the Markdown."""
    good = [r for r in rows if "nll" in r or "reconstruction_ce" in r]
    versions = {}
    for package in ("keras", "tensorflow", "jax", "torch", "numpy"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            pass
    report = {
        "mode": mode,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "device": {"cpu": common.cpu_model(), "cores": common.cpu_count()},
        "versions": ", ".join(f"{k} {v}" for k, v in versions.items()),
        "settings": dataclasses.asdict(settings),
        "data_source": good[0]["data_source"] if good else None,
        "train_examples_per_epoch": good[0]["train_examples_per_epoch"] if good else None,
        "test_binarize_seed": good[0].get("test_binarize_seed") if good else None,
        "rows": rows,
        "targets": targets(rows),
        "classifier_preparation": classifier,
        "wall_seconds": time.perf_counter() - started,
    }
    if updated:  # --update: the wall time is the rerun's
        report["updated_rows"] = updated
    folder = Path(folder or RESULTS)
    folder.mkdir(parents=True, exist_ok=True)
    text = markdown(report)
    (folder / f"{name}.md").write_text(text)
    (folder / f"{name}.json").write_text(json.dumps(report, indent=1, sort_keys=True))
    return text


# ------------------------------------------------------------------------------------- main
def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny settings (seconds per row)")
    parser.add_argument("--rows", default=None, help="regex on the row keys, e.g. 'vae/|peer'")
    parser.add_argument("--name", default=None, help="results/<name>.{md,json}")
    parser.add_argument("--results", default=None, help="folder of the report (default: results/)")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--train-size", type=int, default=None, help="0: all 60,000")
    parser.add_argument("--eval-size", type=int, default=None)
    parser.add_argument("--num-samples", type=int, default=None, help="K of the NLL estimate")
    parser.add_argument("--checkpoints", default=None, help="epochs, e.g. 1,2,5, or none")
    parser.add_argument("--no-full-test", action="store_true")
    parser.add_argument("--synthetic", action="store_true", help="random data, not Fashion-MNIST")
    parser.add_argument("--list", action="store_true", help="print the rows and exit")
    parser.add_argument(
        "--update",
        action="store_true",
        help="rerun the --rows rows into the existing report (same settings), keeping the others",
    )
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--classifier", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def settings_from(args) -> Settings:
    base = QUICK if args.quick else Settings()
    changes = {}
    for name in ("epochs", "eval_size", "num_samples"):
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    if args.train_size is not None:
        changes["train_size"] = args.train_size or None
    if args.checkpoints is not None:
        text = args.checkpoints
        changes["checkpoints"] = () if text == "none" else tuple(int(e) for e in text.split(","))
    if args.no_full_test:
        changes["full_test"] = False
    if args.synthetic:
        changes["synthetic"] = True
    return dataclasses.replace(base, **changes)


def previous_rows(path: Path, settings: Settings) -> list[dict]:
    """The rows of an existing report, for ``--update``; refused if its settings differ (but
    for the checkpoints)."""
    report = json.loads(path.read_text())
    wanted = json.loads(json.dumps(dataclasses.asdict(settings)))
    same = ("checkpoints",)  # only the curve rows' extra points depend on them
    if {k: v for k, v in report["settings"].items() if k not in same} != {
        k: v for k, v in wanted.items() if k not in same
    }:
        raise SystemExit(f"--update: {path} was made with other settings: {report['settings']}")
    return report["rows"]


def merged(kept: list[dict], new: list[dict]) -> list[dict]:
    """``kept`` with the rows of ``new`` replacing those of the same key, in `ROWS` order."""
    by_key = {row["key"]: row for row in kept} | {row["key"]: row for row in new}
    order = {row.key: index for index, row in enumerate(ROWS)}
    return sorted(by_key.values(), key=lambda row: order.get(row["key"], len(order)))


def main(argv=None) -> int:
    args = parse_args(argv)
    settings = settings_from(args)
    if args.worker:
        return worker(args.worker, settings, args.out)
    if args.classifier:
        classifier = reference_classifier(False)
        found = {"test_accuracy": classifier.test_accuracy, "trained": classifier.trained}
        common.dump({**found, "path": str(classifier.path)}, args.out)
        return 0
    rows = select(args.rows)
    if args.list:
        for row in rows:
            print(f"{row.key:24} {row.backend:11} {row.label}")
        return 0
    name = args.name or ("quality_quick" if args.quick else "quality")
    folder = Path(args.results) if args.results else RESULTS
    started = time.perf_counter()
    mode = "quick" if args.quick else "full"
    classifier = prepare_classifier(rows, settings)
    if classifier is not None:
        print(f"reference classifier: {classifier}", flush=True)
    kept = previous_rows(folder / f"{name}.json", settings) if args.update else []
    updated = [row.key for row in rows] if args.update else None
    results = []
    for row in rows:
        row_start = time.perf_counter()
        result = run_row(row, settings)
        results.append(result)
        results = merged(kept, results)
        write_report(name, mode, settings, results, started, folder, classifier, updated)
        status = result.get("skipped") or result.get("error") or f"NLL {result.get('nll', '-')}"
        print(f"{row.key}: {status} ({time.perf_counter() - row_start:.0f} s)", flush=True)
    print(write_report(name, mode, settings, results, started, folder, classifier, updated))
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
