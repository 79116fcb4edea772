"""Train, load and evaluate a run: a folder with a model and everything needed to understand it.

What `keras-vae train` does, a notebook does in three lines:

```python
from keras_vae import runs

run = runs.train("runs/vae", model="vae", arch="mlp", latent_dim=16, epochs=15)
run.metrics["loss"]  # the test negative ELBO in nats per image, as in metrics.json
```

and later, from the folder: ``run = runs.load("runs/vae")`` (``run.model``, ``run.settings``),
``runs.evaluate(run, binarize="dynamic")``, ``runs.generate(run, 64, path="samples.png")``,
``runs.reconstruct(run, 16, path="reconstructions.png")``, ``runs.export(run, "exported/vae")``.

A run folder holds:

- ``config.json``: every setting of `train`, the splits, the backend and the versions;
- ``model.keras``: the trained model (`load` reads it with ``safe_mode=True``);
- ``history.csv`` (one row per epoch, written as training goes) and ``history.json``;
- ``metrics.json``: the test metrics (`evaluate`'s, plus the split and the training time);
- ``backup/`` while the run is unfinished: the state after the last completed epoch, from which
  the same `train` call (or ``resume=True``) goes on after a kill and ends with the weights and
  metrics of an uninterrupted run. It is deleted last, once everything else is written;
- ``saved_model/`` (unless ``export=False``) and PNG pictures (unless ``plots=False``):
  samples, reconstructions, latent scatter, latent manifold (2-D latents), class-conditional
  grid (conditional models), denoising (denoising models), loss curves, and
  ``progress/samples_epoch_NNN.png`` every ``sample_every`` epochs.

Models come from the registry `keras_vae.models.MODELS` and are asked what they can do
(``conditional``, ``generative``, ``denoising``, ``num_latent_outputs``); each gets only the
options its ``__init__`` takes. Errors name each setting by its `keras-vae train` flag
(``--latent-dim`` for ``latent_dim``): settings that cannot work together, or that do not fit
the run folder, raise `SettingsError`.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import os
import shutil
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import keras
import numpy as np

from keras_vae import architectures, callbacks, data, plotting
from keras_vae.models import MODELS, BaseAutoencoder

__all__ = [
    "Reconstructions",
    "Run",
    "RunWarning",
    "SettingsError",
    "accepts",
    "evaluate",
    "export",
    "fits_arch",
    "format_metrics",
    "generate",
    "load",
    "model_names",
    "reconstruct",
    "train",
]

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

CONFIG_FILE = "config.json"
MODEL_FILE = "model.keras"
HISTORY_CSV = "history.csv"
HISTORY_JSON = "history.json"
METRICS_FILE = "metrics.json"
BACKUP_DIR = "backup"  # exists while a run is unfinished: a rerun resumes from it
# What overwrite=True removes before a new run: everything train writes that a new run might
# not write again (pictures and config.json are always rewritten).
_RUN_OUTPUTS = (BACKUP_DIR, "progress", "saved_model", MODEL_FILE, METRICS_FILE)
_RUN_LOGS = (HISTORY_CSV, HISTORY_JSON)
# Settings a resumed run may change: where the data are read from, and the versions (the run
# keeps the config.json it started with). Every other one must match the interrupted run's.
_NOT_COMPARED = frozenset(
    {"data_dir", "idx_dir", "no_download", "keras_version", "keras_vae_version"}
)
_DERIVED_SETTINGS = {
    "splits": "the splits (from --limit, --val-size and the dataset's size)",
    "image_shape": "the dataset's image shape",
    "num_classes": "the dataset's number of classes",
}
# Options of train that go to the model's __init__ where it takes them, and the parameter
# that says it does (the KL warm-up anneals beta).
_MODEL_OPTIONS = {"beta": "beta", "kl_warmup": "beta", "noise_stddev": "noise_stddev"}

Report = Callable[[str], None]


class SettingsError(ValueError):
    """Settings that cannot work together, or a run folder that does not fit them."""


class RunWarning(UserWarning):
    """Something a run skipped (pictures without matplotlib, an export the backend refused)."""


@dataclasses.dataclass
class Run:
    """A trained run: its folder, its model and what its JSON files hold.

    Attributes:
        path: the run folder.
        model_file: the ``.keras`` file.
        model: the trained model.
        settings: the contents of ``config.json`` (empty for a ``.keras`` file without one).
        history: ``history.json``, lists of per-epoch values by name, or `None`.
        metrics: ``metrics.json``, or `None`.
    """

    path: Path
    model_file: Path
    model: BaseAutoencoder
    settings: dict[str, Any]
    history: dict[str, list[float]] | None = None
    metrics: dict[str, Any] | None = None

    @property
    def dataset(self) -> str:
        """The dataset the run trained on (`DEFAULT_DATASET` when config.json does not say)."""
        return self.settings.get("dataset") or DEFAULT_DATASET


class Reconstructions(NamedTuple):
    """What `reconstruct` returns: the test inputs, their reconstructions and, for a denoising
    model, the noisy inputs it reconstructed (else `None`)."""

    inputs: np.ndarray
    reconstructions: np.ndarray
    noisy: np.ndarray | None


# ------------------------------------------------------------------------- the registry


def accepts(model_class: type, option: str) -> bool:
    """Whether ``model_class.__init__`` has a parameter named ``option``.

    >>> from keras_vae.models import VAE
    >>> accepts(VAE, "beta"), accepts(VAE, "noise_stddev")
    (True, False)
    """
    parameters = inspect.signature(model_class.__init__).parameters.values()
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return any(p.name == option and p.kind in named for p in parameters)


def fits_arch(model_class: type, arch: str) -> bool:
    """Whether architecture ``arch`` can serve ``model_class``: the SegNet decoder needs the
    encoder's pooling indices, so only a plain code without labels or generation fits it."""
    if arch != "segnet":
        return True
    plain = model_class.num_latent_outputs == 1
    return plain and not model_class.conditional and not model_class.generative


