"""Checked input: every bad input raises InvalidInputError before any state changes.

Runs on every backend (make test's JAX and torch legs too): arrays are checked whole before
training starts; datasets, generators and PyDatasets batch by batch, so a bad batch is never
trained on. Each case compares the weights and ``optimizer.iterations`` before and after.
"""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import BACKEND, to_numpy

from keras_vae import AE, CVAE, DAE, VAE, InvalidInputError, architectures

SHAPE = (6, 6, 1)
NUM_CLASSES = 4


def images(n=64, seed=0):
    return np.random.default_rng(seed).random((n, *SHAPE)).astype("float32")


def labels(n=64):
    return np.arange(n) % NUM_CLASSES


def make(kind, compile_kwargs=None, **kwargs):
    variational = kind in ("vae", "cvae")
    encoder, decoder = architectures.mlp(SHAPE, 2, (8,), variational=variational)
    if kind == "cvae":
        model = CVAE(encoder, decoder, num_classes=NUM_CLASSES, seed=0, **kwargs)
    elif kind == "vae":
        model = VAE(encoder, decoder, seed=0, **kwargs)
    else:
        cls = DAE if kind == "dae" else AE
        model = cls(encoder, decoder, reconstruction_loss="bernoulli", **kwargs)
    model.compile(optimizer="adam", **(compile_kwargs or {}))
    return model


def state(model):
    return [to_numpy(v).copy() for v in model.trainable_variables], int(
        to_numpy(model.optimizer.iterations)
    )


def assert_unchanged(model, before):
    weights, iterations = state(model)
    assert iterations == before[1]
    for a, b in zip(weights, before[0]):
        np.testing.assert_array_equal(a, b)


def with_nan(x, index=5):
    x = x.copy()
    x.reshape(-1)[index] = np.nan
    return x


# ------------------------------------------------------------ arrays, before training
X = images()
ARRAY_CASES = {
    "uint8 images 0..255": ("vae", (np.round(X * 255).astype("uint8"),), {}, r"\[0, 1\].*x / 255"),
    "float images in [0, 255]": ("vae", (X * 255,), {}, r"values in \[0, 1\].*from"),
    "one NaN pixel": ("vae", (with_nan(X),), {}, r"finite.*1 NaN or inf.*index"),
    "an inf pixel": ("ae", (np.where(X > 0.99, np.inf, X),), {}, "finite"),
    "label = num_classes": ("cvae", (X, np.full(64, 4)), {}, r"\[0, 4\).*4 to 4"),
    "label -1": ("cvae", (X, np.full(64, -1)), {}, r"\[0, 4\).*-1"),
    "label 2.5": ("cvae", (X, np.full(64, 2.5)), {}, r"whole class indices.*2\.5"),
    "label NaN": ("cvae", (X, np.full(64, np.nan)), {}, "finite"),
    "labels (n, 2)": ("cvae", (X, np.zeros((64, 2))), {}, r"\(n,\), \(n, 1\) or \(n, 4\)"),
    "one-hot of width 5": ("cvae", (X, np.eye(5)[labels() % 5]), {}, r"\(n, 4\)"),
    "one-hot rows not summing to 1": ("cvae", (X, 2 * np.eye(4)[labels()]), {}, "sum to 1"),
    "no labels": ("cvae", (X,), {}, "CVAE needs labels"),
    "labels too few": ("cvae", (X, labels(60)), {}, r"one label per example \(64\).*60"),
    "empty x": ("vae", (X[:0],), {}, "empty"),
    "x (n, 6, 6) for a (6, 6, 1) encoder": (
        "vae",
        (X[..., 0],),
        {},
        r"\(n, 6, 6, 1\).*x\[\.\.\., None\]",
    ),
    "one example without a batch axis": ("ae", (X[0],), {}, r"x\[None\]"),
    "string dtype": ("ae", (X.astype(str),), {}, "numbers"),
    "complex dtype": ("ae", (X.astype("complex64"),), {}, "numbers"),
    "y of another length": ("ae", (X, X[:10]), {}, r"one entry per example of `x` \(64\)"),
    "y of another shape": ("ae", (X, X[..., 0]), {}, r"`y` must have shape"),
    "target y outside [0, 1]": ("dae", (X, X * 3), {}, r"`y` must hold values in \[0, 1\]"),
    "sample_weight of another length": ("vae", (X,), {"sample_weight": np.ones(10)}, "64"),
    "negative sample_weight": ("vae", (X,), {"sample_weight": -np.ones(64)}, ">= 0"),
    "NaN sample_weight": ("vae", (X,), {"sample_weight": with_nan(np.ones(64), 3)}, "finite"),
    "sample_weight (n, 2)": ("vae", (X,), {"sample_weight": np.ones((64, 2))}, r"\(n,\)"),
    "a list for x": ("cvae", ([X, labels()],), {}, "one array"),
    "validation_data with NaN": (
        "vae",
        (X,),
        {"validation_data": (with_nan(X),)},
        "validation_data: `x` must hold finite",
    ),
}


