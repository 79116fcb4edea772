"""What every benchmark row shares: data, timing, the one test-set ELBO, memory and device facts.

Imports only numpy and the standard library at module level, so the runner can use it in a
process that never imports a deep-learning framework.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import time
from pathlib import Path

import numpy as np

IDX_DIR = "/usr/share/datasets/fashion-mnist"
BATCH_SIZE = 128
# Clip of probabilities before their log, for decoders that end in a sigmoid: Keras' epsilon,
# the clip `keras.losses.binary_crossentropy` applies in the peers' own losses.
PROBABILITY_EPSILON = 1e-7
EVAL_SEED = 1234


# --------------------------------------------------------------------------------------- data
def data_dir() -> str | None:
    """The IDX directory: $KERAS_VAE_DATA_DIR if set, else Debian's Fashion-MNIST, else None."""
    for candidate in (os.environ.get("KERAS_VAE_DATA_DIR"), IDX_DIR):
        if candidate and Path(candidate).is_dir():
            return candidate
    return None


def load_split(split: str) -> tuple[np.ndarray, str]:
    """Fashion-MNIST ``split`` as float32 ``(N, 28, 28, 1)`` in [0, 1], and where it came from.

    Reads the IDX files with `keras_vae.data.load_numpy` given ``idx_dir`` (so TensorFlow
    Datasets, and with it TensorFlow, is never imported: JAX and torch rows stay free of it and
    the script runs where TensorFlow is absent). Without the files (a bare GPU machine), falls
    back to random data of the same shape, flagged in the returned source string.
    """
    directory = data_dir()
    if directory is not None:
        from keras_vae.data import load_numpy

        images, _ = load_numpy("fashion_mnist", split, idx_dir=directory, download=False)
        return images, f"fashion_mnist:{directory}"
    count = 60000 if split == "train" else 10000
    rng = np.random.default_rng(0 if split == "train" else 1)
    return rng.random((count, 28, 28, 1), dtype=np.float32), "SYNTHETIC (no IDX files found)"


def training_set(arch: str, size: int | None = None) -> tuple[np.ndarray, str]:
    """The training images, cut to a multiple of the batch size (and to ``size`` if given).

    60000 = 468 * 128 + 96: the remainder is dropped for every row alike, so no row pays a
    re-compilation for a last, smaller batch inside the timed window (JAX and TF retrace on a
    new shape); 59904 of the 60000 examples are used.
    """
    images, source = load_split("train")
    count = len(images) if size is None else min(size, len(images))
    count -= count % BATCH_SIZE
    images = images[:count]
    return (flatten(images) if arch == "mlp" else images), source