def model_names(where: Callable[[type], bool] | None = None) -> tuple[str, ...]:
    """Names in `keras_vae.models.MODELS` whose class satisfies ``where`` (all by default).

    >>> model_names(lambda model_class: model_class.generative)
    ('vae', 'cvae')
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
    return model_class(encoder, decoder, **taken)


# ------------------------------------------------------------------------- settings


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
    return "unset" if value is None else str(value)


def _differing_settings(saved: dict[str, Any], settings: dict[str, Any]) -> list[str]:
    """``--flag SAVED (this command: NEW)`` for each setting of ``settings`` that differs."""
    differing = []
    for key, value in settings.items():
        if key in _NOT_COMPARED or saved.get(key) == value:
            continue
        name = _DERIVED_SETTINGS.get(key, _flag(key))
        differing.append(f"{name} {_shown(saved.get(key))} (this command: {_shown(value)})")
    return differing


# ------------------------------------------------------------------------- the run folder


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n")


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


def _prepare_folder(out: Path, settings: dict[str, Any], resume: bool, overwrite: bool) -> bool:
    """Checks ``out`` against ``resume`` and ``overwrite``; returns whether to resume there.

    A run is unfinished while ``backup/`` exists beside its config.json, and completed when
    model.keras exists without a ``backup/``.
    """
    _check(not (resume and overwrite), "--resume and --overwrite exclude each other")
    unfinished = (out / BACKUP_DIR).is_dir() and (out / CONFIG_FILE).is_file()
    if overwrite:
        for name in _RUN_OUTPUTS + _RUN_LOGS:
            path = out / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
        return False
    if unfinished:
        differing = _differing_settings(json.loads((out / CONFIG_FILE).read_text()), settings)
        _check(
            not differing,
            f"{out} holds an unfinished run started with other settings: "
            + "; ".join(differing)
            + ". Resume it with its own settings, or pass --overwrite to start afresh",
        )
        return True
    _check(
        not (out / MODEL_FILE).is_file(),
        f"{out} holds a completed run; pass --overwrite to train it again, or choose another --out",
    )
    _check(
        not resume,
        f"--resume: {out} holds no unfinished run (no {BACKUP_DIR}/ beside a {CONFIG_FILE})",
    )
    return False


def _keep_csv_rows(path: Path, epochs: int) -> None:
    """Keeps the header and the complete rows of the first ``epochs`` epochs of a CSVLogger file.

    A kill between an epoch's row and the backup's commit leaves a row that the resumed run
    writes again.
    """
    if not path.is_file():
        return

    def epoch_of(row: str) -> int:  # a row cut short by a kill counts as a later epoch
        first = row.split(",", 1)[0]
        return int(first) if row.endswith("\n") and first.isdigit() else epochs

    header, *rows = path.read_text().splitlines(keepends=True) or [""]
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(header + "".join(row for row in rows if epoch_of(row) < epochs))
    os.replace(temporary, path)


def _locate(path: str | os.PathLike) -> tuple[Path, Path]:
    """``(model file, config.json path)`` for a run folder or a ``.keras`` file."""
    path = Path(path)
    if path.is_dir():
        if not (path / MODEL_FILE).is_file():
            raise FileNotFoundError(f"run folder {str(path)!r} has no {MODEL_FILE}")
        return path / MODEL_FILE, path / CONFIG_FILE
    if path.is_file():
        _check(
            path.suffix == ".keras", f"expected a run folder or a .keras file, got {str(path)!r}"
        )
        return path, path.parent / CONFIG_FILE
    raise FileNotFoundError(f"no run folder or .keras file at {str(path)!r}")


def load(path: str | os.PathLike) -> Run:
    """Loads a run folder (or a ``.keras`` file, with the config.json beside it if any).

    Args:
        path: a run folder written by `train`, or a ``.keras`` file.

    Returns:
        A `Run`: ``run.model`` is the trained model, ``run.settings`` its config.json.

    Raises:
        FileNotFoundError: nothing at ``path``, or a folder without model.keras.
        SettingsError: a file that is not a ``.keras`` file.
    """
    model_file, config_file = _locate(path)
    folder = model_file.parent
    model = keras.saving.load_model(model_file)  # safe_mode=True: no code from the file runs
    return Run(
        path=folder,
        model_file=model_file,
        model=model,
        settings=_read_json(config_file) or {},
        history=_read_json(folder / HISTORY_JSON),
        metrics=_read_json(folder / METRICS_FILE),
    )


def _as_run(run: Run | str | os.PathLike) -> Run:
    return run if isinstance(run, Run) else load(run)


# ------------------------------------------------------------------------- data


def _binarize_mode(value: str | None) -> str | None:
    return None if value in (None, "none") else value


def _data_kwargs(settings: dict[str, Any]) -> dict[str, Any]:
    return {
        "data_dir": settings.get("data_dir"),
        "idx_dir": settings.get("idx_dir"),
        "download": not settings.get("no_download", False),
    }


def _data_settings(run: Run, **overrides: Any) -> dict[str, Any]:
    """The run's data settings with the given ones (not `None`) in their place."""
    merged = dict(run.settings, dataset=run.dataset)
    download = overrides.pop("download", None)
    merged.update({key: value for key, value in overrides.items() if value is not None})
    if download is not None:
        merged["no_download"] = not download
    return merged


