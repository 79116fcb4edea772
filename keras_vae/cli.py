"""The `keras-vae` command: train, evaluate, sample from, reconstruct with and export autoencoders.

```
keras-vae train --model vae --arch conv --latent-dim 16 --epochs 15 --out runs/vae
keras-vae evaluate runs/vae
keras-vae generate runs/vae --n 64 --out samples.png
keras-vae reconstruct runs/vae --n 16 --out reconstructions.png
keras-vae export runs/vae --out exported/vae
```

Arguments are parsed before Keras is imported, so `--backend` takes effect (it sets
`KERAS_BACKEND`). Errors print one line, ``keras-vae: error: ...``, and exit with status 2 for
usage errors and 1 for runtime errors; `--debug` shows the traceback of unexpected errors.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

PROG = "keras-vae"
MODELS = ("ae", "dae", "vae", "cvae")
ARCHS = ("mlp", "conv", "segnet")
BACKENDS = ("tensorflow", "jax", "torch")
BINARIZE = ("none", "static", "dynamic")
CONFIG_FILE = "config.json"
MODEL_FILE = "model.keras"
BACKUP_DIR = "backup"  # exists while a run is unfinished: a rerun resumes from it

# What --overwrite removes before a new run: everything train writes that a new run might not
# write again (pictures and config.json are always rewritten).
_RUN_OUTPUTS = (BACKUP_DIR, "progress", "saved_model", MODEL_FILE, "metrics.json")
_RUN_LOGS = ("history.csv", "history.json")

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

# Sizes used when --hidden-units / --filters are not given. conv: a 256-unit dense layer rather
# than the Keras example's 16, which would squeeze the code before the latent heads.
DEFAULT_HIDDEN_UNITS = {"mlp": (512, 256), "conv": (256,), "segnet": ()}
DEFAULT_FILTERS = (32, 64)

CLASS_NAMES = {
    "fashion_mnist": (
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
    "mnist": tuple(str(digit) for digit in range(10)),
}

_REEXEC_FLAG = "KERAS_VAE_CLI_REEXEC"


class UsageError(Exception):
    """A bad command line: printed as one line, exit status 2."""


class _BackendMismatch(Exception):
    """Keras was imported before the command line could choose its backend."""

    def __init__(self, requested: str, current: str):
        super().__init__(
            f"--backend {requested} asked for, but Keras is already imported with backend "
            f"{current}; run keras-vae in a fresh process (or set KERAS_BACKEND={requested})."
        )
        self.requested = requested


# ----------------------------------------------------------------------------- parsing


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line: ``keras-vae: error: ...``."""

    def error(self, message: str):
        hint = f"run '{self.prog} --help'"
        self.exit(2, f"{PROG}: error: {message} ({hint})\n")


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the epilog's layout; shows defaults that say something."""

    def _get_help_string(self, action):
        text = action.help or ""
        quiet = any(action.default is value for value in (None, False, argparse.SUPPRESS))
        if "default" in text or quiet or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


def _wrap(text: str) -> str:
    return textwrap.fill(text, width=78)


def _checked_number(convert, accept, expected: str):
    """An argparse ``type`` converting with ``convert`` and accepting values where ``accept``."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


_positive_int = _checked_number(int, lambda v: v >= 1, "a positive integer")
_non_negative_int = _checked_number(int, lambda v: v >= 0, "an integer >= 0")
_non_negative_float = _checked_number(
    float, lambda v: v >= 0 and not math.isinf(v), "a finite number >= 0"
)


def _steps_per_execution(text: str):
    """``auto`` or a positive integer (see `keras_vae.models.BaseAutoencoder.compile`)."""
    if text == "auto":
        return text
    return _checked_number(int, lambda v: v >= 1, "'auto' or a positive integer")(text)


def _int_list(text: str) -> tuple[int, ...]:
    parts = [part for part in text.replace(" ", "").split(",") if part]
    try:
        values = tuple(int(part) for part in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive integers such as 512,256, got {text!r}"
        ) from None
    if any(value < 1 for value in values):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


_TRAIN_EPILOG = """\
examples:
  keras-vae train --model vae --arch conv --latent-dim 16 --epochs 15 --out runs/vae
  keras-vae train --model cvae --arch conv --epochs 10 --out runs/cvae
  keras-vae train --model dae --arch segnet --epochs 5 --out runs/dae
  keras-vae train --model vae --latent-dim 2 --epochs 1 --limit 2048 --out runs/quick
  keras-vae train --model vae --backend jax --out runs/vae-jax

data: the last --val-size training examples are held out for validation (the Keras progress
bar shows val_* metrics); the test split is only used once, for metrics.json, after training.
The reconstruction term is the Bernoulli log-likelihood for every model (pixels in [0, 1],
decoders output logits), so losses are nats per image and comparable across models.

writes into --out: config.json, model.keras, history.csv, history.json, metrics.json,
saved_model/ (unless --no-export) and PNG pictures (unless --no-plots): samples,
reconstructions, latent scatter, latent manifold (2-D latents), class-conditional grid
(cvae), denoising (dae), loss curves.

