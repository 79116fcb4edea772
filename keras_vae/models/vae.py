"""The variational autoencoder."""

from __future__ import annotations

import keras
import numpy as np

from keras_vae import likelihood
from keras_vae._config_checks import MAX_WEIGHT, check_float, check_seed
from keras_vae.layers import KLDivergenceRegularizer, Sampling
from keras_vae.models import _inputs
from keras_vae.models._inputs import InvalidInputError
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

    # --------------------------------------------------------------- likelihood
    def _estimate(self, x, labels, method, num_samples, batch_size, seed):
        """`keras_vae.likelihood.estimate` on this model, inputs checked first."""
        self._ensure_built()
        self._require_plain_decoder(f"{method}()")
        try:
            log_px = likelihood.log_px_function(self.reconstruction_loss, self.from_logits)
        except ValueError as error:
            raise ValueError(f"{type(self).__name__}.{method}: {error}") from None
        x = self._check_data(x)
        if self.reconstruction_loss == "bernoulli":
            _inputs.check_binary(x, "x", method)
        conditions = self._numpy_labels(labels, len(x), method)
        if self.conditional and not conditions:
            raise InvalidInputError(
                f"{type(self).__name__}.{method} estimates log p(x | y): pass labels= (one "
                f"class index per example); received none."
            )

        def encode(batch, *batch_labels):
            return self._encode_tensor(batch, *batch_labels)

        def decode(z, *batch_labels):
            return self._decode_raw(z, labels=batch_labels[0] if batch_labels else None)

        def prior(*batch_labels):
            return self._prior(batch_labels[0] if batch_labels else None)

        return likelihood.estimate(
            encode,
            decode,
            log_px,
            x,
            conditions,
            prior,
            num_samples,
            batch_size,
            seed,
            max_rows=likelihood.rows_for(self.decoder),
        )

    def log_likelihood(self, x, labels=None, num_samples=1000, batch_size=None, seed=None):
        """Importance-weighted estimate of log p(x) per example (Burda et al. 2015), in nats.

        ``logsumexp_k(log p(x | z_k) + log p(z_k) - log q(z_k | x)) - log K`` with
        ``K = num_samples`` draws ``z_k ~ q(z | x)``: a lower bound of log p(x) in expectation,
        at least the ELBO, tightening as ``K`` grows (test NLL is usually reported with
        ``K = 5000``, or 1,000). For a `CVAE`, pass ``labels``: the estimate is log p(x | y)
        under the class prior. The likelihood must be a normalised density:
        ``"bernoulli"`` on binary data (binarise grey levels first: cross-entropy on grey
        levels is not a log-probability), ``"gaussian"``, or a callable marked with
        `keras_vae.losses.normalized_nll`; ``"mse"`` is refused.

        Memory stays bounded for any ``K``: ``batch_size`` examples (default 64) times up to
        ``rows // batch_size`` samples are decoded per compiled call, where ``rows`` is 8,192
        (4,096 with torch on a CPU) or fewer, so that the decoder's activations hold at
        most 2**26 float32 values (256 MB; `keras_vae.likelihood.rows_for`); the peak adds
        three float32 arrays of the rows' data (25 MB for 8,192 images of 28x28). The noise comes from numpy with ``seed``: the
        same seed and ``batch_size`` give the same estimate on every backend (to float32
        rounding). See `keras_vae.likelihood`.

        Returns:
            float64 numpy array ``(n,)``, nats per example (its negative mean is the NLL).

        Example:

        >>> import numpy as np
        >>> from keras_vae import VAE, architectures
        >>> vae = VAE(*architectures.mlp((16,), latent_dim=2, hidden_units=(8,)))
        >>> x = (np.random.default_rng(0).random((5, 16)) > 0.5).astype("float32")
        >>> log_px = vae.log_likelihood(x, num_samples=100, seed=0)
        >>> log_px.shape, bool(np.all(log_px >= vae.elbo(x, num_samples=100, seed=0)))
        ((5,), True)
        """
        return self._estimate(x, labels, "log_likelihood", num_samples, batch_size, seed)[
            "log_likelihood"
        ]

    def elbo(self, x, labels=None, num_samples=1, batch_size=None, seed=None):
        """Per-example evidence lower bound in nats: ``E_q[log p(x | z)] - KL(q(z | x) || p(z))``.

        The KL in closed form (the prior of `_prior`: N(0, I), or a CVAE's class prior given
        ``labels``), the expected log-likelihood averaged over ``num_samples`` draws from
        ``q(z | x)``. ``-elbo(x).mean()`` is what training minimises with ``beta=1`` and no
        free bits. Inputs, likelihoods and noise as in `log_likelihood`; float64 ``(n,)``.
        """
        result = self._estimate(x, labels, "elbo", num_samples, batch_size, seed)
        return result["expected_log_px"] - result["kl"]

    def _posterior_and_prior(self, x, labels, method, batch_size):
        """Numpy ``(z_mean, z_log_var, prior_mean, prior_log_var)`` of ``x``, ``(n, d)`` each."""
        self._ensure_built()
        x = self._check_data(x)
        conditions = self._numpy_labels(labels, len(x), method)
        if self.conditional and not conditions:
            raise InvalidInputError(
                f"{type(self).__name__}.{method} measures the KL to the class prior: pass "
                "labels= (one class index per example); received none."
            )

        def fn(batch, *batch_labels):
            z_mean, z_log_var = self._encode_tensor(batch, *batch_labels)
            prior_mean, prior_log_var = self._prior(batch_labels[0] if batch_labels else None)
            zeros = keras.ops.zeros_like(z_mean)
            return (
                z_mean,
                z_log_var,
                zeros if prior_mean is None else prior_mean,
                zeros if prior_log_var is None else prior_log_var,
            )

        arrays = self._batched(fn, [x, *conditions], batch_size)
        return tuple(np.asarray(a, dtype="float64") for a in arrays)

    def kl_per_dimension(self, x, labels=None, batch_size=None):
        """Mean over ``x`` of KL(q(z_u | x) || p(z_u)) for each latent unit ``u``, in nats.

        The closed-form KL per dimension (no sampling), float64 numpy ``(latent_dim,)``;
        its sum is the mean KL term of the ELBO. Units near 0 carry no information (posterior
        collapse). ``labels`` for a `CVAE` (the KL to its class prior).
        """
        mean, log_var, prior_mean, prior_log_var = self._posterior_and_prior(
            x, labels, "kl_per_dimension", batch_size
        )
        kl = 0.5 * (
            prior_log_var
            - log_var
            + (np.exp(log_var) + np.square(mean - prior_mean)) * np.exp(-prior_log_var)
            - 1.0
        )
        return kl.mean(axis=0)

    def active_units(self, x, labels=None, threshold=0.01, batch_size=None):
        """The number of active latent units: ``Var_x(E_q[z_u | x]) > threshold`` (Burda et al.).

        A unit whose posterior mean does not vary across the data is ignored by the decoder.
        ``threshold`` is a finite float in ``[0, 1e6]`` (0.01 in Burda et al. 2015); ``x``
        should hold enough examples for a variance (the test set). Returns an int; the
        variances themselves are ``encode(x)[0].var(axis=0)``.
        """
        threshold = check_float("threshold", threshold, 0, MAX_WEIGHT)
        mean, *_ = self._posterior_and_prior(x, labels, "active_units", batch_size)
        if len(mean) < 2:
            raise InvalidInputError(
                f"active_units needs at least 2 examples for a variance; received {len(mean)}."
            )
        return int(np.sum(mean.var(axis=0) > threshold))

    def generate(self, n, seed=None, batch_size=None):
        """Decodes ``n`` draws from the prior N(0, I); numpy ``(n, *data_shape)``.

        The noise comes from numpy with ``seed``, so a seed gives the same
        samples on every backend.
        """
        n = check_count(n)
        self._ensure_built()
        self._require_plain_decoder("generate()")
        return self.decode(standard_normal((n,) + self.latent_shape, seed), batch_size=batch_size)

    def get_config(self):
        return {
            **super().get_config(),
            "beta": self.beta,
            "free_bits": self.free_bits,
            "seed": self.seed,
        }