def _load_eval_arrays(settings: dict[str, Any], split: str, seed: int):
    # Dynamic binarisation of held-out data is one fixed draw, so metrics are reproducible.
    return data.load_numpy(
        settings["dataset"],
        split,
        binarize=_binarize_mode(settings.get("binarize")),
        seed=seed,
        **_data_kwargs(settings),
    )


def _check_labels(model, labels, dataset: str) -> None:
    if model.conditional and labels is None:
        raise ValueError(
            f"this {type(model).__name__.lower()} needs labels, and {dataset!r} has none"
        )


# ------------------------------------------------------------------------- the numpy API


def _fit_args(model, x, labels) -> tuple:
    return (x, labels) if model.conditional else (x,)


def _reconstruct(model, x, labels):
    return model.reconstruct(*_fit_args(model, x, labels))


def _codes(model, x, labels):
    codes = model.encode(*_fit_args(model, x, labels))
    return codes[0] if model.num_latent_outputs == 2 else codes  # z_mean of (z_mean, z_log_var)


def _psnr_db(mse: float) -> float:
    return float(10.0 * math.log10(1.0 / max(mse, 1e-12)))


def _metrics(model, x, labels, batch_size: int) -> dict[str, Any]:
    """``model.evaluate`` on the arrays, plus the pixel MSE and PSNR of the reconstructions."""
    results = model.evaluate(
        *_fit_args(model, x, labels), batch_size=batch_size, verbose=0, return_dict=True
    )
    metrics: dict[str, Any] = {name: float(value) for name, value in results.items()}
    mse = float(np.mean(np.square(_reconstruct(model, x, labels) - x)))
    metrics["pixel_mse"] = mse
    metrics["psnr_db"] = _psnr_db(mse)
    if model.denoising:  # how well it removes its own training noise
        denoised = _reconstruct(model, model.corrupt(x, seed=0), labels)
        metrics["denoised_psnr_db"] = _psnr_db(float(np.mean(np.square(denoised - x))))
    metrics["num_examples"] = len(x)
    return metrics


