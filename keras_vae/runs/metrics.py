"""The data a run is evaluated on, and its metrics (`keras_vae.evaluation`) with their units."""

from __future__ import annotations

from typing import Any

from keras_vae import data, evaluation
from keras_vae.evaluation import TEST_BINARIZE_SEED
from keras_vae.runs.folder import Run


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


def _load_eval_arrays(settings: dict[str, Any], split: str, seed: int = TEST_BINARIZE_SEED):
    # Dynamic binarisation of held-out data is one fixed draw, so metrics are reproducible:
    # the test split's is evaluation.TEST_BINARIZE_SEED's for every run.
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


def _metrics(model, x, labels, batch_size: int) -> dict[str, Any]:
    """``model.evaluate`` on the arrays, the pixel MSE and mean PSNR of the reconstructions."""
    metrics = evaluation.reconstruction_metrics(model, x, labels, batch_size=batch_size)
    metrics["num_examples"] = len(x)
    return metrics


_DATA_KINDS = {
    "dynamic": "dynamically binarised",
    "static": "binarised at 0.5",
    None: "grey levels",
}


def metric_units(model, binarize: str | None) -> str:
    """What a run's losses are, by its model and binarisation: nats only for likelihoods.

    >>> from keras_vae.models import AE
    >>> metric_units(AE, "dynamic")
    "dynamically binarised; losses per image in the model's own units: it has no likelihood"
    """
    kind = _DATA_KINDS[_binarize_mode(binarize)]
    if model.has_likelihood and _binarize_mode(binarize) is not None:
        return f"{kind}; losses in nats per image"
    if model.has_likelihood:
        return (
            f"{kind}; losses per image, not nats: a Bernoulli cross-entropy on grey levels is "
            "no log-probability"
        )
    return f"{kind}; losses per image in the model's own units: it has no likelihood"


def _no_likelihood_reason() -> str:
    return (
        "the run's images are grey levels (--binarize none), which its Bernoulli likelihood "
        "is no density of: no NLL or negative ELBO in nats is reported (train with "
        "--binarize dynamic, the default, for them)"
    )


def format_metrics(metrics: dict[str, Any], title: str) -> str:
    """The title, then one aligned ``name  value`` line per metric (lists on one line).

    >>> print(format_metrics({"loss": 251.23456, "per_class": [0.5, 0.25]}, "test metrics:"))
    test metrics:
      loss       251.235
      per_class  0.5 0.25
    """
    width = max(len(name) for name in metrics)
    lines = [title]
    for name, value in metrics.items():
        lines.append(f"  {name:<{width}}  {_shown(value)}")
    return "\n".join(lines)


def _shown(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return " ".join(f"{item:.3g}" if isinstance(item, float) else str(item) for item in value)
    return str(value)
