"""SegNet-style max-pooling with argmax, and the unpooling that inverts it."""

from __future__ import annotations

import keras
from keras import ops

from keras_vae._config_checks import MAX_SPATIAL_SIZE, MAX_WINDOW, check_elements, check_int_pair


def _normalize_padding(padding):
    padding = str(padding).lower()
    if padding not in ("valid", "same"):
        raise ValueError(f"`padding` must be 'valid' or 'same', received padding={padding!r}")
    return padding


def _pooled_size(size, pool, stride, padding):
    if size is None:
        return None
    if padding == "same":
        return -(-size // stride)
    return (size - pool) // stride + 1


def _leading_padding(size, pool, stride, padding):
    """Rows (or columns) TensorFlow pads before the input, as in ``tf.nn.max_pool``."""
    if padding == "valid":
        return 0, 0
    out = -(-size // stride)
    total = max((out - 1) * stride + pool - size, 0)
    return total // 2, total - total // 2


def _check_channels_last(layer_name, shape):
    if len(shape) != 4:
        raise ValueError(
            f"Layer '{layer_name}' expects a 4-D (batch, height, width, channels) input; "
            f"received shape {tuple(shape)}."
        )


class _Pooling2DBase(keras.layers.Layer):
    def __init__(self, pool_size=2, strides=None, padding="valid", **kwargs):
        pool_size = check_int_pair("pool_size", pool_size, 1, MAX_WINDOW)
        strides = (
            pool_size if strides is None else check_int_pair("strides", strides, 1, MAX_WINDOW)
        )
        padding = _normalize_padding(padding)
        super().__init__(**kwargs)
        self.pool_size = pool_size
        self.strides = strides
        self.padding = padding

    def get_config(self):
        return {
            **super().get_config(),
            "pool_size": self.pool_size,
            "strides": self.strides,
            "padding": self.padding,
        }


@keras.saving.register_keras_serializable(package="keras_vae")
class MaxPoolingWithArgmax2D(_Pooling2DBase):
    """2-D max pooling that also returns where each maximum came from.

    Returns ``(pooled, argmax)``. ``argmax`` follows
    ``tf.nn.max_pool_with_argmax(..., include_batch_in_index=False)``: the
    flattened index ``(y * W + x) * C + c`` of the maximum within one example,
    where ``W`` and ``C`` are the input's width and channels; ties go to the
    first position in row-major order. Indices are ``int32`` on every
    backend. Channels-last inputs only.

    Args:
        pool_size: int or pair of ints in ``[1, 256]``, the pooling window.
        strides: int or pair of ints in ``[1, 256]``, defaults to ``pool_size``.
        padding: ``"valid"`` or ``"same"`` (TensorFlow's padding rule).

    Example:

    >>> import numpy as np
    >>> pooled, argmax = MaxPoolingWithArgmax2D()(np.random.rand(2, 4, 4, 3))
    >>> tuple(pooled.shape), tuple(argmax.shape)
    ((2, 2, 2, 3), (2, 2, 2, 3))
    """

    def build(self, input_shape):
        _check_channels_last(self.name, input_shape)
        self.built = True

    def call(self, inputs):
        _check_channels_last(self.name, inputs.shape)
        height, width, channels = inputs.shape[1], inputs.shape[2], inputs.shape[3]
        (pool_h, pool_w), (stride_h, stride_w) = self.pool_size, self.strides
        top, bottom = _leading_padding(height, pool_h, stride_h, self.padding)
        left, right = _leading_padding(width, pool_w, stride_w, self.padding)
        out_h = _pooled_size(height, pool_h, stride_h, self.padding)
        out_w = _pooled_size(width, pool_w, stride_w, self.padding)
        padded = inputs
        if top or bottom or left or right:
            lowest = ops.cast(float("-inf"), inputs.dtype)
            padded = ops.pad(
                inputs, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=lowest
            )
        # One strided view per window offset: (batch, out_h, out_w, channels, window).
        windows = [
            padded[
                :,
                dy : dy + (out_h - 1) * stride_h + 1 : stride_h,
                dx : dx + (out_w - 1) * stride_w + 1 : stride_w,
                :,
            ]
            for dy in range(pool_h)
            for dx in range(pool_w)
        ]
        stacked = ops.stack(windows, axis=-1)
        pooled = ops.max(stacked, axis=-1)
        offset = ops.cast(ops.argmax(stacked, axis=-1), "int32")
        rows = ops.reshape(ops.arange(out_h, dtype="int32") * stride_h - top, (1, -1, 1, 1))
        cols = ops.reshape(ops.arange(out_w, dtype="int32") * stride_w - left, (1, 1, -1, 1))
        y = rows + offset // pool_w
        x = cols + offset % pool_w
        c = ops.reshape(ops.arange(channels, dtype="int32"), (1, 1, 1, -1))
        argmax = (y * width + x) * channels + c
        return pooled, argmax

    def compute_output_shape(self, input_shape):
        _check_channels_last(self.name, input_shape)
        batch, height, width, channels = input_shape
        shape = (
            batch,
            _pooled_size(height, self.pool_size[0], self.strides[0], self.padding),
            _pooled_size(width, self.pool_size[1], self.strides[1], self.padding),
            channels,
        )
        return shape, shape

    def compute_output_spec(self, inputs):
        shape, _ = self.compute_output_shape(inputs.shape)
        return (
            keras.KerasTensor(shape, dtype=self.compute_dtype),
            keras.KerasTensor(shape, dtype="int32"),
        )


@keras.saving.register_keras_serializable(package="keras_vae")
class MaxUnpooling2D(_Pooling2DBase):
    """Scatters pooled values back to the positions their maxima came from.

    Called on ``[updates, argmax]`` where ``argmax`` comes from
    `MaxPoolingWithArgmax2D` or ``tf.nn.max_pool_with_argmax`` (without the
    batch in the index). Each value lands where its maximum was; every other
    position is zero; values whose indices coincide (overlapping windows) are
    summed, as in TensorFlow's max-pool gradient. Gradients flow to
    ``updates``.

    The output shape is TensorFlow Addons' ``MaxUnpooling2D``'s:
    ``(in - 1) * stride + pool`` for ``"valid"``, ``in * stride`` for
    ``"same"``, unless ``output_size=(height, width)`` is given. When the
    pooled input's height or width differs from the output's (odd sizes),
    pass ``output_size`` or a third input, the tensor that was pooled: the
    indices are then decoded with the original width, so every value returns
    to its exact position (Addons decodes them with the output width and
    misplaces them).

    Args:
        pool_size: int or pair of ints in ``[1, 256]``, the pooling window used
            by the pooling layer.
        strides: int or pair of ints in ``[1, 256]``, defaults to ``pool_size``.
        padding: ``"valid"`` or ``"same"``.
        output_size: optional ``(height, width)`` of the pooling layer's input:
            ints in ``[1, 65_536]`` with ``height * width`` at most ``2**26``.

    Call arguments:
        inputs: ``[updates, argmax]`` or ``[updates, argmax, pooled_input]``.

    Example:

    >>> import numpy as np
    >>> x = np.random.rand(2, 5, 5, 3).astype("float32")
    >>> pooled, argmax = MaxPoolingWithArgmax2D()(x)
    >>> tuple(MaxUnpooling2D()([pooled, argmax, x]).shape)
    (2, 5, 5, 3)
    """

    def __init__(self, pool_size=2, strides=None, padding="valid", output_size=None, **kwargs):
        if output_size is not None:
            output_size = check_int_pair("output_size", output_size, 1, MAX_SPATIAL_SIZE)
            check_elements("output_size[0] * output_size[1]", output_size)
        super().__init__(pool_size=pool_size, strides=strides, padding=padding, **kwargs)
        self.output_size = output_size

    def _output_hw(self, updates_shape, reference_shape=None):
        if reference_shape is not None:
            return reference_shape[1], reference_shape[2]
        if self.output_size is not None:
            return self.output_size
        height, width = updates_shape[1], updates_shape[2]
        if self.padding == "same":
            return (
                None if height is None else height * self.strides[0],
                None if width is None else width * self.strides[1],
            )
        return (
            None if height is None else (height - 1) * self.strides[0] + self.pool_size[0],
            None if width is None else (width - 1) * self.strides[1] + self.pool_size[1],
        )

    def _check_inputs(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) not in (2, 3):
            raise ValueError(
                f"Layer '{self.name}' expects [updates, argmax] or "
                f"[updates, argmax, pooled_input]; received {input_shape}."
            )
        updates_shape, argmax_shape = tuple(input_shape[0]), tuple(input_shape[1])
        _check_channels_last(self.name, updates_shape)
        if updates_shape[1:] != argmax_shape[1:]:
            raise ValueError(
                f"Layer '{self.name}': argmax must have the shape of updates "
                f"{updates_shape}; received {argmax_shape}."
            )
        if len(input_shape) == 3:
            _check_channels_last(self.name, input_shape[2])

    def build(self, input_shape):
        self._check_inputs(input_shape)
        self.built = True

    def call(self, inputs):
        self._check_inputs([tuple(t.shape) for t in inputs])
        updates, argmax = inputs[0], inputs[1]
        reference = tuple(inputs[2].shape) if len(inputs) > 2 else None
        out_h, out_w = self._output_hw(updates.shape, reference)
        channels = updates.shape[3]
        argmax = ops.cast(argmax, "int32")
        # Decode (y, x, c) with the pooled tensor's width: that is where the maximum was.
        source_w = reference[2] if reference is not None else out_w
        c = argmax % channels
        x = (argmax // channels) % source_w
        y = argmax // (channels * source_w)
        per_example = out_h * out_w * channels
        batch = ops.shape(updates)[0]
        batch_offset = ops.reshape(ops.arange(batch, dtype="int32") * per_example, (-1, 1, 1, 1))
        flat_index = ops.reshape(batch_offset + (y * out_w + x) * channels + c, (-1, 1))
        values = ops.reshape(updates, (-1,))
        flat = ops.scatter(flat_index, values, (batch * per_example,))
        return ops.reshape(flat, (-1, out_h, out_w, channels))

    def compute_output_shape(self, input_shape):
        self._check_inputs(input_shape)
        reference = tuple(input_shape[2]) if len(input_shape) > 2 else None
        out_h, out_w = self._output_hw(tuple(input_shape[0]), reference)
        return (input_shape[0][0], out_h, out_w, input_shape[0][3])

    def get_config(self):
        return {**super().get_config(), "output_size": self.output_size}
