"""What AE, DAE, VAE and CVAE share: data unpacking, loss bookkeeping, numpy API, config."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable

import keras
import numpy as np
from keras import ops

from keras_vae import _keras_compat
from keras_vae import losses as vae_losses
from keras_vae._config_checks import check_bool
from keras_vae.backends import TrainStep, datasets_must_keep_their_batch_size, no_grad
from keras_vae.models import _execution, _inputs
from keras_vae.models._inputs import InvalidInputError

DEFAULT_BATCH_SIZE = 256
_FIT_SIGNATURE = inspect.signature(keras.Model.fit)
_EVALUATE_SIGNATURE = inspect.signature(keras.Model.evaluate)


def _as_list(outputs):
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


def _float32(tensor):
    return ops.cast(tensor, "float32")


def _check_layer(value, name):
    if not isinstance(value, keras.layers.Layer):
        raise ValueError(
            f"`{name}` must be a Keras layer or model, received {type(value).__name__}: {value!r}"
        )


class _BuiltWhenConstructed(type(keras.Model)):
    """Builds a model once it is constructed: after the outermost ``__init__`` has returned.

    Each ``__init__`` creates its own layers after ``super().__init__()``, as in any Keras
    model, so only then does the model hold all it builds with (a VAE's sampler, a CVAE's
    class count). Where the encoder's input shape is known it builds there, so every variable
    exists before ``fit``, ``save`` or ``load``, and a mismatched decoder is refused at once.
    """

    def __call__(cls, *args, **kwargs):
        model = super().__call__(*args, **kwargs)
        model._ensure_built_if_known()
        return model


class BaseAutoencoder(TrainStep, keras.Model, metaclass=_BuiltWhenConstructed):
    """Base class of the keras_vae models; subclasses only state their losses.

    A subclass sets ``num_latent_outputs`` (how many leading encoder outputs
    describe the latent code: 1 for a code, 2 for ``[z_mean, z_log_var]``)
    and ``loss_terms`` (the names `compute_loss_terms` returns beside
    ``"loss"``: each gets a `keras.metrics.Mean` in ``loss_term_trackers``
    and is logged, in that order, after ``loss``), and implements
    `compute_loss_terms`. Encoder outputs beyond the latent ones (for
    example the argmax indices of `MaxPoolingWithArgmax2D`) are passed to the
    decoder as ``decoder([z, *extras])``: SegNet-style unpooling decoders.

    A model is built when constructed, once its outermost ``__init__`` has
    returned, if the encoder's input shape is known (otherwise by the first
    ``fit``, ``predict`` or ``build(input_shape)``); a ``.keras`` file rebuilds
    it from Keras' build config. The backend-specific ``train_step``/``test_step``
    come from `keras_vae.backends`; they call `compute_total_loss` and
    `update_metrics`.
    """

    num_latent_outputs = 1
    loss_terms = ("reconstruction_loss",)
    # What the model can do, for code outside keras_vae/models/ to ask instead of checking
    # classes: takes labels (fit(x, labels), encode/decode/reconstruct(..., labels));
    # generate() decodes prior samples; corrupt() adds its training noise; log_likelihood(),
    # elbo(), kl_per_dimension() and active_units() estimate how well it models the data.
    conditional = False
    generative = False
    denoising = False
    has_likelihood = False

    def __init__(
        self,
        encoder,
        decoder,
        reconstruction_loss="mse",
        from_logits: bool = True,
        **kwargs,
    ):
        from_logits = check_bool("from_logits", from_logits)
        super().__init__(**kwargs)
        _check_layer(encoder, "encoder")
        _check_layer(decoder, "decoder")
        self.encoder = encoder
        self.decoder = decoder
        self.reconstruction_loss = reconstruction_loss
        self.from_logits = from_logits
        self._reconstruction_fn = vae_losses.get_reconstruction_loss(
            reconstruction_loss, from_logits=self.from_logits
        )
        self.loss_term_trackers = {name: keras.metrics.Mean(name=name) for name in self.loss_terms}
        self.latent_shape = None
        self.data_shape = None
        self._decoder_needs_extras = False

    # ----------------------------------------------------------------- building
    def _ensure_built(self):
        """Builds from the encoder's input shape, for numpy methods called before fit."""
        if self.built:
            return
        inputs = getattr(self.encoder, "inputs", None)
        if not inputs:
            raise ValueError(
                f"{type(self).__name__} is not built yet and its encoder has no known input "
                "shape: call fit(), predict() or build(input_shape) first."
            )
        self.build((None,) + tuple(inputs[0].shape[1:]))

    def build(self, input_shape):
        data_spec = keras.KerasTensor(tuple(input_shape), dtype="float32")
        labels = self._symbolic_labels(data_spec)
        latents, extras = self._split_encoder_outputs(self._call_encoder(data_spec, labels))
        self.data_shape = tuple(input_shape[1:])
        self.latent_shape = tuple(latents[0].shape[1:])
        self._decoder_needs_extras = bool(extras)
        self._build_extras(latents)
        try:
            outputs = self._decode_raw(latents[0], extras, labels=labels)
        except (ValueError, TypeError) as error:
            raise ValueError(
                f"{type(self).__name__}: the decoder does not take the encoder's code of shape "
                f"{_inputs.shape_text(latents[0].shape)}"
                + (f" (with {len(extras)} extra encoder output(s))" if extras else "")
                + f"; the decoder says: {error}"
            ) from error
        self._check_decoder_output(outputs)

    def _check_decoder_output(self, outputs):
        """Refuses, at construction, a decoder whose outputs cannot be this model's."""
        name = type(self).__name__
        if not isinstance(outputs, (list, tuple)):
            output_shape = tuple(outputs.shape[1:])
            if output_shape != self.data_shape:
                raise ValueError(
                    f"{name} reconstructs its input: the decoder must output the encoder's data "
                    f"shape {_inputs.shape_text((None, *self.data_shape))}; it outputs "
                    f"{_inputs.shape_text(outputs.shape)}."
                )
        activation = _final_activation(self.decoder)
        if self.reconstruction_loss == "bernoulli" and self.from_logits and activation:
            raise ValueError(
                f"{name}: the decoder ends in a {activation} activation, but "
                "reconstruction_loss='bernoulli' with from_logits=True (the default) reads its "
                f"outputs as logits. Pass from_logits=False to {name}(...), or drop the "
                "decoder's final activation (logits are faster and numerically safer)."
            )

    def _symbolic_labels(self, data_spec):
        return None

    def _build_extras(self, latents):
        """Hook for subclasses that own layers sized by the latent space."""

    # ------------------------------------------------------------ forward pieces
    def _call_encoder(self, x, labels=None, training=False):
        return self.encoder(x, training=training)

    def _split_encoder_outputs(self, outputs):
        outputs = _as_list(outputs)
        if len(outputs) < self.num_latent_outputs:
            raise ValueError(
                f"{type(self).__name__} expects its encoder to return "
                f"{self.num_latent_outputs} latent tensor(s) (then optional extras for the "
                f"decoder); the encoder returned {len(outputs)}."
            )
        return outputs[: self.num_latent_outputs], outputs[self.num_latent_outputs :]

    def _decode_raw(self, z, extras=(), labels=None, training=False):
        decoder_inputs = [z, *extras] if extras else z
        return self.decoder(decoder_inputs, training=training)

    def to_data_space(self, raw_outputs):
        """Maps decoder outputs to data space: a sigmoid for Bernoulli logits."""
        if self.reconstruction_loss == "bernoulli" and self.from_logits:
            return ops.sigmoid(ops.cast(raw_outputs, "float32"))
        return raw_outputs

    # -------------------------------------------------------------------- losses
    def compute_loss_terms(self, x, y=None, sample_weight=None, training=False, noise=None):
        """Runs the model on a batch and returns ``(decoder_outputs, terms)``.

        ``terms`` maps ``"loss"`` (the scalar to minimise) and each name in
        ``loss_terms`` to float32 scalars: per-example sums, averaged over the
        batch. ``noise`` replaces the model's random draws (for tests and
        reproducible evaluation). Subclasses implement this.
        """
        raise NotImplementedError

    def compute_total_loss(self, x, y, sample_weight, training):
        """`compute_loss_terms` plus the losses the encoder/decoder add themselves."""
        outputs, terms = self.compute_loss_terms(x, y, sample_weight, training=training)
        layer_losses = self.losses
        if layer_losses:
            extra = ops.sum(ops.stack([ops.cast(loss, "float32") for loss in layer_losses]))
            terms = {**terms, "loss": terms["loss"] + extra}
        return outputs, terms

    def reconstruction_term(self, target, raw_outputs, sample_weight=None):
        return vae_losses.reduce_over_batch(
            self._reconstruction_fn(target, raw_outputs), sample_weight
        )

    # ----------------------------------------------------------- bookkeeping
    def unpack_data(self, data):
        return keras.utils.unpack_x_y_sample_weight(data)

    def _metric_target(self, x, y):
        return x if y is None else y

    def update_metrics(self, x, y, sample_weight, outputs, terms):
        batch_size = ops.shape(_as_list(x)[0])[0]
        _keras_compat.loss_tracker(self).update_state(terms["loss"], sample_weight=batch_size)
        for name, tracker in self.loss_term_trackers.items():
            tracker.update_state(terms[name], sample_weight=batch_size)
        if _keras_compat.compile_metrics(self) is not None:
            return self.compute_metrics(
                x,
                self._metric_target(x, y),
                self.to_data_space(outputs),
                sample_weight=sample_weight,
            )
        return self.get_metrics_result()

    def fit(self, x=None, y=None, *args, **kwargs):
        """`keras.Model.fit`, with every input checked before it is trained on.

        Arrays (``x``, ``y``, ``sample_weight``, ``validation_data``) are checked whole before
        training starts; a ``tf.data.Dataset``, a Python generator (which may also yield bare
        ``x`` batches) or a `keras.utils.PyDataset` batch by batch as it is drawn, so a bad
        batch raises `keras_vae.InvalidInputError` before its step (see `check_batch`).

        Under ``compile(steps_per_execution="auto")`` (the default) this call runs several
        batches per compiled call unless a callback needs every batch (see `compile`).
        """
        arguments = _FIT_SIGNATURE.bind(self, x, y, *args, **kwargs).arguments
        arguments.pop("self")
        checkers = self._check_arguments(arguments, "x", "y", "sample_weight")
        if arguments.get("validation_data") is not None:
            arguments["validation_data"], checker = self._checked_validation_data(
                arguments["validation_data"]
            )
            checkers.append(checker)
        _execution.before_call(self, arguments.get("callbacks"), ("train", "test"))
        with _inputs.raising_input_errors(*checkers):
            return super().fit(**arguments)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        """`keras.Model.evaluate`, with the inputs checked as in `fit`."""
        arguments = _EVALUATE_SIGNATURE.bind(self, x, y, *args, **kwargs).arguments
        arguments.pop("self")
        extra = arguments.pop("kwargs", {})
        # fit() validates through evaluate() on data it checked already, and keeps fit's
        # steps per execution.
        checkers = []
        if not _keras_compat.is_fit_validation(extra):
            checkers = self._check_arguments(arguments, "x", "y", "sample_weight")
            _execution.before_call(self, arguments.get("callbacks"), ("test",))
        with _inputs.raising_input_errors(*checkers):
            return super().evaluate(**arguments, **extra)

    def predict(self, x, *args, **kwargs):
        """`keras.Model.predict`, ``x`` checked as in `fit` (one batch per compiled call under
        ``"auto"``)."""
        arguments = inspect.signature(keras.Model.predict).bind(self, x, *args, **kwargs).arguments
        arguments.pop("self")
        checkers = self._check_arguments(arguments, "x", training=False)
        _execution.before_call(self, None, ())
        with _inputs.raising_input_errors(*checkers):
            return super().predict(**arguments)

    # ------------------------------------------------------------- checked input
    def check_batch(self, x, y=None, sample_weight=None, training=True):
        """Raises `keras_vae.InvalidInputError` unless this model can train on the batch.

        ``x`` must be numeric, non-empty, of the encoder's data shape ``(n, *data_shape)`` and
        finite; with the Bernoulli likelihood the reconstruction target (``x``, or ``y`` where
        ``y`` is the target) must lie in [0, 1]. ``y`` and ``sample_weight`` must have one
        entry per example; weights are finite and >= 0. ``training=False`` (``predict``)
        checks ``x`` alone, without the range. Works on numpy arrays or tensors; `fit`,
        `evaluate` and `predict` call it on every batch (arrays: once, whole).

        Example:

        ```python
        vae.check_batch(x_train)  # before fit; raises InvalidInputError on NaN, 0..255, ...
        ```
        """
        x = _inputs.as_numpy(x, "x")
        self._check_x(
            x,
            unit_interval=training
            and self._likelihood_needs_unit_interval()
            and self._target_is_x(y),
        )
        if not training:
            return
        self._check_y(y, len(x))
        if sample_weight is not None:
            _inputs.check_sample_weight(sample_weight, len(x))

    def check_batch_spec(self, x_spec, y_spec=None, sample_weight_spec=None):
        """Checks a dataset's element spec (shapes and dtypes) before training starts."""
        _inputs.check_spec(x_spec, "x", self.data_shape, self._data_shape_source())
        self._check_y_spec(y_spec)
        if sample_weight_spec is not None:
            _inputs.check_weight_spec(sample_weight_spec)

    def _check_x(self, x, unit_interval, name="x"):
        _inputs.check_numeric(x, name)
        _inputs.check_not_empty(x, name)
        if self.data_shape is not None:
            _inputs.check_shape(x, name, self.data_shape, self._data_shape_source())
        _inputs.check_finite_range(x, name, unit_interval=unit_interval)

    def _data_shape_source(self):
        return f"the data shape of this {type(self).__name__}'s encoder"

    def _likelihood_needs_unit_interval(self):
        return self.reconstruction_loss == "bernoulli"

    def _target_is_x(self, y):
        """Whether the reconstruction target is ``x`` itself (else ``y``)."""
        return y is None

    def _check_y(self, y, count):
        """``y`` is a reconstruction target of the decoder's output shape."""
        if y is None:
            return
        y = _inputs.as_numpy(y, "y")
        _inputs.check_numeric(y, "y")
        _inputs.check_count(y, "y", count)
        if self.data_shape is not None:
            _inputs.check_shape(y, "y", self.data_shape, "the target: the decoder's output shape")
        _inputs.check_finite_range(y, "y", unit_interval=self._likelihood_needs_unit_interval())

    def _check_y_spec(self, y_spec):
        if y_spec is not None:
            _inputs.check_spec(y_spec, "y", self.data_shape, "the decoder's output shape")

    def _check_arguments(self, arguments, x_key, y_key=None, weight_key=None, training=True):
        """Checks arrays now, wraps batched sources in ``arguments``; returns their checkers."""
        self._ensure_built_if_known()
        x = arguments.get(x_key)
        if _inputs.is_batched_source(x):
            check = self.check_batch if training else self._check_predict_batch
            checker = _inputs.BatchChecker(check, "the data")
            spec_check = self.check_batch_spec if training else self._check_predict_spec
            arguments[x_key] = _inputs.checked_data(
                x, checker, spec_check, not datasets_must_keep_their_batch_size()
            )
            return [checker]
        if x is None:
            raise InvalidInputError(
                "`x` is required: pass an array, a tf.data.Dataset or a generator of batches."
            )
        if training:
            self.check_batch(x, arguments.get(y_key), arguments.get(weight_key))
        else:
            self._check_predict_batch(x)
        return []

    def _checked_validation_data(self, data):
        if _inputs.is_batched_source(data):
            checker = _inputs.BatchChecker(self.check_batch, "validation_data")
            checked = _inputs.checked_data(
                data, checker, self.check_batch_spec, not datasets_must_keep_their_batch_size()
            )
            return checked, checker
        try:
            self.check_batch(*_inputs.batch_parts(tuple(data) if isinstance(data, list) else data))
        except InvalidInputError as error:
            raise InvalidInputError(f"validation_data: {error}") from None
        return data, None

    def _check_predict_batch(self, x, y=None, sample_weight=None):
        """What ``predict`` (``call``) takes: ``x`` of the data shape, finite."""
        self.check_batch(x, training=False)

    def _check_predict_spec(self, x_spec, y_spec=None, sample_weight_spec=None):
        _inputs.check_spec(x_spec, "x", self.data_shape, self._data_shape_source())

    def _ensure_built_if_known(self):
        if not self.built and getattr(self.encoder, "inputs", None):
            self._ensure_built()

    def compile(self, optimizer="adam", loss=None, steps_per_execution="auto", **kwargs):
        """Like `keras.Model.compile`; the loss is the model's own (set in the constructor).

        ``steps_per_execution`` may also be ``"auto"``, the default. Each ``fit`` and
        ``evaluate`` call then runs ``AUTO_STEPS_PER_EXECUTION`` batches per compiled call (32
        on TensorFlow; 1 on JAX and torch and under a ``tf.distribute`` strategy; see
        `keras_vae.backends`), which spares Keras' Python loop its per-batch work, unless one
        of the call's callbacks must see every batch: then 1, as with Keras' default.
        Callbacks without batch hooks (`keras.callbacks.EarlyStopping`, ``CSVLogger``,
        `keras_vae.callbacks.SampleGrid`, ...), the progress bar, ``TerminateOnNaN``, and
        checkpoints or TensorBoard logs written per epoch do not need every batch. Any other
        callback with a batch hook does (``KLWarmup(per_batch=True)``,
        ``ModelCheckpoint(save_freq=100)``, ``LambdaCallback(on_train_batch_end=...)``), unless
        it declares ``needs_every_batch = False``. An integer is used as given, as in Keras.
        ``predict`` runs one batch per call under ``"auto"``.

        Example:

        ```python
        vae.compile(optimizer="adam")  # steps_per_execution="auto"
        vae.fit(x_train, epochs=2, verbose=0)
        vae.steps_per_execution  # 32 on TensorFlow, 1 on JAX and torch
        ```
        """
        if loss is not None:
            raise ValueError(
                f"{type(self).__name__} computes its own loss; pass reconstruction_loss= to "
                f"the constructor instead of loss={loss!r} to compile()."
            )
        requested = _execution.check_requested(steps_per_execution)
        super().compile(
            optimizer=optimizer,
            steps_per_execution=_execution.keras_value(requested),
            **kwargs,
        )
        _execution.record(self, requested)
        # What the caller asked for, before Keras resolves "auto": the TensorFlow train step
        # XLA-compiles the optimizer update alone when "auto" left the step itself uncompiled.
        self._jit_compile_requested = kwargs.get("jit_compile", "auto")
        metrics = _keras_compat.compile_metrics(self)
        if self.built and metrics is not None:
            # Built here so Keras need not call the model symbolically on x alone.
            spec = keras.KerasTensor((None, *self.data_shape), dtype="float32")
            metrics.build(spec, spec)

    def compile_from_config(self, config):
        """Recompiles a loaded model, so training resumes with its optimizer state."""
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)

    # ------------------------------------------------------------------- call
    def call(self, inputs, training=False):
        """Deterministic reconstruction (from the posterior mean for VAEs)."""
        latents, extras = self._split_encoder_outputs(self._call_encoder(inputs, training=training))
        raw = self._decode_raw(latents[0], extras, training=training)
        return self.to_data_space(raw)

    # --------------------------------------------------------------- numpy API
    def _batched(self, fn, arrays, batch_size=None):
        """Applies ``fn`` to slices of numpy ``arrays``; returns numpy (or a tuple)."""
        batch_size = batch_size or DEFAULT_BATCH_SIZE
        arrays = [np.asarray(a) for a in arrays]
        count = len(arrays[0])
        for array in arrays[1:]:
            if len(array) != count:
                raise ValueError(
                    f"All inputs must have the same number of examples; received "
                    f"{[len(a) for a in arrays]}."
                )
        chunks = []
        with no_grad():
            for start in range(0, max(count, 1), batch_size):
                parts = [a[start : start + batch_size] for a in arrays]
                result = fn(*[ops.convert_to_tensor(p) for p in parts])
                chunks.append(
                    tuple(ops.convert_to_numpy(r) for r in result)
                    if isinstance(result, (list, tuple))
                    else ops.convert_to_numpy(result)
                )
        if isinstance(chunks[0], tuple):
            return tuple(np.concatenate(parts) for parts in zip(*chunks))
        return np.concatenate(chunks)

    def _check_data(self, x, name="x"):
        x = _inputs.as_numpy(x, name)
        self._check_x(x, unit_interval=False, name=name)
        return x.astype("float32", copy=False)

    def _check_latent(self, z):
        z = np.asarray(z, dtype="float32")
        if self.latent_shape is not None and tuple(z.shape[1:]) != tuple(self.latent_shape):
            raise ValueError(
                f"z must have shape (batch, {', '.join(map(str, self.latent_shape))}); "
                f"received {z.shape}."
            )
        return z

    def _require_plain_decoder(self, what):
        if getattr(self, "_decoder_needs_extras", False):
            raise ValueError(
                f"{what} is not available: this decoder also needs the encoder's extra "
                "outputs (for example the argmax of MaxPoolingWithArgmax2D); use reconstruct()."
            )

    def _numpy_labels(self, labels, count, method):
        """The label arrays ``method`` passes on beside its ``count`` examples: none here.

        AE, DAE and VAE take no labels; a conditional model overrides this to check them.
        """
        if labels is not None:
            raise InvalidInputError(
                f"{type(self).__name__} takes no labels; received labels of shape "
                f"{tuple(np.shape(labels))}."
            )
        return []

    def _encode_tensor(self, x, labels=None):
        """The latent tensors of a batch: ``[code]`` or ``[z_mean, z_log_var]``."""
        latents, _ = self._split_encoder_outputs(self._call_encoder(x, labels))
        return latents

    def _decode_tensor(self, z, labels=None):
        """A batch of latents decoded to data space."""
        return self.to_data_space(self._decode_raw(z, labels=labels))

    def _reconstruct_tensor(self, x, labels=None):
        """What `call` computes: the decoded posterior mean (or code), in data space."""
        latents, extras = self._split_encoder_outputs(self._call_encoder(x, labels))
        return self.to_data_space(self._decode_raw(latents[0], extras, labels=labels))

    def encode(self, x, labels=None, batch_size=None):
        """Encodes numpy ``x``: codes (AE/DAE) or ``(z_mean, z_log_var)`` (VAE, CVAE).

        ``labels`` only for a conditional model (a CVAE needs them with
        ``condition_encoder=True``); the others refuse them with
        `keras_vae.InvalidInputError`.
        """
        self._ensure_built()
        x = self._check_data(x)
        labels = self._numpy_labels(labels, len(x), "encode")

        def fn(batch, *batch_labels):
            latents = self._encode_tensor(batch, *batch_labels)
            return latents[0] if len(latents) == 1 else tuple(latents)

        return self._batched(fn, [x, *labels], batch_size)

    def decode(self, z, labels=None, batch_size=None):
        """Decodes numpy latents ``z`` to data space (probabilities for Bernoulli).

        ``labels`` as in `encode` (a CVAE needs them with ``condition_decoder=True``).
        """
        self._ensure_built()
        self._require_plain_decoder("decode()")
        z = self._check_latent(z)
        labels = self._numpy_labels(labels, len(z), "decode")
        return self._batched(self._decode_tensor, [z, *labels], batch_size)

    def reconstruct(self, x, labels=None, batch_size=None):
        """Deterministic reconstructions of numpy ``x`` (the same as ``predict``).

        ``labels`` as in `encode` (a CVAE needs them when it conditions either part).
        """
        self._ensure_built()
        x = self._check_data(x)
        labels = self._numpy_labels(labels, len(x), "reconstruct")

        def fn(batch, *batch_labels):  # call() takes x, or [x, labels]
            return self([batch, *batch_labels] if batch_labels else batch, training=False)

        return self._batched(fn, [x, *labels], batch_size)

    def interpolate(self, x_a, x_b, steps=8, labels=None, batch_size=None):
        """Decodes ``steps`` points on the line between the codes of ``x_a`` and ``x_b``.

        ``x_a`` and ``x_b`` are single examples (shape of one datum) or batches of
        equal size; returns ``(steps, ...)`` or ``(batch, steps, ...)``. ``labels``
        (one per pair) as in `encode`.
        """
        self._ensure_built()
        self._require_plain_decoder("interpolate()")
        single = np.ndim(x_a) == len(self.data_shape or np.shape(x_a))
        x_a = np.asarray(x_a)[None] if single else np.asarray(x_a)
        x_b = np.asarray(x_b)[None] if single else np.asarray(x_b)
        if labels is not None and single:
            labels = np.asarray(labels)[None]
        code_a, code_b = self._interpolation_codes(x_a, x_b, labels, batch_size)
        weights = np.linspace(0.0, 1.0, int(steps), dtype="float32")
        weights = weights.reshape((1, -1) + (1,) * (code_a.ndim - 1))
        path = code_a[:, None] * (1.0 - weights) + code_b[:, None] * weights
        flat = path.reshape((-1,) + path.shape[2:])
        path_labels = None if labels is None else np.repeat(labels, int(steps), axis=0)
        images = self.decode(flat, path_labels, batch_size=batch_size)
        images = images.reshape(path.shape[:2] + images.shape[1:])
        return images[0] if single else images

    def _interpolation_codes(self, x_a, x_b, labels, batch_size):
        code_a = self.encode(x_a, labels, batch_size=batch_size)
        code_b = self.encode(x_b, labels, batch_size=batch_size)
        if isinstance(code_a, tuple):  # (z_mean, z_log_var): interpolate the means
            return code_a[0], code_b[0]
        return code_a, code_b

    # ------------------------------------------------------------------ export
    def serving_endpoints(self, check_labels: bool = True) -> dict[str, tuple[Callable, list]]:
        """What a serving export of this model holds, as ``{name: (fn, input_signature)}``.

        ``fn`` takes tensors in the order of ``input_signature`` (a list of
        named `keras.InputSpec` with a dynamic batch dimension: ``x`` float32
        ``(batch, *data_shape)``, ``z`` and ``eps`` float32
        ``(batch, *latent_shape)``, ``labels`` int32 ``(batch,)``) and returns
        a dict of float32 tensors in data space. The first entry is
        ``"serving_default"`` (``{"reconstruction"}``), then ``"encode"``
        (``{"code"}``, or ``{"z_mean", "z_log_var"}``) and ``"decode"``
        (``{"x"}``; absent where the decoder also needs the encoder's pooling
        indices); a ``generative`` model adds ``"generate"`` (``eps``, a prior draw ->
        ``{"x"}``), and a `CVAE` takes ``labels``
        where it is conditioned. Nothing inside is random. With
        ``check_labels`` (the default) labels outside the classes are refused
        the backend's way (see `keras_vae.export`); ``False`` gives functions
        that also run on symbolic `keras.Input` tensors.

        `keras_vae.export.export_model` writes these; add them to your own
        `keras.export.ExportArchive` the same way, tracking `serving_layers`.

        Example:

        >>> from keras_vae import AE, architectures
        >>> model = AE(*architectures.mlp((8,), latent_dim=2, variational=False))
        >>> for name, (fn, specs) in model.serving_endpoints().items():
        ...     print(name, [spec.name for spec in specs], sorted(fn(*[
        ...         keras.ops.zeros((3, *spec.shape[1:]), spec.dtype) for spec in specs])))
        serving_default ['x'] ['reconstruction']
        encode ['x'] ['code']
        decode ['z'] ['x']
        """
        self._ensure_built()
        latent_names = ("z_mean", "z_log_var") if self.num_latent_outputs == 2 else ("code",)

        def serving_default(x):
            return {"reconstruction": _float32(self._reconstruct_tensor(x))}

        def encode(x):
            return {name: _float32(t) for name, t in zip(latent_names, self._encode_tensor(x))}

        def decode(z):
            return {"x": _float32(self._decode_tensor(z))}

        endpoints = {
            "serving_default": (serving_default, [self._serving_spec("x")]),
            "encode": (encode, [self._serving_spec("x")]),
        }
        if not self._decoder_needs_extras:
            endpoints["decode"] = (decode, [self._serving_spec("z")])
            if self.generative:
                # generate() decodes prior draws; served, it decodes the caller's draws `eps`
                # (drawn outside the graph), so a request gives the same answer every time.
                def generate(eps):
                    return decode(eps)

                endpoints["generate"] = (generate, [self._serving_spec("eps")])
        return endpoints

    def _serving_spec(self, name):
        """The `keras.InputSpec` of a serving input: ``x``, ``z``, ``eps`` or ``labels``."""
        if name == "labels":
            return keras.InputSpec(shape=(None,), dtype="int32", name=name)
        shape = self.data_shape if name == "x" else self.latent_shape
        return keras.InputSpec(shape=(None, *shape), dtype="float32", name=name)

    def serving_layers(self) -> list:
        """The layers whose weights `serving_endpoints` read (what an export tracks)."""
        return [self.encoder, self.decoder]

    def export(self, filepath, format="tf_saved_model", verbose=True, **kwargs):
        """Writes a serving artifact with named signatures; see `keras_vae.export`.

        Works on every backend: on PyTorch, where Keras writes no SavedModel with
        named signatures, a fresh TensorFlow process exports a copy of the model.
        """
        from keras_vae.export import export_model

        return export_model(self, filepath, format=format, verbose=verbose, **kwargs)

    # ------------------------------------------------------------------ config
    def get_config(self):
        loss = self.reconstruction_loss
        if callable(loss):
            loss = keras.saving.serialize_keras_object(loss)
        return {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            "reconstruction_loss": loss,
            "from_logits": self.from_logits,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        for key in ("encoder", "decoder"):
            config[key] = keras.saving.deserialize_keras_object(
                config[key], custom_objects=custom_objects
            )
        if isinstance(config.get("reconstruction_loss"), dict):
            config["reconstruction_loss"] = keras.saving.deserialize_keras_object(
                config["reconstruction_loss"], custom_objects=custom_objects
            )
        return cls(**config)


# Layers that only move values around: a decoder ending in one of them ends in the layer before.
_SHAPE_ONLY_LAYERS = tuple(
    getattr(keras.layers, name)
    for name in (
        "Reshape",
        "Flatten",
        "Permute",
        "Cropping1D",
        "Cropping2D",
        "Cropping3D",
        "Identity",
        "InputLayer",
    )
)


def _final_activation(layer):
    """Name of the squashing activation (sigmoid, softmax) a decoder ends in, or None.

    Follows the last layer of (nested) models, skipping layers that only reshape: Keras keeps a
    functional model's layers in topological order, so the last one computes the output.
    """
    while True:
        if isinstance(layer, keras.Model):
            candidates = [
                inner for inner in layer.layers if not isinstance(inner, _SHAPE_ONLY_LAYERS)
            ]
            if not candidates:
                return None
            layer = candidates[-1]
            continue
        break
    if isinstance(layer, keras.layers.Softmax):
        return "softmax"
    name = getattr(getattr(layer, "activation", None), "__name__", None)
    return name if name in ("sigmoid", "hard_sigmoid", "softmax") else None


def standard_normal(shape, seed=None):
    """Numpy standard-normal noise: the same draws for the same seed on every backend."""
    return np.random.default_rng(seed).standard_normal(shape).astype("float32")


def check_count(n, name="n"):
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"`{name}` must be a positive integer, received {n!r}")
    return int(n)


def prod(shape):
    return int(math.prod(shape))