def format_metrics(metrics: dict[str, Any], title: str) -> str:
    """The title, then one aligned ``name  value`` line per metric.

    >>> print(format_metrics({"loss": 251.23456, "num_examples": 512}, "test metrics:"))
    test metrics:
      loss          251.235
      num_examples  512
    """
    width = max(len(name) for name in metrics)
    lines = [title]
    for name, value in metrics.items():
        shown = f"{value:.6g}" if isinstance(value, float) else str(value)
        lines.append(f"  {name:<{width}}  {shown}")
    return "\n".join(lines)


# ------------------------------------------------------------------------- train


def _fit_callbacks(model_class, out: Path, settings, given, data_epoch, backup) -> list:
    fit_callbacks = [data_epoch]
    if settings["kl_warmup"]:  # before the CSVLogger and the backup, so their rows have kl_weight
        # An explicit end: the backup restores a half-annealed weight before fit's first epoch.
        warmup = callbacks.KLWarmup(warmup_epochs=settings["kl_warmup"], end=settings["beta"])
        fit_callbacks.append(warmup)
    if given["sample_every"] and given["plots"] and model_class.generative:
        every, seed = given["sample_every"], settings["seed"]
        fit_callbacks.append(callbacks.SampleGrid(out / "progress", every=every, seed=seed))
    resumed = backup.completed_epochs > 0
    fit_callbacks.append(keras.callbacks.CSVLogger(str(out / HISTORY_CSV), append=resumed))
    fit_callbacks.append(backup)  # last: each epoch's commit comes after the epoch's writes
    return fit_callbacks


