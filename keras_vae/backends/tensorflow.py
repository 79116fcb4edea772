"""train_step/test_step for the TensorFlow backend (mirrors keras' TensorFlowTrainer).

One addition to Keras' step: when ``compile(jit_compile="auto")`` (the default) leaves the
step uncompiled (Keras turns XLA off on a machine without a GPU), the optimizer update alone is
compiled with XLA. Keras' optimizers write each update as about ten element-wise TensorFlow ops
per variable (Adam: two moment updates, a square root, a division, ...), each one a pass over
memory; XLA fuses them into one loop per variable. For the MLP VAE of the benchmarks (653k
parameters) Adam's update drops from 4.1-4.8 to 1.7-2.5 ms and the whole step runs 6-19 % faster
(`make bench-step-parts`, `make bench-steps`; `benchmarks/README.md`). The products and
convolutions stay on TensorFlow's own kernels: the conv VAE trains at about half the speed
with XLA on CPU, and XLA for the whole step often leaves a core idle on a small CPU.
``jit_compile=False`` turns it off; it is also off under a ``tf.distribute`` strategy and for
optimizers that are not Keras' own (a custom update may use ops XLA lacks).
"""

import contextlib
import functools

import tensorflow as tf

from keras_vae import _keras_compat
from keras_vae.backends import _shared
from keras_vae.backends._shared import zero_unless_finite


class TrainStep(_shared.PhasedTraining):
    def train_step(self, data):
        x, y, sample_weight = self.unpack_data(data)
        results = []
        for phase in self._phases_for_batch(x):  # unrolled when traced: one graph for all phases
            with tf.GradientTape() as tape:
                outputs, terms = phase.loss(x, y, sample_weight)
                # Per-replica mean over global batch / replicas: gradients sum across replicas.
                loss = _keras_compat.scale_loss_for_distribution(terms["loss"])
                loss = phase.optimizer.scale_loss(loss)
            gradients = tape.gradient(loss, phase.variables)
            if self.compiles_optimizer_update(phase.optimizer):
                # The guard against a NaN loss is fused into the XLA update there (no extra pass).
                self._compiled_update(phase.optimizer, phase.variables)(
                    list(gradients), terms["loss"]
                )
            else:
                gradients = zero_unless_finite(terms["loss"], gradients)
                phase.optimizer.apply_gradients(zip(gradients, phase.variables))
            results.append((outputs, terms))
        outputs, terms = _shared.merge_phase_results(results)
        return _logs_for_reduction(self, self.update_metrics(x, y, sample_weight, outputs, terms))

    def test_step(self, data):
        x, y, sample_weight = self.unpack_data(data)
        outputs, terms = self.compute_total_loss(x, y, sample_weight, training=False)
        return _logs_for_reduction(self, self.update_metrics(x, y, sample_weight, outputs, terms))

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        """Keras' own, given this replica's first batch instead of letting Keras all-reduce it.

        Keras 3.15 learns the batch shapes from ``strategy.reduce("MEAN", batch)``; under
        ``MultiWorkerMirroredStrategy`` with several workers that reduce refuses the tuple
        ``(x, y, sample_weight)`` ("Attempt to convert a value (PerReplica ...) to a Tensor",
        keras-team/keras#20585). One replica's batch has the same shapes. (A private Keras
        hook: `keras_vae._keras_compat.OVERRIDDEN_HOOKS` lists it.)
        """
        strategy = _keras_compat.distribute_strategy_at_creation(self)
        if iterator is not None and data_batch is None and strategy is not None:
            for _, _, batches in iterator:
                data_batch = tf.nest.map_structure(_first_replica_value, next(batches))
                break
            iterator = None
        return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def compiles_optimizer_update(self, optimizer=None):
        """Whether `train_step` runs the update of ``optimizer`` (default: ``self.optimizer``)
        as its own XLA computation."""
        return (
            getattr(self, "_jit_compile_requested", None) == "auto"
            and not self.jit_compile
            and not self.run_eagerly
            and not _under_strategy(self)
            and _is_keras_optimizer(self.optimizer if optimizer is None else optimizer)
        )

    def _compiled_update(self, optimizer, variables):
        """``update(gradients, loss)``: ``optimizer.apply`` (of zero gradients where ``loss`` is
        not finite) to ``variables`` in a ``tf.function(jit_compile=True)``, made once per
        optimizer and list of variables and kept while the phases of a step use the same ones
        (a recompile or a change of trainable variables makes new ones)."""
        key = (id(optimizer), tuple(id(v) for v in variables))
        cache = self.__dict__.get("_keras_vae_compiled_update")
        if cache is None or key not in cache:
            if not optimizer.built:
                optimizer.build(variables)

            def update(gradients, loss):
                optimizer.apply(zero_unless_finite(loss, gradients), variables)

            # A new dict: the updates of optimizers the model no longer steps are dropped.
            current = {id(o) for o in _shared.phase_optimizers(self)}
            cache = {kept: fn for kept, fn in (cache or {}).items() if kept[0] in current}
            cache[key] = tf.function(update, jit_compile=True)
            # Plain attribute: Keras' layer tracking has no business with a tf.function.
            object.__setattr__(self, "_keras_vae_compiled_update", cache)
        return cache[key]


