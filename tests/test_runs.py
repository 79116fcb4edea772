"""Tests for keras_vae.runs: train / load / evaluate a run folder, and the model registry.

One tiny VAE run (256 examples, 1 epoch, a 32-unit MLP, no pictures or export) is trained once
per module and shared; generate/reconstruct and the registry tests use untrained models built
by `keras_vae.runs.models._build_model`. The data are Debian's Fashion-MNIST when installed,
else the small IDX files of tests/test_cli.py.
"""

import json
import math
import shutil
import warnings

import keras
import numpy as np
import pytest
from test_cli import DEBIAN_FASHION_MNIST, write_fake_fashion_mnist

from keras_vae import VAE, runs
from keras_vae.cli import build_parser
from keras_vae.models import MODELS
from keras_vae.runs.commands import _export
from keras_vae.runs.folder import _keep_csv_rows, _prepare_folder
from keras_vae.runs.models import _build_model
from keras_vae.runs.settings import _splits

TINY = {"epochs": 1, "limit": 256, "val_size": 128, "batch_size": 64, "hidden_units": (32,)}
QUIET = {"plots": False, "export": False, "verbose": 0, "report": None}


@pytest.fixture(scope="module")
def data_options(tmp_path_factory):
    """``{}`` with the real Fashion-MNIST installed, else ``{"idx_dir": DIR}``."""
    if (DEBIAN_FASHION_MNIST / "train-images-idx3-ubyte.gz").is_file():
        return {}
    return {"idx_dir": str(write_fake_fashion_mnist(tmp_path_factory.mktemp("idx")))}


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory, data_options):
    out = tmp_path_factory.mktemp("runs") / "vae"
    return runs.train(out, model="vae", latent_dim=2, **TINY, **QUIET, **data_options)


def settings_for(model, arch="mlp", **changes):
    """The config.json settings `_build_model` reads, for a 28x28x1 dataset."""
    hidden = list(runs.DEFAULT_HIDDEN_UNITS[arch][:1])
    base = {"model": model, "arch": arch, "latent_dim": 2, "hidden_units": hidden, "seed": 0}
    base.update(filters=[8, 16], beta=0.5, noise_stddev=0.25)
    return {**base, **changes}


def untrained_run(tmp_path, model, **changes):
    settings = settings_for(model, **changes)
    autoencoder = _build_model(settings, (28, 28, 1), 10)
    return runs.Run(tmp_path, tmp_path / "model.keras", autoencoder, settings)


# ------------------------------------------------------------------------------ train, load


@pytest.mark.slow
def test_train_returns_the_run_it_writes(vae_run, data_options):
    folder = vae_run.path
    for name in ("config.json", "model.keras", "history.csv", "history.json", "metrics.json"):
        assert (folder / name).is_file(), name
    assert not (folder / "backup").exists() and not (folder / "samples.png").exists()
    assert vae_run.settings == json.loads((folder / "config.json").read_text())
    assert vae_run.metrics == json.loads((folder / "metrics.json").read_text())
    assert vae_run.history == json.loads((folder / "history.json").read_text())
    assert len(vae_run.history["loss"]) == 1 and len(vae_run.history["val_loss"]) == 1
    total = 1200 if data_options else 60000  # the fake IDX files hold 1,200 training images
    assert vae_run.settings["splits"] == {
        "train": "train[:256]",
        "validation": f"train[{total - 128}:]",
        "test": "test[:256]",
    }
    metrics = vae_run.metrics
    assert metrics["num_examples"] == 256 and metrics["split"] == "test[:256]"
    assert metrics["loss"] == pytest.approx(metrics["reconstruction_loss"] + metrics["kl_loss"])
    # The mean of per-image PSNRs is at least the PSNR of the mean MSE (log is concave).
    assert metrics["psnr_db"] >= 10 * math.log10(1 / metrics["pixel_mse"])
    assert vae_run.settings["binarize"] == "dynamic" and vae_run.settings["model_options"] == {}