@pytest.mark.parametrize("case", sorted(ARRAY_CASES))
def test_fit_refuses_bad_arrays_before_any_state_changes(case):
    kind, args, kwargs, message = ARRAY_CASES[case]
    model = make(kind)
    before = state(model)
    with pytest.raises(InvalidInputError, match=message):
        model.fit(*args, epochs=1, batch_size=16, verbose=0, **kwargs)
    assert_unchanged(model, before)


def test_invalid_input_error_is_a_value_error():
    assert issubclass(InvalidInputError, ValueError)


@pytest.mark.parametrize("method", ["evaluate", "predict"])
def test_evaluate_and_predict_refuse_bad_arrays(method):
    model = make("vae")
    before = state(model)
    with pytest.raises(InvalidInputError, match="finite"):
        getattr(model, method)(with_nan(X), verbose=0)
    with pytest.raises(InvalidInputError, match="x\\[\\.\\.\\., None\\]"):
        getattr(model, method)(X[..., 0], verbose=0)
    assert_unchanged(model, before)
    # predict does not need [0, 1] (a denoiser may see noisy inputs); evaluate does.
    if method == "predict":
        assert model.predict(X * 2, verbose=0).shape == X.shape
    else:
        with pytest.raises(InvalidInputError, match=r"\[0, 1\]"):
            model.evaluate(X * 2, verbose=0)


def test_numpy_api_refuses_nan_and_wrong_shapes():
    model = make("cvae")
    with pytest.raises(InvalidInputError, match="finite"):
        model.encode(with_nan(X))
    with pytest.raises(InvalidInputError, match=r"\[0, 4\)"):
        model.generate(np.array([0, 4]))
    with pytest.raises(InvalidInputError, match="This CVAE conditions"):
        encoder, decoder = architectures.mlp(SHAPE, 2, (8,), num_classes=NUM_CLASSES)
        CVAE(encoder, decoder, NUM_CLASSES, condition_encoder=True, condition_decoder=True).predict(
            X, verbose=0
        )


def test_good_inputs_still_train():
    for kind, args in (
        ("vae", (X,)),
        ("cvae", (X, labels())),
        ("cvae", (X, labels().astype("float32"))),  # whole floats are class indices
        ("cvae", (X, labels()[:, None])),
        ("cvae", (X, np.eye(NUM_CLASSES)[labels()])),
        ("dae", (np.clip(X + 0.5, 0, 2), X)),  # a noisy input outside [0, 1], clean target
    ):
        model = make(kind)
        history = model.fit(*args, epochs=1, batch_size=16, verbose=0)
        assert np.isfinite(history.history["loss"][0])
    # uint8 is fine where the likelihood does not need [0, 1].
    model = AE(*architectures.mlp(SHAPE, 2, (8,), variational=False), reconstruction_loss="mse")
    model.compile(optimizer="adam")
    assert np.isfinite(model.fit(np.round(X * 255).astype("uint8"), verbose=0).history["loss"][0])


# ------------------------------------------------------ batches, as they are drawn
BAD = 2  # index of the bad batch
BATCH = 8


def _batches(kind, bad):
    """Five batches (x, labels) of which batch BAD is spoilt by ``bad``."""
    x, y = images(5 * BATCH), labels(5 * BATCH)
    out = []
    for i in range(5):
        xb, yb = x[i * BATCH : (i + 1) * BATCH], y[i * BATCH : (i + 1) * BATCH]
        if i == BAD:
            xb, yb = bad(xb, yb)
        out.append((xb, yb) if kind == "cvae" else (xb,))
    return out


