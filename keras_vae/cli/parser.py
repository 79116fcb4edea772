"""The `keras-vae` argument parser: sub-commands, flags, help texts and their examples.

`--model` choices and the help naming which models an option applies to come from the
registry `keras_vae.models.MODELS`, so a registered model appears here with no change.
"""

from __future__ import annotations

import argparse
import json
import math
import textwrap

from keras_vae import __version__, runs
from keras_vae.models import MODELS

PROG = "keras-vae"
BACKENDS = ("tensorflow", "jax", "torch")


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


def _names(where) -> str:
    """The registered models satisfying ``where``, as help text: ``vae/cvae``."""
    return "/".join(runs.model_names(where))


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

  keras-vae train --model iwae --model-option num_samples=5 --out runs/iwae

data: the last --val-size training examples are held out for validation (the Keras progress
bar shows val_* metrics); the test split is only used once, for metrics.json, after training.
Every model's reconstruction term is the Bernoulli log-likelihood (decoders output logits). With
--binarize dynamic (the default) or static the pixels are 0 or 1, so a VAE's loss is its
negative ELBO in nats per image; with --binarize none (grey levels) a Bernoulli cross-entropy
is no log-probability, and no loss is a likelihood. Models without a likelihood (ae, dae, ...)
report losses in their own units. keras-vae evaluate adds the test NLL.

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
  keras-vae evaluate runs/vae --num-samples 5000 --limit 2000
  keras-vae evaluate runs/cvae --json
  keras-vae evaluate runs/vae/model.keras --dataset fashion_mnist --binarize dynamic

measures, by what the model can do:
  every model: its losses (per image, in its own units), pixel_mse, psnr_db (the mean
    per-image PSNR); a denoising model also noisy_psnr_db and denoised_psnr_db;
  a model with a likelihood, on binary data: negative_elbo_nats, nll_nats (importance
    weighted with K = --num-samples, Burda et al. 2015), active_units, kl_per_dimension_nats;
    on grey levels (--binarize none) no NLL: likelihood_not_reported says why;
  a conditional generative model (cvae): conditional_accuracy (overall, per class) of its
    samples under a reference convnet trained once on the dataset's training split and cached
    in reference_classifiers/ beside the run folder.

The test split is binarised as the run was trained (dynamic: one fixed draw, the same for
every run). The metrics are merged into the run's metrics.json unless --no-write, or the
data flags differ from the run's.
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


def _model_option(text: str) -> tuple[str, object]:
    """``NAME=VALUE``: VALUE a JSON literal (``5``, ``0.1``, ``true``, ``"text"``) or a bare word."""
    name, equals, value = text.partition("=")
    name = name.strip()
    if not equals or not name.isidentifier():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, e.g. num_samples=5, got {text!r}")
    try:
        return name, json.loads(value)
    except ValueError:
        if value.isidentifier():  # a bare word is text: noise=dropout
            return name, value
        raise argparse.ArgumentTypeError(
            f'the value of {name} must be a JSON literal (5, 0.1, true, null, "text", [1, 2]), '
            f"got {value!r}"
        ) from None