@pytest.mark.slow
def test_load_and_evaluate_give_the_trained_numbers(vae_run):
    loaded = runs.load(vae_run.path)
    assert type(loaded.model) is VAE and loaded.settings == vae_run.settings
    assert loaded.history == vae_run.history and loaded.metrics == vae_run.metrics
    for saved, trained in zip(loaded.model.weights, vae_run.model.weights):
        np.testing.assert_array_equal(saved.numpy(), trained.numpy())
    # The run's test split again, from the folder: the numbers train wrote to metrics.json
    # (the KL and the reconstructions of the posterior means exactly; the loss up to its one
    # draw of z per image).
    metrics = runs.evaluate(vae_run.path, split="test[:256]", num_samples=20)
    for name in ("kl_loss", "pixel_mse", "psnr_db"):
        assert metrics[name] == pytest.approx(vae_run.metrics[name], rel=1e-6), name
    assert metrics["loss"] == pytest.approx(vae_run.metrics["loss"], rel=1e-3)
    assert metrics["split"] == "test[:256]" and metrics["num_examples"] == 256
    first = runs.evaluate(loaded, limit=100, num_samples=2)
    assert first["split"] == "test[:100]" and first["num_examples"] == 100
    assert runs.load(vae_run.model_file).settings == vae_run.settings  # a .keras file works too


@pytest.mark.slow
def test_a_completed_run_needs_overwrite(vae_run, tmp_path, data_options):
    with pytest.raises(runs.SettingsError, match="holds a completed run"):
        runs.train(vae_run.path, model="vae", latent_dim=2, **TINY, **QUIET, **data_options)
    with pytest.raises(runs.SettingsError, match="exclude each other"):
        runs.train(tmp_path, resume=True, overwrite=True, **TINY, **QUIET, **data_options)


@pytest.mark.slow
def test_evaluate_writes_the_run_metrics_only_for_the_run_data(vae_run, tmp_path):
    run = runs.load(shutil.copytree(vae_run.path, tmp_path / "vae"))
    lines = []
    metrics = runs.evaluate(run, limit=64, num_samples=10, seed=3, write=True, report=lines.append)
    assert lines == [f"wrote {run.path / runs.METRICS_FILE}"]
    written = json.loads((run.path / runs.METRICS_FILE).read_text())
    assert written == run.metrics == {**vae_run.metrics, **metrics}
    assert written["train_seconds"] == vae_run.metrics["train_seconds"]
    assert metrics["nll_nats"] <= metrics["negative_elbo_nats"] and metrics["split"] == "test[:64]"
    again = runs.evaluate(run, limit=64, num_samples=10, seed=3)
    assert again["nll_nats"] == pytest.approx(metrics["nll_nats"], rel=1e-5)  # seeded
    with pytest.warns(runs.RunWarning, match="metrics.json not updated: --binarize static"):
        static = runs.evaluate(run, limit=64, num_samples=2, binarize="static", write=True)
    assert static["binarize"] == "static" and "nll_nats" in static
    assert json.loads((run.path / runs.METRICS_FILE).read_text()) == written


def test_load_refuses_what_is_not_a_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="no run folder or .keras file"):
        runs.load(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="has no model.keras"):
        runs.load(tmp_path)
    (tmp_path / "notes.txt").write_text("")
    with pytest.raises(runs.SettingsError, match="expected a run folder or a .keras file"):
        runs.load(tmp_path / "notes.txt")


# ------------------------------------------------------------------------ settings checks


def takers(where, sep="/"):
    return sep.join(runs.model_names(where))


WITH_BETA = takers(lambda cls: runs.accepts(cls, "beta"))
WITH_NOISE = takers(lambda cls: runs.accepts(cls, "noise_stddev"))
SEGNET = takers(lambda cls: runs.fits_arch(cls, "segnet"), " or ")


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"model": "gan"}, f"unknown --model 'gan'; choose one of {', '.join(MODELS)}"),
        ({"model": "ae", "beta": 2.0}, f"--beta applies to {WITH_BETA} only, not --model ae"),
        ({"model": "ae", "beta": 0.0}, f"--beta applies to {WITH_BETA} only"),
        ({"model": "dae", "kl_warmup": 3}, f"--kl-warmup applies to {WITH_BETA} only"),
        ({"model": "vae", "noise_stddev": 0.1}, f"--noise-stddev applies to {WITH_NOISE} only"),
        ({"model": "cvae", "arch": "segnet"}, f"--arch segnet is for --model {SEGNET} only"),
        ({"model_options": {"bogus": 1}}, "--model-option bogus: --model vae takes no option"),
        ({"model_options": {"seed": 1}}, "--model-option seed: set by --seed"),
        ({"model_options": {"free_bits": {1, 2}}}, "--model-option free_bits: the value must be"),
        ({"arch": "mlp", "filters": (8,)}, "--filters applies to --arch conv or segnet only"),
        ({"arch": "conv", "hidden_units": (8, 8)}, "--arch conv takes one --hidden-units"),
        ({"epochs": 0}, "--epochs must be a positive integer"),
        ({"learning_rate": 0.0}, "--learning-rate must be > 0"),
        ({"binarize": "sometimes"}, "--binarize must be one of none, static, dynamic"),
    ],
)
def test_settings_that_cannot_work_are_refused_before_any_data(settings, message, tmp_path):
    with pytest.raises(runs.SettingsError) as error:
        runs.train(tmp_path / "run", dataset="no_such_dataset", **QUIET, **settings)
    assert message in str(error.value)
    assert not (tmp_path / "run").exists()


