"""N replicas with global batch B must train exactly like one device with batch B."""

import pytest
from conftest import run_python

# One weighted SGD step of a deterministic AE (a VAE's noise would differ per replica) with
# fixed weights; the same shared train step serves every model.
STEP = """
import numpy as np, keras
from keras_vae import AE, architectures

def fix_weights_and_compile(model):
    for i, variable in enumerate(model.trainable_variables):
        variable.assign(np.random.default_rng(i).normal(0, 0.3, variable.shape))
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    return model

def run(scope):
    rng = np.random.default_rng(0)
    x = (rng.random((16, 6)) > 0.5).astype("float32")
    with scope:
        model = fix_weights_and_compile(
            AE(*architectures.mlp((6,), 2, (8,), variational=False), "bernoulli")
        )
    sample_weight = np.linspace(0.5, 1.5, 16).astype("float32")
    logs = model.fit(x, x, sample_weight=sample_weight, batch_size=16, epochs=1,
                     shuffle=False, verbose=0).history
    return [keras.ops.convert_to_numpy(v) for v in model.trainable_variables], logs["loss"][0]
"""

# Two logical CPU devices and a MirroredStrategy over them.
TF_TWO_REPLICAS = """
import contextlib, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
"""

TF_SCRIPT = (
    STEP
    + TF_TWO_REPLICAS
    + """
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


# Noise per replica: every replica draws its own noise from the same (mirrored) seed state, a
# seed reproduces it, a VAE trains, and with the noise supplied the N-replica step of a VAE
# equals the one-device step.
NOISE = (
    STEP
    + """
import numpy as np, keras
from keras_vae import DAE, VAE, architectures
from keras_vae.layers import Sampling


class SuppliedNoiseVAE(VAE):
    # y carries the sampling noise (one row per example, sharded with x).
    def _check_y(self, y, count):
        pass

    def compute_loss_terms(self, x, y=None, sample_weight=None, training=False, noise=None):
        return super().compute_loss_terms(x, None, sample_weight, training, noise=y)


def supplied_noise_step(scope):
    rng = np.random.default_rng(0)
    x = (rng.random((16, 6)) > 0.5).astype("float32")
    eps = rng.standard_normal((16, 2)).astype("float32")
    with scope:
        model = fix_weights_and_compile(SuppliedNoiseVAE(*architectures.mlp((6,), 2, (8,))))
    loss = model.fit(x, eps, batch_size=16, epochs=1, shuffle=False, verbose=0).history["loss"][0]
    return [keras.ops.convert_to_numpy(v) for v in model.trainable_variables], loss


def vae_trains(scope):
    x = (np.random.default_rng(1).random((256, 6)) > 0.5).astype("float32")
    with scope:
        model = VAE(*architectures.mlp((6,), 2, (16,)), seed=0)
        model.compile(optimizer=keras.optimizers.Adam(0.01))
    losses = model.fit(x, batch_size=32, epochs=4, verbose=0).history["loss"]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0], losses
"""
)

TF_NOISE_SCRIPT = (
    NOISE
    + TF_TWO_REPLICAS
    + """

def replica_noise(seed):
    with strategy.scope():
        sampler = Sampling(seed=seed)
        dae = DAE(*architectures.mlp((6,), 2, (8,), variational=False), noise="dropout", seed=seed)
    zeros, ones = tf.zeros((4, 3)), tf.ones((4, 6))
    draw = tf.function(lambda: strategy.run(lambda: (sampler([zeros, zeros]),
                                                     dae.corrupt_tensor(ones))))
    eps, masks = draw()
    return ([t.numpy() for t in strategy.experimental_local_results(eps)],
            [t.numpy() for t in strategy.experimental_local_results(masks)])

(eps0, eps1), (mask0, mask1) = replica_noise(7)
assert not np.allclose(eps0, eps1), "replicas drew the same sampling noise"
assert not np.array_equal(mask0, mask1), "replicas drew the same DAE dropout mask"
(again0, again1), (mask_again0, _) = replica_noise(7)
np.testing.assert_array_equal(eps0, again0)  # a seed reproduces every replica's noise
np.testing.assert_array_equal(eps1, again1)
np.testing.assert_array_equal(mask0, mask_again0)
assert abs(np.concatenate([eps0, eps1]).std() - 1) < 0.5

single, single_loss = supplied_noise_step(contextlib.nullcontext())
mirrored, mirrored_loss = supplied_noise_step(strategy.scope())
for a, b in zip(single, mirrored):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
np.testing.assert_allclose(single_loss, mirrored_loss, rtol=1e-5)
vae_trains(strategy.scope())
print("ok")
"""
)

JAX_NOISE_SCRIPT = (
    NOISE
    + """
import contextlib, jax
from jax.sharding import NamedSharding, PartitionSpec
single, single_loss = supplied_noise_step(contextlib.nullcontext())
devices = jax.devices()
keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
parallel, parallel_loss = supplied_noise_step(contextlib.nullcontext())
for a, b in zip(single, parallel):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
np.testing.assert_allclose(single_loss, parallel_loss, rtol=1e-5)

# The noise of a batch sharded over the two devices: each device's rows differ.
mesh = jax.sharding.Mesh(np.array(devices), ("batch",))
zeros = jax.device_put(np.zeros((4, 3), "float32"), NamedSharding(mesh, PartitionSpec("batch")))

def draw(seed):
    sampler = Sampling(seed=seed)
    sampler.build([(None, 3), (None, 3)])
    state = [v.value for v in sampler.non_trainable_variables]
    assert state, "the seed state is the layer's non-trainable variable"
    z, _ = jax.jit(lambda s, a: sampler.stateless_call([], s, [a, a]))(state, zeros)
    return np.asarray(z)

eps = draw(7)
assert not np.allclose(eps[:2], eps[2:]), "the devices drew the same sampling noise"
np.testing.assert_array_equal(eps, draw(7))  # a seed reproduces it
vae_trains(contextlib.nullcontext())
print("ok")
"""
)


@pytest.mark.slow
def test_tf_replicas_draw_distinct_reproducible_noise():
    _run(TF_NOISE_SCRIPT, "tensorflow")


@pytest.mark.slow
def test_jax_devices_draw_distinct_reproducible_noise():
    _run(JAX_NOISE_SCRIPT, "jax", {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"})
