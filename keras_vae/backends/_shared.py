"""Backend-agnostic pieces that more than one backend module uses."""

import keras
from keras import ops


def nan_rows_for_bad_labels(labels, num_classes, fn):
    """``fn(labels)`` with rows whose label is outside ``[0, num_classes)`` set to NaN.

    For exported functions that cannot raise at run time (JAX code is traced into one XLA
    computation): the bad rows are computed on a clipped label, then replaced, so a caller sees
    NaN for exactly those rows and valid results for the others.
    """
    outputs = fn(ops.clip(labels, 0, num_classes - 1))
    valid = ops.logical_and(labels >= 0, labels < num_classes)
    return {
        name: ops.where(
            ops.reshape(valid, (-1,) + (1,) * (len(value.shape) - 1)), value, float("nan")
        )
        for name, value in outputs.items()
    }


def zero_unless_finite(loss, gradients):
    """``gradients``, or zeros where ``loss`` is NaN or inf: such a step puts no NaN into the
    weights (a `keras.callbacks.TerminateOnNaN` then stops a run with finite weights, and a
    backup holds no NaN). One ``where`` per gradient, fused into the step by XLA.
    """
    finite = ops.isfinite(loss)
    return [
        gradient if gradient is None else ops.where(finite, gradient, ops.zeros_like(gradient))
        for gradient in gradients
    ]


def random_normal(shape, seed_generator, dtype="float32"):
    """Standard-normal noise from ``seed_generator`` (JAX and torch: `keras.random.normal`).

    Under JAX's `keras.distribution.DataParallel` the draw has the global batch's shape and
    each device computes its own rows of it, so devices and processes get distinct noise.
    """
    return keras.random.normal(shape, seed=seed_generator, dtype=dtype)


def random_uniform(shape, seed_generator, dtype="float32"):
    """Noise uniform in [0, 1) from ``seed_generator`` (JAX and torch: `keras.random.uniform`)."""
    return keras.random.uniform(shape, seed=seed_generator, dtype=dtype)


def datasets_never_sharded_by_batch_size():
    """False: no Keras distribution of this backend reads a tf.data batch size from the graph."""
    return False


def export_in_this_process(model, filepath, write, verbose=True, **kwargs):
    """SavedModel export on TensorFlow and JAX: ``write`` (keras_vae.export's writer) runs here."""
    write(model, filepath, verbose=verbose, **kwargs)


def one_step_per_execution(model):
    """``compile(steps_per_execution="auto")`` on backends where it stays at 1."""
    return 1
