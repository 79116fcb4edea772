"""Runs every script in examples/ with tiny settings and checks the pictures it writes.

Each example runs in a fresh process (its own backend for other_backends.py) on the real
Fashion-MNIST when Debian's ``dataset-fashion-mnist`` is installed, else on small IDX files
written here and found through ``KERAS_VAE_DATA_DIR``.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT
from test_cli import DEBIAN_FASHION_MNIST, write_fake_fashion_mnist

EXAMPLES = Path(ROOT) / "examples"
TINY = ["--epochs", "1", "--limit", "512"]

CASES = {
    "vae_fashion_mnist.py": (
        ["--latent-dim", "2"],
        ["samples.png", "reconstructions.png", "latent_scatter.png", "latent_manifold.png"],
    ),
    "cvae_conditional_generation.py": (
        [],
        ["class_conditional.png", "samples_per_class_mean.png", "latent_scatter.png"],
    ),
    "dae_denoising.py": ([], ["denoising.png", "noise_levels.png", "loss_curves.png"]),
    "adversarial_ae.py": ([], ["codes.png", "samples.png", "ae_samples.png", "loss_curves.png"]),
    "iwae_likelihood.py": ([], ["log_likelihood_by_k.png", "samples.png"]),
    "contractive_ae.py": ([], ["sensitivity.png", "noisy_reconstructions.png", "loss_curves.png"]),
    "conv_ae_unpooling.py": ([], ["reconstructions.png", "switches.png", "loss_curves.png"]),
    "dropin_layers.py": ([], ["samples.png", "reconstructions.png", "loss_curves.png"]),
    "other_backends.py": (["--backend", "jax"], ["samples.png", "loss_curves.png"]),
}


@pytest.fixture(scope="module")
def example_env(tmp_path_factory):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("KERAS_BACKEND", None)  # the examples run on Keras' default (or their flag)
    if not (DEBIAN_FASHION_MNIST / "train-images-idx3-ubyte.gz").is_file():
        env["KERAS_VAE_DATA_DIR"] = str(write_fake_fashion_mnist(tmp_path_factory.mktemp("idx")))
    return env


def test_every_example_is_tested_and_listed():
    scripts = sorted(path.name for path in EXAMPLES.glob("*.py"))
    assert scripts == sorted(CASES)
    readme = (EXAMPLES / "README.md").read_text()
    for script in scripts:
        assert f"examples/{script}" in readme, script


@pytest.mark.slow
@pytest.mark.backend_independent
@pytest.mark.parametrize("script", sorted(CASES))
def test_example_runs_and_writes_pictures(script, example_env, tmp_path):
    flags, pictures = CASES[script]
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *TINY, *flags, "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=example_env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    for name in pictures:
        assert (out / name).read_bytes().startswith(b"\x89PNG"), name