def _first_replica_value(value):
    return value.values[0] if isinstance(value, tf.distribute.DistributedValues) else value


def _logs_for_reduction(model, logs):
    """``logs`` with a leading axis of 1 under ``MultiWorkerMirroredStrategy`` with several
    workers: there Keras 3.15 averages each log over the replicas with
    ``strategy.reduce("MEAN", value, axis=0)``, which refuses a scalar ("Invalid reduction
    dimension 0 for input with 0 dimensions"); the reduce turns them back into scalars."""
    if not _keras_compat.is_multi_worker(model.distribute_strategy):
        return logs
    return {name: tf.expand_dims(value, 0) for name, value in logs.items()}


def _under_strategy(model):
    # Keras records the strategy a model was created under; inside its replica function
    # has_strategy() says so too.
    created_under = _keras_compat.distribute_strategy_at_creation(model)
    return created_under is not None or tf.distribute.has_strategy()


def _is_keras_optimizer(optimizer):
    """Keras' own optimizers are written to compile with XLA (Keras compiles them whole on GPUs)."""
    while optimizer is not None:
        if not type(optimizer).__module__.startswith("keras."):
            return False
        optimizer = getattr(optimizer, "inner_optimizer", None)
    return True


# ------------------------------------------------------------------- noise per replica
def _replica_seed(seed_generator):
    """The generator's next seed folded with this replica's index, or None outside replicas.

    Every replica of a `tf.distribute` strategy runs the same step with the same (mirrored)
    seed state, so `keras.random` would draw the same noise on each: the examples of every
    replica would share their noise. Folding in ``replica_id_in_sync_group`` (global across
    the workers of a `MultiWorkerMirroredStrategy`) keeps the draws distinct, and the seed
    still reproduces a run.
    """
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return None
    seed = tf.cast(seed_generator.next(), tf.int64)
    return tf.random.experimental.stateless_fold_in(seed, context.replica_id_in_sync_group)


def random_normal(shape, seed_generator, dtype="float32"):
    """Standard-normal noise from ``seed_generator``, distinct on each replica."""
    seed = _replica_seed(seed_generator)
    if seed is None:
        return _shared.random_normal(shape, seed_generator, dtype)
    return tf.random.stateless_normal(shape, seed, dtype=dtype)


def random_uniform(shape, seed_generator, dtype="float32"):
    """Noise uniform in [0, 1) from ``seed_generator``, distinct on each replica."""
    seed = _replica_seed(seed_generator)
    if seed is None:
        return _shared.random_uniform(shape, seed_generator, dtype)
    return tf.random.stateless_uniform(shape, seed, dtype=dtype)


def no_grad():
    return contextlib.nullcontext()


