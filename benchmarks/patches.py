"""Monkeypatches of keras_vae that the benchmark can try (``worker --patch NAME``).

Each patch is a proposal for keras_vae measured before it is made: the benchmark rows that use
one are labelled ``patch:NAME``. They touch only the process they run in.

- ``subpixel_deconv``: `keras_vae.architectures.conv` builds its decoder with
  `SubPixelConv2DTranspose`, a `keras.layers.Conv2DTranspose` with the same kernel, config and
  outputs that computes the stride-2, 3x3, ``"same"`` case as a stride-1 2x2 convolution to four
  times the channels followed by a depth-to-space shuffle. XLA on CPU runs the kernel gradient of
  a real transposed convolution on a naive path (3.6 s for one 14->28, 64->32 layer on a batch
  of 128 on 2 cores): the rewrite turns it into ordinary convolutions.
"""

from __future__ import annotations

import types

import keras
import numpy as np
from keras import ops

# Kernel tap feeding each (output phase, input offset) of a stride-2, size-3, "same" transposed
# convolution: out[2j] = x[j] w[0] + x[j-1] w[2], out[2j+1] = x[j] w[1]. Rows: phase 0, 1;
# columns: input offset j-1, j; tap 3 is a zero tap appended to the kernel.
_PHASE_TAPS = np.array([[2, 0], [3, 1]], dtype="int32")


class SubPixelConv2DTranspose(keras.layers.Conv2DTranspose):
    """`Conv2DTranspose` computed as a sub-pixel convolution where that is exact.

    For ``kernel_size=3, strides=2, padding="same"`` (channels last, no dilation or output
    padding) the output is ``depth_to_space(conv2d(pad(x), K'))`` where ``K'`` is a 2x2 kernel
    to ``4 * filters`` channels gathered from the layer's own 3x3 kernel: same variables, same
    config keys, same numbers up to float rounding (checked to 2e-6 on every backend). Any other
    configuration runs the parent's ``call``.
    """

    def _subpixel_applies(self):
        return (
            tuple(self.kernel_size) == (3, 3)
            and tuple(self.strides) == (2, 2)
            and self.padding == "same"
            and self.data_format == "channels_last"
            and tuple(self.dilation_rate) == (1, 1)
            and self.output_padding is None
        )

    def call(self, inputs):
        if not self._subpixel_applies():
            return super().call(inputs)
        kernel = self.kernel  # (3, 3, filters, in_channels)
        filters, channels = self.filters, kernel.shape[-1]
        kernel = ops.pad(kernel, [[0, 1], [0, 1], [0, 0], [0, 0]])  # a zero tap at index 3
        taps = _PHASE_TAPS.reshape(-1)
        kernel = ops.take(kernel, taps, axis=0)  # (phase_y * offset_y, 4, F, C)
        kernel = ops.take(kernel, taps, axis=1)  # (py * oy, px * ox, F, C)
        kernel = ops.reshape(kernel, (2, 2, 2, 2, filters, channels))  # py, oy, px, ox, F, C
        kernel = ops.transpose(kernel, (1, 3, 5, 0, 2, 4))  # oy, ox, C, py, px, F
        kernel = ops.reshape(kernel, (2, 2, channels, 4 * filters))
        padded = ops.pad(inputs, [[0, 0], [1, 0], [1, 0], [0, 0]])
        phases = ops.conv(padded, kernel, strides=1, padding="valid")  # (B, H, W, 4F)
        batch, height, width = ops.shape(inputs)[0], inputs.shape[1], inputs.shape[2]
        outputs = ops.reshape(phases, (batch, height, width, 2, 2, filters))
        outputs = ops.transpose(outputs, (0, 1, 3, 2, 4, 5))
        outputs = ops.reshape(outputs, (batch, 2 * height, 2 * width, filters))
        if self.use_bias:
            outputs = ops.add(outputs, ops.reshape(self.bias, (1, 1, 1, filters)))
        if self.activation is not None:
            return self.activation(outputs)
        return outputs


def _subpixel_deconv():
    from keras_vae import architectures

    layers = types.SimpleNamespace(**vars(keras.layers))
    layers.Conv2DTranspose = SubPixelConv2DTranspose
    architectures.layers = layers


def _fused_bce():
    from keras_vae import losses

    original = losses.bernoulli_nll

    def bernoulli_nll(x, outputs, from_logits=True):
        if not from_logits:
            return original(x, outputs, from_logits=False)
        x = ops.cast(x, "float32")
        outputs = ops.cast(outputs, "float32")
        per_element = ops.binary_crossentropy(x, outputs, from_logits=True)
        return losses._sum_per_example(per_element)

    losses.bernoulli_nll = bernoulli_nll  # looked up at call time by get_reconstruction_loss


PATCHES = {"subpixel_deconv": _subpixel_deconv, "fused_bce": _fused_bce}


def apply(names):
    for name in names:
        if name not in PATCHES:
            raise ValueError(f"Unknown patch {name!r}; known: {sorted(PATCHES)}")
        PATCHES[name]()
