"""Tests for keras_vae.callbacks: KL warm-up schedule (seen by the train step), SampleGrid, and
resuming (DataEpoch, the atomic BackupAndRestore; tests/test_resume.py kills real processes)."""

import glob
import os

import keras
import numpy as np
import pytest

from keras_vae.callbacks import (
    BackupAndRestore,
    DataEpoch,
    KLWarmup,
    SampleGrid,
    find_kl_weights,
)

try:
    from keras_vae.layers import KLDivergenceRegularizer
except ImportError:  # pragma: no cover - the layers land with the package
    KLDivergenceRegularizer = None

SAMPLES = 32
BATCH_SIZE = 8  # 4 steps per epoch


class _WeightedConstantLoss(keras.layers.Layer):
    """Stand-in for KLDivergenceRegularizer: adds ``kl_weight * kl`` with a fixed ``kl``."""

    def __init__(self, weight=1.0, kl=0.5, **kwargs):
        super().__init__(**kwargs)
        self.kl = kl
        self.kl_weight = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(weight),
            trainable=False,
            name="kl_weight",
        )

    def call(self, inputs):
        self.add_loss(self.kl_weight * self.kl)
        return inputs


def _functional_model_with_kl_layer(weight=1.0):
    """A functional model compiled with 'mse' whose loss is exactly ``kl_weight * KL``.

    The posterior is fixed at N(1, 1) (KL from N(0, 1) = 0.5 nats), the reconstruction is 0
    for targets 0, and SGD with learning rate 0 keeps it that way: each batch's loss is the
    KL weight the train step actually used, times 0.5.
    """
    x = keras.Input((1,))
    zeros = keras.initializers.Zeros()
    z_mean = keras.layers.Dense(1, kernel_initializer=zeros, bias_initializer="ones")(x)
    z_log_var = keras.layers.Dense(1, kernel_initializer=zeros, bias_initializer=zeros)(x)
    if KLDivergenceRegularizer is not None:
        z_mean, z_log_var = KLDivergenceRegularizer(weight=weight, metric_name=None)(
            [z_mean, z_log_var]
        )
    else:
        z_mean = _WeightedConstantLoss(weight=weight)(z_mean)
    outputs = keras.layers.Dense(1, kernel_initializer=zeros, bias_initializer=zeros)(z_mean)
    model = keras.Model(x, outputs)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0), loss="mse")
    return model


class _BetaModel(keras.Model):
    """A subclassed model with its own ``kl_weight`` variable (like keras_vae's VAE)."""

    def __init__(self, beta=2.0):
        super().__init__(name="beta_model")
        self.dense = keras.layers.Dense(1, kernel_initializer="zeros", bias_initializer="zeros")
        self.kl_weight = keras.Variable(beta, trainable=False, dtype="float32", name="kl_weight")

    def call(self, x):
        self.add_loss(self.kl_weight * 1.0)
        return self.dense(x)


class _WeightRecorder(keras.callbacks.Callback):
    """Records the KL-weight variable after every batch and epoch."""

    def __init__(self, variable):
        super().__init__()
        self.variable = variable
        self.batch_values, self.epoch_values = [], []

    def _value(self):
        _ = self.model  # syncs the JAX trainer state into the variables
        return float(keras.ops.convert_to_numpy(self.variable.value))

    def on_train_batch_end(self, batch, logs=None):
        self.batch_values.append(self._value())

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_values.append(self._value())


def _data():
    return np.ones((SAMPLES, 1), "float32"), np.zeros((SAMPLES, 1), "float32")


def test_find_kl_weights():
    model = _functional_model_with_kl_layer()
    variables = find_kl_weights(model)
    assert len(variables) == 1 and variables[0].name == "kl_weight"
    beta_model = _BetaModel()
    assert find_kl_weights(beta_model) == [beta_model.kl_weight]
    plain = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    assert find_kl_weights(plain) == []


def test_kl_warmup_per_epoch_on_layer_in_functional_model():
    model = _functional_model_with_kl_layer(weight=1.0)
    (variable,) = find_kl_weights(model)
    recorder = _WeightRecorder(variable)
    x, y = _data()
    history = model.fit(
        x,
        y,
        batch_size=BATCH_SIZE,
        epochs=5,
        shuffle=False,
        verbose=0,
        callbacks=[KLWarmup(warmup_epochs=4, per_batch=False), recorder],
    )
    expected = [0.0, 0.25, 0.5, 0.75, 1.0]
    # After epoch 1 of 4 the weight is exactly 0.25, and so on.
    assert recorder.epoch_values == expected
    assert history.history["kl_weight"] == expected
    # The train step saw each new value (on JAX too): the loss is weight * KL.
    np.testing.assert_allclose(history.history["loss"], np.array(expected) * 0.5, atol=1e-6)