def _options_by_model() -> str:
    return "; ".join(
        f"{name}: {', '.join(runs.option_names(cls)) or 'none'}" for name, cls in MODELS.items()
    )


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
        default=runs.DEFAULT_DATASET if with_defaults else None,
        metavar="NAME",
        help="TFDS image dataset name (fashion_mnist, mnist, ...)"
        + ("" if with_defaults else "; default: the run's"),
    )
    group.add_argument(
        "--binarize",
        choices=runs.BINARIZE,
        default="dynamic" if with_defaults else None,
        help="dynamic: a fresh Bernoulli draw per epoch (validation/test: one fixed draw), so "
        "likelihoods are in nats; static: threshold at 0.5; none: grey levels (no likelihood)"
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
            "Train an autoencoder of keras_vae.models.MODELS and write model, metrics, "
            "export and pictures into a run folder (see keras_vae.runs.train)."
        ),
        epilog=_TRAIN_EPILOG,
    )
    train.add_argument(
        "--model", choices=tuple(runs.model_names()), default="vae", help="which autoencoder"
    )
    segnet = _names(lambda cls: runs.fits_arch(cls, "segnet"))
    train.add_argument(
        "--arch",
        choices=runs.ARCHS,
        default="mlp",
        help=f"encoder/decoder pair from keras_vae.architectures (segnet: {segnet} only); on "
        "a CPU, mlp reaches a lower loss per minute than conv",
    )
    with_beta = _names(lambda cls: runs.accepts(cls, "beta"))
    train.add_argument(
        "--latent-dim", type=_positive_int, default=16, metavar="DIM", help="latent size"
    )
    train.add_argument("--epochs", type=_positive_int, default=20, metavar="N", help="epochs")
    train.add_argument(
        "--batch-size", type=_positive_int, default=128, metavar="N", help="batch size"
    )
    train.add_argument("--out", required=True, metavar="DIR", help="run folder to write (created)")
    train.add_argument(
        "--beta", type=_non_negative_float, default=None, help=f"KL weight ({with_beta}; default 1)"
    )
    train.add_argument(
        "--kl-warmup",
        type=_non_negative_int,
        default=0,
        metavar="EPOCHS",
        help=f"anneal the KL weight from 0 to --beta over this many epochs ({with_beta})",
    )
    train.add_argument(
        "--noise-stddev",
        type=_non_negative_float,
        default=None,
        metavar="STD",
        help="std of the Gaussian input noise "
        f"({_names(lambda cls: runs.accepts(cls, 'noise_stddev'))}; default 0.3)",
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
        "--model-option",
        type=_model_option,
        action="append",
        default=None,
        metavar="NAME=VALUE",
        help="another argument of the model's __init__, VALUE a JSON literal (a bare word is "
        f"text); repeatable. By model: {_options_by_model()}",
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
        choices=runs.JIT,
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
        help=f"{_names(lambda cls: cls.generative)}: write progress/samples_epoch_NNN.png "
        "every this many epochs (0: never)",
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
        help="measure a run: test NLL, active units, PSNR, conditional accuracy",
        description=_wrap(
            "Evaluate a trained model on a test split, print its metrics and merge them into "
            "the run's metrics.json (the dataset and binarisation default to those in the "
            "run's config.json)."
        ),
        epilog=_EVALUATE_EPILOG,
    )
    _add_run_argument(evaluate)
    evaluate.add_argument("--split", default="test", help="split to evaluate, e.g. test[:1000]")
    evaluate.add_argument("--limit", type=_positive_int, help="evaluate the first N examples")
    evaluate.add_argument(
        "--num-samples",
        type=_positive_int,
        default=1000,
        metavar="K",
        help="importance samples per image for the NLL",
    )
    evaluate.add_argument(
        "--samples-per-class",
        type=_positive_int,
        default=100,
        metavar="N",
        help="samples per class for a conditional model's accuracy",
    )
    evaluate.add_argument(
        "--batch-size",
        type=_positive_int,
        default=None,
        help="batch size (default: 512 for the losses, the estimators' own for the NLL)",
    )
    evaluate.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the importance samples, denoising noise and conditional samples (the "
        "test images are binarised with a fixed seed)",
    )
    evaluate.add_argument("--json", action="store_true", help="print the metrics as JSON")
    evaluate.add_argument(
        "--no-write", action="store_true", help="do not merge the metrics into metrics.json"
    )
    _data_options(evaluate, with_defaults=False)


def _add_generate_command(commands, common: argparse.ArgumentParser) -> None:
    generate = _subcommand(
        commands,
        common,
        "generate",
        help=f"sample images from a {_names(lambda cls: cls.generative)}",
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


def build_parser() -> argparse.ArgumentParser:
    """Returns the `keras-vae` argument parser; ``args.command`` names the sub-command.

    >>> build_parser().parse_args(["train", "--out", "runs/vae"]).model
    'vae'
    """
    common = _common_options()
    parser = _Parser(
        prog=PROG,
        description="Train, evaluate, sample from and export keras_vae autoencoders.",
        epilog="run 'keras-vae COMMAND --help' for a command's options and examples.",
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    _add_train_command(commands, common)
    _add_evaluate_command(commands, common)
    _add_generate_command(commands, common)
    _add_reconstruct_command(commands, common)
    _add_export_command(commands, common)
    return parser
