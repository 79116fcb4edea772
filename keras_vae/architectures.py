"""Ready-made encoder/decoder pairs for the common cases.

Each builder returns ``(encoder, decoder)`` functional models ready for the
keras_vae models, e.g. ``VAE(*architectures.conv((28, 28, 1), latent_dim=16))``.
With ``variational=True`` (default) the encoder returns
``[z_mean, z_log_var]`` (VAE/CVAE); with ``False`` it returns a code (AE/DAE).
Decoders end without an activation by default: logits for the Bernoulli
likelihood (the models apply the sigmoid) or the mean for ``"mse"``; pass
``output_activation="sigmoid"`` with ``from_logits=False`` if you prefer.
With ``num_classes`` the encoder takes ``[x, one_hot]`` and the decoder
``[z, one_hot]`` (a CVAE with ``condition_encoder=condition_decoder=True``).
"""

from __future__ import annotations

import math

import keras
from keras import layers

from keras_vae.layers import MaxPoolingWithArgmax2D, MaxUnpooling2D, SubPixelConv2DTranspose


def _validate(input_shape, latent_dim):
    input_shape = tuple(input_shape)
    if not input_shape or any(not isinstance(d, int) or d < 1 for d in input_shape):
        raise ValueError(f"`input_shape` must be a tuple of positive ints, received {input_shape}")
    if isinstance(latent_dim, bool) or not isinstance(latent_dim, int) or latent_dim < 1:
        raise ValueError(f"`latent_dim` must be a positive integer, received {latent_dim!r}")
    return input_shape


def _latent_heads(hidden, latent_dim, variational):
    if variational:
        z_mean = layers.Dense(latent_dim, name="z_mean")(hidden)
        z_log_var = layers.Dense(latent_dim, name="z_log_var")(hidden)
        return [z_mean, z_log_var]
    return layers.Dense(latent_dim, name="code")(hidden)


def _conditioned(tensor, label_input):
    if label_input is None:
        return tensor
    return layers.Concatenate(name=f"{tensor.name.split('/')[0]}_with_label")([tensor, label_input])


def _label_input(num_classes, name):
    if num_classes is None:
        return None
    return keras.Input((num_classes,), name=name)


def _inputs(primary, label_input):
    return primary if label_input is None else [primary, label_input]


def mlp(
    input_shape,
    latent_dim: int = 20,
    hidden_units=(400,),
    activation: str = "relu",
    variational: bool = True,
    output_activation: str | None = None,
    num_classes: int | None = None,
    name: str = "mlp",
):
    """Fully connected encoder and mirrored decoder (PyTorch's examples/vae: 784-400-20).

    Args:
        input_shape: shape of one example, e.g. ``(28, 28, 1)`` or ``(784,)``.
        latent_dim: size of the latent space.
        hidden_units: widths of the hidden layers, encoder order.
        activation: hidden activation.
        variational: encoder returns ``[z_mean, z_log_var]`` if True, a code if False.
        output_activation: decoder output activation (None: logits / linear).
        num_classes: condition encoder and decoder on a one-hot label.
        name: prefix of the two models' names.

    Example:

    >>> encoder, decoder = mlp((28, 28, 1), latent_dim=20)
    >>> [tuple(t.shape) for t in encoder.outputs]
    [(None, 20), (None, 20)]
    """
    input_shape = _validate(input_shape, latent_dim)
    x_in = keras.Input(input_shape, name="x")
    y_in = _label_input(num_classes, "label")
    hidden = layers.Flatten(name="flatten")(x_in) if len(input_shape) > 1 else x_in
    hidden = _conditioned(hidden, y_in)
    for i, units in enumerate(hidden_units):
        hidden = layers.Dense(units, activation=activation, name=f"encoder_dense_{i}")(hidden)
    encoder = keras.Model(
        _inputs(x_in, y_in), _latent_heads(hidden, latent_dim, variational), name=f"{name}_encoder"
    )

    z_in = keras.Input((latent_dim,), name="z")
    y_dec = _label_input(num_classes, "label")
    hidden = _conditioned(z_in, y_dec)
    for i, units in enumerate(reversed(hidden_units)):
        hidden = layers.Dense(units, activation=activation, name=f"decoder_dense_{i}")(hidden)
    outputs = layers.Dense(math.prod(input_shape), activation=output_activation, name="outputs")(
        hidden
    )
    if len(input_shape) > 1:
        outputs = layers.Reshape(input_shape, name="reshape")(outputs)
    decoder = keras.Model(_inputs(z_in, y_dec), outputs, name=f"{name}_decoder")
    return encoder, decoder


def _check_image(input_shape, levels):
    if len(input_shape) != 3:
        raise ValueError(f"`input_shape` must be (height, width, channels), received {input_shape}")
    factor = 2**levels
    if input_shape[0] % factor or input_shape[1] % factor:
        raise ValueError(
            f"height and width must be divisible by {factor} for {levels} stride-2 levels; "
            f"received {input_shape[:2]}"
        )


