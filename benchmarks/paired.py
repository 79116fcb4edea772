"""Whole `fit` epochs of keras_vae's VAE, the Keras add_loss peer and PyTorch's example, in turn
in one process.

    KERAS_BACKEND=tensorflow python -m benchmarks.paired
    python -m benchmarks.paired --all    # = make bench-paired: TensorFlow, then JAX (~3.5 min)

`benchmarks.run` gives each row its own process, minutes apart. On a shared VM that is not
enough: the host's speed changes within seconds (benchmarks/README.md, "Caveats"), so two rows
of one table can run at speeds 1.5-2x apart. Here the three MLP VAEs (784-400-20, batch 128, Adam 1e-3,
the full 60k Fashion-MNIST training set), and on TensorFlow keras_vae with one batch per call
(what ``steps_per_execution="auto"`` gains), live in one process and train one epoch each in turn,
round after round, the order rotated each round; each ratio is taken between epochs of the same
round, seconds apart, and the table reports the median over rounds and how many rounds each side
won.

Each epoch is a real `fit(x, epochs=1, batch_size=128, shuffle=True)` call (numpy arrays in,
Keras' own input pipeline, callbacks, metrics) for the Keras models, and the example's own
training loop (shuffled slices of an in-memory tensor, ``loss.item()`` every step) for PyTorch.
Throughput counts the steps after the first ``--warmup-steps`` of the epoch to its end, after a
device sync, as `benchmarks.run` does.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

# keras_vae compiled with steps_per_execution=1 (where "auto" means more than 1: TensorFlow).
ONE_STEP = "ours_one_step_per_call"
CONTENDERS = ("ours", ONE_STEP, "keras_add_loss", "pytorch_example")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="epochs per model (median used)")
    parser.add_argument("--train-size", type=int, default=None, help="examples (default: all)")
    parser.add_argument("--warmup-steps", type=int, default=10, help="untimed steps per epoch")
    parser.add_argument("--all", action="store_true", help="TensorFlow and JAX, a process each")
    parser.add_argument("--out", default=None, help="write this backend's JSON here")
    return parser.parse_args(argv)


def _keras_epoch(model, x, with_targets, warmup_steps):
    from benchmarks import common

    steps = len(x) // common.BATCH_SIZE
    clock = common.StepClock()
    common.timed_keras_fit(
        model,
        clock,
        steps,
        x=x,
        y=x if with_targets else None,
        batch_size=common.BATCH_SIZE,
        epochs=1,
        shuffle=True,
    )
    return clock.summary(steps, common.BATCH_SIZE, warmup_steps)["examples_per_s"]


def _torch_epoch(model, x, warmup_steps, seed):
    from benchmarks import common
    from benchmarks.peers import pytorch_example

    clock = common.StepClock()
    pytorch_example.train(model, x, 1, common.BATCH_SIZE, clock, seed=seed)
    steps = len(x) // common.BATCH_SIZE
    return clock.summary(steps, common.BATCH_SIZE, warmup_steps)["examples_per_s"]


def _contenders(x, warmup_steps):
    """name -> function(round) training one epoch and returning its examples/s."""
    import importlib.util

    from benchmarks import common, ours
    from benchmarks.peers import keras_add_loss
    from keras_vae.backends import AUTO_STEPS_PER_EXECUTION

    backend = os.environ["KERAS_BACKEND"]
    epochs = {}
    contenders = [("ours", ours, {}), ("keras_add_loss", keras_add_loss, {})]
    if AUTO_STEPS_PER_EXECUTION > 1:  # what steps_per_execution="auto" gains here
        contenders.insert(1, (ONE_STEP, ours, {"steps_per_execution": 1}))
    for name, implementation, settings in contenders:
        common.seed_everything(0, backend)
        model = implementation.build("mlp")[0]
        implementation.compile_model(model, **settings)
        with_targets = name == "keras_add_loss"
        _keras_epoch(model, x[: 20 * common.BATCH_SIZE], with_targets, 1)  # compile
        epochs[name] = lambda r, m=model, t=with_targets: _keras_epoch(m, x, t, warmup_steps)
    if importlib.util.find_spec("torch") is not None:
        import torch

        from benchmarks.peers import pytorch_example

        torch.set_num_threads(common.cpu_count())
        model = pytorch_example.build("mlp")[0]
        _torch_epoch(model, x[: 20 * common.BATCH_SIZE], 1, 0)
        epochs["pytorch_example"] = lambda r: _torch_epoch(model, x, warmup_steps, r)
    return epochs


def measure(args):
    """This process's backend: every contender, ``args.rounds`` rounds."""
    from benchmarks import common

    x, source = common.training_set("mlp", args.train_size)
    epochs = _contenders(x, args.warmup_steps)
    names = list(epochs)
    speeds = {name: [] for name in names}
    for round_ in range(args.rounds):
        order = names[round_ % len(names) :] + names[: round_ % len(names)]
        for name in order:
            speeds[name].append(epochs[name](round_))
        print(
            f"round {round_ + 1}: " + ", ".join(f"{n} {speeds[n][-1]:,.0f}" for n in names),
            file=sys.stderr,
            flush=True,
        )
    return {
        "backend": os.environ["KERAS_BACKEND"],
        "data_source": source,
        "train_examples": len(x),
        "rounds": args.rounds,
        "warmup_steps": args.warmup_steps,
        "examples_per_s": speeds,
        "median_examples_per_s": {n: statistics.median(v) for n, v in speeds.items()},
        "ratios": {
            f"ours/{other}": ratio_summary(speeds["ours"], speeds[other])
            for other in names
            if other != "ours"
        },
    }


