"""Tests for keras_vae.export: SavedModel signatures served by a fresh TensorFlow process, ONNX.

Each model kind is trained for one epoch on tiny random data and exported with the backend
this pytest runs on (TensorFlow under ``make test``); meanwhile a subprocess with
``KERAS_BACKEND=jax`` exports two more (untrained: the export path is what it tests). A
second subprocess that imports only TensorFlow and NumPy, as a server would, loads every
export, calls every signature, then bad inputs, and writes what it saw; the tests compare that
with the Keras models' own ``reconstruct``/``encode``/``decode``/``generate``.
"""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from keras_vae import AE, CVAE, DAE, VAE, architectures, export
from keras_vae.models.base import standard_normal

BACKEND = keras.backend.backend()
NUM_CLASSES = 3
BATCH = 5
TOLERANCE = {"rtol": 1e-5, "atol": 1e-5}
JAX_MODELS = ("cvae_cond", "dae_conv")

# name -> (signature -> input names, in order); the contract documented in keras_vae.export.
EXPECTED_SIGNATURES = {
    "ae": {"serving_default": ["x"], "encode": ["x"], "decode": ["z"]},
    "dae_conv": {"serving_default": ["x"], "encode": ["x"], "decode": ["z"]},
    "vae": {"serving_default": ["x"], "encode": ["x"], "decode": ["z"], "generate": ["eps"]},
    "cvae": {
        "serving_default": ["x"],
        "encode": ["x"],
        "decode": ["z"],
        "generate": ["labels", "eps"],
    },
    "cvae_cond": {
        "serving_default": ["x", "labels"],
        "encode": ["x", "labels"],
        "decode": ["z", "labels"],
        "generate": ["labels", "eps"],
    },
    "cvae_decoder": {
        "serving_default": ["x", "labels"],
        "encode": ["x"],
        "decode": ["z", "labels"],
        "generate": ["labels", "eps"],
    },
    "segnet": {"serving_default": ["x"], "encode": ["x"]},
}
OUTPUT_KEYS = {
    "serving_default": ["reconstruction"],
    "encode": ["z_mean", "z_log_var"],
    "decode": ["x"],
    "generate": ["x"],
}


# ------------------------------------------------------------------------- models and cases
def make_model(name, train=True):
    """A tiny model of each kind, trained for one epoch on random data."""
    mlp = {"latent_dim": 3, "hidden_units": (16,)}
    conv = {"latent_dim": 3, "filters": (4,), "hidden_units": 8}
    if name == "ae":
        model = AE(*architectures.mlp((8,), variational=False, **mlp))
    elif name == "dae_conv":
        model = DAE(*architectures.conv((8, 8, 1), variational=False, **conv), seed=0)
    elif name == "vae":
        model = VAE(*architectures.mlp((8,), **mlp), seed=0)
    elif name == "cvae":
        model = CVAE(*architectures.mlp((8,), **mlp), num_classes=NUM_CLASSES, seed=0)
    elif name == "cvae_cond":
        pair = architectures.mlp((8,), num_classes=NUM_CLASSES, **mlp)
        model = CVAE(*pair, NUM_CLASSES, condition_encoder=True, condition_decoder=True, seed=0)
    elif name == "cvae_decoder":
        encoder, _ = architectures.mlp((8,), **mlp)
        _, decoder = architectures.mlp((8,), num_classes=NUM_CLASSES, **mlp)
        model = CVAE(encoder, decoder, NUM_CLASSES, condition_decoder=True, seed=0)
    elif name == "segnet":
        model = AE(*architectures.segnet((8, 8, 1), latent_dim=3, filters=(4,)))
    else:
        raise ValueError(name)
    if not train:
        return model
    rng = np.random.default_rng(1)
    x = rng.random((32, *model.data_shape)).astype("float32")
    # Two steps: on TensorFlow, tracing the train step would cost more than running it.
    model.compile(optimizer="adam", run_eagerly=keras.backend.backend() == "tensorflow")
    if isinstance(model, CVAE):
        model.fit(x, np.arange(32) % NUM_CLASSES, batch_size=16, epochs=1, verbose=0)
    else:
        model.fit(x, batch_size=16, epochs=1, verbose=0)
    return model


