"""Tests for keras_vae.evaluation: PSNR, conditional accuracy, evaluate_model by capability, the
reference classifier and its cache.

Models are small and untrained (the measures are checked against their definitions, not
against a quality). The classifier is trained on small synthetic images (a bright bar whose
place is the class), in memory or as the IDX files of tests/test_cli.py.
"""

import json

import numpy as np
import pytest
from test_cli import write_fake_fashion_mnist

from keras_vae import AE, CVAE, DAE, VAE, InvalidInputError, architectures, data, evaluation

SHAPE = (8, 8, 1)


def binary(n, seed=0):
    return (np.random.default_rng(seed).random((n, *SHAPE)) > 0.5).astype("float32")


def compiled(model):
    model.compile(optimizer="adam")
    return model


def small(kind, **options):
    """An untrained model on 8x8x1 images, a 2-D latent."""
    variational = kind in (VAE, CVAE)
    classes = {"num_classes": 3} if kind is CVAE else {}
    encoder, decoder = architectures.mlp(
        SHAPE, latent_dim=2, hidden_units=(16,), variational=variational, **classes
    )
    seeded = {} if kind is AE else {"seed": 0}
    if kind is CVAE:  # the architectures feed the label to both parts
        seeded.update(condition_encoder=True, condition_decoder=True)
    return compiled(kind(encoder, decoder, **seeded, **classes, **options))


class FirstClass:
    """A stub classifier that calls every image class 0."""

    input_shape = (None, *SHAPE)

    def __init__(self, num_classes=3):
        self.num_classes = num_classes
        self.test_accuracy = 0.5

    def predict(self, images, batch_size=None, verbose=0):
        scores = np.zeros((len(images), self.num_classes), "float32")
        scores[:, 0] = 1.0
        return scores


# ------------------------------------------------------------------------------------ PSNR


def test_psnr_is_per_image_and_refuses_bad_input():
    x = np.full((3, 2, 2), 0.5)
    reconstruction = x + np.array([0.1, 0.001, 0.0])[:, None, None]
    np.testing.assert_allclose(evaluation.psnr(x, reconstruction), [20.0, 60.0, 100.0])
    with pytest.raises(InvalidInputError, match="`reconstruction` must have the shape of `x`"):
        evaluation.psnr(x, x[:2])
    with pytest.raises(InvalidInputError, match=r"`x` must hold values in \[0, 1\]"):
        evaluation.psnr(x * 255, x)
    with pytest.raises(InvalidInputError, match="`reconstruction` must hold finite numbers"):
        evaluation.psnr(x, x * np.nan)


def test_denoising_psnr_scores_reconstructions_of_the_model_noise():
    dae = small(DAE, noise_stddev=0.3)
    x = binary(16)
    expected = evaluation.psnr(x, dae.reconstruct(dae.corrupt(x, seed=4)))
    np.testing.assert_allclose(evaluation.denoising_psnr(dae, x, seed=4), expected)
    with pytest.raises(ValueError, match="needs a denoising model"):
        evaluation.denoising_psnr(small(AE), x)


# --------------------------------------------------------------------- conditional accuracy


def test_conditional_accuracy_overall_and_per_class():
    cvae = small(CVAE)
    scored = evaluation.conditional_accuracy(cvae, FirstClass(), num_per_class=4, seed=0)
    assert scored == {"accuracy": pytest.approx(1 / 3), "per_class": [1.0, 0.0, 0.0],
                      "num_per_class": 4}  # fmt: skip
    with pytest.raises(ValueError, match="needs a conditional generative model"):
        evaluation.conditional_accuracy(small(VAE), FirstClass())
    with pytest.raises(ValueError, match="one score per class"):
        evaluation.conditional_accuracy(cvae, FirstClass(num_classes=2), num_per_class=2)
    with pytest.raises(ValueError, match="`num_per_class` must be a positive integer"):
        evaluation.conditional_accuracy(cvae, FirstClass(), num_per_class=0)


# --------------------------------------------------------------------------- evaluate_model


def test_evaluate_model_reports_likelihoods_on_binary_data():
    vae = small(VAE)
    x = binary(64)
    metrics = evaluation.evaluate_model(vae, x, num_samples=100, elbo_samples=100, seed=0)
    json.dumps(metrics)  # JSON-able
    assert metrics["num_examples"] == 64 and metrics["nll_num_samples"] == 100
    # log p(x) >= ELBO: the importance-weighted NLL is at most the negative ELBO.
    assert metrics["nll_nats"] <= metrics["negative_elbo_nats"]
    # The KL per dimension sums to the KL term of the loss (closed form both).
    kl = metrics["kl_per_dimension_nats"]
    assert len(kl) == 2 and sum(kl) == pytest.approx(metrics["kl_loss"], rel=1e-4)
    assert 0 <= metrics["active_units"] <= 2
    assert metrics["psnr_db"] == pytest.approx(np.mean(evaluation.psnr(x, vae.reconstruct(x))))
    assert "likelihood_not_reported" not in metrics


