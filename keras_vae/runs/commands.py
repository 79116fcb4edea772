"""The commands on a trained run: `evaluate`, `generate`, `reconstruct` and `export`."""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import keras
import numpy as np

from keras_vae import evaluation, plotting
from keras_vae.runs.errors import RunWarning
from keras_vae.runs.folder import CONFIG_FILE, METRICS_FILE, Run, _as_run, _write_json
from keras_vae.runs.metrics import (
    _binarize_mode,
    _check_labels,
    _data_settings,
    _load_eval_arrays,
    _no_likelihood_reason,
)
from keras_vae.runs.models import _reconstruct, model_names
from keras_vae.runs.settings import _check, _is_int

Report = Callable[[str], None]
# Beside the runs, in their parent folder: every run of a dataset shares its classifier.
CLASSIFIER_DIR = "reference_classifiers"


class Reconstructions(NamedTuple):
    """What `reconstruct` returns: the test inputs, their reconstructions and, for a denoising
    model, the noisy inputs it reconstructed (else `None`)."""

    inputs: np.ndarray
    reconstructions: np.ndarray
    noisy: np.ndarray | None


def evaluate(
    run: Run | str | os.PathLike,
    *,
    split: str = "test",
    limit: int | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    num_samples: int = 1000,
    num_per_class: int = 100,
    classifier: Any = None,
    classifier_dir: str | os.PathLike | None = None,
    write: bool = False,
    dataset: str | None = None,
    binarize: str | None = None,
    data_dir: str | None = None,
    idx_dir: str | None = None,
    download: bool | None = None,
    report: Report | None = None,
) -> dict[str, Any]:
    """Test metrics of a run, by `keras_vae.evaluation.evaluate_model`, with the split.

    The test split is binarised as the run was trained (``dynamic``: one draw with
    `keras_vae.evaluation.TEST_BINARIZE_SEED`; ``static``: threshold 0.5; ``none``: grey
    levels, where a Bernoulli likelihood gives no NLL: ``likelihood_not_reported`` says so).
    A conditional generative model is scored by the reference classifier of the run's dataset,
    cached in ``classifier_dir`` (default: ``reference_classifiers/`` in the run's parent
    folder, shared by all runs there) and trained there on first use.

    Args:
        run: a `Run`, a run folder or a ``.keras`` file.
        split: the split to evaluate, e.g. ``"test[:1000]"``.
        limit: evaluate the first ``limit`` examples of ``split``.
        batch_size: batch size (`None`: 512 for the losses, the estimators' own for the NLL).
        seed: seed of the estimators' noise (importance samples, denoising noise, samples).
        num_samples: importance samples per image for the NLL (``K``).
        num_per_class: samples per class for the conditional accuracy.
        classifier: a classifier to score a conditional model's samples with, instead of the
            cached reference classifier.
        classifier_dir: where the reference classifier is cached.
        write: merge the metrics into the run's metrics.json, where they are the run's own
            (its folder, dataset and binarisation); else a `RunWarning` says why not.
        dataset, binarize, data_dir, idx_dir, download: the data; `None`: the run's.
        report: called with progress lines (training the classifier, the file written).

    Returns:
        Metrics by name (``*_nats``: nats per image), with ``num_examples``, ``split`` and
        ``binarize``.
    """
    say = report or (lambda message: None)
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
    _check(
        _is_int(num_samples, 1), f"--num-samples must be a positive integer, got {num_samples!r}"
    )
    model = run.model
    x, labels = _load_eval_arrays(settings, split)
    _check_labels(model, labels, settings["dataset"])
    if classifier is None and model.conditional and model.generative:
        classifier = evaluation.reference_classifier(
            settings["dataset"],
            Path(classifier_dir) if classifier_dir else run.path.parent / CLASSIFIER_DIR,
            data_dir=settings.get("data_dir"),
            idx_dir=settings.get("idx_dir"),
            download=not settings.get("no_download", False),
            report=say,
        )
    metrics = evaluation.evaluate_model(
        model,
        x,
        labels,
        num_samples=num_samples,
        batch_size=batch_size,
        seed=seed,
        classifier=classifier,
        num_per_class=num_per_class,
    )
    binarized = _binarize_mode(settings.get("binarize"))
    if "likelihood_not_reported" in metrics and binarized is None:
        metrics["likelihood_not_reported"] = _no_likelihood_reason()
    metrics["split"] = split
    metrics["binarize"] = binarized or "none"
    if write:
        _write_metrics(run, settings, metrics, say)
    return metrics


def _write_metrics(run: Run, settings: dict[str, Any], metrics: dict[str, Any], say) -> None:
    """Merges ``metrics`` into the run's metrics.json where they are the run's own."""
    reason = None
    if not run.settings or not (run.path / CONFIG_FILE).is_file():
        reason = f"{run.model_file} is not in a run folder (no {CONFIG_FILE} beside it)"
    else:
        own = {"dataset": run.dataset, "binarize": run.settings.get("binarize", "none")}
        for key, value in own.items():
            if settings.get(key) != value:
                reason = f"--{key} {settings.get(key)} is not the run's {value}"
    if reason is not None:
        warnings.warn(f"{METRICS_FILE} not updated: {reason}", RunWarning, stacklevel=3)
        return
    merged = {**(run.metrics or {}), **metrics}
    _write_json(run.path / METRICS_FILE, merged)
    run.metrics = merged
    say(f"wrote {run.path / METRICS_FILE}")


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
        seed: seed of the noise of a denoising model (dynamically binarised test images are
            the fixed draw of `keras_vae.evaluation.TEST_BINARIZE_SEED`).
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
    x, labels = _load_eval_arrays(settings, f"test[:{n}]")
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
