"""fit-compatible autoencoder models whose train_step works on every Keras backend."""

from keras_vae.models.ae import AE
from keras_vae.models.base import BaseAutoencoder
from keras_vae.models.cvae import CVAE
from keras_vae.models.dae import DAE
from keras_vae.models.vae import VAE

__all__ = ["AE", "BaseAutoencoder", "CVAE", "DAE", "VAE"]
