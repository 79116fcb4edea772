"""The variational autoencoder."""

from __future__ import annotations

import keras

from keras_vae._config_checks import MAX_WEIGHT, check_float, check_seed
from keras_vae.layers import KLDivergenceRegularizer, Sampling
from keras_vae.models.base import BaseAutoencoder, check_count, standard_normal


@keras.saving.register_keras_serializable(package="keras_vae")
class VAE(BaseAutoencoder):
    """Variational autoencoder (Kingma & Welling 2014) with a N(0, I) prior.

    The encoder maps ``x`` to ``[z_mean, z_log_var]`` (then optional extras
    for the decoder); `Sampling` draws ``z``; the decoder maps ``z`` to the
    parameters of ``p(x | z)``. The loss is

    ``reconstruction_loss + beta * kl_loss``

    with both terms summed over dimensions and averaged over the batch, so for
    ``beta=1`` and a likelihood reconstruction loss (``"bernoulli"`` or
    ``"gaussian"``) ``loss`` is the negative ELBO in nats per example. The KL
    is the closed form of `KLDivergenceRegularizer`, computed in float32;
    ``beta`` lives in the non-trainable variable ``kl_weight`` so
    `keras_vae.callbacks.KLWarmup` can anneal it during ``fit``.

    ``fit``, ``evaluate`` and validation log ``loss``, ``reconstruction_loss``
    and ``kl_loss`` (the unweighted KL). ``predict`` and `reconstruct` decode
    the posterior mean (deterministic); `generate` decodes prior samples.

    Args:
        encoder: Keras layer or model: ``x -> [z_mean, z_log_var, *extras]``.
        decoder: Keras layer or model: ``z`` (or ``[z, *extras]``) -> outputs.
        beta: finite float in ``[0, 1e6]``, the KL weight (beta-VAE, Higgins
            et al. 2017).
        reconstruction_loss: ``"bernoulli"`` (default), ``"gaussian"``,
            ``"mse"`` or a callable ``fn(x, outputs)``.
        from_logits: ``True`` or ``False``; for ``"bernoulli"``, whether the
            decoder outputs logits (default, fused and numerically stable) or
            probabilities.
        free_bits: finite float in ``[0, 1e6]``, nats per latent dimension
            below which the KL is not pushed (Kingma et al. 2016); 0 disables.
        seed: ``None`` or an int in ``[0, 2**31)``, the seed of the sampling
            noise.

    Example:

    >>> import numpy as np
    >>> from keras_vae import VAE, architectures
    >>> vae = VAE(*architectures.mlp((28, 28, 1), latent_dim=2, hidden_units=(32,)))
    >>> vae.compile(optimizer="adam")
    >>> x = np.random.rand(64, 28, 28, 1).astype("float32")
    >>> sorted(vae.fit(x, epochs=1, verbose=0).history)
    ['kl_loss', 'loss', 'reconstruction_loss']
    >>> vae.generate(4, seed=0).shape
    (4, 28, 28, 1)
    """

    num_latent_outputs = 2
    loss_terms = ("reconstruction_loss", "kl_loss")
    generative = True
    has_likelihood = True

    def __init__(
        self,
        encoder,
        decoder,
        beta=1.0,
        reconstruction_loss="bernoulli",
        from_logits=True,
        free_bits=0.0,
        seed=None,
        **kwargs,
    ):
        beta = check_float("beta", beta, 0, MAX_WEIGHT)
        free_bits = check_float("free_bits", free_bits, 0, MAX_WEIGHT)
        seed = check_seed("seed", seed)
        super().__init__(encoder, decoder, reconstruction_loss, from_logits, **kwargs)
        self.beta = beta
        self.seed = seed
        self.kl_regularizer = KLDivergenceRegularizer(
            weight=beta, free_bits=free_bits, metric_name=None, name="kl_regularizer"
        )
        self.sampler = Sampling(seed=seed, name="sampling")

    @property
    def kl_weight(self):
        """The KL weight (beta) variable; assign to it to anneal during fit."""
        return self.kl_regularizer.kl_weight

    @property
    def free_bits(self):
        return self.kl_regularizer.free_bits

    def _build_extras(self, latents):
        self.sampler.build([latents[0].shape, latents[1].shape])
        self.kl_regularizer.build([latents[0].shape, latents[1].shape])

    def _prior(self, labels):
        """The prior's ``(mean, log_var)`` for a batch: ``(None, None)``, N(0, I).

        A subclass with another prior (the CVAE's per-class prior) returns tensors of the
        latent's shape, or ``None`` for a zero mean or a unit variance. The loss's KL and the
        likelihood estimators read the prior only here.
        """
        return None, None

    def compute_loss_terms(self, x, y=None, sample_weight=None, training=False, noise=None):
        labels, target = self._labels_and_target(x, y)
        latents, extras = self._split_encoder_outputs(
            self._call_encoder(x, labels, training=training)
        )
        z_mean, z_log_var = latents
        z = self.sampler([z_mean, z_log_var], eps=noise)
        raw = self._decode_raw(z, extras, labels=labels, training=training)
        reconstruction = self.reconstruction_term(target, raw, sample_weight)
        prior_mean, prior_log_var = self._prior(labels)
        kl = self.kl_regularizer.kl_divergence(
            z_mean, z_log_var, prior_mean, sample_weight=sample_weight, prior_log_var=prior_log_var
        )
        loss = reconstruction + self.kl_weight * kl
        return raw, {"loss": loss, "reconstruction_loss": reconstruction, "kl_loss": kl}

    def _labels_and_target(self, x, y):
        return None, self._metric_target(x, y)

    def generate(self, n, seed=None, batch_size=None):
        """Decodes ``n`` draws from the prior N(0, I); numpy ``(n, *data_shape)``.

        The noise comes from numpy with ``seed``, so a seed gives the same
        samples on every backend.
        """
        n = check_count(n)
        self._ensure_built()
        self._require_plain_decoder("generate()")
        return self.decode(standard_normal((n,) + self.latent_shape, seed), batch_size=batch_size)

    def serving_endpoints(self, check_labels: bool = True) -> dict:
        """`BaseAutoencoder.serving_endpoints` plus ``generate``: ``eps`` -> ``{"x"}``.

        ``generate`` decodes the caller's standard-normal ``eps`` (the prior
        N(0, I) drawn outside the graph), so a request gives the same answer
        every time.
        """
        endpoints = super().serving_endpoints(check_labels)
        if "decode" in endpoints:  # a decoder that takes a bare latent
            decode, _ = endpoints["decode"]

            def generate(eps):
                return decode(eps)

            endpoints["generate"] = (generate, [self._serving_spec("eps")])
        return endpoints

    def get_config(self):
        return {
            **super().get_config(),
            "beta": self.beta,
            "free_bits": self.free_bits,
            "seed": self.seed,
        }