def train(
    out: str | os.PathLike,
    *,
    model: str = "vae",
    arch: str = "mlp",
    dataset: str = DEFAULT_DATASET,
    latent_dim: int = 16,
    epochs: int = 20,
    batch_size: int = 128,
    beta: float | None = None,
    kl_warmup: int = 0,
    noise_stddev: float | None = None,
    hidden_units: Sequence[int] | None = None,
    filters: Sequence[int] | None = None,
    learning_rate: float = 1e-3,
    binarize: str = "none",
    data_dir: str | None = None,
    idx_dir: str | None = None,
    download: bool = True,
    seed: int = 0,
    limit: int | None = None,
    val_size: int = 5000,
    jit: str = "auto",
    steps_per_execution: int | str = "auto",
    verbose: int | None = None,
    sample_every: int = 0,
    plots: bool = True,
    export: bool = True,
    resume: bool = False,
    overwrite: bool = False,
    report: Report | None = print,
) -> Run:
    """Trains a model into the run folder ``out``, as `keras-vae train` does.

    The last ``val_size`` training examples are held out for validation; the test split is
    used once, after training, for metrics.json. If ``out`` holds an unfinished run (killed
    during training), the same call resumes it; settings that differ from its config.json are
    refused. Training into a completed run needs ``overwrite=True``.

    Args:
        out: the run folder (created).
        model: a name in `keras_vae.models.MODELS` (``"ae"``, ``"dae"``, ``"vae"``, ``"cvae"``).
        arch: encoder/decoder pair from `keras_vae.architectures`: ``"mlp"``, ``"conv"`` or
            ``"segnet"`` (for models with a plain code and no labels).
        dataset: TFDS image dataset name, or one found as IDX files (see `keras_vae.data`).
        latent_dim: latent size.
        epochs: training epochs.
        batch_size: training batch size.
        beta: KL weight, for models that take one (default 1).
        kl_warmup: anneal the KL weight from 0 to ``beta`` over this many epochs.
        noise_stddev: input noise, for models that take it (default 0.3).
        hidden_units: dense widths (default mlp 512,256; conv 256; segnet none).
        filters: conv/segnet channels per level (default 32,64).
        learning_rate: Adam learning rate.
        binarize: ``"none"``, ``"static"`` (threshold 0.5) or ``"dynamic"`` (a fresh draw per
            epoch; validation/test: one fixed draw).
        data_dir: TFDS data directory.
        idx_dir: a directory of MNIST-format IDX files.
        download: whether TFDS may download the dataset.
        seed: seed of weights, shuffle and noise.
        limit: use only this many training examples (and at most as many validation/test ones).
        val_size: training examples held out for validation (the last ones of the split).
        jit: XLA/JIT compilation of the train step: ``"auto"`` (Keras' choice), ``"on"``,
            ``"off"``.
        steps_per_execution: batches per compiled call, or ``"auto"``.
        verbose: ``fit`` verbosity; `None`: 1 on a terminal, else 2.
        sample_every: generative models: write ``progress/samples_epoch_NNN.png`` every this
            many epochs (0: never).
        plots: write the PNG pictures (needs matplotlib; skipped with a `RunWarning` if absent).
        export: write ``saved_model/`` (skipped with a `RunWarning` where the backend cannot).
        resume: require an unfinished run in ``out`` to resume.
        overwrite: start afresh, discarding a completed or unfinished run in ``out``.
        report: called with each progress line (the CLI prints them); `None`: silent.

    Returns:
        The `Run`, with its history and test metrics.

    Raises:
        SettingsError: settings that cannot work together or do not fit ``out``.
        keras_vae.data.DatasetNotFoundError: the dataset was not found.
    """
    started = time.perf_counter()
    say = report or (lambda message: None)
    given = dict(locals())
    _check_train_settings(model, arch, given)
    model_class = _model_class(model)
    out = Path(out)
    info = data.info(dataset, data_dir=data_dir, idx_dir=idx_dir)
    _check(
        not model_class.conditional or bool(info.num_classes),
        f"--model {model} needs labels, and dataset {dataset!r} has none",
    )
    splits = _splits(info.num_examples, limit, val_size)
    hidden = DEFAULT_HIDDEN_UNITS[arch] if hidden_units is None else hidden_units
    from keras_vae import __version__  # here: keras_vae/__init__ may import this module

    settings = {  # everything a run needs to be understood and re-evaluated
        "model": model,
        "arch": arch,
        "dataset": dataset,
        "latent_dim": latent_dim,
        "epochs": epochs,
        "batch_size": batch_size,
        "beta": DEFAULT_BETA if beta is None else beta,
        "kl_warmup": kl_warmup,
        "noise_stddev": DEFAULT_NOISE_STDDEV if noise_stddev is None else noise_stddev,
        "hidden_units": list(hidden),
        "filters": list(DEFAULT_FILTERS if filters is None else filters),
        "learning_rate": learning_rate,
        "binarize": binarize,
        "data_dir": data_dir,
        "idx_dir": idx_dir,
        "no_download": not download,
        "seed": seed,
        "limit": limit,
        "val_size": val_size,
        "splits": splits,
        "jit": jit,
        "steps_per_execution": steps_per_execution,
        "backend": keras.backend.backend(),
        "image_shape": list(info.image_shape),
        "num_classes": info.num_classes,
        "keras_version": keras.__version__,
        "keras_vae_version": __version__,
    }
    resuming = _prepare_folder(out, settings, resume=resume, overwrite=overwrite)
    keras.utils.set_random_seed(seed)
    # Epoch e's order is drawn from (seed, e), so a resumed run sees the epochs it missed.
    data_epoch = callbacks.DataEpoch()
    train_data = data.load(
        dataset,
        splits["train"],
        batch_size=batch_size,
        binarize=_binarize_mode(binarize),
        with_labels=model_class.conditional,
        seed=seed,
        epoch=data_epoch.variable,
        **_data_kwargs(settings),
    )
    x_val, y_val = _load_eval_arrays(settings, splits["validation"], seed=seed + 1)
    x_test, y_test = _load_eval_arrays(settings, splits["test"], seed=seed + 2)
    say(
        f"{model} ({arch}, latent_dim {latent_dim}) on {dataset}: {splits['train']} for "
        f"training, {len(x_val)} validation and {len(x_test)} test examples; backend "
        f"{settings['backend']}"
    )
    (out / BACKUP_DIR).mkdir(parents=True, exist_ok=True)  # first: it marks the run unfinished
    if not resuming:  # a resumed run keeps the config.json it started with
        _write_json(out / CONFIG_FILE, settings)
    backup = callbacks.BackupAndRestore(out / BACKUP_DIR, delete_checkpoint=False)
    done = backup.completed_epochs
    if done:
        _keep_csv_rows(out / HISTORY_CSV, done)
        say(f"resuming {out} after epoch {done} of {epochs}, from {out / BACKUP_DIR}")

    autoencoder = _build_model(settings, tuple(info.image_shape), info.num_classes)
    autoencoder.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        jit_compile={"auto": "auto", "on": True, "off": False}[jit],
        steps_per_execution=steps_per_execution,
    )
    autoencoder.fit(
        train_data,
        epochs=epochs,
        validation_data=_fit_args(autoencoder, x_val, y_val),
        validation_batch_size=512,
        callbacks=_fit_callbacks(model_class, out, settings, given, data_epoch, backup),
        shuffle=False,  # data.load already shuffles the training split every epoch
        verbose=(1 if sys.stdout.isatty() else 2) if verbose is None else verbose,
    )
    history = backup.history  # every epoch of the run; fit's History has this process's only
    _write_json(out / HISTORY_JSON, history)
    autoencoder.save(out / MODEL_FILE)

    metrics = _metrics(autoencoder, x_test, y_test, batch_size=512)
    metrics["split"] = splits["test"]
    metrics["train_seconds"] = round(time.perf_counter() - started, 1)
    _write_json(out / METRICS_FILE, metrics)
    say(format_metrics(metrics, f"test metrics ({splits['test']}, nats per image):"))

    if plots:
        try:
            pictures = _write_pictures(
                autoencoder, out, x_test, y_test, history, seed=seed, class_names=info.class_names
            )
            say("pictures: " + ", ".join(path.name for path in pictures))
        except ImportError as error:
            warnings.warn(f"skipped the pictures: {error}", RunWarning, stacklevel=2)
    if export:
        _export(autoencoder, out / "saved_model", "tf_saved_model", required=False, say=say)
    shutil.rmtree(out / BACKUP_DIR)  # last: until here a rerun resumes, then the run is complete
    say(f"wrote {out}/ in {time.perf_counter() - started:.0f} s")
    return Run(out, out / MODEL_FILE, autoencoder, _read_json(out / CONFIG_FILE), history, metrics)


