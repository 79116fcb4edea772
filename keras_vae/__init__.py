"""keras_vae: reusable Keras 3 components for autoencoders.

Layers (`Sampling`, `KLDivergenceRegularizer`, `ClassMeanPrior`,
`MaxPoolingWithArgmax2D`, `MaxUnpooling2D`, `SubPixelConv2DTranspose`) drop
into any Keras model; the models (`AE`, `DAE`, `VAE`, `CVAE`, `IWAE`, `ContractiveAE`,
`AdversarialAE`) train with ``fit`` on the TensorFlow, JAX and PyTorch backends;
`keras_vae.likelihood` estimates the log-likelihood of any encoder and decoder.

The modules `keras_vae.callbacks`, `keras_vae.cli`, `keras_vae.data`, `keras_vae.evaluation`,
`keras_vae.export`, `keras_vae.plotting` and `keras_vae.runs` are attributes
too, imported on first use, so ``import keras_vae`` loads neither TensorFlow
Datasets nor matplotlib (nor TensorFlow on the JAX and PyTorch backends).

Example:

>>> import keras_vae
>>> keras_vae.data.__name__
'keras_vae.data'
"""

import importlib

from keras_vae import architectures, layers, likelihood, losses, models
from keras_vae.layers import (
    ClassMeanPrior,
    KLDivergenceRegularizer,
    MaxPoolingWithArgmax2D,
    MaxUnpooling2D,
    Sampling,
    SubPixelConv2DTranspose,
)
from keras_vae.models import AE, CVAE, DAE, IWAE, VAE, AdversarialAE, ContractiveAE
from keras_vae.models._inputs import InvalidInputError

__version__ = "0.1.0"

# Loaded by `__getattr__` (PEP 562) on first use: their imports are heavy or optional.
_LAZY_SUBMODULES = ("callbacks", "cli", "data", "evaluation", "export", "plotting", "runs")


def __getattr__(name: str):
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")  # the import sets the attribute
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY_SUBMODULES})


__all__ = [
    "AE",
    "AdversarialAE",
    "CVAE",
    "ClassMeanPrior",
    "ContractiveAE",
    "DAE",
    "IWAE",
    "InvalidInputError",
    "KLDivergenceRegularizer",
    "MaxPoolingWithArgmax2D",
    "MaxUnpooling2D",
    "Sampling",
    "SubPixelConv2DTranspose",
    "VAE",
    "architectures",
    "layers",
    "likelihood",
    "losses",
    "models",
]