def test_splits_hold_out_the_end_of_the_train_split():
    sizes = {"train": 60000, "test": 10000}
    assert _splits(sizes, None, 5000) == {
        "train": "train[:55000]",
        "validation": "train[55000:]",
        "test": "test",
    }
    assert _splits(sizes, 512, 256) == {
        "train": "train[:512]",
        "validation": "train[59744:]",
        "test": "test[:512]",
    }
    assert _splits({}, 100, 5000) == {
        "train": "train[:100]",
        "validation": "train[-100:]",
        "test": "test[:100]",
    }
    with pytest.raises(runs.SettingsError, match="--val-size 60000 leaves no training"):
        _splits(sizes, None, 60000)


# ------------------------------------------------------------------------ the run folder


def test_prepare_folder_names_the_settings_that_differ(tmp_path):
    saved = {"latent_dim": 2, "hidden_units": [64], "epochs": 3, "data_dir": "a"}
    (tmp_path / "backup").mkdir()
    (tmp_path / "config.json").write_text(json.dumps(saved))
    assert _prepare_folder(tmp_path, dict(saved, data_dir="b"), False, False) is True
    changed = dict(saved, latent_dim=3, hidden_units=[64, 32])
    with pytest.raises(runs.SettingsError) as error:
        _prepare_folder(tmp_path, changed, resume=True, overwrite=False)
    message = str(error.value)
    assert "--latent-dim 2 (this command: 3)" in message
    assert "--hidden-units 64 (this command: 64,32)" in message and "--epochs" not in message
    assert _prepare_folder(tmp_path, changed, resume=False, overwrite=True) is False
    assert not (tmp_path / "backup").exists()
    with pytest.raises(runs.SettingsError, match="--resume: .* holds no unfinished run"):
        _prepare_folder(tmp_path, changed, resume=True, overwrite=False)


def test_keep_csv_rows_drops_repeated_and_cut_rows(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("epoch,loss\n0,3.0\n1,2.0\n2,1.5\n3,1.")
    _keep_csv_rows(path, 2)  # the backup holds 2 epochs: rows 2 and 3 come again
    assert path.read_text() == "epoch,loss\n0,3.0\n1,2.0\n"
    path.write_text("epoch,loss\n0,3.0\n1")  # a row cut inside its epoch number
    _keep_csv_rows(path, 1)
    assert path.read_text() == "epoch,loss\n0,3.0\n"


# ------------------------------------------------------------------------ the registry


class TiedVAE(VAE):
    """A model registered by a user: takes a seed but neither beta nor reconstruction_loss."""

    def __init__(self, encoder, decoder, seed=None, **kwargs):
        super().__init__(encoder, decoder, seed=seed, **kwargs)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("ae", {"reconstruction_loss": "bernoulli"}),
        ("dae", {"noise_stddev": 0.25, "seed": 0, "reconstruction_loss": "bernoulli"}),
        ("vae", {"beta": 0.5, "seed": 0, "reconstruction_loss": "bernoulli"}),
        ("cvae", {"beta": 0.5, "num_classes": 10, "condition_encoder": True}),
    ],
)
def test_build_model_passes_the_options_the_class_takes(name, expected, tmp_path):
    model = untrained_run(tmp_path, name).model
    assert type(model) is MODELS[name]
    config = model.get_config()
    for option, value in expected.items():
        assert config[option] == value, option
    assert len(model.encoder.outputs) == MODELS[name].num_latent_outputs


def test_model_options_reach_the_model_and_its_refusals_name_them(tmp_path):
    model = untrained_run(tmp_path, "vae", model_options={"free_bits": 0.5}).model
    assert model.free_bits == 0.5 and model.beta == 0.5  # beyond the flags' options
    dae = untrained_run(tmp_path, "dae", model_options={"noise": "dropout"}).model
    assert dae.noise == "dropout" and dae.noise_stddev == 0.25
    with pytest.raises(runs.SettingsError, match="--model-option free_bits: .*free_bits"):
        untrained_run(tmp_path, "vae", model_options={"free_bits": -1.0})
    assert runs.option_names(MODELS["vae"]) == ("reconstruction_loss", "from_logits", "free_bits")


