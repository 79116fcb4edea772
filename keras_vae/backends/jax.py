"""Stateless train_step/test_step for the JAX backend (mirrors keras' JAXTrainer).

The model's loss runs inside one ``StatelessScope`` that maps every
trainable, non-trainable (seed generators included) and metric variable to
the values threaded through ``state``, so noise advances from step to step and
metrics (also those of sublayers such as ``KLDivergenceRegularizer``) update.
"""

import contextlib
import warnings

import jax
import keras
from keras import ops

from keras_vae import _keras_compat
from keras_vae.backends import _shared
from keras_vae.backends._shared import (  # noqa: F401 (re-exported)
    export_in_this_process,
    nan_rows_for_bad_labels,
    one_step_per_execution,
    random_normal,
    random_uniform,
    zero_unless_finite,
)

# Keras' JAX trainer sets these in its fit/evaluate/predict loops after every batch (the new
# state, as a dict of lists of arrays). Keras only reads them back (`jax_state_sync`), but
# `Layer.__setattr__` runs its tracker over the whole dict first, on every step: 15-20 % of the
# `fit` time of the benchmarks' MLP VAE on CPU (py-spy), and nothing in it is ever tracked.
_UNTRACKED_LOOP_STATE = _keras_compat.JAX_LOOP_STATE_ATTRIBUTES


# The parts of the state tuples of Keras' train (4), test (3) and predict (2) functions.
_STATE_NAMES = {
    4: (
        "trainable_variables",
        "non_trainable_variables",
        "optimizer_variables",
        "metrics_variables",
    ),
    3: ("trainable_variables", "non_trainable_variables", "metrics_variables"),
    2: ("trainable_variables", "non_trainable_variables"),
}


