"""The settings of `train`: defaults, checks that name each `keras-vae train` flag, the splits,
and the settings an unfinished run was started with that differ from this command's."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from keras_vae.runs.errors import SettingsError
from keras_vae.runs.models import _model_class, accepts, fits_arch, model_names

ARCHS = ("mlp", "conv", "segnet")
BINARIZE = ("none", "static", "dynamic")
JIT = ("auto", "on", "off")
DEFAULT_DATASET = "fashion_mnist"
# Sizes used when hidden_units / filters are not given. conv: a 256-unit dense layer rather
# than the Keras example's 16, which would squeeze the code before the latent heads.
DEFAULT_HIDDEN_UNITS = {"mlp": (512, 256), "conv": (256,), "segnet": ()}
DEFAULT_FILTERS = (32, 64)
DEFAULT_BETA = 1.0
DEFAULT_NOISE_STDDEV = 0.3

# Settings a resumed run may change: where the data are read from, and the versions (the run
# keeps the config.json it started with). Every other one must match the interrupted run's.
_NOT_COMPARED = frozenset(
    {"data_dir", "idx_dir", "no_download", "keras_version", "keras_vae_version"}
)
# What a setting added since a run was written meant before it existed.
_ABSENT_SETTINGS = {"model_options": {}}
_DERIVED_SETTINGS = {
    "splits": "the splits (from --limit, --val-size and the dataset's size)",
    "image_shape": "the dataset's image shape",
    "num_classes": "the dataset's number of classes",
}
# Options of train that go to the model's __init__ where it takes them, and the parameter
# that says it does (the KL warm-up anneals beta).
_MODEL_OPTIONS = {"beta": "beta", "kl_warmup": "beta", "noise_stddev": "noise_stddev"}


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise SettingsError(message)


def _is_int(value: Any, minimum: int) -> bool:
    integral = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    return integral and value >= minimum


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _check_train_settings(name: str, arch: str, given: dict[str, Any]) -> None:
    model_class = _model_class(name)
    _check(arch in ARCHS, f"unknown --arch {arch!r}; choose one of {', '.join(ARCHS)}")
    _check(given["binarize"] in BINARIZE, f"--binarize must be one of {', '.join(BINARIZE)}")
    _check(given["jit"] in JIT, f"--jit must be one of {', '.join(JIT)}")
    for key in ("latent_dim", "epochs", "batch_size", "val_size"):
        _check(_is_int(given[key], 1), f"{_flag(key)} must be a positive integer")
    _check(given["limit"] is None or _is_int(given["limit"], 1), "--limit must be >= 1")
    for key in ("kl_warmup", "sample_every"):
        _check(_is_int(given[key], 0), f"{_flag(key)} must be an integer >= 0")
    spe = given["steps_per_execution"]
    _check(spe == "auto" or _is_int(spe, 1), "--steps-per-execution: 'auto' or an integer >= 1")
    for key in ("beta", "noise_stddev"):
        value = given[key]
        _check(value is None or 0 <= value < math.inf, f"{_flag(key)} must be finite and >= 0")

    if not fits_arch(model_class, arch):
        fitting = " or ".join(model_names(lambda cls: fits_arch(cls, arch)))
        raise SettingsError(
            f"--arch {arch} is for --model {fitting} only (its decoder needs the encoder's "
            f"pooling indices, so a {name} could not generate); use --arch conv or mlp"
        )
    for option, parameter in _MODEL_OPTIONS.items():
        unset = given[option] is None or (option == "kl_warmup" and given[option] == 0)
        if not unset and not accepts(model_class, parameter):
            takers = "/".join(model_names(lambda cls, p=parameter: accepts(cls, p)))
            raise SettingsError(f"{_flag(option)} applies to {takers} only, not --model {name}")
    hidden, filters = given["hidden_units"], given["filters"]
    _check(arch != "mlp" or filters is None, "--filters applies to --arch conv or segnet only")
    _check(arch != "segnet" or not hidden, "--hidden-units does not apply to --arch segnet")
    conv_hidden = arch != "conv" or hidden is None or len(hidden) <= 1
    _check(conv_hidden, "--arch conv takes one --hidden-units value, e.g. 256")
    rate = given["learning_rate"]
    _check(rate > 0, f"--learning-rate must be > 0, got {rate}")


def _splits(num_examples: dict[str, int], limit: int | None, val_size: int) -> dict[str, str]:
    """Train/validation/test split strings: validation is the end of the train split."""
    total = num_examples.get("train")
    if total is not None:
        _check(
            val_size < total,
            f"--val-size {val_size} leaves no training examples (the train split has {total})",
        )
        n_train = total - val_size
        n_val = val_size if limit is None else min(val_size, limit)
        n_train = n_train if limit is None else min(n_train, limit)
        train_split, val = f"train[:{n_train}]", f"train[{total - n_val}:]"
    else:  # sizes unknown (TFDS not prepared yet): count from the end
        n_val = val_size if limit is None else min(val_size, limit)
        train_split = f"train[:-{val_size}]" if limit is None else f"train[:{limit}]"
        val = f"train[-{n_val}:]"
    test_name = "test" if "test" in num_examples or not num_examples else "validation"
    test = test_name if limit is None else f"{test_name}[:{limit}]"
    return {"train": train_split, "validation": val, "test": test}


def _shown(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(item) for item in value)
    if isinstance(value, dict):
        return " ".join(f"{key}={json.dumps(item)}" for key, item in value.items()) or "none"
    return "unset" if value is None else str(value)


def _differing_settings(saved: dict[str, Any], settings: dict[str, Any]) -> list[str]:
    """``--flag SAVED (this command: NEW)`` for each setting of ``settings`` that differs."""
    differing = []
    for key, value in settings.items():
        if key in _NOT_COMPARED or saved.get(key, _ABSENT_SETTINGS.get(key)) == value:
            continue
        name = _DERIVED_SETTINGS.get(key, _flag(key))
        differing.append(f"{name} {_shown(saved.get(key))} (this command: {_shown(value)})")
    return differing
