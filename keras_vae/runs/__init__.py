"""Train, load and evaluate a run: a folder with a model and everything needed to understand it.

What `keras-vae train` does, a notebook does in three lines:

```python
from keras_vae import runs

run = runs.train("runs/vae", model="vae", arch="mlp", latent_dim=16, epochs=15)
run.metrics["loss"]  # the test negative ELBO in nats per image (dynamically binarised data)
```

and later, from the folder: ``run = runs.load("runs/vae")`` (``run.model``, ``run.settings``),
``runs.evaluate(run, num_samples=1000, write=True)`` (the importance-weighted NLL and the
rest of `keras_vae.evaluation`, merged into metrics.json),
``runs.generate(run, 64, path="samples.png")``, ``runs.reconstruct(run, 16,
path="reconstructions.png")``, ``runs.export(run, "exported/vae")``.

A run folder holds:

- ``config.json``: every setting of `train`, the splits, the backend and the versions;
- ``model.keras``: the trained model (`load` reads it with ``safe_mode=True``);
- ``history.csv`` (one row per epoch, written as training goes) and ``history.json``;
- ``metrics.json``: the test metrics (the losses and PSNR after training; `evaluate` with
  ``write=True`` adds the NLL, active units, conditional accuracy...), the split, the time;
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
(``--latent-dim`` for ``latent_dim``); ``model_options`` (``--model-option NAME=VALUE``) pass
any other argument of the model's ``__init__`` (`option_names`). Settings that cannot work
together, or that do not fit the run folder, raise `SettingsError`.
"""

# `NAME as NAME`: public too, outside __all__ as before (the CLI and tests read them).
from keras_vae.runs.commands import CLASSIFIER_DIR as CLASSIFIER_DIR
from keras_vae.runs.commands import Reconstructions, evaluate, export, generate, reconstruct
from keras_vae.runs.commands import Report as Report
from keras_vae.runs.errors import RunWarning, SettingsError
from keras_vae.runs.folder import BACKUP_DIR as BACKUP_DIR
from keras_vae.runs.folder import CONFIG_FILE as CONFIG_FILE
from keras_vae.runs.folder import HISTORY_CSV as HISTORY_CSV
from keras_vae.runs.folder import HISTORY_JSON as HISTORY_JSON
from keras_vae.runs.folder import METRICS_FILE as METRICS_FILE
from keras_vae.runs.folder import MODEL_FILE as MODEL_FILE
from keras_vae.runs.folder import Run, load
from keras_vae.runs.metrics import format_metrics, metric_units
from keras_vae.runs.models import accepts, fits_arch, model_names, option_names
from keras_vae.runs.settings import ARCHS as ARCHS
from keras_vae.runs.settings import BINARIZE as BINARIZE
from keras_vae.runs.settings import DEFAULT_BETA as DEFAULT_BETA
from keras_vae.runs.settings import DEFAULT_DATASET as DEFAULT_DATASET
from keras_vae.runs.settings import DEFAULT_FILTERS as DEFAULT_FILTERS
from keras_vae.runs.settings import DEFAULT_HIDDEN_UNITS as DEFAULT_HIDDEN_UNITS
from keras_vae.runs.settings import DEFAULT_NOISE_STDDEV as DEFAULT_NOISE_STDDEV
from keras_vae.runs.settings import JIT as JIT
from keras_vae.runs.training import train

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
    "metric_units",
    "model_names",
    "option_names",
    "reconstruct",
    "train",
]
