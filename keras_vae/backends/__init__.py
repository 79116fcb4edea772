"""The only code in keras_vae that knows which Keras backend runs.

Each backend module defines ``TrainStep``, a mixin with ``train_step`` and
``test_step`` for `keras_vae.models.BaseAutoencoder`; ``no_grad()``, the
context for inference outside ``fit``; and ``native_conv_transpose_is_slow()``,
which tells `keras_vae.layers.SubPixelConv2DTranspose` to use its rewrite.
The model above it states its loss in ``compute_loss_terms``; the mixin turns
that into a gradient step the way the backend's own Keras trainer does (loss
scaling for mixed precision and for ``tf.distribute``, metric bookkeeping,
stateless variables on JAX).
"""

import keras

_BACKEND = keras.backend.backend()

if _BACKEND == "tensorflow":
    from keras_vae.backends.tensorflow import TrainStep, native_conv_transpose_is_slow, no_grad
elif _BACKEND == "jax":
    from keras_vae.backends.jax import TrainStep, native_conv_transpose_is_slow, no_grad
elif _BACKEND == "torch":
    from keras_vae.backends.torch import TrainStep, native_conv_transpose_is_slow, no_grad
else:
    raise ImportError(
        f"keras_vae models support the tensorflow, jax and torch Keras backends; "
        f"KERAS_BACKEND is {_BACKEND!r}."
    )

__all__ = ["TrainStep", "native_conv_transpose_is_slow", "no_grad"]
