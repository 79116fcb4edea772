"""Reconstruction log-likelihoods and the closed-form Gaussian KL.

Pure functions on tensors (``keras.ops`` only), used by the layers and the
models alike: one formula, one place. Every function computes in float32,
whatever the compute dtype of its inputs, so that mixed-precision training
never evaluates ``exp(z_log_var)``, logs or sums in float16.

Per-example functions return shape ``(batch,)``: the loss summed over all
non-batch axes. `reduce_over_batch` turns that into the scalar a model
optimises: the (sample-weighted) mean over the batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import keras
from keras import ops

_LOG_2PI = math.log(2.0 * math.pi)


def _float32(x):
    return ops.cast(x, "float32")


def sum_per_example(values):
    """Sums every non-batch axis, giving shape (batch,)."""
    if len(values.shape) <= 1:
        return values
    return ops.sum(values, axis=tuple(range(1, len(values.shape))))


def gaussian_kl(z_mean, z_log_var, prior_mean=None, prior_log_var=None):
    """Element-wise KL( N(z_mean, exp(z_log_var)) || N(prior_mean, exp(prior_log_var)) ).

    ``0.5 * (prior_log_var - z_log_var + (exp(z_log_var) + (z_mean - prior_mean)**2)
    / exp(prior_log_var) - 1)``, in float32, same shape as ``z_mean``: the KL of two
    diagonal Gaussians, ``log(s2 / s1) + (s1**2 + (mu1 - mu2)**2) / (2 s2**2) - 1/2`` per
    dimension. ``prior_mean=None`` means a zero mean, ``prior_log_var=None`` a unit variance
    (then ``0.5 * ((z_mean - prior_mean)**2 + exp(z_log_var) - z_log_var - 1)``).

    Example:

    >>> import numpy as np
    >>> kl = gaussian_kl(np.array([[1.0, 0.0]]), np.zeros((1, 2)))
    >>> keras.ops.convert_to_numpy(kl).tolist()
    [[0.5, 0.0]]
    >>> kl = gaussian_kl(np.zeros((1, 1)), np.zeros((1, 1)), prior_log_var=np.log(np.e * np.ones((1, 1))))
    >>> round(float(keras.ops.convert_to_numpy(kl)[0, 0]), 6)  # 0.5 * (1 + 1/e - 1 - 1)
    0.18394
    """
    z_mean = _float32(z_mean)
    z_log_var = _float32(z_log_var)
    difference = z_mean if prior_mean is None else z_mean - _float32(prior_mean)
    if prior_log_var is None:
        return 0.5 * (ops.square(difference) + ops.exp(z_log_var) - z_log_var - 1.0)
    prior_log_var = _float32(prior_log_var)
    return 0.5 * (
        prior_log_var
        - z_log_var
        + (ops.exp(z_log_var) + ops.square(difference)) * ops.exp(-prior_log_var)
        - 1.0
    )


def kl_divergence(
    z_mean, z_log_var, prior_mean=None, free_bits=0.0, sample_weight=None, prior_log_var=None
):
    """KL of a diagonal Gaussian posterior to a diagonal Gaussian prior, as a scalar.

    The prior is ``N(prior_mean, exp(prior_log_var))``: ``N(0, I)`` where both are ``None``.

    Summed over the latent dimensions (every non-batch axis) and averaged over
    the batch. With ``free_bits > 0`` each latent dimension's batch-mean KL is
    floored at ``free_bits`` nats before the sum (Kingma et al. 2016), so the
    optimiser stops pushing a dimension below that budget.

    Args:
        z_mean: posterior means, shape ``(batch, ...)``.
        z_log_var: posterior log-variances, same shape.
        prior_mean: optional prior means, broadcastable to ``z_mean``.
        prior_log_var: optional prior log-variances, broadcastable to ``z_mean``.
        free_bits: nats per latent dimension, >= 0.
        sample_weight: optional per-example weights, shape ``(batch,)``.

    Returns:
        A float32 scalar, nats per example.
    """
    per_element = gaussian_kl(z_mean, z_log_var, prior_mean, prior_log_var)
    if not free_bits:
        return reduce_over_batch(sum_per_example(per_element), sample_weight)
    batch_size = ops.cast(ops.shape(per_element)[0], "float32")
    if sample_weight is None:
        per_dimension = ops.mean(per_element, axis=0)
    else:
        weights = ops.reshape(_float32(sample_weight), (-1,) + (1,) * (len(per_element.shape) - 1))
        per_dimension = ops.sum(per_element * weights, axis=0) / batch_size
    return ops.sum(ops.maximum(per_dimension, float(free_bits)))


def bernoulli_nll(x, outputs, from_logits=True):
    """Negative Bernoulli log-likelihood of ``x`` in [0, 1], summed per example.

    Args:
        x: targets in [0, 1] (binary or grey levels), shape ``(batch, ...)``.
        outputs: decoder outputs, logits when ``from_logits`` else probabilities.
        from_logits: whether ``outputs`` are logits (the fast, stable default).

    Returns:
        float32 tensor of shape ``(batch,)``: nats per example.
    """
    x = _float32(x)
    outputs = _float32(outputs)
    if from_logits:
        # softplus(l) - l * x = -x log(sigmoid(l)) - (1 - x) log(1 - sigmoid(l)), stable for
        # any l: one exp and one log1p per element and three element-wise kernels where an
        # unfused backend (torch) launches one per op. Measured against Keras'
        # binary_crossentropy(from_logits=True) (two log-sigmoids on JAX) and the textbook
        # max(l, 0) - l x + log1p(exp(-|l|)): equal within noise on CPU on every backend.
        per_element = ops.softplus(outputs) - outputs * x
    else:
        epsilon = keras.config.epsilon()
        probabilities = ops.clip(outputs, epsilon, 1.0 - epsilon)
        per_element = -(x * ops.log(probabilities) + (1.0 - x) * ops.log1p(-probabilities))
    return sum_per_example(per_element)


def squared_error(x, outputs):
    """Sum of squared errors per example, float32, shape ``(batch,)``."""
    return sum_per_example(ops.square(_float32(x) - _float32(outputs)))


def gaussian_nll(x, outputs):
    """Negative log-likelihood of ``x`` under N(outputs, I), summed per example (nats)."""
    squared = ops.square(_float32(x) - _float32(outputs))
    return sum_per_example(0.5 * squared + 0.5 * _LOG_2PI)


def reduce_over_batch(per_example, sample_weight=None):
    """Mean over the batch of per-example losses, weighted by ``sample_weight``.

    With weights this is ``sum(w * loss) / batch_size``, the convention of
    Keras' ``"sum_over_batch_size"`` reduction.
    """
    per_example = _float32(per_example)
    if sample_weight is None:
        return ops.mean(per_example)
    weights = ops.reshape(_float32(sample_weight), ops.shape(per_example))
    batch_size = ops.cast(ops.shape(per_example)[0], "float32")
    return ops.sum(per_example * weights) / batch_size


RECONSTRUCTION_LOSSES = ("bernoulli", "gaussian", "mse")


def normalized_nll(fn: Callable) -> Callable:
    """Marks ``fn(x, outputs)`` as a normalised negative log-likelihood, and returns it.

    A model's ``log_likelihood`` and ``elbo`` refuse a callable reconstruction loss unless it
    carries this mark: only the negative log of a density that integrates (or sums) to 1 over
    the data space gives a likelihood in nats. Mark a module-level function registered with
    `keras.saving.register_keras_serializable`, so the mark survives a ``.keras`` round trip.

    Example:

    >>> import keras
    >>> @normalized_nll
    ... def laplace_nll(x, outputs):  # Laplace(outputs, 1): log 2 + |x - outputs| per element
    ...     return keras.ops.abs(x - outputs) + 0.6931472
    >>> laplace_nll.is_normalized_nll
    True
    """
    fn.is_normalized_nll = True
    return fn


def get_reconstruction_loss(identifier, from_logits=True) -> Callable:
    """Returns ``fn(x, outputs) -> (batch,)`` for a name or a callable.

    Names: ``"bernoulli"`` (binary cross-entropy, from logits or
    probabilities), ``"gaussian"`` (NLL under a unit-variance Gaussian, nats)
    and ``"mse"`` (sum of squared errors). A callable is used as given and
    may return per-example values ``(batch,)`` or per-element values, which are
    summed over the data dimensions.
    """
    if callable(identifier):
        return lambda x, outputs: sum_per_example(_float32(identifier(x, outputs)))
    if identifier == "bernoulli":
        return lambda x, outputs: bernoulli_nll(x, outputs, from_logits=from_logits)
    if identifier == "gaussian":
        return gaussian_nll
    if identifier == "mse":
        return squared_error
    raise ValueError(
        f"Unknown reconstruction_loss {identifier!r}: expected one of "
        f"{RECONSTRUCTION_LOSSES} or a callable fn(x, outputs)."
    )
