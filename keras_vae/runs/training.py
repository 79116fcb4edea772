"""`train`: a model trained into a run folder, resumed there after a kill."""

from __future__ import annotations

import os
import shutil
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import keras

from keras_vae import callbacks, data
from keras_vae.runs.commands import Report, _export
from keras_vae.runs.errors import RunWarning
from keras_vae.runs.folder import (
    BACKUP_DIR,
    CONFIG_FILE,
    HISTORY_CSV,
    HISTORY_JSON,
    METRICS_FILE,
    MODEL_FILE,
    Run,
    _keep_csv_rows,
    _prepare_folder,
    _read_json,
    _write_json,
)
from keras_vae.runs.metrics import (
    _binarize_mode,
    _data_kwargs,
    _load_eval_arrays,
    _metrics,
    format_metrics,
    metric_units,
)
from keras_vae.runs.models import _build_model, _check_model_options, _fit_args, _model_class
from keras_vae.runs.pictures import _write_pictures
from keras_vae.runs.settings import (
    DEFAULT_BETA,
    DEFAULT_DATASET,
    DEFAULT_FILTERS,
    DEFAULT_HIDDEN_UNITS,
    DEFAULT_NOISE_STDDEV,
    _check,
    _check_train_settings,
    _splits,
)


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
    model_options: Mapping[str, Any] | None = None,
    binarize: str = "dynamic",
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
        model_options: more arguments of the model's ``__init__`` by name (``--model-option``),
            JSON-able values, e.g. ``{"num_samples": 5}`` for an IWAE; see
            `keras_vae.runs.models.option_names`.
        binarize: ``"dynamic"`` (default: a fresh Bernoulli draw per epoch; validation/test:
            one fixed draw, so a model with a likelihood reports nats), ``"static"``
            (threshold 0.5) or ``"none"`` (grey levels: losses are not likelihoods).
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
    model_options = _check_model_options(model, model_options or {})
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
        "model_options": model_options,
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
    keras.utils.set_random_seed(seed)
    # Built before the folder is touched: a --model-option the model refuses writes nothing.
    autoencoder = _build_model(settings, tuple(info.image_shape), info.num_classes)
    resuming = _prepare_folder(out, settings, resume=resume, overwrite=overwrite)
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
    x_test, y_test = _load_eval_arrays(settings, splits["test"])  # evaluate's draw
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
    units = metric_units(autoencoder, binarize)
    say(format_metrics(metrics, f"test metrics ({splits['test']}, {units}):"))
    if autoencoder.has_likelihood:
        say(f"test NLL (importance weighted, K=1000) and more: keras-vae evaluate {out}")

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
