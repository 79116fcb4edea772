"""The contractive autoencoder."""

from __future__ import annotations

import keras
from keras import ops

from keras_vae import backends
from keras_vae import losses as vae_losses
from keras_vae._config_checks import MAX_WEIGHT, check_float, check_int, check_seed
from keras_vae.backends import jacobian as backend_jacobian
from keras_vae.models.ae import AE
from keras_vae.models.base import prod, standard_normal

# Random projections per example and step: beyond this the exact penalty is cheaper for any
# code of up to 1024 units, and the estimate's error (sqrt(2 / m) of the penalty for a
# Jacobian of rank one) is below 5 %.
MAX_PROJECTIONS = 1024


def check_jacobian(value) -> str | int:
    """``"exact"``, or a number of random projections in ``[1, MAX_PROJECTIONS]``."""
    if isinstance(value, str):
        if value == "exact":
            return value
        raise ValueError(
            f'`jacobian` must be "exact" or an int in [1, {MAX_PROJECTIONS}] (random '
            f"projections), received {value!r}"
        )
    return check_int("jacobian", value, 1, MAX_PROJECTIONS)


def unit_cotangents(batch, latent_shape):
    """The unit vectors of the code space, ``(latent_dim, batch, *latent_shape)``."""
    size = prod(latent_shape)
    basis = ops.reshape(ops.eye(size, dtype="float32"), (size, 1, *latent_shape))
    return ops.broadcast_to(basis, (size, batch, *latent_shape))


