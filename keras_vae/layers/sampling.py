"""The reparameterisation trick as a layer."""

from __future__ import annotations

import keras
from keras import ops

from keras_vae import backends
from keras_vae._config_checks import check_seed
from keras_vae.layers._validation import check_mean_and_log_var


@keras.saving.register_keras_serializable(package="keras_vae")
class Sampling(keras.layers.Layer):
    """Draws ``z = z_mean + exp(0.5 * z_log_var) * eps`` with ``eps ~ N(0, I)``.

    The reparameterisation trick of Kingma & Welling (2014): the draw is a
    differentiable function of ``z_mean`` and ``z_log_var``, so gradients flow
    to the encoder. Works on latents of any rank. The standard deviation is
    computed in float32, so float16/bfloat16 compute dtypes are safe.

    Args:
        seed: ``None`` or an int in ``[0, 2**31)``. Two layers with the same
            seed draw the same noise, call after call.
        **kwargs: base layer keyword arguments (``name``, ``dtype``...).

    Call arguments:
        inputs: list ``[z_mean, z_log_var]`` of tensors of the same shape.
        eps: optional tensor of standard-normal noise of the same shape, used
            instead of a fresh draw (for reproducible or quasi-random noise).

    Example:

    >>> import numpy as np
    >>> z_mean = np.zeros((4, 2), "float32")
    >>> z_log_var = np.zeros((4, 2), "float32")
    >>> z = Sampling(seed=1)([z_mean, z_log_var])
    >>> tuple(z.shape)
    (4, 2)
    """

    def __init__(self, seed: int | None = None, **kwargs):
        seed = check_seed("seed", seed)
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    def build(self, input_shape):
        check_mean_and_log_var(self.name, input_shape)
        self.built = True

    def call(self, inputs, eps=None):
        z_mean, z_log_var = inputs[0], inputs[1]
        if eps is None:
            eps = backends.random_normal(ops.shape(z_mean), self.seed_generator)
        stddev = ops.exp(0.5 * ops.cast(z_log_var, "float32"))
        z = ops.cast(z_mean, "float32") + stddev * ops.cast(eps, "float32")
        return ops.cast(z, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        check_mean_and_log_var(self.name, input_shape)
        return tuple(input_shape[0])

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}
