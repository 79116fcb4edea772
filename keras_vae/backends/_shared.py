"""Backend-agnostic pieces that more than one backend module uses."""

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


def one_step_per_execution(model):
    """``compile(steps_per_execution="auto")`` on backends where it stays at 1."""
    return 1
