"""Stateless train_step/test_step for the JAX backend (mirrors keras' JAXTrainer).

The model's loss runs inside one ``StatelessScope`` that maps every
trainable, non-trainable (seed generators included) and metric variable to
the values threaded through ``state``, so noise advances from step to step and
metrics (also those of sublayers such as ``KLDivergenceRegularizer``) update.
"""

import contextlib

import jax
import keras

from keras_vae.backends._shared import nan_rows_for_bad_labels, one_step_per_execution

# Attributes Keras' JAX trainer sets in its fit/evaluate/predict loops after every batch (the
# new state, as a dict of lists of arrays). Keras only reads them back (`jax_state_sync`), but
# `Layer.__setattr__` runs its tracker over the whole dict first, on every step: 15-20 % of the
# `fit` time of the benchmarks' MLP VAE on CPU (py-spy), and nothing in it is ever tracked.
_UNTRACKED_LOOP_STATE = frozenset({"_jax_state", "_jax_state_synced"})


class TrainStep:
    def __setattr__(self, name, value):
        if name in _UNTRACKED_LOOP_STATE:
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def _stateless_loss(
        self,
        trainable_variables,
        non_trainable_variables,
        metrics_variables,
        optimizer_variables,
        data,
        training,
    ):
        x, y, sample_weight = self.unpack_data(data)
        mapping = (
            list(zip(self.trainable_variables, trainable_variables))
            + list(zip(self.non_trainable_variables, non_trainable_variables))
            + list(zip(self.metrics_variables, metrics_variables))
        )
        with keras.StatelessScope(state_mapping=mapping, collect_losses=True) as scope:
            outputs, terms = self.compute_total_loss(x, y, sample_weight, training=training)
            logs = self.update_metrics(x, y, sample_weight, outputs, terms)

        def current(variables):
            return [
                value if (value := scope.get_current_value(v)) is not None else v.value
                for v in variables
            ]

        loss = terms["loss"]
        if training and self.optimizer is not None:
            optimizer_mapping = list(zip(self.optimizer.variables, optimizer_variables))
            with keras.StatelessScope(state_mapping=optimizer_mapping):
                loss = self.optimizer.scale_loss(loss)
        return loss, (
            logs,
            current(self.non_trainable_variables),
            current(self.metrics_variables),
        )

    def train_step(self, state, data):
        trainable, non_trainable, optimizer_variables, metrics_variables = state
        gradient_fn = jax.value_and_grad(self._stateless_loss, has_aux=True)
        (_, (logs, non_trainable, metrics_variables)), gradients = gradient_fn(
            trainable,
            non_trainable,
            metrics_variables,
            optimizer_variables,
            data,
            True,
        )
        trainable, optimizer_variables = self.optimizer.stateless_apply(
            optimizer_variables, gradients, trainable
        )
        return logs, (trainable, non_trainable, optimizer_variables, metrics_variables)

    def test_step(self, state, data):
        trainable, non_trainable, metrics_variables = state
        _, (logs, non_trainable, metrics_variables) = self._stateless_loss(
            trainable, non_trainable, metrics_variables, None, data, False
        )
        return logs, (trainable, non_trainable, metrics_variables)

    def compiles_optimizer_update(self):
        """False: on JAX the update is compiled with the rest of the step (Keras jit-compiles
        the whole step unless ``jit_compile=False``)."""
        return False


def no_grad():
    return contextlib.nullcontext()


def native_conv_transpose_is_slow():
    """XLA's CPU backend runs the kernel gradient of a strided transposed convolution on a naive
    path (about 3.6 s for a 14->28, 64->32 channel layer on a batch of 128, 2 cores)."""
    return jax.default_backend() == "cpu"


# Batches per compiled call under compile(steps_per_execution="auto"). Keras' JAX loop calls
# the jitted step once per batch either way (only callbacks and the state hand-over are spared).
AUTO_STEPS_PER_EXECUTION = 1
auto_steps_per_execution = one_step_per_execution


# ------------------------------------------------------------------- SavedModel export
# The converted functions read TensorFlow copies of the variables, which tracking the layers
# that hold the serving weights makes.
EXPORT_TRACKS_LAYERS = True


def serving_input_checks(fn, input_signature):
    """``fn`` itself: ``XlaCallModule`` refines the module's shapes and refuses a mismatch."""
    return fn


# A compiled JAX function cannot raise at run time: rows with bad labels become NaN.
checked_labels = nan_rows_for_bad_labels