BATCH_CASES = {
    "NaN pixel": (
        "vae",
        lambda x, y: (with_nan(x), y),
        "batch 2 of the data: `x` must hold finite",
    ),
    "values in [0, 255]": ("vae", lambda x, y: (x * 255, y), r"batch 2.*\[0, 1\]"),
    "label out of range": ("cvae", lambda x, y: (x, y + 10), r"batch 2.*\[0, 4\)"),
    "label 2.5": ("cvae", lambda x, y: (x, y + 0.5), "whole class indices"),
    "empty batch": ("vae", lambda x, y: (x[:0], y[:0]), "empty"),
}


def _as_dataset(batches):
    first = batches[0]
    signature = tuple(tf.TensorSpec((None, *np.shape(p)[1:]), tf.float32) for p in first)
    return tf.data.Dataset.from_generator(lambda: iter(batches), output_signature=signature)


class _Batches(keras.utils.PyDataset):
    def __init__(self, batches):
        super().__init__()
        self.batches = batches

    def __len__(self):
        return len(self.batches)

    def __getitem__(self, index):
        return self.batches[index]


def _reference(kind, batches, steps, initial_weights):
    """The weights after training on the first ``steps`` (good) batches only."""
    model = make(kind)
    for variable, value in zip(model.trainable_variables, initial_weights):
        variable.assign(value)
    if steps:
        model.fit(_Batches(batches[:steps]), epochs=1, verbose=0, shuffle=False)
    return state(model)


FORMS = ["dataset", "generator", "pydataset"]


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("case", sorted(BATCH_CASES))
def test_a_bad_batch_raises_before_its_step_and_is_never_trained_on(case, form):
    kind, bad, message = BATCH_CASES[case]
    batches = _batches(kind, bad)
    if form == "dataset":
        if case == "empty batch":
            pytest.skip("from_generator with an empty batch: covered by the other forms")
        data = _as_dataset([tuple(np.asarray(p, "float32") for p in b) for b in batches])
    elif form == "generator":
        data = iter(batches)
        data = (b for b in data)
    else:
        data = _Batches(batches)
    model = make(kind)
    initial_weights, _ = state(model)
    with pytest.raises(InvalidInputError, match=message):
        model.fit(data, epochs=1, verbose=0, shuffle=False)
    weights, iterations = state(model)
    # Keras may draw a batch ahead (JAX prefetches): at most the good batches before it ran.
    assert iterations <= BAD
    reference_weights, _ = _reference(kind, batches, iterations, initial_weights)
    for a, b in zip(weights, reference_weights):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "compile_kwargs",
    [
        {"jit_compile": True},
        {"steps_per_execution": 4},
        {"jit_compile": True, "steps_per_execution": 2},
    ]
    if BACKEND != "torch"
    else [{"steps_per_execution": 1}],
)
def test_batch_checks_hold_under_jit_and_several_steps_per_execution(compile_kwargs):
    batches = _batches("vae", lambda x, y: (with_nan(x), y))
    model = make("vae", compile_kwargs)
    with pytest.raises(InvalidInputError, match="batch 2"):
        model.fit(_as_dataset(batches), epochs=1, verbose=0)
    weights, iterations = state(model)
    assert iterations <= BAD
    assert all(np.isfinite(w).all() for w in weights)
    # Arrays: refused before training whatever the compile options.
    model = make("cvae", compile_kwargs)
    before = state(model)
    with pytest.raises(InvalidInputError, match=r"\[0, 4\)"):
        model.fit(X, np.full(64, 7), verbose=0)
    assert_unchanged(model, before)


DATASET_SPEC_CASES = {
    "x (n, 6, 6)": (
        "vae",
        lambda: tf.data.Dataset.from_tensor_slices(X[..., 0]).batch(8),
        r"\(n, 6, 6, 1\)",
    ),
    "unbatched": ("vae", lambda: tf.data.Dataset.from_tensor_slices(X), "batch them"),
    "strings": (
        "vae",
        lambda: tf.data.Dataset.from_tensor_slices(X.astype(str)).batch(8),
        "numbers",
    ),
    "no labels": (
        "cvae",
        lambda: tf.data.Dataset.from_tensor_slices(X).batch(8),
        "CVAE needs labels",
    ),
    "labels (n, 3)": (
        "cvae",
        lambda: tf.data.Dataset.from_tensor_slices((X, np.zeros((64, 3)))).batch(8),
        r"\(n, 4\)",
    ),
    "empty": ("vae", lambda: tf.data.Dataset.from_tensor_slices(X[:0]).batch(8), "empty"),
    "dicts": ("vae", lambda: tf.data.Dataset.from_tensor_slices({"x": X}).batch(8), "dicts"),
}


