"""Drop-in Keras layers for variational, unpooling and convolutional autoencoders."""

from keras_vae.layers.class_mean_prior import ClassMeanPrior
from keras_vae.layers.kl_divergence import KLDivergenceRegularizer
from keras_vae.layers.sampling import Sampling
from keras_vae.layers.subpixel import SubPixelConv2DTranspose
from keras_vae.layers.unpooling import MaxPoolingWithArgmax2D, MaxUnpooling2D

__all__ = [
    "ClassMeanPrior",
    "KLDivergenceRegularizer",
    "MaxPoolingWithArgmax2D",
    "MaxUnpooling2D",
    "Sampling",
    "SubPixelConv2DTranspose",
]