def test_kl_warmup_per_batch_reaches_train_step():
    model = _functional_model_with_kl_layer(weight=1.0)
    (variable,) = find_kl_weights(model)
    recorder = _WeightRecorder(variable)
    x, y = _data()
    history = model.fit(
        x,
        y,
        batch_size=BATCH_SIZE,
        epochs=3,
        shuffle=False,
        verbose=0,
        callbacks=[KLWarmup(warmup_epochs=2), recorder],
    )
    # 4 steps per epoch, 8 warm-up steps: weight = step / 8, then 1.
    expected_batches = [step / 8 for step in range(8)] + [1.0] * 4
    assert recorder.batch_values == expected_batches
    assert history.history["kl_weight"] == [0.375, 0.875, 1.0]
    epoch_means = np.array(expected_batches).reshape(3, 4).mean(axis=1)
    np.testing.assert_allclose(history.history["loss"], epoch_means * 0.5, atol=1e-6)


def test_kl_warmup_model_attribute_default_end_and_resume():
    model = _BetaModel(beta=2.0)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0), loss="mse")
    x, y = _data()
    warmup = KLWarmup(warmup_epochs=2, per_batch=False)
    history = model.fit(x, y, batch_size=BATCH_SIZE, epochs=3, verbose=0, callbacks=[warmup])
    # `end` defaults to the value at train begin (2.0).
    assert history.history["kl_weight"] == [0.0, 1.0, 2.0]
    np.testing.assert_allclose(history.history["loss"], [0.0, 1.0, 2.0], atol=1e-6)

    # A second fit from epoch 1 resumes the schedule towards the original end, 2.0.
    model.kl_weight.assign(0.0)
    history = model.fit(
        x, y, batch_size=BATCH_SIZE, initial_epoch=1, epochs=2, verbose=0, callbacks=[warmup]
    )
    assert history.history["kl_weight"] == [1.0]


def test_kl_warmup_start_end_and_zero_epochs():
    model = _functional_model_with_kl_layer(weight=1.0)
    x, y = _data()
    history = model.fit(
        x,
        y,
        batch_size=BATCH_SIZE,
        epochs=3,
        verbose=0,
        callbacks=[KLWarmup(warmup_epochs=2, start=0.5, end=0.1, per_batch=False)],
    )
    np.testing.assert_allclose(history.history["kl_weight"], [0.5, 0.3, 0.1], rtol=1e-6)

    history = model.fit(
        x, y, batch_size=BATCH_SIZE, epochs=1, verbose=0, callbacks=[KLWarmup(0, end=0.7)]
    )
    np.testing.assert_allclose(history.history["kl_weight"], [0.7], rtol=1e-6)


def test_kl_warmup_falls_back_to_per_epoch_without_steps():
    model = _functional_model_with_kl_layer(weight=1.0)
    (variable,) = find_kl_weights(model)
    warmup = KLWarmup(warmup_epochs=4)
    warmup.set_model(model)
    warmup.set_params({"epochs": 4, "steps": None, "verbose": 0})
    with pytest.warns(UserWarning, match="annealing once per epoch"):
        warmup.on_train_begin()
    warmup.on_epoch_begin(1)
    warmup.on_train_batch_begin(3)  # ignored: no per-batch schedule
    assert float(keras.ops.convert_to_numpy(variable.value)) == 0.25


def test_kl_warmup_errors():
    with pytest.raises(ValueError, match="warmup_epochs"):
        KLWarmup(warmup_epochs=-1)
    with pytest.raises(ValueError, match="warmup_epochs"):
        KLWarmup(warmup_epochs=1.5)
    with pytest.raises(ValueError, match=">= 0"):
        KLWarmup(start=-1.0)
    plain = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    plain.compile(optimizer="sgd", loss="mse")
    x, y = _data()
    with pytest.raises(ValueError, match="found no KL weight"):
        plain.fit(x, y, epochs=1, verbose=0, callbacks=[KLWarmup()])


# --------------------------------------------------------------------------- SampleGrid