resuming: while training, --out/backup/ holds the state after the last completed epoch
(weights, optimizer, random seeds, history), written atomically. A run that was killed is
resumed by the same command (or --resume) and ends with the weights and metrics of an
uninterrupted run; settings that differ from the run's config.json are refused. The backup is
deleted once everything is written; training again into a completed run needs --overwrite.
"""

_EVALUATE_EPILOG = """\
examples:
  keras-vae evaluate runs/vae
  keras-vae evaluate runs/vae/model.keras --dataset fashion_mnist --binarize dynamic
  keras-vae evaluate runs/vae --json
"""

_GENERATE_EPILOG = """\
examples:
  keras-vae generate runs/vae --n 64 --out samples.png
  keras-vae generate runs/cvae --n 16 --label 3 --out dresses.png
  keras-vae generate runs/vae --n 1000 --seed 1 --out samples.npy
"""

_RECONSTRUCT_EPILOG = """\
examples:
  keras-vae reconstruct runs/vae --n 16 --out reconstructions.png
  keras-vae reconstruct runs/dae --n 8 --out denoised.png   # adds the noisy inputs
"""

_EXPORT_EPILOG = """\
examples:
  keras-vae export runs/vae --out exported/vae
  keras-vae export runs/vae/model.keras --out exported/vae.onnx --format onnx

