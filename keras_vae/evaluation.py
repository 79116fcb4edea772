"""How good is a model: test likelihood, latent use, reconstructions, and obedience to labels.

`evaluate_model` asks a model what it can do and measures accordingly:

- ``has_likelihood`` (VAE, CVAE, IWAE) on binary data: the test negative ELBO and the
  importance-weighted NLL (Burda et al. 2015, ``K = num_samples``), both in nats per image,
  the number of active latent units and the KL per latent dimension;
- every model: its own losses (``model.evaluate``), the pixel MSE and the mean per-image PSNR;
  a ``denoising`` model also the PSNR of its reconstructions of noisy inputs;
- ``conditional`` and ``generative`` (CVAE): the conditional accuracy of ``generate(labels)``
  under a reference classifier, overall and per class (`conditional_accuracy`).

Units: "nats" only for likelihoods, i.e. the ELBO and the NLL of binary data. A Bernoulli
cross-entropy on grey levels, or an MSE, is a loss in the model's own units; the keys of
`evaluate_model` say which is which (``nll_nats``, ``negative_elbo_nats``; ``loss``,
``pixel_mse``).

Held-out data are binarised once, with the fixed seed `TEST_BINARIZE_SEED` (`load_test_arrays`),
so every model and every run is scored on the same binary test images.

The reference classifier (`reference_classifier`) is a small convnet trained on the real
training split of the dataset: on its grey-level images (a CVAE outputs pixel probabilities)
and, each epoch, on a fresh quarter of them dynamically binarised (the binary images the
models are trained on), so that it judges both kinds of image; it is cached in a folder (a
run's parent folder: all runs of a dataset share it). On Fashion-MNIST it reaches about 91 %
on the grey-level test images and 86 % on the binarised ones after 6 epochs.

Example:

>>> import numpy as np
>>> from keras_vae import VAE, architectures, evaluation
>>> vae = VAE(*architectures.mlp((16,), latent_dim=2, hidden_units=(8,)))
>>> vae.compile(optimizer="adam")
>>> x = (np.random.default_rng(0).random((32, 16)) > 0.5).astype("float32")
>>> metrics = evaluation.evaluate_model(vae, x, num_samples=10, seed=0)
>>> bool(metrics["nll_nats"] <= metrics["negative_elbo_nats"]), metrics["active_units"] <= 2
(True, True)
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np

from keras_vae import data
from keras_vae._config_checks import check_float, check_int
from keras_vae.models import _inputs
from keras_vae.models._inputs import InvalidInputError

__all__ = [
    "CLASSIFIER_BINARIZED_FRACTION",
    "CLASSIFIER_EPOCHS",
    "NoDensityError",
    "TEST_BINARIZE_SEED",
    "ReferenceClassifier",
    "conditional_accuracy",
    "denoising_psnr",
    "evaluate_model",
    "likelihood_metrics",
    "load_test_arrays",
    "psnr",
    "reconstruction_metrics",
    "reference_classifier",
    "train_classifier",
]

# The one draw of dynamically binarised held-out data (Burda et al.'s protocol): every run and
# every benchmark row is scored on the same binary test images.
TEST_BINARIZE_SEED = 2015
# The reference classifier: 6 epochs of a 2-conv net, a quarter of the images binarised afresh
# each epoch, reach ~91 % on Fashion-MNIST's grey test images and ~86 % on binarised ones.
CLASSIFIER_EPOCHS = 6
CLASSIFIER_BINARIZED_FRACTION = 0.25
CLASSIFIER_SPLIT = "train"
# Bump when the classifier's architecture or training changes. 2: binarised training images.
_CLASSIFIER_FORMAT = 2
MAX_CLASSES = 100_000  # the classifier's last layer: refused beyond, not allocated
_MAX_PSNR_DB = 100.0  # a perfect reconstruction: MSE floored at 1e-10


Report = Callable[[str], None]


class NoDensityError(InvalidInputError):
    """Data that a model's likelihood is no density of (grey levels under a Bernoulli one)."""