class _GeneratingModel(keras.Model):
    """Fake VAE/CVAE/AE: a trainable Dense plus numpy `generate` / `reconstruct`."""

    generative = True  # what keras_vae models declare (keras_vae.models.BaseAutoencoder)

    def __init__(self, num_classes=None):
        super().__init__(name="generating_model")
        self.dense = keras.layers.Dense(1)
        self.conditional = num_classes is not None
        self.num_classes = num_classes
        self.calls = []

    def call(self, x):
        return self.dense(x)

    def generate(self, n_or_labels, seed=None):
        self.calls.append(("generate", n_or_labels, seed))
        count = n_or_labels if np.isscalar(n_or_labels) else len(n_or_labels)
        return np.random.default_rng(seed).random((count, 8, 8, 1)).astype("float32")

    def reconstruct(self, x, labels=None):
        self.calls.append(("reconstruct", x, labels))
        return np.asarray(x).reshape(-1, 8, 8, 1)


def _fit(model, callbacks, epochs=2, features=1):
    model.compile(optimizer="sgd", loss="mse")
    x = np.zeros((16, features), "float32")
    return model.fit(x, x[:, :1], batch_size=8, epochs=epochs, verbose=0, callbacks=callbacks)


def test_sample_grid_writes_every_n_epochs(tmp_path):
    model = _GeneratingModel()
    _fit(model, [SampleGrid(tmp_path / "samples", every=2, n=9, seed=3)], epochs=5)
    files = sorted(os.listdir(tmp_path / "samples"))
    assert files == ["samples_epoch_002.png", "samples_epoch_004.png"]
    assert all(os.path.getsize(tmp_path / "samples" / name) > 0 for name in files)
    assert model.calls == [("generate", 9, 3), ("generate", 9, 3)]


def test_sample_grid_conditional_default_labels(tmp_path):
    model = _GeneratingModel(num_classes=3)
    _fit(model, [SampleGrid(tmp_path, n=12, seed=0)], epochs=1)
    assert os.path.isfile(tmp_path / "samples_epoch_001.png")
    ((kind, labels, seed),) = model.calls
    assert kind == "generate" and seed == 0
    np.testing.assert_array_equal(labels, np.repeat([0, 1, 2], 4))


def test_sample_grid_reconstructs_fixed_batch(tmp_path):
    model = _GeneratingModel()
    batch = np.random.default_rng(0).random((6, 64)).astype("float32")
    _fit(model, [SampleGrid(tmp_path, x=batch)], epochs=1, features=1)
    assert os.path.isfile(tmp_path / "samples_epoch_001.png")
    ((kind, x, labels),) = model.calls
    assert kind == "reconstruct" and x is batch and labels is None


def test_sample_grid_tensorboard(tmp_path):
    import tensorflow as tf

    model = _GeneratingModel()
    _fit(model, [SampleGrid(tmp_path / "png", n=4, tensorboard_dir=tmp_path / "tb")], epochs=2)
    (event_file,) = glob.glob(str(tmp_path / "tb" / "events.out.tfevents*"))
    summaries = []
    for record in tf.data.TFRecordDataset(event_file):
        event = tf.compat.v1.Event.FromString(record.numpy())
        for value in event.summary.value:
            summaries.append((event.step, value))
    assert [(step, value.tag) for step, value in summaries] == [(0, "samples"), (1, "samples")]
    value = summaries[0][1]
    assert value.metadata.plugin_data.plugin_name == "images"
    width, height, png = value.tensor.string_val
    assert png.startswith(b"\x89PNG")
    decoded = tf.image.decode_png(png)
    assert decoded.shape[:2] == (int(height), int(width))


def test_sample_grid_errors(tmp_path):
    with pytest.raises(ValueError, match="`every` must be a positive integer"):
        SampleGrid(tmp_path, every=0)
    with pytest.raises(ValueError, match="`labels` has 2 entries but `x` has 3"):
        SampleGrid(tmp_path, x=np.zeros((3, 4)), labels=[0, 1])
    plain = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="has no `generate`; pass a fixed batch"):
        _fit(plain, [SampleGrid(tmp_path)], epochs=1)


# --------------------------------------------------------------------------- real model