# ------------------------------------------------------------------------- commands on a run


def evaluate(
    run: Run | str | os.PathLike,
    *,
    split: str = "test",
    limit: int | None = None,
    batch_size: int = 512,
    seed: int = 0,
    dataset: str | None = None,
    binarize: str | None = None,
    data_dir: str | None = None,
    idx_dir: str | None = None,
    download: bool | None = None,
) -> dict[str, Any]:
    """Test metrics of a run: ``model.evaluate``'s, the pixel MSE and PSNR, and the split.

    Args:
        run: a `Run`, a run folder or a ``.keras`` file.
        split: the split to evaluate, e.g. ``"test[:1000]"``.
        limit: evaluate the first ``limit`` examples of ``split``.
        batch_size: evaluation batch size.
        seed: seed of dynamic binarisation.
        dataset, binarize, data_dir, idx_dir, download: the data; `None`: the run's.

    Returns:
        Metrics by name (nats per image), with ``num_examples`` and ``split``.
    """
    run = _as_run(run)
    settings = _data_settings(
        run,
        dataset=dataset,
        binarize=binarize,
        data_dir=data_dir,
        idx_dir=idx_dir,
        download=download,
    )
    split = split if limit is None else f"{split.split('[')[0]}[:{limit}]"
    x, labels = _load_eval_arrays(settings, split, seed=seed)
    _check_labels(run.model, labels, settings["dataset"])
    return {**_metrics(run.model, x, labels, batch_size=batch_size), "split": split}


