"""Two worker processes on 127.0.0.1 must train exactly like one process with the same global batch.

TensorFlow: `tf.distribute.MultiWorkerMirroredStrategy`, the cluster given by ``TF_CONFIG``. JAX:
`keras.distribution.initialize` (``jax.distributed`` with JAX's default gloo CPU collectives) and
`keras.distribution.DataParallel` over both processes' CPU devices. Each worker writes its results
to a file; this process compares them.
"""

import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import ROOT

# Bounded wait for a pair of workers (each takes about 10 s on 2 idle cores).
WORKER_TIMEOUT_S = 180

# First in every worker: a worker that raises exits at once. Without it a JAX process would wait
# in jax.distributed's shutdown barrier for its peer, and the peer in a collective for it.
EXIT_ON_ERROR = """
import os, sys, traceback

def exit_at_once(*exc_info):
    traceback.print_exception(*exc_info)
    sys.stderr.flush()
    os._exit(1)

sys.excepthook = exit_at_once
"""

# One weighted SGD step of a deterministic AE with fixed weights (a VAE's noise would differ
# between the runs), on ``rows`` of a global batch of 16, in batches of ``batch_size``.
STEP = """
import contextlib
import numpy as np, keras
from keras_vae import AE, VAE, architectures

def step(scope, rows, batch_size):
    rng = np.random.default_rng(0)
    x = (rng.random((16, 6)) > 0.5).astype("float32")[rows]
    sample_weight = np.linspace(0.5, 1.5, 16).astype("float32")[rows]
    with scope:
        model = AE(*architectures.mlp((6,), 2, (8,), variational=False), "bernoulli")
        for i, variable in enumerate(model.trainable_variables):
            variable.assign(np.random.default_rng(i).normal(0, 0.3, variable.shape))
        model.compile(optimizer=keras.optimizers.SGD(0.1))
    logs = model.fit(x, x, sample_weight=sample_weight, batch_size=batch_size, epochs=1,
                     shuffle=False, verbose=0).history
    return {"loss": logs["loss"][0],
            **{f"w{i}": keras.ops.convert_to_numpy(v)
               for i, v in enumerate(model.trainable_variables)}}

def vae_results(vae, history):
    assert len(history["loss"]) == 2, history
    return {**{f"history_{name}": np.array(values) for name, values in history.items()},
            **{f"vae_w{i}": keras.ops.convert_to_numpy(v)
               for i, v in enumerate(vae.trainable_variables)}}

VAE_DATA = (np.random.default_rng(1).random((64, 6)) > 0.5).astype("float32")
"""

TF_WORKER = (
    EXIT_ON_ERROR
    + """
import tensorflow as tf
# First, before any other TensorFlow op: it connects to the other worker named in TF_CONFIG.
strategy = tf.distribute.MultiWorkerMirroredStrategy()
assert strategy.num_replicas_in_sync == 2
index = strategy.cluster_resolver.task_id
"""
    + STEP
    + """
# Sharding: every worker passes the same arrays and batch_size = the global batch. Keras batches
# them into global batches of 16 and sets AutoShardPolicy.DATA; experimental_distribute_dataset
# splits each global batch into 16 / 2 replicas = 8 rows and gives worker i the i-th part (rows
# 0-7 to worker 0, 8-15 to worker 1, measured). A worker passing only its own half with
# batch_size=8 would train on 4 of its 8 rows per step.
distributed = step(strategy.scope(), slice(None), 16)
# The reference: this process alone (default strategy, one device), the same global batch.
single = step(contextlib.nullcontext(), slice(None), 16)
# The same seed on every worker: fit shuffles on each worker, and unseeded orders differ, so the
# workers' shards of an epoch would overlap (measured: 11 distinct rows of 16).
keras.utils.set_random_seed(0)
with strategy.scope():
    vae = VAE(*architectures.mlp((6,), 2, (8,)), seed=1)
    vae.compile(optimizer="adam")
# 4 global batches of 16 per epoch, 8 rows per worker; validation runs test_step distributed too.
history = vae.fit(VAE_DATA, batch_size=16, epochs=2, validation_data=VAE_DATA[:16],
                  verbose=0).history
# Sampling noise: each worker's replica draws its own (the seed folded with the global replica
# index), the same seed state on both.
from keras_vae.layers import Sampling
with strategy.scope():
    sampler = Sampling(seed=3)
zeros = tf.zeros((2, 4))
draw = tf.function(lambda: strategy.run(lambda: sampler([zeros, zeros])))
noise = strategy.experimental_local_results(draw())[0].numpy()
np.savez(os.path.join(sys.argv[1], f"worker{index}.npz"),
         **{f"distributed_{k}": v for k, v in distributed.items()},
         **{f"single_{k}": v for k, v in single.items()}, **vae_results(vae, history),
         noise=noise)
"""
)

