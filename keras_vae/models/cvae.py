"""The class-conditional variational autoencoder."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from keras_vae import backends
from keras_vae._config_checks import MAX_NUM_CLASSES, check_bool, check_int
from keras_vae.layers import ClassMeanPrior
from keras_vae.models import _inputs
from keras_vae.models._inputs import InvalidInputError
from keras_vae.models.base import _float32, standard_normal
from keras_vae.models.vae import VAE


@keras.saving.register_keras_serializable(package="keras_vae")
class CVAE(VAE):
    """Class-conditional VAE, a learned prior per class: ``N(mu_y, I)`` or ``N(mu_y, sigma_y**2)``.

    Data are ``(x, labels)`` (``fit(x, labels)`` or a dataset of pairs);
    labels are integers in ``[0, num_classes)`` (shape ``(batch,)`` or
    ``(batch, 1)``) or one-hot. The KL term is
    ``0.5 * sum((mu - mu_y)**2 + sigma**2 - log sigma**2 - 1)``
    (`ClassMeanPrior` + `KLDivergenceRegularizer`), so each class gets its own
    region of latent space and ``generate(labels)`` decodes ``mu_y + eps``.

    With ``learn_prior_variance=True`` the prior also learns a diagonal
    variance per class, ``N(mu_y, sigma_y**2)`` (``log sigma_y**2`` starts at
    0 and is soft-clipped to ``(-10, 10)``, see `ClassMeanPrior`); the KL is
    then ``sum(log(sigma_y / sigma) + (sigma**2 + (mu - mu_y)**2) /
    (2 sigma_y**2) - 1/2)`` and ``generate(labels)`` decodes
    ``mu_y + sigma_y * eps``. A class whose codes spread more gets a wider
    prior instead of being pulled onto unit variance.

    Which variant fits:

    * ``condition_encoder=False, condition_decoder=False`` (default): the
      label acts only through the prior. The decoder is an ordinary VAE
      decoder, latents stay class-clustered (good for latent plots,
      classification by nearest class mean), and generation is steered by
      the class mean alone; classes whose images are alike can blend.
    * ``condition_decoder=True`` (Sohn et al. 2015): the decoder also sees
      the one-hot label, ``decoder([z, one_hot])``; generation follows the
      label most faithfully, and the latent can code style apart from class.
    * ``condition_encoder=True``: the encoder sees ``[x, one_hot]`` as in
      Sohn et al.'s ``q(z | x, y)``; use it together with
      ``condition_decoder`` for the full CVAE.

    `architectures.mlp` / `architectures.conv` with ``num_classes=`` build
    matching conditional encoders and decoders.

    Args:
        encoder, decoder: as in `VAE` (taking ``[x, one_hot]`` /
            ``[z, one_hot]`` when conditioned).
        num_classes: int in ``[2, 1_000_000]``, number of classes; the prior's
            table of means, ``num_classes * latent_dim`` values, holds at most
            ``2**26`` (67,108,864) of them.
        condition_encoder: ``True`` or ``False``, feed the one-hot label to the
            encoder.
        condition_decoder: ``True`` or ``False``, feed the one-hot label to the
            decoder.
        learn_prior_variance: ``True`` or ``False`` (default: unit variance),
            learn a per-class prior log-variance too (`class_log_variances`).
        beta, reconstruction_loss, from_logits, free_bits, seed: as in `VAE`.

    Example:

    >>> import numpy as np
    >>> from keras_vae import CVAE, architectures
    >>> encoder, decoder = architectures.mlp((16,), latent_dim=2, hidden_units=(32,))
    >>> cvae = CVAE(encoder, decoder, num_classes=3)
    >>> cvae.compile(optimizer="adam")
    >>> x, labels = np.random.rand(60, 16), np.arange(60) % 3
    >>> sorted(cvae.fit(x, labels, epochs=1, verbose=0).history)
    ['kl_loss', 'loss', 'reconstruction_loss']
    >>> cvae.generate(np.array([0, 1, 2]), seed=0).shape
    (3, 16)

    With a learned variance per class:

    >>> cvae = CVAE(encoder, decoder, num_classes=3, learn_prior_variance=True)
    >>> cvae.compile(optimizer="adam")
    >>> _ = cvae.fit(x, labels, epochs=1, verbose=0)
    >>> cvae.class_log_variances().shape
    (3, 2)
    """

    conditional = True

    def __init__(
        self,
        encoder,
        decoder,
        num_classes,
        condition_encoder=False,
        condition_decoder=False,
        learn_prior_variance=False,
        beta=1.0,
        reconstruction_loss="bernoulli",
        from_logits=True,
        free_bits=0.0,
        seed=None,
        **kwargs,
    ):
        num_classes = check_int("num_classes", num_classes, 2, MAX_NUM_CLASSES)
        condition_encoder = check_bool("condition_encoder", condition_encoder)
        condition_decoder = check_bool("condition_decoder", condition_decoder)
        learn_prior_variance = check_bool("learn_prior_variance", learn_prior_variance)
        super().__init__(
            encoder,
            decoder,
            beta=beta,
            reconstruction_loss=reconstruction_loss,
            from_logits=from_logits,
            free_bits=free_bits,
            seed=seed,
            **kwargs,
        )
        self.num_classes = num_classes
        self.condition_encoder = condition_encoder
        self.condition_decoder = condition_decoder
        self.learn_prior_variance = learn_prior_variance
        self.prior = None

    # ----------------------------------------------------------- conditioning
    def _one_hot(self, labels):
        if len(labels.shape) == 2 and labels.shape[-1] == self.num_classes:
            return ops.cast(labels, "float32")
        indices = ops.cast(ops.reshape(labels, (-1,)), "int32")
        return ops.one_hot(indices, self.num_classes)

    def _symbolic_labels(self, data_spec):
        return keras.KerasTensor((data_spec.shape[0],), dtype="int32")

    def _build_extras(self, latents):
        super()._build_extras(latents)
        if self.prior is not None:
            return
        if len(self.latent_shape) != 1:
            raise ValueError(
                f"CVAE needs a flat latent space (batch, latent_dim); the encoder gives "
                f"{latents[0].shape}."
            )
        self.prior = ClassMeanPrior(
            self.num_classes,
            self.latent_shape[0],
            learn_variance=self.learn_prior_variance,
            name="class_prior",
        )
        self.prior.build((None,))

    def _call_encoder(self, x, labels=None, training=False):
        if self.condition_encoder:
            # A tensor, not numpy: Keras refuses a list mixing the two (JAX, run_eagerly).
            x = ops.convert_to_tensor(x)
            return self.encoder([x, self._one_hot(labels)], training=training)
        return self.encoder(x, training=training)

    def _decode_raw(self, z, extras=(), labels=None, training=False):
        if self.condition_decoder:
            return self.decoder([z, self._one_hot(labels), *extras], training=training)
        return super()._decode_raw(z, extras, training=training)

    def _prior(self, labels):
        if self.learn_prior_variance:
            return self.prior(labels)  # (means, log_vars)
        return self.prior(labels), None

    def _default_save_signature(self):
        # tf.saved_model.save would trace call(x) without labels; export() writes signatures.
        return None

    def _labels_and_target(self, x, y):
        if y is None:
            raise ValueError("CVAE needs labels: fit(x, labels) or a dataset of (x, labels) pairs.")
        return y, x

    def _metric_target(self, x, y):
        return x

    def build(self, input_shape):
        if isinstance(input_shape, (list, tuple)) and isinstance(input_shape[0], (list, tuple)):
            input_shape = input_shape[0]
        super().build(input_shape)

    def _ensure_built(self):
        if self.built:
            return
        inputs = getattr(self.encoder, "inputs", None)
        if inputs:
            self.build((None,) + tuple(inputs[0].shape[1:]))
            return
        super()._ensure_built()

    def call(self, inputs, training=False):
        """Deterministic reconstruction of ``[x, labels]``."""
        if isinstance(inputs, (list, tuple)) and len(inputs) == 2:
            x, labels = inputs
        elif self.condition_encoder or self.condition_decoder:
            raise ValueError("This CVAE conditions on the label: call it on [x, labels].")
        else:  # the label only shapes the prior, not the reconstruction
            x, labels = inputs, None
        latents, extras = self._split_encoder_outputs(
            self._call_encoder(x, labels, training=training)
        )
        return self.to_data_space(
            self._decode_raw(latents[0], extras, labels=labels, training=training)
        )

    # --------------------------------------------------------------- numpy API
    def check_labels(self, labels, count=None, name="labels"):
        """Validates labels (range, shape, integrality) and returns int32 or one-hot float32.

        Integer labels of shape ``(n,)`` or ``(n, 1)`` in ``[0, num_classes)`` (floats only
        when they hold whole numbers), or one-hot/soft labels ``(n, num_classes)`` whose rows
        are >= 0 and sum to 1. Anything else raises `keras_vae.InvalidInputError` naming
        ``name``; nothing is truncated or wrapped around.
        """
        labels = _inputs.as_numpy(labels, name)
        _inputs.check_numeric(labels, name)
        if labels.ndim == 2 and labels.shape[1] == self.num_classes:
            _inputs.check_finite_range(labels, name)
            rows = labels.astype("float64").sum(axis=1)
            if labels.size and (labels.min() < 0 or not np.allclose(rows, 1.0, atol=1e-3)):
                bad = int(np.argmax((labels < 0).any(axis=1) | ~np.isclose(rows, 1.0, atol=1e-3)))
                raise InvalidInputError(
                    f"`{name}` of shape (n, {self.num_classes}) must be one-hot (or soft) "
                    f"labels: rows >= 0 that sum to 1; row {bad} is {labels[bad].tolist()}."
                )
            labels = labels.astype("float32")
        else:
            if labels.ndim == 2 and labels.shape[1] == 1:
                labels = labels[:, 0]
            if labels.ndim != 1:
                raise InvalidInputError(
                    f"`{name}` must have shape (n,), (n, 1) or (n, {self.num_classes}) "
                    f"(one-hot); received shape {labels.shape}."
                )
            labels = _inputs.check_class_indices(labels, name, self.num_classes)
        if count is not None and len(labels) != count:
            raise InvalidInputError(
                f"`{name}` must have one label per example ({count}); received {len(labels)}."
            )
        return labels

    # ------------------------------------------------------------- checked input
    def _target_is_x(self, y):
        return True  # y holds the labels

    def _check_y(self, y, count):
        if y is None:
            raise InvalidInputError(
                "CVAE needs labels: fit(x, labels) or a dataset of (x, labels) pairs; received "
                "no labels (y=None)."
            )
        self.check_labels(y, count, name="y (labels)")

    def _check_predict_batch(self, x, y=None, sample_weight=None):
        """``predict`` takes ``[x, labels]`` (or ``x`` alone when no input is conditioned)."""
        if isinstance(x, (list, tuple)) and len(x) == 2:
            x, y = x
        if y is None and (self.condition_encoder or self.condition_decoder):
            raise InvalidInputError(
                "This CVAE conditions on the label: predict([x, labels]); received x alone."
            )
        x = _inputs.as_numpy(x, "x")
        self._check_x(x, unit_interval=False)
        if y is not None:
            self.check_labels(y, len(x))

    def _check_y_spec(self, y_spec):
        if y_spec is None:
            raise InvalidInputError(
                "CVAE needs labels: the data yield x alone; yield (x, labels) pairs."
            )
        _inputs.check_spec(y_spec, "y (labels)", None, "")
        shape = tuple(y_spec.shape) if y_spec.shape.rank is not None else None
        if shape is not None and not (
            len(shape) == 1 or (len(shape) == 2 and shape[1] in (None, 1, self.num_classes))
        ):
            raise InvalidInputError(
                f"`y (labels)` must have shape (n,), (n, 1) or (n, {self.num_classes}); the data "
                f"yield shape {_inputs.shape_text(shape)}."
            )

    def _numpy_labels(self, labels, count, method):
        """``[labels]`` checked by `check_labels`, or ``[]`` where ``method`` can do without.

        Labels are needed where ``method`` feeds them to a conditioned encoder or decoder;
        given elsewhere they are checked all the same (and the unconditioned part ignores
        them).
        """
        if labels is not None:
            return [self.check_labels(labels, count)]
        if method == "encode" and self.condition_encoder:
            what = "its encoder: encode(x, labels)"
        elif method == "decode" and self.condition_decoder:
            what = "its decoder: decode(z, labels)"
        elif method not in ("encode", "decode") and (
            self.condition_encoder or self.condition_decoder
        ):
            what = f"on the label: {method}(x, labels)"
        else:
            return []
        raise InvalidInputError(f"This CVAE conditions {what}; received no labels.")

    def class_means(self):
        """The learned prior means, numpy ``(num_classes, latent_dim)``."""
        self._ensure_built()
        return ops.convert_to_numpy(self.prior.class_means)

    def class_log_variances(self):
        """The prior log-variances ``log sigma_y**2``, numpy ``(num_classes, latent_dim)``.

        The learned (soft-clipped) values with ``learn_prior_variance``, zeros without.
        """
        self._ensure_built()
        return ops.convert_to_numpy(self.prior.log_variances())

    def generate(self, labels, seed=None, batch_size=None):
        """Decodes ``mu_y + sigma_y * eps`` for each label; numpy ``(len(labels), *data_shape)``.

        ``sigma_y = 1`` without ``learn_prior_variance``. One-hot (soft) labels weight the
        class means and log-variances, as `ClassMeanPrior` does.
        """
        self._ensure_built()
        labels = self.check_labels(labels)
        tables = [self.class_means()]
        if self.learn_prior_variance:
            tables.append(self.class_log_variances())
        rows = [labels @ table if labels.ndim == 2 else table[labels] for table in tables]
        z = standard_normal(rows[0].shape, seed)
        if self.learn_prior_variance:
            z = z * np.exp(0.5 * rows[1])
        z = rows[0] + z
        return self.decode(z.astype("float32"), labels, batch_size=batch_size)

    def interpolate(self, x_a, x_b, steps=8, labels=None, batch_size=None):
        """Interpolates between posterior means, for a CVAE without label inputs.

        ``labels`` (one per pair), if given, are checked; nothing here is conditioned on
        them. A CVAE that feeds labels to its encoder or decoder refuses: the two ends
        of a path may belong to different classes.
        """
        if self.condition_decoder or self.condition_encoder:
            raise ValueError(
                "interpolate() is defined for CVAEs without label inputs; decode a path of "
                "latents with decode(z, labels) instead."
            )
        return super().interpolate(x_a, x_b, steps, labels=labels, batch_size=batch_size)

    # ------------------------------------------------------------------ export
    def serving_endpoints(self, check_labels: bool = True) -> dict:
        """`VAE.serving_endpoints`, taking int32 ``labels`` where this CVAE is conditioned.

        ``serving_default`` takes ``(x, labels)`` when the encoder or the decoder is
        conditioned, ``encode`` ``(x, labels)`` with ``condition_encoder``, ``decode``
        ``(z, labels)`` with ``condition_decoder``; ``generate`` always takes
        ``(labels, eps)`` and decodes ``class_mean[labels] + eps``, or
        ``class_mean[labels] + exp(class_log_var[labels] / 2) * eps`` with
        ``learn_prior_variance``. With
        ``check_labels``, labels outside ``[0, num_classes)`` raise (exports from
        TensorFlow) or give NaN rows (JAX, where compiled code cannot raise).

        Example:

        >>> from keras_vae import CVAE, architectures
        >>> encoder, _ = architectures.mlp((8,), latent_dim=2)
        >>> _, decoder = architectures.mlp((8,), latent_dim=2, num_classes=3)
        >>> cvae = CVAE(encoder, decoder, num_classes=3, condition_decoder=True)
        >>> for name, (fn, specs) in cvae.serving_endpoints().items():
        ...     print(name, [spec.name for spec in specs])
        serving_default ['x', 'labels']
        encode ['x']
        decode ['z', 'labels']
        generate ['labels', 'eps']
        """
        endpoints = super().serving_endpoints(check_labels)
        x, z, eps, labels = (self._serving_spec(name) for name in ("x", "z", "eps", "labels"))

        def with_labels(run, labels):
            if not check_labels:
                return run(labels)
            return backends.checked_labels(labels, self.num_classes, run)

        def serving_default(x, labels):
            return with_labels(
                lambda y: {"reconstruction": _float32(self._reconstruct_tensor(x, y))}, labels
            )

        def encode(x, labels):
            def run(y):
                z_mean, z_log_var = self._encode_tensor(x, y)
                return {"z_mean": _float32(z_mean), "z_log_var": _float32(z_log_var)}

            return with_labels(run, labels)

        def decode(z, labels):
            return with_labels(lambda y: {"x": _float32(self._decode_tensor(z, y))}, labels)

        def generate(labels, eps):
            def run(y):
                prior_mean, prior_log_var = self._prior(y)
                noise = eps
                if prior_log_var is not None:
                    noise = ops.exp(0.5 * ops.cast(prior_log_var, "float32")) * eps
                z = ops.cast(prior_mean, "float32") + noise
                return {"x": _float32(self._decode_tensor(z, y))}

            return with_labels(run, labels)

        if self.condition_encoder or self.condition_decoder:
            endpoints["serving_default"] = (serving_default, [x, labels])
        if self.condition_encoder:
            endpoints["encode"] = (encode, [x, labels])
        if "decode" in endpoints:  # a decoder that takes a bare latent
            if self.condition_decoder:
                endpoints["decode"] = (decode, [z, labels])
            endpoints["generate"] = (generate, [labels, eps])
        return endpoints

    def serving_layers(self) -> list:
        """The encoder, the decoder and the class-mean prior."""
        return [*super().serving_layers(), self.prior]

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "condition_encoder": self.condition_encoder,
            "condition_decoder": self.condition_decoder,
            "learn_prior_variance": self.learn_prior_variance,
        }