class TrainStep(_shared.PhasedTraining):
    def __setattr__(self, name, value):
        if name in _UNTRACKED_LOOP_STATE:
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    # _get_jax_state, _make_function and _get_state_sharding_spec are private Keras hooks,
    # listed (with the arguments passed on) in keras_vae._keras_compat.OVERRIDDEN_HOOKS.
    def _get_jax_state(
        self,
        trainable_variables=False,
        non_trainable_variables=False,
        optimizer_variables=False,
        metrics_variables=False,
        purge_model_variables=False,
    ):
        """Keras' state hand-over, with two changes.

        The optimizer part holds the variables of every phase optimizer (`training_phases`),
        ``self.optimizer``'s first: Keras' loop threads only ``self.optimizer.variables``,
        and reads back (`jax_state_sync`) only as many.

        The state it purges from the variables is kept as ``_jax_state``, from which
        ``jax_state_sync`` (run in ``fit``'s ``finally``) writes it back. Keras purges the
        variables before the first step of an epoch and writes the new state back after it;
        when that step raises (keras_vae's input check refusing a batch drawn inside a
        multi-step call), Keras 3.15 would leave the variables empty."""
        requested = {
            "trainable_variables": trainable_variables,
            "non_trainable_variables": non_trainable_variables,
            "optimizer_variables": optimizer_variables,
            "metrics_variables": metrics_variables,
        }
        state = super()._get_jax_state(**requested)
        extra = _shared.extra_optimizer_variables(self) if optimizer_variables else []
        if extra:
            index = trainable_variables + non_trainable_variables  # optimizer's place in state
            state = (
                *state[:index],
                state[index] + [variable.value for variable in extra],
                *state[index + 1 :],
            )
        if purge_model_variables:
            names = [name for name, wanted in requested.items() if wanted]
            _keras_compat.set_jax_loop_state(self, dict(zip(names, state)))
            self._purge_model_variables(**requested)
        return state

    def jax_state_sync(self):
        """Keras' own, which writes back ``self.optimizer``'s part of the optimizer state, then
        the state of the other phase optimizers that follows it."""
        values = _keras_compat.unsynced_jax_optimizer_state(self)
        super().jax_state_sync()
        extra = _shared.extra_optimizer_variables(self) if values else []
        if extra:
            for variable, value in zip(extra, values[len(values) - len(extra) :], strict=True):
                variable.assign(value)

    def _get_state_sharding_spec(self):
        """Keras' shardings of the loop state, with those of the other phase optimizers'
        variables after ``self.optimizer``'s (under a `keras.distribution`)."""
        trainable, non_trainable, optimizer, metrics = super()._get_state_sharding_spec()
        extra = [v.value.sharding for v in _shared.extra_optimizer_variables(self)]
        return trainable, non_trainable, list(optimizer) + extra, metrics

    def _make_function(self, step_function, concatenate_outputs=False):
        """Keras' function over ``steps_per_execution`` batches, its steps keeping their new
        state as ``_jax_state``. When a batch drawn inside a multi-step call is refused, the
        steps before it have consumed (donated) the call's input state: the state of the last
        step is then what ``jax_state_sync`` writes back, instead of deleted arrays."""

        def step_keeping_state(state, data):
            outputs, state = step_function(state, data)
            _keras_compat.set_jax_loop_state(self, dict(zip(_STATE_NAMES[len(state)], state)))
            return outputs, state

        if self.steps_per_execution == 1:
            return super()._make_function(step_function, concatenate_outputs)
        return super()._make_function(step_keeping_state, concatenate_outputs)

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
        phases = self._phases_for_batch(self.unpack_data(data)[0])
        (first, *others) = phases
        if (
            not others
            and first.loss == self._total_loss_phase
            and first.optimizer is self.optimizer
        ):
            return self._one_phase_train_step(state, data)  # the default phase, as Keras' step
        return self._phased_train_step(phases, state, data)

    def _one_phase_train_step(self, state, data):
        trainable, non_trainable, optimizer_variables, metrics_variables = state
        gradient_fn = jax.value_and_grad(self._stateless_loss, has_aux=True)
        (loss, (logs, non_trainable, metrics_variables)), gradients = gradient_fn(
            trainable,
            non_trainable,
            metrics_variables,
            optimizer_variables,
            data,
            True,
        )
        gradients = zero_unless_finite(loss, gradients)
        trainable, optimizer_variables = self.optimizer.stateless_apply(
            optimizer_variables, gradients, trainable
        )
        return logs, (trainable, non_trainable, optimizer_variables, metrics_variables)

    def _phased_train_step(self, phases, state, data):
        """Each phase's gradient and optimizer step in turn, on the state the phase before
        left; then the metrics of all phases (as Keras' own step updates them, after)."""
        trainable, non_trainable, optimizer_values, metrics_values = (list(part) for part in state)
        x, y, sample_weight = self.unpack_data(data)
        trainable_variables = self.trainable_variables
        position = {id(variable): index for index, variable in enumerate(trainable_variables)}
        slots, start = {}, 0  # where each optimizer's variables lie in optimizer_values
        for optimizer in _shared.phase_optimizers(self):
            slots[id(optimizer)] = slice(start, start + len(optimizer.variables))
            start += len(optimizer.variables)
        results = []
        for phase in phases:
            indices = [position[id(variable)] for variable in phase.variables]
            slot = slots[id(phase.optimizer)]

            def phase_loss(
                values,
                trainable,
                non_trainable,
                metrics_values,
                phase=phase,
                indices=indices,
                own_optimizer_values=optimizer_values[slot],
            ):
                trainable = list(trainable)
                for index, value in zip(indices, values):
                    trainable[index] = value
                mapping = (
                    list(zip(trainable_variables, trainable))
                    + list(zip(self.non_trainable_variables, non_trainable))
                    + list(zip(self.metrics_variables, metrics_values))
                )
                with keras.StatelessScope(state_mapping=mapping, collect_losses=True) as scope:
                    outputs, terms = phase.loss(x, y, sample_weight)
                optimizer_mapping = list(zip(phase.optimizer.variables, own_optimizer_values))
                with keras.StatelessScope(state_mapping=optimizer_mapping):
                    loss = phase.optimizer.scale_loss(terms["loss"])
                return loss, (
                    outputs,
                    terms,
                    _current(scope, self.non_trainable_variables),
                    _current(scope, self.metrics_variables),
                )

            values = [trainable[index] for index in indices]
            (_, (outputs, terms, non_trainable, metrics_values)), gradients = jax.value_and_grad(
                phase_loss, has_aux=True
            )(values, trainable, non_trainable, metrics_values)
            gradients = zero_unless_finite(terms["loss"], gradients)
            # Keras' own stateless update, over the variables the optimizer was built on:
            # None (skipped) for those this phase does not step.
            stepped = dict(zip(indices, gradients))
            built_on = [position[id(v)] for v in _keras_compat.optimizer_built_on(phase.optimizer)]
            with warnings.catch_warnings():
                # Keras skips a variable without a gradient, as it should here; its warning
                # (written for a compile without a loss) would mislead.
                warnings.filterwarnings("ignore", "Gradients do not exist for variables")
                new_values, optimizer_values[slot] = phase.optimizer.stateless_apply(
                    optimizer_values[slot],
                    [stepped.get(index) for index in built_on],
                    [trainable[index] for index in built_on],
                )
            for index, value in zip(built_on, new_values):
                if index in stepped:
                    trainable[index] = value
            results.append((outputs, terms))
        outputs, terms = _shared.merge_phase_results(results)
        mapping = list(zip(self.metrics_variables, metrics_values))
        with keras.StatelessScope(state_mapping=mapping) as scope:
            logs = self.update_metrics(x, y, sample_weight, outputs, terms)
        metrics_values = _current(scope, self.metrics_variables)
        return logs, (trainable, non_trainable, optimizer_values, metrics_values)

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