JAX_WORKER = (
    EXIT_ON_ERROR
    + """
import keras
index, address = int(sys.argv[2]), sys.argv[3]
# Before any JAX computation: jax.distributed.initialize, then one global seed for all processes.
keras.distribution.initialize(address, num_processes=2, process_id=index)
import jax
assert jax.process_count() == 2 and len(jax.devices()) == 2
"""
    + STEP
    + """
# The reference first: before a distribution is set, this process computes alone on its device.
single = step(contextlib.nullcontext(), slice(None), 16)
# Sharding: auto_shard_dataset=False, and each process passes its own rows with the per-process
# batch (Keras' auto-sharding accepts only a tf.data.Dataset whose batch size it can read).
# Keras joins the per-process batches of 8 into one global batch of 16
# (jax.make_array_from_process_local_data): process 0 gives rows 0-7, process 1 rows 8-15.
keras.distribution.set_distribution(
    keras.distribution.DataParallel(auto_shard_dataset=False)
)
own = slice(8 * index, 8 * index + 8)
distributed = step(contextlib.nullcontext(), own, 8)
vae = VAE(*architectures.mlp((6,), 2, (8,)), seed=1)
vae.compile(optimizer="adam")
# Each process its own 32 rows in batches of 8: 4 global batches of 16 per epoch.
history = vae.fit(VAE_DATA[32 * index : 32 * index + 32], batch_size=8, epochs=2,
                  validation_data=VAE_DATA[own], verbose=0).history
np.savez(os.path.join(sys.argv[1], f"worker{index}.npz"),
         **{f"distributed_{k}": v for k, v in distributed.items()},
         **{f"single_{k}": v for k, v in single.items()}, **vae_results(vae, history))
"""
)


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _run_workers(script, backend, worker_args, worker_env, out_dir):
    """Runs ``script`` in one process per entry of ``worker_args``; returns their results.

    Waits at most WORKER_TIMEOUT_S, stops at the first failure (a worker whose peer died would
    wait for it until the timeout), and kills every worker still running when it returns.
    """
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("XLA_FLAGS", None)  # one device per process
    env.pop("TF_CONFIG", None)
    logs = [out_dir / f"worker{i}.log" for i in range(len(worker_args))]
    workers = []
    try:
        for args, extra_env, log in zip(worker_args, worker_env, logs):
            with open(log, "w") as output:
                workers.append(
                    subprocess.Popen(
                        [sys.executable, "-c", script, str(out_dir), *args],
                        env={**env, **extra_env},
                        cwd=ROOT,
                        stdout=output,
                        stderr=subprocess.STDOUT,
                    )
                )
        deadline = time.monotonic() + WORKER_TIMEOUT_S
        while any(worker.poll() is None for worker in workers) and time.monotonic() < deadline:
            if any(worker.returncode not in (None, 0) for worker in workers):
                break
            time.sleep(0.2)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
            worker.wait()
    # A worker killed here (after a timeout or its peer's failure) has a negative return code.
    failed = [(i, log.read_text()) for i, (w, log) in enumerate(zip(workers, logs)) if w.returncode]
    if failed:
        pytest.fail(
            "\n".join(
                f"worker {i} exited with {workers[i].returncode} (killed after "
                f"{WORKER_TIMEOUT_S} s or its peer's failure if negative):\n{output[-3000:]}"
                for i, output in failed
            )
        )
    return [dict(np.load(out_dir / f"worker{i}.npz")) for i in range(len(worker_args))]


def _check(results):
    single = results[0]
    weights = sorted(key[len("single_") :] for key in single if key.startswith("single_w"))
    for worker in results:
        # The distributed step on a global batch of 16 is the single-process step on it.
        for name in ["loss", *weights]:
            np.testing.assert_allclose(
                worker[f"distributed_{name}"], single[f"single_{name}"], rtol=1e-5, atol=1e-6
            )
        history = {key: value for key, value in worker.items() if key.startswith("history_")}
        assert {"history_loss", "history_val_loss"} <= history.keys()
        assert all(value.shape == (2,) and np.isfinite(value).all() for value in history.values())
    if "noise" in results[0]:  # TensorFlow: the workers' replicas draw distinct noise
        assert np.isfinite(results[0]["noise"]).all()
        assert not np.allclose(results[0]["noise"], results[1]["noise"])
    # Both workers end the VAE fit with the same weights and logged the same losses.
    assert results[0].keys() == results[1].keys()
    for key in results[0]:
        if key.startswith(("history_", "vae_")):
            np.testing.assert_array_equal(results[0][key], results[1][key], err_msg=key)


@pytest.mark.slow
def test_tf_multi_worker_mirrored_strategy_on_two_workers_matches_one_process(tmp_path):
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    configs = [
        {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})}
        for i in range(2)
    ]
    _check(_run_workers(TF_WORKER, "tensorflow", [[], []], configs, tmp_path))


@pytest.mark.slow
def test_jax_data_parallel_on_two_processes_matches_one_process(tmp_path):
    (port,) = _free_ports(1)
    address = f"127.0.0.1:{port}"
    env = {"JAX_PLATFORMS": "cpu"}
    args = [[str(i), address] for i in range(2)]
    _check(_run_workers(JAX_WORKER, "jax", args, [env, env], tmp_path))
