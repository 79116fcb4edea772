"""Resumable `keras-vae train`: a run killed with a real SIGKILL and restarted with the same
command ends exactly as an uninterrupted run with the same seed.

Every test starts real processes (``python -m keras_vae train``), kills one with SIGKILL and
compares the restarted run folder with an uninterrupted run's: the weights in model.keras,
history.json, history.csv and metrics.json (but its train_seconds).

Tolerance: none, on TensorFlow and on JAX (measured: every weight array equal bit for bit). The
restarted process runs the same compiled step (TensorFlow: the same 32-batch loop; JAX: the
same XLA program) on the same batches, in the same order, from a restored state that is
bit-identical (float32 weights and Adam moments, int64 step count and seed-generator states,
all stored as they are), and the CPU kernels are deterministic for a given thread count, so
nothing can round differently. On a GPU, kernels with non-deterministic reductions would need a
tolerance (or TF's enable_op_determinism).
"""

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.backend_independent]

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
EPOCHS = 3
TRAIN = [
    *("--model", "vae", "--hidden-units", "256", "--latent-dim", "8", "--seed", "3"),
    *("--limit", "2048", "--val-size", "512", "--batch-size", "64", "--epochs", str(EPOCHS)),
    *("--no-plots", "--no-export", "--verbose", "2"),
]
# TensorFlow: dynamic binarisation (epoch-keyed draws) at 32 batches per call; JAX: per-batch
# KL warm-up, whose weight is half-annealed when the kill comes.
EXTRA = {"tensorflow": ["--binarize", "dynamic"], "jax": ["--kl-warmup", "2"]}
WAIT_S = 120


@pytest.fixture(scope="module")
def data_flags(tmp_path_factory):
    if (DEBIAN_FASHION_MNIST / "train-images-idx3-ubyte.gz").is_file():
        return []
    from test_cli import write_fake_fashion_mnist

    return ["--idx-dir", str(write_fake_fashion_mnist(tmp_path_factory.mktemp("idx")))]


def environment():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("KERAS_BACKEND", None)  # --backend chooses
    return env


def train_command(out, backend, data_flags):
    args = ["train", "--backend", backend, *TRAIN, *EXTRA[backend], *data_flags, "--out", out]
    return [sys.executable, "-m", "keras_vae", *map(str, args)]


def start(command, env=None):
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env=env or environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(process, expected_status=0):
    output = process.communicate(timeout=WAIT_S)[0]
    assert process.returncode == expected_status, output[-4000:]
    return output


class UninterruptedRuns:
    """One uninterrupted run per backend, started on first use and shared by the tests."""

    def __init__(self, base, data_flags):
        self.base, self.data_flags, self.processes = base, data_flags, {}

    def start(self, backend):
        if backend not in self.processes:
            out = self.base / backend
            self.processes[backend] = (start(train_command(out, backend, self.data_flags)), out)

    def folder(self, backend):
        self.start(backend)
        process, out = self.processes[backend]
        if process.returncode is None:
            finish(process)
        return out


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, data_flags):
    runs = UninterruptedRuns(tmp_path_factory.mktemp("uninterrupted"), data_flags)
    yield runs
    for process, _ in runs.processes.values():
        if process.poll() is None:
            process.kill()
            process.communicate()


def kill_after_first_backup(process, out):
    """SIGKILLs ``process`` as soon as the backup of epoch 1 is committed (polled every 5 ms):
    in epoch 2, or at the latest while epoch 2 or 3 writes its backup."""
    state = out / "backup" / "state.json"
    deadline = time.monotonic() + WAIT_S
    try:
        while not state.exists():
            assert process.poll() is None, "finished before its first backup"
            assert time.monotonic() < deadline, f"no backup after {WAIT_S} s"
            time.sleep(0.005)
    except BaseException:
        process.kill()
        print(process.communicate()[0][-4000:])
        raise
    os.kill(process.pid, signal.SIGKILL)
    return finish(process, expected_status=-signal.SIGKILL)