A SavedModel has the signatures serving_default (reconstruction), encode, decode and (for
VAEs) generate; load it with tf.saved_model.load(DIR) in TensorFlow Serving or plain TF.
"""


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--backend",
        choices=BACKENDS,
        default=None,
        help="Keras backend (sets KERAS_BACKEND; default: $KERAS_BACKEND or tensorflow)",
    )
    common.add_argument(
        "--debug", action="store_true", help="show the traceback of unexpected errors"
    )
    return common


def _data_options(parser: argparse.ArgumentParser, with_defaults: bool) -> None:
    # evaluate/reconstruct read the run's config.json, so their defaults are None.
    group = parser.add_argument_group("data")
    group.add_argument(
        "--dataset",
        default="fashion_mnist" if with_defaults else None,
        metavar="NAME",
        help="TFDS image dataset name (fashion_mnist, mnist, ...)"
        + ("" if with_defaults else "; default: the run's"),
    )
    group.add_argument(
        "--binarize",
        choices=BINARIZE,
        default="none" if with_defaults else None,
        help="none: grey levels; static: threshold at 0.5; dynamic: a fresh Bernoulli draw "
        "per epoch (validation/test: one fixed draw)"
        + ("" if with_defaults else "; default: the run's"),
    )
    group.add_argument("--data-dir", metavar="DIR", help="TFDS data directory")
    group.add_argument(
        "--idx-dir",
        metavar="DIR",
        help="directory of MNIST-format IDX files (train-images-idx3-ubyte.gz, ...)",
    )
    group.add_argument(
        "--no-download", action="store_true", help="never let TFDS download a dataset"
    )


def _add_train_command(commands, common: argparse.ArgumentParser) -> None:
    train = _subcommand(
        commands,
        common,
        "train",
        help="train a model and write a run folder",
        description=_wrap(
            "Train an AE, DAE, VAE or CVAE and write model, metrics, export and pictures "
            "into a run folder."
        ),
        epilog=_TRAIN_EPILOG,
    )
    train.add_argument("--model", choices=MODELS, default="vae", help="which autoencoder")
    train.add_argument(
        "--arch",
        choices=ARCHS,
        default="mlp",
        help="encoder/decoder pair from keras_vae.architectures (segnet: ae/dae only); on a "
        "CPU, mlp reaches a lower loss per minute than conv",
    )
    train.add_argument(
        "--latent-dim", type=_positive_int, default=16, metavar="DIM", help="latent size"
    )
    train.add_argument("--epochs", type=_positive_int, default=20, metavar="N", help="epochs")
    train.add_argument(
        "--batch-size", type=_positive_int, default=128, metavar="N", help="batch size"
    )
    train.add_argument("--out", required=True, metavar="DIR", help="run folder to write (created)")
    train.add_argument(
        "--beta", type=_non_negative_float, default=None, help="KL weight (vae/cvae; default 1)"
    )
    train.add_argument(
        "--kl-warmup",
        type=_non_negative_int,
        default=0,
        metavar="EPOCHS",
        help="anneal the KL weight from 0 to --beta over this many epochs (vae/cvae)",
    )
    train.add_argument(
        "--noise-stddev",
        type=_non_negative_float,
        default=None,
        metavar="STD",
        help="std of the Gaussian input noise of the dae (default 0.3)",
    )
    train.add_argument(
        "--hidden-units",
        type=_int_list,
        default=None,
        metavar="UNITS",
        help="dense widths, e.g. 512,256 (default: mlp 512,256; conv 256; segnet none)",
    )
    train.add_argument(
        "--filters",
        type=_int_list,
        default=None,
        metavar="FILTERS",
        help="conv/segnet channels per level (default 32,64)",
    )
    train.add_argument(
        "--learning-rate", type=float, default=1e-3, metavar="LR", help="Adam learning rate"
    )
    train.add_argument(
        "--val-size",
        type=_positive_int,
        default=5000,
        metavar="N",
        help="training examples held out for validation (the last ones of the split)",
    )
    train.add_argument("--seed", type=int, default=0, help="seed of weights, shuffle and noise")
    train.add_argument(
        "--limit",
        type=_positive_int,
        default=None,
        metavar="N",
        help="use only N training examples (and at most N validation/test examples)",
    )
    train.add_argument(
        "--jit",
        choices=("auto", "on", "off"),
        default="auto",
        help="XLA/JIT compilation of the train step (auto: Keras' choice)",
    )
    train.add_argument(
        "--steps-per-execution",
        type=_steps_per_execution,
        default="auto",
        metavar="N",
        help="batches per compiled call, or auto: 32 on TensorFlow unless a callback needs "
        "every batch (--kl-warmup does), 1 on JAX and torch",
    )
    train.add_argument(
        "--verbose",
        type=int,
        choices=(0, 1, 2),
        default=None,
        help="fit() verbosity: 0 silent, 1 progress bar, 2 one line per epoch (default: 1 on "
        "a terminal, else 2)",
    )
    train.add_argument(
        "--sample-every",
        type=_non_negative_int,
        default=0,
        metavar="EPOCHS",
        help="vae/cvae: write progress/samples_epoch_NNN.png every this many epochs (0: never)",
    )
    train.add_argument("--no-export", action="store_true", help="skip the SavedModel export")
    train.add_argument("--no-plots", action="store_true", help="skip the PNG pictures")
    restart = train.add_mutually_exclusive_group()
    restart.add_argument(
        "--resume",
        action="store_true",
        help="resume the interrupted run in --out, and fail if there is none (the same "
        "command without --resume resumes one too, or starts a new run)",
    )
    restart.add_argument(
        "--overwrite",
        action="store_true",
        help="start afresh in --out, discarding a completed or interrupted run there",
    )
    _data_options(train, with_defaults=True)
    train.set_defaults(func=_cmd_train)


def _subcommand(commands, common, name, help, description, epilog):
    """A sub-command parser with the shared options, the help layout and its examples."""
    return commands.add_parser(
        name,
        parents=[common],
        help=help,
        description=description,
        epilog=epilog,
        formatter_class=_Formatter,
    )


def _add_run_argument(parser) -> None:
    parser.add_argument("run", metavar="RUN_OR_MODEL", help="run folder or .keras file")


def _add_evaluate_command(commands, common: argparse.ArgumentParser) -> None:
    evaluate = _subcommand(
        commands,
        common,
        "evaluate",
        help="print test metrics of a run or .keras file",
        description=_wrap(
            "Evaluate a trained model on a test split and print its metrics (the "
            "dataset and binarisation default to those in the run's config.json)."
        ),
        epilog=_EVALUATE_EPILOG,
    )
    _add_run_argument(evaluate)
    evaluate.add_argument("--split", default="test", help="split to evaluate, e.g. test[:1000]")
    evaluate.add_argument("--limit", type=_positive_int, help="evaluate the first N examples")
    evaluate.add_argument("--batch-size", type=_positive_int, default=512, help="batch size")
    evaluate.add_argument("--seed", type=int, default=0, help="seed of dynamic binarisation")
    evaluate.add_argument("--json", action="store_true", help="print the metrics as JSON")
    _data_options(evaluate, with_defaults=False)
    evaluate.set_defaults(func=_cmd_evaluate)


def _add_generate_command(commands, common: argparse.ArgumentParser) -> None:
    generate = _subcommand(
        commands,
        common,
        "generate",
        help="sample images from a vae/cvae",
        description=_wrap(
            "Decode draws from the prior of a VAE (or a CVAE's class prior) and save "
            "them as a PNG grid or a .npy array (chosen by the --out extension)."
        ),
        epilog=_GENERATE_EPILOG,
    )
    _add_run_argument(generate)
    generate.add_argument("--n", type=_positive_int, default=64, help="number of samples")
    generate.add_argument(
        "--label", type=int, default=None, help="class to sample (cvae; default: every class)"
    )
    generate.add_argument("--seed", type=int, default=0, help="seed of the prior draws")
    generate.add_argument("--out", required=True, help="FILE.png or FILE.npy")
    generate.set_defaults(func=_cmd_generate)


def _add_reconstruct_command(commands, common: argparse.ArgumentParser) -> None:
    reconstruct = _subcommand(
        commands,
        common,
        "reconstruct",
        help="reconstruct test images",
        description=_wrap(
            "Reconstruct the first --n test images and save inputs above "
            "reconstructions (a dae also shows its noisy inputs) as PNG, or the reconstructions "
            "as .npy."
        ),
        epilog=_RECONSTRUCT_EPILOG,
    )
    _add_run_argument(reconstruct)
    reconstruct.add_argument("--n", type=_positive_int, default=16, help="number of images")
    reconstruct.add_argument("--seed", type=int, default=0, help="seed of the dae noise")
    reconstruct.add_argument("--out", required=True, help="FILE.png or FILE.npy")
    _data_options(reconstruct, with_defaults=False)
    reconstruct.set_defaults(func=_cmd_reconstruct)


def _add_export_command(commands, common: argparse.ArgumentParser) -> None:
    export = _subcommand(
        commands,
        common,
        "export",
        help="export a SavedModel (or ONNX) for serving",
        description="Export a trained model with named signatures (see keras_vae.export).",
        epilog=_EXPORT_EPILOG,
    )
    _add_run_argument(export)
    export.add_argument("--out", required=True, help="output directory (or .onnx file)")
    export.add_argument(
        "--format", choices=("tf_saved_model", "onnx"), default="tf_saved_model", help="format"
    )
    export.set_defaults(func=_cmd_export)


def build_parser() -> argparse.ArgumentParser:
    """Returns the `keras-vae` argument parser (subcommands train, evaluate, generate, ...)."""
    common = _common_options()
    parser = _Parser(
        prog=PROG,
        description="Train, evaluate, sample from and export keras_vae autoencoders.",
        epilog="run 'keras-vae COMMAND --help' for a command's options and examples.",
        formatter_class=_Formatter,
    )
    from keras_vae import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    _add_train_command(commands, common)
    _add_evaluate_command(commands, common)
    _add_generate_command(commands, common)
    _add_reconstruct_command(commands, common)
    _add_export_command(commands, common)
    return parser


def _check_train_args(args: argparse.Namespace) -> None:
    variational = args.model in ("vae", "cvae")
    if args.arch == "segnet" and variational:
        raise UsageError(
            f"--arch segnet is for --model ae or dae only (its decoder needs the encoder's "
            f"pooling indices, so a {args.model} could not generate); use --arch conv or mlp"
        )
    if not variational and args.beta is not None:
        raise UsageError(f"--beta applies to vae/cvae only, not --model {args.model}")
    if not variational and args.kl_warmup:
        raise UsageError(f"--kl-warmup applies to vae/cvae only, not --model {args.model}")
    if args.model != "dae" and args.noise_stddev is not None:
        raise UsageError(f"--noise-stddev applies to --model dae only, not {args.model}")
    if args.arch == "mlp" and args.filters is not None:
        raise UsageError("--filters applies to --arch conv or segnet only")
    if args.arch == "segnet" and args.hidden_units:
        raise UsageError("--hidden-units does not apply to --arch segnet")
    if args.arch == "conv" and args.hidden_units is not None and len(args.hidden_units) > 1:
        raise UsageError("--arch conv takes one --hidden-units value, e.g. 256")
    if not args.learning_rate > 0:
        raise UsageError(f"--learning-rate must be > 0, got {args.learning_rate}")


# ----------------------------------------------------------------------------- backend


def _select_backend(name: str | None) -> None:
    """Sets KERAS_BACKEND; fails if Keras is already running on another backend."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if name is None:
        return
    os.environ["KERAS_BACKEND"] = name
    keras = sys.modules.get("keras")
    if keras is not None:
        current = keras.backend.backend()
        if current != name:
            raise _BackendMismatch(name, current)


