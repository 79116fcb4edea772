"""The conditional prior of a CVAE: a learned latent mean per class."""

from __future__ import annotations

import keras
from keras import ops

from keras_vae._config_checks import (
    MAX_LATENT_DIM,
    MAX_NUM_CLASSES,
    check_elements,
    check_int,
)


@keras.saving.register_keras_serializable(package="keras_vae")
class ClassMeanPrior(keras.layers.Layer):
    """Maps class labels to learned latent means ``mu_y`` (the prior ``N(mu_y, I)``).

    Paired with `KLDivergenceRegularizer` (as its ``prior_mean`` input) it
    gives the conditional-VAE KL term
    ``0.5 * sum((mu - mu_y)**2 + sigma**2 - log sigma**2 - 1)``; sampling
    ``mu_y + eps`` and decoding generates an example of class ``y``.

    Args:
        num_classes: int in ``[1, 1_000_000]``, number of classes.
        latent_dim: int in ``[1, 65_536]``, size of the latent space. The table
            of means, ``num_classes * latent_dim`` values, holds at most
            ``2**26`` (67,108,864) of them.
        embeddings_initializer: initializer of the ``(num_classes, latent_dim)``
            table of means; small random values break the symmetry between
            classes.
        **kwargs: base layer keyword arguments.

    Call arguments:
        labels: integer labels of shape ``(batch,)`` or ``(batch, 1)``, or
            one-hot (or soft) labels of shape ``(batch, num_classes)``.
            Integer labels must lie in ``[0, num_classes)``; the models'
            numpy methods check this, a traced graph cannot.

    Returns:
        Class means of shape ``(batch, latent_dim)``.

    Example:

    >>> import numpy as np
    >>> prior = ClassMeanPrior(num_classes=10, latent_dim=2)
    >>> tuple(prior(np.array([0, 3, 9])).shape)
    (3, 2)
    """

    def __init__(
        self,
        num_classes: int,
        latent_dim: int,
        embeddings_initializer="random_normal",
        **kwargs,
    ):
        num_classes = check_int("num_classes", num_classes, 1, MAX_NUM_CLASSES)
        latent_dim = check_int("latent_dim", latent_dim, 1, MAX_LATENT_DIM)
        check_elements("num_classes * latent_dim", (num_classes, latent_dim))
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.latent_dim = latent_dim
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)

    def build(self, input_shape=None):
        if input_shape is not None:
            self._check_shape(input_shape)
        self.class_means = self.add_weight(
            shape=(self.num_classes, self.latent_dim),
            initializer=self.embeddings_initializer,
            name="class_means",
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

    def call(self, labels):
        kind = self._check_shape(labels.shape)
        means = ops.cast(self.class_means, self.compute_dtype)
        if kind == "one_hot" and not (self.num_classes == 1 and "int" in str(labels.dtype)):
            return ops.matmul(ops.cast(labels, self.compute_dtype), means)
        indices = ops.cast(ops.reshape(labels, (-1,)), "int32")
        return ops.take(means, indices, axis=0)

    def compute_output_shape(self, input_shape):
        self._check_shape(input_shape)
        return (input_shape[0], self.latent_dim)

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "latent_dim": self.latent_dim,
            "embeddings_initializer": keras.initializers.serialize(self.embeddings_initializer),
        }