def saved_weights(run):
    """The arrays of model.weights.h5 inside a run's model.keras, by their HDF5 path."""
    with zipfile.ZipFile(run / "model.keras") as archive:
        payload = archive.read("model.weights.h5")
    arrays = {}
    with h5py.File(io.BytesIO(payload), "r") as weights:
        weights.visititems(
            lambda name, item: (
                arrays.update({name: item[()]}) if isinstance(item, h5py.Dataset) else None
            )
        )
    return arrays


def assert_same_run(resumed, reference):
    expected = saved_weights(reference)
    actual = saved_weights(resumed)
    assert sorted(actual) == sorted(expected) and len(expected) > 10
    for name, array in expected.items():
        np.testing.assert_array_equal(actual[name], array, err_msg=name)
    for name in ("history.json", "history.csv", "config.json"):
        assert (resumed / name).read_text() == (reference / name).read_text(), name
    metrics = [json.loads((run / "metrics.json").read_text()) for run in (resumed, reference)]
    for values in metrics:
        values.pop("train_seconds")
    assert metrics[0] == metrics[1]
    assert sorted(os.listdir(resumed)) == sorted(os.listdir(reference))  # no backup/ left
    history = json.loads((resumed / "history.json").read_text())
    assert len(history["loss"]) == EPOCHS
    assert (resumed / "history.csv").read_text().count("\n") == EPOCHS + 1  # header, no repeats


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_sigkill_mid_epoch_then_the_same_command(backend, tmp_path, uninterrupted, data_flags):
    out = tmp_path / "run"
    command = train_command(out, backend, data_flags)
    uninterrupted.start(backend)  # alongside, on the other core
    kill_after_first_backup(start(command), out)
    state = json.loads((out / "backup" / "state.json").read_text())
    assert state["epoch"] in (1, 2) and not (out / "model.keras").exists()  # killed mid-run

    output = finish(start(command))
    assert f"after epoch {state['epoch']} of {EPOCHS}" in output
    assert_same_run(out, uninterrupted.folder(backend))
    if backend == "jax":
        assert json.loads((out / "history.json").read_text())["kl_weight"][0] < 1.0


# Runs the CLI with save_weights patched to cut epoch 2's backup file short and SIGKILL its own
# process right then: a real kill in the middle of a checkpoint write.
KILLED_WHILE_WRITING = """
    import os, signal, sys
    import keras
    from keras_vae import cli

    save_weights, calls = keras.Model.save_weights, []

    def save_then_die(self, filepath, *args, **kwargs):
        save_weights(self, filepath, *args, **kwargs)
        calls.append(filepath)
        if len(calls) == 2:
            with open(filepath, "r+b") as handle:
                handle.truncate(os.path.getsize(filepath) // 2)
            os.kill(os.getpid(), signal.SIGKILL)

    keras.Model.save_weights = save_then_die
    sys.exit(cli.main(sys.argv[1:]))
"""


def test_sigkill_during_a_backup_write_keeps_the_previous_backup(
    tmp_path, uninterrupted, data_flags
):
    out = tmp_path / "run"
    command = train_command(out, "tensorflow", data_flags)
    uninterrupted.start("tensorflow")
    script = [sys.executable, "-c", textwrap.dedent(KILLED_WHILE_WRITING), *command[3:]]
    finish(start(script, {**environment(), "KERAS_BACKEND": "tensorflow"}), -signal.SIGKILL)
    backup = sorted(os.listdir(out / "backup"))
    assert backup[1:] == ["epoch_0001.weights.h5", "state.json"], backup
    assert backup[0].startswith(".tmp-") and backup[0].endswith(".weights.h5")  # the cut file

    output = finish(start(command))
    assert f"after epoch 1 of {EPOCHS}" in output
    assert_same_run(out, uninterrupted.folder("tensorflow"))
