"""N replicas with global batch B must train exactly like one device with batch B."""

import pytest
from conftest import run_python

# One weighted SGD step of a deterministic AE (a VAE's noise would differ per replica) with
# fixed weights; the same shared train step serves every model.
STEP = """
import numpy as np, keras
from keras_vae import AE, architectures

def run(scope):
    rng = np.random.default_rng(0)
    x = (rng.random((16, 6)) > 0.5).astype("float32")
    with scope:
        model = AE(*architectures.mlp((6,), 2, (8,), variational=False), "bernoulli")
        for i, variable in enumerate(model.trainable_variables):
            variable.assign(np.random.default_rng(i).normal(0, 0.3, variable.shape))
        model.compile(optimizer=keras.optimizers.SGD(0.1))
    sample_weight = np.linspace(0.5, 1.5, 16).astype("float32")
    logs = model.fit(x, x, sample_weight=sample_weight, batch_size=16, epochs=1,
                     shuffle=False, verbose=0).history
    return [keras.ops.convert_to_numpy(v) for v in model.trainable_variables], logs["loss"][0]
"""

TF_SCRIPT = (
    STEP
    + """
import contextlib, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
assert strategy.num_replicas_in_sync == 2
single, single_loss = run(contextlib.nullcontext())
mirrored, mirrored_loss = run(strategy.scope())
for a, b in zip(single, mirrored):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
np.testing.assert_allclose(single_loss, mirrored_loss, rtol=1e-5)
# The XLA-compiled optimizer update is for one device only: off for a model made under a
# strategy, also when asked outside its scope (the single-device run above used it).
with strategy.scope():
    distributed = AE(*architectures.mlp((6,), 2, (8,), variational=False), "bernoulli")
    distributed.compile(optimizer="sgd")
    assert not distributed.compiles_optimizer_update()
assert not distributed.compiles_optimizer_update()
local = AE(*architectures.mlp((6,), 2, (8,), variational=False), "bernoulli")
local.compile(optimizer="sgd")
assert local.compiles_optimizer_update()
# steps_per_execution="auto" stays at 1 under a strategy (Keras' multi-step loop fails there).
x = np.zeros((64, 6), "float32")
distributed.fit(x, x, batch_size=8, verbose=0)
local.fit(x, x, batch_size=8, verbose=0)
assert (distributed.steps_per_execution, local.steps_per_execution) == (1, 32)
print("ok", single_loss, mirrored_loss)
"""
)

JAX_SCRIPT = (
    STEP
    + """
import contextlib, jax
assert len(jax.devices()) == 2
single, single_loss = run(contextlib.nullcontext())
keras.distribution.set_distribution(keras.distribution.DataParallel(devices=jax.devices()))
parallel, parallel_loss = run(contextlib.nullcontext())
for a, b in zip(single, parallel):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
np.testing.assert_allclose(single_loss, parallel_loss, rtol=1e-5)
print("ok", single_loss, parallel_loss)
"""
)


def _run(script, backend, extra_env=None):
    assert run_python(script, backend, extra_env).strip().splitlines()[-1].startswith("ok")


@pytest.mark.slow
def test_tf_mirrored_strategy_on_two_replicas_matches_one_device():
    _run(TF_SCRIPT, "tensorflow")


@pytest.mark.slow
def test_jax_data_parallel_on_two_devices_matches_one_device():
    _run(JAX_SCRIPT, "jax", {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"})
