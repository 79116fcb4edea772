"""The conditional prior of a CVAE: a learned latent mean (and optionally variance) per class."""

from __future__ import annotations

import keras
from keras import ops

from keras_vae._config_checks import (
    MAX_LATENT_DIM,
    MAX_NUM_CLASSES,
    check_bool,
    check_elements,
    check_float,
    check_int,
)

# The soft clip of learned log-variances: |log_var| < bound, so a variance lies in
# (exp(-bound), exp(bound)); 30 keeps exp(bound) and exp(-bound) far inside float32.
MIN_LOG_VARIANCE_BOUND = 0.1
MAX_LOG_VARIANCE_BOUND = 30.0


@keras.saving.register_keras_serializable(package="keras_vae")
class ClassMeanPrior(keras.layers.Layer):
    """Maps class labels to a learned per-class prior ``N(mu_y, I)`` or ``N(mu_y, sigma_y**2)``.

    Paired with `KLDivergenceRegularizer` (as its ``prior_mean`` input) it
    gives the conditional-VAE KL term
    ``0.5 * sum((mu - mu_y)**2 + sigma**2 - log sigma**2 - 1)``; sampling
    ``mu_y + eps`` and decoding generates an example of class ``y``.

    With ``learn_variance=True`` the layer also learns a table of per-class
    log-variances ``log sigma_y**2`` (initialised to 0: unit variance) and
    returns ``(means, log_vars)``; fed to `KLDivergenceRegularizer` as
    ``[z_mean, z_log_var, means, log_vars]`` the KL is that of two diagonal
    Gaussians, ``log(sigma_y / sigma) + (sigma**2 + (mu - mu_y)**2) /
    (2 sigma_y**2) - 1/2`` per dimension, and ``mu_y + sigma_y * eps``
    generates. The learned log-variance is soft-clipped,
    ``log_var = bound * tanh(raw / bound)`` with ``bound =
    log_variance_bound``, so training can never drive a variance to 0 or
    infinity (nor the KL to inf/NaN): it is the identity to within 1% for
    ``|log_var| < bound / 6`` and saturates smoothly at ``+-bound``. The
    trainable table ``raw_class_log_variances`` holds ``raw``;
    `log_variances` gives the clipped values.

    Args:
        num_classes: int in ``[1, 1_000_000]``, number of classes.
        latent_dim: int in ``[1, 65_536]``, size of the latent space. Each
            table, ``num_classes * latent_dim`` values, holds at most
            ``2**26`` (67,108,864) of them.
        embeddings_initializer: initializer of the ``(num_classes, latent_dim)``
            table of means; small random values break the symmetry between
            classes.
        learn_variance: ``True`` or ``False`` (default, a unit variance and
            the means alone as output, as before this option existed).
        log_variance_bound: finite float in ``[0.1, 30]`` (default 10: a
            variance in ``(4.5e-5, 22026)``), the soft clip of the learned
            log-variances; unused without ``learn_variance``.
        **kwargs: base layer keyword arguments.

    Call arguments:
        labels: integer labels of shape ``(batch,)`` or ``(batch, 1)``, or
            one-hot (or soft) labels of shape ``(batch, num_classes)``.
            Integer labels must lie in ``[0, num_classes)``; the models'
            numpy methods check this, a traced graph cannot. Soft labels give
            the label-weighted average of the means (and log-variances): one
            Gaussian, not a mixture.

    Returns:
        Class means of shape ``(batch, latent_dim)``; with ``learn_variance``
        the pair ``(means, log_vars)``, both of that shape.

    Example:

    >>> import numpy as np
    >>> prior = ClassMeanPrior(num_classes=10, latent_dim=2)
    >>> tuple(prior(np.array([0, 3, 9])).shape)
    (3, 2)
    >>> prior = ClassMeanPrior(num_classes=10, latent_dim=2, learn_variance=True)
    >>> means, log_vars = prior(np.array([0, 3, 9]))
    >>> keras.ops.convert_to_numpy(log_vars).tolist()  # unit variance to start with
    [[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]]
    """

    def __init__(
        self,
        num_classes: int,
        latent_dim: int,
        embeddings_initializer="random_normal",
        learn_variance: bool = False,
        log_variance_bound: float = 10.0,
        **kwargs,
    ):
        num_classes = check_int("num_classes", num_classes, 1, MAX_NUM_CLASSES)
        latent_dim = check_int("latent_dim", latent_dim, 1, MAX_LATENT_DIM)
        check_elements("num_classes * latent_dim", (num_classes, latent_dim))
        learn_variance = check_bool("learn_variance", learn_variance)
        log_variance_bound = check_float(
            "log_variance_bound",
            log_variance_bound,
            MIN_LOG_VARIANCE_BOUND,
            MAX_LOG_VARIANCE_BOUND,
        )
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.latent_dim = latent_dim
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)
        self.learn_variance = learn_variance
        self.log_variance_bound = log_variance_bound

    def build(self, input_shape=None):
        if input_shape is not None:
            self._check_shape(input_shape)
        self.class_means = self.add_weight(
            shape=(self.num_classes, self.latent_dim),
            initializer=self.embeddings_initializer,
            name="class_means",
        )
        if self.learn_variance:
            self.raw_class_log_variances = self.add_weight(
                shape=(self.num_classes, self.latent_dim),
                initializer="zeros",
                name="raw_class_log_variances",
            )
        self.built = True

    def _check_shape(self, input_shape):
        shape = tuple(input_shape)
        if len(shape) == 1 or (len(shape) == 2 and shape[1] == 1):
            return "indices"
        if len(shape) == 2 and shape[1] == self.num_classes:
            return "one_hot"
        raise ValueError(
            f"Layer '{self.name}' expects integer labels of shape (batch,) or (batch, 1) "
            f"or one-hot labels of shape (batch, {self.num_classes}); received shape {shape}."
        )

    def log_variances(self):
        """The soft-clipped ``(num_classes, latent_dim)`` log-variances (zeros if not learned)."""
        if not self.learn_variance:
            return ops.zeros((self.num_classes, self.latent_dim), "float32")
        bound = self.log_variance_bound
        return bound * ops.tanh(ops.cast(self.raw_class_log_variances, "float32") / bound)

    def call(self, labels):
        kind = self._check_shape(labels.shape)
        tables = [ops.cast(self.class_means, self.compute_dtype)]
        if self.learn_variance:
            tables.append(ops.cast(self.log_variances(), self.compute_dtype))
        if kind == "one_hot" and not (self.num_classes == 1 and "int" in str(labels.dtype)):
            weights = ops.cast(labels, self.compute_dtype)
            outputs = [ops.matmul(weights, table) for table in tables]
        else:
            indices = ops.cast(ops.reshape(labels, (-1,)), "int32")
            outputs = [ops.take(table, indices, axis=0) for table in tables]
        return tuple(outputs) if self.learn_variance else outputs[0]

    def compute_output_shape(self, input_shape):
        self._check_shape(input_shape)
        shape = (input_shape[0], self.latent_dim)
        return (shape, shape) if self.learn_variance else shape

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "latent_dim": self.latent_dim,
            "embeddings_initializer": keras.initializers.serialize(self.embeddings_initializer),
            "learn_variance": self.learn_variance,
            "log_variance_bound": self.log_variance_bound,
        }
