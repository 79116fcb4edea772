"""The only code in keras_vae that knows which Keras backend runs.

Each backend module defines ``TrainStep``, a mixin with ``train_step``,
``test_step`` and ``compiles_optimizer_update()`` (True where the TensorFlow
step runs the optimizer update under XLA on its own) for
`keras_vae.models.BaseAutoencoder`. Its ``train_step`` runs the model's
``training_phases()`` in turn, each a `TrainingPhase` (an optimizer, the variables it
steps, the loss it minimises): one by default, one per optimizer for a model with several
(`keras_vae.models.AdversarialAE`); `build_phase_optimizers(model)` gives each its state
before training or loading; ``AUTO_STEPS_PER_EXECUTION`` and
``auto_steps_per_execution(model)``, the batches per compiled call that
``compile(steps_per_execution="auto")`` runs; ``no_grad()``, the
context for inference outside ``fit``; ``inference_function(fn)``, ``fn`` compiled for the
likelihood estimators' repeated same-shaped calls, and
``bernoulli_log_prob_sum(x, logits)``, their kernel for Bernoulli log p(x | z) per sample,
and ``inference_rows()``, their decoder rows per call;
``native_conv_transpose_is_slow()``,
which tells `keras_vae.layers.SubPixelConv2DTranspose` to use its rewrite;
``random_normal`` / ``random_uniform``, the noise of
`keras_vae.layers.Sampling` and the DAE (distinct on every replica of a ``tf.distribute``
strategy); and for `keras_vae.export`, ``serving_input_checks(fn, input_signature)`` (run-time
shape checks of a served function), ``checked_labels(labels, num_classes, fn)``
(refuse labels out of range: an assert on TensorFlow, NaN rows where compiled code
cannot raise), ``EXPORT_TRACKS_LAYERS`` and ``export_saved_model(model, filepath, write,
verbose, **kwargs)`` (``write`` in this process on TensorFlow and JAX; from PyTorch in a fresh
TensorFlow process).
The model above it states its loss in ``compute_loss_terms``; the mixin turns
that into a gradient step the way the backend's own Keras trainer does (loss
scaling for mixed precision and for ``tf.distribute``, metric bookkeeping,
stateless variables on JAX).
"""

import keras

from keras_vae.backends import _shared

_BACKEND = keras.backend.backend()

if _BACKEND == "tensorflow":
    from keras_vae.backends import tensorflow as _impl
elif _BACKEND == "jax":
    from keras_vae.backends import jax as _impl
elif _BACKEND == "torch":
    from keras_vae.backends import torch as _impl
else:
    raise ImportError(
        f"keras_vae models support the tensorflow, jax and torch Keras backends; "
        f"KERAS_BACKEND is {_BACKEND!r}."
    )

AUTO_STEPS_PER_EXECUTION = _impl.AUTO_STEPS_PER_EXECUTION
auto_steps_per_execution = _impl.auto_steps_per_execution
EXPORT_TRACKS_LAYERS = _impl.EXPORT_TRACKS_LAYERS
# SavedModel export runs in this process unless the backend module says how else (torch).
export_saved_model = _impl.export_saved_model
TrainStep = _impl.TrainStep
TrainingPhase = _shared.TrainingPhase
build_phase_optimizers = _shared.build_phase_optimizers
checked_labels = _impl.checked_labels
native_conv_transpose_is_slow = _impl.native_conv_transpose_is_slow
datasets_must_keep_their_batch_size = _impl.datasets_must_keep_their_batch_size
inference_function = _impl.inference_function
bernoulli_log_prob_sum = _impl.bernoulli_log_prob_sum
inference_rows = _impl.inference_rows
no_grad = _impl.no_grad
random_normal = _impl.random_normal
random_uniform = _impl.random_uniform
serving_input_checks = _impl.serving_input_checks

__all__ = [
    "AUTO_STEPS_PER_EXECUTION",
    "EXPORT_TRACKS_LAYERS",
    "TrainStep",
    "TrainingPhase",
    "build_phase_optimizers",
    "auto_steps_per_execution",
    "bernoulli_log_prob_sum",
    "checked_labels",
    "datasets_must_keep_their_batch_size",
    "export_saved_model",
    "inference_function",
    "inference_rows",
    "native_conv_transpose_is_slow",
    "no_grad",
    "random_normal",
    "random_uniform",
    "serving_input_checks",
]
