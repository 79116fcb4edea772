"""Tests of the committed exports in saved_models/: they load, serve and still work.

Loaded with `tf.saved_model.load` only (no keras_vae code involved). The reconstruction check
uses the first Fashion-MNIST test images (skipped when the data are not installed) and must
reproduce the numbers `saved_models/build.py` wrote to `metrics.json`.
"""

import json
import os

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "saved_models")
MODELS = ("vae", "cvae", "dae", "ae")
LATENT_DIM = 16
CHECK_IMAGES = 256  # as in saved_models/build.py
# Mean binary cross-entropy (nats per image) of the first 256 test images, with a margin over
# what the committed exports give (see metrics.json); predicting the mean training image
# gives about 385.
MAX_BCE = {"vae": 235.0, "cvae": 235.0, "dae": 232.0, "ae": 230.0}
MAX_TOTAL_BYTES = 6_000_000
SIGNATURES = {
    "vae": {
        "serving_default": (["x"], ["reconstruction"]),
        "encode": (["x"], ["z_log_var", "z_mean"]),
        "decode": (["z"], ["x"]),
        "generate": (["eps"], ["x"]),
    },
    "cvae": {
        "serving_default": (["labels", "x"], ["reconstruction"]),
        "encode": (["labels", "x"], ["z_log_var", "z_mean"]),
        "decode": (["labels", "z"], ["x"]),
        "generate": (["eps", "labels"], ["x"]),
    },
    "dae": {
        "serving_default": (["x"], ["reconstruction"]),
        "encode": (["x"], ["code"]),
        "decode": (["z"], ["x"]),
    },
    "ae": {
        "serving_default": (["x"], ["reconstruction"]),
        "encode": (["x"], ["code"]),
        "decode": (["z"], ["x"]),
    },
}

pytestmark = pytest.mark.skipif(
    not all(os.path.exists(os.path.join(ROOT, name, "1", "saved_model.pb")) for name in MODELS),
    reason="saved_models/ exports are missing: run `make saved-models`",
)


@pytest.fixture(scope="module")
def served():
    return {name: tf.saved_model.load(os.path.join(ROOT, name, "1")) for name in MODELS}


@pytest.fixture(scope="module")
def metrics():
    with open(os.path.join(ROOT, "metrics.json")) as file:
        return json.load(file)["models"]


@pytest.fixture(scope="module")
def test_images():
    from keras_vae.data import DatasetNotFoundError, load_numpy

    try:
        x, labels = load_numpy("fashion_mnist", "test", download=False)
    except DatasetNotFoundError as error:
        pytest.skip(f"Fashion-MNIST is not installed ({str(error).splitlines()[0]})")
    return x, labels


def _call(served, name, signature, **inputs):
    fn = served[name].signatures[signature]
    return {k: v.numpy() for k, v in fn(**{k: tf.constant(v) for k, v in inputs.items()}).items()}


def _eps(count, seed=0):
    return np.random.default_rng(seed).standard_normal((count, LATENT_DIM)).astype("float32")


def _bce(x, p):
    p = np.clip(p.astype("float64"), 1e-7, 1 - 1e-7)
    x = x.astype("float64")
    return -(x * np.log(p) + (1 - x) * np.log1p(-p)).reshape(len(x), -1).sum(axis=1)


def test_total_size():
    # The committed exports and their files; `make demo` writes saved_models/demo/ (ignored by
    # git, not shipped), which does not count.
    committed = [os.path.join(ROOT, name) for name in MODELS]
    total = sum(
        os.path.getsize(os.path.join(root, f))
        for top in committed
        for root, _, files in os.walk(top)
        for f in files
    )
    total += sum(os.path.getsize(entry.path) for entry in os.scandir(ROOT) if entry.is_file())
    assert total < MAX_TOTAL_BYTES


@pytest.mark.parametrize("name", MODELS)
def test_signatures(served, metrics, name):
    signatures = served[name].signatures
    assert sorted(signatures) == sorted(SIGNATURES[name])
    for signature, (inputs, outputs) in SIGNATURES[name].items():
        fn = signatures[signature]
        specs = fn.structured_input_signature[1]
        assert sorted(specs) == inputs
        for input_name, spec in specs.items():
            assert spec.shape[0] is None
            assert spec.dtype == (tf.int32 if input_name == "labels" else tf.float32)
        assert sorted(fn.structured_outputs) == outputs
    assert sorted(metrics[name]["signatures"]) == sorted(SIGNATURES[name])