def _image_kind(path: str | os.PathLike) -> str:
    suffix = Path(path).suffix.lower()
    _check(suffix in (".png", ".npy"), f"--out must end with .png or .npy, got {str(path)!r}")
    return suffix[1:]


def _save_images(images, path: Path, kind: str, ncols: int = 8) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "npy":
        np.save(path, images)
        return
    plotting.sample_grid(images, ncols=ncols, path=path)


def generate(
    run: Run | str | os.PathLike,
    n: int = 64,
    *,
    label: int | None = None,
    seed: int = 0,
    path: str | os.PathLike | None = None,
) -> np.ndarray:
    """Decodes ``n`` prior draws of a generative model; saves them if ``path`` is given.

    Args:
        run: a `Run`, a run folder or a ``.keras`` file.
        n: number of samples.
        label: the class to sample, for a conditional model (default: every class, one row
            each).
        seed: seed of the prior draws.
        path: ``FILE.png`` (a grid) or ``FILE.npy`` (the array), or `None`.

    Returns:
        The samples, ``(n, *data_shape)`` in data space.
    """
    kind = None if path is None else _image_kind(path)
    _check(_is_int(n, 1), f"--n must be a positive integer, got {n!r}")
    run = _as_run(run)
    model, held = run.model, f"{run.model_file} holds a {type(run.model).__name__}"
    generative = " or ".join(model_names(lambda cls: cls.generative))
    _check(model.generative, f"generate needs a {generative}; {held}")
    ncols = 8
    if model.conditional:
        classes = model.num_classes
        _check(
            label is None or 0 <= label < classes,
            f"--label must be in [0, {classes}), got {label}",
        )
        if label is None:  # one row per class
            ncols = math.ceil(n / classes)
            labels = np.repeat(np.arange(classes), ncols)[:n]
        else:
            labels = np.full(n, label)
        images = model.generate(labels.astype("int32"), seed=seed)
    else:
        conditional = " or ".join(model_names(lambda cls: cls.conditional))
        _check(label is None, f"--label needs a {conditional}; {held}")
        images = model.generate(n, seed=seed)
    if path is not None:
        _save_images(images, Path(path), kind, ncols=min(ncols, n))
    return images