def test_kl_warmup_and_sample_grid_with_a_vae(tmp_path):
    from keras_vae import VAE, architectures

    keras.utils.set_random_seed(0)
    x = (np.random.default_rng(0).random((128, 28, 28, 1)) > 0.7).astype("float32")
    encoder, decoder = architectures.mlp(input_shape=(28, 28, 1), latent_dim=2, hidden_units=(32,))
    model = VAE(encoder, decoder, beta=2.0)
    model.compile(optimizer="adam")
    history = model.fit(
        x,
        epochs=3,
        batch_size=64,
        verbose=0,
        callbacks=[
            KLWarmup(warmup_epochs=2, per_batch=False),
            SampleGrid(tmp_path, every=1, n=4, seed=0),
        ],
    )
    logs = history.history
    assert logs["kl_weight"] == [0.0, 1.0, 2.0]  # end defaults to beta
    assert float(keras.ops.convert_to_numpy(model.kl_weight)) == 2.0
    # The VAE's train step used the annealed weight: loss = reconstruction + weight * KL.
    np.testing.assert_allclose(
        logs["loss"],
        np.array(logs["reconstruction_loss"]) + np.array(logs["kl_weight"]) * logs["kl_loss"],
        rtol=1e-4,
    )
    assert sorted(os.listdir(tmp_path)) == [f"samples_epoch_00{e}.png" for e in (1, 2, 3)]


# ------------------------------------------------------------------------------ resuming


class _Interrupt(keras.callbacks.Callback):
    """Stops fit at the start of epoch ``epoch``, as a kill would (nothing runs after it)."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise RuntimeError("interrupted")


def _state(model):
    """Everything training carries from epoch to epoch, as NumPy arrays."""
    variables = model.variables + model.optimizer.variables
    return [keras.ops.convert_to_numpy(variable) for variable in variables]


def _resumable_vae_fit(backup_dir, epochs=4, interrupt_at=None, delete_checkpoint=True):
    """A fresh VAE (as a fresh process would build it) fit with dynamically binarised,
    epoch-keyed data, per-batch KL warm-up and a backup; returns ``(model, backup, history)``."""
    from keras_vae import VAE, architectures, data

    keras.utils.set_random_seed(0)
    images = (np.random.default_rng(0).random((96, 28, 28)) * 255).astype("uint8")
    encoder, decoder = architectures.mlp((28, 28, 1), latent_dim=2, hidden_units=(16,))
    model = VAE(encoder, decoder, seed=0)
    model.compile(optimizer="adam")
    data_epoch = DataEpoch()
    train = data.load(images, batch_size=32, binarize="dynamic", seed=0, epoch=data_epoch.variable)
    backup = BackupAndRestore(backup_dir, delete_checkpoint=delete_checkpoint)
    callbacks = [data_epoch, KLWarmup(warmup_epochs=2, end=1.0), backup]
    if interrupt_at is not None:
        callbacks.append(_Interrupt(interrupt_at))
    try:
        history = model.fit(train, epochs=epochs, shuffle=False, verbose=0, callbacks=callbacks)
    except RuntimeError as error:
        assert str(error) == "interrupted"
        history = None
    return model, backup, history


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The reference: 4 epochs in one go, ``(state, whole-run history)``."""
    backup_dir = tmp_path_factory.mktemp("uninterrupted") / "backup"
    model, backup, history = _resumable_vae_fit(backup_dir)
    assert not backup_dir.exists()  # deleted when fit completes, as Keras does
    assert backup.history == {
        key: [float(v) for v in values] for key, values in history.history.items()
    }
    return _state(model), backup.history


def _assert_same_state(state, reference):
    assert len(state) == len(reference)
    for value, expected in zip(state, reference):
        np.testing.assert_array_equal(value, expected)  # exact: same ops on the same inputs


def test_data_epoch_sets_the_variable_before_each_epoch():
    data_epoch = DataEpoch()
    seen = []
    recorder = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: seen.append(int(data_epoch.variable.numpy()))
    )
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x = np.zeros((8, 1), "float32")
    model.fit(x, x, epochs=4, initial_epoch=1, verbose=0, callbacks=[data_epoch, recorder])
    assert seen == [1, 2, 3]


