"""Monkeypatches of keras_vae that the benchmark can apply (``worker --patch NAME``).

A patch changes keras_vae in the process it runs in only; rows that use one are labelled
``patch:NAME``. They measure alternatives to keras_vae's defaults in the same run.

- ``native_deconv``: `keras_vae.architectures.conv` builds its decoder with
  ``deconv_implementation="native"``: the backend's own transposed convolutions, as the Keras
  peers use, instead of ``"auto"`` (the sub-pixel rewrite of
  `keras_vae.layers.SubPixelConv2DTranspose` where the native op is slow: JAX on CPU).
"""

from __future__ import annotations

import functools


def _native_deconv():
    from keras_vae import architectures

    architectures.conv = functools.partial(architectures.conv, deconv_implementation="native")


PATCHES = {"native_deconv": _native_deconv}


def apply(names):
    for name in names:
        if name not in PATCHES:
            raise ValueError(f"Unknown patch {name!r}; known: {sorted(PATCHES)}")
        PATCHES[name]()