def _rerun_in_fresh_process(argv: Sequence[str], backend: str) -> int:
    env = dict(os.environ, KERAS_BACKEND=backend, **{_REEXEC_FLAG: "1"})
    command = [sys.executable, "-m", "keras_vae", *argv]
    if os.name == "posix":
        # Replace this process rather than wait for a child: a signal sent to the command
        # (SIGKILL by a scheduler) must stop the training, not leave it running orphaned.
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, command, env)
    return subprocess.call(command, env=env)


# ------------------------------------------------------------------------------ helpers


def _say(message: str) -> None:
    print(message, flush=True)


def _warn(message: str) -> None:
    print(f"{PROG}: warning: {message}", file=sys.stderr, flush=True)


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n")


def _binarize_mode(value: str | None) -> str | None:
    return None if value in (None, "none") else value


def _data_kwargs(settings: dict[str, Any]) -> dict[str, Any]:
    return {
        "data_dir": settings.get("data_dir"),
        "idx_dir": settings.get("idx_dir"),
        "download": not settings.get("no_download", False),
    }


def _splits(num_examples: dict[str, int], limit: int | None, val_size: int) -> dict[str, str]:
    """Train/validation/test split strings: validation is the end of the train split."""
    total = num_examples.get("train")
    if total is not None:
        if val_size >= total:
            raise UsageError(
                f"--val-size {val_size} leaves no training examples (the train split has {total})"
            )
        n_train = total - val_size
        n_val = val_size if limit is None else min(val_size, limit)
        n_train = n_train if limit is None else min(n_train, limit)
        train, val = f"train[:{n_train}]", f"train[{total - n_val}:]"
    else:  # sizes unknown (TFDS not prepared yet): count from the end
        n_val = val_size if limit is None else min(val_size, limit)
        train = f"train[:-{val_size}]" if limit is None else f"train[:{limit}]"
        val = f"train[-{n_val}:]"
    test_name = "test" if "test" in num_examples or not num_examples else "validation"
    test = test_name if limit is None else f"{test_name}[:{limit}]"
    return {"train": train, "validation": val, "test": test}


def _load_eval_arrays(settings: dict[str, Any], split: str, seed: int):
    from keras_vae import data

    # Dynamic binarisation of held-out data is one fixed draw, so metrics are reproducible.
    return data.load_numpy(
        settings["dataset"],
        split,
        binarize=_binarize_mode(settings.get("binarize")),
        seed=seed,
        **_data_kwargs(settings),
    )


def _is_conditional(model: Any) -> bool:
    return getattr(model, "num_classes", None) is not None


