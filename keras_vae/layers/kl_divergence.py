"""A pass-through layer that adds the Gaussian KL term of a VAE to the model's losses."""

from __future__ import annotations

import keras

from keras_vae import _keras_compat
from keras_vae import losses as vae_losses
from keras_vae._config_checks import MAX_WEIGHT, check_float
from keras_vae.layers._validation import check_mean_and_log_var


def _metric_state_is_tracked(metric) -> bool:
    """Whether updating ``metric`` now is kept.

    Inside a stateless scope (JAX's ``stateless_call``) a metric update is only
    kept when the scope maps the metric's variables; Keras' default JAX step
    does not, so the update is skipped there (keras_vae's models do map them).
    """
    scope = _keras_compat.current_stateless_scope()
    if scope is None:
        return True
    return all(scope.get_current_value(v) is not None for v in metric.variables)


def _shape_of(tensor):
    return None if tensor is None else tuple(tensor.shape)


@keras.saving.register_keras_serializable(package="keras_vae")
class KLDivergenceRegularizer(keras.layers.Layer):
    """Adds ``weight * KL(N(z_mean, exp(z_log_var)) || prior)``, a diagonal Gaussian prior.

    Returns its inputs ``[z_mean, z_log_var]`` unchanged and calls
    ``add_loss`` with the closed-form KL divergence of the diagonal Gaussian
    posterior from a diagonal Gaussian prior, summed over the latent
    dimensions and averaged over the batch, times ``weight``. Per dimension,
    with ``s1**2 = exp(z_log_var)`` and ``s2**2 = exp(prior_log_var)``,

    ``KL = log(s2 / s1) + (s1**2 + (z_mean - prior_mean)**2) / (2 s2**2) - 1/2``

    (`keras_vae.losses.gaussian_kl`). The prior is ``N(0, I)`` with two
    inputs, ``N(prior_mean, I)`` with a third (for example the output of
    `ClassMeanPrior`) and ``N(prior_mean, exp(prior_log_var))`` with a fourth
    (`ClassMeanPrior` with ``learn_variance=True`` gives both). Every input has
    the shape of ``z_mean``. Drop it into any functional model compiled with
    an ordinary reconstruction loss and ``fit`` optimises the ELBO.

    ``weight`` lives in the non-trainable variable ``kl_weight``, so a callback
    can anneal it during ``fit`` (``layer.kl_weight.assign(0.5)``) without
    recompiling. ``free_bits`` floors each latent dimension's batch-mean KL at
    that many nats (Kingma et al. 2016), against posterior collapse.

    The unweighted KL is logged by ``fit`` as the metric ``metric_name``
    (default ``"kl_divergence"``; ``None`` turns it off). Keras' default JAX
    train step runs layers without their metric state, so there the metric
    stays at 0 (the loss itself is always right); keras_vae's models log it
    on every backend.

    Args:
        weight: finite float in ``[0, 1e6]``, the KL weight (beta).
        free_bits: finite float in ``[0, 1e6]``, nats per latent dimension.
        metric_name: name of the logged metric (a string), or ``None``.
        **kwargs: base layer keyword arguments.

    Call arguments:
        inputs: ``[z_mean, z_log_var]``, ``[z_mean, z_log_var, prior_mean]`` or
            ``[z_mean, z_log_var, prior_mean, prior_log_var]``, all of one
            shape; anything else raises a ``ValueError`` naming the input.

    Example:

    >>> import keras
    >>> from keras_vae.layers import KLDivergenceRegularizer, Sampling
    >>> x = keras.Input((8,))
    >>> z_mean = keras.layers.Dense(2)(x)
    >>> z_log_var = keras.layers.Dense(2)(x)
    >>> z_mean, z_log_var = KLDivergenceRegularizer()([z_mean, z_log_var])
    >>> z = Sampling(seed=0)([z_mean, z_log_var])
    >>> vae = keras.Model(x, keras.layers.Dense(8)(z))
    >>> vae.compile(optimizer="adam", loss="mse")

    A prior with its own variance: ``KL(N(0, 1) || N(1, 4)) = log 2 + 2/8 - 1/2``.

    >>> import numpy as np
    >>> layer = KLDivergenceRegularizer()
    >>> zeros, ones = np.zeros((1, 1), "float32"), np.ones((1, 1), "float32")
    >>> _ = layer([zeros, zeros, ones, np.log(4 * ones)])
    >>> round(float(keras.ops.convert_to_numpy(layer.losses[0])), 5)
    0.44315
    """

    def __init__(
        self,
        weight: float = 1.0,
        free_bits: float = 0.0,
        metric_name: str | None = "kl_divergence",
        **kwargs,
    ):
        weight = check_float("weight", weight, 0, MAX_WEIGHT)
        free_bits = check_float("free_bits", free_bits, 0, MAX_WEIGHT)
        if metric_name is not None and not isinstance(metric_name, str):
            raise ValueError(f"`metric_name` must be a string or None, received {metric_name!r}")
        super().__init__(**kwargs)
        self.weight = weight
        self.free_bits = free_bits
        self.metric_name = metric_name
        self.kl_tracker = keras.metrics.Mean(name=metric_name) if metric_name is not None else None
        # Created here rather than in build() so a callback or model can reach it at once.
        self.kl_weight = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(weight),
            trainable=False,
            dtype="float32",
            name="kl_weight",
        )

    def build(self, input_shape):
        check_mean_and_log_var(self.name, input_shape, allow_prior=True)
        self.built = True

    def kl_divergence(
        self, z_mean, z_log_var, prior_mean=None, sample_weight=None, prior_log_var=None
    ):
        """The unweighted KL (with free bits), a float32 scalar: nats per example."""
        return vae_losses.kl_divergence(
            z_mean,
            z_log_var,
            prior_mean,
            free_bits=self.free_bits,
            sample_weight=sample_weight,
            prior_log_var=prior_log_var,
        )

    def call(self, inputs):
        # Checked on every call (shapes only, no compute): build() sees only the first.
        shapes = [_shape_of(t) for t in inputs] if isinstance(inputs, (list, tuple)) else None
        check_mean_and_log_var(self.name, shapes or getattr(inputs, "shape", inputs), True)
        z_mean, z_log_var = inputs[0], inputs[1]
        prior_mean = inputs[2] if len(inputs) > 2 else None
        prior_log_var = inputs[3] if len(inputs) > 3 else None
        kl = self.kl_divergence(z_mean, z_log_var, prior_mean, prior_log_var=prior_log_var)
        self.add_loss(self.kl_weight * kl)
        if self.kl_tracker is not None and _metric_state_is_tracked(self.kl_tracker):
            self.kl_tracker.update_state(kl)
        return [z_mean, z_log_var]

    def compute_output_shape(self, input_shape):
        shapes = check_mean_and_log_var(self.name, input_shape, allow_prior=True)
        return [shapes[0], shapes[1]]

    def get_config(self):
        return {
            **super().get_config(),
            "weight": self.weight,
            "free_bits": self.free_bits,
            "metric_name": self.metric_name,
        }