# ------------------------------------------------------------------------------ the data


def load_test_arrays(
    dataset: str = "fashion_mnist",
    split: str = "test",
    *,
    binarize: str | None = "dynamic",
    data_dir: str | os.PathLike | None = None,
    idx_dir: str | os.PathLike | None = None,
    download: bool = True,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Held-out images as a model is scored on them: ``(x, labels)`` numpy arrays.

    ``binarize="dynamic"``: one Bernoulli draw per pixel with the fixed `TEST_BINARIZE_SEED`
    (the test set of a model trained on fresh draws each epoch); ``"static"``: pixels above
    0.5 set to 1; ``None`` or ``"none"``: grey levels in [0, 1]. The other arguments as in
    `keras_vae.data.load_numpy`.
    """
    mode = None if binarize in (None, "none") else binarize
    return data.load_numpy(
        dataset,
        split,
        binarize=mode,
        seed=TEST_BINARIZE_SEED,
        data_dir=data_dir,
        idx_dir=idx_dir,
        download=download,
    )


# ------------------------------------------------------------------------ reconstructions


def psnr(x, reconstruction) -> np.ndarray:
    """Per-image peak signal-to-noise ratio in dB of ``reconstruction`` against ``x``.

    ``10 * log10(1 / mse_i)`` with ``mse_i`` the mean squared error of image ``i`` (peak 1:
    data in [0, 1]), floored so that a perfect reconstruction gives 100 dB. Report the mean.

    >>> x = np.zeros((2, 4))
    >>> psnr(x, x + np.array([[0.1], [0.01]])).round(6).tolist()
    [20.0, 40.0]
    """
    x = _inputs.as_numpy(x, "x")
    reconstruction = _inputs.as_numpy(reconstruction, "reconstruction")
    for name, array in (("x", x), ("reconstruction", reconstruction)):
        _inputs.check_numeric(array, name)
        _inputs.check_not_empty(array, name)
        _inputs.check_finite_range(array, name)
    if x.shape != reconstruction.shape:
        raise InvalidInputError(
            f"`reconstruction` must have the shape of `x` {x.shape}; received shape "
            f"{reconstruction.shape}."
        )
    low, high = float(x.min()), float(x.max())
    if low < 0 or high > 1:
        raise InvalidInputError(
            f"`x` must hold values in [0, 1] for a PSNR with peak 1; received values from {low} "
            f"to {high}."
        )
    error = x.astype("float64") - reconstruction.astype("float64")
    mse = np.mean(np.square(error).reshape(len(x), -1), axis=1)
    return 10.0 * np.log10(1.0 / np.maximum(mse, 10.0 ** (-_MAX_PSNR_DB / 10.0)))


def denoising_psnr(model, x, labels=None, *, seed: int | None = 0, batch_size=None) -> np.ndarray:
    """Per-image PSNR (dB) of a denoising model's reconstructions of noisy ``x`` against ``x``.

    The noise is the model's training noise, ``model.corrupt(x, seed=seed)``; ``labels`` for a
    conditional model.
    """
    if not model.denoising:
        raise ValueError(
            f"denoising_psnr needs a denoising model (model.denoising); received a "
            f"{type(model).__name__}."
        )
    noisy = model.corrupt(x, seed=seed, batch_size=batch_size)
    return psnr(x, _reconstruct(model, noisy, labels, batch_size))


def _with_labels(model, labels) -> tuple:
    return (labels,) if model.conditional else ()


def _reconstruct(model, x, labels, batch_size):
    return model.reconstruct(x, *_with_labels(model, labels), batch_size=batch_size)


def reconstruction_metrics(
    model, x, labels=None, *, batch_size=None, seed: int | None = 0
) -> dict[str, Any]:
    """``model.evaluate``'s losses, the pixel MSE and mean PSNR of the reconstructions of ``x``.

    The losses are the model's own (what it trains on): a likelihood only where the model has
    one and ``x`` is binary. A denoising model adds ``noisy_psnr_db`` (its noisy inputs) and
    ``denoised_psnr_db`` (its reconstructions of them), with noise drawn from ``seed``.
    """
    results = model.evaluate(
        x,
        *_with_labels(model, labels),
        batch_size=batch_size or 512,
        verbose=0,
        return_dict=True,
    )
    metrics: dict[str, Any] = {name: float(value) for name, value in results.items()}
    reconstructions = _reconstruct(model, x, labels, batch_size)
    metrics["pixel_mse"] = float(np.mean(np.square(reconstructions - x)))
    metrics["psnr_db"] = float(np.mean(psnr(x, reconstructions)))
    if model.denoising:  # how well it removes its own training noise
        noisy = model.corrupt(x, seed=seed, batch_size=batch_size)
        metrics["noisy_psnr_db"] = float(np.mean(psnr(x, noisy)))
        denoised = _reconstruct(model, noisy, labels, batch_size)
        metrics["denoised_psnr_db"] = float(np.mean(psnr(x, denoised)))
    return metrics


# ---------------------------------------------------------------------------- likelihoods


def likelihood_metrics(
    model,
    x,
    labels=None,
    *,
    num_samples: int = 1000,
    elbo_samples: int = 1,
    batch_size=None,
    seed: int | None = 0,
    active_units_threshold: float = 0.01,
) -> dict[str, Any]:
    """Test -ELBO and importance-weighted NLL (nats per image), active units, KL per dimension.

    For a model with ``has_likelihood``; ``labels`` for a conditional one (the NLL is then
    ``-log p(x | y)``). Raises `NoDensityError` where the model's likelihood is no density of
    ``x`` (a Bernoulli likelihood and grey levels), before any estimate runs.
    """
    if not model.has_likelihood:
        raise ValueError(
            f"likelihood_metrics needs a model with a likelihood (model.has_likelihood); "
            f"received a {type(model).__name__}."
        )
    given = {"labels": labels} if model.conditional else {}
    try:  # the first estimate checks the data against the likelihood, before any work
        elbo = model.elbo(x, **given, num_samples=elbo_samples, batch_size=batch_size, seed=seed)
    except InvalidInputError as error:
        raise NoDensityError(" ".join(str(error).split())) from error
    log_px = model.log_likelihood(
        x, **given, num_samples=num_samples, batch_size=batch_size, seed=seed
    )
    kl = model.kl_per_dimension(x, **given, batch_size=batch_size)
    active = model.active_units(x, **given, threshold=active_units_threshold, batch_size=batch_size)
    standard_error = float(np.std(log_px) / math.sqrt(len(log_px)))
    return {
        "negative_elbo_nats": float(-np.mean(elbo)),
        "elbo_num_samples": int(elbo_samples),
        "nll_nats": float(-np.mean(log_px)),
        "nll_standard_error_nats": standard_error,
        "nll_num_samples": int(num_samples),
        "active_units": int(active),
        "active_units_threshold": float(active_units_threshold),
        "latent_dim": int(len(kl)),
        "kl_per_dimension_nats": [float(value) for value in kl],
    }


# -------------------------------------------------------------------- conditional accuracy


def conditional_accuracy(
    model,
    classifier,
    num_per_class: int = 100,
    *,
    seed: int | None = 0,
    batch_size=None,
) -> dict[str, Any]:
    """How often ``classifier`` assigns ``model.generate(labels)`` the label it was asked for.

    Args:
        model: a ``conditional`` and ``generative`` model (a CVAE) with ``num_classes``.
        classifier: a `ReferenceClassifier` or a Keras classifier whose ``predict`` gives
            class scores for images of the model's data shape.
        num_per_class: samples generated per class.
        seed: seed of the prior draws.
        batch_size: batch size of generation and classification.

    Returns:
        ``{"accuracy": overall, "per_class": [one per class], "num_per_class": n}``.
    """
    if not (model.conditional and model.generative):
        raise ValueError(
            "conditional_accuracy needs a conditional generative model (model.conditional and "
            f"model.generative); received a {type(model).__name__}."
        )
    num_per_class = _positive_int(num_per_class, "num_per_class")
    labels = np.repeat(np.arange(model.num_classes), num_per_class).astype("int32")
    images = model.generate(labels, seed=seed, batch_size=batch_size)
    expected = tuple(getattr(classifier, "input_shape", (None, *images.shape[1:]))[1:])
    if tuple(images.shape[1:]) != expected:
        raise ValueError(
            f"the classifier takes images of shape {expected}; the model generates "
            f"{tuple(images.shape[1:])}."
        )
    scores = np.asarray(classifier.predict(images, batch_size=batch_size or 512, verbose=0))
    if scores.shape != (len(labels), scores.shape[-1]) or scores.shape[-1] < model.num_classes:
        raise ValueError(
            f"the classifier must give one score per class ({model.num_classes}) for each "
            f"image; it gave shape {scores.shape}."
        )
    correct = np.argmax(scores, axis=-1) == labels
    per_class = correct.reshape(model.num_classes, num_per_class).mean(axis=1)
    return {
        "accuracy": float(correct.mean()),
        "per_class": [float(value) for value in per_class],
        "num_per_class": num_per_class,
    }


def _positive_int(value, name: str) -> int:
    integral = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if not integral or value < 1:
        raise ValueError(f"`{name}` must be a positive integer; received {value!r}.")
    return int(value)


# --------------------------------------------------------------------- everything at once


def evaluate_model(
    model,
    x,
    labels=None,
    *,
    num_samples: int = 1000,
    elbo_samples: int = 1,
    batch_size=None,
    seed: int | None = 0,
    classifier=None,
    num_per_class: int = 100,
    active_units_threshold: float = 0.01,
) -> dict[str, Any]:
    """Every measure that applies to ``model`` on the test data ``x``, as a JSON-able dict.

    Asks the model what it can do: every model gets `reconstruction_metrics`; a model with
    ``has_likelihood`` the `likelihood_metrics` (``K = num_samples`` importance samples,
    ``labels`` passed on for a conditional model), or, where its likelihood refuses ``x``
    (grey levels under a Bernoulli likelihood), a note under ``"likelihood_not_reported"``
    saying why; a ``conditional`` generative model given a ``classifier`` the
    `conditional_accuracy` of its samples (``conditional_accuracy``,
    ``conditional_accuracy_per_class``).

    Args:
        model: a trained (compiled) keras_vae model.
        x: test images, numpy ``(n, *data_shape)``.
        labels: the test labels, for a conditional model.
        num_samples: importance samples per image for the NLL.
        elbo_samples: samples of ``z`` per image for the ELBO's reconstruction term.
        batch_size: batch size of the estimators (`None`: theirs).
        seed: seed of every random draw here (importance samples, noise, prior draws).
        classifier: a `ReferenceClassifier` (or a Keras classifier), for a conditional model.
        num_per_class: samples per class for the conditional accuracy.
        active_units_threshold: ``Var_x(E_q[z_u | x])`` above which a unit is active.

    Returns:
        Metrics by name: ``*_nats`` are nats per image, ``*_db`` decibels; ``num_examples``.
    """
    x = _inputs.as_numpy(x, "x")
    if model.conditional and labels is None:
        raise InvalidInputError(
            f"this {type(model).__name__} is conditional: pass the test labels (labels=); "
            "received none."
        )
    metrics: dict[str, Any] = {"num_examples": int(len(x))}
    metrics.update(reconstruction_metrics(model, x, labels, batch_size=batch_size, seed=seed))
    if model.has_likelihood:
        try:
            metrics.update(
                likelihood_metrics(
                    model,
                    x,
                    labels,
                    num_samples=num_samples,
                    elbo_samples=elbo_samples,
                    batch_size=batch_size,
                    seed=seed,
                    active_units_threshold=active_units_threshold,
                )
            )
            if model.conditional:
                metrics["nll_given_labels"] = True  # -log p(x | y), the class prior's
        except NoDensityError as error:  # raised before any estimate: nothing half done
            metrics["likelihood_not_reported"] = (
                f"the model's likelihood is no density of these data, so no NLL or negative "
                f"ELBO in nats: {error}"
            )
    if model.conditional and model.generative:
        if classifier is None:
            metrics["conditional_accuracy_not_reported"] = "no classifier was given"
        else:
            scored = conditional_accuracy(
                model, classifier, num_per_class, seed=seed, batch_size=batch_size
            )
            metrics["conditional_accuracy"] = scored["accuracy"]
            metrics["conditional_accuracy_per_class"] = scored["per_class"]
            metrics["conditional_samples_per_class"] = scored["num_per_class"]
            accuracy = getattr(classifier, "test_accuracy", None)
            if accuracy is not None:
                metrics["classifier_test_accuracy"] = float(accuracy)
            binary = getattr(classifier, "binarized_test_accuracy", None)
            if binary is not None:
                metrics["classifier_binarized_test_accuracy"] = float(binary)
    return metrics


# ------------------------------------------------------------------- reference classifier


@dataclasses.dataclass
class ReferenceClassifier:
    """A trained classifier of a dataset's images and what is known about it.

    Attributes:
        model: the Keras classifier, ``images (n, *image_shape) -> class probabilities``.
        test_accuracy: its accuracy on the dataset's grey-level test split (`None` if not
            measured).
        path: the cached ``.keras`` file, or `None`.
        trained: whether this call trained it (else it was loaded from ``path``).
        train_seconds: how long its training took.
        binarized_test_accuracy: its accuracy on the test split binarised as models are
            scored (`load_test_arrays`, `TEST_BINARIZE_SEED`), or `None`.
    """

    model: keras.Model
    test_accuracy: float | None = None
    path: Path | None = None
    trained: bool = False
    train_seconds: float | None = None
    binarized_test_accuracy: float | None = None

    @property
    def input_shape(self) -> tuple:
        return tuple(self.model.input_shape)

    def predict(self, images, batch_size=None, verbose=0) -> np.ndarray:
        """Class probabilities of numpy ``images``, ``(n, num_classes)``."""
        return self.model.predict(images, batch_size=batch_size or 512, verbose=verbose)


def _build_classifier(image_shape: tuple, num_classes: int, seed: int) -> keras.Model:
    """Conv(32)-pool-conv(64)-pool-dense(128)-softmax, the Keras MNIST convnet plus a dense."""
    layers = keras.layers

    def init(offset):
        return keras.initializers.GlorotUniform(seed=seed + offset)

    inputs = keras.Input(image_shape, name="images")
    h = layers.Conv2D(32, 3, padding="same", activation="relu", kernel_initializer=init(0))(inputs)
    h = layers.MaxPooling2D()(h)
    h = layers.Conv2D(64, 3, padding="same", activation="relu", kernel_initializer=init(1))(h)
    h = layers.MaxPooling2D()(h)
    h = layers.Flatten()(h)
    h = layers.Dropout(0.3, seed=seed)(h)
    h = layers.Dense(128, activation="relu", kernel_initializer=init(2))(h)
    outputs = layers.Dense(num_classes, activation="softmax", kernel_initializer=init(3))(h)
    return keras.Model(inputs, outputs, name="reference_classifier")


def train_classifier(
    x,
    labels,
    *,
    num_classes: int | None = None,
    epochs: int = CLASSIFIER_EPOCHS,
    batch_size: int = 128,
    learning_rate: float = 2e-3,
    seed: int = 0,
    binarized_fraction: float = 0.0,
) -> keras.Model:
    """Trains the reference convnet on grey-level images ``x`` ``(n, H, W, C)`` in [0, 1].

    Adam with a cosine-decaying learning rate; the examples are shuffled each epoch by a numpy
    generator seeded with ``seed``, and the weights are seeded too. With
    ``binarized_fraction`` > 0, that share of the examples, chosen afresh each epoch, is
    replaced by a Bernoulli draw of its pixels (dynamic binarisation, from the same
    generator): the classifier learns the binary images a Bernoulli model is trained on as
    well as the grey levels.

    Returns:
        The compiled Keras classifier, ``images -> class probabilities``.
    """
    x = _inputs.as_numpy(x, "x")
    _inputs.check_numeric(x, "x")
    x = x.astype("float32", copy=False)
    labels = _inputs.as_numpy(labels, "labels")
    _inputs.check_numeric(labels, "labels")
    labels = labels.reshape(-1)
    if x.ndim != 4 or len(labels) != len(x):
        raise InvalidInputError(
            f"train_classifier needs images (n, H, W, C) and one label each; received x of "
            f"shape {x.shape} and labels of shape {labels.shape}."
        )
    _inputs.check_not_empty(x, "x")
    _inputs.check_finite_range(x, "x", unit_interval=True, what="the reference classifier")
    if num_classes is not None:
        num_classes = check_int("num_classes", num_classes, 1, MAX_CLASSES)
    labels = _inputs.check_class_indices(labels, "labels", num_classes)
    if num_classes is None:
        num_classes = int(labels.max()) + 1
        if num_classes > MAX_CLASSES:
            raise InvalidInputError(
                f"`labels` go up to {num_classes - 1}; the classifier has at most "
                f"{MAX_CLASSES} classes (class indices from 0)."
            )
    epochs = _positive_int(epochs, "epochs")
    binarized_fraction = check_float("binarized_fraction", binarized_fraction, 0.0, 1.0)
    model = _build_classifier(tuple(x.shape[1:]), num_classes, seed)
    steps = epochs * math.ceil(len(x) / batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, steps)
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    rng = np.random.default_rng(seed)
    for _ in range(epochs):  # a fresh order per epoch from our own generator: reproducible
        order = rng.permutation(len(x))
        images = x[order]
        if binarized_fraction:
            chosen = rng.random(len(images)) < binarized_fraction
            draws = (rng.random(images.shape, dtype=np.float32) < images).astype("float32")
            images = np.where(chosen.reshape(-1, *[1] * (images.ndim - 1)), draws, images)
        model.fit(images, labels[order], batch_size=batch_size, epochs=1, verbose=0)
    return model


def _classifier_key(dataset: str, image_shape: tuple) -> str:
    shape = "x".join(str(int(size)) for size in image_shape)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in dataset)
    return f"{safe}-{shape}"


def _load_cached(path: Path, meta_path: Path, wanted: dict[str, Any], say: Report):
    """The cached classifier if it is readable and was trained as ``wanted``, else `None`."""
    if not path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        model = keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as error:  # a corrupt or foreign file: train afresh rather than trust it
        say(f"reference classifier: {path} is unreadable ({type(error).__name__}); retraining")
        return None
    shape_ok = tuple(model.input_shape[1:]) == tuple(wanted["image_shape"])
    classes_ok = tuple(model.output_shape) == (None, wanted["num_classes"])
    settings_ok = all(meta.get(key) == value for key, value in wanted.items())
    if not (shape_ok and classes_ok and settings_ok):
        say(f"reference classifier: {path} was trained otherwise; retraining")
        return None
    return ReferenceClassifier(
        model,
        meta.get("test_accuracy"),
        path,
        False,
        meta.get("train_seconds"),
        meta.get("binarized_test_accuracy"),
    )


def reference_classifier(
    dataset: str = "fashion_mnist",
    cache_dir: str | os.PathLike | None = None,
    *,
    train_split: str | None = None,
    epochs: int | None = None,
    seed: int = 0,
    binarized_fraction: float | None = None,
    data_dir: str | os.PathLike | None = None,
    idx_dir: str | os.PathLike | None = None,
    download: bool = True,
    report: Report | None = None,
) -> ReferenceClassifier:
    """The reference classifier of ``dataset``: loaded from ``cache_dir``, or trained there.

    Trained on the images of ``train_split`` (default `CLASSIFIER_SPLIT`, the whole training
    split) for ``epochs`` (default `CLASSIFIER_EPOCHS`), grey levels with a share
    ``binarized_fraction`` (default `CLASSIFIER_BINARIZED_FRACTION`) dynamically binarised
    afresh each epoch (`train_classifier`); scored on the grey-level test split
    (``test_accuracy``) and on the test split binarised as the models are scored
    (``binarized_test_accuracy``, `load_test_arrays`); and saved as
    ``cache_dir/<dataset>-<H>x<W>x<C>.keras`` beside a ``.json`` of how it was trained and its
    accuracies. A later call with the same settings loads it (``safe_mode=True``); a file that
    does not load, or was trained otherwise (another split, epochs, binarised share, image
    shape, number of classes or format: a classifier cached by an older keras_vae), is
    retrained and replaced.

    Args:
        dataset: a labelled dataset name (see `keras_vae.data`).
        cache_dir: where the classifier is cached; `None`: train without caching.
        train_split, epochs, seed, binarized_fraction: how to train it.
        data_dir, idx_dir, download: where the data are (as in `keras_vae.data.load_numpy`).
        report: called with a line when the classifier is trained or retrained.

    Returns:
        A `ReferenceClassifier`, with its ``test_accuracy`` and ``binarized_test_accuracy``.
    """
    say = report or (lambda message: None)
    train_split = CLASSIFIER_SPLIT if train_split is None else train_split
    epochs = CLASSIFIER_EPOCHS if epochs is None else epochs
    if binarized_fraction is None:
        binarized_fraction = CLASSIFIER_BINARIZED_FRACTION
    binarized_fraction = check_float("binarized_fraction", binarized_fraction, 0.0, 1.0)
    where = {"data_dir": data_dir, "idx_dir": idx_dir, "download": download}
    info = data.info(dataset, data_dir=data_dir, idx_dir=idx_dir)
    if not info.num_classes:
        raise ValueError(f"dataset {dataset!r} has no labels to train a classifier on")
    wanted = {
        "format": _CLASSIFIER_FORMAT,
        "dataset": dataset,
        "image_shape": [int(size) for size in info.image_shape],
        "num_classes": int(info.num_classes),
        "train_split": train_split,
        "epochs": int(epochs),
        "binarized_fraction": binarized_fraction,
        "seed": int(seed),
    }
    path = meta_path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"{_classifier_key(dataset, info.image_shape)}.keras"
        meta_path = path.with_suffix(".json")
        cached = _load_cached(path, meta_path, wanted, say)
        if cached is not None:
            return cached

    x, labels = data.load_numpy(dataset, train_split, **where)
    x_test, labels_test = data.load_numpy(dataset, "test", **where)
    x_binary, _ = load_test_arrays(dataset, binarize="dynamic", **where)
    say(f"reference classifier: training on {dataset} {train_split} ({len(x)} images)")
    started = time.perf_counter()
    model = train_classifier(
        x,
        labels,
        num_classes=info.num_classes,
        epochs=epochs,
        seed=seed,
        binarized_fraction=binarized_fraction,
    )
    seconds = round(time.perf_counter() - started, 1)

    def accuracy_on(images):
        scores = model.predict(images, batch_size=512, verbose=0)
        return float(np.mean(np.argmax(scores, axis=-1) == labels_test))

    accuracy, binary_accuracy = accuracy_on(x_test), accuracy_on(x_binary)
    say(
        f"reference classifier: {accuracy:.2%} test accuracy ({binary_accuracy:.2%} on the "
        f"binarised test images) after {seconds:.0f} s"
    )
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.stem + ".partial.keras")  # save wants a .keras name
        model.save(partial)
        meta = {**wanted, "test_accuracy": accuracy, "train_seconds": seconds}
        meta["binarized_test_accuracy"] = binary_accuracy
        meta["backend"], meta["keras_version"] = keras.backend.backend(), keras.__version__
        meta_partial = meta_path.with_name(meta_path.name + ".partial")
        meta_partial.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        os.replace(partial, path)  # the model first: a meta without its model is never read
        os.replace(meta_partial, meta_path)
    return ReferenceClassifier(model, accuracy, path, True, seconds, binary_accuracy)