def _reconstruct(model: Any, x, labels):
    return model.reconstruct(x, labels) if _is_conditional(model) else model.reconstruct(x)


def _encode(model: Any, x, labels):
    if _is_conditional(model) and getattr(model, "condition_encoder", False):
        codes = model.encode(x, labels)
    else:
        codes = model.encode(x)
    return codes[0] if isinstance(codes, tuple) else codes


def _test_metrics(model: Any, x, labels, batch_size: int) -> dict[str, float]:
    """``model.evaluate`` on the arrays, plus the pixel MSE and PSNR of the reconstructions."""
    import numpy as np

    results = model.evaluate(
        *_as_fit_args(model, x, labels), batch_size=batch_size, verbose=0, return_dict=True
    )
    metrics = {name: float(value) for name, value in results.items()}
    reconstructions = _reconstruct(model, x, labels)
    mse = float(np.mean(np.square(reconstructions - x)))
    metrics["pixel_mse"] = mse
    metrics["psnr_db"] = float(10.0 * math.log10(1.0 / max(mse, 1e-12)))
    if hasattr(model, "corrupt"):  # a DAE: how well it removes its own training noise
        denoised = model.reconstruct(model.corrupt(x, seed=0))
        denoised_mse = float(np.mean(np.square(denoised - x)))
        metrics["denoised_psnr_db"] = float(10.0 * math.log10(1.0 / max(denoised_mse, 1e-12)))
    metrics["num_examples"] = len(x)
    return metrics


def _as_fit_args(model: Any, x, labels) -> tuple:
    return (x, labels) if _is_conditional(model) else (x,)


def _print_metrics(metrics: dict[str, Any], title: str) -> None:
    _say(title)
    width = max(len(name) for name in metrics)
    for name, value in metrics.items():
        shown = f"{value:.6g}" if isinstance(value, float) else str(value)
        _say(f"  {name:<{width}}  {shown}")


def _output_kind(path: str) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in (".png", ".npy"):
        raise UsageError(f"--out must end with .png or .npy, got {path!r}")
    return suffix[1:]


# ------------------------------------------------------------------------------- models


def _build_model(settings: dict[str, Any], image_shape: tuple[int, ...], num_classes: int | None):
    from keras_vae import AE, CVAE, DAE, VAE, architectures

    model_name, arch = settings["model"], settings["arch"]
    variational = model_name in ("vae", "cvae")
    conditional = model_name == "cvae"
    hidden = settings["hidden_units"]
    filters = tuple(settings["filters"])
    latent_dim = settings["latent_dim"]
    if arch in ("conv", "segnet") and len(image_shape) != 3:
        raise ValueError(f"--arch {arch} needs images (H, W, C); the data have {image_shape}")
    if arch == "mlp":
        encoder, decoder = architectures.mlp(
            image_shape,
            latent_dim=latent_dim,
            hidden_units=tuple(hidden),
            variational=variational,
            num_classes=num_classes if conditional else None,
        )
    elif arch == "conv":
        encoder, decoder = architectures.conv(
            image_shape,
            latent_dim=latent_dim,
            filters=filters,
            hidden_units=hidden[0] if hidden else None,
            variational=variational,
            num_classes=num_classes if conditional else None,
        )
    else:
        encoder, decoder = architectures.segnet(
            image_shape, latent_dim=latent_dim, filters=filters, variational=False
        )
    # Pixels lie in [0, 1]: the Bernoulli likelihood (decoders output logits) for every model.
    common = {"reconstruction_loss": "bernoulli"}
    seed = settings["seed"]
    if model_name == "ae":
        return AE(encoder, decoder, **common)
    if model_name == "dae":
        return DAE(encoder, decoder, noise_stddev=settings["noise_stddev"], seed=seed, **common)
    if model_name == "vae":
        return VAE(encoder, decoder, beta=settings["beta"], seed=seed, **common)
    return CVAE(
        encoder,
        decoder,
        num_classes=num_classes,
        condition_encoder=True,
        condition_decoder=True,
        beta=settings["beta"],
        seed=seed,
        **common,
    )


def _locate_run(path_text: str) -> tuple[Path, dict[str, Any]]:
    """Returns ``(model file, settings from config.json or {})`` for a run folder or file."""
    path = Path(path_text)
    if path.is_dir():
        model_path, config_path = path / MODEL_FILE, path / CONFIG_FILE
        if not model_path.is_file():
            raise FileNotFoundError(f"run folder {path_text!r} has no {MODEL_FILE}")
    elif path.is_file():
        if path.suffix != ".keras":
            raise UsageError(f"expected a run folder or a .keras file, got {path_text!r}")
        model_path, config_path = path, path.parent / CONFIG_FILE
    else:
        raise FileNotFoundError(f"no run folder or .keras file at {path_text!r}")
    settings: dict[str, Any] = {}
    if config_path.is_file():
        settings = json.loads(config_path.read_text())
    return model_path, settings


def _load_model(model_path: Path):
    import keras

    import keras_vae.layers  # noqa: F401  (importing registers the serializable classes)
    import keras_vae.models  # noqa: F401

    return keras.saving.load_model(model_path)