def test_evaluate_model_says_why_grey_levels_get_no_likelihood():
    x = np.random.default_rng(0).random((32, *SHAPE)).astype("float32")
    metrics = evaluation.evaluate_model(small(VAE), x, num_samples=5)
    assert "nll_nats" not in metrics and "negative_elbo_nats" not in metrics
    assert "must be binary" in metrics["likelihood_not_reported"]
    with pytest.raises(evaluation.NoDensityError, match="must be binary"):
        evaluation.likelihood_metrics(small(VAE), x, num_samples=5)
    assert np.isfinite(metrics["psnr_db"]) and np.isfinite(metrics["loss"])


def test_evaluate_model_asks_what_the_model_can_do():
    x = binary(32)
    ae_metrics = evaluation.evaluate_model(small(AE), x)
    assert {"loss", "reconstruction_loss", "pixel_mse", "psnr_db"} <= set(ae_metrics)
    assert not any(key.endswith("_nats") for key in ae_metrics)  # no likelihood, no nats

    dae = small(DAE, noise_stddev=0.3)
    dae_metrics = evaluation.evaluate_model(dae, x, seed=2)
    denoised = np.mean(evaluation.denoising_psnr(dae, x, seed=2))
    assert dae_metrics["denoised_psnr_db"] == pytest.approx(denoised)
    noisy = np.mean(evaluation.psnr(x, dae.corrupt(x, seed=2)))
    assert dae_metrics["noisy_psnr_db"] == pytest.approx(noisy)

    cvae, labels = small(CVAE), np.arange(32) % 3
    with pytest.raises(InvalidInputError, match="pass the test labels"):
        evaluation.evaluate_model(cvae, x)
    metrics = evaluation.evaluate_model(
        cvae, x, labels, num_samples=10, classifier=FirstClass(), num_per_class=2
    )
    assert metrics["nll_given_labels"] and np.isfinite(metrics["nll_nats"])
    assert metrics["conditional_accuracy"] == pytest.approx(1 / 3)
    assert metrics["conditional_accuracy_per_class"] == [1.0, 0.0, 0.0]
    assert metrics["classifier_test_accuracy"] == 0.5
    unscored = evaluation.evaluate_model(cvae, x, labels, num_samples=2)
    assert unscored["conditional_accuracy_not_reported"] == "no classifier was given"


# ---------------------------------------------------------------------- test data and seeds


def test_load_test_arrays_binarises_with_the_fixed_seed(tmp_path):
    idx = write_fake_fashion_mnist(tmp_path)
    where = {"idx_dir": idx, "download": False}
    grey, labels = evaluation.load_test_arrays("fashion_mnist", "test[:50]", binarize=None, **where)
    dynamic, _ = evaluation.load_test_arrays("fashion_mnist", "test[:50]", **where)
    expected, _ = data.load_numpy(
        "fashion_mnist",
        "test[:50]",
        binarize="dynamic",
        seed=evaluation.TEST_BINARIZE_SEED,
        **where,
    )
    np.testing.assert_array_equal(dynamic, expected)
    assert set(np.unique(dynamic)) <= {0.0, 1.0} and len(np.unique(grey)) > 2
    static, _ = evaluation.load_test_arrays(
        "fashion_mnist", "test[:50]", binarize="static", **where
    )
    np.testing.assert_array_equal(static, (grey > 0.5).astype("float32"))
    assert labels.shape == (50,)


# ---------------------------------------------------------------------- reference classifier


def bars(n, seed=0, size=12):
    """``n`` noisy grey images with a bright bar whose row is the class (10 classes)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    images = rng.random((n, size, size, 1)).astype("float32") * 0.3
    for index, label in enumerate(labels):
        images[index, label + 1, 2:-2, 0] = 0.9
    return images, labels


def test_train_classifier_learns_synthetic_classes():
    x, labels = bars(400)
    x_test, labels_test = bars(200, seed=1)
    model = evaluation.train_classifier(x, labels, epochs=3, batch_size=32, seed=0)
    accuracy = np.mean(np.argmax(model.predict(x_test, verbose=0), axis=-1) == labels_test)
    assert accuracy > 0.9
    with pytest.raises(InvalidInputError, match=r"`x` must hold values in \[0, 1\]"):
        evaluation.train_classifier(x * 255, labels, epochs=1)


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda x, y: ((x * 255).astype("uint8"), y), r"`x` must hold values in \[0, 1\]"),
        (lambda x, y: (np.where(x > 0.85, np.nan, x), y), "`x` must hold finite numbers"),
        (lambda x, y: (x[:0], y[:0]), "`x` is empty"),
        (lambda x, y: (x, y[:-1]), "one label each"),
        (lambda x, y: (x, y - 1), r"`labels` must be class indices >= 0; .* from -1"),
        (lambda x, y: (x, y + 0.5), r"`labels` must be whole class indices; received 0\.5"),
        (lambda x, y: (x, np.where(y == 0, np.nan, y)), "`labels` must hold finite numbers"),
        (lambda x, y: (x, y.astype(str)), "`labels` must hold numbers"),
        (lambda x, y: (x, y + 10**6), r"`labels` go up to 1000009; .* at most 100000 classes"),
    ],
    ids=["uint8", "nan x", "empty", "short labels", "label -1", "label 0.5", "nan label",
         "string labels", "huge label"],
)  # fmt: skip
def test_train_classifier_refuses_a_strangers_input_before_training(change, match):
    """Nothing is rescaled, truncated or wrapped: each bad input is refused by name before a
    network is built, and the caller's arrays are left as they were."""
    x, labels = change(*bars(40))
    before = (x.copy(), labels.copy())
    with pytest.raises(InvalidInputError, match=match):
        evaluation.train_classifier(x, labels, epochs=1)
    np.testing.assert_array_equal(x, before[0])
    np.testing.assert_array_equal(labels, before[1])
    with pytest.raises(InvalidInputError, match=r"`labels` must lie in \[0, 3\) \(num_classes=3\)"):
        evaluation.train_classifier(*bars(40), num_classes=3, epochs=1)