def ratio_summary(ours: list[float], peer: list[float]) -> dict:
    """Per-round ratios ours/peer: their median, range and the rounds ours was at least as fast."""
    ratios = [a / b for a, b in zip(ours, peer)]
    return {
        "median": statistics.median(ratios),
        "min": min(ratios),
        "max": max(ratios),
        "rounds_at_least_as_fast": sum(r >= 1.0 for r in ratios),
        "rounds": len(ratios),
    }


def _speed_cell(result: dict, name: str) -> str:
    value = result["median_examples_per_s"].get(name)
    return "" if value is None else f"{value:,.0f}"


def _ratio_cell(result: dict, peer: str) -> str:
    r = result["ratios"].get(f"ours/{peer}")
    if r is None:
        return ""
    return (
        f"{r['median']:.2f} ({r['min']:.2f}-{r['max']:.2f}; "
        f"{r['rounds_at_least_as_fast']}/{r['rounds']})"
    )


def table(results: list[dict]) -> str:
    lines = [
        "| backend | ours ex/s | ours, 1 batch per call | Keras add_loss ex/s | "
        "PyTorch example ex/s | ours/add_loss (range; rounds ≥ 1) | "
        "ours/PyTorch example (range; rounds ≥ 1) | ours/ours with 1 batch per call |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        lines.append(
            f"| {result['backend']} | {_speed_cell(result, 'ours')} | "
            f"{_speed_cell(result, ONE_STEP)} | {_speed_cell(result, 'keras_add_loss')} | "
            f"{_speed_cell(result, 'pytorch_example')} | {_ratio_cell(result, 'keras_add_loss')} "
            f"| {_ratio_cell(result, 'pytorch_example')} | {_ratio_cell(result, ONE_STEP)} |"
        )
    return "\n".join(lines)


def rounds_table(results: list[dict]) -> str:
    lines = [
        "| backend | round | " + " | ".join(CONTENDERS) + " |",
        "|---|---:|" + "---:|" * len(CONTENDERS),
    ]
    for result in results:
        speeds = result["examples_per_s"]
        for index in range(result["rounds"]):
            cells = [f"{speeds[name][index]:,.0f}" if name in speeds else "" for name in CONTENDERS]
            lines.append(f"| {result['backend']} | {index + 1} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_all(args) -> int:
    """One process per backend (a Keras backend is fixed per process); writes results/paired.*"""

    from benchmarks import common

    started = time.perf_counter()
    results = []
    for backend in common.installed_backends(("tensorflow", "jax")):
        arguments = ["--rounds", str(args.rounds), "--warmup-steps", str(args.warmup_steps)]
        if args.train_size:
            arguments += ["--train-size", str(args.train_size)]
        results.append(common.run_module("benchmarks.paired", backend, arguments))
        print(table(results[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    command = "python -m benchmarks.paired --all" + (
        f" --rounds {args.rounds}" if args.rounds != 5 else ""
    )
    text = "\n".join(
        [
            "# keras_vae vs its peers: whole `fit` epochs in turn, in one process",
            "",
            f"- Date: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}; device: "
            f"{common.cpu_model()}, {common.cpu_count()} cores; `{command}`, "
            f"{time.perf_counter() - started:.0f} s.",
            f"- MLP 784-400-20, batch {common.BATCH_SIZE}, "
            + ", ".join(sorted({f"{r['train_examples']:,} examples" for r in results}))
            + f" ({results[0]['data_source'] if results else '-'}); one epoch per model per "
            f"round, the order rotated each round; ex/s after the first "
            f"{args.warmup_steps} steps of each epoch; medians over rounds.",
            "",
            table(results),
            "",
            "Every round (ex/s):",
            "",
            rounds_table(results),
            "",
        ]
    )
    results_dir = Path(__file__).resolve().parent / "results"
    (results_dir / "paired.md").write_text(text)
    common.dump(results, str(results_dir / "paired.json"))
    print(text)
    print(f"Written: {results_dir / 'paired.md'}")
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.all:
        return run_all(args)
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    from benchmarks import common

    common.write_or_print(measure(args), args.out, table)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    raise SystemExit(main())