def _eval_settings(args: argparse.Namespace, settings: dict[str, Any]) -> dict[str, Any]:
    """Flags override the run's config.json; the dataset defaults to fashion_mnist."""
    merged = dict(settings)
    for key in ("dataset", "binarize", "data_dir", "idx_dir"):
        value = getattr(args, key, None)
        if value is not None:
            merged[key] = value
    merged.setdefault("dataset", "fashion_mnist")
    if getattr(args, "no_download", False):
        merged["no_download"] = True
    return merged


# ----------------------------------------------------------------------------- pictures


def _write_pictures(model, settings, out: Path, x_test, y_test, history) -> list[Path]:
    from keras_vae import DAE, plotting

    written: list[Path] = []
    class_names = CLASS_NAMES.get(settings["dataset"])
    seed = settings["seed"]

    def keep(name: str) -> Path:
        written.append(out / name)
        return out / name

    if _is_conditional(model):
        plotting.class_conditional_grid(
            model,
            n_per_class=8,
            seed=seed,
            path=keep("class_conditional.png"),
            class_names=class_names,
        )
    elif hasattr(model, "generate"):
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
    if isinstance(model, DAE):
        noisy = model.corrupt(inputs, seed=seed)  # the plot clips to [0, 1]
        plotting.reconstruction_pairs(
            inputs,
            model.reconstruct(noisy),
            noisy=noisy,
            n=count,
            path=keep("denoising.png"),
            title="Clean, noisy and denoised",
        )
    scatter_count = min(5000, len(x_test))
    scatter_labels = None if y_test is None else y_test[:scatter_count]
    codes = _encode(model, x_test[:scatter_count], scatter_labels)
    plotting.latent_scatter(
        codes.reshape(len(codes), -1),
        labels=scatter_labels,
        path=keep("latent_scatter.png"),
        class_names=class_names,
    )
    if model.latent_shape == (2,) and hasattr(model, "generate") and not _is_conditional(model):
        plotting.latent_manifold(model, n=15, extent=3.0, path=keep("latent_manifold.png"))
    plotting.loss_curves(history, path=keep("loss_curves.png"))
    return written


# -------------------------------------------------------------------------- run folders


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
        name = _DERIVED_SETTINGS.get(key, "--" + key.replace("_", "-"))
        differing.append(f"{name} {_shown(saved.get(key))} (this command: {_shown(value)})")
    return differing