def test_a_registered_model_is_built_and_offered_without_cli_changes(monkeypatch, tmp_path):
    monkeypatch.setitem(MODELS, "tied", TiedVAE)
    model = untrained_run(tmp_path, "tied", seed=7).model
    assert type(model) is TiedVAE and model.seed == 7 and model.beta == 1.0
    assert "tied" in runs.model_names(lambda cls: cls.generative)
    args = build_parser().parse_args(["train", "--model", "tied", "--out", "x"])
    assert args.model == "tied"
    with pytest.raises(runs.SettingsError, match=f"--beta applies to {WITH_BETA} only"):
        runs.train(tmp_path, model="tied", beta=2.0, **QUIET)


# ------------------------------------------------------------------ generate and reconstruct


def test_generate_one_row_per_class_or_the_label_asked(tmp_path):
    run = untrained_run(tmp_path, "cvae")
    rows = runs.generate(run, 12, seed=3, path=tmp_path / "grid.png")
    labels = np.repeat(np.arange(10), 2)[:12].astype("int32")  # ceil(12 / 10) = 2 per class
    np.testing.assert_allclose(rows, run.model.generate(labels, seed=3), rtol=1e-6)
    assert (tmp_path / "grid.png").read_bytes().startswith(b"\x89PNG")
    dresses = runs.generate(run, 4, label=3, seed=3, path=tmp_path / "dresses.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "dresses.npy"), dresses)
    np.testing.assert_allclose(dresses, run.model.generate(np.full(4, 3), seed=3), rtol=1e-6)
    with pytest.raises(runs.SettingsError, match=r"--label must be in \[0, 10\), got 10"):
        runs.generate(run, 4, label=10)


def test_generate_asks_the_model_whether_it_can(tmp_path):
    vae = untrained_run(tmp_path, "vae")
    samples = runs.generate(vae, 5, seed=1)
    assert samples.shape == (5, 28, 28, 1) and 0 <= samples.min() <= samples.max() <= 1
    conditional = takers(lambda cls: cls.conditional, " or ")
    with pytest.raises(runs.SettingsError, match=f"--label needs a {conditional}; .* holds a VAE"):
        runs.generate(vae, 5, label=1)
    generative = takers(lambda cls: cls.generative, " or ")
    with pytest.raises(runs.SettingsError, match=f"generate needs a {generative}; .* holds a AE"):
        runs.generate(untrained_run(tmp_path, "ae"), 5)
    with pytest.raises(runs.SettingsError, match="must end with .png or .npy"):
        runs.generate(tmp_path / "no_such_run", 5, path=tmp_path / "samples.jpg")


def test_reconstruct_shows_a_denoising_model_its_noise(tmp_path, data_options):
    settings = {"dataset": "fashion_mnist", **data_options}
    dae = untrained_run(tmp_path, "dae", **settings)
    result = runs.reconstruct(dae, 3, seed=5, path=tmp_path / "r.npy")
    np.testing.assert_allclose(result.noisy, dae.model.corrupt(result.inputs, seed=5), rtol=1e-6)
    expected = dae.model.reconstruct(result.noisy)
    np.testing.assert_allclose(result.reconstructions, expected, rtol=1e-5)
    np.testing.assert_array_equal(np.load(tmp_path / "r.npy"), result.reconstructions)
    vae = untrained_run(tmp_path, "vae", **settings)
    plain = runs.reconstruct(vae, 3, path=tmp_path / "r.png")
    assert plain.noisy is None and plain.reconstructions.shape == (3, 28, 28, 1)
    np.testing.assert_allclose(plain.reconstructions, vae.model.reconstruct(plain.inputs))


# ------------------------------------------------------------------------------- warnings


class RefusingExport:
    def export(self, *args, **kwargs):
        raise NotImplementedError("no SavedModel on this backend")


def test_a_skipped_export_warns_and_a_required_one_raises(tmp_path):
    backend = keras.backend.backend()
    with pytest.warns(runs.RunWarning, match=f"skipped the SavedModel export on the {backend}"):
        _export(RefusingExport(), tmp_path / "saved_model", "tf_saved_model", False, print)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="export failed .* no SavedModel on this backend"):
            _export(RefusingExport(), tmp_path / "saved_model", "tf_saved_model", True, print)
