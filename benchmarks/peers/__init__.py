"""Peer VAE implementations, re-implemented from their published architecture and settings.

- `keras_example`: the official Keras VAE example (keras.io/examples/generative/vae),
  a `keras.Model` with a custom TensorFlow `train_step`; TensorFlow backend only.
- `pytorch_example`: PyTorch's `examples/vae/main.py`, plain PyTorch.
- `keras_add_loss`: the backend-agnostic Keras 3 way: a functional model with a sampling
  layer and an `add_loss` KL layer, compiled with a summed binary cross-entropy and trained by
  Keras' default `train_step`.
"""
