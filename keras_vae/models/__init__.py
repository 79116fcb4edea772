"""fit-compatible autoencoder models whose train_step works on every Keras backend.

``MODELS`` is the registry: a model appears in ``keras-vae train --model`` and in the shared
model tests by its line here.
"""

from keras_vae.models.adversarial import AdversarialAE
from keras_vae.models.ae import AE
from keras_vae.models.base import BaseAutoencoder
from keras_vae.models.contractive import ContractiveAE
from keras_vae.models.cvae import CVAE
from keras_vae.models.dae import DAE
from keras_vae.models.iwae import IWAE
from keras_vae.models.vae import VAE

MODELS = {
    "ae": AE,
    "dae": DAE,
    "vae": VAE,
    "cvae": CVAE,
    "aae": AdversarialAE,
    "iwae": IWAE,
    "cae": ContractiveAE,
}

__all__ = [
    "AE",
    "AdversarialAE",
    "BaseAutoencoder",
    "CVAE",
    "ContractiveAE",
    "DAE",
    "IWAE",
    "MODELS",
    "VAE",
]
