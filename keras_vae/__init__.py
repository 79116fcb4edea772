"""keras_vae: reusable Keras 3 components for autoencoders.

Layers (`Sampling`, `KLDivergenceRegularizer`, `ClassMeanPrior`,
`MaxPoolingWithArgmax2D`, `MaxUnpooling2D`, `SubPixelConv2DTranspose`) drop
into any Keras model; the models (`AE`, `DAE`, `VAE`, `CVAE`) train with
``fit`` on the TensorFlow, JAX and PyTorch backends.
"""

from keras_vae import architectures, layers, losses, models
from keras_vae.layers import (
    ClassMeanPrior,
    KLDivergenceRegularizer,
    MaxPoolingWithArgmax2D,
    MaxUnpooling2D,
    Sampling,
    SubPixelConv2DTranspose,
)
from keras_vae.models import AE, CVAE, DAE, VAE
from keras_vae.models._inputs import InvalidInputError

__version__ = "0.1.0"

__all__ = [
    "AE",
    "CVAE",
    "ClassMeanPrior",
    "DAE",
    "InvalidInputError",
    "KLDivergenceRegularizer",
    "MaxPoolingWithArgmax2D",
    "MaxUnpooling2D",
    "Sampling",
    "SubPixelConv2DTranspose",
    "VAE",
    "architectures",
    "layers",
    "losses",
    "models",
]
