"""The adversarial autoencoder."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from keras_vae import _keras_compat, backends
from keras_vae import losses as vae_losses
from keras_vae._config_checks import check_seed
from keras_vae.backends import TrainingPhase, build_phase_optimizers
from keras_vae.models.base import BaseAutoencoder, _check_layer, check_count, standard_normal

PRIORS = ("normal", "uniform")
# Widths of the hidden layers of the default discriminator (discriminator=None).
DEFAULT_DISCRIMINATOR_UNITS = (64, 64)


def default_discriminator(units=DEFAULT_DISCRIMINATOR_UNITS, name="discriminator"):
    """The discriminator of ``discriminator=None``: an MLP from a code to one logit.

    Hidden ``Dense`` layers of ``units`` (64, 64) with ReLU, then ``Dense(1)``, the logit of
    "drawn from the prior"; the input is flattened, so any code shape works. It is built on
    the code's shape by the model.
    """
    hidden = [keras.layers.Dense(width, activation="relu") for width in units]
    return keras.Sequential(
        [keras.layers.Flatten(), *hidden, keras.layers.Dense(1, name="logit")], name=name
    )


def _unique(variables):
    seen = set()
    return [v for v in variables if not (id(v) in seen or seen.add(id(v)))]


def _layer_losses(*layers):
    """The losses the layers add themselves (activity and weight regularisers), or []."""
    return [ops.cast(loss, "float32") for layer in layers for loss in layer.losses]


def _resolve_optimizer(name, value):
    """A Keras optimizer from an instance, name or config; without moving averages
    (``use_ema``: Keras writes them into every trainable variable at the end of ``fit``, also
    those the optimizer's phase does not step)."""
    try:
        optimizer = keras.optimizers.get(value)
    except ValueError as error:
        raise ValueError(
            f"`{name}` must be a Keras optimizer, its name or its config; received {value!r} "
            f"({error})"
        ) from None
    if getattr(getattr(optimizer, "inner_optimizer", optimizer), "use_ema", False):
        raise ValueError(
            f"`{name}` must be an optimizer without use_ema for an AdversarialAE (its moving "
            "average would overwrite the variables the optimizer's phase does not step); "
            "received one with use_ema=True."
        )
    return optimizer


def _batch_mean(per_example, sample_weight=None):
    """The batch mean of ``(batch, 1)`` logit losses, weighted as `losses.reduce_over_batch`."""
    return vae_losses.reduce_over_batch(ops.reshape(per_example, (-1,)), sample_weight)


def _plus(loss, extra):
    return loss + ops.sum(ops.stack(extra)) if extra else loss


@keras.saving.register_keras_serializable(package="keras_vae")
class AdversarialAE(BaseAutoencoder):
    """Adversarial autoencoder (Makhzani et al. 2015): a discriminator pushes the codes to a prior.

    Each training batch runs two phases, each one step of its own optimizer:

    1. **Reconstruction**: the encoder and decoder take a step of ``optimizer`` on
       ``reconstruction_loss``, as an `AE` does.
    2. **Regularisation**: a discriminator ``D`` (code -> logit) learns to tell samples of the
       prior ``p(z)`` from codes ``E(x)``, on

       ``discriminator_loss = E_p(z)[softplus(-D(z))] + E_x[softplus(D(E(x)))]``

       (binary cross-entropy of "prior" against "code", ``2 log 2`` when it cannot tell them
       apart), while the encoder learns to fool it, on the non-saturating

       ``generator_loss = E_x[softplus(-D(E(x)))]`` (``log 2`` at the equilibrium).

       Both take one step of ``discriminator_optimizer``: ``D`` on the gradient of
       ``discriminator_loss``, the encoder on that of ``generator_loss`` against ``D`` as it
       was before the step. The encoder thus has separate optimizer state for the two
       objectives: with Adam each phase moves it at its own rate, whatever the scale of the
       reconstruction loss. The paper takes the discriminator's and the encoder's update
       one after the other; here they are taken together (as the usual GAN step is), so each
       optimizer steps once per batch and its ``iterations`` counts batches.

    ``compile(optimizer=..., discriminator_optimizer=...)``; without a
    ``discriminator_optimizer`` the regularisation phase gets a fresh optimizer with
    ``optimizer``'s configuration, so ``compile(optimizer="adam")`` trains both phases with
    Adam. Both optimizers' states are saved in ``.keras`` files and weight backups.

    As in any GAN, a constant learning rate does not settle the game: the codes' means keep
    swinging around the prior's (by up to about 1 for a 4-unit code on Fashion-MNIST). A
    decaying rate for both optimizers settles them (`keras.optimizers.schedules.CosineDecay`
    to 2 % over 1920 steps: within 0.12 of N(0, I)'s mean and 0.17 of its standard deviation
    per unit, ``tests/test_adversarial.py``).

    ``fit``, ``evaluate`` and validation log ``loss`` (the sum of the three terms, what the
    two phases minimise together), ``reconstruction_loss``, ``discriminator_loss`` and
    ``generator_loss``; ``evaluate`` computes them all without updating anything. `generate`
    decodes prior samples; a trained AAE's codes follow the prior, so these are samples of
    the data. There is no likelihood (``has_likelihood`` is False).

    Args:
        encoder: Keras layer or model mapping data to codes (then optional extras for the
            decoder).
        decoder: Keras layer or model mapping codes (``[code, *extras]``) back to data space.
        discriminator: Keras layer or model mapping a batch of codes to one logit per
            example, shape ``(batch, 1)``; ``None`` (default) builds `default_discriminator`:
            Flatten, Dense(64, relu), Dense(64, relu), Dense(1).
        prior: ``"normal"`` (default), N(0, I); or ``"uniform"``, independent U(-1, 1) per
            code unit.
        reconstruction_loss: ``"mse"`` (sum of squared errors, default), ``"gaussian"``,
            ``"bernoulli"`` or a callable ``fn(x, outputs)``, as in `AE`.
        from_logits: ``True`` or ``False``; for ``"bernoulli"``, whether the decoder outputs
            logits.
        seed: ``None`` or an int in ``[0, 2**31)``, the seed of the prior samples the
            discriminator sees.
        **kwargs: `keras.Model` keyword arguments (``name``...).

    Example:

    >>> import numpy as np
    >>> from keras_vae import AdversarialAE, architectures
    >>> encoder, decoder = architectures.mlp((8,), latent_dim=2, variational=False)
    >>> model = AdversarialAE(encoder, decoder, seed=0)
    >>> model.compile(optimizer="adam")
    >>> sorted(model.fit(np.random.rand(64, 8), epochs=1, verbose=0).history)
    ['discriminator_loss', 'generator_loss', 'loss', 'reconstruction_loss']
    >>> model.generate(4, seed=0).shape
    (4, 8)
    """

    loss_terms = ("reconstruction_loss", "discriminator_loss", "generator_loss")
    generative = True
    has_likelihood = False

    def __init__(
        self,
        encoder,
        decoder,
        discriminator=None,
        prior="normal",
        reconstruction_loss="mse",
        from_logits=True,
        seed=None,
        **kwargs,
    ):
        if not isinstance(prior, str) or prior not in PRIORS:
            raise ValueError(f"`prior` must be one of {PRIORS}, received prior={prior!r}")
        seed = check_seed("seed", seed)
        if discriminator is not None:
            _check_layer(discriminator, "discriminator")
        super().__init__(encoder, decoder, reconstruction_loss, from_logits, **kwargs)
        self.prior = prior
        self.seed = seed
        self.discriminator = default_discriminator() if discriminator is None else discriminator
        self.prior_seed_generator = keras.random.SeedGenerator(seed)
        self.discriminator_optimizer = None

    def _build_extras(self, latents):
        code = latents[0]
        if not self.discriminator.built:
            self.discriminator.build(code.shape)
        try:
            logits = self.discriminator.compute_output_spec(code)
        except (ValueError, TypeError) as error:
            raise ValueError(
                f"AdversarialAE: the discriminator does not take the encoder's code of shape "
                f"{tuple(code.shape)}; the discriminator says: {error}"
            ) from error
        if isinstance(logits, (list, tuple)) or tuple(logits.shape[1:]) != (1,):
            shapes = (
                [tuple(t.shape) for t in logits]
                if isinstance(logits, (list, tuple))
                else (tuple(logits.shape))
            )
            raise ValueError(
                "AdversarialAE: the discriminator must map a batch of codes to one logit per "
                f"example, shape (batch, 1); it outputs {shapes}."
            )

    # ------------------------------------------------------------------ the prior
    def _prior_samples(self, shape):
        """A batch of prior draws, from the model's seed generator (distinct per replica)."""
        if self.prior == "uniform":
            return 2.0 * backends.random_uniform(shape, self.prior_seed_generator) - 1.0
        return backends.random_normal(shape, self.prior_seed_generator)

    def sample_prior(self, n, seed=None):
        """``n`` numpy draws from the prior, ``(n, *latent_shape)``: the same for a seed on every
        backend."""
        n = check_count(n)
        self._ensure_built()
        shape = (n, *self.latent_shape)
        if self.prior == "uniform":
            return np.random.default_rng(seed).uniform(-1.0, 1.0, shape).astype("float32")
        return standard_normal(shape, seed)

    def generate(self, n, seed=None, batch_size=None):
        """Decodes ``n`` draws from the prior; numpy ``(n, *data_shape)``.

        The draws come from numpy with ``seed`` (`sample_prior`), so a seed gives the same
        samples on every backend.
        """
        n = check_count(n)
        self._ensure_built()
        self._require_plain_decoder("generate()")
        return self.decode(self.sample_prior(n, seed), batch_size=batch_size)

    # -------------------------------------------------------------------- losses
    def _encode_and_reconstruct(self, x, y, sample_weight, training):
        latents, extras = self._split_encoder_outputs(self._call_encoder(x, training=training))
        raw = self._decode_raw(latents[0], extras, training=training)
        reconstruction = self.reconstruction_term(self._metric_target(x, y), raw, sample_weight)
        return latents[0], raw, reconstruction

    def _frozen_discriminator(self, code, training):
        """``D(code)`` with gradients to the code only: D's weights enter as constants."""
        trainable = [ops.stop_gradient(v.value) for v in self.discriminator.trainable_variables]
        non_trainable = [v.value for v in self.discriminator.non_trainable_variables]
        logits, _ = self.discriminator.stateless_call(
            trainable, non_trainable, code, training=training
        )
        return logits

    def adversarial_terms(self, code, sample_weight=None, training=False, prior_samples=None):
        """``(discriminator_loss, generator_loss)`` of a batch of codes, float32 scalars.

        ``prior_samples`` (a tensor of the codes' shape) replaces the model's draw. In
        training, ``discriminator_loss`` has gradients for the discriminator only and
        ``generator_loss`` for the codes (the encoder) only.
        """
        if prior_samples is None:
            prior_samples = self._prior_samples(ops.shape(code))
        prior_samples = ops.cast(prior_samples, code.dtype)
        real = ops.cast(self.discriminator(prior_samples, training=training), "float32")
        fake = ops.cast(self.discriminator(ops.stop_gradient(code), training=training), "float32")
        discriminator_loss = ops.mean(ops.softplus(-real)) + _batch_mean(
            ops.softplus(fake), sample_weight
        )
        fooled = self._frozen_discriminator(code, training) if training else fake
        generator_loss = _batch_mean(ops.softplus(-ops.cast(fooled, "float32")), sample_weight)
        return discriminator_loss, generator_loss

    def compute_loss_terms(self, x, y=None, sample_weight=None, training=False, noise=None):
        """All terms of a batch at once (``evaluate``); ``noise``: the prior samples."""
        code, raw, reconstruction = self._encode_and_reconstruct(x, y, sample_weight, training)
        discriminator_loss, generator_loss = self.adversarial_terms(
            code, sample_weight, training, prior_samples=noise
        )
        return raw, {
            "loss": reconstruction + discriminator_loss + generator_loss,
            "reconstruction_loss": reconstruction,
            "discriminator_loss": discriminator_loss,
            "generator_loss": generator_loss,
        }

    def _reconstruction_phase(self, x, y, sample_weight):
        _, raw, reconstruction = self._encode_and_reconstruct(x, y, sample_weight, True)
        loss = _plus(reconstruction, _layer_losses(self.encoder, self.decoder))
        return raw, {"loss": loss, "reconstruction_loss": reconstruction}

    def _regularization_phase(self, x, y, sample_weight):
        latents, _ = self._split_encoder_outputs(self._call_encoder(x, training=True))
        discriminator_loss, generator_loss = self.adversarial_terms(
            latents[0], sample_weight, training=True
        )
        loss = _plus(discriminator_loss + generator_loss, _layer_losses(self.discriminator))
        return None, {
            "loss": loss,
            "discriminator_loss": discriminator_loss,
            "generator_loss": generator_loss,
        }

    def training_phases(self):
        """The reconstruction phase (encoder + decoder, ``optimizer``), then the regularisation
        phase (discriminator + encoder, ``discriminator_optimizer``)."""
        encoder = self.encoder.trainable_variables
        return (
            TrainingPhase(
                self.optimizer,
                _unique(encoder + self.decoder.trainable_variables),
                self._reconstruction_phase,
            ),
            TrainingPhase(
                self.discriminator_optimizer,
                _unique(self.discriminator.trainable_variables + encoder),
                self._regularization_phase,
            ),
        )

    # ------------------------------------------------------------------- compile
    def compile(
        self,
        optimizer="adam",
        loss=None,
        steps_per_execution="auto",
        discriminator_optimizer=None,
        **kwargs,
    ):
        """`BaseAutoencoder.compile` with the regularisation phase's optimizer.

        ``discriminator_optimizer``: an optimizer (instance, name or config) for the
        discriminator and the encoder's adversarial step; ``None`` (default): a fresh
        optimizer with ``optimizer``'s configuration. It must not be ``optimizer`` itself.
        """
        if discriminator_optimizer is optimizer and not isinstance(optimizer, (str, dict)):
            raise ValueError(
                "`discriminator_optimizer` must be another optimizer object than `optimizer` "
                "(each phase keeps its own state); received the same "
                f"{type(optimizer).__name__} for both."
            )
        optimizer = _resolve_optimizer("optimizer", optimizer)
        if discriminator_optimizer is None:  # a fresh one with optimizer's configuration
            discriminator_optimizer = optimizer.from_config(optimizer.get_config())
        else:
            discriminator_optimizer = _resolve_optimizer(
                "discriminator_optimizer", discriminator_optimizer
            )
        super().compile(
            optimizer=optimizer, loss=loss, steps_per_execution=steps_per_execution, **kwargs
        )
        if isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer) and not isinstance(
            discriminator_optimizer, keras.optimizers.LossScaleOptimizer
        ):  # Keras wraps `optimizer` under a mixed_float16 policy: the same for this one
            discriminator_optimizer = keras.optimizers.LossScaleOptimizer(discriminator_optimizer)
        self.discriminator_optimizer = discriminator_optimizer
        # Saved with the compile config, so a loaded model resumes with this optimizer.
        _keras_compat.save_compile_argument(
            self, "discriminator_optimizer", discriminator_optimizer
        )
        if self.built:
            build_phase_optimizers(self)

    # -------------------------------------------------------------------- config
    def get_config(self):
        return {
            **super().get_config(),
            "discriminator": keras.saving.serialize_keras_object(self.discriminator),
            "prior": self.prior,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        if isinstance(config.get("discriminator"), dict):
            config["discriminator"] = keras.saving.deserialize_keras_object(
                config["discriminator"], custom_objects=custom_objects
            )
        return super().from_config(config, custom_objects)