@keras.saving.register_keras_serializable(package="keras_vae")
class ContractiveAE(AE):
    """Contractive autoencoder (Rifai et al. 2011): codes that change little with the input.

    The loss is

    ``reconstruction_loss + contractive_weight * contractive_loss``

    where ``contractive_loss`` is the batch mean of ``||d code / d x||_F^2``, the squared
    Frobenius norm of the Jacobian of the encoder's code with respect to its input (summed
    over code units and data dimensions). ``fit``, ``evaluate`` and validation log ``loss``,
    ``reconstruction_loss`` and ``contractive_loss`` (unweighted, as a `VAE` logs its
    ``kl_loss``).

    The Jacobian comes from the backend's own differentiation (`keras_vae.backends.jacobian`:
    TensorFlow's ``GradientTape``, `jax.vjp`, ``torch.autograd.grad``), differentiated again
    for the weights' gradient, so it is exact for any encoder:

    * ``jacobian="exact"`` (default): one vector-Jacobian product per code unit,
      ``sum_j ||J^T e_j||^2``. A step costs about ``latent_dim`` extra backward passes of the
      encoder (see ``benchmarks/contractive_cost.py``).
    * ``jacobian=m`` (an int): the unbiased random-projection (Hutchinson) estimate
      ``mean_k ||J^T v_k||^2`` with ``m`` fresh ``v_k ~ N(0, I)`` in code space per example
      and step, drawn from a seeded `keras.random.SeedGenerator`. Its relative standard error
      per example is at most ``sqrt(2 / m)`` (the Jacobian's rank 1), falling with the rank;
      for codes much wider than ``m``, or large inputs, it costs ``m`` instead of
      ``latent_dim`` VJPs. Evaluation uses the same estimate.

    The code is the encoder's first output; the penalty treats examples as encoded
    independently (no batch statistics in training mode). An unbounded (linear) code can
    also lower the penalty by shrinking as a whole while the decoder scales it back up, so
    compare codes' sensitivity relative to their size (``examples/contractive_ae.py``);
    Rifai et al. use sigmoid codes.

    Args:
        encoder: Keras layer or model mapping data to codes (then optional extras for the
            decoder).
        decoder: Keras layer or model mapping codes (``[code, *extras]``) back to data space.
        contractive_weight: finite float in ``[0, 1e6]``, the weight ``lambda`` of the
            penalty. The default 0.1, for losses summed over the data dimensions: an MLP
            (784-512-256-16) on 10,000 Fashion-MNIST images, 5 epochs, ends with an 8x
            (``"bernoulli"``) or 3.6x (``"mse"``) smaller test Jacobian norm than with 0, its
            reconstruction loss 0.6 % or 1.3 % higher; 1.0 contracts 56x or 19x for 2.5 % or
            12 %. 0 trains an `AE` while logging its Jacobian norm.
        reconstruction_loss: ``"mse"`` (sum of squared errors, default), ``"gaussian"``,
            ``"bernoulli"`` or a callable ``fn(x, outputs)``, as in `AE`.
        from_logits: ``True`` or ``False``; for ``"bernoulli"``, whether the decoder outputs
            logits.
        jacobian: ``"exact"``, or an int in ``[1, 1024]``: the number of random projections.
        seed: ``None`` or an int in ``[0, 2**31)``, the seed of the projections.
        **kwargs: `keras.Model` keyword arguments (``name``...).

    Example:

    >>> import numpy as np
    >>> from keras_vae import ContractiveAE, architectures
    >>> encoder, decoder = architectures.mlp((8,), latent_dim=2, variational=False)
    >>> model = ContractiveAE(encoder, decoder, contractive_weight=0.1)
    >>> model.compile(optimizer="adam")
    >>> sorted(model.fit(np.random.rand(64, 8), epochs=1, verbose=0).history)
    ['contractive_loss', 'loss', 'reconstruction_loss']
    >>> model.jacobian_norm(np.random.rand(3, 8)).shape
    (3,)
    """

    loss_terms = ("reconstruction_loss", "contractive_loss")

    def __init__(
        self,
        encoder,
        decoder,
        contractive_weight=0.1,
        reconstruction_loss="mse",
        from_logits=True,
        jacobian="exact",
        seed=None,
        **kwargs,
    ):
        contractive_weight = check_float("contractive_weight", contractive_weight, 0, MAX_WEIGHT)
        jacobian = check_jacobian(jacobian)
        seed = check_seed("seed", seed)
        super().__init__(encoder, decoder, reconstruction_loss, from_logits, **kwargs)
        self.contractive_weight = contractive_weight
        self.jacobian = jacobian
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def _cotangents(self, x, noise=None):
        """The code-space vectors ``(K, batch, *latent_shape)`` and the divisor of their sum.

        Exact: the ``latent_dim`` unit vectors, divisor 1. Estimate: ``m`` standard-normal
        vectors per example (``noise`` replaces the draw), divisor ``m``.
        """
        if self.jacobian == "exact":
            return unit_cotangents(ops.shape(x)[0], self.latent_shape), 1
        if noise is None:
            shape = (self.jacobian, ops.shape(x)[0], *self.latent_shape)
            noise = backends.random_normal(shape, self.seed_generator)
        return ops.convert_to_tensor(noise, "float32"), self.jacobian

    def _encode_with_penalty(self, x, training=False, noise=None):
        """``(encoder outputs, per-example ||d code / d x||_F^2 (exact or estimated))``."""
        cotangents, divisor = self._cotangents(x, noise)
        outputs, norms = backend_jacobian.squared_vjp_norms(
            self.encoder, x, cotangents, training=training
        )
        return outputs, norms / float(divisor)

    def compute_loss_terms(self, x, y=None, sample_weight=None, training=False, noise=None):
        """As `AE`'s, plus the penalty; ``noise`` replaces the projections ``(m, batch, ...)``."""
        outputs, norms = self._encode_with_penalty(x, training=training, noise=noise)
        latents, extras = self._split_encoder_outputs(outputs)
        raw = self._decode_raw(latents[0], extras, training=training)
        reconstruction = self.reconstruction_term(self._metric_target(x, y), raw, sample_weight)
        contractive = vae_losses.reduce_over_batch(norms, sample_weight)
        loss = reconstruction + self.contractive_weight * contractive
        return raw, {
            "loss": loss,
            "reconstruction_loss": reconstruction,
            "contractive_loss": contractive,
        }

    def jacobian_norm(self, x, projections=None, seed=None, batch_size=None):
        """``||d code / d x||_F^2`` of each example of numpy ``x``: ``(n,)`` float32.

        Exact by default (the unit vectors of the code space), whatever ``jacobian`` the model
        trains with; ``projections=m`` gives the random-projection estimate with ``m`` vectors
        per example drawn by numpy from ``seed``. The encoder runs in inference mode, compiled
        once per call (`keras_vae.backends.inference_function`).
        """
        self._ensure_built()
        x = self._check_data(x)
        if projections is None:

            def exact(batch):
                cotangents = unit_cotangents(ops.shape(batch)[0], self.latent_shape)
                return backend_jacobian.squared_vjp_norms(self.encoder, batch, cotangents)[1]

            return self._batched(backends.inference_function(exact), [x], batch_size)
        projections = check_int("projections", projections, 1, MAX_PROJECTIONS)
        # Example-major, so that the batches slice it with x; the step wants (m, batch, ...).
        noise = standard_normal((len(x), projections, *self.latent_shape), seed)

        def estimate(batch, batch_noise):
            cotangents = ops.swapaxes(batch_noise, 0, 1)
            norms = backend_jacobian.squared_vjp_norms(self.encoder, batch, cotangents)[1]
            return norms / float(projections)

        return self._batched(backends.inference_function(estimate), [x, noise], batch_size)

    def get_config(self):
        return {
            **super().get_config(),
            "contractive_weight": self.contractive_weight,
            "jacobian": self.jacobian,
            "seed": self.seed,
        }
