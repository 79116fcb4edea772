"""``model.export`` on the backend this pytest runs on: the same SavedModel from every backend.

On TensorFlow and JAX the export is written in this process; on PyTorch a fresh Python process
with ``KERAS_BACKEND=tensorflow`` writes it from a temporary ``.keras`` copy of the model. The
served signatures must give the Keras model's own numbers (to 1e-5) and refuse bad labels as
an export from TensorFlow does (JAX: NaN rows). tests/test_export.py checks the whole contract
on TensorFlow.
"""

import keras
import numpy as np
import pytest
from conftest import BACKEND

from keras_vae import CVAE, DAE, architectures
from keras_vae.models.base import standard_normal

tf = pytest.importorskip("tensorflow")

TOLERANCE = {"rtol": 1e-5, "atol": 1e-5}
NUM_CLASSES = 3


@keras.saving.register_keras_serializable(package="test_export_backends")
class Scale(keras.layers.Layer):
    """A custom layer the exporting process must import (registered here, in this module)."""

    def __init__(self, factor=1.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = float(factor)

    def call(self, inputs):
        return inputs * self.factor

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


class Unregistered(Scale):
    """Not registered: a process that loads the saved model cannot find it."""


def _trained(model, *labels):
    x = np.random.default_rng(1).random((32, *model.data_shape)).astype("float32")
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    model.fit(x, *labels, batch_size=16, epochs=1, verbose=0)
    return model


def _with_scaled_input(encoder, layer):
    inputs = keras.Input(encoder.inputs[0].shape[1:])
    return keras.Model(inputs, encoder(layer(inputs)))


def _call(served, signature, **inputs):
    fn = served.signatures[signature]
    return {k: v.numpy() for k, v in fn(**{k: tf.constant(v) for k, v in inputs.items()}).items()}


@pytest.mark.slow
def test_conditioned_cvae_exports_the_same_signatures_and_numbers(tmp_path):
    pair = architectures.mlp((8,), latent_dim=3, hidden_units=(16,), num_classes=NUM_CLASSES)
    model = CVAE(*pair, NUM_CLASSES, condition_encoder=True, condition_decoder=True, seed=0)
    labels = (np.arange(5) % NUM_CLASSES).astype("int32")
    _trained(model, np.arange(32) % NUM_CLASSES)
    path = str(tmp_path / "cvae" / "1")
    model.export(path, verbose=False)

    served = tf.saved_model.load(path)
    assert sorted(served.signatures) == ["decode", "encode", "generate", "serving_default"]
    inputs = {
        name: sorted(served.signatures[name].structured_input_signature[1])
        for name in served.signatures
    }
    assert inputs == {
        "serving_default": ["labels", "x"],
        "encode": ["labels", "x"],
        "decode": ["labels", "z"],
        "generate": ["eps", "labels"],
    }
    rng = np.random.default_rng(2)
    x = rng.random((5, 8)).astype("float32")
    z = rng.standard_normal((5, 3)).astype("float32")
    eps = standard_normal((5, 3), seed=7)
    z_mean, z_log_var = model.encode(x, labels)
    expected = {
        "serving_default": (
            {"x": x, "labels": labels},
            {"reconstruction": model.reconstruct(x, labels)},
        ),
        "encode": ({"x": x, "labels": labels}, {"z_mean": z_mean, "z_log_var": z_log_var}),
        "decode": ({"z": z, "labels": labels}, {"x": model.decode(z, labels)}),
        "generate": ({"labels": labels, "eps": eps}, {"x": model.generate(labels, seed=7)}),
    }
    for signature, (feed, outputs) in expected.items():
        got = _call(served, signature, **feed)
        assert sorted(got) == sorted(outputs), signature
        for name, value in outputs.items():
            assert got[name].dtype == np.float32
            np.testing.assert_allclose(got[name], value, err_msg=signature, **TOLERANCE)

    bad = labels.copy()
    bad[1] = 99
    if BACKEND == "jax":  # compiled JAX code cannot raise: that row is NaN
        images = _call(served, "generate", labels=bad, eps=eps)["x"]
        assert np.flatnonzero(np.isnan(images).any(axis=1)).tolist() == [1]
    else:  # written by TensorFlow, from the TensorFlow and the torch backends alike
        with pytest.raises(tf.errors.InvalidArgumentError, match="labels must be class indices"):
            _call(served, "generate", labels=bad, eps=eps)


@pytest.mark.slow
def test_conv_dae_with_a_registered_custom_layer_exports(tmp_path, capsys):
    encoder, decoder = architectures.conv(
        (8, 8, 1), latent_dim=3, filters=(4,), hidden_units=8, variational=False
    )
    model = DAE(_with_scaled_input(encoder, Scale(0.5)), decoder, seed=0)
    _trained(model)
    path = str(tmp_path / "dae" / "1")
    model.export(path)  # verbose: the endpoints are listed, from whichever process wrote them
    assert "serving_default" in capsys.readouterr().out

    served = tf.saved_model.load(path)
    assert sorted(served.signatures) == ["decode", "encode", "serving_default"]
    x = np.random.default_rng(3).random((4, 8, 8, 1)).astype("float32")
    np.testing.assert_allclose(
        _call(served, "serving_default", x=x)["reconstruction"], model.reconstruct(x), **TOLERANCE
    )
    code = _call(served, "encode", x=x)["code"]
    np.testing.assert_allclose(code, model.encode(x), **TOLERANCE)
    np.testing.assert_allclose(
        _call(served, "decode", z=code)["x"], model.decode(code), **TOLERANCE
    )


@pytest.mark.slow
@pytest.mark.skipif(BACKEND != "torch", reason="only a torch export runs in another process")
def test_a_failed_export_process_says_why(tmp_path):
    encoder, decoder = architectures.mlp((8,), latent_dim=2, hidden_units=(4,), variational=False)
    model = DAE(_with_scaled_input(encoder, Unregistered(2.0)), decoder)
    path = tmp_path / "dae" / "1"
    with pytest.raises(RuntimeError, match="KERAS_BACKEND=tensorflow") as error:
        model.export(path, verbose=False)
    assert "Could not locate class 'Unregistered'" in str(error.value)  # the process's stderr
    assert not path.exists()


@pytest.mark.skipif(BACKEND != "torch", reason="only a torch export passes keyword arguments on")
def test_torch_export_refuses_keyword_arguments_that_are_not_json(tmp_path):
    model = DAE(*architectures.mlp((8,), latent_dim=2, hidden_units=(4,), variational=False))
    with pytest.raises(TypeError, match="must be JSON values"):
        model.export(tmp_path / "dae", verbose=False, options=object())
