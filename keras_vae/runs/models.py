"""The model registry as runs see it, the model factory, and calling a model on arrays.

Models are asked what they can do (``conditional``, ``generative``, ``num_latent_outputs``), and
each gets only the options its ``__init__`` takes.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping
from typing import Any

from keras_vae import architectures
from keras_vae.models import MODELS
from keras_vae.runs.errors import SettingsError


def accepts(model_class: type, option: str) -> bool:
    """Whether ``model_class.__init__`` has a parameter named ``option``.

    >>> from keras_vae.models import VAE
    >>> accepts(VAE, "beta"), accepts(VAE, "noise_stddev")
    (True, False)
    """
    parameters = inspect.signature(model_class.__init__).parameters.values()
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return any(p.name == option and p.kind in named for p in parameters)


# Constructor parameters that a flag of `train` or the data set, not --model-option.
_SET_ELSEWHERE = {
    "encoder": "--arch",
    "decoder": "--arch",
    "beta": "--beta",
    "noise_stddev": "--noise-stddev",
    "seed": "--seed",
    "num_classes": "the dataset",
}


def option_names(model_class: type) -> tuple[str, ...]:
    """The ``__init__`` parameters of ``model_class`` that ``--model-option`` may set.

    >>> from keras_vae.models import VAE
    >>> option_names(VAE)
    ('reconstruction_loss', 'from_logits', 'free_bits')
    """
    parameters = inspect.signature(model_class.__init__).parameters.values()
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return tuple(
        p.name
        for p in parameters
        if p.kind in named and p.name != "self" and p.name not in _SET_ELSEWHERE
    )


def _check_model_options(name: str, options: Any) -> dict[str, Any]:
    """``options`` for ``--model name``: each a parameter of its ``__init__``, JSON-able."""
    model_class = _model_class(name)
    if not isinstance(options, Mapping):
        raise SettingsError(f"--model-option: expected NAME=VALUE pairs, got {options!r}")
    for option, value in options.items():
        if option in _SET_ELSEWHERE:
            raise SettingsError(
                f"--model-option {option}: set by {_SET_ELSEWHERE[option]}, not --model-option"
            )
        if not accepts(model_class, option):
            takes = ", ".join(option_names(model_class)) or "none"
            raise SettingsError(
                f"--model-option {option}: --model {name} takes no option {option!r} "
                f"(its options: {takes})"
            )
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            raise SettingsError(
                f"--model-option {option}: the value must be a JSON literal, got {value!r}"
            ) from None
    return dict(sorted(options.items()))


def fits_arch(model_class: type, arch: str) -> bool:
    """Whether architecture ``arch`` can serve ``model_class``: the SegNet decoder needs the
    encoder's pooling indices, so only a plain code without labels or generation fits it."""
    if arch != "segnet":
        return True
    plain = model_class.num_latent_outputs == 1
    return plain and not model_class.conditional and not model_class.generative


def model_names(where: Callable[[type], bool] | None = None) -> tuple[str, ...]:
    """Names in `keras_vae.models.MODELS` whose class satisfies ``where`` (all by default).

    >>> model_names(lambda model_class: model_class.conditional)
    ('cvae',)
    """
    return tuple(name for name, cls in MODELS.items() if where is None or where(cls))


def _model_class(name: str) -> type:
    if name not in MODELS:
        raise SettingsError(f"unknown --model {name!r}; choose one of {', '.join(MODELS)}")
    return MODELS[name]


def _build_model(settings: dict[str, Any], image_shape: tuple[int, ...], num_classes: int | None):
    model_class = _model_class(settings["model"])
    arch, latent_dim = settings["arch"], settings["latent_dim"]
    hidden, filters = settings["hidden_units"], tuple(settings["filters"])
    variational = model_class.num_latent_outputs == 2  # the encoder gives [z_mean, z_log_var]
    labels = num_classes if model_class.conditional else None
    if arch in ("conv", "segnet") and len(image_shape) != 3:
        raise ValueError(f"--arch {arch} needs images (H, W, C); the data have {image_shape}")
    if arch == "mlp":
        encoder, decoder = architectures.mlp(
            image_shape,
            latent_dim=latent_dim,
            hidden_units=tuple(hidden),
            variational=variational,
            num_classes=labels,
        )
    elif arch == "conv":
        encoder, decoder = architectures.conv(
            image_shape,
            latent_dim=latent_dim,
            filters=filters,
            hidden_units=hidden[0] if hidden else None,
            variational=variational,
            num_classes=labels,
        )
    else:
        encoder, decoder = architectures.segnet(
            image_shape, latent_dim=latent_dim, filters=filters, variational=False
        )
    options = {
        # Pixels lie in [0, 1]: the Bernoulli likelihood (decoders output logits) for every model.
        "reconstruction_loss": "bernoulli",
        "seed": settings["seed"],
        "beta": settings["beta"],
        "noise_stddev": settings["noise_stddev"],
        "num_classes": labels,
        # The architectures above feed the label to both encoder and decoder.
        "condition_encoder": True,
        "condition_decoder": True,
    }
    taken = {name: value for name, value in options.items() if accepts(model_class, name)}
    chosen = settings.get("model_options") or {}
    try:
        return model_class(encoder, decoder, **{**taken, **chosen})
    except (ValueError, TypeError) as error:
        if not chosen:
            raise
        names = ", ".join(chosen)
        raise SettingsError(f"--model-option {names}: {' '.join(str(error).split())}") from error


# ------------------------------------------------------------------------- the numpy API


def _fit_args(model, x, labels) -> tuple:
    return (x, labels) if model.conditional else (x,)


def _reconstruct(model, x, labels):
    return model.reconstruct(*_fit_args(model, x, labels))


def _codes(model, x, labels):
    codes = model.encode(*_fit_args(model, x, labels))
    return codes[0] if model.num_latent_outputs == 2 else codes  # z_mean of (z_mean, z_log_var)
