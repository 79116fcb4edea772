"""What every model in the registry `keras_vae.models.MODELS` does, on the current backend.

A model registered there gets these checks without new test code: fit, evaluate and predict,
a ``.keras`` round trip loaded in safe mode, and a SavedModel export where the backend writes
one. The small instance comes from what the class states (``num_latent_outputs``,
``conditional``), not from its name.
"""

import inspect
import json
import os

import keras
import numpy as np
import pytest
from conftest import BACKEND

from keras_vae import architectures
from keras_vae.models import MODELS

DATA_SHAPE = (12,)
NUM_CLASSES = 3
NAMES = sorted(MODELS)


def small_model(cls):
    """A small instance of a registered model class, made from the flags it states."""
    encoder, decoder = architectures.mlp(
        DATA_SHAPE,
        latent_dim=2,
        hidden_units=(16,),
        variational=cls.num_latent_outputs == 2,
    )
    return cls(encoder, decoder, **({"num_classes": NUM_CLASSES} if cls.conditional else {}))


def data(n=96, seed=0):
    """Binary vectors from one prototype per class with a few flipped bits, and the labels."""
    rng = np.random.default_rng(seed)
    prototypes = rng.random((NUM_CLASSES, *DATA_SHAPE)) > 0.5
    labels = rng.integers(0, NUM_CLASSES, n).astype("int32")
    flips = rng.random((n, *DATA_SHAPE)) < 0.05
    return (prototypes[labels] ^ flips).astype("float32"), labels


def fit_arguments(cls, x, labels):
    """``fit``/``evaluate`` positional data: labels as ``y`` for a conditional model."""
    return (x, labels) if cls.conditional else (x,)


def predict_inputs(cls, x, labels):
    return [x, labels] if cls.conditional else x


def label_arguments(cls, labels):
    """The ``labels=`` keyword of the numpy API, for a conditional model."""
    return {"labels": labels} if cls.conditional else {}


def trained(cls, epochs=1):
    x, labels = data()
    model = small_model(cls)
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    history = model.fit(*fit_arguments(cls, x, labels), epochs=epochs, batch_size=32, verbose=0)
    return model, history.history


# --------------------------------------------------------------- the class itself
@pytest.mark.parametrize("name", NAMES)
def test_the_class_is_registered_documented_and_configured_completely(name):
    cls = MODELS[name]
    assert keras.saving.get_registered_object(keras.saving.get_registered_name(cls)) is cls
    assert keras.saving.get_registered_name(cls) == f"keras_vae>{cls.__name__}"
    assert ">>> " in (cls.__doc__ or ""), f"{cls.__name__}'s docstring has no runnable example"
    arguments = {
        parameter.name
        for parameter in list(inspect.signature(cls.__init__).parameters.values())[1:]
        if parameter.kind is not inspect.Parameter.VAR_KEYWORD
    }
    config = small_model(cls).get_config()
    assert arguments <= set(config), f"get_config lacks {sorted(arguments - set(config))}"


@pytest.mark.parametrize("name", NAMES)
def test_construction_builds_every_variable(name):
    model = small_model(MODELS[name])
    assert model.built
    assert model.data_shape == DATA_SHAPE and model.latent_shape == (2,)
    assert model.count_params() > 0
    # One tracker per loss term, logged after "loss" in that order.
    assert list(model.loss_term_trackers) == list(MODELS[name].loss_terms)
    assert [m.name for m in model.metrics] == list(MODELS[name].loss_terms)  # before compile


# --------------------------------------------------------------- fit / evaluate / predict
@pytest.mark.parametrize("name", NAMES)
def test_fit_lowers_the_loss_and_logs_each_loss_term(name):
    cls = MODELS[name]
    model, history = trained(cls, epochs=4)
    logged = {"loss", *cls.loss_terms}
    assert set(history) == logged
    assert all(np.all(np.isfinite(values)) for values in history.values())
    assert history["loss"][-1] < history["loss"][0]
    x, labels = data(seed=1)
    scores = model.evaluate(
        *fit_arguments(cls, x, labels), batch_size=32, verbose=0, return_dict=True
    )
    assert set(scores) == logged and all(np.isfinite(list(scores.values())))
    assert [m.name for m in model.metrics] == ["loss", *cls.loss_terms]


@pytest.mark.parametrize("name", NAMES)
def test_predict_is_the_deterministic_reconstruction(name):
    cls = MODELS[name]
    model, _ = trained(cls)
    x, labels = data(n=40, seed=2)
    predicted = model.predict(predict_inputs(cls, x, labels), batch_size=16, verbose=0)
    assert predicted.shape == x.shape
    again = model.predict(predict_inputs(cls, x, labels), batch_size=40, verbose=0)
    np.testing.assert_allclose(predicted, again, rtol=1e-5, atol=1e-6)
    reconstructed = model.reconstruct(x, **label_arguments(cls, labels))
    np.testing.assert_allclose(predicted, reconstructed, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------- saving
def _as_json(config):
    return json.loads(json.dumps(config))  # a loaded config holds lists where tuples were


@pytest.mark.parametrize("name", NAMES)
def test_a_saved_model_loads_in_safe_mode_and_resumes(name, tmp_path):
    cls = MODELS[name]
    model, _ = trained(cls)
    path = os.path.join(tmp_path, f"{name}.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)  # safe_mode=True, the default
    assert type(loaded) is cls
    assert _as_json(loaded.get_config()) == _as_json(model.get_config())
    for saved, restored in zip(model.weights, loaded.weights, strict=True):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(restored), keras.ops.convert_to_numpy(saved)
        )
    x, labels = data(n=32, seed=3)
    inputs = predict_inputs(cls, x, labels)
    np.testing.assert_allclose(
        loaded.predict(inputs, verbose=0), model.predict(inputs, verbose=0), rtol=1e-6, atol=1e-6
    )
    iterations = int(keras.ops.convert_to_numpy(loaded.optimizer.iterations))
    assert iterations == 3  # 96 examples in batches of 32
    loaded.fit(*fit_arguments(cls, x, labels), epochs=1, batch_size=16, verbose=0)
    assert int(keras.ops.convert_to_numpy(loaded.optimizer.iterations)) == iterations + 2


# ------------------------------------------------------------------------- export
@pytest.mark.slow  # from PyTorch a TensorFlow process writes it: 10-30 s per model
@pytest.mark.parametrize("name", NAMES)
def test_the_savedmodel_serves_the_reconstruction(name, tmp_path):
    from keras_vae.export import SAVED_MODEL_BACKENDS

    if BACKEND not in SAVED_MODEL_BACKENDS:
        pytest.skip(f"no SavedModel export from {BACKEND}")
    import tensorflow as tf

    cls = MODELS[name]
    model, _ = trained(cls)
    path = os.path.join(tmp_path, name, "1")
    model.export(path, verbose=False)
    serving = tf.saved_model.load(path).signatures["serving_default"]
    x, labels = data(n=8, seed=4)
    available = {"x": x, "labels": labels}
    _, signature = serving.structured_input_signature
    served = serving(**{name: tf.constant(available[name]) for name in signature})
    np.testing.assert_allclose(
        served["reconstruction"].numpy(),
        model.reconstruct(x, **label_arguments(cls, labels)),
        rtol=1e-5,
        atol=1e-5,
    )
