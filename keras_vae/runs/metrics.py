"""The data a run is evaluated on, and its metrics: ``model.evaluate``'s, pixel MSE and PSNR."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from keras_vae import data
from keras_vae.runs.folder import Run
from keras_vae.runs.models import _fit_args, _reconstruct


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