def reconstruct(
    run: Run | str | os.PathLike,
    n: int = 16,
    *,
    seed: int = 0,
    path: str | os.PathLike | None = None,
    dataset: str | None = None,
    binarize: str | None = None,
    data_dir: str | None = None,
    idx_dir: str | None = None,
    download: bool | None = None,
) -> Reconstructions:
    """Reconstructs the first ``n`` test images (a denoising model: noisy copies of them).

    Args:
        run: a `Run`, a run folder or a ``.keras`` file.
        n: number of images.
        seed: seed of the noise of a denoising model (and of dynamic binarisation).
        path: ``FILE.png`` (inputs above reconstructions, with the noisy inputs of a denoising
            model) or ``FILE.npy`` (the reconstructions), or `None`.
        dataset, binarize, data_dir, idx_dir, download: the data; `None`: the run's.

    Returns:
        `Reconstructions` ``(inputs, reconstructions, noisy)``.
    """
    kind = None if path is None else _image_kind(path)
    _check(_is_int(n, 1), f"--n must be a positive integer, got {n!r}")
    run = _as_run(run)
    settings = _data_settings(
        run,
        dataset=dataset,
        binarize=binarize,
        data_dir=data_dir,
        idx_dir=idx_dir,
        download=download,
    )
    x, labels = _load_eval_arrays(settings, f"test[:{n}]", seed=seed)
    model = run.model
    _check_labels(model, labels, settings["dataset"])
    noisy = model.corrupt(x, seed=seed) if model.denoising else None  # plots clip to [0, 1]
    outputs = _reconstruct(model, x if noisy is None else noisy, labels)
    if kind == "npy":
        _save_images(outputs, Path(path), kind)
    elif kind == "png":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        plotting.reconstruction_pairs(x, outputs, noisy=noisy, n=len(x), path=path)
    return Reconstructions(x, outputs, noisy)


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _export(model, target: Path, export_format: str, required: bool, say: Report) -> None:
    try:
        model.export(str(target), format=export_format, verbose=False)
    except (NotImplementedError, ImportError, ValueError, RuntimeError) as error:
        backend = keras.backend.backend()
        if required:
            raise ValueError(f"export failed on the {backend} backend: {error}") from error
        warnings.warn(
            f"skipped the SavedModel export on the {backend} backend ({_one_line(error)}); "
            f"export later with: keras-vae export {target.parent} --out DIR",
            RunWarning,
            stacklevel=3,
        )
        return
    say(f"exported {export_format} to {target}")


def export(
    run: Run | str | os.PathLike,
    path: str | os.PathLike,
    format: str = "tf_saved_model",
    *,
    report: Report | None = print,
) -> Path:
    """Exports a run's model for serving (see `keras_vae.export`); returns ``path``.

    Args:
        run: a `Run`, a run folder or a ``.keras`` file.
        path: the SavedModel directory, or the ``.onnx`` file.
        format: ``"tf_saved_model"`` or ``"onnx"``.
        report: called with the line saying what was written; `None`: silent.

    Raises:
        ValueError: the backend or the installed packages cannot export this model.
    """
    run = _as_run(run)
    _export(run.model, Path(path), format, required=True, say=report or (lambda message: None))
    return Path(path)


# ------------------------------------------------------------------------- pictures


def _write_pictures(model, out: Path, x_test, y_test, history, seed, class_names) -> list[Path]:
    written: list[Path] = []

    def keep(name: str) -> Path:
        written.append(out / name)
        return out / name

    if model.conditional and model.generative:
        plotting.class_conditional_grid(
            model,
            n_per_class=8,
            seed=seed,
            path=keep("class_conditional.png"),
            class_names=class_names,
        )
    elif model.generative:
        plotting.sample_grid(
            model.generate(64, seed=seed),
            ncols=8,
            path=keep("samples.png"),
            title="Samples from the prior",
        )
    count = min(8, len(x_test))
    inputs, labels = x_test[:count], None if y_test is None else y_test[:count]
    plotting.reconstruction_pairs(
        inputs, _reconstruct(model, inputs, labels), n=count, path=keep("reconstructions.png")
    )
    if model.denoising:
        noisy = model.corrupt(inputs, seed=seed)  # the plot clips to [0, 1]
        plotting.reconstruction_pairs(
            inputs,
            _reconstruct(model, noisy, labels),
            noisy=noisy,
            n=count,
            path=keep("denoising.png"),
            title="Clean, noisy and denoised",
        )
    scatter_count = min(5000, len(x_test))
    scatter_labels = None if y_test is None else y_test[:scatter_count]
    codes = _codes(model, x_test[:scatter_count], scatter_labels)
    plotting.latent_scatter(
        codes.reshape(len(codes), -1),
        labels=scatter_labels,
        path=keep("latent_scatter.png"),
        class_names=class_names,
    )
    if model.latent_shape == (2,) and model.generative and not model.conditional:
        plotting.latent_manifold(model, n=15, extent=3.0, path=keep("latent_manifold.png"))
    plotting.loss_curves(history, path=keep("loss_curves.png"))
    return written