def conv(
    input_shape=(28, 28, 1),
    latent_dim: int = 16,
    filters=(32, 64),
    kernel_size: int = 3,
    hidden_units: int | None = 16,
    variational: bool = True,
    output_activation: str | None = None,
    num_classes: int | None = None,
    name: str = "conv",
    deconv_implementation: str = "auto",
):
    """Strided-convolution encoder and transposed-convolution decoder.

    With the defaults this is the official Keras VAE example's architecture:
    Conv2D(32, 3, stride 2) -> Conv2D(64, 3, stride 2) -> Dense(16) -> latent,
    and Dense(7*7*64) -> Conv2DTranspose(64) -> Conv2DTranspose(32) -> Conv2DTranspose(C).

    Args:
        input_shape: ``(height, width, channels)``, each side divisible by
            ``2 ** len(filters)``.
        latent_dim: size of the latent space.
        filters: channels per stride-2 level, encoder order.
        kernel_size: convolution kernel size.
        hidden_units: width of the dense layer before the latent heads (None: none).
        variational, output_activation, num_classes, name: as in `mlp`.
        deconv_implementation: how the strided transposed convolutions compute:
            ``"auto"`` (default), ``"subpixel"`` or ``"native"``; see
            `keras_vae.layers.SubPixelConv2DTranspose`. Every choice has the same
            variables and outputs; ``"auto"`` is about 4x faster to train with JAX
            on CPU and leaves the other backends on their native op.

    Example:

    >>> encoder, decoder = conv((28, 28, 1), latent_dim=16)
    >>> tuple(decoder.output.shape)
    (None, 28, 28, 1)
    """
    input_shape = _validate(input_shape, latent_dim)
    _check_image(input_shape, len(filters))
    x_in = keras.Input(input_shape, name="x")
    y_in = _label_input(num_classes, "label")
    hidden = x_in
    for i, width in enumerate(filters):
        hidden = layers.Conv2D(
            width, kernel_size, strides=2, padding="same", activation="relu", name=f"conv_{i}"
        )(hidden)
    hidden = _conditioned(layers.Flatten(name="flatten")(hidden), y_in)
    if hidden_units:
        hidden = layers.Dense(hidden_units, activation="relu", name="encoder_dense")(hidden)
    encoder = keras.Model(
        _inputs(x_in, y_in), _latent_heads(hidden, latent_dim, variational), name=f"{name}_encoder"
    )

    factor = 2 ** len(filters)
    grid = (input_shape[0] // factor, input_shape[1] // factor, filters[-1])
    z_in = keras.Input((latent_dim,), name="z")
    y_dec = _label_input(num_classes, "label")
    hidden = layers.Dense(math.prod(grid), activation="relu", name="decoder_dense")(
        _conditioned(z_in, y_dec)
    )
    hidden = layers.Reshape(grid, name="reshape")(hidden)
    for i, width in enumerate(reversed(filters)):
        hidden = SubPixelConv2DTranspose(
            width,
            kernel_size,
            strides=2,
            padding="same",
            activation="relu",
            implementation=deconv_implementation,
            name=f"deconv_{i}",
        )(hidden)
    outputs = layers.Conv2DTranspose(
        input_shape[-1], kernel_size, padding="same", activation=output_activation, name="outputs"
    )(hidden)
    decoder = keras.Model(_inputs(z_in, y_dec), outputs, name=f"{name}_decoder")
    return encoder, decoder


def segnet(
    input_shape=(28, 28, 1),
    latent_dim: int = 16,
    filters=(32, 64),
    kernel_size: int = 3,
    variational: bool = False,
    output_activation: str | None = None,
    name: str = "segnet",
):
    """SegNet-style pair: max-pooling with argmax in the encoder, unpooling in the decoder.

    The encoder returns ``[code, argmax_1, ..., argmax_n]`` (or
    ``[z_mean, z_log_var, argmax...]``) and the decoder takes
    ``[z, argmax_1, ..., argmax_n]``: each `MaxUnpooling2D` puts values back
    where the matching pooling layer found its maxima (Badrinarayanan et al.
    2017). The models pass the extras from encoder to decoder themselves, so
    ``AE(*segnet(...))`` trains and reconstructs; since the decoder needs the
    encoder's indices, ``decode``/``generate`` from a bare latent are not
    available.

    Example:

    >>> encoder, decoder = segnet((28, 28, 1), latent_dim=16)
    >>> len(encoder.outputs)
    3
    """
    input_shape = _validate(input_shape, latent_dim)
    _check_image(input_shape, len(filters))
    x_in = keras.Input(input_shape, name="x")
    hidden = x_in
    argmaxes, pooled_shapes = [], []
    for i, width in enumerate(filters):
        hidden = layers.Conv2D(
            width, kernel_size, padding="same", activation="relu", name=f"conv_{i}"
        )(hidden)
        pooled_shapes.append(tuple(hidden.shape[1:]))
        hidden, argmax = MaxPoolingWithArgmax2D(name=f"pool_{i}")(hidden)
        argmaxes.append(argmax)
    grid = tuple(hidden.shape[1:])
    flat = layers.Flatten(name="flatten")(hidden)
    encoder = keras.Model(
        x_in,
        [*_as_outputs(_latent_heads(flat, latent_dim, variational)), *argmaxes],
        name=f"{name}_encoder",
    )

    z_in = keras.Input((latent_dim,), name="z")
    index_inputs = [
        keras.Input(tuple(a.shape[1:]), dtype="int32", name=f"argmax_{i}")
        for i, a in enumerate(argmaxes)
    ]
    hidden = layers.Dense(math.prod(grid), activation="relu", name="decoder_dense")(z_in)
    hidden = layers.Reshape(grid, name="reshape")(hidden)
    for level in reversed(range(len(filters))):
        height, width, _ = pooled_shapes[level]
        hidden = MaxUnpooling2D(output_size=(height, width), name=f"unpool_{level}")(
            [hidden, index_inputs[level]]
        )
        out_channels = filters[level - 1] if level > 0 else filters[0]
        hidden = layers.Conv2D(
            out_channels, kernel_size, padding="same", activation="relu", name=f"deconv_{level}"
        )(hidden)
    outputs = layers.Conv2D(
        input_shape[-1], kernel_size, padding="same", activation=output_activation, name="outputs"
    )(hidden)
    decoder = keras.Model([z_in, *index_inputs], outputs, name=f"{name}_decoder")
    return encoder, decoder


def _as_outputs(heads):
    return heads if isinstance(heads, list) else [heads]
