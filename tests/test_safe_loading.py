"""Crafted `.keras` files, loaded with keras_vae imported and `safe_mode` at its default.

Each file is a real small model saved by keras_vae whose ``config.json`` (or member list) an
attacker rewrote; each must be refused with an error that says what is wrong, before any code
from the file runs and before anything large is allocated.
"""

import json
import math
import tempfile
import zipfile

import keras
import numpy as np
import pytest

import keras_vae
from keras_vae import AE, CVAE, DAE, VAE, architectures
from keras_vae.layers import (
    ClassMeanPrior,
    KLDivergenceRegularizer,
    MaxPoolingWithArgmax2D,
    MaxUnpooling2D,
    Sampling,
    SubPixelConv2DTranspose,
)

NAN, INF = float("nan"), float("inf")
OS_SYSTEM = {"module": "os", "class_name": "function", "config": "system"}
UNSAFE = {
    "module": "keras.config",
    "class_name": "function",
    "config": "enable_unsafe_deserialization",
}


def _load(path):
    return keras.saving.load_model(path)  # safe_mode left at its default


def _craft(source, target, edit=None, extra_members=None):
    """Copies the `.keras` archive ``source`` to ``target``, ``edit`` applied to its config."""
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w") as crafted:
        for name in original.namelist():
            data = original.read(name)
            if name == "config.json" and edit is not None:
                config = json.loads(data)
                edit(config)
                data = json.dumps(config)  # writes NaN and Infinity as JSON's extensions do
            crafted.writestr(name, data)
        for name, data in (extra_members or {}).items():
            crafted.writestr(name, data)
    return target


def _set(*keys_and_value):
    *keys, value = keys_and_value

    def edit(config):
        for key in keys[:-1]:
            config = config[key]
        config[keys[-1]] = value

    return edit