def test_backup_resumes_as_an_uninterrupted_run(tmp_path, uninterrupted):
    reference, reference_history = uninterrupted
    _, backup, _ = _resumable_vae_fit(tmp_path / "backup", interrupt_at=2)
    assert backup.completed_epochs == 2
    assert sorted(os.listdir(tmp_path / "backup")) == ["epoch_0002.weights.h5", "state.json"]

    model, backup, history = _resumable_vae_fit(tmp_path / "backup")
    assert len(history.history["loss"]) == 2  # epochs 3 and 4 only
    assert backup.history == reference_history  # losses and kl_weight of all 4 epochs
    # Warm-up over 2 epochs of 3 batches; the logs show each epoch's last batch's weight.
    np.testing.assert_allclose(reference_history["kl_weight"], [2 / 6, 5 / 6, 1, 1], rtol=1e-6)
    _assert_same_state(_state(model), reference)
    assert not (tmp_path / "backup").exists()


def test_backup_ignores_a_write_a_kill_cut_short(tmp_path, uninterrupted):
    reference, reference_history = uninterrupted
    backup_dir = tmp_path / "backup"
    _resumable_vae_fit(backup_dir, interrupt_at=2)
    # What a kill while writing epoch 3's backup leaves: truncated temporary files.
    weights = (backup_dir / "epoch_0002.weights.h5").read_bytes()
    (backup_dir / ".tmp-x1.weights.h5").write_bytes(weights[: len(weights) // 2])
    (backup_dir / ".tmp-x2.json").write_text('{"epoch": 3, "weights": "epoch_00')

    model, backup, _ = _resumable_vae_fit(backup_dir, delete_checkpoint=False)
    _assert_same_state(_state(model), reference)
    assert backup.history == reference_history
    assert sorted(os.listdir(backup_dir)) == ["epoch_0004.weights.h5", "state.json"]

    # A completed backup kept (delete_checkpoint=False): fit has no epoch left to run.
    model, backup, history = _resumable_vae_fit(backup_dir, delete_checkpoint=False)
    assert history.history == {} and backup.history == reference_history
    _assert_same_state(_state(model), reference)


def test_backup_commit_cut_short_keeps_the_previous_backup(tmp_path, monkeypatch, uninterrupted):
    reference, reference_history = uninterrupted
    backup_dir = tmp_path / "backup"
    replace = os.replace

    def replace_but_fail_the_third_commit(source, target):
        if str(target).endswith("state.json") and '"epoch": 3' in open(source).read():
            raise OSError("killed between the weights and the state")
        replace(source, target)

    monkeypatch.setattr(os, "replace", replace_but_fail_the_third_commit)
    with pytest.raises(OSError, match="killed between"):
        _resumable_vae_fit(backup_dir)
    monkeypatch.undo()
    # Epoch 3's weights are in place, but the commit still names epoch 2's: both are whole.
    assert {"epoch_0002.weights.h5", "epoch_0003.weights.h5", "state.json"} <= set(
        os.listdir(backup_dir)
    )
    assert BackupAndRestore(backup_dir).completed_epochs == 2

    model, backup, _ = _resumable_vae_fit(backup_dir)
    _assert_same_state(_state(model), reference)
    assert backup.history == reference_history


def test_backup_keeps_several_batches_per_call(tmp_path):
    from keras_vae import AE, architectures
    from keras_vae.backends import auto_steps_per_execution

    encoder, decoder = architectures.mlp(
        (4, 4, 1), latent_dim=2, hidden_units=(8,), variational=False
    )
    model = AE(encoder, decoder)
    model.compile(optimizer="adam")
    x = np.zeros((64, 4, 4, 1), "float32")
    callbacks = [
        DataEpoch(),
        BackupAndRestore(tmp_path / "backup"),
        keras.callbacks.CSVLogger(str(tmp_path / "history.csv")),
    ]
    model.fit(x, batch_size=8, epochs=1, verbose=0, callbacks=callbacks)
    assert model.steps_per_execution == auto_steps_per_execution(model)
    if keras.backend.backend() == "tensorflow":
        assert model.steps_per_execution == 32


def test_backup_does_not_leave_its_epoch_to_the_next_fit(tmp_path):
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x = np.zeros((8, 1), "float32")
    backup = BackupAndRestore(tmp_path / "backup")
    with pytest.raises(RuntimeError, match="interrupted"):
        model.fit(x, x, epochs=3, verbose=0, callbacks=[backup, _Interrupt(2)])
    history = model.fit(x, x, epochs=3, verbose=0, callbacks=[backup])
    assert history.epoch == [2] and len(backup.history["loss"]) == 3
    assert model.fit(x, x, epochs=3, verbose=0).epoch == [0, 1, 2]  # a new run from epoch 0