@pytest.mark.parametrize("case", sorted(DATASET_SPEC_CASES))
def test_dataset_element_specs_are_checked_before_training(case):
    kind, dataset, message = DATASET_SPEC_CASES[case]
    model = make(kind)
    before = state(model)
    with pytest.raises(InvalidInputError, match=message):
        model.fit(dataset(), epochs=1, verbose=0)
    assert_unchanged(model, before)


def test_an_empty_generator_is_refused():
    model = make("vae")
    with pytest.raises(InvalidInputError, match="yielded no batches"):
        model.fit((b for b in []), epochs=1, verbose=0)


# ------------------------------------------------------------ construction
def test_a_sigmoid_decoder_with_from_logits_is_refused_at_construction():
    encoder, decoder = architectures.mlp(SHAPE, 2, (8,), output_activation="sigmoid")
    with pytest.raises(ValueError, match="from_logits=False.*drop the decoder's final activation"):
        VAE(encoder, decoder)
    VAE(encoder, decoder, from_logits=False)  # the probabilities are read as such
    VAE(encoder, decoder, reconstruction_loss="mse")  # no logits involved
    softmax = keras.Sequential(
        [
            keras.Input((2,)),
            keras.layers.Dense(36),
            keras.layers.Softmax(),
            keras.layers.Reshape(SHAPE),
        ]
    )
    with pytest.raises(ValueError, match="softmax"):
        VAE(architectures.mlp(SHAPE, 2, (8,))[0], softmax)


def test_mismatched_encoder_and_decoder_are_refused_at_construction():
    encoder, _ = architectures.mlp((28, 28, 1), 2, (8,))
    _, decoder32 = architectures.mlp((32, 32, 1), 2, (8,))
    with pytest.raises(ValueError, match=r"\(n, 28, 28, 1\).*outputs \(n, 32, 32, 1\)"):
        VAE(encoder, decoder32)
    _, decoder3 = architectures.mlp((28, 28, 1), 3, (8,))
    with pytest.raises(
        ValueError, match=r"decoder does not take the encoder's code of shape \(n, 2\)"
    ):
        VAE(encoder, decoder3)


# ------------------------------------------------------------ a run that diverges
def _nan_after_first_batch(x, outputs):
    """A reconstruction loss that turns NaN: the log of a negative number."""
    del x
    return keras.ops.sum(keras.ops.log(keras.ops.reshape(outputs, (-1, 36)) - 1e6), axis=1)


def test_terminate_on_nan_and_backup_leave_no_nan_weights(tmp_path):
    model = AE(
        *architectures.mlp(SHAPE, 2, (8,), variational=False),
        reconstruction_loss=_nan_after_first_batch,
    )
    model.compile(optimizer="adam")
    before = state(model)
    backup = os.path.join(tmp_path, "backup")
    history = model.fit(
        X,
        epochs=3,
        batch_size=16,
        verbose=0,
        callbacks=[
            keras.callbacks.TerminateOnNaN(),
            keras.callbacks.BackupAndRestore(backup, delete_checkpoint=False),
        ],
    )
    assert len(history.history["loss"]) == 1 and np.isnan(history.history["loss"][0])
    weights, _ = state(model)
    for a, b in zip(weights, before[0]):  # Adam's first step on zero gradients moves nothing
        np.testing.assert_array_equal(a, b)
    saved = AE(*architectures.mlp(SHAPE, 2, (8,), variational=False), reconstruction_loss="mse")
    saved.load_weights(os.path.join(backup, "latest.weights.h5"))
    for a, b in zip([to_numpy(v) for v in saved.trainable_variables], before[0]):
        assert np.isfinite(a).all()
        np.testing.assert_array_equal(a, b)