def flatten(images: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(images.reshape(len(images), -1))


# ------------------------------------------------------------------------------ evaluation
def negative_elbo(encode, decode, x, output: str, batch_size: int = 1000) -> dict:
    """One-sample negative ELBO of ``x`` in nats per example, identical for every row.

    ``encode(x_batch) -> (z_mean, z_log_var)`` and ``decode(z_batch) -> outputs`` are numpy
    functions of a trained model (inference mode). The noise is drawn here from numpy with a fixed
    seed, so every row is scored on the same ``eps``; the Bernoulli log-likelihood of the
    grey-level pixels and the closed-form Gaussian KL are computed here in float64:

    ``-ELBO = sum_pixels BCE(x, decoder(z)) + KL(q(z|x) || N(0, I))``,
    ``z = z_mean + exp(z_log_var / 2) * eps``.

    ``output`` says what the decoder returns: ``"logits"`` (scored with the stable
    ``max(l, 0) - l x + log1p(exp(-|l|))``) or ``"probabilities"`` (clipped to
    ``[1e-7, 1 - 1e-7]``, the clip of the peers' own Keras loss, then
    ``-x log p - (1-x) log(1-p)``).
    """
    if output not in ("logits", "probabilities"):
        raise ValueError(f"output must be 'logits' or 'probabilities', received {output!r}")
    rng = np.random.default_rng(EVAL_SEED)
    reconstruction, kl = [], []
    for start in range(0, len(x), batch_size):
        batch = x[start : start + batch_size]
        z_mean, z_log_var = (np.asarray(a, dtype=np.float64) for a in encode(batch))
        eps = rng.standard_normal(z_mean.shape)
        z = (z_mean + np.exp(0.5 * z_log_var) * eps).astype(np.float32)
        out = np.asarray(decode(z), dtype=np.float64).reshape(len(batch), -1)
        target = batch.reshape(len(batch), -1).astype(np.float64)
        if output == "logits":
            per_pixel = np.maximum(out, 0) - out * target + np.log1p(np.exp(-np.abs(out)))
        else:
            p = np.clip(out, PROBABILITY_EPSILON, 1.0 - PROBABILITY_EPSILON)
            per_pixel = -(target * np.log(p) + (1.0 - target) * np.log1p(-p))
        reconstruction.append(per_pixel.sum(axis=1))
        kl.append(0.5 * (np.square(z_mean) + np.exp(z_log_var) - z_log_var - 1.0).sum(axis=1))
    reconstruction = np.concatenate(reconstruction)
    kl = np.concatenate(kl)
    return {
        "test_neg_elbo": float(np.mean(reconstruction + kl)),
        "test_reconstruction": float(np.mean(reconstruction)),
        "test_kl": float(np.mean(kl)),
    }


# ---------------------------------------------------------------------------------- timing
class StepClock:
    """Times a training run from the start of ``fit`` to each step's start and to the synced end.

    ``mark(global_step)`` is called when step ``global_step`` (0-based over all epochs) is about
    to run; with ``steps_per_execution = N`` only every N-th step is marked. Keras calls it from
    ``on_train_batch_begin``, which runs on the main thread and never waits for the device, so it
    does not stop Keras' asynchronous dispatch of ``on_train_batch_end`` callbacks nor JAX's
    asynchronous execution.
    """

    def __init__(self):
        self.start = None
        self.marks: list[tuple[int, float, float]] = []
        self.end = None
        self.end_cpu = None

    def begin(self):
        self.start = time.perf_counter()

    def mark(self, global_step: int):
        self.marks.append((global_step, time.perf_counter(), time.process_time()))

    def finish(self):
        self.end = time.perf_counter()
        self.end_cpu = time.process_time()

    def summary(self, total_steps: int, batch_size: int, warmup_steps: int) -> dict:
        """Throughput after ``warmup_steps`` and time to the first step, from the marks.

        Throughput counts the steps from the first mark at or after ``warmup_steps`` to the end
        of training (after a device sync), so it includes epoch boundaries (re-shuffling) but not
        compilation. The time to the first step runs from the ``fit`` call to the second mark,
        that is to the end of the first execution (compilation, tracing, first data batch).
        """
        steady = [mark for mark in self.marks if mark[0] >= warmup_steps]
        if not steady:  # too few steps: use everything after the first execution
            steady = self.marks[1:] or self.marks
        step0, t0, cpu0 = steady[0]
        seconds = self.end - t0
        first = self.marks[1][1] if len(self.marks) > 1 else self.end
        # With N steps per execution the second mark comes after N steps: count only the
        # first of them, taking the others at the steady rate.
        steps_in_first = self.marks[1][0] if len(self.marks) > 1 else total_steps
        others = max(0, steps_in_first - 1) * seconds / max(1, total_steps - step0)
        first -= others if others < first - self.start else 0.0  # no estimate without a rate
        return {
            "examples_per_s": (total_steps - step0) * batch_size / seconds,
            # CPU time of all this process's threads: a load-independent proxy of the work per
            # step (with --threads 1 about the wall time on an idle machine).
            "examples_per_cpu_s": (total_steps - step0) * batch_size / (self.end_cpu - cpu0),
            "timed_steps": total_steps - step0,
            "timed_seconds": seconds,
            "time_to_first_step_s": first - self.start,
            "train_seconds": self.end - self.start,
        }


def timed_keras_fit(model, clock: StepClock, steps_per_epoch: int, **fit_kwargs):
    """``model.fit(**fit_kwargs, verbose=0)`` with ``clock`` begun before it, marked per
    step, and finished after a device sync; returns the history."""
    from keras import ops

    callback = keras_step_callback(clock, steps_per_epoch)
    clock.begin()
    history = model.fit(**fit_kwargs, verbose=0, callbacks=[callback])
    ops.convert_to_numpy(model.trainable_variables[-1])  # waits for JAX's asynchronous steps
    clock.finish()
    return history


def keras_step_callback(clock: StepClock, steps_per_epoch: int):
    """A Keras callback feeding ``clock``; built lazily so this module does not import keras."""
    import keras

    class _StepClockCallback(keras.callbacks.Callback):
        # Marks once per execution: keeps compile(steps_per_execution="auto") at its value.
        needs_every_batch = False

        def __init__(self):
            super().__init__()
            self.epoch = 0

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_begin(self, batch, logs=None):
            clock.mark(self.epoch * steps_per_epoch + batch)

    return _StepClockCallback()


# ----------------------------------------------------------------------------- process facts
def peak_rss_mb() -> float:
    """Peak resident set size of this process, MiB (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if platform.system() == "Darwin" else peak / 1024


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def dump(result: dict, path: str | None):
    text = json.dumps(result, indent=1, sort_keys=True)
    if path:
        Path(path).write_text(text)
    else:
        print(text)


def installed_backends(backends=("tensorflow", "jax", "torch")) -> list[str]:
    """The ``backends`` whose framework is installed; each missing one is named on stderr."""
    import importlib.util
    import sys

    installed = []
    for backend in backends:
        if importlib.util.find_spec(backend) is None:
            print(f"{backend}: not installed, skipped", file=sys.stderr)
        else:
            installed.append(backend)
    return installed


def run_module(module: str, backend: str, arguments: list[str], env: dict | None = None) -> dict:
    """``python -m module *arguments --out F`` in a fresh process on ``backend``: its JSON.

    ``env``: more environment variables for that process.
    """
    import subprocess
    import sys
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        command = [sys.executable, "-m", module, *arguments, "--out", out.name]
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
        subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
        return json.loads(Path(out.name).read_text())


def write_or_print(result: dict, path: str | None, table) -> None:
    """The JSON to ``path`` if given, else ``table([result])`` on stdout."""
    if path:
        dump(result, path)
    else:
        print(table([result]))


# ------------------------------------------------------------------------ Keras train steps
def seed_everything(seed: int, backend: str):
    """`keras.utils.set_random_seed` without its side effect of importing TensorFlow (which
    would load TF into JAX and torch rows and count in their memory)."""
    import random

    import keras

    if backend == "tensorflow":
        keras.utils.set_random_seed(seed)
        return
    random.seed(seed)
    np.random.seed(seed)
    if backend == "torch":
        import torch

        torch.manual_seed(seed)


def step_runner(model, data, backend: str, jit_compile: bool = False):
    """``run(n)``: ``n`` calls of ``model.train_step`` on one batch ``data``, waiting for the last.

    The step is compiled the way ``fit`` compiles it: ``jax.jit`` with the state donated on
    JAX, a ``tf.function`` (with XLA when ``jit_compile``) on TensorFlow, eager on torch. No
    fit loop, no input pipeline: the cost of the step itself.
    """
    from keras import ops

    data = tuple(ops.convert_to_tensor(d) for d in data)
    if backend == "jax":
        import jax

        state = [
            [v.value for v in variables]
            for variables in (
                model.trainable_variables,
                model.non_trainable_variables,
                model.optimizer.variables,
                model.metrics_variables,
            )
        ]
        step = jax.jit(model.train_step, donate_argnums=0)
        holder = [state]

        def run(n):
            current = holder[0]
            for _ in range(n):
                _, current = step(current, data)
            holder[0] = jax.block_until_ready(current)

        return run
    if backend == "tensorflow":
        import tensorflow as tf

        step = tf.function(model.train_step, jit_compile=bool(jit_compile))
    else:
        step = model.train_step

    def run(n):
        for _ in range(n):
            logs = step(data)
        ops.convert_to_numpy(logs["loss"])

    return run