def inference_function(fn):
    """``fn`` as one TensorFlow graph, for the many same-shaped calls of the likelihood
    estimators (eager dispatch costs ~10 us per op). Each estimate makes its own function, so
    TensorFlow's warning about functions that trace often (meant for a function re-created in
    a loop by mistake) is silenced while it traces."""
    compiled = tf.function(fn)

    def run(*args):
        logger = tf.get_logger()
        level = logger.level
        logger.setLevel("ERROR")
        try:
            return compiled(*args)
        finally:
            logger.setLevel(level)

    return run


inference_rows = _shared.inference_rows

# The estimators' Bernoulli kernel under XLA, inside their (non-XLA) graphs: XLA fuses its
# element-wise passes over the logits into one, while the decoder's products stay on
# TensorFlow's own kernels (XLA's CPU products are slower). One function for the process, so
# each shape compiles once. 8,192 x 784 logits on 2 cores: 2.8x faster than the per-pixel form
# as TensorFlow runs it without XLA, 2.1x faster than that form under XLA.
bernoulli_log_prob_sum = tf.function(_shared.bernoulli_log_prob_sum, jit_compile=True)


def native_conv_transpose_is_slow():
    return False


# Batches per compiled call under compile(steps_per_execution="auto"): Keras runs them in a
# tf.while_loop inside one graph call, sparing its Python fit loop per batch. MLP VAE of the
# benchmarks on 2 CPU cores, fit epochs in turn in one process: 1.27-1.37x the speed of one step
# per call at 8-128 (32 chosen: the progress bar still moves ~15 times per 60k-example epoch).
AUTO_STEPS_PER_EXECUTION = 32


def auto_steps_per_execution(model):
    """``AUTO_STEPS_PER_EXECUTION``, or 1 for a model made under a ``tf.distribute`` strategy:
    there Keras 3.15's multi-step loop fails on TF 2.21 ("You must feed a value for placeholder
    tensor 'while/cond/Placeholder'", also for a plain ``Sequential`` model; the error of
    keras-team/keras#19246)."""
    return 1 if _under_strategy(model) else AUTO_STEPS_PER_EXECUTION


# ------------------------------------------------------------------- SavedModel export
# The endpoint functions capture the variables themselves; tracking the layers as well would
# store every weight twice.
EXPORT_TRACKS_LAYERS = False


def serving_input_checks(fn, input_signature):
    """``fn`` refusing, at run time, inputs whose shape does not match ``input_signature``.

    A served graph is fed raw tensors (TensorFlow Serving does not check shapes), and some
    kernels abort the whole process on a tensor of the wrong rank (oneDNN convolutions do):
    `tf.ensure_shape` turns that into an ``InvalidArgumentError``, and several inputs must
    agree on the batch size.
    """

    @functools.wraps(fn)
    def checked(*inputs):
        inputs = [
            tf.ensure_shape(tensor, spec.shape, name=f"check_{spec.name}_shape")
            for tensor, spec in zip(inputs, input_signature)
        ]
        if len(inputs) > 1:
            names = " and ".join(spec.name for spec in input_signature)
            sizes = [tf.shape(tensor)[0] for tensor in inputs]
            checks = [
                tf.debugging.assert_equal(sizes[0], size, f"{names} must have the same batch size")
                for size in sizes[1:]
            ]
            with tf.control_dependencies(checks):
                inputs = [tf.identity(tensor) for tensor in inputs]
        return fn(*inputs)

    return checked


def checked_labels(labels, num_classes, fn):
    """``fn(labels)`` after run-time asserts that every label is in ``[0, num_classes)``."""
    message = f"labels must be class indices in [0, {num_classes})"
    checks = [
        tf.debugging.assert_non_negative(labels, message=message),
        tf.debugging.assert_less(labels, tf.constant(num_classes, labels.dtype), message),
    ]
    with tf.control_dependencies(checks):
        return fn(tf.identity(labels))


datasets_must_keep_their_batch_size = _shared.datasets_never_sharded_by_batch_size
# SavedModel export writes in this process (Keras exports from TensorFlow itself).
export_saved_model = _shared.export_in_this_process