def test_train_classifier_learns_from_binarised_images_too():
    x, labels = bars(400)
    x_test, labels_test = bars(200, seed=1)
    binary_test = (np.random.default_rng(2).random(x_test.shape) < x_test).astype("float32")
    options = {"epochs": 5, "batch_size": 32, "seed": 0}
    model = evaluation.train_classifier(x, labels, binarized_fraction=1.0, **options)
    for images in (binary_test, x_test):  # trained on binary draws only, it reads both
        accuracy = np.mean(np.argmax(model.predict(images, verbose=0), axis=-1) == labels_test)
        assert accuracy > 0.9
    again = evaluation.train_classifier(x, labels, binarized_fraction=1.0, **options)
    np.testing.assert_allclose(again.predict(x_test, verbose=0), model.predict(x_test, verbose=0))
    grey = evaluation.train_classifier(x, labels, **options)  # the default: grey levels only
    assert not np.allclose(grey.predict(x_test, verbose=0), model.predict(x_test, verbose=0))
    for bad in (-0.1, 1.5, "half", True, float("nan")):
        with pytest.raises(
            ValueError, match=r"`binarized_fraction` must be a finite float in \[0.0, 1.0\]"
        ):
            evaluation.train_classifier(x, labels, epochs=1, binarized_fraction=bad)


def test_reference_classifier_is_cached_and_a_bad_cache_retrained(tmp_path):
    idx = write_fake_fashion_mnist(tmp_path / "idx")
    lines = []
    options = {"train_split": "train[:300]", "epochs": 1, "idx_dir": idx, "download": False}
    cache = tmp_path / "classifiers"
    first = evaluation.reference_classifier("fashion_mnist", cache, report=lines.append, **options)
    path = cache / "fashion_mnist-28x28x1.keras"
    assert first.trained and first.path == path and path.is_file()
    assert 0.0 <= first.test_accuracy <= 1.0 and 0.0 <= first.binarized_test_accuracy <= 1.0
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["train_split"] == "train[:300]" and meta["test_accuracy"] == first.test_accuracy
    assert meta["binarized_fraction"] == evaluation.CLASSIFIER_BINARIZED_FRACTION
    assert meta["binarized_test_accuracy"] == first.binarized_test_accuracy

    second = evaluation.reference_classifier("fashion_mnist", cache, **options)
    assert not second.trained and second.test_accuracy == first.test_accuracy
    assert second.binarized_test_accuracy == first.binarized_test_accuracy
    images = bars(8, size=28)[0]
    np.testing.assert_allclose(second.predict(images), first.predict(images), rtol=1e-5, atol=1e-6)

    # Trained otherwise (another split in its record): not trusted.
    meta_path = path.with_suffix(".json")
    recorded = (
        "test_accuracy", "binarized_test_accuracy", "train_seconds", "backend", "keras_version"
    )  # fmt: skip
    wanted = {key: value for key, value in meta.items() if key not in recorded}
    assert evaluation._load_cached(path, meta_path, wanted, lines.append) is not None
    for change in ({"train_split": "train[:200]"}, {"binarized_fraction": 0.0}):
        assert evaluation._load_cached(path, meta_path, {**wanted, **change}, lines.append) is None
        assert "trained otherwise" in lines[-1]

    # A classifier cached by an older keras_vae (format 1: grey levels only) is retrained.
    old = {
        k: v for k, v in meta.items() if k not in ("binarized_fraction", "binarized_test_accuracy")
    }
    meta_path.write_text(json.dumps({**old, "format": 1}))
    before = len(lines)
    retrained = evaluation.reference_classifier(
        "fashion_mnist", cache, report=lines.append, **options
    )
    assert retrained.trained and any("trained otherwise" in line for line in lines[before:])
    assert json.loads(meta_path.read_text())["format"] == evaluation._CLASSIFIER_FORMAT

    path.write_bytes(b"not a keras file")  # corrupt: retrained, never trusted
    again = evaluation.reference_classifier("fashion_mnist", cache, report=lines.append, **options)
    assert again.trained and any("unreadable" in line for line in lines)
    assert not evaluation.reference_classifier("fashion_mnist", cache, **options).trained
