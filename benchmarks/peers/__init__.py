"""Peer VAE implementations, re-implemented from their published architecture and settings.

- `keras_example`: the official Keras VAE example (keras.io/examples/generative/vae),
  a `keras.Model` with a custom TensorFlow `train_step`; TensorFlow backend only.
- `pytorch_example`: PyTorch's `examples/vae/main.py`, plain PyTorch.
- `keras_add_loss`: the backend-agnostic Keras 3 way: a functional model with a sampling
  layer and an `add_loss` KL layer, compiled with a summed binary cross-entropy and trained by
  Keras' default `train_step`.

Each module's ``scorer(model)`` gives ``(encode, decode, from_logits)`` on backend tensors for
`keras_vae.likelihood` (used by ``benchmarks.quality``): where the decoder ends in a sigmoid,
``decode`` returns its pre-sigmoid logits (`logits_decoder`), read from the trained weights
after training, so the peers train exactly as published.
"""


def logits_decoder(decoder):
    """``decoder`` (a functional Keras model ending in a sigmoid layer) without its sigmoid.

    A copy of the last layer with ``activation="linear"`` and the trained weights, applied to
    the same input tensor: the pre-sigmoid logits of the same network. Call it after training
    (the weights are copied, not shared).
    """
    import keras

    last = decoder.layers[-1]
    if getattr(getattr(last, "activation", None), "__name__", None) != "sigmoid":
        raise ValueError(f"The decoder's last layer {last.name!r} does not end in a sigmoid.")
    head = type(last).from_config(
        {**last.get_config(), "activation": "linear", "name": f"{last.name}_logits"}
    )
    outputs = head(last.input)
    head.set_weights(last.get_weights())
    inputs = decoder.inputs[0] if len(decoder.inputs) == 1 else decoder.inputs
    return keras.Model(inputs, outputs, name=f"{decoder.name}_logits")
