"""Serving exports of the keras_vae models: TensorFlow SavedModel and ONNX.

`export_model` (also reachable as ``model.export(filepath)``) writes a
TensorFlow SavedModel whose named signatures a serving system (TensorFlow
Serving, ``tf.saved_model.load``, a TFLite/TF.js converter) can call without
keras_vae or Keras installed:

| signature         | model                | inputs                          | outputs                 |
| ----------------- | -------------------- | ------------------------------- | ----------------------- |
| `serving_default` | all                  | `x` (+ `labels` *)              | `reconstruction`        |
| `encode`          | VAE, CVAE            | `x` (+ `labels` **)             | `z_mean`, `z_log_var`   |
| `encode`          | AE, DAE              | `x`                             | `code`                  |
| `decode`          | all but SegNet-style | `z` (+ `labels` ***)            | `x`                     |
| `generate`        | VAE                  | `eps`                           | `x`                     |
| `generate`        | CVAE                 | `labels`, `eps`                 | `x`                     |

\\* a CVAE with ``condition_encoder`` or ``condition_decoder``; \\*\\* with
``condition_encoder``; \\*\\*\\* with ``condition_decoder``.

Every input has a dynamic batch dimension: ``x`` is float32
``(batch, *data_shape)`` in data space (``[0, 1]`` images for a Bernoulli
likelihood), ``z`` and ``eps`` are float32 ``(batch, *latent_shape)``,
``labels`` are int32 ``(batch,)`` class indices. Outputs are float32 and in
data space (probabilities for a Bernoulli decoder, the mean otherwise), the
same values as the model's `reconstruct`, `encode` and `decode`. Nothing
inside a signature is random: ``generate`` decodes ``eps`` (VAE) or
``class_mean[labels] + eps`` (CVAE) with standard-normal ``eps`` drawn by
the caller, so a request gives the same answer every time.

A SegNet-style model (whose decoder also needs the encoder's pooling
indices, `keras_vae.architectures.segnet`) exports ``serving_default`` and
``encode`` only: a bare latent cannot be decoded.

Bad input is refused with a Python exception (an error response from
TensorFlow Serving), never a crash: a tensor of the wrong shape, rank or
dtype, or inputs with different batch sizes, raise ``InvalidArgumentError``
inside the graph (exports from TensorFlow check shapes with
``tf.ensure_shape``: some kernels abort the process on a wrong rank; JAX
exports are checked by ``XlaCallModule``); a NumPy array of the wrong shape
raises ``TypeError`` when the arguments are bound (NumPy arrays of another
dtype are converted, as ``tf.constant`` would). Labels outside
``[0, num_classes)`` raise ``InvalidArgumentError`` in exports made with the
TensorFlow backend, and give NaN outputs for those rows in exports made with
the JAX backend (JAX code cannot raise at run time).

Each model states these endpoints itself (`BaseAutoencoder.serving_endpoints`:
plain functions of tensors and their input specs); this module only writes
them out. SavedModel export works from every backend: TensorFlow directly,
JAX through ``jax2tf``, and PyTorch (where Keras writes no SavedModel with
named signatures) by saving the model to a temporary ``.keras`` file that a
fresh Python process with ``KERAS_BACKEND=tensorflow`` loads and exports, the
same signatures and numbers (see `keras_vae.backends.torch.export_saved_model`).
``format="onnx"`` writes the ``serving_default`` computation as an ONNX graph
through Keras' own ONNX exporter (``tf2onnx`` on TensorFlow, ``jax2onnx`` on
JAX, ``torch.onnx`` on PyTorch).

Example:

```python
import numpy as np
import tensorflow as tf
from keras_vae import VAE, architectures

vae = VAE(*architectures.mlp((28, 28, 1), latent_dim=2, hidden_units=(32,)))
vae.export("/tmp/vae/1", verbose=False)  # "1": TensorFlow Serving's version folder

served = tf.saved_model.load("/tmp/vae/1")
eps = np.random.default_rng(0).standard_normal((4, 2)).astype("float32")
images = served.signatures["generate"](eps=eps)["x"]  # (4, 28, 28, 1)
```
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable

import keras

from keras_vae import backends

__all__ = ["FORMATS", "SAVED_MODEL_BACKENDS", "export_model", "serving_endpoints"]

FORMATS = ("tf_saved_model", "onnx")
"""The values of ``export_model(format=...)``."""

SAVED_MODEL_BACKENDS = ("tensorflow", "jax", "torch")
"""Keras backends that can write a SavedModel with several named signatures (PyTorch through
a TensorFlow process)."""

_ONNX_CONVERTERS = {"tensorflow": "tf2onnx", "jax": "jax2onnx", "torch": "onnx"}


def serving_endpoints(model) -> dict[str, tuple[Callable, list]]:
    """The signatures `export_model` writes, as ``{name: (fn, input_signature)}``.

    The model's own `serving_endpoints` (``fn`` takes the inputs in the order
    of ``input_signature``, a list of named `keras.InputSpec`, and returns a
    dict of float32 tensors; the first entry is ``"serving_default"``), each
    ``fn`` refusing at run time inputs whose shapes do not match (the
    backend's way). Use it to add the same endpoints to your own
    `keras.export.ExportArchive`, or to see what an export will hold.

    Args:
        model: a keras_vae model (`AE`, `DAE`, `VAE`, `CVAE` or a subclass of
            `BaseAutoencoder`).

    Returns:
        dict from signature name to ``(fn, input_signature)``.

    Example:

    >>> from keras_vae import CVAE, architectures
    >>> encoder, decoder = architectures.mlp((8,), latent_dim=2, num_classes=3)
    >>> cvae = CVAE(encoder, decoder, num_classes=3, condition_encoder=True,
    ...             condition_decoder=True)
    >>> for name, (fn, specs) in serving_endpoints(cvae).items():
    ...     print(name, [spec.name for spec in specs])
    serving_default ['x', 'labels']
    encode ['x', 'labels']
    decode ['z', 'labels']
    generate ['labels', 'eps']
    """
    _check_model(model)
    return {
        name: (backends.serving_input_checks(fn, specs), specs)
        for name, (fn, specs) in model.serving_endpoints().items()
    }


def export_model(
    model,
    filepath: str | os.PathLike,
    format: str = "tf_saved_model",
    verbose: bool = True,
    **kwargs,
) -> None:
    """Writes a model for serving: a SavedModel with named signatures, or ONNX.

    ``model.export(filepath, format=..., verbose=...)`` calls this. The
    signatures, their input names and output keys are listed in this
    module's docstring; `serving_endpoints` returns them.

    Args:
        model: a keras_vae model (`AE`, `DAE`, `VAE`, `CVAE`).
        filepath: output directory (``"tf_saved_model"``) or file
            (``"onnx"``). For TensorFlow Serving, end it with a version
            folder: ``models/vae/1``.
        format: ``"tf_saved_model"`` (every backend) or ``"onnx"`` (the
            ``serving_default`` computation only; inputs named ``x`` and, for a
            conditioned CVAE, ``labels``).
        verbose: print the written endpoints.
        **kwargs: passed to `keras.export.ExportArchive.add_endpoint` for a
            SavedModel (on JAX e.g. ``jax2tf_kwargs={"native_serialization_platforms":
            ("cpu", "cuda")}`` to serve the same file on CPU and GPU; from PyTorch
            they must be JSON values), or to `keras.Model.export` for ONNX (e.g.
            ``opset_version=17``).

    Raises:
        ValueError: unknown ``format``, or a model that cannot be built.
        TypeError: ``model`` is not a keras_vae model.
        RuntimeError: from PyTorch, the TensorFlow process that writes the
            SavedModel failed (the message ends with its error output).
        ImportError: the ONNX converter of the backend is missing.

    Example:

    >>> import tempfile
    >>> import numpy as np
    >>> import tensorflow as tf
    >>> from keras_vae import AE, architectures
    >>> model = AE(*architectures.mlp((8,), latent_dim=2, variational=False))
    >>> path = tempfile.mkdtemp() + "/ae/1"
    >>> export_model(model, path, verbose=False)
    >>> served = tf.saved_model.load(path)
    >>> sorted(served.signatures)
    ['decode', 'encode', 'serving_default']
    >>> served.signatures["encode"](x=np.zeros((3, 8), "float32"))["code"].shape
    TensorShape([3, 2])
    """
    if format not in FORMATS:
        raise ValueError(f"`format` must be one of {FORMATS}, received format={format!r}")
    _check_model(model)
    if format == "onnx":
        _export_onnx(model, filepath, verbose, **kwargs)
        return
    # In this process on TensorFlow and JAX; from PyTorch in a TensorFlow process.
    backends.export_saved_model(
        model, os.fspath(filepath), _write_saved_model, verbose=verbose, **kwargs
    )


# ------------------------------------------------------------------------------ helpers
def _check_model(model):
    if not callable(getattr(model, "serving_endpoints", None)) or not callable(
        getattr(model, "serving_layers", None)
    ):
        raise TypeError(
            "export_model() exports keras_vae models (AE, DAE, VAE, CVAE: models that state "
            f"their serving_endpoints()); received {type(model).__name__}. Use "
            "keras.Model.export for other models."
        )
    model.serving_endpoints()  # builds the model, or raises a ValueError saying why it cannot


def _write_saved_model(model, filepath, verbose=True, **kwargs):
    """Writes the SavedModel in this process (the TensorFlow and JAX backends)."""
    archive = keras.export.ExportArchive()
    if backends.EXPORT_TRACKS_LAYERS:
        # Only the layers that hold the serving weights, not the model itself: on TensorFlow
        # tracking a model traces Keras' default `model(x)` signature, which a CVAE that
        # needs labels cannot run.
        for layer in model.serving_layers():
            archive.track(layer)
    for name, (fn, input_signature) in serving_endpoints(model).items():
        archive.add_endpoint(name, fn, input_signature=input_signature, **kwargs)
    archive.write_out(os.fspath(filepath), verbose=verbose)


def _export_onnx(model, filepath, verbose, **kwargs):
    backend = keras.backend.backend()
    converter = _ONNX_CONVERTERS.get(backend)
    if converter is None or importlib.util.find_spec(converter) is None:
        raise ImportError(
            f"ONNX export from the {backend!r} backend needs the `{converter}` package "
            f"(pip install {converter}); the TensorFlow backend needs `tf2onnx`, JAX "
            "`jax2onnx` and PyTorch `onnx`."
        )
    # A functional model of the same computation gives Keras' exporter named inputs and
    # outputs; label range checks cannot be expressed there.
    fn, input_signature = model.serving_endpoints(check_labels=False)["serving_default"]
    inputs = [
        keras.Input(shape=spec.shape[1:], dtype=spec.dtype, name=spec.name)
        for spec in input_signature
    ]
    wrapper = keras.Model(inputs, fn(*inputs), name=f"{model.name}_serving")
    filepath = os.fspath(filepath)
    try:
        keras.Model.export(
            wrapper, filepath, format="onnx", verbose=verbose, input_signature=[inputs], **kwargs
        )
    except RuntimeError as error:
        if backend != "torch":
            raise
        raise RuntimeError(
            "ONNX export from the torch backend failed. Keras' torch exporter needs every "
            "variable of the encoder and decoder to have a distinct path (two layers named "
            "'dense_0', one in each, collide); export from KERAS_BACKEND=tensorflow instead "
            f"(model.save(...), reload, export). Torch said: {error}"
        ) from error
    _finish_onnx(filepath, "reconstruction")


def _finish_onnx(filepath, output_name):
    """Names the graph's output and refuses a graph that ONNX cannot run."""
    import onnx

    graph_proto = onnx.load(filepath)
    graph = graph_proto.graph
    if len(graph.output) == 1 and graph.output[0].name != output_name:
        old_name = graph.output[0].name
        for node in graph.node:
            node.output[:] = [output_name if n == old_name else n for n in node.output]
            node.input[:] = [output_name if n == old_name else n for n in node.input]
        graph.output[0].name = output_name
        onnx.save(graph_proto, filepath)
    try:
        onnx.checker.check_model(filepath, full_check=True)
    except onnx.checker.ValidationError as error:
        os.remove(filepath)
        raise ValueError(
            f"The ONNX converter wrote an invalid graph for {output_name!r}, so nothing was "
            "saved (for example, SegNet-style MaxPoolingWithArgmax2D uses bit operations that "
            f"ONNX lacks); use the SavedModel format. ONNX said: {error}"
        ) from error