def _prepare_run_folder(args: argparse.Namespace, out: Path, settings: dict[str, Any]) -> bool:
    """Checks --out against --resume and --overwrite; returns whether to resume a run there.

    A run is unfinished while ``backup/`` exists beside its config.json, and completed when
    model.keras exists without a ``backup/``.
    """
    unfinished = (out / BACKUP_DIR).is_dir() and (out / CONFIG_FILE).is_file()
    if args.overwrite:
        for name in _RUN_OUTPUTS + _RUN_LOGS:
            path = out / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
        return False
    if unfinished:
        differing = _differing_settings(json.loads((out / CONFIG_FILE).read_text()), settings)
        if differing:
            raise UsageError(
                f"{out} holds an unfinished run started with other settings: "
                + "; ".join(differing)
                + ". Resume it with its own settings, or pass --overwrite to start afresh"
            )
        return True
    if (out / MODEL_FILE).is_file():
        raise UsageError(
            f"{out} holds a completed run; pass --overwrite to train it again, or choose "
            "another --out"
        )
    if args.resume:
        raise UsageError(
            f"--resume: {out} holds no unfinished run (no {BACKUP_DIR}/ beside a {CONFIG_FILE})"
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


# ----------------------------------------------------------------------------- commands


def _train_settings(args: argparse.Namespace, info, splits: dict[str, str]) -> dict[str, Any]:
    """Everything a run needs to be understood and re-evaluated: written to config.json."""
    import keras

    from keras_vae import __version__

    return {
        "model": args.model,
        "arch": args.arch,
        "dataset": args.dataset,
        "latent_dim": args.latent_dim,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "beta": 1.0 if args.beta is None else args.beta,
        "kl_warmup": args.kl_warmup,
        "noise_stddev": 0.3 if args.noise_stddev is None else args.noise_stddev,
        "hidden_units": list(
            DEFAULT_HIDDEN_UNITS[args.arch] if args.hidden_units is None else args.hidden_units
        ),
        "filters": list(DEFAULT_FILTERS if args.filters is None else args.filters),
        "learning_rate": args.learning_rate,
        "binarize": args.binarize,
        "data_dir": args.data_dir,
        "idx_dir": args.idx_dir,
        "no_download": args.no_download,
        "seed": args.seed,
        "limit": args.limit,
        "val_size": args.val_size,
        "splits": splits,
        "jit": args.jit,
        "steps_per_execution": args.steps_per_execution,
        "backend": keras.backend.backend(),
        "image_shape": list(info.image_shape),
        "num_classes": info.num_classes,
        "keras_version": keras.__version__,
        "keras_vae_version": __version__,
    }


def _fit_callbacks(
    args: argparse.Namespace, out: Path, settings: dict[str, Any], data_epoch, backup
) -> list:
    import keras

    from keras_vae import callbacks

    fit_callbacks = [data_epoch]
    if args.kl_warmup:  # before the CSVLogger and the backup, so their rows have kl_weight
        # An explicit end: the backup restores a half-annealed weight before fit's first epoch.
        warmup = callbacks.KLWarmup(warmup_epochs=args.kl_warmup, end=settings["beta"])
        fit_callbacks.append(warmup)
    if args.sample_every and not args.no_plots and args.model in ("vae", "cvae"):
        fit_callbacks.append(
            callbacks.SampleGrid(out / "progress", every=args.sample_every, seed=args.seed)
        )
    resumed = backup.completed_epochs > 0
    fit_callbacks.append(keras.callbacks.CSVLogger(str(out / "history.csv"), append=resumed))
    fit_callbacks.append(backup)  # last: each epoch's commit comes after the epoch's writes
    return fit_callbacks


def _cmd_train(args: argparse.Namespace) -> int:
    _check_train_args(args)
    started = time.perf_counter()
    import keras

    from keras_vae import callbacks, data

    out = Path(args.out)
    info = data.info(args.dataset, data_dir=args.data_dir, idx_dir=args.idx_dir)
    if args.model == "cvae" and not info.num_classes:
        raise UsageError(f"--model cvae needs labels, and dataset {args.dataset!r} has none")
    splits = _splits(info.num_examples, args.limit, args.val_size)
    settings = _train_settings(args, info, splits)
    resuming = _prepare_run_folder(args, out, settings)
    keras.utils.set_random_seed(args.seed)
    conditional = args.model == "cvae"
    # Epoch e's order is drawn from (seed, e), so a resumed run sees the epochs it missed.
    data_epoch = callbacks.DataEpoch()
    train_data = data.load(
        args.dataset,
        splits["train"],
        batch_size=args.batch_size,
        binarize=_binarize_mode(args.binarize),
        with_labels=conditional,
        seed=args.seed,
        epoch=data_epoch.variable,
        **_data_kwargs(settings),
    )
    x_val, y_val = _load_eval_arrays(settings, splits["validation"], seed=args.seed + 1)
    x_test, y_test = _load_eval_arrays(settings, splits["test"], seed=args.seed + 2)
    _say(
        f"{args.model} ({args.arch}, latent_dim {args.latent_dim}) on {args.dataset}: "
        f"{splits['train']} for training, {len(x_val)} validation and {len(x_test)} test "
        f"examples; backend {settings['backend']}"
    )
    (out / BACKUP_DIR).mkdir(parents=True, exist_ok=True)  # first: it marks the run unfinished
    if not resuming:  # a resumed run keeps the config.json it started with
        _write_json(out / CONFIG_FILE, settings)
    backup = callbacks.BackupAndRestore(out / BACKUP_DIR, delete_checkpoint=False)
    done = backup.completed_epochs
    if done:
        _keep_csv_rows(out / "history.csv", done)
        _say(f"resuming {out} after epoch {done} of {args.epochs}, from {out / BACKUP_DIR}")

    model = _build_model(settings, tuple(info.image_shape), info.num_classes)
    jit = {"auto": "auto", "on": True, "off": False}[args.jit]
    model.compile(
        optimizer=keras.optimizers.Adam(args.learning_rate),
        jit_compile=jit,
        steps_per_execution=args.steps_per_execution,
    )
    model.fit(
        train_data,
        epochs=args.epochs,
        validation_data=_as_fit_args(model, x_val, y_val),
        validation_batch_size=512,
        callbacks=_fit_callbacks(args, out, settings, data_epoch, backup),
        shuffle=False,  # data.load already shuffles the training split every epoch
        verbose=(1 if sys.stdout.isatty() else 2) if args.verbose is None else args.verbose,
    )
    history = backup.history  # every epoch of the run; fit's History has this process's only
    _write_json(out / "history.json", history)
    model.save(out / MODEL_FILE)

    metrics = _test_metrics(model, x_test, y_test, batch_size=512)
    metrics["split"] = splits["test"]
    metrics["train_seconds"] = round(time.perf_counter() - started, 1)
    _write_json(out / "metrics.json", metrics)
    _print_metrics(metrics, f"test metrics ({splits['test']}, nats per image):")

    if not args.no_plots:
        try:
            pictures = _write_pictures(model, settings, out, x_test, y_test, history)
            _say("pictures: " + ", ".join(path.name for path in pictures))
        except ImportError as error:
            _warn(f"skipped the pictures: {error}")
    if not args.no_export:
        _export_run(model, out / "saved_model", "tf_saved_model", required=False)
    shutil.rmtree(out / BACKUP_DIR)  # last: until here a rerun resumes, then the run is complete
    _say(f"wrote {out}/ in {time.perf_counter() - started:.0f} s")
    return 0


def _export_run(model, target: Path, export_format: str, required: bool) -> None:
    import keras

    try:
        model.export(str(target), format=export_format, verbose=False)
    except (NotImplementedError, ImportError, ValueError, RuntimeError) as error:
        backend = keras.backend.backend()
        if required:
            raise ValueError(f"export failed on the {backend} backend: {error}") from error
        _warn(
            f"skipped the SavedModel export on the {backend} backend ({_one_line(error)}); "
            f"export later with: keras-vae export {target.parent} --out DIR"
        )
        return
    _say(f"exported {export_format} to {target}")


def _cmd_evaluate(args: argparse.Namespace) -> int:
    model_path, settings = _locate_run(args.run)
    settings = _eval_settings(args, settings)
    split = args.split if args.limit is None else f"{args.split.split('[')[0]}[:{args.limit}]"
    x, labels = _load_eval_arrays(settings, split, seed=args.seed)
    model = _load_model(model_path)
    if _is_conditional(model) and labels is None:
        raise ValueError(f"this cvae needs labels, and {settings['dataset']!r} has none")
    metrics = _test_metrics(model, x, labels, batch_size=args.batch_size)
    if args.json:
        _say(json.dumps({"split": split, **metrics}, indent=2, sort_keys=True))
    else:
        _print_metrics(metrics, f"{settings['dataset']} {split} metrics (nats per image):")
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    import numpy as np

    kind = _output_kind(args.out)
    model_path, _ = _locate_run(args.run)
    model = _load_model(model_path)
    if not hasattr(model, "generate"):
        raise UsageError(
            f"generate needs a vae or cvae; {model_path} holds a {type(model).__name__}"
        )
    if _is_conditional(model):
        num_classes = model.num_classes
        if args.label is not None and not 0 <= args.label < num_classes:
            raise UsageError(f"--label must be in [0, {num_classes}), got {args.label}")
        if args.label is None:  # one row per class
            ncols = math.ceil(args.n / num_classes)
            labels = np.repeat(np.arange(num_classes), ncols)[: args.n]
        else:
            ncols = 8
            labels = np.full(args.n, args.label)
        images = model.generate(labels.astype("int32"), seed=args.seed)
    else:
        if args.label is not None:
            raise UsageError(f"--label needs a cvae; {model_path} holds a {type(model).__name__}")
        images = model.generate(args.n, seed=args.seed)
        ncols = 8
    _save_images(images, args.out, kind, ncols=min(ncols, args.n), title=None)
    _say(f"wrote {len(images)} samples to {args.out}")
    return 0


def _cmd_reconstruct(args: argparse.Namespace) -> int:
    from keras_vae import DAE, plotting

    kind = _output_kind(args.out)
    model_path, settings = _locate_run(args.run)
    settings = _eval_settings(args, settings)
    x, labels = _load_eval_arrays(settings, f"test[:{args.n}]", seed=args.seed)
    model = _load_model(model_path)
    if _is_conditional(model) and labels is None:
        raise ValueError(f"this cvae needs labels, and {settings['dataset']!r} has none")
    noisy = None
    if isinstance(model, DAE):
        noisy = model.corrupt(x, seed=args.seed)  # the plot clips to [0, 1]
        reconstructions = model.reconstruct(noisy)
    else:
        reconstructions = _reconstruct(model, x, labels)
    if kind == "npy":
        _save_images(reconstructions, args.out, kind)
    else:
        _parent(args.out)
        plotting.reconstruction_pairs(x, reconstructions, noisy=noisy, n=len(x), path=args.out)
    _say(f"wrote {len(x)} reconstructions to {args.out}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    model_path, _ = _locate_run(args.run)
    model = _load_model(model_path)
    _export_run(model, Path(args.out), args.format, required=True)
    return 0


def _parent(path: str) -> None:
    parent = Path(path).parent
    parent.mkdir(parents=True, exist_ok=True)


def _save_images(images, path: str, kind: str, ncols: int = 8, title: str | None = None) -> None:
    import numpy as np

    _parent(path)
    if kind == "npy":
        np.save(path, images)
        return
    from keras_vae import plotting

    plotting.sample_grid(images, ncols=ncols, path=path, title=title)


# --------------------------------------------------------------------------------- main


def _one_line(error: BaseException) -> str:
    from keras_vae.data import DatasetNotFoundError

    if isinstance(error, DatasetNotFoundError):
        looked = "; ".join(error.places) or "nowhere"
        remedies = "pass --idx-dir DIR with MNIST-format IDX files or set KERAS_VAE_DATA_DIR"
        if error.name == "fashion_mnist":
            remedies += ", or install the Debian package dataset-fashion-mnist"
        return (
            f"dataset {error.name!r} (split {error.split!r}) was not found (looked in: "
            f"{looked}); {remedies}"
        )
    return " ".join(str(error).split()) or type(error).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the `keras-vae` command line; returns the exit status.

    Args:
        argv: arguments without the program name; `None` reads `sys.argv`.

    Returns:
        0 on success, 1 for runtime errors, 2 for usage errors.

    Example:

    >>> main(["evaluate", "no/such/run"])  # prints the error line to stderr
    1
    """
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(arguments)
    try:
        _select_backend(args.backend)
        return args.func(args)
    except _BackendMismatch as error:
        # Importing the package may import Keras before the flag is read: start afresh.
        if argv is None and not os.environ.get(_REEXEC_FLAG):
            return _rerun_in_fresh_process(arguments, error.requested)
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    except UsageError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        hint = "; the same command resumes after the last epoch" if args.command == "train" else ""
        print(f"{PROG}: interrupted{hint}", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, OSError) as error:
        if args.debug:
            raise
        print(f"{PROG}: error: {_one_line(error)}", file=sys.stderr)
        return 1
    except Exception as error:
        if args.debug:
            raise
        print(
            f"{PROG}: error: unexpected {type(error).__name__}: {_one_line(error)} "
            "(rerun with --debug for the traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