def case(name, model):
    """Fixed inputs of every signature and the Keras model's answers to them."""
    rng = np.random.default_rng(2)
    x = rng.random((BATCH, *model.data_shape)).astype("float32")
    labels = (np.arange(BATCH) % NUM_CLASSES).astype("int32")
    z = rng.standard_normal((BATCH, *model.latent_shape)).astype("float32")
    eps = standard_normal((BATCH, *model.latent_shape), seed=7)
    values = {"x": x, "labels": labels, "z": z, "eps": eps}
    signatures = EXPECTED_SIGNATURES[name]
    inputs = {sig: {key: values[key] for key in keys} for sig, keys in signatures.items()}

    def with_labels(sig, method, first):
        return method(first, labels) if "labels" in signatures[sig] else method(first)

    if isinstance(model, CVAE):  # its reconstruct() always takes labels
        reconstruction = model.reconstruct(x, labels)
    else:
        reconstruction = model.reconstruct(x)
    expected = {"serving_default": {"reconstruction": reconstruction}}
    codes = with_labels("encode", model.encode, x)
    if isinstance(codes, tuple):
        expected["encode"] = {"z_mean": codes[0], "z_log_var": codes[1]}
    else:
        expected["encode"] = {"code": codes}
    if "decode" in signatures:
        expected["decode"] = {"x": with_labels("decode", model.decode, z)}
    if isinstance(model, CVAE):  # generate(labels, seed) decodes class_mean + the same eps
        expected["generate"] = {"x": model.generate(labels, seed=7)}
        np.testing.assert_allclose(
            expected["generate"]["x"],
            model.decode(model.class_means()[labels] + eps, labels),
            **TOLERANCE,
        )
    elif "generate" in signatures:
        expected["generate"] = {"x": model.generate(BATCH, seed=7)}
        np.testing.assert_allclose(expected["generate"]["x"], model.decode(eps), **TOLERANCE)
    return inputs, expected


def export_cases(models, out_dir, tag):
    """Exports ``{name: (model, inputs, expected)}`` to ``out_dir/<tag>_<name>``.

    Writes ``<tag>_manifest.json`` (paths and signature inputs) and ``<tag>_arrays.npz``
    (the inputs and the Keras model's outputs) for the serving process.
    """
    manifest, arrays = {}, {}
    for name, (model, inputs, expected) in models.items():
        key = f"{tag}_{name}"
        path = os.path.join(out_dir, key)
        model.export(path, verbose=False)
        manifest[key] = {
            "path": path,
            "backend": keras.backend.backend(),
            "signatures": {sig: list(values) for sig, values in inputs.items()},
        }
        for sig, values in inputs.items():
            arrays.update({f"{key}/{sig}/in/{k}": v for k, v in values.items()})
        for sig, values in expected.items():
            arrays.update({f"{key}/{sig}/out/{k}": v for k, v in values.items()})
    with open(os.path.join(out_dir, f"{tag}_manifest.json"), "w") as file:
        json.dump(manifest, file)
    np.savez(os.path.join(out_dir, f"{tag}_arrays.npz"), **arrays)


def make_cases(names, train=True):
    models = {}
    for name in names:
        model = make_model(name, train=train)
        models[name] = (model, *case(name, model))
    return models


