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


@keras.saving.register_keras_serializable(package="keras_vae")
class KLDivergenceRegularizer(keras.layers.Layer):
    """Adds ``weight * KL(N(z_mean, exp(z_log_var)) || N(prior_mean, I))`` as a loss.

    Returns its inputs ``[z_mean, z_log_var]`` unchanged and calls
    ``add_loss`` with the closed-form KL divergence of the diagonal Gaussian
    posterior from the prior, summed over the latent dimensions and averaged
    over the batch, times ``weight``. The prior is ``N(0, I)``, or
    ``N(prior_mean, I)`` when a third input is given (for example the output of
    `ClassMeanPrior`). Drop it into any functional model compiled with an
    ordinary reconstruction loss and ``fit`` optimises the ELBO.

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
        inputs: ``[z_mean, z_log_var]`` or ``[z_mean, z_log_var, prior_mean]``.

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
        z_mean, z_log_var = inputs[0], inputs[1]
        prior_mean = inputs[2] if len(inputs) > 2 else None
        kl = self.kl_divergence(z_mean, z_log_var, prior_mean)
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
