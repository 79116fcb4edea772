"""Tests for the `keras-vae` command line (keras_vae/cli/): flags, outputs and exit statuses.

Most tests call `cli.main([...])` in this process; a few run ``python -m keras_vae`` in a fresh
one (help, exit statuses, --backend). One tiny VAE run (512 examples, 1 epoch) is trained once
per module and shared. The data are the real Fashion-MNIST of Debian's package
``dataset-fashion-mnist`` when installed, else small IDX files written here (``--idx-dir``).
"""

import gzip
import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import ROOT

from keras_vae import cli, evaluation, runs

BACKEND = keras.backend.backend()
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
TINY = ["--epochs", "1", "--limit", "512", "--val-size", "256", "--batch-size", "64"]


def write_fake_fashion_mnist(directory):
    """Writes 1,200 train and 600 test 28x28 images in 10 classes as MNIST-format IDX files."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix, count in (("train", 1200), ("t10k", 600)):
        labels = (np.arange(count) % 10).astype(np.uint8)
        images = rng.integers(0, 60, (count, 28, 28)).astype(np.uint8)
        for index, label in enumerate(labels):  # a bright bar whose place is the class
            images[index, 2 + 2 * label : 6 + 2 * label, 4:24] = 230
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
            path = directory / f"{prefix}-{kind}-ubyte.gz"
            path.write_bytes(gzip.compress(header + array.tobytes(), compresslevel=1))
    return directory


@pytest.fixture(scope="module")
def data_flags(tmp_path_factory):
    """``[]`` with the real Fashion-MNIST installed, else ``["--idx-dir", DIR]``."""
    if (DEBIAN_FASHION_MNIST / "train-images-idx3-ubyte.gz").is_file():
        return []
    return ["--idx-dir", str(write_fake_fashion_mnist(tmp_path_factory.mktemp("idx")))]


def run_cli(args, capsys):
    """Runs `cli.main(args)` here; returns ``(exit status, stdout, stderr)``."""
    try:
        status = cli.main([str(arg) for arg in args])
    except SystemExit as exit_:  # argparse's own exits (usage errors, --help)
        status = exit_.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def takers(where, sep="/"):
    """The registered models satisfying ``where``, as the messages name them: ``vae/cvae``."""
    return sep.join(runs.model_names(where))


def assert_one_error_line(stderr, status, expected_status, *fragments):
    assert status == expected_status, stderr
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.startswith("keras-vae:")]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("keras-vae: error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory, data_flags):
    """A tiny VAE run folder (2-D latent, so the manifold picture is drawn too)."""
    out = tmp_path_factory.mktemp("runs") / "vae"
    args = ["train", "--model", "vae", "--arch", "mlp", "--hidden-units", "64", "--latent-dim"]
    status = cli.main([*args, "2", *TINY, "--sample-every", "1", "--out", str(out), *data_flags])
    assert status == 0
    return out


# ------------------------------------------------------------------------------------ train


@pytest.mark.slow
def test_train_writes_the_run_folder(vae_run):
    expected = [
        "config.json",
        "model.keras",
        "history.csv",
        "history.json",
        "metrics.json",
        "samples.png",
        "reconstructions.png",
        "latent_scatter.png",
        "latent_manifold.png",
        "loss_curves.png",
        "progress/samples_epoch_001.png",
    ]
    for name in expected:
        assert (vae_run / name).is_file(), name
    assert not (vae_run / "backup").exists()  # deleted once the run is complete
    assert (vae_run / "saved_model" / "saved_model.pb").is_file()  # on torch too (via TF)
    metrics = json.loads((vae_run / "metrics.json").read_text())
    assert {"loss", "reconstruction_loss", "kl_loss", "pixel_mse", "psnr_db"} <= set(metrics)
    assert metrics["num_examples"] == 512 and np.isfinite(metrics["loss"])
    history = json.loads((vae_run / "history.json").read_text())
    assert len(history["loss"]) == 1 and "val_loss" in history
    assert (vae_run / "history.csv").read_text().startswith("epoch,")
    config = json.loads((vae_run / "config.json").read_text())
    assert config["model"] == "vae" and config["latent_dim"] == 2 and config["backend"] == BACKEND
    assert config["splits"]["train"] == "train[:512]"
    assert config["steps_per_execution"] == "auto"


@pytest.mark.slow
def test_train_cvae_and_generate_by_label(tmp_path, data_flags, vae_run, capsys, monkeypatch):
    out = tmp_path / "cvae"
    base = ["train", "--model", "cvae", "--arch", "mlp", "--hidden-units", "64", "--no-export"]
    status, _, err = run_cli([*base, *TINY, "--out", out, *data_flags], capsys)
    assert status == 0, err
    assert (out / "class_conditional.png").is_file()
    assert not (out / "samples.png").exists()

    # A small reference classifier (the real one trains on all 60,000 images for 4 epochs).
    monkeypatch.setattr(evaluation, "CLASSIFIER_SPLIT", "train[:600]")
    monkeypatch.setattr(evaluation, "CLASSIFIER_EPOCHS", 1)
    evaluate = ["evaluate", out, "--limit", "100", "--num-samples", "5", "--samples-per-class", "3"]
    status, text, err = run_cli([*evaluate, *data_flags], capsys)
    assert status == 0, err
    assert "reference classifier: training" in text and "conditional_accuracy" in text
    assert (tmp_path / "reference_classifiers" / "fashion_mnist-28x28x1.keras").is_file()
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0 <= metrics["conditional_accuracy"] <= 1 and metrics["nll_given_labels"]
    per_class = metrics["conditional_accuracy_per_class"]
    assert len(per_class) == 10 and np.mean(per_class) == pytest.approx(
        metrics["conditional_accuracy"]
    )
    status, text, err = run_cli([*evaluate, "--json", *data_flags], capsys)
    assert status == 0 and "reference classifier" not in text + err  # cached: not retrained
    assert json.loads(text)["conditional_samples_per_class"] == 3

    status, _, err = run_cli(
        ["generate", out, "--n", "5", "--label", "3", "--out", tmp_path / "s.npy"], capsys
    )
    assert status == 0, err
    assert np.load(tmp_path / "s.npy").shape == (5, 28, 28, 1)
    status, _, err = run_cli(
        ["generate", out, "--label", "10", "--out", tmp_path / "s.png"], capsys
    )
    assert_one_error_line(err, status, 2, "--label must be in [0, 10)")
    status, _, err = run_cli(
        ["generate", vae_run, "--label", "1", "--out", tmp_path / "s.png"], capsys
    )
    assert_one_error_line(
        err, status, 2, f"--label needs a {takers(lambda c: c.conditional, ' or ')}"
    )


@pytest.mark.slow
def test_train_segnet_dae_draws_denoising(tmp_path, data_flags, capsys):
    out = tmp_path / "dae"
    args = ["train", "--model", "dae", "--arch", "segnet", "--filters", "8,16", "--no-export"]
    status, _, err = run_cli([*args, *TINY, "--out", out, *data_flags], capsys)
    assert status == 0, err
    for name in ("denoising.png", "reconstructions.png", "latent_scatter.png"):
        assert (out / name).is_file(), name
    status, _, err = run_cli(["generate", out, "--out", tmp_path / "s.png"], capsys)
    generative = takers(lambda c: c.generative, " or ")
    assert_one_error_line(err, status, 2, f"generate needs a {generative}")
    status, _, err = run_cli(["reconstruct", out, "--n", "4", "--out", tmp_path / "r.png"], capsys)
    assert status == 0, err
    assert (tmp_path / "r.png").is_file()


# ------------------------------------------------------------------ run folders and resuming
# (tests/test_resume.py kills real runs and resumes them)


@pytest.mark.slow
def test_train_refuses_a_completed_run_without_overwrite(vae_run, data_flags, capsys):
    args = ["train", "--model", "vae", "--hidden-units", "64", "--latent-dim", "2", *TINY]
    for extra in ([], ["--resume"]):
        status, _, err = run_cli([*args, *extra, "--out", vae_run, *data_flags], capsys)
        assert_one_error_line(err, status, 2, "holds a completed run", "--overwrite")


@pytest.mark.slow
def test_resume_refuses_other_settings_and_names_them(vae_run, tmp_path, data_flags, capsys):
    unfinished = tmp_path / "unfinished"
    (unfinished / "backup").mkdir(parents=True)  # as a run killed during its first epoch
    (unfinished / "config.json").write_text((vae_run / "config.json").read_text())
    args = ["train", "--model", "vae", "--hidden-units", "64,32", "--latent-dim", "3", *TINY]
    for extra in ([], ["--resume"]):
        status, _, err = run_cli([*args, *extra, "--out", unfinished, *data_flags], capsys)
        assert_one_error_line(
            err,
            status,
            2,
            "holds an unfinished run started with other settings",
            "--latent-dim 2 (this command: 3)",
            "--hidden-units 64 (this command: 64,32)",
            "--overwrite",
        )
        assert "--epochs" not in err and "--seed" not in err


def test_resume_needs_an_unfinished_run(tmp_path, data_flags, capsys):
    args = ["train", *TINY, "--resume", "--out", tmp_path / "new", *data_flags]
    status, _, err = run_cli(args, capsys)
    assert_one_error_line(err, status, 2, "--resume:", "holds no unfinished run")
    status, _, err = run_cli(["train", "--resume", "--overwrite", "--out", tmp_path], capsys)
    assert_one_error_line(err, status, 2, "not allowed with argument")


@pytest.mark.slow
def test_overwrite_trains_a_completed_run_afresh(tmp_path, data_flags, capsys):
    out = tmp_path / "ae"
    args = ["train", "--model", "ae", "--hidden-units", "32", "--no-plots", "--no-export", *TINY]
    status, _, err = run_cli([*args, "--out", out, *data_flags], capsys)
    assert status == 0, err
    first = (out / "model.keras").stat().st_mtime_ns
    status, _, err = run_cli(
        [*args, "--seed", "1", "--overwrite", "--out", out, *data_flags], capsys
    )
    assert status == 0, err
    assert (out / "model.keras").stat().st_mtime_ns > first and not (out / "backup").exists()
    assert json.loads((out / "config.json").read_text())["seed"] == 1
    assert (out / "history.csv").read_text().count("\n") == 2  # header and this run's epoch


def test_run_warnings_print_one_warning_line(capsys):
    import warnings

    from keras_vae import runs

    with cli._run_warnings_as_lines():
        for _ in range(2):  # shown each time, not once per place
            warnings.warn("skipped the pictures: no matplotlib", runs.RunWarning, stacklevel=1)
    err = capsys.readouterr().err
    assert err == "keras-vae: warning: skipped the pictures: no matplotlib\n" * 2


# ------------------------------------------------------------------ commands on a trained run


@pytest.mark.slow
def test_evaluate_prints_and_writes_the_likelihood(vae_run, tmp_path, capsys):
    run = tmp_path / "vae"
    shutil.copytree(vae_run, run)  # the shared run keeps its metrics.json
    trained = json.loads((run / "metrics.json").read_text())
    args = ["evaluate", run, "--limit", "200", "--num-samples", "50"]
    status, out, err = run_cli([*args, "--json"], capsys)
    assert status == 0, err
    metrics = json.loads(out)
    assert metrics["num_examples"] == 200 and metrics["split"] == "test[:200]"
    assert metrics["binarize"] == "dynamic" and metrics["nll_num_samples"] == 50
    # log p(x) >= ELBO on average, both in nats; the ELBO's KL is the loss's.
    assert np.isfinite(metrics["nll_nats"]) and metrics["nll_nats"] <= metrics["negative_elbo_nats"]
    assert metrics["negative_elbo_nats"] == pytest.approx(metrics["loss"], rel=0.02)
    assert sum(metrics["kl_per_dimension_nats"]) == pytest.approx(metrics["kl_loss"], rel=1e-4)
    assert 0 <= metrics["active_units"] <= 2 and np.isfinite(metrics["psnr_db"])
    written = json.loads((run / "metrics.json").read_text())
    assert written == {**trained, **metrics}  # merged: train_seconds stays

    args = ["evaluate", run, "--limit", "100", "--num-samples", "5", "--no-write"]
    status, out, err = run_cli(args, capsys)
    assert status == 0, err
    assert json.loads((run / "metrics.json").read_text()) == written
    assert "nll_nats" in out and "psnr_db" in out and "dynamically binarised" in out

    # Grey levels are no data of a Bernoulli likelihood: no NLL, and the output says why.
    grey = ["evaluate", run / "model.keras", "--limit", "100", "--binarize", "none"]
    status, out, err = run_cli(grey, capsys)
    assert status == 0, err
    assert "nll_nats" not in out and "nats per image" not in out
    assert "likelihood not reported: the run's images are grey levels (--binarize none)" in out
    assert "keras-vae: warning: metrics.json not updated: --binarize none" in err
    assert json.loads((run / "metrics.json").read_text()) == written


@pytest.mark.slow
def test_generate_png_and_npy(vae_run, tmp_path, capsys):
    status, _, err = run_cli(
        ["generate", vae_run, "--n", "10", "--out", tmp_path / "g.npy"], capsys
    )
    assert status == 0, err
    samples = np.load(tmp_path / "g.npy")
    assert samples.shape == (10, 28, 28, 1) and 0 <= samples.min() <= samples.max() <= 1
    status, _, err = run_cli(["generate", vae_run, "--out", tmp_path / "sub" / "g.png"], capsys)
    assert status == 0, err
    assert (tmp_path / "sub" / "g.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.slow
def test_reconstruct_png(vae_run, tmp_path, capsys):
    status, out, err = run_cli(
        ["reconstruct", vae_run, "--n", "6", "--out", tmp_path / "r.png"], capsys
    )
    assert status == 0, err
    assert (tmp_path / "r.png").is_file() and "6 reconstructions" in out


@pytest.mark.slow
def test_export_saved_model(vae_run, tmp_path, capsys):
    status, _, err = run_cli(["export", vae_run, "--out", tmp_path / "exported"], capsys)
    assert status == 0, err
    import tensorflow as tf

    served = tf.saved_model.load(str(tmp_path / "exported"))
    assert {"serving_default", "encode", "decode", "generate"} <= set(served.signatures)


# ------------------------------------------------------------------------------ usage errors


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["train", "--model", "gan", "--out", "x"], ["invalid choice: 'gan'"]),
        (["train", "--epochs", "0", "--out", "x"], ["--epochs", "positive integer"]),
        (["train", "--model", "vae", "--arch", "segnet", "--out", "x"], ["segnet is for"]),
        (
            ["train", "--model", "ae", "--beta", "2", "--out", "x"],
            [f"--beta applies to {takers(lambda c: runs.accepts(c, 'beta'))} only"],
        ),
        (
            ["train", "--model", "vae", "--model-option", "bogus=1", "--out", "x"],
            ["--model-option bogus: --model vae takes no option 'bogus' (its options: "],
        ),
        (
            ["train", "--model-option", "beta=2", "--out", "x"],
            ["--model-option beta: set by --beta"],
        ),
        (["train", "--model-option", "beta", "--out", "x"], ["expected NAME=VALUE"]),
        (
            [
                "train",
                "--model-option",
                "free_bits=1",
                "--model-option",
                "free_bits=2",
                "--out",
                "x",
            ],
            ["--model-option free_bits given twice"],
        ),
        (["evaluate", "run", "--num-samples", "0"], ["--num-samples", "positive integer"]),
        (["train", "--hidden-units", "a,b", "--out", "x"], ["comma-separated"]),
        (
            ["train", "--steps-per-execution", "0", "--out", "x"],
            ["--steps-per-execution", "'auto' or a positive integer"],
        ),
        (["generate", "run", "--out", "samples.jpg"], ["must end with .png or .npy"]),
        (["export", "run", "--out", "x", "--format", "zip"], ["invalid choice: 'zip'"]),
        ([], ["required"]),
    ],
)
def test_usage_errors_print_one_line_and_exit_2(args, fragments, capsys):
    status, _, err = run_cli(args, capsys)
    assert_one_error_line(err, status, 2, *fragments)


def test_missing_run_folder_exits_1(tmp_path, capsys):
    status, _, err = run_cli(["evaluate", tmp_path / "nowhere"], capsys)
    assert_one_error_line(err, status, 1, "no run folder or .keras file")
    (tmp_path / "empty_run").mkdir()
    status, _, err = run_cli(["generate", tmp_path / "empty_run", "--out", "x.png"], capsys)
    assert_one_error_line(err, status, 1, "has no model.keras")


def test_unknown_dataset_exits_1(tmp_path, capsys):
    args = ["train", "--dataset", "no_such_dataset", "--out", tmp_path / "run", "--no-download"]
    status, _, err = run_cli(args, capsys)
    assert_one_error_line(err, status, 1, "'no_such_dataset'", "was not found")


def test_missing_data_exits_1(tmp_path, monkeypatch, capsys):
    # mnist has a TFDS builder but is neither prepared in this empty data_dir nor in IDX files.
    monkeypatch.delenv("KERAS_VAE_DATA_DIR", raising=False)
    args = ["train", "--dataset", "mnist", "--data-dir", tmp_path, "--no-download"]
    status, _, err = run_cli([*args, "--out", tmp_path / "run", *TINY], capsys)
    assert_one_error_line(err, status, 1, "'mnist'", "--idx-dir")


# --------------------------------------------------------------------------- fresh processes


def run_module(args, timeout=300):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("KERAS_BACKEND", None)
    return subprocess.run(
        [sys.executable, "-m", "keras_vae", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=timeout,
    )


@pytest.mark.backend_independent
def test_module_help_and_exit_statuses(tmp_path):
    result = run_module(["train", "--help"])
    assert result.returncode == 0
    choices = "--model {" + ",".join(runs.model_names()) + "}"
    for text in (choices, "--backend", "examples:", "metrics.json", "--model-option"):
        assert text in result.stdout
    result = run_module(["train", "--binarize", "sometimes", "--out", tmp_path])
    assert_one_error_line(result.stderr, result.returncode, 2, "--binarize")


@pytest.mark.slow
@pytest.mark.backend_independent
def test_backend_flag_loads_the_run_on_another_backend(vae_run, tmp_path):
    other = "torch" if BACKEND != "torch" else "jax"
    out = tmp_path / "samples.npy"
    result = run_module(["generate", vae_run, "--n", "3", "--backend", other, "--out", out])
    assert result.returncode == 0, result.stderr[-3000:]
    assert np.load(out).shape == (3, 28, 28, 1)
