"""The denoising autoencoder."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from keras_vae import backends
from keras_vae._config_checks import MAX_WEIGHT, check_float, check_seed
from keras_vae.models.ae import AE

NOISE_TYPES = ("gaussian", "dropout")


@keras.saving.register_keras_serializable(package="keras_vae")
class DAE(AE):
    """Denoising autoencoder (Vincent et al. 2008): reconstruct clean ``x`` from noisy ``x``.

    During training only, the input is corrupted before encoding; the
    reconstruction is always scored against the clean input (or against the
    target ``y`` of ``fit(x, y)``). Evaluation and ``predict`` see the input
    as given.

    * ``noise="gaussian"``: ``x + noise_stddev * eps``, the usual corruption
      of images.
    * ``noise="dropout"``: each input unit is zeroed with probability
      ``dropout_rate`` (the kept ones scaled by ``1 / (1 - rate)``, as
      `keras.layers.Dropout` does), masking noise for feature vectors.

    Args:
        encoder, decoder, reconstruction_loss, from_logits: as in `AE`.
        noise: ``"gaussian"`` or ``"dropout"``.
        noise_stddev: finite float in ``[0, 1e6]``, standard deviation of the
            Gaussian noise.
        dropout_rate: float in ``[0, 1)``, probability of zeroing a unit.
        seed: ``None`` or an int in ``[0, 2**31)``, the seed of the corruption.

    Example:

    >>> import numpy as np
    >>> from keras_vae import DAE, architectures
    >>> encoder, decoder = architectures.mlp((16,), latent_dim=4, variational=False)
    >>> model = DAE(encoder, decoder, noise="dropout", dropout_rate=0.3, seed=0)
    >>> model.compile(optimizer="adam")
    >>> history = model.fit(np.random.rand(64, 16), epochs=1, verbose=0)
    >>> model.corrupt(np.ones((2, 16)), seed=0).shape
    (2, 16)
    """

    denoising = True

    def __init__(
        self,
        encoder,
        decoder,
        noise="gaussian",
        noise_stddev=0.1,
        dropout_rate=0.2,
        reconstruction_loss="mse",
        from_logits=True,
        seed=None,
        **kwargs,
    ):
        if noise not in NOISE_TYPES:
            raise ValueError(f"`noise` must be one of {NOISE_TYPES}, received noise={noise!r}")
        noise_stddev = check_float("noise_stddev", noise_stddev, 0, MAX_WEIGHT)
        dropout_rate = check_float("dropout_rate", dropout_rate, 0, 1, closed_maximum=False)
        seed = check_seed("seed", seed)
        super().__init__(encoder, decoder, reconstruction_loss, from_logits, **kwargs)
        self.noise = noise
        self.noise_stddev = noise_stddev
        self.dropout_rate = dropout_rate
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def corrupt_tensor(self, x, noise=None):
        """Corrupts a batch tensor; ``noise`` replaces the draw (eps or keep-mask)."""
        x = ops.convert_to_tensor(x)
        if self.noise == "gaussian":
            if noise is None:
                noise = backends.random_normal(ops.shape(x), self.seed_generator, dtype=x.dtype)
            return x + ops.cast(self.noise_stddev, x.dtype) * ops.cast(noise, x.dtype)
        if noise is None:  # the keep-mask of `corrupt`: a unit is kept where u >= rate
            uniform = backends.random_uniform(ops.shape(x), self.seed_generator)
            noise = ops.cast(uniform >= self.dropout_rate, x.dtype)
        return x * ops.cast(noise, x.dtype) / ops.cast(1.0 - self.dropout_rate, x.dtype)

    def corrupt(self, x, seed=None, batch_size=None):
        """Noisy copies of numpy ``x`` as seen in training (reproducible with ``seed``)."""
        self._ensure_built()
        x = self._check_data(x)
        rng = np.random.default_rng(seed)
        if self.noise == "gaussian":
            noise = rng.standard_normal(x.shape).astype("float32")
        else:
            noise = (rng.random(x.shape) >= self.dropout_rate).astype("float32")
        return self._batched(self.corrupt_tensor, [x, noise], batch_size)

    def compute_loss_terms(self, x, y=None, sample_weight=None, training=False, noise=None):
        target = self._metric_target(x, y)
        inputs = self.corrupt_tensor(x, noise) if training else x
        return super().compute_loss_terms(inputs, target, sample_weight, training, noise)

    def get_config(self):
        return {
            **super().get_config(),
            "noise": self.noise,
            "noise_stddev": self.noise_stddev,
            "dropout_rate": self.dropout_rate,
            "seed": self.seed,
        }
