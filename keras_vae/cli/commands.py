"""The `keras-vae` sub-commands: each calls `keras_vae.runs` with the parsed flags and prints.

Each takes the parsed `argparse.Namespace` and returns the exit status; `COMMANDS` maps the
sub-command names to them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from keras_vae import runs
from keras_vae.cli.parser import PROG


def say(message: str) -> None:
    print(message, flush=True)


def say_to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def warn(message: str) -> None:
    print(f"{PROG}: warning: {message}", file=sys.stderr, flush=True)


def _data_flags(args: argparse.Namespace) -> dict:
    """evaluate/reconstruct: the data flags given, `None` for the run's own."""
    return {
        "dataset": args.dataset,
        "binarize": args.binarize,
        "data_dir": args.data_dir,
        "idx_dir": args.idx_dir,
        "download": False if args.no_download else None,
    }


def _model_options(pairs) -> dict:
    options: dict = {}
    for name, value in pairs or ():
        if name in options:
            raise runs.SettingsError(f"--model-option {name} given twice")
        options[name] = value
    return options


def train(args: argparse.Namespace) -> int:
    runs.train(
        args.out,
        model=args.model,
        arch=args.arch,
        dataset=args.dataset,
        latent_dim=args.latent_dim,
        epochs=args.epochs,
        batch_size=args.batch_size,
        beta=args.beta,
        kl_warmup=args.kl_warmup,
        noise_stddev=args.noise_stddev,
        hidden_units=args.hidden_units,
        filters=args.filters,
        learning_rate=args.learning_rate,
        model_options=_model_options(args.model_option),
        binarize=args.binarize,
        data_dir=args.data_dir,
        idx_dir=args.idx_dir,
        download=not args.no_download,
        seed=args.seed,
        limit=args.limit,
        val_size=args.val_size,
        jit=args.jit,
        steps_per_execution=args.steps_per_execution,
        verbose=args.verbose,
        sample_every=args.sample_every,
        plots=not args.no_plots,
        export=not args.no_export,
        resume=args.resume,
        overwrite=args.overwrite,
        report=say,
    )
    return 0


def evaluate(args: argparse.Namespace) -> int:
    run = runs.load(args.run)
    metrics = runs.evaluate(
        run,
        split=args.split,
        limit=args.limit,
        batch_size=args.batch_size,
        seed=args.seed,
        num_samples=args.num_samples,
        num_per_class=args.samples_per_class,
        write=not args.no_write,
        report=say_to_stderr if args.json else say,  # --json: stdout holds JSON only
        **_data_flags(args),
    )
    if args.json:
        say(json.dumps(metrics, indent=2, sort_keys=True))
        return 0
    shown = dict(metrics)
    split, binarize = shown.pop("split"), shown.pop("binarize")
    notes = {key: shown.pop(key) for key in list(shown) if key.endswith("_not_reported")}
    dataset = args.dataset or run.dataset
    units = runs.metric_units(run.model, binarize)
    if any(key.endswith("_nats") for key in shown):
        units += "; *_nats: nats per image"
    say(runs.format_metrics(shown, f"{dataset} {split} ({units}):"))
    for key, note in notes.items():
        say(f"  {key.removesuffix('_not_reported')} not reported: {note}")
    return 0


def generate(args: argparse.Namespace) -> int:
    images = runs.generate(args.run, args.n, label=args.label, seed=args.seed, path=args.out)
    say(f"wrote {len(images)} samples to {args.out}")
    return 0


def reconstruct(args: argparse.Namespace) -> int:
    result = runs.reconstruct(args.run, args.n, seed=args.seed, path=args.out, **_data_flags(args))
    say(f"wrote {len(result.inputs)} reconstructions to {args.out}")
    return 0


def export(args: argparse.Namespace) -> int:
    runs.export(args.run, args.out, args.format, report=say)
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "train": train,
    "evaluate": evaluate,
    "generate": generate,
    "reconstruct": reconstruct,
    "export": export,
}