def datasets_must_keep_their_batch_size():
    """Whether tf.data input may not be mapped over: Keras shards it across processes (a
    multi-process `keras.distribution` with ``auto_shard_dataset``) by reading its batch size
    from the dataset graph, which a ``map`` after ``batch`` hides."""
    distribution = keras.distribution.distribution()
    return (
        distribution is not None
        and getattr(distribution, "auto_shard_dataset", False)
        and jax.process_count() > 1
    )


def no_grad():
    return contextlib.nullcontext()


def inference_function(fn):
    """``fn`` jit-compiled, for the many same-shaped calls of the likelihood estimators. The
    trace captures the variables' current values as constants: make it anew per estimate."""
    return jax.jit(fn)


inference_rows = _shared.inference_rows


def bernoulli_log_prob_sum(x, logits):
    """`_shared.bernoulli_log_prob_sum` as a sum of `_shared.bernoulli_log_prob_elements`,
    which XLA fuses with the decoder's last bias into one pass over the logits: the estimator's
    jitted chunk (MLP 784-400-20, 8,192 rows, 2 cores) took 14.4 ms in all, against 18.5 ms
    with the grouped products and batched product of the shared kernel."""
    return ops.sum(_shared.bernoulli_log_prob_elements(x, logits), axis=-1)


def native_conv_transpose_is_slow():
    """XLA's CPU backend runs the kernel gradient of a strided transposed convolution on a naive
    path (about 3.6 s for a 14->28, 64->32 channel layer on a batch of 128, 2 cores)."""
    return jax.default_backend() == "cpu"


# Batches per compiled call under compile(steps_per_execution="auto"). Keras' JAX loop calls
# the jitted step once per batch either way (only callbacks and the state hand-over are spared).
AUTO_STEPS_PER_EXECUTION = 1
auto_steps_per_execution = one_step_per_execution


def _current(scope, variables):
    """The values of ``variables`` in a `keras.StatelessScope`: assigned there, else mapped."""
    return [
        value if (value := scope.get_current_value(v)) is not None else v.value for v in variables
    ]


# ------------------------------------------------------------------- SavedModel export
# The converted functions read TensorFlow copies of the variables, which tracking the layers
# that hold the serving weights makes.
EXPORT_TRACKS_LAYERS = True


def serving_input_checks(fn, input_signature):
    """``fn`` itself: ``XlaCallModule`` refines the module's shapes and refuses a mismatch."""
    return fn


# A compiled JAX function cannot raise at run time: rows with bad labels become NaN.
checked_labels = nan_rows_for_bad_labels

# SavedModel export writes in this process (Keras converts the JAX functions itself).
export_saved_model = export_in_this_process