@pytest.mark.parametrize("name", MODELS)
def test_every_signature_runs(served, name):
    rng = np.random.default_rng(0)
    x = rng.random((3, 28, 28, 1)).astype("float32")
    labels = np.array([0, 4, 9], "int32")
    feeds = {"x": x, "labels": labels, "z": _eps(3), "eps": _eps(3, seed=1)}
    for signature, (inputs, outputs) in SIGNATURES[name].items():
        result = _call(served, name, signature, **{k: feeds[k] for k in inputs})
        assert sorted(result) == outputs
        for key, value in result.items():
            assert value.dtype == np.float32 and np.all(np.isfinite(value))
            assert value.shape == ((3, LATENT_DIM) if signature == "encode" else x.shape), key


@pytest.mark.parametrize("name", MODELS)
def test_reconstruction_error_on_test_images(served, metrics, test_images, name):
    x, labels = test_images
    x, labels = x[:CHECK_IMAGES], labels[:CHECK_IMAGES]
    inputs = {"x": x, "labels": labels} if name == "cvae" else {"x": x}
    reconstruction = _call(served, name, "serving_default", **inputs)["reconstruction"]
    bce = float(_bce(x, reconstruction).mean())
    assert bce < MAX_BCE[name]
    # The committed export reproduces what build.py measured after training.
    recorded = metrics[name]["served_test"][f"reconstruction_bce_first_{CHECK_IMAGES}"]
    assert bce == pytest.approx(recorded, rel=1e-3)
    # decode(encode(x)) is the reconstruction: the signatures share one set of weights.
    codes = _call(served, name, "encode", **inputs)
    latent = codes["z_mean"] if "z_mean" in codes else codes["code"]
    decode_inputs = {"z": latent, "labels": labels} if name == "cvae" else {"z": latent}
    np.testing.assert_allclose(
        _call(served, name, "decode", **decode_inputs)["x"], reconstruction, atol=1e-5
    )


def test_vae_generate(served):
    images = _call(served, "vae", "generate", eps=_eps(8))["x"]
    assert images.shape == (8, 28, 28, 1)
    assert images.min() >= 0.0 and images.max() <= 1.0
    again = _call(served, "vae", "generate", eps=_eps(8))["x"]
    np.testing.assert_array_equal(images, again)  # the caller's eps is the only randomness
    assert np.abs(images[0] - images[1]).mean() > 0.01


def test_cvae_generate_follows_the_label(served, test_images):
    labels = np.arange(10, dtype="int32")
    eps = np.repeat(_eps(1), 10, axis=0)  # the same noise for every class
    images = _call(served, "cvae", "generate", labels=labels, eps=eps)["x"]
    assert images.shape == (10, 28, 28, 1)
    assert images.min() >= 0.0 and images.max() <= 1.0
    differences = np.abs(images[:, None] - images[None]).mean(axis=(2, 3, 4))
    assert differences[~np.eye(10, dtype=bool)].min() > 0.01  # every label changes the image
    # Each image looks most like its own class (nearest class-mean test image): always at the
    # class mean itself (eps = 0), and for 81% of 80 noisy draws when the exports were built.
    x, y = test_images
    class_means = np.stack([x[y == k].mean(axis=0) for k in range(10)])

    def nearest_class(images):
        distances = ((images[:, None] - class_means[None]) ** 2).mean(axis=(2, 3, 4))
        return distances.argmin(axis=1)

    at_means = _call(served, "cvae", "generate", labels=labels, eps=np.zeros_like(eps))["x"]
    np.testing.assert_array_equal(nearest_class(at_means), labels)
    many = np.tile(labels, 8)
    noisy = _call(served, "cvae", "generate", labels=many, eps=np.repeat(_eps(8), 10, axis=0))
    assert (nearest_class(noisy["x"]) == many).mean() >= 0.7


def test_bad_requests_are_refused(served):
    fn = served["cvae"].signatures["generate"]
    with pytest.raises(tf.errors.InvalidArgumentError, match="labels must be class indices"):
        fn(labels=tf.constant([3, 10]), eps=tf.constant(_eps(2)))
    with pytest.raises(tf.errors.InvalidArgumentError, match="not compatible with expected shape"):
        served["vae"].signatures["serving_default"](x=tf.zeros((2, 28, 28)))
    with pytest.raises(TypeError):
        served["ae"].signatures["decode"](z=np.zeros((2, LATENT_DIM + 1), "float32"))