def _encoder_layer(config, index=1):
    return config["config"]["encoder"]["config"]["layers"][index]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A saved VAE and CVAE, and a VAE whose encoder holds a Lambda that writes a marker."""
    directory = tmp_path_factory.mktemp("files")
    vae = VAE(*architectures.mlp((8,), 2, (8,)))
    vae.save(directory / "vae.keras")
    cvae = CVAE(*architectures.mlp((8,), 128, (8,)), num_classes=3)
    cvae.save(directory / "cvae.keras")

    marker = directory / "lambda_ran"
    # A lambda (a named function is saved by name only): saved as bytecode, run by unsafe loads.
    payload = eval(f"lambda t: [open({str(marker)!r}, 'w').close(), t][1]")
    encoder, decoder = architectures.mlp((8,), 2, (8,))
    inputs = keras.Input((8,))
    outputs = encoder(keras.layers.Lambda(payload, name="payload")(inputs))
    VAE(keras.Model(inputs, outputs), decoder).save(directory / "lambda.keras")
    marker.unlink(
        missing_ok=True
    )  # building the model traced the payload once; loading must not run it
    return {
        "vae": directory / "vae.keras",
        "cvae": directory / "cvae.keras",
        "lambda": directory / "lambda.keras",
        "marker": marker,
    }


def test_an_unaltered_copy_loads(files, tmp_path):
    loaded = _load(_craft(files["vae"], tmp_path / "copy.keras"))
    assert isinstance(loaded, VAE)
    original = _load(files["vae"])
    for a, b in zip(loaded.get_weights(), original.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_a_lambda_in_the_encoder_is_refused_and_never_runs(files):
    with pytest.raises(ValueError, match="deserialization of a `Lambda` layer"):
        _load(files["lambda"])
    assert not files["marker"].exists()


@pytest.mark.parametrize(
    "edit",
    [
        _set("config", "reconstruction_loss", {**OS_SYSTEM, "registered_name": "function"}),
        _set("config", "reconstruction_loss", {**OS_SYSTEM, "module": "builtins"}),
        lambda config: _encoder_layer(config)["config"].update(activation=OS_SYSTEM),
        lambda config: _encoder_layer(config).update(module="os", class_name="system"),
    ],
    ids=["loss", "loss-as-builtin", "activation", "layer"],
)
def test_a_config_naming_os_system_is_refused(files, tmp_path, edit):
    path = _craft(files["vae"], tmp_path / "crafted.keras", edit)
    with pytest.raises(TypeError, match="Could not locate (function|class) 'system'"):
        _load(path)


@pytest.mark.parametrize(
    "edit",
    [
        _set("config", "reconstruction_loss", UNSAFE),
        lambda config: _encoder_layer(config).update(
            module="keras.config", class_name="enable_unsafe_deserialization", config={}
        ),
    ],
    ids=["loss", "layer"],
)
def test_enable_unsafe_deserialization_is_refused_and_safe_mode_stays_on(files, tmp_path, edit):
    path = _craft(files["vae"], tmp_path / "crafted.keras", edit)
    with pytest.raises(ValueError, match="enable_unsafe_deserialization.*not a modeling"):
        _load(path)
    # Safe mode is still on: the Lambda file is still refused.
    with pytest.raises(ValueError, match="deserialization of a `Lambda` layer"):
        _load(files["lambda"])
    assert not files["marker"].exists()


def test_an_absurd_num_classes_is_refused_before_anything_is_allocated(
    files, tmp_path, monkeypatch
):
    built = []
    monkeypatch.setattr(ClassMeanPrior, "build", lambda self, shape=None: built.append(shape))
    path = _craft(
        files["cvae"], tmp_path / "crafted.keras", _set("config", "num_classes", 2 * 10**9)
    )
    with pytest.raises(
        ValueError, match=r"`num_classes` must be an int in \[2, 1000000\], received 2000000000"
    ) as error:
        _load(path)
    assert error.traceback[-1].path.name == "_config_checks.py"  # our check, not an allocator
    assert built == []  # the (num_classes, latent_dim) table was never built


def test_the_class_mean_table_is_bounded(files, tmp_path):
    # Each count is allowed on its own; together they ask for 128 million means.
    path = _craft(files["cvae"], tmp_path / "crafted.keras", _set("config", "num_classes", 10**6))
    with pytest.raises(ValueError, match=r"`num_classes \* latent_dim` must be at most 67108864"):
        _load(path)


@pytest.mark.parametrize(
    "name, value",
    [
        ("beta", NAN),
        ("beta", INF),
        ("beta", -1.0),
        ("free_bits", NAN),
        ("seed", -1),
        ("seed", 2**40),
        ("seed", True),
        ("from_logits", "false"),
    ],
)
def test_bad_hyperparameters_in_the_config_are_refused(files, tmp_path, name, value):
    path = _craft(files["vae"], tmp_path / "crafted.keras", _set("config", name, value))
    if isinstance(value, float) and math.isnan(value):
        with zipfile.ZipFile(path) as archive:
            assert f'"{name}": NaN' in archive.read("config.json").decode()
    with pytest.raises(ValueError, match=f"`{name}` must be .*, received {value!r}"):
        _load(path)


def test_a_member_outside_the_archive_is_not_written(files, tmp_path, monkeypatch):
    models, scratch = tmp_path / "models", tmp_path / "tmp"
    models.mkdir()
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where Keras extracts archives
    monkeypatch.chdir(models)
    members = {"../evil": "x", "assets/../../../evil": "x"}
    path = _craft(files["vae"], models / "crafted.keras", extra_members=members)
    with pytest.warns(UserWarning, match="Skipping invalid path during archive extraction"):
        loaded = _load(path)
    assert isinstance(loaded, VAE)
    assert [p for p in tmp_path.rglob("*") if p.name == "evil"] == []


# ------------------------------------------------- every layer and model bounds its numbers
FLOATS = [NAN, INF, -INF, -1.0, True, 1e300, "0.5", None]
INTS = [NAN, INF, -1, 0, True, 2 * 10**9, 1.5, "2", None]
PAIRS = [NAN, INF, -1, True, 10**9, (2, 10**9), (2.0, 2), (2, 2, 2), "2"]
SEEDS = [NAN, INF, -1, True, 2**31, 1.5, "0"]
BOOLS = [1, 0, "false", NAN, None]

# class, positional arguments ("networks" for an encoder and decoder), keyword arguments,
# and the bad values of each numeric argument.
TARGETS = [
    (Sampling, (), {}, {"seed": SEEDS}),
    (KLDivergenceRegularizer, (), {}, {"weight": FLOATS, "free_bits": FLOATS}),
    (
        ClassMeanPrior,
        (),
        {"num_classes": 3, "latent_dim": 2},
        {
            "num_classes": INTS,
            "latent_dim": INTS,
            "learn_variance": BOOLS,
            "log_variance_bound": [*FLOATS, 0.0, 31.0],
        },
    ),
    (MaxPoolingWithArgmax2D, (), {}, {"pool_size": PAIRS, "strides": PAIRS}),
    (MaxUnpooling2D, (), {}, {"pool_size": PAIRS, "strides": PAIRS, "output_size": PAIRS}),
    (
        SubPixelConv2DTranspose,
        (),
        {"filters": 4, "kernel_size": 3, "strides": 2, "padding": "same"},
        {
            "filters": INTS,
            "kernel_size": PAIRS,
            "strides": PAIRS,
            "dilation_rate": PAIRS,
            "output_padding": [NAN, -1, True, 10**9, (1, 10**9), (1.0, 1)],
        },
    ),
    (AE, "networks", {}, {"from_logits": BOOLS}),
    (keras_vae.AdversarialAE, "networks", {}, {"seed": SEEDS, "from_logits": BOOLS}),
    (
        keras_vae.ContractiveAE,
        "networks",
        {},
        {
            "contractive_weight": FLOATS,
            "jacobian": [NAN, INF, -1, 0, True, 2 * 10**9, 1.5, None],
            "seed": SEEDS,
            "from_logits": BOOLS,
        },
    ),
    (
        DAE,
        "networks",
        {},
        {
            "noise_stddev": FLOATS,
            "dropout_rate": [*FLOATS, 1.0],
            "seed": SEEDS,
            "from_logits": BOOLS,
        },
    ),
    (
        VAE,
        "networks",
        {},
        {"beta": FLOATS, "free_bits": FLOATS, "seed": SEEDS, "from_logits": BOOLS},
    ),
    (
        keras_vae.IWAE,
        "networks",
        {},
        {"num_samples": [*INTS, 5001], "seed": SEEDS, "from_logits": BOOLS},
    ),
    (
        CVAE,
        "networks",
        {"num_classes": 3},
        {
            "num_classes": [*INTS, 1],
            "condition_encoder": BOOLS,
            "condition_decoder": BOOLS,
            "learn_prior_variance": BOOLS,
            "beta": FLOATS,
            "free_bits": FLOATS,
            "seed": SEEDS,
            "from_logits": BOOLS,
        },
    ),
]
CASES = [
    pytest.param(cls, args, kwargs, name, bad, id=f"{cls.__name__}-{name}-{bad!r}")
    for cls, args, kwargs, bad_values in TARGETS
    for name, values in bad_values.items()
    for bad in values
]


@pytest.fixture(scope="module")
def networks():
    return architectures.mlp((4,), 2)


def test_every_layer_and_model_is_covered():
    modules = (keras_vae.layers, keras_vae.models)
    public = {
        name
        for module in modules
        for name in module.__all__
        if isinstance(getattr(module, name), type)
    }
    assert {cls.__name__ for cls, *_ in TARGETS} == public - {"BaseAutoencoder"}
    assert set(keras_vae.models.MODELS.values()) <= {cls for cls, *_ in TARGETS}


@pytest.mark.parametrize("cls, args, kwargs, name, bad", CASES)
def test_bad_numbers_are_refused_naming_the_argument(networks, cls, args, kwargs, name, bad):
    args = networks if args == "networks" else args
    with pytest.raises(ValueError, match=f"`{name}` must be .*received") as error:
        cls(*args, **{**kwargs, name: bad})
    assert error.traceback[-1].path.name == "_config_checks.py"


def test_the_documented_bounds_are_accepted(networks):
    codes = architectures.mlp((4,), 2, variational=False)
    assert Sampling(seed=2**31 - 1).seed == 2**31 - 1  # torch keeps seeds in int32
    assert Sampling(seed=np.int64(7)).get_config()["seed"] == 7  # a plain int: JSON can save it
    assert KLDivergenceRegularizer(weight=np.float32(0.5), free_bits=0).weight == 0.5
    prior = ClassMeanPrior(num_classes=1_000_000, latent_dim=64)  # 64 million means, not built
    assert not prior.built
    assert ClassMeanPrior(num_classes=1, latent_dim=65_536).latent_dim == 65_536
    assert MaxPoolingWithArgmax2D(pool_size=256, strides=(1, 256)).strides == (1, 256)
    assert MaxUnpooling2D(output_size=(8192, 8192)).output_size == (8192, 8192)
    layer = SubPixelConv2DTranspose(8, (1, 256), 2, "same", None, None, (1, 1))
    assert layer.kernel_size == (1, 256)
    dae = DAE(*codes, noise_stddev=0, dropout_rate=0.999, seed=0)
    assert (dae.noise_stddev, dae.dropout_rate) == (0.0, 0.999)
    vae = VAE(*networks, beta=1e6, free_bits=np.float64(0.5), from_logits=np.bool_(False))
    assert (vae.beta, vae.free_bits, vae.from_logits) == (1e6, 0.5, False)
    assert CVAE(*networks, num_classes=np.int32(10)).num_classes == 10


def test_a_subpixel_kernel_is_bounded_when_built():
    layer = SubPixelConv2DTranspose(65_536, 256, strides=2, padding="same")
    with pytest.raises(ValueError, match="`kernel_size\\[0\\] \\* kernel_size\\[1\\] \\* filters"):
        layer.build((None, 4, 4, 3))
    assert not layer.built
