"""The importance-weighted autoencoder."""

from __future__ import annotations

import math

import keras
from keras import ops

from keras_vae import backends, likelihood
from keras_vae import losses as vae_losses
from keras_vae._config_checks import check_bool, check_int
from keras_vae.models.vae import VAE

# k samples per example make k decoder rows: beyond this the batch is better spent on examples.
MAX_TRAINING_SAMPLES = 5000


@keras.saving.register_keras_serializable(package="keras_vae")
class IWAE(VAE):
    """Importance-weighted autoencoder (Burda et al. 2015): trains on the k-sample bound.

    The loss is the negative importance-weighted bound of ``num_samples = k`` samples,

    ``-log (1/k) sum_k p(x | z_k) p(z_k) / q(z_k | x)``, ``z_k ~ q(z | x)``,

    averaged over the batch: at least as tight as the ELBO (``k = 1`` is the VAE's loss up to
    its Monte-Carlo KL) and tighter as ``k`` grows, so the model reaches a higher likelihood
    and uses more latent units. Its log-weights are those of `VAE.log_likelihood` (one function,
    `keras_vae.likelihood.log_weights`), so training and evaluation agree: the training loss is
    the model's ``-log_likelihood(x, num_samples=k)`` on the training batch. The cost per step is
    about ``k`` decoder passes. ``fit``, ``evaluate`` and validation log ``loss`` and, for
    comparison, the ELBO's parts over the same samples: ``reconstruction_loss`` (the mean of
    ``-log p(x | z_k)``) and ``kl_loss`` (the closed-form KL); ``-loss`` is at least
    ``-(reconstruction_loss + kl_loss)`` in expectation.

    Everything else is the `VAE`'s: ``encode``/``decode``/``generate``, the estimators, export.

    Args:
        encoder, decoder: as in `VAE`.
        num_samples: int in ``[1, 5000]``, the ``k`` of the bound (Burda et al.: 5 or 50).
        reconstruction_loss: ``"bernoulli"`` (default), ``"gaussian"`` or a callable marked
            with `keras_vae.losses.normalized_nll`: the bound needs a normalised likelihood.
        from_logits, seed: as in `VAE`.

    Example:

    >>> import numpy as np
    >>> from keras_vae import IWAE, architectures
    >>> iwae = IWAE(*architectures.mlp((16,), latent_dim=2, hidden_units=(32,)), num_samples=5)
    >>> iwae.compile(optimizer="adam")
    >>> x = (np.random.default_rng(0).random((64, 16)) > 0.5).astype("float32")
    >>> sorted(iwae.fit(x, epochs=1, verbose=0).history)
    ['kl_loss', 'loss', 'reconstruction_loss']
    >>> iwae.log_likelihood(x[:4], num_samples=50, seed=0).shape
    (4,)
    """

    def __init__(
        self,
        encoder,
        decoder,
        num_samples=5,
        reconstruction_loss="bernoulli",
        from_logits=True,
        seed=None,
        **kwargs,
    ):
        num_samples = check_int("num_samples", num_samples, 1, MAX_TRAINING_SAMPLES)
        from_logits = check_bool("from_logits", from_logits)
        try:  # the bound needs a density: "mse" and unmarked callables are refused here
            log_px = likelihood.log_px_function(reconstruction_loss, from_logits)
        except ValueError as error:
            raise ValueError(f"IWAE's `reconstruction_loss`: {error}") from None
        super().__init__(
            encoder,
            decoder,
            reconstruction_loss=reconstruction_loss,
            from_logits=from_logits,
            seed=seed,
            **kwargs,
        )
        self.num_samples = num_samples
        self._log_px = log_px
        self.seed_generator = keras.random.SeedGenerator(seed, name="iwae_noise")

    def compute_loss_terms(self, x, y=None, sample_weight=None, training=False, noise=None):
        """The k-sample bound; ``noise`` (``(batch, k, latent_dim)``) replaces the draws."""
        labels, target = self._labels_and_target(x, y)
        self._require_plain_decoder("IWAE training")
        latents, _ = self._split_encoder_outputs(self._call_encoder(x, labels, training=training))
        z_mean, z_log_var = latents
        if noise is None:
            shape = (ops.shape(z_mean)[0], self.num_samples, z_mean.shape[-1])
            noise = backends.random_normal(shape, self.seed_generator)
        prior_mean, prior_log_var = self._prior(labels)

        def decode(z, *batch_labels):
            return self._decode_raw(
                z, labels=batch_labels[0] if batch_labels else None, training=training
            )

        log_w, log_px_z, outputs = likelihood.log_weights(
            target,
            z_mean,
            z_log_var,
            noise,
            decode,
            self._log_px,
            prior_mean,
            prior_log_var,
            () if labels is None else (labels,),
        )
        bound = ops.logsumexp(log_w, axis=1) - math.log(self.num_samples)
        loss = vae_losses.reduce_over_batch(-bound, sample_weight)
        reconstruction = vae_losses.reduce_over_batch(-ops.mean(log_px_z, axis=1), sample_weight)
        kl = vae_losses.kl_divergence(
            z_mean,
            z_log_var,
            prior_mean,
            sample_weight=sample_weight,
            prior_log_var=prior_log_var,
        )
        # The metrics see the first sample's reconstruction of each example.
        first = ops.reshape(outputs, (-1, self.num_samples, *outputs.shape[1:]))[:, 0]
        return first, {"loss": loss, "reconstruction_loss": reconstruction, "kl_loss": kl}

    def get_config(self):
        config = super().get_config()
        for name in ("beta", "free_bits"):  # the bound has no KL weight
            config.pop(name)
        return {**config, "num_samples": self.num_samples}