# Runs in a fresh process that imports only TensorFlow and NumPy: what a server sees.
SERVE_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    import numpy as np
    import tensorflow as tf

    out_dir = sys.argv[1]
    manifest, arrays = {}, {}
    for tag in sys.argv[2:]:
        manifest.update(json.load(open(os.path.join(out_dir, tag + "_manifest.json"))))
        arrays.update(np.load(os.path.join(out_dir, tag + "_arrays.npz")))
    outputs, report = {}, {}

    def attempt(fn, **inputs):
        try:
            result = fn(**inputs)
        except Exception as error:  # what a server would turn into an error response
            return {"error": type(error).__name__, "message": str(error)[:300]}
        rows = [np.isnan(v.numpy()).reshape(len(v), -1).any(axis=1) for v in result.values()]
        return {"nan_rows": [np.flatnonzero(r).tolist() for r in rows]}

    for key, entry in manifest.items():
        loaded = tf.saved_model.load(entry["path"])
        info = report[key] = {"signatures": {}, "bad": {}}
        for sig, names in entry["signatures"].items():
            fn = loaded.signatures[sig]
            feed = {n: tf.constant(arrays[f"{key}/{sig}/in/{n}"]) for n in names}
            specs = fn.structured_input_signature[1]
            result = fn(**feed)
            info["signatures"][sig] = {
                "inputs": {n: [s.dtype.name, list(s.shape)] for n, s in specs.items()},
                "outputs": {n: [t.dtype.name, list(t.shape)] for n, t in
                            fn.structured_outputs.items()},
            }
            outputs.update({f"{key}/{sig}/out/{n}": t.numpy() for n, t in result.items()})
            if sig == "generate" and "labels" in names:  # a class that does not exist
                labels = np.zeros(feed["eps"].shape[0], "int32")
                labels[1] = 99
                info["bad"]["labels_out_of_range"] = attempt(fn, **dict(feed, labels=labels))
        fn = loaded.signatures["serving_default"]
        feed = {n: tf.constant(arrays[f"{key}/serving_default/in/{n}"])
                for n in entry["signatures"]["serving_default"]}
        x = feed["x"]
        # Raw tensors, as a server feeds them: checked inside the graph.
        info["bad"]["wrong_shape"] = attempt(fn, **dict(feed, x=x[..., None]))
        info["bad"]["missing_batch_dim"] = attempt(fn, **dict(feed, x=x[0]))
        info["bad"]["wrong_dtype"] = attempt(fn, **dict(feed, x=tf.cast(x, tf.float64)))
        # NumPy arrays, as a Python caller passes them: checked when binding the arguments.
        info["bad"]["numpy_wrong_shape"] = attempt(fn, **dict(feed, x=x.numpy()[..., None]))
        if "labels" in feed:
            labels = feed["labels"]
            info["bad"]["labels_int64"] = attempt(fn, **dict(feed, labels=tf.cast(labels,
                                                                                  tf.int64)))
            info["bad"]["labels_2d"] = attempt(fn, **dict(feed, labels=labels[:, None]))
            info["bad"]["batch_mismatch"] = attempt(fn, **dict(feed, labels=labels[:-1]))
            info["bad"]["missing_labels"] = attempt(fn, x=x)
        info["bad"]["after_errors"] = attempt(fn, **feed)  # still serving
    np.savez(os.path.join(out_dir, "served.npz"), **outputs)
    report["_imported_keras_vae"] = "keras_vae" in sys.modules
    json.dump(report, open(os.path.join(out_dir, "served.json"), "w"))
    """
)

JAX_SCRIPT = textwrap.dedent(
    """
    import importlib.util, sys
    spec = importlib.util.spec_from_file_location("export_cases", sys.argv[1])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # Untrained: training adds nothing to the export path and costs JAX compilations.
    module.export_cases(module.make_cases(sys.argv[3].split(","), train=False), sys.argv[2], "jax")
    """
)


def _env(**extra):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="", **extra)
    env.pop("PYTHONPATH", None)
    return env


def _start(args, executable=sys.executable, **env):
    return subprocess.Popen(
        [executable, *args],
        env=_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(process, timeout=300):
    stdout, stderr = process.communicate(timeout=timeout)
    assert process.returncode == 0, f"{process.args[:2]} failed:\n{stderr[-3000:]}"
    return stdout


@pytest.fixture(scope="module")
def trained():
    """Every model kind, trained for one epoch here, with its signature inputs and answers."""
    return make_cases(EXPECTED_SIGNATURES)


@pytest.fixture(scope="module")
def served(request, tmp_path_factory):
    """Exports every model here and on JAX, then serves all of them from a fresh process."""
    if BACKEND not in export.SAVED_MODEL_BACKENDS:
        pytest.skip(f"SavedModel export needs one of {export.SAVED_MODEL_BACKENDS}")
    trained = request.getfixturevalue("trained")
    out_dir = str(tmp_path_factory.mktemp("exports"))
    tags = [BACKEND]
    jax_process = None
    if BACKEND != "jax" and importlib.util.find_spec("jax") is not None:
        jax_process = _start(
            ["-c", JAX_SCRIPT, __file__, out_dir, ",".join(JAX_MODELS)],
            KERAS_BACKEND="jax",
            JAX_PLATFORMS="cpu",
        )
    export_cases(trained, out_dir, BACKEND)
    # saved_model_cli, a TensorFlow import of its own, runs while JAX exports.
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    cli_process = None
    if os.path.exists(cli):
        path = os.path.join(out_dir, f"{BACKEND}_cvae_cond")
        cli_process = _start(["show", "--all", "--dir", path], executable=cli)
    if jax_process is not None:
        _finish(jax_process)
        tags.append("jax")
    script = os.path.join(out_dir, "serve.py")
    with open(script, "w") as file:
        file.write(SERVE_SCRIPT)
    _finish(_start([script, out_dir, *tags]))
    manifest, expected = {}, {}
    for tag in tags:
        with open(os.path.join(out_dir, f"{tag}_manifest.json")) as file:
            manifest.update(json.load(file))
        expected.update(np.load(os.path.join(out_dir, f"{tag}_arrays.npz")))
    with open(os.path.join(out_dir, "served.json")) as file:
        report = json.load(file)
    return {
        "manifest": manifest,
        "expected": expected,
        "report": report,
        "outputs": dict(np.load(os.path.join(out_dir, "served.npz"))),
        "saved_model_cli": _finish(cli_process) if cli_process else None,
    }


def _keys(served):
    return sorted(served["manifest"])


# --------------------------------------------------------------------------------- SavedModel
@pytest.mark.slow
def test_every_backend_exported(served):
    keys = _keys(served)
    assert [k for k in keys if k.startswith(f"{BACKEND}_")] == sorted(
        f"{BACKEND}_{name}" for name in EXPECTED_SIGNATURES
    )
    if BACKEND == "tensorflow" and importlib.util.find_spec("jax") is not None:
        assert {f"jax_{name}" for name in JAX_MODELS} <= set(keys)
    assert served["report"]["_imported_keras_vae"] is False


@pytest.mark.slow
def test_signatures_have_named_inputs_and_stable_outputs(served):
    for key in _keys(served):
        name = key.split("_", 1)[1]
        signatures = served["report"][key]["signatures"]
        assert sorted(signatures) == sorted(EXPECTED_SIGNATURES[name]), key
        for sig, seen in signatures.items():
            assert sorted(seen["inputs"]) == sorted(EXPECTED_SIGNATURES[name][sig]), (key, sig)
            for input_name, (dtype, shape) in seen["inputs"].items():
                assert shape[0] is None, (key, sig, input_name)  # dynamic batch
                assert dtype == ("int32" if input_name == "labels" else "float32")
            outputs = OUTPUT_KEYS[sig]
            if sig == "encode" and name in ("ae", "dae_conv", "segnet"):
                outputs = ["code"]
            assert sorted(seen["outputs"]) == sorted(outputs), (key, sig)
            assert all(dtype == "float32" for dtype, _ in seen["outputs"].values())


@pytest.mark.slow
def test_served_outputs_match_keras(served):
    expected, outputs = served["expected"], served["outputs"]
    compared = 0
    for key in _keys(served):
        prefix = f"{key}/"
        wanted = {k: v for k, v in expected.items() if k.startswith(prefix) and "/out/" in k}
        assert wanted, key
        for name, value in wanted.items():
            np.testing.assert_allclose(outputs[name], value, err_msg=name, **TOLERANCE)
            compared += 1
    assert compared >= 25


@pytest.mark.slow
def test_data_space_outputs(served):
    """Bernoulli models serve probabilities; generate decodes in data space too."""
    for key in _keys(served):
        if "vae" not in key:
            continue
        for sig in ("serving_default", "decode", "generate"):
            for name, value in served["outputs"].items():
                if name.startswith(f"{key}/{sig}/"):
                    assert value.min() >= 0.0 and value.max() <= 1.0, name


@pytest.mark.slow
def test_bad_inputs_are_python_errors(served):
    """Wrong shapes and dtypes raise in the serving process, which keeps serving."""
    for key in _keys(served):
        bad = served["report"][key]["bad"]
        exported_by = served["manifest"][key]["backend"]
        for name in ("wrong_shape", "missing_batch_dim", "wrong_dtype"):
            assert bad[name].get("error") == "InvalidArgumentError", (key, name, bad[name])
        if exported_by == "tensorflow":
            assert "is not compatible with expected shape" in bad["wrong_shape"]["message"]
            assert "is not compatible with expected shape" in bad["missing_batch_dim"]["message"]
        assert "expected to be a float tensor" in bad["wrong_dtype"]["message"]
        assert bad["numpy_wrong_shape"].get("error") == "TypeError", (key, bad)
        assert "Can not cast TensorSpec" in bad["numpy_wrong_shape"]["message"]
        if "labels_2d" in bad:
            for name in ("labels_int64", "labels_2d", "batch_mismatch"):
                assert bad[name].get("error") == "InvalidArgumentError", (key, name, bad[name])
            if exported_by == "tensorflow":
                assert "must have the same batch size" in bad["batch_mismatch"]["message"]
            assert bad["missing_labels"].get("error") == "TypeError"
            assert "labels" in bad["missing_labels"]["message"]
        assert "error" not in bad["after_errors"], key  # the process keeps serving


@pytest.mark.slow
def test_labels_outside_the_classes(served):
    for key in _keys(served):
        if "cvae" not in key:
            continue
        seen = served["report"][key]["bad"]["labels_out_of_range"]
        if served["manifest"][key]["backend"] == "tensorflow":
            assert seen["error"] == "InvalidArgumentError", seen
            assert f"labels must be class indices in [0, {NUM_CLASSES})" in seen["message"]
        else:  # JAX cannot raise at run time: the bad row is NaN, the others are served
            assert "error" not in seen, seen
            assert seen["nan_rows"] == [[1]], seen


@pytest.mark.slow
def test_saved_model_cli_lists_signatures(served):
    text = served["saved_model_cli"]
    if text is None:
        pytest.skip("saved_model_cli is not installed beside this Python")
    for sig in ("serving_default", "encode", "decode", "generate"):
        assert f"signature_def['{sig}']" in text
    for name in ("x", "labels", "z", "eps"):
        assert f"inputs['{name}'] tensor_info" in text
    for name in ("reconstruction", "z_mean", "z_log_var", "x"):
        assert f"outputs['{name}'] tensor_info" in text
    assert "keras_tensor" not in text and "inputs['input" not in text
    assert "shape: (-1)\n" in text and "shape: (-1, 8)" in text
    assert "DT_INT32" in text


# ------------------------------------------------------------------------------ ONNX
@pytest.mark.slow
@pytest.mark.skipif(BACKEND != "tensorflow", reason="ONNX through tf2onnx is tested on TensorFlow")
@pytest.mark.skipif(
    importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("tf2onnx") is None,
    reason="onnxruntime and tf2onnx are not installed",
)
@pytest.mark.parametrize("name", ["vae", "cvae_cond", "dae_conv"])
def test_onnx_serving_default(trained, tmp_path, name):
    import onnxruntime

    model, inputs, expected = trained[name]
    path = str(tmp_path / f"{name}.onnx")
    model.export(path, format="onnx", verbose=False)
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    feed = inputs["serving_default"]
    assert [i.name for i in session.get_inputs()] == list(feed)
    assert [o.name for o in session.get_outputs()] == ["reconstruction"]
    (reconstruction,) = session.run(None, feed)
    np.testing.assert_allclose(
        reconstruction, expected["serving_default"]["reconstruction"], **TOLERANCE
    )
    (more,) = session.run(None, {k: np.concatenate([v, v]) for k, v in feed.items()})
    assert more.shape[0] == 2 * BATCH  # dynamic batch


@pytest.mark.skipif(
    BACKEND != "tensorflow" or importlib.util.find_spec("tf2onnx") is None,
    reason="ONNX through tf2onnx is tested on TensorFlow",
)
def test_onnx_refuses_an_invalid_graph(tmp_path):
    model = AE(*architectures.segnet((8, 8, 1), latent_dim=3, filters=(4,)))
    path = tmp_path / "segnet.onnx"
    with pytest.raises(ValueError, match="invalid graph"):
        model.export(path, format="onnx", verbose=False)
    assert not path.exists()


# ------------------------------------------------------------------------- API and errors
@pytest.mark.parametrize("name", sorted(EXPECTED_SIGNATURES))
def test_serving_endpoints(name):
    model = {
        "ae": lambda: AE(*architectures.mlp((8,), 3, (4,), variational=False)),
        "dae_conv": lambda: DAE(*architectures.conv((8, 8, 1), 3, (4,), variational=False)),
        "vae": lambda: VAE(*architectures.mlp((8,), 3, (4,))),
        "cvae": lambda: CVAE(*architectures.mlp((8,), 3, (4,)), num_classes=NUM_CLASSES),
        "cvae_cond": lambda: CVAE(
            *architectures.mlp((8,), 3, (4,), num_classes=NUM_CLASSES),
            NUM_CLASSES,
            condition_encoder=True,
            condition_decoder=True,
        ),
        "cvae_decoder": lambda: CVAE(
            architectures.mlp((8,), 3, (4,))[0],
            architectures.mlp((8,), 3, (4,), num_classes=NUM_CLASSES)[1],
            NUM_CLASSES,
            condition_decoder=True,
        ),
        "segnet": lambda: AE(*architectures.segnet((8, 8, 1), latent_dim=3, filters=(4,))),
    }[name]()
    endpoints = export.serving_endpoints(model)
    assert list(endpoints)[0] == "serving_default"
    seen = {sig: [spec.name for spec in specs] for sig, (_, specs) in endpoints.items()}
    assert seen == EXPECTED_SIGNATURES[name]
    for _, specs in endpoints.values():
        for spec in specs:
            assert spec.shape[0] is None
            assert spec.dtype == ("int32" if spec.name == "labels" else "float32")


def test_export_rejects_other_models_and_formats(tmp_path):
    plain = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    with pytest.raises(TypeError, match="keras_vae models"):
        export.export_model(plain, tmp_path / "plain")
    model = AE(*architectures.mlp((8,), 3, (4,), variational=False))
    with pytest.raises(ValueError, match="format"):
        model.export(tmp_path / "ae", format="tflite")


def test_export_knows_no_model_class():
    """export.py writes what a model states: it imports no model and calls no private method."""
    import ast

    tree = ast.parse(open(export.__file__).read())
    imported = [
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    ]
    assert not [name for name in imported if name and name.startswith("keras_vae.models")]
    private = [
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "model"
        and node.attr.startswith("_")
    ]
    assert private == []
    assert "isinstance" not in open(export.__file__).read()


def test_a_model_with_its_own_endpoint_exports_it(tmp_path):
    """A subclass that states one more endpoint gets it served, with nothing added to export."""
    import tensorflow as tf

    class ScaledAE(AE):
        def serving_endpoints(self, check_labels=True):
            endpoints = super().serving_endpoints(check_labels)
            decode, specs = endpoints["decode"]

            def decode_doubled(z):
                return {"x": decode(z)["x"] * 2.0}

            endpoints["decode_doubled"] = (decode_doubled, specs)
            return endpoints

    model = ScaledAE(*architectures.mlp((8,), 3, (4,), variational=False))
    z = np.random.default_rng(0).standard_normal((4, 3)).astype("float32")
    model.export(tmp_path / "ae", verbose=False)
    served = tf.saved_model.load(str(tmp_path / "ae"))
    assert sorted(served.signatures) == ["decode", "decode_doubled", "encode", "serving_default"]
    np.testing.assert_allclose(
        served.signatures["decode_doubled"](z=z)["x"].numpy(), 2.0 * model.decode(z), **TOLERANCE
    )
    # The unchecked endpoints run on symbolic inputs (the ONNX path builds on them).
    fn, specs = model.serving_endpoints(check_labels=False)["serving_default"]
    outputs = fn(*[keras.Input(spec.shape[1:], dtype=spec.dtype) for spec in specs])
    assert tuple(outputs["reconstruction"].shape) == (None, 8)
