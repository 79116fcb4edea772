"""The undercomplete autoencoder."""

from __future__ import annotations

import keras

from keras_vae.models.base import BaseAutoencoder


@keras.saving.register_keras_serializable(package="keras_vae")
class AE(BaseAutoencoder):
    """Undercomplete autoencoder: minimise the reconstruction loss of ``decoder(encoder(x))``.

    ``fit(x)`` reconstructs ``x``; ``fit(x, y)`` learns to map ``x`` to the
    target ``y``. The loss is summed over the data dimensions and averaged
    over the batch; ``sample_weight`` weights examples.

    Args:
        encoder: Keras layer or model mapping data to codes. Extra outputs
            after the code (e.g. pooling argmax indices) go to the decoder.
        decoder: Keras layer or model mapping codes (``[code, *extras]``) back
            to data space.
        reconstruction_loss: ``"mse"`` (sum of squared errors, default),
            ``"gaussian"``, ``"bernoulli"`` or a callable ``fn(x, outputs)``.
        from_logits: ``True`` or ``False``; for ``"bernoulli"``, whether the
            decoder outputs logits.
        **kwargs: `keras.Model` keyword arguments (``name``...).

    Example:

    >>> import numpy as np
    >>> from keras_vae import AE, architectures
    >>> encoder, decoder = architectures.mlp((8,), latent_dim=2, variational=False)
    >>> model = AE(encoder, decoder)
    >>> model.compile(optimizer="adam")
    >>> history = model.fit(np.random.rand(64, 8), epochs=1, verbose=0)
    >>> model.encode(np.random.rand(3, 8)).shape
    (3, 2)
    """

    def compute_loss_terms(self, x, y=None, sample_weight=None, training=False, noise=None):
        latents, extras = self._split_encoder_outputs(self._call_encoder(x, training=training))
        raw = self._decode_raw(latents[0], extras, training=training)
        reconstruction = self.reconstruction_term(self._metric_target(x, y), raw, sample_weight)
        return raw, {"loss": reconstruction, "reconstruction_loss": reconstruction}
